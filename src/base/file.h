/* SPDX-License-Identifier: MIT */
/* Reading a whole file (see file.c). Any thread. */
#ifndef XDMS_BASE_FILE_H
#define XDMS_BASE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

/*
 * Reads the file at @path into *data (heap, NUL-terminated, the caller
 * frees it) and its length into *len (when @len is not NULL). At most @max
 * bytes: TOOBIG for a larger file. IO when it cannot be opened or read.
 * On failure *why (heap, the caller frees it) says what happened, naming
 * @path, and *data is NULL.
 */
enum xdms_err file_read(const char *path, size_t max, char **data, size_t *len, char **why) XDMS_WUR;

/* The same for an open stream @f (standard input, say), read to its end and
 * left open; @name is what *why calls it. TOOBIG only. */
enum xdms_err file_read_stream(FILE *f, const char *name, size_t max, char **data, size_t *len,
			       char **why) XDMS_WUR;

/*
 * A secret key of exactly @len bytes kept in the file @path: read, or, when
 * the file does not exist, made from random bytes and written (mode 0600,
 * synced) before it is used. CORRUPT when the file holds any other number
 * of bytes, IO when it cannot be made or read; *why (heap) then names the
 * key as @what ("credential key") and @path.
 */
enum xdms_err file_key_load(const char *path, void *key, size_t len, const char *what, char **why) XDMS_WUR;

#endif
