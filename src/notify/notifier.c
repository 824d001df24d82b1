/* SPDX-License-Identifier: MIT */
/*
 * The xcap-diff notifier (notifier.h): creating it (loading the stored
 * subscriptions), starting it on the SIP loop (resuming them), quiescing,
 * destroying (recording progress) and its statistics. The work itself is
 * in the files below it (notify_int.h lists the layers).
 *
 * Data:
 *   struct sub      one subscription: its dialog, subscriber, resource list,
 *                   diff mode, lifetime, CSeq, and its place in the feed:
 *                   acked_seq (everything up to it was acknowledged by the
 *                   subscriber; persisted), queued_seq (everything up to it
 *                   is in pend[] or was sent), pend[] (changes to send).
 *   struct nchange  one change of the feed, shared by every subscription it
 *                   concerns, with its RFC 5261 patch computed once.
 *   indexes         document selector -> subscriptions (document and node
 *                   entries), collection prefix -> subscriptions, Call-ID ->
 *                   subscriptions (in-dialog SUBSCRIBE), identity ->
 *                   subscriptions (per-user cap), id -> subscription.
 *   vcache          the last document version seen for watched documents,
 *                   so the next change can be diffed (xcap-patching).
 *
 * Persistence: records are written through the store's writer (record
 * writes share the group commit). A new or refreshed subscription is durable
 * before its 200; progress (acked_seq, CSeq block) is flushed in batches
 * every FLUSH_MS and at shutdown.
 *
 * Threads: create, destroy and quiesce on the main thread; start hands
 * itself to the SIP loop thread, where everything else runs.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "notify/notify_int.h"

/* ---- life cycle ----------------------------------------------------------------------------- */

struct load {
	struct notifier *n;
	const char *why;
	uint64_t bad_id;
};

static int load_visit(void *arg, uint64_t id, const void *rec, size_t len)
{
	struct load *l = arg;
	struct sub *s = sub_deserialize(l->n, id, rec, len, &l->why);

	if (!s) {
		l->bad_id = id;
		return 1;
	}
	s->n = l->n;
	if (s->transport == SIP_TRANSPORT_TCP) {
		/* The connection died with the old process: reach the Contact. */
		free(s->dest);
		s->dest = NULL;
	}
	sub_register(l->n, s);
	if (id >= l->n->next_id)
		l->n->next_id = id + 1;
	return 0;
}

enum xdms_err notifier_create(const struct conf *c, struct store *st, const struct xcap_registry *reg,
			      const char *xcap_root_uri, const char *root_path, struct notifier **out,
			      char **why)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	struct store_read *rd;
	struct load l = { .n = n };
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	n->c = c;
	n->st = st;
	n->reg = reg;
	n->root_uri = xstrdup(xcap_root_uri);
	n->root_path = xstrdup(root_path);
	n->next_id = 1;
	pthread_mutex_init(&n->wake_lock, NULL);
	n->digest = digest_policy_create(c);
	n->prefix_count = xcap_registry_count(reg);
	n->prefixes = xcalloc(n->prefix_count ? n->prefix_count : 1, sizeof(*n->prefixes));
	for (size_t i = 0; i < n->prefix_count; i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);

		n->prefixes[i].auid = a;
		if (a->etag_prefix && xml_is_free_prefix(a->etag_prefix) && strlen(a->etag_prefix) < 20)
			snprintf(n->prefixes[i].prefix, sizeof(n->prefixes[i].prefix), "%s", a->etag_prefix);
		else
			snprintf(n->prefixes[i].prefix, sizeof(n->prefixes[i].prefix), "d%zu", i);
	}
	err = store_read_begin(st, &rd);
	if (!err) {
		err = store_sub_list(rd, load_visit, &l);
		if (!err && l.why)
			err = XDMS_ERR_CORRUPT;
		if (!err)
			err = store_changes_last(rd, &n->feed_seq);
		store_read_end(rd);
	}
	if (err) {
		*why = l.why ? xasprintf("subscription %016" PRIx64 ": %s", l.bad_id, l.why)
			     : xasprintf("reading subscriptions: %s", xdms_err_str(err));
		notifier_destroy(n);
		return err;
	}
	*out = n;
	return XDMS_ERR_OK;
}

struct resume {
	struct sub **subs;
	size_t n, cap;
};

static void collect(struct notifier *n, struct resume *r)
{
	for (size_t i = 0; i < n->by_id.nb; i++) {
		for (struct smap_slot *sl = n->by_id.b[i]; sl; sl = sl->next) {
			for (size_t j = 0; j < sl->n; j++) {
				if (r->n == r->cap) {
					r->cap = r->cap ? r->cap * 2 : 64;
					r->subs = xrealloc(r->subs, r->cap * sizeof(*r->subs));
				}
				r->subs[r->n++] = sl->items[j];
			}
		}
	}
}

static void start_fn(void *arg)
{
	struct notifier *n = arg;
	struct resume r = { 0 };
	int64_t now = (int64_t)wall_ms();

	struct store_read *rd;
	struct store_stats stats = { 0 };
	uint64_t first = 0;

	collect(n, &r);
	if (!store_read_begin(n->st, &rd)) {
		if (store_changes_first(rd, &first))
			first = 0;
		store_read_end(rd);
	}
	if (store_stats_get(n->st, &stats))
		stats.last_seq = 0;
	if (!first)
		first = stats.last_seq + 1; /* an empty feed: everything was pruned */
	for (size_t i = 0; i < r.n; i++) {
		struct sub *s = r.subs[i];

		/* Changes this subscriber had not seen were pruned (the server ran
		 * without SIP for longer than store.feed_retention): start over. */
		if (s->acked_seq + 1 < first && s->acked_seq < stats.last_seq) {
			log_warn("notify: changes for subscription %016" PRIx64 " were pruned; sending full state",
				 s->id);
			s->is_full_acked = false;
			s->acked_seq = first - 1;
		}
		s->cseq = s->cseq_block; /* the next NOTIFY records a new block first */
		s->queued_seq = s->acked_seq;
		if (s->acked_seq < n->feed_seq)
			n->feed_seq = s->acked_seq;
		if (!s->is_full_acked)
			sub_transition(s, SUB_EV_FULL_DUE, NULL);
		if (s->expires_ms <= now) {
			sub_transition(s, SUB_EV_END, "timeout");
		} else {
			sub_expiry_arm(n, s);
		}
	}
	n->is_started = true;
	feed_floor_update(n);
	if (r.n)
		log_info("notify: resumed %zu subscriptions from feed sequence %" PRIu64, r.n, n->feed_seq);
	n->flush_timer = sip_timer_start(n->sip, FLUSH_MS, feed_flush_fire, n);
	n->poll_timer = sip_timer_start(n->sip, POLL_MS, feed_poll_fire, n);
	feed_pump(n);
	feed_kicks_add(n, r.subs, r.n);
	free(r.subs);
}

enum xdms_err notifier_start(struct notifier *n, struct sip_server *sip)
{
	n->sip = sip;
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = true;
	pthread_mutex_unlock(&n->wake_lock);
	if (store_add_commit_listener(n->st, feed_on_commit, n))
		return XDMS_ERR_FULL;
	return sip_server_call(sip, start_fn, n);
}

static void quiesce_fn(void *arg)
{
	struct notifier *n = arg;

	n->is_stopping = true;
	sub_flush(n);
}

void notifier_quiesce(struct notifier *n, unsigned grace_ms)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	if (!n || !n->sip)
		return;
	if (!sip_server_call(n->sip, quiesce_fn, n)) {
		for (unsigned waited = 0; waited < grace_ms; waited += 10) {
			if (!atomic_load(&n->inflight) && !atomic_load(&n->persisting) && n->is_stopping)
				break;
			nanosleep(&pause, NULL);
		}
	}
	/* From here on the SIP server may go away: commits must not reach it. */
	store_remove_commit_listener(n->st, feed_on_commit, n);
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = false;
	pthread_mutex_unlock(&n->wake_lock);
}

void notifier_destroy(struct notifier *n)
{
	struct resume r = { 0 };
	struct pbatch *pb = NULL;

	if (!n)
		return;
	store_remove_commit_listener(n->st, feed_on_commit, n);
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = false;
	pthread_mutex_unlock(&n->wake_lock);
	collect(n, &r);
	/* The loop is gone: record what the subscribers acknowledged since the
	 * last flush. The write also is a barrier: the writer acknowledges in
	 * order, so every record write queued before it has finished its done
	 * callback (which found can_wake false) when it returns. */
	pb = pbatch_new(n);
	pb->w.done = NULL;
	for (size_t i = 0; i < r.n; i++) {
		struct sub *s = r.subs[i];

		if (s->is_dirty && s->state != SUB_DEAD && !s->is_transient)
			pbatch_add(pb, s, false);
	}
	if (store_write_run(n->st, &pb->w) && pb->n_ops)
		log_error("notify: could not record subscription progress at shutdown");
	pbatch_free(pb);
	for (size_t i = 0; i < r.n; i++)
		sub_free(r.subs[i]);
	free(r.subs);
	while (n->v_oldest)
		vcache_drop(n, n->v_oldest->key);
	smap_free(&n->by_doc);
	smap_free(&n->by_coll);
	smap_free(&n->by_call);
	smap_free(&n->by_user);
	smap_free(&n->by_id);
	smap_free(&n->vcache);
	digest_policy_destroy(n->digest);
	free(n->prefixes);
	free(n->dirty);
	free(n->kicks);
	free(n->root_uri);
	free(n->root_path);
	pthread_mutex_destroy(&n->wake_lock);
	free(n);
}

void notifier_stats_get(const struct notifier *n, struct notifier_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	out->subscriptions = atomic_load(&((struct notifier *)n)->n_subs);
	out->notifies_sent = atomic_load(&((struct notifier *)n)->n_sent);
	out->notifies_failed = atomic_load(&((struct notifier *)n)->n_failed);
}

enum xdms_err notifier_metrics(void *notifier, struct buf *out)
{
	struct notifier_stats st;

	notifier_stats_get(notifier, &st);
	return buf_printf(out,
			  "# HELP xdms_sip_subscriptions xcap-diff subscriptions held.\n"
			  "# TYPE xdms_sip_subscriptions gauge\n"
			  "xdms_sip_subscriptions %" PRIu64 "\n"
			  "# HELP xdms_sip_notifies_total NOTIFY requests sent since start.\n"
			  "# TYPE xdms_sip_notifies_total counter\n"
			  "xdms_sip_notifies_total %" PRIu64 "\n"
			  "# HELP xdms_sip_notify_failures_total NOTIFYs answered with a failure or not answered.\n"
			  "# TYPE xdms_sip_notify_failures_total counter\n"
			  "xdms_sip_notify_failures_total %" PRIu64 "\n",
			  st.subscriptions, st.notifies_sent, st.notifies_failed);
}

