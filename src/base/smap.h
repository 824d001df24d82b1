/* SPDX-License-Identifier: MIT */
/*
 * A string map (see smap.c): key -> an unordered set of items and an
 * optional value. A zeroed struct smap is an empty map. Keys are copied;
 * items and values are borrowed (the caller owns them). Not thread-safe:
 * one thread at a time per map.
 */
#ifndef XDMS_BASE_SMAP_H
#define XDMS_BASE_SMAP_H

#include <stdbool.h>
#include <stddef.h>

struct smap_slot {
	char *key;
	void **items;  /* n of them, in no particular order */
	size_t n, cap;
	void *val;     /* the caller's; a slot with a value stays when empty */
	struct smap_slot *next;
};

struct smap {
	struct smap_slot **b; /* nb buckets (a power of two, or 0) */
	size_t nb, count;     /* count: slots */
};

/* The slot of @key, or NULL; with @create, a new empty slot when there is
 * none. Valid until the slot is dropped or the map freed. */
struct smap_slot *smap_get(struct smap *m, const char *key, bool create);

/* Removes slot @dead (from smap_get) whatever it holds. */
void smap_drop(struct smap *m, struct smap_slot *dead);

/* Adds @item to the set of @key (once: adding it again does nothing). */
void smap_add(struct smap *m, const char *key, void *item);

/* Removes @item from the set of @key; drops the slot when it is left with
 * neither items nor a value. */
void smap_remove(struct smap *m, const char *key, void *item);

/* Frees every slot (not the items or values) and empties the map. */
void smap_free(struct smap *m);

#endif
