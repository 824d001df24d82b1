/* SPDX-License-Identifier: MIT */
/*
 * Message framing checks, run on the first call of the access handler: the
 * request head is parsed, no body byte has been handed to us, and neither
 * routing nor authentication has run. A refusal here is queued at once, so
 * libmicrohttpd closes the connection after it (RFC 9112 §6.1, §6.3) and
 * whatever followed the head (a body, or a request hidden in one) is never
 * read as a request.
 *
 * libmicrohttpd 0.9.75 accepts, and frames on its own terms, several heads
 * that a proxy in front of us may frame differently (request smuggling,
 * RFC 9112 §11.2). What it leaves visible, found by sending it the bytes:
 *   - Content-Length and Transfer-Encoding together: both fields are listed;
 *   - two Content-Length fields: both are listed (it uses the first);
 *   - "Transfer-Encoding :" (space before the colon): listed with the space
 *     in its name, and not used for framing;
 *   - an obs-fold continuation line: appended to the field NAME in a copy
 *     taken from the end of the connection's memory pool, while the value
 *     keeps the first line only. The one trace is a name stored at a higher
 *     address than its value, which never happens to an unfolded field
 *     (the value follows the name on the same line of the read buffer);
 *   - a NUL in the request-target: the target handed to the URI callback
 *     ends at the NUL, but the version string still starts after the whole
 *     target, so the distance between the two gives it away;
 *   - a NUL in a field value: the value's length ends at the NUL. The line
 *     ends are zeroed in place (CR and LF), so an unbroken value is followed
 *     by the next field's name one byte (LF) or two bytes (CRLF) after its
 *     own terminator; anything else there means bytes were hidden after a NUL.
 *     For the last field this is weaker (only the following byte is known to
 *     be a zeroed LF); the head gate (gate.c) reads every first head raw.
 * Transfer codings other than a single "chunked" are refused (RFC 9112 §6.1:
 * 501 for a coding we do not understand; chunked twice, or not last, 400).
 *
 * Pure function of the connection's head; any pool thread.
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"

struct framing_scan {
	unsigned content_length_count;
	const char *content_length; /* the first value */
	size_t content_length_len;
	bool is_cl_mismatch;
	unsigned transfer_encoding_count;
	const char *transfer_encoding;
	size_t transfer_encoding_len;
	/* The previous field, to check that nothing hides after its end. */
	const char *prev_value;
	size_t prev_value_len;
	unsigned status;
	const char *why;
};

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void refuse(struct framing_scan *s, unsigned status, const char *why)
{
	if (!s->status) {
		s->status = status;
		s->why = why;
	}
}

/* True when the value that ended at @end (its terminator) runs straight into
 * the line that starts at @next: one zeroed LF, or a zeroed CR and LF. */
static bool ends_at_line_end(const char *end, const char *next)
{
	return next == end + 1 || (next == end + 2 && end[1] == '\0');
}

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_len,
				  const char *value, size_t value_len)
{
	struct framing_scan *s = cls;

	(void)kind;
	if (s->prev_value && !ends_at_line_end(s->prev_value + s->prev_value_len, key))
		refuse(s, 400, "NUL byte in a header field value");
	s->prev_value = NULL;
	if (!key_len || !value) {
		refuse(s, 400, "malformed header field");
		return MHD_YES;
	}
	for (size_t i = 0; i < key_len; i++) {
		if (!is_tchar((unsigned char)key[i])) {
			/* RFC 9112 §5.1: no whitespace between name and colon. */
			refuse(s, 400, "malformed header field name");
			return MHD_YES;
		}
	}
	if (key > value) {
		refuse(s, 400, "obs-fold line folding in a header field");
		return MHD_YES;
	}
	for (size_t i = 0; i < value_len; i++) {
		unsigned char c = (unsigned char)value[i];

		/* RFC 9110 §5.5: CR, LF and NUL are never part of a field value. */
		if (c == '\r' || c == '\n') {
			refuse(s, 400, "CR or LF inside a header field value");
			return MHD_YES;
		}
	}
	s->prev_value = value;
	s->prev_value_len = value_len;
	if (key_len == 14 && strncasecmp(key, "Content-Length", 14) == 0) {
		while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
			value_len--;
		if (s->content_length_count++ == 0) {
			s->content_length = value;
			s->content_length_len = value_len;
		} else if (value_len != s->content_length_len || memcmp(value, s->content_length, value_len) != 0) {
			s->is_cl_mismatch = true;
		}
	} else if (key_len == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0) {
		s->transfer_encoding_count++;
		s->transfer_encoding = value;
		s->transfer_encoding_len = value_len;
	}
	return MHD_YES;
}

/* The transfer codings of one Transfer-Encoding value: OK only for exactly
 * "chunked" (with optional whitespace), RFC 9112 §6.1 and §7. */
static void check_transfer_encoding(struct framing_scan *s)
{
	const char *v = s->transfer_encoding, *end = v + s->transfer_encoding_len;
	unsigned codings = 0, chunked_at = 0;

	while (v < end) {
		const char *start, *stop;

		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		if (v == end)
			break;
		start = v;
		while (v < end && *v != ',')
			v++;
		stop = v;
		while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
			stop--;
		codings++;
		if ((size_t)(stop - start) == 7 && strncasecmp(start, "chunked", 7) == 0) {
			if (chunked_at) {
				refuse(s, 400, "chunked transfer coding applied twice");
				return;
			}
			chunked_at = codings;
		}
	}
	if (!codings)
		refuse(s, 400, "empty Transfer-Encoding");
	else if (!chunked_at)
		refuse(s, 501, "unsupported transfer coding");
	else if (chunked_at != codings)
		refuse(s, 400, "chunked is not the last transfer coding");
	else if (codings > 1)
		refuse(s, 501, "unsupported transfer coding");
}

unsigned http_framing_check(struct MHD_Connection *conn, const char *target, size_t target_len,
			    const char *version, const char **why)
{
	struct framing_scan s = { 0 };

	/* The version follows the whole target and one SP (see above). */
	if (target && version && version > target && (size_t)(version - target) != target_len + 1)
		refuse(&s, 400, "NUL byte or stray whitespace in the request-target");
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_field, &s);
	/* The last field is followed by the empty line: a zeroed LF at least. */
	if (s.prev_value && s.prev_value[s.prev_value_len + 1] != '\0')
		refuse(&s, 400, "NUL byte in a header field value");
	if (s.content_length_count && s.transfer_encoding_count)
		refuse(&s, 400, "both Content-Length and Transfer-Encoding");
	if (s.is_cl_mismatch)
		refuse(&s, 400, "conflicting Content-Length fields");
	if (s.content_length_count) {
		if (!s.content_length_len)
			refuse(&s, 400, "malformed Content-Length");
		for (size_t i = 0; i < s.content_length_len; i++)
			if (!isdigit((unsigned char)s.content_length[i]))
				refuse(&s, 400, "malformed Content-Length");
	}
	if (s.transfer_encoding_count > 1)
		refuse(&s, 400, "more than one Transfer-Encoding field");
	else if (s.transfer_encoding_count) {
		/* RFC 9112 §6.1: HTTP/1.0 has no chunked framing; the proxy in
		 * front of us and we could disagree on where the body ends. */
		if (version && strcmp(version, "HTTP/1.1") != 0)
			refuse(&s, 400, "Transfer-Encoding in an HTTP/1.0 request");
		check_transfer_encoding(&s);
	}
	*why = s.why;
	return s.status;
}
