/* SPDX-License-Identifier: MIT */
/*
 * The one table from xcap outcomes to HTTP statuses. xcap decides what
 * happened (enum xcap_outcome, xcap.h) where it finds it; this file alone
 * says which status and reason phrase that is on the wire.
 *
 * Design: an X-macro with one row per outcome, built into an array indexed
 * by the outcome. It has exactly one row per outcome: the row count must
 * equal XCAP_OUTCOME__COUNT (checked at compile time) and -Woverride-init
 * (part of -Wextra) refuses an outcome named twice, so an outcome added to
 * xcap.h does not build until it has its status here.
 *
 * Threads: read-only data; any thread.
 */
#include "config.h"

#include "http/http.h"

#define HTTP_STATUS_MAP(X)                                  \
	X(OK, 200, "OK")                                    \
	X(CREATED, 201, "Created")                          \
	X(NOT_MODIFIED, 304, "Not Modified")                \
	X(BAD_REQUEST, 400, "Bad Request")                  \
	X(FORBIDDEN, 403, "Forbidden")                      \
	X(NOT_FOUND, 404, "Not Found")                      \
	X(NOT_ALLOWED, 405, "Method Not Allowed")           \
	X(CONFLICT, 409, "Conflict")                        \
	X(PRECONDITION_FAILED, 412, "Precondition Failed")  \
	X(TOO_LARGE, 413, "Content Too Large")              \
	X(URI_TOO_LONG, 414, "URI Too Long")                \
	X(UNSUPPORTED_TYPE, 415, "Unsupported Media Type")  \
	X(INTERNAL, 500, "Internal Server Error")           \
	X(UNAVAILABLE, 503, "Service Unavailable")          \
	X(STORE_FULL, 507, "Insufficient Storage")

static const struct {
	unsigned status;
	const char *reason;
} statuses[XCAP_OUTCOME__COUNT] = {
#define HTTP_STATUS_ROW(kind, code, text) [XCAP_OUTCOME_##kind] = { code, text },
	HTTP_STATUS_MAP(HTTP_STATUS_ROW)
#undef HTTP_STATUS_ROW
};

#define HTTP_STATUS_ONE(kind, code, text) +1
_Static_assert(0 HTTP_STATUS_MAP(HTTP_STATUS_ONE) == XCAP_OUTCOME__COUNT,
	       "every xcap outcome needs exactly one row in HTTP_STATUS_MAP");
#undef HTTP_STATUS_ONE

unsigned http_status_of(enum xcap_outcome o)
{
	return (unsigned)o < XCAP_OUTCOME__COUNT ? statuses[o].status : 500;
}

const char *http_reason_of(enum xcap_outcome o)
{
	return (unsigned)o < XCAP_OUTCOME__COUNT ? statuses[o].reason : "Internal Server Error";
}
