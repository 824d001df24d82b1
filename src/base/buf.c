/* SPDX-License-Identifier: MIT */
/* Bounded growable buffer; see buf.h for the contract. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"

void buf_init(struct buf *b, size_t max_len)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max_len = max_len;
}

void buf_cleanup(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static enum xdms_err buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > b->max_len || b->len > b->max_len - extra)
		return XDMS_ERR_TOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return XDMS_ERR_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return XDMS_ERR_OK;
}

enum xdms_err buf_append(struct buf *b, const void *data, size_t len)
{
	enum xdms_err err = buf_reserve(b, len);

	if (err)
		return err;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return XDMS_ERR_OK;
}

enum xdms_err buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum xdms_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	enum xdms_err err;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return XDMS_ERR_INVAL;
	err = buf_reserve(b, (size_t)n);
	if (err)
		return err;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return XDMS_ERR_OK;
}

enum xdms_err buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	enum xdms_err err;

	va_start(ap, fmt);
	err = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return err;
}

enum xdms_err buf_append_xml_escaped(struct buf *b, const char *s, size_t len)
{
	size_t i, run = 0;
	enum xdms_err err;

	for (i = 0; i < len; i++) {
		const char *rep = NULL;

		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: continue;
		}
		err = buf_append(b, s + run, i - run);
		if (!err)
			err = buf_append_str(b, rep);
		if (err)
			return err;
		run = i + 1;
	}
	return buf_append(b, s + run, len - run);
}

char *buf_take(struct buf *b, size_t *len_out)
{
	char *p = b->data;

	if (len_out)
		*len_out = b->len;
	if (!p)
		p = xstrdup("");
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
