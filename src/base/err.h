/* SPDX-License-Identifier: MIT */
/*
 * The project's one error table. Every fallible function returns an
 * enum xdms_err; 0 is success. Foreign codes (MDB_*, errno, libxml2,
 * CURLcode, osip) are translated where they enter, never passed through.
 */
#ifndef XDMS_BASE_ERR_H
#define XDMS_BASE_ERR_H

#define XDMS_ERR_MAP(X)                                               \
	X(OK, "success")                                              \
	X(INVAL, "invalid argument")                                  \
	X(NOTFOUND, "not found")                                      \
	X(EXISTS, "already exists")                                   \
	X(PRECOND, "precondition failed")                             \
	X(CONFLICT, "conflict with the stored data")                  \
	X(TOOBIG, "too large")                                        \
	X(FULL, "storage is full")                                    \
	X(STORE, "storage failure")                                   \
	X(IO, "input/output error")                                   \
	X(PARSE, "parse error")                                       \
	X(DENIED, "permission denied")                                \
	X(UNAUTH, "authentication required")                          \
	X(BUSY, "busy or shutting down")                              \
	X(CORRUPT, "stored data is corrupt")                          \
	X(UNSUPPORTED, "not supported")

enum xdms_err {
#define XDMS_ERR_ENUM(name, text) XDMS_ERR_##name,
	XDMS_ERR_MAP(XDMS_ERR_ENUM)
#undef XDMS_ERR_ENUM
	XDMS_ERR__COUNT
};

#define XDMS_WUR __attribute__((warn_unused_result))

/* A static, human-readable sentence for @err. Never NULL. */
const char *xdms_err_str(enum xdms_err err);

/* The symbolic name ("NOTFOUND") of @err. Never NULL. */
const char *xdms_err_name(enum xdms_err err);

/* Translates an errno value into the table. */
enum xdms_err xdms_err_from_errno(int errnum);

#endif
