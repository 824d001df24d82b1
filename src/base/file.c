/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole file into memory, capped (file.h): TLS certificates and
 * keys, AUID descriptors and schemas. Two copies of it disagreed on the
 * error of a file above the cap ("too large" without a kind against
 * "larger than N bytes" with TOOBIG); the second won: it names the limit,
 * and the caller can tell a missing file from a large one. Any thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"

enum xdms_err file_read(const char *path, size_t max, char **data, size_t *len, char **why)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;
	enum xdms_err err = XDMS_ERR_OK;

	*data = NULL;
	if (!f) {
		*why = xasprintf("%s: %s", path, strerror(errno));
		return XDMS_ERR_IO;
	}
	buf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n)) {
			*why = xasprintf("%s: larger than %zu bytes", path, max);
			err = XDMS_ERR_TOOBIG;
			goto out;
		}
	}
	*data = buf_take(&b, len);
out:
	fclose(f);
	buf_cleanup(&b);
	return err;
}
