/* SPDX-License-Identifier: MIT */
/*
 * A string map (smap.h): key -> an unordered set of items and an optional
 * value, a hash table with chaining. The notifier's indexes (document,
 * collection, Call-ID, identity, id) and its version cache are built on it.
 *
 * Design: power-of-two bucket arrays, indexed by the low bits of FNV-1a,
 * that grow by four when the load passes two; a slot holds its items in an
 * array and is removed once it has neither items nor a value. Keys are
 * copied; items and values are borrowed.
 *
 * Threads: none of its own; a map belongs to whoever holds it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "base/smap.h"


struct smap_slot *smap_get(struct smap *m, const char *key, bool create)
{
	uint64_t h = fnv1a_str(key);
	struct smap_slot *s;

	if (m->nb) {
		for (s = m->b[h & (m->nb - 1)]; s; s = s->next)
			if (strcmp(s->key, key) == 0)
				return s;
	}
	if (!create)
		return NULL;
	if (m->count >= m->nb * 2) {
		size_t nb = m->nb ? m->nb * 4 : 256;
		struct smap_slot **b = xcalloc(nb, sizeof(*b));

		for (size_t i = 0; i < m->nb; i++) {
			while (m->b[i]) {
				struct smap_slot *x = m->b[i];
				uint64_t xh = fnv1a_str(x->key);

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

void smap_drop(struct smap *m, struct smap_slot *dead)
{
	uint64_t h = fnv1a_str(dead->key);

	for (struct smap_slot **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
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
	struct smap_slot *s = smap_get(m, key, true);

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
	struct smap_slot *s = smap_get(m, key, false);

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
			struct smap_slot *x = m->b[i];

			m->b[i] = x->next;
			free(x->key);
			free(x->items);
			free(x);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
