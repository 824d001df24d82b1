/* SPDX-License-Identifier: MIT */
/*
 * A subscription's state (struct sub's `state`) and its transitions, in one
 * place.
 *
 * Design: the state says what the subscription owes its subscriber next:
 *
 *   SUB_LIVE         the changes it watches, as they come
 *   SUB_FULL         a full state (page by page), then changes
 *   SUB_ENDING       a final NOTIFY with what is queued (expiry, deactivated)
 *   SUB_ENDING_FULL  a final NOTIFY with the full state (unsubscribe, fetch)
 *   SUB_DEAD         nothing: it is being forgotten (at once, or when the
 *                    NOTIFY in flight is answered)
 *
 * Events (sub_state_next's table):
 *
 *                 LIVE         FULL         ENDING       ENDING_FULL  DEAD
 *   FULL_DUE      FULL         FULL         ENDING_FULL  ENDING_FULL  DEAD
 *   FULL_SENT     LIVE         LIVE         ENDING       ENDING       DEAD
 *   END           ENDING       ENDING       ENDING       ENDING       DEAD
 *   END_FULL      ENDING_FULL  ENDING_FULL  ENDING_FULL  ENDING_FULL  DEAD
 *   GONE          DEAD         DEAD         DEAD         DEAD         DEAD
 *
 * What is orthogonal to it, and therefore not part of it: what the NOTIFY in
 * flight carries (`flight`, with its inflight_* details), whether a record
 * write must be durable before the next NOTIFY (`block_wait`: it can
 * overlap a NOTIFY in flight when a refresh arrives), and the aggregation
 * window and retry timers. sub_send() looks at all of them.
 *
 * Invariants: DEAD is final; a full state due means full_gen changed and
 * the page cursor starts over; an ending subscription has an end_reason.
 *
 * Threads: the SIP loop thread (pure functions otherwise).
 */
#include "config.h"

#include <stdlib.h>

#include "notify/notify_int.h"

static const char *const state_names[] = { "live", "full", "ending", "ending-full", "dead" };

enum sub_state sub_state_next(enum sub_state st, enum sub_event ev)
{
	bool is_ending = st == SUB_ENDING || st == SUB_ENDING_FULL;

	if (st == SUB_DEAD || ev == SUB_EV_GONE)
		return SUB_DEAD;
	switch (ev) {
	case SUB_EV_FULL_DUE:
		return is_ending ? SUB_ENDING_FULL : SUB_FULL;
	case SUB_EV_FULL_SENT:
		return is_ending ? SUB_ENDING : SUB_LIVE;
	case SUB_EV_END:
		return SUB_ENDING;
	case SUB_EV_END_FULL:
		return SUB_ENDING_FULL;
	case SUB_EV_GONE:
		break;
	}
	return SUB_DEAD;
}

const char *sub_state_name(enum sub_state st)
{
	return (unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ? state_names[st] : "?";
}

void sub_transition(struct sub *s, enum sub_event ev, const char *reason)
{
	if (ev == SUB_EV_END || ev == SUB_EV_END_FULL)
		s->end_reason = reason;
	if (ev == SUB_EV_FULL_DUE || ev == SUB_EV_END_FULL) {
		/* A restarted full state outdates the page in flight. */
		s->full_gen++;
		s->full_entry = 0;
		free(s->full_after);
		s->full_after = NULL;
	}
	s->state = sub_state_next(s->state, ev);
}

bool sub_is_ending(const struct sub *s)
{
	return s->state == SUB_ENDING || s->state == SUB_ENDING_FULL || s->state == SUB_DEAD;
}

bool sub_is_full_due(const struct sub *s)
{
	return s->state == SUB_FULL || s->state == SUB_ENDING_FULL;
}
