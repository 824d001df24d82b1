/* SPDX-License-Identifier: MIT */
/*
 * <xcap-error> documents (RFC 4825 §11): exactly one child element, always
 * with a phrase a person can act on; <no-parent> may carry <ancestor> and
 * <uniqueness-failure> carries <exists field> with an optional <alt-value>.
 * Also the names of the outcome kinds (XCAP_OUTCOME_MAP).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xcap/xcap.h"

static const char *const error_elements[] = {
#define XCAP_ERROR_NAME(name, element) element,
	XCAP_ERROR_MAP(XCAP_ERROR_NAME)
#undef XCAP_ERROR_NAME
};

const char *xcap_error_element(enum xcap_error_kind kind)
{
	if ((unsigned)kind >= XCAP_ERROR__COUNT)
		return "extension";
	return error_elements[kind];
}

void xcap_error_set(struct xcap_error *e, enum xcap_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->phrase, sizeof(e->phrase), fmt, ap);
	va_end(ap);
}

void xcap_error_cleanup(struct xcap_error *e)
{
	if (!e)
		return;
	free(e->ancestor);
	free(e->field);
	free(e->alt_value);
	e->ancestor = e->field = e->alt_value = NULL;
}

enum xdms_err xcap_error_render(const struct xcap_error *e, struct buf *out)
{
	const char *el = xcap_error_element(e->kind);
	enum xdms_err err;

	err = buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			      "<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\"><%s", el);
	if (!err && e->phrase[0]) {
		err = buf_append_str(out, " phrase=\"");
		if (!err)
			err = buf_append_xml_escaped(out, e->phrase, strlen(e->phrase));
		if (!err)
			err = buf_append_str(out, "\"");
	}
	if (err)
		return err;
	if (e->kind == XCAP_ERROR_NO_PARENT && e->ancestor) {
		err = buf_append_str(out, "><ancestor>");
		if (!err)
			err = buf_append_xml_escaped(out, e->ancestor, strlen(e->ancestor));
		if (!err)
			err = buf_printf(out, "</ancestor></%s>", el);
	} else if (e->kind == XCAP_ERROR_UNIQUENESS_FAILURE) {
		err = buf_append_str(out, "><exists field=\"");
		if (!err)
			err = buf_append_xml_escaped(out, e->field ? e->field : "", e->field ? strlen(e->field) : 0);
		if (!err && e->alt_value) {
			err = buf_append_str(out, "\"><alt-value>");
			if (!err)
				err = buf_append_xml_escaped(out, e->alt_value, strlen(e->alt_value));
			if (!err)
				err = buf_printf(out, "</alt-value></exists></%s>", el);
		} else if (!err) {
			err = buf_printf(out, "\"/></%s>", el);
		}
	} else {
		err = buf_append_str(out, "/>");
	}
	if (!err)
		err = buf_append_str(out, "</xcap-error>\n");
	return err;
}

const char *xcap_outcome_name(enum xcap_outcome o)
{
	static const char *const names[] = {
#define XCAP_OUTCOME_NAME(name, text) [XCAP_OUTCOME_##name] = #name,
		XCAP_OUTCOME_MAP(XCAP_OUTCOME_NAME)
#undef XCAP_OUTCOME_NAME
	};

	return (unsigned)o < XCAP_OUTCOME__COUNT ? names[o] : "?";
}
