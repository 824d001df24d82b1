/* SPDX-License-Identifier: MIT */
/*
 * Subscription records: the in-memory indexes of subscriptions and their
 * persistence in the store's subs database.
 *
 * Design: a subscription is registered in five indexes (id, Call-ID,
 * identity, and document or collection per entry). Its record is a small
 * line-oriented text ("key value" lines) written through the store's writer
 * in batches (struct pbatch), so record writes share the group commit; a
 * batch's done callback hands its result back to the SIP loop, where the
 * batch's continuation runs. Progress (acknowledged feed sequence, CSeq
 * block) is marked dirty and flushed every FLUSH_MS.
 *
 * Invariants: a subscription is in every index or in none; the record of a
 * new or refreshed subscription is durable before its 200.
 *
 * Threads: the SIP loop thread, except pbatch_done (the store's writer
 * thread), which only hands the batch to the loop under wake_lock.
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

static void id_key(uint64_t id, char *out)
{
	snprintf(out, 17, "%016" PRIx64, id);
}

/* ---- indexes ------------------------------------------------------------------------------ */

void sub_index(struct notifier *n, struct sub *s, bool add)
{
	for (size_t i = 0; i < s->entry_count; i++) {
		struct smap *m = s->entries[i].kind == ENTRY_COLL ? &n->by_coll : &n->by_doc;

		if (add)
			smap_add(m, s->entries[i].key, s);
		else
			smap_remove(m, s->entries[i].key, s);
	}
}

struct sub *sub_find_dialog(struct notifier *n, const char *call_id, const char *remote_tag,
			    const char *local_tag)
{
	struct smap_slot *sl = smap_get(&n->by_call, call_id, false);

	for (size_t i = 0; sl && i < sl->n; i++) {
		struct sub *s = sl->items[i];

		if (s->state != SUB_DEAD && s->remote_tag && remote_tag && strcmp(s->remote_tag, remote_tag) == 0 &&
		    strcmp(s->local_tag, local_tag) == 0)
			return s;
	}
	return NULL;
}

size_t user_sub_count(struct notifier *n, const char *identity)
{
	struct smap_slot *sl = smap_get(&n->by_user, identity, false);

	return sl ? sl->n : 0;
}

void sub_free(struct sub *s)
{
	free(s->call_id);
	free(s->local_uri);
	free(s->local_tag);
	free(s->remote_uri);
	free(s->remote_tag);
	free(s->target);
	free(s->dest);
	for (size_t i = 0; i < s->route_count; i++)
		free(s->routes[i]);
	free(s->routes);
	free(s->identity);
	for (size_t i = 0; i < s->entry_count; i++)
		entry_cleanup(&s->entries[i]);
	free(s->entries);
	for (size_t i = 0; i < s->pend_count; i++)
		nchange_put(s->pend[i]);
	free(s->pend);
	free(s->full_after);
	free(s->page_after);
	free(s);
}

void sub_register(struct notifier *n, struct sub *s)
{
	char k[17];

	id_key(s->id, k);
	smap_add(&n->by_id, k, s);
	smap_add(&n->by_call, s->call_id, s);
	smap_add(&n->by_user, s->identity, s);
	sub_index(n, s, true);
	n->sub_count++;
	atomic_store(&n->n_subs, n->sub_count);
}

void sub_unregister(struct notifier *n, struct sub *s)
{
	char k[17];

	id_key(s->id, k);
	smap_remove(&n->by_id, k, s);
	smap_remove(&n->by_call, s->call_id, s);
	smap_remove(&n->by_user, s->identity, s);
	sub_index(n, s, false);
	n->sub_count--;
	atomic_store(&n->n_subs, n->sub_count);
}

/* ---- records ------------------------------------------------------------------------------- */

static char *sub_serialize(const struct sub *s, size_t *len)
{
	struct buf b;
	enum xdms_err err;

	buf_init(&b, (size_t)1 << 24);
	err = buf_printf(&b, "v 1\ncall %s\nluri %s\nltag %s\nruri %s\nrtag %s\ntarget %s\n", s->call_id,
			 s->local_uri, s->local_tag, s->remote_uri, s->remote_tag ? s->remote_tag : "",
			 s->target);
	for (size_t i = 0; !err && i < s->route_count; i++)
		err = buf_printf(&b, "route %s\n", s->routes[i]);
	if (!err)
		err = buf_printf(&b,
				 "tp %s\ndest %s\nwho %s\npriv %d\nmode %d\nexp %" PRId64 "\ncseq %u\n"
				 "acked %" PRIu64 "\nfull %d\n",
				 s->transport == SIP_TRANSPORT_TCP ? "tcp" : "udp", s->dest ? s->dest : "",
				 s->identity, s->is_privileged, (int)s->mode, s->expires_ms, s->cseq_block,
				 s->acked_seq, s->is_full_acked);
	for (size_t i = 0; !err && i < s->entry_count; i++)
		err = buf_printf(&b, "e %s\n", s->entries[i].text);
	return buf_take(&b, len);
}

struct sub *sub_deserialize(const struct notifier *n, uint64_t id, const char *rec, size_t len,
			    const char **why)
{
	struct sub *s = xcalloc(1, sizeof(*s));
	char *copy = xstrndup(rec, len), *line, *save = NULL;
	bool ok = true;

	s->id = id;
	for (line = strtok_r(copy, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');

		if (!v) {
			ok = false;
			break;
		}
		*v++ = '\0';
		if (!strcmp(line, "v"))
			ok = !strcmp(v, "1");
		else if (!strcmp(line, "call"))
			s->call_id = xstrdup(v);
		else if (!strcmp(line, "luri"))
			s->local_uri = xstrdup(v);
		else if (!strcmp(line, "ltag"))
			s->local_tag = xstrdup(v);
		else if (!strcmp(line, "ruri"))
			s->remote_uri = xstrdup(v);
		else if (!strcmp(line, "rtag"))
			s->remote_tag = dup_or_null(v);
		else if (!strcmp(line, "target"))
			s->target = xstrdup(v);
		else if (!strcmp(line, "route")) {
			s->routes = xrealloc(s->routes, (s->route_count + 1) * sizeof(*s->routes));
			s->routes[s->route_count++] = xstrdup(v);
		} else if (!strcmp(line, "tp"))
			s->transport = !strcmp(v, "tcp") ? SIP_TRANSPORT_TCP : SIP_TRANSPORT_UDP;
		else if (!strcmp(line, "dest"))
			s->dest = dup_or_null(v);
		else if (!strcmp(line, "who"))
			s->identity = xstrdup(v);
		else if (!strcmp(line, "priv"))
			s->is_privileged = atoi(v) != 0;
		else if (!strcmp(line, "mode"))
			s->mode = (enum mode)(atoi(v) % 3);
		else if (!strcmp(line, "exp"))
			s->expires_ms = strtoll(v, NULL, 10);
		else if (!strcmp(line, "cseq"))
			s->cseq_block = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "acked"))
			s->acked_seq = strtoull(v, NULL, 10);
		else if (!strcmp(line, "full"))
			s->is_full_acked = atoi(v) != 0;
		else if (!strcmp(line, "e")) {
			const char *ewhy;

			s->entries = xrealloc(s->entries, (s->entry_count + 1) * sizeof(*s->entries));
			if (entry_parse(n, v, s->identity ? s->identity : "", true, &s->entries[s->entry_count],
					&ewhy)) {
				*why = ewhy;
				ok = false;
			} else {
				s->entry_count++;
			}
		}
	}
	free(copy);
	if (ok && (!s->call_id || !s->local_uri || !s->local_tag || !s->remote_uri || !s->target ||
		   !s->identity || !s->entry_count)) {
		*why = "incomplete subscription record";
		ok = false;
	}
	if (!ok) {
		if (!*why)
			*why = "malformed subscription record";
		sub_free(s);
		return NULL;
	}
	return s;
}

void refresh_free(struct refresh *rf)
{
	if (!rf)
		return;
	for (size_t i = 0; i < rf->ne; i++)
		entry_cleanup(&rf->es[i]);
	free(rf->es);
	free(rf->target);
	free(rf->dest);
	free(rf);
}

static enum xdms_err pbatch_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
				 const struct store_doc *nd)
{
	struct pbatch *b = w->arg;
	enum xdms_err err;

	(void)o;
	(void)nd;
	for (size_t i = 0; i < b->n_ops; i++) {
		if (b->ops[i].rec)
			err = store_sub_put(txn, b->ops[i].id, b->ops[i].rec, b->ops[i].len);
		else
			err = store_sub_del(txn, b->ops[i].id);
		if (err && err != XDMS_ERR_NOTFOUND)
			return err;
	}
	return XDMS_ERR_OK;
}

void pbatch_free(struct pbatch *b)
{
	refresh_free(b->refresh);
	for (size_t i = 0; i < b->n_ops; i++)
		free(b->ops[i].rec);
	free(b->ops);
	free(b);
}

static void pbatch_finish(void *arg)
{
	struct pbatch *b = arg;
	struct notifier *n = b->n;

	if (b->w.result)
		log_error("notify: subscription store write failed: %s", xdms_err_str(b->w.result));
	if (b->then)
		b->then(n, b);
	atomic_fetch_sub(&n->persisting, 1);
	pbatch_free(b);
}

static void pbatch_done(struct store_write *w)
{
	struct pbatch *b = w->arg;
	struct notifier *n = b->n;
	bool is_handed = false;

	/* Under wake_lock: once quiesce has closed it, the SIP server may be gone. */
	pthread_mutex_lock(&n->wake_lock);
	if (n->can_wake)
		is_handed = !sip_server_call(n->sip, pbatch_finish, b);
	if (!is_handed) {
		/* Stopping: the write is done; a request waiting for it is dropped
		 * with the SIP server. */
		atomic_fetch_sub(&n->persisting, 1);
		pbatch_free(b);
	}
	pthread_mutex_unlock(&n->wake_lock);
}

struct pbatch *pbatch_new(struct notifier *n)
{
	struct pbatch *b = xcalloc(1, sizeof(*b));

	b->n = n;
	b->w.hook = pbatch_hook;
	b->w.arg = b;
	b->w.done = pbatch_done;
	return b;
}

void pbatch_add(struct pbatch *b, const struct sub *s, bool is_delete)
{
	b->ops = xrealloc(b->ops, (b->n_ops + 1) * sizeof(*b->ops));
	b->ops[b->n_ops].id = s->id;
	b->ops[b->n_ops].rec = is_delete ? NULL : sub_serialize(s, &b->ops[b->n_ops].len);
	if (is_delete)
		b->ops[b->n_ops].len = 0;
	b->n_ops++;
}

/* Queues @b; on failure to queue runs nothing and returns the error. */
enum xdms_err pbatch_submit(struct notifier *n, struct pbatch *b)
{
	enum xdms_err err;

	atomic_fetch_add(&n->persisting, 1);
	err = store_write_submit(n->st, &b->w);
	if (err) {
		atomic_fetch_sub(&n->persisting, 1);
		pbatch_free(b);
	}
	return err;
}

/* ---- sending -------------------------------------------------------------------------------- */

/* The subscription's progress must be recorded at the next flush. */
void sub_mark_dirty(struct notifier *n, struct sub *s)
{
	if (s->is_dirty || s->is_transient)
		return;
	s->is_dirty = true;
	if (n->dirty_count == n->dirty_cap) {
		n->dirty_cap = n->dirty_cap ? n->dirty_cap * 2 : 64;
		n->dirty = xrealloc(n->dirty, n->dirty_cap * sizeof(*n->dirty));
	}
	n->dirty[n->dirty_count++] = s->id;
}

struct sub *sub_by_id(struct notifier *n, uint64_t id)
{
	char k[17];
	struct smap_slot *sl;

	id_key(id, k);
	sl = smap_get(&n->by_id, k, false);
	return sl && sl->n ? sl->items[0] : NULL;
}

void sub_flush(struct notifier *n)
{
	struct pbatch *pb = NULL;

	for (size_t i = 0; i < n->dirty_count; i++) {
		struct sub *s = sub_by_id(n, n->dirty[i]);

		if (!s || s->state == SUB_DEAD || !s->is_dirty)
			continue;
		s->is_dirty = false;
		if (!pb)
			pb = pbatch_new(n);
		pbatch_add(pb, s, false);
	}
	n->dirty_count = 0;
	if (pb && pbatch_submit(n, pb))
		log_error("notify: cannot record subscription progress");
}
