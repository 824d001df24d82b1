/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer created with a maximum. Appends past the maximum
 * fail with XDMS_ERR_TOOBIG and leave the buffer unchanged, so input-driven
 * growth is always bounded. The data is kept NUL-terminated (the NUL is not
 * counted in len) so text can be handed to C string functions.
 */
#ifndef XDMS_BASE_BUF_H
#define XDMS_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/err.h"

struct buf {
	char *data;     /* owned; NULL until the first append */
	size_t len;     /* bytes used, excluding the trailing NUL */
	size_t cap;     /* bytes allocated */
	size_t max_len; /* appends beyond this fail */
};

/* Initializes an empty buffer that will refuse to grow past @max_len. */
void buf_init(struct buf *b, size_t max_len);
/* Frees the storage; the buffer may be reused after buf_init. NULL-tolerant. */
void buf_cleanup(struct buf *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(struct buf *b);

enum xdms_err buf_append(struct buf *b, const void *data, size_t len) XDMS_WUR;
enum xdms_err buf_append_str(struct buf *b, const char *s) XDMS_WUR;
enum xdms_err buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) XDMS_WUR;
enum xdms_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0))) XDMS_WUR;
/*
 * Appends @len bytes of @s escaped for XML character data or a double-quoted
 * attribute value (&, <, >, " and ' become entity references).
 */
enum xdms_err buf_append_xml_escaped(struct buf *b, const char *s, size_t len) XDMS_WUR;

/*
 * Hands the storage to the caller (who frees it with free()) and leaves the
 * buffer empty. Returns a valid empty string for an empty buffer.
 */
char *buf_take(struct buf *b, size_t *len_out);

#endif
