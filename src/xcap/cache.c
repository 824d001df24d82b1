/* SPDX-License-Identifier: MIT */
/*
 * The scan cache: stored document versions with their byte-offset scans,
 * shared by the node operations (element GET, PUT, DELETE) so that a large
 * document is not scanned again for every element request.
 *
 * Design: a version is named by its document selector and its ETag, and the
 * store never gives two versions the same ETag, so an entry can never be
 * stale: a changed document simply has a new name, and the old entry ages
 * out. Entries hold a copy of the bytes (the scan borrows them) and are
 * immutable once made. They are found through a hash of the ETag and kept in
 * least-recently-used order, bounded by their bytes (document plus scan); a
 * hit moves the entry to the front. Readers hold a reference while they use an entry, so eviction
 * only unlinks it and the last reference frees it.
 *
 * Threads: any; one mutex guards the array and the reference counts. Work on
 * an entry (selecting, splicing) happens outside the lock.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

/* Hash buckets, indexed by the ETag's hash: ETags are made by the store,
 * not by clients, so they cannot be chosen to collide. */
#define CACHE_BUCKETS 1024

struct xcap_view {
	char *selector;
	char etag[STORE_ETAG_MAX];
	char *data;
	size_t len;
	struct xml_scan *scan;
	size_t cost;        /* bytes charged against the cache's limit */
	unsigned refs;      /* the cache's own (while linked) and every holder's */
	bool is_linked;
	struct xcap_view *lru_prev, *lru_next; /* most recently used at the head */
	struct xcap_view *bucket_next;
};

struct xcap_cache {
	pthread_mutex_t mu;
	size_t max_bytes;
	size_t bytes;
	struct xcap_view *head, *tail;
	struct xcap_view *buckets[CACHE_BUCKETS];
};

static size_t view_cost(const struct xcap_view *v)
{
	return v->len + strlen(v->selector) + sizeof(*v) + v->scan->elem_count * sizeof(*v->scan->elems) +
	       v->scan->attr_count * sizeof(*v->scan->attrs) + v->scan->string_count * 64;
}

static void view_free(struct xcap_view *v)
{
	xml_scan_free(v->scan);
	free(v->data);
	free(v->selector);
	free(v);
}

static struct xcap_view **bucket_of(struct xcap_cache *c, const char *etag)
{
	return &c->buckets[fnv1a_str(etag) & (CACHE_BUCKETS - 1)];
}

struct xcap_cache *xcap_cache_create(size_t max_bytes)
{
	struct xcap_cache *c;

	if (!max_bytes)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		abort();
	c->max_bytes = max_bytes;
	return c;
}

static void lru_remove(struct xcap_cache *c, struct xcap_view *v)
{
	if (v->lru_prev)
		v->lru_prev->lru_next = v->lru_next;
	else
		c->head = v->lru_next;
	if (v->lru_next)
		v->lru_next->lru_prev = v->lru_prev;
	else
		c->tail = v->lru_prev;
	v->lru_prev = v->lru_next = NULL;
}

static void lru_push(struct xcap_cache *c, struct xcap_view *v)
{
	v->lru_prev = NULL;
	v->lru_next = c->head;
	if (c->head)
		c->head->lru_prev = v;
	c->head = v;
	if (!c->tail)
		c->tail = v;
}

/* Unlinks @v from the cache (the caller holds the lock). */
static void unlink_view(struct xcap_cache *c, struct xcap_view *v)
{
	struct xcap_view **p = bucket_of(c, v->etag);

	while (*p && *p != v)
		p = &(*p)->bucket_next;
	if (*p)
		*p = v->bucket_next;
	lru_remove(c, v);
	c->bytes -= v->cost;
	v->is_linked = false;
	if (--v->refs == 0)
		view_free(v);
}

void xcap_cache_destroy(struct xcap_cache *c)
{
	if (!c)
		return;
	while (c->head)
		unlink_view(c, c->head);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* The linked view of @etag and @selector, or NULL (the caller holds the lock). */
static struct xcap_view *find(struct xcap_cache *c, const char *selector, const char *etag)
{
	for (struct xcap_view *v = *bucket_of(c, etag); v; v = v->bucket_next)
		if (strcmp(v->etag, etag) == 0 && strcmp(v->selector, selector) == 0)
			return v;
	return NULL;
}

const struct xcap_view *xcap_cache_get(struct xcap_cache *c, const char *selector, const char *etag)
{
	struct xcap_view *v;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->mu);
	v = find(c, selector, etag);
	if (v) {
		lru_remove(c, v);
		lru_push(c, v);
		v->refs++;
	}
	pthread_mutex_unlock(&c->mu);
	return v;
}

const struct xcap_view *xcap_cache_put(struct xcap_cache *c, const char *selector, const char *etag, char *data,
				       size_t len, struct xml_scan *scan)
{
	struct xcap_view *v = xcalloc(1, sizeof(*v)), *old, **b;

	v->selector = xstrdup(selector);
	snprintf(v->etag, sizeof(v->etag), "%s", etag);
	v->data = data;
	v->len = len;
	v->scan = scan;
	v->cost = view_cost(v);
	v->refs = 1; /* the caller's */
	if (!c || v->cost > c->max_bytes / 2)
		return v; /* too large to keep: the caller still gets its view */
	pthread_mutex_lock(&c->mu);
	/* Another thread cached the same version meanwhile: keep one. */
	old = find(c, selector, etag);
	if (old)
		unlink_view(c, old);
	while (c->tail && c->bytes + v->cost > c->max_bytes)
		unlink_view(c, c->tail);
	b = bucket_of(c, etag);
	v->bucket_next = *b;
	*b = v;
	lru_push(c, v);
	c->bytes += v->cost;
	v->is_linked = true;
	v->refs++; /* the cache's */
	pthread_mutex_unlock(&c->mu);
	return v;
}

void xcap_cache_release(struct xcap_cache *c, const struct xcap_view *cv)
{
	struct xcap_view *v = (struct xcap_view *)cv;
	bool is_last;

	if (!v)
		return;
	if (c)
		pthread_mutex_lock(&c->mu);
	is_last = --v->refs == 0;
	if (c)
		pthread_mutex_unlock(&c->mu);
	if (is_last)
		view_free(v);
}

const char *xcap_view_data(const struct xcap_view *v, size_t *len)
{
	*len = v->len;
	return v->data;
}

const struct xml_scan *xcap_view_scan(const struct xcap_view *v)
{
	return v->scan;
}

const struct xcap_view *xcap_view_of(struct xcap *x, const char *selector, const char *etag, const char *data,
				     size_t len)
{
	const struct xcap_view *v;
	struct xml_scan *scan = NULL;
	char *copy;

	if (!x->cache)
		return NULL;
	v = xcap_cache_get(x->cache, selector, etag);
	if (v)
		return v;
	copy = xmalloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	/* The bytes come from the store, checked when they were written. */
	if (xml_scan_build_stored(copy, len, &scan)) {
		free(copy);
		return NULL;
	}
	return xcap_cache_put(x->cache, selector, etag, copy, len, scan);
}
