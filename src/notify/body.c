/* SPDX-License-Identifier: MIT */
/*
 * Building the xcap-diff body of one NOTIFY (RFC 5874): a page of full
 * state, or the queued changes of a subscription, as diff_document and
 * diff_node entries for diff_render().
 *
 * Design: a struct body borrows strings from the changes and entries it
 * reports and owns the few it makes (body_keep). Pages are cut at
 * notify.max_body by an estimate of the rendered size. In aggregate mode
 * consecutive changes of one document join into one transition, with one
 * patch when their patches chain.
 *
 * Invariants: a body never reports a node's content, or a patch, that names
 * the AUID's secret element.
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

/* ---- building xcap-diff bodies -------------------------------------------------------------- */

static char *body_keep(struct body *b, char *s)
{
	if (b->no == b->co) {
		b->co = b->co ? b->co * 2 : 16;
		b->owned = xrealloc(b->owned, b->co * sizeof(*b->owned));
	}
	b->owned[b->no++] = s;
	return s;
}

static struct diff_document *body_doc(struct body *b)
{
	if (b->nd == b->cd) {
		b->cd = b->cd ? b->cd * 2 : 16;
		b->docs = xrealloc(b->docs, b->cd * sizeof(*b->docs));
		b->origin = xrealloc(b->origin, b->cd * sizeof(*b->origin));
	}
	memset(&b->docs[b->nd], 0, sizeof(b->docs[0]));
	b->origin[b->nd] = NULL;
	return &b->docs[b->nd++];
}

static void body_prefix(struct body *b, const char *prefix, const char *ns)
{
	for (size_t i = 0; i < b->np; i += 2)
		if (!strcmp(b->prefixes[i], prefix))
			return;
	if (b->np + 2 >= sizeof(b->prefixes) / sizeof(b->prefixes[0]))
		return;
	b->prefixes[b->np++] = prefix;
	b->prefixes[b->np++] = ns;
	b->prefixes[b->np] = NULL;
}

void body_cleanup(struct body *b)
{
	for (size_t i = 0; i < b->no; i++)
		free(b->owned[i]);
	free(b->owned);
	free(b->docs);
	free(b->origin);
	free(b->nodes);
	memset(b, 0, sizeof(*b));
}

/* Adds the report of node entry @e against the current document (NULL: gone),
 * unless it is the same as the last one and @only_changed. */
static void body_node(struct body *b, struct entry *e, const struct store_doc *doc, bool only_changed)
{
	struct diff_node *dn;
	struct buf content;
	bool is_attr = false, exists = false;
	uint64_t h;

	buf_init(&content, e->auid ? e->auid->max_document + 1024 : (size_t)1 << 24);
	if (doc && diff_node_content(doc->data, doc->data_len, e->node_sel, e->query, e->auid->ns, &content,
				     &is_attr, &exists))
		exists = false;
	if (!doc) {
		size_t l = strlen(e->node_sel);
		/* the last step decides: an attribute step starts with "@" */
		const char *last = strrchr(e->node_sel, '/');

		is_attr = (last ? last[1] : e->node_sel[0]) == '@' && l;
	}
	if (exists && (has_secret(e->node_sel, strlen(e->node_sel), xcap_auid_secret(e->auid)) ||
		       has_secret(content.data, content.len, xcap_auid_secret(e->auid))))
		buf_reset(&content); /* reported as existing, without its content: GET it */
	h = exists ? fnv1a(content.data ? content.data : "", content.len) ^ 1 : 0;
	if (only_changed && e->has_reported && e->last_hash == h) {
		buf_cleanup(&content);
		return;
	}
	e->has_reported = true;
	e->last_hash = h;
	if (b->nn == b->cn) {
		b->cn = b->cn ? b->cn * 2 : 8;
		b->nodes = xrealloc(b->nodes, b->cn * sizeof(*b->nodes));
	}
	dn = &b->nodes[b->nn++];
	memset(dn, 0, sizeof(*dn));
	dn->sel = e->sel;
	dn->is_attribute = is_attr;
	dn->exists = exists;
	if (exists) {
		dn->content_len = content.len;
		dn->content = content.len ? body_keep(b, buf_take(&content, NULL)) : NULL;
	}
	b->estimate += strlen(e->sel) + content.len + 64;
	buf_cleanup(&content);
}

struct fs_walk {
	struct notifier *n;
	struct sub *s;
	struct body *b;
	bool is_full;       /* the page is full: stop */
	bool wants_version; /* keep versions for patches */
};

static void full_add_doc(struct fs_walk *fw, const char *key, const struct store_doc *doc)
{
	struct diff_document *d = body_doc(fw->b);

	d->sel = body_keep(fw->b, key_to_sel(key));
	d->new_etag = body_keep(fw->b, xstrdup(doc->etag));
	fw->b->estimate += strlen(d->sel) + strlen(doc->etag) + 40;
	if (fw->wants_version)
		vcache_put(fw->n, key, doc->etag, doc->data, doc->data_len);
}

static int full_visit(void *arg, const char *key, const struct store_doc *doc)
{
	struct fs_walk *fw = arg;

	if (fw->b->estimate + strlen(key) * 2 + 100 > fw->n->c->notify_max_body && fw->b->nd) {
		fw->is_full = true;
		return 1;
	}
	full_add_doc(fw, key, doc);
	free(fw->s->full_after);
	fw->s->full_after = xstrdup(key);
	return 0;
}

/* One page of full state into @b. Sets s->inflight_full_done when it is the last. */
void body_build_full(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b)
{
	struct fs_walk fw = { .n = n, .s = s, .b = b, .wants_version = s->mode != MODE_NO_PATCHING };

	for (; s->full_entry < s->entry_count; s->full_entry++) {
		struct entry *e = &s->entries[s->full_entry];
		struct store_doc doc;
		bool has_doc;

		if (e->kind == ENTRY_COLL) {
			if (store_doc_list_after(rd, e->key, s->full_after, full_visit, &fw))
				log_warn("notify: listing %s failed", e->key);
			if (fw.is_full) {
				s->inflight_full_done = false;
				return;
			}
			free(s->full_after);
			s->full_after = NULL;
			continue;
		}
		if (b->nd + b->nn && b->estimate + 512 > n->c->notify_max_body) {
			s->inflight_full_done = false;
			return;
		}
		has_doc = store_doc_get(rd, e->key, &doc) == XDMS_ERR_OK;
		if (e->kind == ENTRY_DOC) {
			if (has_doc)
				full_add_doc(&fw, e->key, &doc);
		} else {
			body_node(b, e, has_doc ? &doc : NULL, false);
		}
	}
	s->inflight_full_done = true;
}

size_t body_build_changes(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b)
{
	size_t k = 0;
	bool *node_touched = xcalloc(s->entry_count ? s->entry_count : 1, sizeof(bool));

	for (; k < s->pend_count; k++) {
		struct nchange *c = s->pend[k];
		bool has_doc_entry = false;
		size_t est = strlen(c->sel) + 120 + (s->mode != MODE_NO_PATCHING ? c->ops_len : 0);

		if (k && b->estimate + est > n->c->notify_max_body)
			break;
		for (size_t i = 0; i < s->entry_count; i++) {
			if (!entry_matches(&s->entries[i], c->key))
				continue;
			if (s->entries[i].kind == ENTRY_NODE)
				node_touched[i] = true;
			else
				has_doc_entry = true;
		}
		if (!has_doc_entry)
			continue;
		if (s->mode == MODE_AGGREGATE) {
			/* Join the chain of the same document already in the body. */
			struct diff_document *d = NULL;
			size_t dj = 0;

			for (size_t j = b->nd; j-- > 0;) {
				if (!strcmp(b->docs[j].sel, c->sel)) {
					d = &b->docs[j];
					dj = j;
					break;
				}
			}
			if (d && d->new_etag && c->prev_etag && !strcmp(d->new_etag, c->prev_etag)) {
				bool had_patch = d->ops || d->is_body_not_changed;

				d->new_etag = c->new_etag;
				d->is_body_not_changed = false;
				if (had_patch && c->has_patch && c->new_etag) {
					size_t len = d->ops_len + c->ops_len;

					if (len && (!c->new_len || len <= c->new_len)) {
						char *joined = xmalloc(len + 1);

						memcpy(joined, d->ops ? d->ops : "", d->ops_len);
						memcpy(joined + d->ops_len, c->ops ? c->ops : "", c->ops_len);
						joined[len] = '\0';
						d->ops = body_keep(b, joined);
						d->ops_len = len;
					} else {
						d->ops = NULL;
						d->ops_len = 0;
						d->is_body_not_changed = !len;
					}
				} else {
					d->ops = NULL;
					d->ops_len = 0;
				}
				/* Steps without patches, but one patch for the whole chain. */
				if (!d->ops && !d->is_body_not_changed && c->has_agg_patch && d->prev_etag &&
				    !strcmp(c->agg_from, d->prev_etag)) {
					d->ops = c->agg_ops;
					d->ops_len = c->agg_ops_len;
					d->is_body_not_changed = !c->agg_ops;
				}
				b->origin[dj] = c;
				b->estimate += c->ops_len + c->agg_ops_len + 20;
				continue;
			}
		}
		{
			struct diff_document *d = body_doc(b);

			b->origin[b->nd - 1] = c;
			d->sel = c->sel;
			d->prev_etag = c->prev_etag;
			d->new_etag = c->new_etag;
			if (s->mode != MODE_NO_PATCHING && c->has_patch) {
				d->ops = c->ops;
				d->ops_len = c->ops_len;
				d->is_body_not_changed = !c->ops;
			}
			b->estimate += est;
		}
	}
	/* Aggregated chains that began with a creation and ended deleted say nothing;
	 * the prefixes of the patches that stay are declared on the root. */
	for (size_t j = 0; j < b->nd; j++) {
		if (!b->docs[j].prev_etag && !b->docs[j].new_etag) {
			memmove(&b->docs[j], &b->docs[j + 1], (b->nd - j - 1) * sizeof(b->docs[0]));
			b->nd--;
			j--;
		}
	}
	for (size_t j = 0; j < b->nd; j++)
		if (b->docs[j].ops && b->origin[j] && b->origin[j]->auid)
			body_prefix(b, b->origin[j]->prefix, b->origin[j]->auid->ns);
	for (size_t i = 0; i < s->entry_count; i++) {
		struct store_doc doc;

		if (!node_touched[i])
			continue;
		body_node(b, &s->entries[i], store_doc_get(rd, s->entries[i].key, &doc) ? NULL : &doc, true);
	}
	free(node_touched);
	return k;
}
