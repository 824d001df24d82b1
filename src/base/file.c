/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole file into memory, capped (file.h): TLS certificates and
 * keys, AUID descriptors and schemas, xdmsctl's input files and standard
 * input. Three copies of it disagreed on the error of a file above the cap
 * ("too large" without a kind, "PATH is larger than N bytes", and "PATH:
 * larger than N bytes" with TOOBIG); the last won: it names the limit, and
 * the caller can tell a missing file from a large one. Also the secret
 * keys kept in files (file_key_load). Any thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

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

static bool read_exact(int fd, uint8_t *out, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, out + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

enum xdms_err file_key_load(const char *path, void *key, size_t len, const char *what, char **why)
{
	int fd;
	uint8_t extra;
	bool ok;

	*why = NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* First use: a new random key, written whole before anyone reads it. */
		ok = getrandom(key, len, 0) == (ssize_t)len && write(fd, key, len) == (ssize_t)len && fsync(fd) == 0;
		close(fd);
		if (!ok) {
			unlink(path);
			*why = xasprintf("cannot create the %s %s: %s", what, path, strerror(errno));
			return XDMS_ERR_IO;
		}
		return XDMS_ERR_OK;
	}
	if (errno != EEXIST) {
		*why = xasprintf("cannot create the %s %s: %s", what, path, strerror(errno));
		return XDMS_ERR_IO;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = xasprintf("cannot read the %s %s: %s", what, path, strerror(errno));
		return XDMS_ERR_IO;
	}
	ok = read_exact(fd, key, len) && read(fd, &extra, 1) == 0;
	close(fd);
	if (!ok) {
		*why = xasprintf("the %s %s is not %zu bytes", what, path, len);
		return XDMS_ERR_CORRUPT;
	}
	return XDMS_ERR_OK;
}
