/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a, 64 bits (see hash.c): the one non-cryptographic hash of the tree,
 * for hash-table indexes (take the low bits) and content fingerprints (the
 * ETags of generated documents, "probably identical" in the patch diff).
 * Never for anything an attacker must not be able to collide. Pure; any
 * thread.
 */
#ifndef XDMS_BASE_HASH_H
#define XDMS_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_BASIS 0xcbf29ce484222325ULL
#define FNV1A_PRIME 0x100000001b3ULL

/* FNV-1a of @len bytes at @data, continuing from @h (FNV1A_BASIS to start). */
uint64_t fnv1a_add(uint64_t h, const void *data, size_t len);

/* FNV-1a of @len bytes at @data. */
uint64_t fnv1a(const void *data, size_t len);

/* FNV-1a of the NUL-terminated string @s. */
uint64_t fnv1a_str(const char *s);

#endif
