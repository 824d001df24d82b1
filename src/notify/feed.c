/* SPDX-License-Identifier: MIT */
/*
 * The change-feed reader: reads the store's change feed from the notifier's
 * position, queues each change on the subscriptions that watch it, and
 * kicks them in batches.
 *
 * Design: the store's commit listener (writer thread) wakes the loop once
 * however many commits; a one-second poll catches writes of other processes.
 * One turn reads at most PUMP_MAX records; a fan-out sends KICK_BATCH
 * NOTIFYs per turn of the loop. Every second the feed floor (the first
 * sequence a subscriber may still need) is given to the store, which may
 * prune below it.
 *
 * Threads: the SIP loop thread, except feed_on_commit (the writer thread).
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

/* ---- reading the change feed --------------------------------------------------------------- */

struct pump {
	struct notifier *n;
	struct store_read *rd;
	struct sub **touched;
	size_t nt, ct;
	size_t count;
	bool more;
};

static void sub_enqueue(struct notifier *n, struct sub *s, struct nchange *nc)
{
	if (s->pend_count >= n->c->notify_max_pending) {
		/* A subscriber this far behind gets a fresh start (RFC 6665 §4.2.2).
		 * What a NOTIFY in flight carries stays until it is answered. */
		size_t keep = s->flight != FLIGHT_NONE ? s->inflight_count : 0;

		for (size_t i = keep; i < s->pend_count; i++)
			nchange_put(s->pend[i]);
		s->pend_count = keep;
		sub_transition(s, SUB_EV_END, "deactivated");
		return;
	}
	if (s->pend_count == s->pend_cap) {
		s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 8;
		s->pend = xrealloc(s->pend, s->pend_cap * sizeof(*s->pend));
	}
	nc->refs++;
	s->pend[s->pend_count++] = nc;
	s->queued_seq = nc->seq;
}

/*
 * True when @c deletes a document of @identity's own tree because the user
 * moved to another shard (xdmsctl user purge): the document lives on there,
 * so its owner's subscription is not told "deleted" but ended with reason
 * "deactivated" (RFC 6665 §4.2.2: re-subscribe at once), and the new
 * SUBSCRIBE reaches the new shard.
 */
static bool is_moved_away(const struct store_change *c, const char *identity)
{
	const char *u = strstr(c->selector, "/users/");
	size_t len = identity ? strlen(identity) : 0;

	return c->is_move && !c->new_etag[0] && u && len && !strncmp(u + 7, identity, len) && u[7 + len] == '/';
}

static void pump_consider(struct pump *p, struct smap_slot *sl, const struct store_change *c, struct nchange **nc,
			  bool *wants_patch, bool *wants_agg)
{
	for (size_t i = 0; sl && i < sl->n; i++) {
		struct sub *s = sl->items[i];

		if (sub_is_ending(s) || c->seq <= s->queued_seq || s->mark == c->seq)
			continue;
		s->mark = c->seq;
		if (is_moved_away(c, s->identity)) {
			sub_transition(s, SUB_EV_END, "deactivated");
		} else {
			if (!*nc)
				*nc = nchange_new(p->n, c);
			sub_enqueue(p->n, s, *nc);
			if (s->mode != MODE_NO_PATCHING)
				*wants_patch = true;
			if (s->mode == MODE_AGGREGATE)
				*wants_agg = true;
		}
		if (s->touch_gen != p->n->gen) {
			s->touch_gen = p->n->gen;
			if (p->nt == p->ct) {
				p->ct = p->ct ? p->ct * 2 : 64;
				p->touched = xrealloc(p->touched, p->ct * sizeof(*p->touched));
			}
			p->touched[p->nt++] = s;
		}
	}
}

static int pump_visit(void *arg, const struct store_change *c)
{
	struct pump *p = arg;
	struct notifier *n = p->n;
	struct nchange *nc = NULL;
	bool wants_patch = false, wants_agg = false;
	char prefix[STORE_SELECTOR_MAX + 2];

	if (++p->count > PUMP_MAX) {
		p->more = true;
		return 1;
	}
	n->feed_seq = c->seq;
	pump_consider(p, smap_get(&n->by_doc, c->selector, false), c, &nc, &wants_patch, &wants_agg);
	for (const char *q = strchr(c->selector, '/'); q; q = strchr(q + 1, '/')) {
		size_t len = (size_t)(q - c->selector) + 1;

		if (len >= sizeof(prefix))
			break;
		memcpy(prefix, c->selector, len);
		prefix[len] = '\0';
		pump_consider(p, smap_get(&n->by_coll, prefix, false), c, &nc, &wants_patch, &wants_agg);
	}
	if (nc && wants_patch)
		nchange_patch(n, p->rd, nc, c, wants_agg);
	else if (vcache_get(n, c->selector))
		vcache_drop(n, c->selector);
	nchange_put(nc);
	return 0;
}

static void pump_fn(void *arg);

/*
 * A fan-out sends KICK_BATCH NOTIFYs per turn of the loop, so the loop reads
 * the 200s (and new requests) between batches instead of letting a
 * thousand answers pile up in the socket behind a thousand sends.
 */
static void kick_fire(void *arg)
{
	struct notifier *n = arg;
	size_t end = n->kick_head + (n->kick_count - n->kick_head < KICK_BATCH ? n->kick_count - n->kick_head
									       : KICK_BATCH);

	n->kick_timer = NULL;
	for (; n->kick_head < end; n->kick_head++) {
		struct sub *s = sub_by_id(n, n->kicks[n->kick_head]);

		if (s)
			sub_kick(n, s);
	}
	if (n->kick_head < n->kick_count) {
		if (n->kick_head >= 4096) {
			/* keep the queue from growing under steady fan-outs */
			memmove(n->kicks, n->kicks + n->kick_head, (n->kick_count - n->kick_head) * sizeof(*n->kicks));
			n->kick_count -= n->kick_head;
			n->kick_head = 0;
		}
		n->kick_timer = sip_timer_start(n->sip, 0, kick_fire, n);
		return;
	}
	n->kick_head = n->kick_count = 0;
}

void feed_kicks_add(struct notifier *n, struct sub **subs, size_t count)
{
	if (!count)
		return;
	if (n->kick_count + count > n->kick_cap) {
		n->kick_cap = (n->kick_count + count) * 2;
		n->kicks = xrealloc(n->kicks, n->kick_cap * sizeof(*n->kicks));
	}
	for (size_t i = 0; i < count; i++)
		n->kicks[n->kick_count++] = subs[i]->id;
	if (!n->kick_timer)
		kick_fire(n); /* the first batch now: a lone subscriber waits for nothing */
}

void feed_pump(struct notifier *n)
{
	struct pump p = { .n = n };

	if (!n->is_started)
		return;
	if (store_read_begin(n->st, &p.rd)) {
		log_error("notify: cannot read the change feed");
		return;
	}
	n->gen++;
	if (store_changes_scan(p.rd, n->feed_seq + 1, pump_visit, &p))
		log_error("notify: change feed scan failed");
	store_read_end(p.rd);
	feed_kicks_add(n, p.touched, p.nt);
	free(p.touched);
	if (p.more && sip_server_call(n->sip, pump_fn, n))
		log_warn("notify: cannot continue reading the change feed");
}

static void pump_fn(void *arg)
{
	struct notifier *n = arg;

	atomic_store(&n->wake_queued, false);
	feed_pump(n);
}

/* Writer thread: a batch committed. Wake the loop once, however many commits. */
void feed_on_commit(void *arg, uint64_t last_seq)
{
	struct notifier *n = arg;

	(void)last_seq;
	pthread_mutex_lock(&n->wake_lock);
	if (n->can_wake && !atomic_exchange(&n->wake_queued, true) && sip_server_call(n->sip, pump_fn, n))
		atomic_store(&n->wake_queued, false);
	pthread_mutex_unlock(&n->wake_lock);
}

/*
 * The first feed sequence a subscriber may still need: the store may prune
 * below it. A subscription with nothing pending or in flight has had every
 * change up to feed_seq (those it watches were sent and acknowledged), so it
 * holds nothing back; once a minute its acknowledged position moves up to
 * feed_seq and is recorded, so that after a restart it does not look as if
 * pruned changes were missing.
 */
void feed_floor_update(struct notifier *n)
{
	uint64_t floor = n->feed_seq + 1;
	bool is_record_round = ++n->floor_rounds % 60 == 0;

	for (size_t i = 0; i < n->by_id.nb; i++)
		for (struct smap_slot *sl = n->by_id.b[i]; sl; sl = sl->next)
			for (size_t j = 0; j < sl->n; j++) {
				struct sub *s = sl->items[j];
				bool is_idle = !s->pend_count && s->flight == FLIGHT_NONE &&
					       (s->state == SUB_LIVE || s->state == SUB_ENDING) && !s->block_wait;

				if (s->is_transient)
					continue;
				if (is_idle && s->acked_seq < n->feed_seq && is_record_round) {
					s->acked_seq = s->queued_seq = n->feed_seq;
					sub_mark_dirty(n, s);
				}
				if (!is_idle && s->acked_seq + 1 < floor)
					floor = s->acked_seq + 1;
			}
	store_set_feed_floor(n->st, floor);
}

void feed_poll_fire(void *arg)
{
	struct notifier *n = arg;

	n->poll_timer = sip_timer_start(n->sip, POLL_MS, feed_poll_fire, n);
	feed_pump(n); /* writes by other processes (xdmsctl) reach the feed without a wake-up */
	feed_floor_update(n);
}

void feed_flush_fire(void *arg)
{
	struct notifier *n = arg;

	n->flush_timer = sip_timer_start(n->sip, FLUSH_MS, feed_flush_fire, n);
	sub_flush(n);
}
