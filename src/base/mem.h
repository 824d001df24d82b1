/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers. Allocation failure aborts the process: every size
 * that comes from input is capped before it reaches these, so running out
 * of memory is an operational fault, not a request error.
 */
#ifndef XDMS_BASE_MEM_H
#define XDMS_BASE_MEM_H

#include <stddef.h>

void *xmalloc(size_t size) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *ptr, size_t size) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* Copies @len bytes of @s and NUL-terminates the copy. */
char *xstrndup(const char *s, size_t len) __attribute__((malloc, returns_nonnull));
/* printf into a fresh heap string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));

#endif
