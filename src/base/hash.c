/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a (Fowler, Noll, Vo), 64-bit parameters: XOR each byte into the
 * state, then multiply by the FNV prime. Five copies of it lived in the
 * tree (the string map, the xcap-caps and directory ETags, the patch
 * diff's unit hashes, the scanner's prefix table and the SIP client
 * index), two of them in 32 bits; the 32-bit users now take the low bits of
 * this one. Pure; any thread.
 */
#include "config.h"

#include <string.h>

#include "base/hash.h"

uint64_t fnv1a_add(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV1A_PRIME;
	}
	return h;
}

uint64_t fnv1a(const void *data, size_t len)
{
	return fnv1a_add(FNV1A_BASIS, data, len);
}

uint64_t fnv1a_str(const char *s)
{
	return fnv1a_add(FNV1A_BASIS, s, strlen(s));
}
