/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole file into memory, capped (file.h): TLS certificates and
 * keys, AUID descriptors and schemas, xdmsctl's input files and standard
 * input. Three copies of it disagreed on the error of a file above the cap
 * ("too large" without a kind, "PATH is larger than N bytes", and "PATH:
 * larger than N bytes" with TOOBIG); the last won: it names the limit, and
 * the caller can tell a missing file from a large one. Any thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"

enum xdms_err file_read_stream(FILE *f, const char *name, size_t max, char **data, size_t *len, char **why)
{
	struct buf b;
	char chunk[8192];
	size_t n;

	*data = NULL;
	buf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n)) {
			*why = xasprintf("%s: larger than %zu bytes", name, max);
			buf_cleanup(&b);
			return XDMS_ERR_TOOBIG;
		}
	}
	*data = buf_take(&b, len);
	return XDMS_ERR_OK;
}

enum xdms_err file_read(const char *path, size_t max, char **data, size_t *len, char **why)
{
	FILE *f = fopen(path, "rb");
	enum xdms_err err;

	*data = NULL;
	if (!f) {
		*why = xasprintf("%s: %s", path, strerror(errno));
		return XDMS_ERR_IO;
	}
	err = file_read_stream(f, path, max, data, len, why);
	fclose(f);
	return err;
}
