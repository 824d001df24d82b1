/* SPDX-License-Identifier: MIT */
/*
 * The error table's strings and names, generated from XDMS_ERR_MAP so the
 * enum, the text and the name can never drift apart.
 */
#include "config.h"

#include <errno.h>

#include "base/err.h"

static const char *const err_text[] = {
#define XDMS_ERR_TEXT(name, text) text,
	XDMS_ERR_MAP(XDMS_ERR_TEXT)
#undef XDMS_ERR_TEXT
};

static const char *const err_name[] = {
#define XDMS_ERR_NAME(name, text) #name,
	XDMS_ERR_MAP(XDMS_ERR_NAME)
#undef XDMS_ERR_NAME
};

const char *xdms_err_str(enum xdms_err err)
{
	if ((unsigned)err >= XDMS_ERR__COUNT)
		return "unknown error";
	return err_text[err];
}

const char *xdms_err_name(enum xdms_err err)
{
	if ((unsigned)err >= XDMS_ERR__COUNT)
		return "UNKNOWN";
	return err_name[err];
}

enum xdms_err xdms_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return XDMS_ERR_OK;
	case ENOENT:
		return XDMS_ERR_NOTFOUND;
	case EEXIST:
		return XDMS_ERR_EXISTS;
	case EACCES:
	case EPERM:
		return XDMS_ERR_DENIED;
	case ENOSPC:
		return XDMS_ERR_FULL;
	case EINVAL:
		return XDMS_ERR_INVAL;
	case EBUSY:
	case EAGAIN:
		return XDMS_ERR_BUSY;
	default:
		return XDMS_ERR_IO;
	}
}
