/* SPDX-License-Identifier: MIT */
/*
 * Sending NOTIFYs: one in flight per subscription, retries, the end of a
 * subscription.
 *
 * Design: sub_send() decides whether something is due (full state first,
 * then queued changes, then the final NOTIFY), makes the next block of
 * CSeqs durable before using it, builds the body and sends it;
 * notify_done() records what the answer acknowledged and sends the next.
 * A failed NOTIFY is sent again (the same page or changes) after 1, 2, 4 s;
 * 481, 408 or a fourth failure end the subscription.
 *
 * Invariants: CSeqs never go back across restarts (a block is durable before
 * it is used); acked_seq only moves on a 2xx.
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

static void retry_fire(void *arg);
static void pend_drop(struct sub *s, size_t k);

static void sub_persist_then_send(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);

	if (!s)
		return;
	s->block_wait = false;
	if (b->w.result) {
		/* The new block is not durable: using it could make CSeqs go back
		 * after a restart. Try again in a second. */
		s->cseq_block = b->old_cseq_block;
		if (!s->retry_timer)
			s->retry_timer = sip_timer_start(n->sip, 1000, retry_fire, s);
		return;
	}
	sub_send(n, s);
}

static void notify_done(void *arg, int status);

static void retry_fire(void *arg)
{
	struct sub *s = arg;

	s->retry_timer = NULL;
	sub_send(s->n, s);
}

/* The Subscription-State header of the NOTIFY about to go out. */
static const char *state_header(const struct sub *s, char *buf, size_t len)
{
	int64_t left = (s->expires_ms - (int64_t)wall_ms() + 999) / 1000;

	if (s->inflight_final)
		snprintf(buf, len, "terminated;reason=%s", s->end_reason);
	else
		snprintf(buf, len, "active;expires=%" PRId64, left > 0 ? left : 0);
	return buf;
}

void sub_send(struct notifier *n, struct sub *s)
{
	struct store_read *rd = NULL;
	struct body b = { 0 };
	struct buf out;
	struct sip_header hdrs[2];
	struct sip_dialog_out d;
	char state[64];
	bool is_page = false;
	enum xdms_err err;

	if (s->flight != FLIGHT_NONE || s->state == SUB_DEAD || s->block_wait || s->window_timer || s->retry_timer)
		return;
	if (n->is_stopping && !sub_is_ending(s))
		return;
	if (!sub_is_full_due(s) && !s->pend_count && !sub_is_ending(s))
		return;
	if (s->cseq + 1 > s->cseq_block) {
		/* Make the next block of CSeqs durable before using it. */
		struct pbatch *pb = pbatch_new(n);
		uint32_t old_block = s->cseq_block;

		pb->old_cseq_block = old_block;
		s->cseq_block = s->cseq + CSEQ_BLOCK;
		pbatch_add(pb, s, false);
		pb->then = sub_persist_then_send;
		pb->sub_id = s->id;
		s->block_wait = true;
		if (pbatch_submit(n, pb)) {
			s->block_wait = false;
			s->cseq_block = old_block;
			log_error("notify: cannot record the CSeq of subscription %016" PRIx64, s->id);
		}
		return;
	}
	if (store_read_begin(n->st, &rd)) {
		log_error("notify: cannot read the store");
		return;
	}
	for (;;) {
		is_page = false;
		s->inflight_count = 0;
		if (sub_is_full_due(s)) {
			if (!s->full_entry && !s->full_after) {
				uint64_t last = 0;

				if (store_changes_last(rd, &last) || last < n->feed_seq)
					last = n->feed_seq; /* an empty (pruned) feed reads 0 */
				s->fs_seq = last;
			}
			free(s->page_after);
			s->page_entry = s->full_entry;
			s->page_after = s->full_after ? xstrdup(s->full_after) : NULL;
			body_build_full(n, s, rd, &b);
			is_page = true;
			s->inflight_full_gen = s->full_gen;
			s->inflight_seq = s->fs_seq;
		} else if (s->pend_count) {
			s->inflight_count = body_build_changes(n, s, rd, &b);
			s->inflight_seq = s->pend[s->inflight_count - 1]->seq;
			if (!b.nd && !b.nn && !sub_is_ending(s)) {
				/* Nothing this subscriber watches changed visibly: done. */
				pend_drop(s, s->inflight_count);
				s->acked_seq = s->inflight_seq;
				sub_mark_dirty(n, s);
				body_cleanup(&b);
				if (s->pend_count)
					continue;
				store_read_end(rd);
				return;
			}
		}
		break;
	}
	store_read_end(rd);
	buf_init(&out, n->c->notify_max_body + 65536);
	err = diff_render(n->root_uri, b.docs, b.nd, b.nodes, b.nn, b.np ? b.prefixes : NULL, &out);
	if (err == XDMS_ERR_TOOBIG && b.nd) {
		/* Patches made it too large: send the transitions without them. */
		for (size_t i = 0; i < b.nd; i++)
			b.docs[i].ops = NULL, b.docs[i].ops_len = 0;
		buf_reset(&out);
		err = diff_render(n->root_uri, b.docs, b.nd, b.nodes, b.nn, NULL, &out);
	}
	body_cleanup(&b);
	if (err) {
		log_error("notify: cannot build the NOTIFY body for %016" PRIx64 ": %s", s->id, xdms_err_str(err));
		buf_cleanup(&out);
		sub_end(n, s, true);
		return;
	}
	/* The last NOTIFY of a subscription is the one that carries everything left. */
	s->inflight_final = sub_is_ending(s) &&
			    (is_page ? s->inflight_full_done &&
							(!s->pend_count || s->pend[s->pend_count - 1]->seq <= s->fs_seq)
					      : s->inflight_count == s->pend_count);
	hdrs[0].name = "Event";
	hdrs[0].value = "xcap-diff";
	hdrs[1].name = "Subscription-State";
	hdrs[1].value = state_header(s, state, sizeof(state));
	memset(&d, 0, sizeof(d));
	d.call_id = s->call_id;
	d.local_uri = s->local_uri;
	d.local_tag = s->local_tag;
	d.remote_uri = s->remote_uri;
	d.remote_tag = s->remote_tag;
	d.remote_target = s->target;
	d.route_set = (const char *const *)s->routes;
	d.route_count = s->route_count;
	d.cseq = s->cseq + 1;
	d.transport = s->transport;
	d.destination = s->dest;
	err = sip_send_request(n->sip, "NOTIFY", &d, hdrs, 2, DIFF_MIME, out.data, out.len, notify_done, s);
	buf_cleanup(&out);
	if (err) {
		log_warn("notify: cannot send NOTIFY for %016" PRIx64 ": %s", s->id, xdms_err_str(err));
		if (err == XDMS_ERR_BUSY) {
			s->retry_timer = sip_timer_start(n->sip, 100, retry_fire, s);
			return;
		}
		sub_end(n, s, true);
		return;
	}
	s->cseq++;
	s->flight = is_page ? FLIGHT_PAGE : FLIGHT_CHANGES;
	atomic_fetch_add(&n->inflight, 1);
	atomic_fetch_add(&n->n_sent, 1);
}

/* Drops pend[0..k) (sent and acknowledged, or superseded). */
static void pend_drop(struct sub *s, size_t k)
{
	if (k > s->pend_count)
		k = s->pend_count;
	if (!k)
		return;
	for (size_t i = 0; i < k; i++)
		nchange_put(s->pend[i]);
	memmove(s->pend, s->pend + k, (s->pend_count - k) * sizeof(*s->pend));
	s->pend_count -= k;
}

/* Ends a subscription: forgets it, and deletes its record when asked. */
void sub_end(struct notifier *n, struct sub *s, bool is_delete_record)
{
	sub_transition(s, SUB_EV_GONE, NULL);
	if (s->flight != FLIGHT_NONE)
		return; /* notify_done finishes the job */
	sip_timer_cancel(n->sip, s->expiry_timer);
	sip_timer_cancel(n->sip, s->window_timer);
	sip_timer_cancel(n->sip, s->retry_timer);
	sub_unregister(n, s);
	if (is_delete_record && !s->is_transient) {
		struct pbatch *pb = pbatch_new(n);

		pbatch_add(pb, s, true);
		if (pbatch_submit(n, pb))
			log_error("notify: cannot delete subscription %016" PRIx64, s->id);
	}
	log_info("notify: subscription %016" PRIx64 " of %s ended%s%s", s->id, s->identity,
		 s->end_reason ? ": " : "", s->end_reason ? s->end_reason : "");
	sub_free(s);
}

static void notify_done(void *arg, int status)
{
	struct sub *s = arg;
	struct notifier *n = s->n;
	bool is_page = s->flight == FLIGHT_PAGE;

	atomic_fetch_sub(&n->inflight, 1);
	s->flight = FLIGHT_NONE;
	if (status == 0)
		return; /* the SIP stack stopped: progress stays where it was */
	if (s->state == SUB_DEAD) {
		sub_end(n, s, true);
		return;
	}
	if (status >= 200 && status < 300) {
		s->retries = 0;
		if (is_page && s->inflight_full_gen != s->full_gen) {
			/* a refresh restarted the full state meanwhile: this page is outdated */
		} else if (is_page) {
			if (s->inflight_full_done) {
				size_t k = 0;

				sub_transition(s, SUB_EV_FULL_SENT, NULL);
				s->full_entry = 0;
				free(s->full_after);
				s->full_after = NULL;
				s->is_full_acked = true;
				while (k < s->pend_count && s->pend[k]->seq <= s->fs_seq)
					k++;
				pend_drop(s, k);
				if (s->acked_seq < s->fs_seq)
					s->acked_seq = s->fs_seq;
				if (s->queued_seq < s->fs_seq)
					s->queued_seq = s->fs_seq;
			}
			sub_mark_dirty(n, s);
		} else if (s->inflight_count) {
			pend_drop(s, s->inflight_count);
			s->acked_seq = s->inflight_seq;
			sub_mark_dirty(n, s);
		}
		s->inflight_count = 0;
		if (s->inflight_final) {
			sub_end(n, s, true);
			return;
		}
		sub_send(n, s);
		return;
	}
	atomic_fetch_add(&n->n_failed, 1);
	s->inflight_count = 0;
	/* The page (or the changes) in flight go out again on a retry. */
	if (is_page && s->inflight_full_gen == s->full_gen) {
		s->full_entry = s->page_entry;
		free(s->full_after);
		s->full_after = s->page_after;
		s->page_after = NULL;
	}
	for (size_t i = 0; i < s->entry_count; i++)
		s->entries[i].has_reported = false;
	if (status == 481 || status == 408 || s->inflight_final || ++s->retries > NOTIFY_RETRIES) {
		log_info("notify: NOTIFY for %016" PRIx64 " answered %d: subscription ended", s->id, status);
		sub_end(n, s, true);
		return;
	}
	s->retry_timer = sip_timer_start(n->sip, 1000u << (s->retries - 1), retry_fire, s);
}

static void expiry_fire(void *arg)
{
	struct sub *s = arg;

	s->expiry_timer = NULL;
	sub_transition(s, SUB_EV_END, "timeout");
	sub_send(s->n, s);
}

static void window_fire(void *arg)
{
	struct sub *s = arg;

	s->window_timer = NULL;
	sub_send(s->n, s);
}

void sub_expiry_arm(struct notifier *n, struct sub *s)
{
	int64_t left = s->expires_ms - (int64_t)wall_ms();

	sip_timer_cancel(n->sip, s->expiry_timer);
	s->expiry_timer = sip_timer_start(n->sip, left <= 0 ? 0 : left > UINT32_MAX ? UINT32_MAX : (unsigned)left,
					  expiry_fire, s);
}

/* Sends what is due now, or after the aggregation window. */
void sub_kick(struct notifier *n, struct sub *s)
{
	if (s->mode == MODE_AGGREGATE && n->c->notify_aggregate_window && s->state == SUB_LIVE &&
	    s->flight == FLIGHT_NONE && !s->window_timer && s->pend_count) {
		s->window_timer = sip_timer_start(n->sip, n->c->notify_aggregate_window, window_fire, s);
		return;
	}
	sub_send(n, s);
}

