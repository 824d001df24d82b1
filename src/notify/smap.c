/* SPDX-License-Identifier: MIT */
/*
 * The notifier's string map: a key -> set of items (and an optional value)
 * hash table with chaining, used for its indexes (document, collection,
 * Call-ID, identity, id) and the version cache.
 *
 * Design: power-of-two bucket arrays that grow by four when the load passes
 * two; a slot holds an unordered set of pointers and is removed once it is
 * empty and carries no value. Keys are copied. Also the notifier's small
 * clock, hash and string helpers.
 *
 * Threads: none of its own; a map belongs to whoever holds it (the notifier's
 * maps are touched on the SIP loop thread only).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "notify/notify_int.h"

/* ---- small helpers ----------------------------------------------------------------------- */

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* ---- string map -------------------------------------------------------------------------- */

struct slot *smap_get(struct smap *m, const char *key, bool create)
{
	uint64_t h = hash_bytes(key, strlen(key));
	struct slot *s;

	if (m->nb) {
		for (s = m->b[h & (m->nb - 1)]; s; s = s->next)
			if (strcmp(s->key, key) == 0)
				return s;
	}
	if (!create)
		return NULL;
	if (m->count >= m->nb * 2) {
		size_t nb = m->nb ? m->nb * 4 : 256;
		struct slot **b = xcalloc(nb, sizeof(*b));

		for (size_t i = 0; i < m->nb; i++) {
			while (m->b[i]) {
				struct slot *x = m->b[i];
				uint64_t xh = hash_bytes(x->key, strlen(x->key));

				m->b[i] = x->next;
				x->next = b[xh & (nb - 1)];
				b[xh & (nb - 1)] = x;
			}
		}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	s = xcalloc(1, sizeof(*s));
	s->key = xstrdup(key);
	s->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = s;
	m->count++;
	return s;
}

void smap_drop(struct smap *m, struct slot *dead)
{
	uint64_t h = hash_bytes(dead->key, strlen(dead->key));

	for (struct slot **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == dead) {
			*pp = dead->next;
			m->count--;
			free(dead->key);
			free(dead->items);
			free(dead);
			return;
		}
	}
}

void smap_add(struct smap *m, const char *key, void *item)
{
	struct slot *s = smap_get(m, key, true);

	for (size_t i = 0; i < s->n; i++)
		if (s->items[i] == item)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
	}
	s->items[s->n++] = item;
}

void smap_remove(struct smap *m, const char *key, void *item)
{
	struct slot *s = smap_get(m, key, false);

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->items[i] == item) {
			s->items[i] = s->items[--s->n];
			break;
		}
	}
	if (!s->n && !s->val)
		smap_drop(m, s);
}

void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct slot *x = m->b[i];

			m->b[i] = x->next;
			free(x->key);
			free(x->items);
			free(x);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
