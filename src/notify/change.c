/* SPDX-License-Identifier: MIT */
/*
 * Change records and the version cache.
 *
 * A struct nchange is one record of the store's change feed as the notifier
 * sends it: shared (reference-counted) by every subscription it concerns,
 * with its RFC 5261 patch computed once (nchange_patch) from the version
 * kept in the cache to the stored document. The version cache keeps the last
 * version seen of watched documents, oldest first, within
 * notify.patch_cache bytes, so that the next change can be diffed.
 *
 * Invariants: a change's patch is computed only when the store still holds
 * its new version; a patch that names the AUID's secret element is dropped
 * (the subscriber then GETs). v_bytes is the sum of the cached lengths.
 *
 * Threads: the SIP loop thread.
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

void nchange_put(struct nchange *c)
{
	if (!c || --c->refs)
		return;
	free(c->key);
	free(c->sel);
	free(c->prev_etag);
	free(c->new_etag);
	free(c->ops);
	free(c->agg_from);
	free(c->agg_ops);
	free(c);
}

/* ---- secrets ---------------------------------------------------------------------------------- */

/* True when @text (operations, an element, or a node selector) names the
 * element @secret anywhere: as a tag ("<credentials", "<f:credentials") or
 * as a step of a path ("/credentials", ":credentials"). What touches it must
 * not go out in a NOTIFY. */
bool has_secret(const char *text, size_t len, const char *secret)
{
	size_t sl;

	if (!secret || !text)
		return false;
	sl = strlen(secret);
	for (size_t i = 1; i + sl <= len; i++) {
		char before = text[i - 1], after = i + sl < len ? text[i + sl] : '\0';

		if ((before == '<' || before == ':' || before == '/') && !memcmp(text + i, secret, sl) &&
		    (after == '\0' || strchr(" \t\r\n/>[\"'", after)))
			return true;
	}
	return false;
}

/* ---- the version cache (for patches) ------------------------------------------------------ */

void vcache_drop(struct notifier *n, const char *key)
{
	struct smap_slot *sl = smap_get(&n->vcache, key, false);
	struct vent *v;

	if (!sl || !sl->val)
		return;
	v = sl->val;
	sl->val = NULL;
	smap_drop(&n->vcache, sl);
	/* unlink from the age list */
	if (n->v_oldest == v) {
		n->v_oldest = v->newer;
	} else {
		for (struct vent *p = n->v_oldest; p; p = p->newer) {
			if (p->newer == v) {
				p->newer = v->newer;
				if (n->v_newest == v)
					n->v_newest = p;
				break;
			}
		}
	}
	if (n->v_newest == v)
		n->v_newest = NULL;
	n->v_bytes -= v->len;
	free(v->key);
	free(v->etag);
	free(v->data);
	free(v);
}

const struct vent *vcache_get(struct notifier *n, const char *key)
{
	struct smap_slot *sl = smap_get(&n->vcache, key, false);

	return sl ? sl->val : NULL;
}

void vcache_put(struct notifier *n, const char *key, const char *etag, const char *data, size_t len)
{
	struct vent *v;
	struct smap_slot *sl;

	vcache_drop(n, key);
	if (len > n->c->notify_patch_cache / 4)
		return;
	while (n->v_oldest && n->v_bytes + len > n->c->notify_patch_cache)
		vcache_drop(n, n->v_oldest->key);
	v = xcalloc(1, sizeof(*v));
	v->key = xstrdup(key);
	v->etag = xstrdup(etag);
	v->data = xmalloc(len ? len : 1);
	memcpy(v->data, data, len);
	v->len = len;
	sl = smap_get(&n->vcache, key, true);
	sl->val = v;
	if (n->v_newest)
		n->v_newest->newer = v;
	else
		n->v_oldest = v;
	n->v_newest = v;
	n->v_bytes += len;
}

struct nchange *nchange_new(struct notifier *n, const struct store_change *c)
{
	struct nchange *nc = xcalloc(1, sizeof(*nc));

	nc->refs = 1;
	nc->seq = c->seq;
	nc->key = xstrdup(c->selector);
	nc->sel = key_to_sel(c->selector);
	nc->prev_etag = dup_or_null(c->prev_etag);
	nc->new_etag = dup_or_null(c->new_etag);
	nc->auid = auid_of_key(n, c->selector);
	nc->prefix = auid_prefix(n, nc->auid);
	return nc;
}

/* The RFC 5261 patch of a change, from the version kept in the cache to the
 * stored document, when the store still holds the change's new version. */
void nchange_patch(struct notifier *n, struct store_read *rd, struct nchange *nc,
		   const struct store_change *c, bool wants_agg)
{
	struct store_doc cur;
	const struct vent *v;

	if (!nc->new_etag || store_doc_get(rd, c->selector, &cur)) {
		vcache_drop(n, c->selector); /* deleted */
		return;
	}
	if (strcmp(cur.etag, nc->new_etag) != 0)
		return; /* moved on already: the cached version may still start a chain */
	nc->new_len = cur.data_len;
	v = vcache_get(n, c->selector);
	if (v && nc->prev_etag && nc->auid && (wants_agg || !strcmp(v->etag, nc->prev_etag))) {
		bool is_step = !strcmp(v->etag, nc->prev_etag);
		char *detail = is_step && c->detail ? xstrndup(c->detail, c->detail_len) : NULL;
		bool is_too_big = false;
		struct buf ops;

		buf_init(&ops, cur.data_len + 1);
		if (!diff_patch(v->data, v->len, cur.data, cur.data_len, detail, nc->auid->ns, nc->prefix, &ops,
				&is_too_big) &&
		    !is_too_big) {
			if (has_secret(ops.data, ops.len, xcap_auid_secret(nc->auid))) {
				/* no patch: the ETags tell the subscriber to GET */
			} else if (is_step) {
				nc->has_patch = true;
				if (ops.len)
					nc->ops = buf_take(&ops, &nc->ops_len);
			} else {
				nc->has_agg_patch = true;
				nc->agg_from = xstrdup(v->etag);
				if (ops.len)
					nc->agg_ops = buf_take(&ops, &nc->agg_ops_len);
			}
		}
		buf_cleanup(&ops);
		free(detail);
	}
	vcache_put(n, c->selector, cur.etag, cur.data, cur.data_len);
}
