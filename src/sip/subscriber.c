/* SPDX-License-Identifier: MIT */
/*
 * The subscriber: xcap-diff subscriptions (RFC 5875) that xdmsd holds, as a
 * user agent client (RFC 6665 §4.1), with another XDMS.
 *
 * Design. A subscription (struct sip_sub) is one dialog and at most one
 * SUBSCRIBE transaction in flight. Its state is one enum and moves in the
 * functions below:
 *
 *   IDLE --start--> SUBSCRIBING --2xx--> ACTIVE --timer--> REFRESHING --2xx--> ACTIVE
 *   SUBSCRIBING --refused--> ENDED     REFRESHING --481/408--> SUBSCRIBING (new dialog)
 *   ACTIVE/REFRESHING --unsubscribe--> UNSUBSCRIBING --answer--> CLOSING --NOTIFY terminated
 *   or CLOSE_WAIT_MS--> ENDED;  any --NOTIFY terminated, abandon--> ENDED
 *
 * A 401/407 is answered once per challenge with the credentials given
 * (RFC 3261 §22.2); the challenge is kept and later requests of the
 * subscription carry an answer with the next nonce count, so the remote
 * side does not have to challenge every refresh. A challenge answered and
 * challenged again without stale=true ends the subscription (wrong
 * credentials). A 423 is answered once with its Min-Expires (RFC 6665
 * §4.1.2.1).
 *
 * Refresh timing (RFC 6665 §4.1.2.2 leaves it to the subscriber): with E
 * seconds granted (the 200's Expires, or a NOTIFY's expires= when shorter),
 * the refresh goes max(E/2, E - refresh_margin) seconds later: an hour
 * granted is refreshed a minute before its end, a minute granted after
 * thirty seconds. A refresh refused otherwise than with 481/408 is retried
 * while time remains (after its Retry-After, or half the time left), and
 * the subscription ends "expired" when none succeeds.
 *
 * The dialog is created by the 2xx (route set: its Record-Route reversed,
 * RFC 3261 §12.1.2) or by a NOTIFY that overtakes it (RFC 6665 §4.1.2.4;
 * route set: the NOTIFY's Record-Route as received, §12.1.1). Only the first
 * dialog is kept: a NOTIFY from another fork gets 481. Every NOTIFY names
 * its subscription by Call-ID and To tag (our From tag); one that names
 * none gets 481, one without Subscription-State 400, one of another event
 * package 489, one whose CSeq is below the last 500 (RFC 3261 §12.2.2); the
 * rest 200, before the callback sees them. A 200 ends its transaction at
 * once (sip_request_end_on_answer), so ten thousand dialogs do not hold a
 * transaction each for 32 s after every NOTIFY; a retransmission of the
 * last NOTIFY (same CSeq) is then answered 200 again without a callback.
 * The final NOTIFY keeps its transaction, to absorb its own retransmissions
 * after the subscription is gone.
 *
 * Memory. A handle is counted: the caller's reference, one while the
 * subscription is alive, one per queued call and one per transaction in
 * flight; the last one frees it. So a call queued from another thread, or a
 * response arriving after the end, never meets freed memory.
 *
 * Threads: everything here runs on the SIP loop thread, except the entry
 * points of sip.h, which only allocate, count references and queue work
 * (sip_server_call), and sip_subscriber_create/destroy, which wait for the
 * loop under their own lock.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <osipparser2/osip_parser.h>

#include "base/clock.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/net.h"
#include "sip/sip_int.h"

#define DEFAULT_MAX_SUBSCRIPTIONS 10000
#define DEFAULT_MAX_NOTIFY_BODY (1024 * 1024)
#define DEFAULT_REFRESH_MARGIN 60
#define DEFAULT_EXPIRES 3600
#define MAX_EXPIRES (86400u * 7)      /* a Min-Expires above this is not honoured */
#define MAX_ENTRIES 256
#define MAX_FIELD 2048                /* any one string of the parameters or the dialog */
#define BODY_MAX (64 * 1024)
#define AUTH_MAX 4096
#define CLOSE_WAIT_MS 5000            /* the final NOTIFY after an unsubscribe */
#define RESUME_CSEQ_GAP 1000
#define AUTH_TRIES 3                  /* challenges answered in a row for one request */
#define SUB_BUCKETS 4096              /* subscriptions by Call-ID */
#define DIFF_MIME "application/xcap-diff+xml"
#define RL_MIME "application/resource-lists+xml"

enum sub_state {
	SUB_IDLE,          /* queued; the loop has not started it */
	SUB_SUBSCRIBING,   /* a SUBSCRIBE outside a dialog in flight */
	SUB_ACTIVE,        /* the dialog is up; the refresh timer is armed */
	SUB_REFRESHING,    /* a refresh in the dialog in flight */
	SUB_UNSUBSCRIBING, /* Expires: 0 in flight */
	SUB_CLOSING,       /* unsubscribed; waiting for the final NOTIFY */
	SUB_ENDED,         /* on_end has run */
};

static const char *const state_names[] = { "idle",	  "subscribing", "active", "refreshing",
					   "unsubscribing", "closing",	   "ended" };

struct sip_subscriber {
	struct sip_server *s;
	struct sip_subscriber_conf c;
	struct sip_sub *subs; /* alive (not ENDED), loop thread */
	unsigned sub_count;
	struct sip_sub *by_call_id[SUB_BUCKETS]; /* the same, by Call-ID, for NOTIFYs */
	uint64_t rnd;         /* xorshift state: refresh jitter */
	pthread_mutex_t lock; /* for create/destroy waiting on the loop */
	pthread_cond_t cond;
	bool is_done;
};

struct sip_sub {
	atomic_uint refs;
	struct sip_subscriber *m;
	struct sip_server *s;
	struct sip_sub_callbacks cb;
	void *arg;
	uint64_t id; /* for the log */

	/* The parameters (owned). */
	char *target, *resource_uri, *local_uri, *username, *password, *diff_processing;
	char **entries;
	size_t entry_count;
	unsigned expires; /* asked */
	enum sip_transport transport;
	char dest[SIP_ADDR_LEN];

	/* The dialog (owned). */
	char *call_id;
	char local_tag[48];
	char *remote_tag, *remote_target;
	char **routes;
	size_t route_count;
	uint32_t cseq, remote_cseq;
	bool has_remote_cseq;
	int64_t expires_at; /* wall clock, seconds */

	enum sub_state state;
	bool is_unsubscribe_wanted;
	unsigned auth_tries;   /* challenges answered for the request in flight */
	bool has_min_expires;  /* a 423 was honoured */
	struct sip_challenge *ch; /* the last challenge, answered on every request */
	bool is_proxy_ch;
	uint32_t nc;
	struct sip_timer *timer;
	struct sip_sub *prev, *next;
	struct sip_sub *hnext; /* in by_call_id, while listed with a Call-ID */
	bool is_hashed;
};

/* ---- references ------------------------------------------------------------------------------ */

static void sub_free(struct sip_sub *sub)
{
	free(sub->target);
	free(sub->resource_uri);
	free(sub->local_uri);
	free(sub->username);
	if (sub->password) {
		explicit_bzero(sub->password, strlen(sub->password));
		free(sub->password);
	}
	free(sub->diff_processing);
	free(sub->ch);
	for (size_t i = 0; i < sub->entry_count; i++)
		free(sub->entries[i]);
	free(sub->entries);
	free(sub->call_id);
	free(sub->remote_tag);
	free(sub->remote_target);
	for (size_t i = 0; i < sub->route_count; i++)
		free(sub->routes[i]);
	free(sub->routes);
	free(sub);
}

static void sub_ref(struct sip_sub *sub)
{
	atomic_fetch_add_explicit(&sub->refs, 1, memory_order_relaxed);
}

static void sub_unref(struct sip_sub *sub)
{
	if (atomic_fetch_sub_explicit(&sub->refs, 1, memory_order_acq_rel) == 1)
		sub_free(sub);
}

/* ---- strings, targets, the dialog ------------------------------------------------------------ */

static bool is_clean(const char *v)
{
	return v && v[0] && strlen(v) < MAX_FIELD && !strpbrk(v, "\r\n");
}

static char *dup_or_null(const char *v)
{
	return v ? xstrdup(v) : NULL;
}

static int64_t now_s(void)
{
	return (int64_t)(wall_ms() / 1000);
}

/* The transport and "IP:PORT" of "sip:IP[:PORT][;transport=tcp]". */
static bool target_parse(const char *target, enum sip_transport *transport, char *dest, size_t dest_len)
{
	osip_uri_t *u = NULL;
	osip_uri_param_t *tp = NULL;
	struct sockaddr_storage ss;
	socklen_t ss_len;
	bool ok = false;

	if (osip_uri_init(&u) != 0)
		return false;
	if (osip_uri_parse(u, target) != 0 || !u->scheme || strcasecmp(u->scheme, "sip") != 0 || !u->host)
		goto out;
	*transport = SIP_TRANSPORT_UDP;
	static char transport_name[] = "transport"; /* osip wants a mutable name */

	if (!osip_uri_uparam_get_byname(u, transport_name, &tp) && tp && tp->gvalue) {
		if (!strcasecmp(tp->gvalue, "tcp"))
			*transport = SIP_TRANSPORT_TCP;
		else if (strcasecmp(tp->gvalue, "udp") != 0)
			goto out;
	}
	if (strchr(u->host, ':'))
		snprintf(dest, dest_len, "[%s]:%s", u->host, u->port && u->port[0] ? u->port : "5060");
	else
		snprintf(dest, dest_len, "%s:%s", u->host, u->port && u->port[0] ? u->port : "5060");
	ok = net_addr_parse(dest, &ss, &ss_len);
out:
	osip_uri_free(u);
	return ok;
}

/* A URI as libosip2 writes it on the wire (the Digest uri must be that). */
static char *uri_as_sent(const char *text)
{
	osip_uri_t *u = NULL;
	char *v = NULL, *copy = NULL;

	if (osip_uri_init(&u) != 0)
		return NULL;
	if (osip_uri_parse(u, text) == 0 && osip_uri_to_str(u, &v) == 0 && v) {
		copy = xstrdup(v);
		osip_free(v);
	}
	osip_uri_free(u);
	return copy;
}

static unsigned bucket_of(const char *call_id)
{
	return (unsigned)(fnv1a_str(call_id) % SUB_BUCKETS);
}

static void hash_add(struct sip_sub *sub)
{
	struct sip_sub **head = &sub->m->by_call_id[bucket_of(sub->call_id)];

	sub->hnext = *head;
	*head = sub;
	sub->is_hashed = true;
}

static void hash_del(struct sip_sub *sub)
{
	if (!sub->is_hashed)
		return;
	for (struct sip_sub **pp = &sub->m->by_call_id[bucket_of(sub->call_id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == sub) {
			*pp = sub->hnext;
			break;
		}
	}
	sub->hnext = NULL;
	sub->is_hashed = false;
}

static void dialog_forget(struct sip_sub *sub)
{
	hash_del(sub);
	free(sub->call_id);
	free(sub->remote_tag);
	free(sub->remote_target);
	for (size_t i = 0; i < sub->route_count; i++)
		free(sub->routes[i]);
	free(sub->routes);
	sub->call_id = sub->remote_tag = sub->remote_target = NULL;
	sub->routes = NULL;
	sub->route_count = 0;
	sub->has_remote_cseq = false;
}

/* A new dialog identity: Call-ID, From tag, CSeq 1 next (RFC 3261 §8.1.1). */
static void dialog_new(struct sip_sub *sub)
{
	char token[48];

	dialog_forget(sub);
	sip_token(sub->s, token, sizeof(token));
	sub->call_id = xasprintf("%s@xdmsd", token);
	hash_add(sub);
	sip_token(sub->s, sub->local_tag, sizeof(sub->local_tag));
	sub->cseq = 0;
	sub->expires_at = 0;
}

static void report_dialog(struct sip_sub *sub)
{
	struct sip_sub_dialog d = {
		.call_id = sub->call_id,
		.local_tag = sub->local_tag,
		.remote_tag = sub->remote_tag,
		.cseq = sub->cseq,
		.remote_target = sub->remote_target,
		.route_set = (const char *const *)sub->routes,
		.route_count = sub->route_count,
		.transport = sub->transport,
		.destination = sub->dest,
		.expires_at = sub->expires_at,
	};

	if (sub->cb.on_dialog)
		sub->cb.on_dialog(sub->arg, &d);
}

static void list_unlink(struct sip_sub *sub)
{
	struct sip_subscriber *m = sub->m;

	hash_del(sub);
	if (sub->prev)
		sub->prev->next = sub->next;
	else if (m->subs == sub)
		m->subs = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	sub->prev = sub->next = NULL;
	m->sub_count--;
}

/* The one way a subscription ends: on_end, then the alive reference goes. */
static void sub_end(struct sip_sub *sub, int status, const char *reason, long retry_after)
{
	struct sip_sub_end e = { .status = status, .reason = reason, .retry_after = retry_after };
	bool was_listed = sub->state != SUB_IDLE;

	if (sub->state == SUB_ENDED)
		return;
	sip_timer_cancel(sub->s, sub->timer);
	sub->timer = NULL;
	if (was_listed)
		list_unlink(sub);
	sub->state = SUB_ENDED;
	log_info("sip: subscription %" PRIu64 " to %s for %s ended: %s (status %d)", sub->id, sub->target,
		 sub->resource_uri, reason, status);
	sub->cb.on_end(sub->arg, &e);
	sub_unref(sub);
}

/* ---- sending SUBSCRIBE ------------------------------------------------------------------------- */

static void on_subscribe_response(void *arg, int status, const struct sip_response *resp);

static enum xdms_err build_body(const struct sip_sub *sub, struct buf *b)
{
	enum xdms_err err;

	err = buf_append_str(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>");
	for (size_t i = 0; !err && i < sub->entry_count; i++) {
		err = buf_append_str(b, "<entry uri=\"");
		if (!err)
			err = buf_append_xml_escaped(b, sub->entries[i], strlen(sub->entries[i]));
		if (!err)
			err = buf_append_str(b, "\"/>");
	}
	if (!err)
		err = buf_append_str(b, "</list></resource-lists>\n");
	return err;
}

/*
 * Sends a SUBSCRIBE asking @expires seconds: outside a dialog (SUBSCRIBING,
 * with the resource list) or inside it (a refresh or, with 0, the end).
 * On failure to send, the outcome goes through the same path as a response
 * that never came.
 */
static void send_subscribe(struct sip_sub *sub, enum sub_state next, unsigned expires)
{
	bool is_in_dialog = next != SUB_SUBSCRIBING;
	struct sip_header h[5];
	size_t nh = 0;
	char event[96], expires_text[16];
	const char *routes_c[16];
	struct sip_dialog_out d = { 0 };
	struct buf body, auth;
	char *ruri_sent = NULL;
	enum xdms_err err;

	buf_init(&body, BODY_MAX);
	buf_init(&auth, AUTH_MAX);
	sub->state = next;
	sub->cseq++;
	d.call_id = sub->call_id;
	d.local_uri = sub->local_uri;
	d.local_tag = sub->local_tag;
	d.remote_uri = sub->resource_uri;
	d.remote_tag = is_in_dialog ? sub->remote_tag : NULL;
	d.remote_target = is_in_dialog ? sub->remote_target : sub->resource_uri;
	d.route_set = NULL;
	d.route_count = 0;
	if (is_in_dialog && sub->route_count > 0) {
		d.route_count = sub->route_count < 16 ? sub->route_count : 16;
		for (size_t i = 0; i < d.route_count; i++)
			routes_c[i] = sub->routes[i];
		d.route_set = routes_c;
	}
	d.cseq = sub->cseq;
	d.transport = sub->transport;
	/* In the dialog the remote target (or the first route) says where to
	 * go, when it is an IP literal; otherwise, and outside, the target. */
	d.destination = is_in_dialog ? NULL : sub->dest;

	if (sub->diff_processing)
		snprintf(event, sizeof(event), "xcap-diff;diff-processing=%s", sub->diff_processing);
	else
		snprintf(event, sizeof(event), "xcap-diff");
	snprintf(expires_text, sizeof(expires_text), "%u", expires);
	h[nh++] = (struct sip_header){ "Event", event };
	h[nh++] = (struct sip_header){ "Expires", expires_text };
	h[nh++] = (struct sip_header){ "Accept", DIFF_MIME };
	h[nh++] = (struct sip_header){ "Allow", SIP_ALLOW_NOTIFY };
	if (sub->ch && sub->username && sub->password) {
		char cnonce[48];

		ruri_sent = uri_as_sent(d.remote_target);
		sip_token(sub->s, cnonce, sizeof(cnonce));
		if (!ruri_sent || sip_authorization_make(sub->ch, sub->username, sub->password, "SUBSCRIBE",
							 ruri_sent, ++sub->nc, cnonce, &auth) ||
		    buf_append(&auth, "", 1)) {
			err = XDMS_ERR_INVAL;
			goto out;
		}
		h[nh++] = (struct sip_header){ sub->is_proxy_ch ? "Proxy-Authorization" : "Authorization", auth.data };
	}
	if (!is_in_dialog && build_body(sub, &body)) {
		err = XDMS_ERR_TOOBIG;
		goto out;
	}
	sub_ref(sub); /* for the transaction */
	err = sip_send_request_full(sub->s, "SUBSCRIBE", &d, h, nh, body.len ? RL_MIME : NULL,
				    body.len ? body.data : NULL, body.len, on_subscribe_response, sub);
	if (err == XDMS_ERR_INVAL && is_in_dialog) {
		d.destination = sub->dest; /* a remote target that is a host name */
		err = sip_send_request_full(sub->s, "SUBSCRIBE", &d, h, nh, NULL, NULL, 0, on_subscribe_response,
					    sub);
	}
	if (err)
		sub_unref(sub);
	else
		log_debug("sip: subscription %" PRIu64 ": SUBSCRIBE cseq %u expires %u (%s)", sub->id,
			  (unsigned)sub->cseq, expires, state_names[next]);
out:
	free(ruri_sent);
	buf_cleanup(&body);
	buf_cleanup(&auth);
	if (err) {
		log_warn("sip: subscription %" PRIu64 ": cannot send SUBSCRIBE to %s: %s", sub->id, sub->target,
			 xdms_err_str(err));
		/* BUSY (too many requests in flight) is like no answer; the rest
		 * cannot get better by waiting. */
		if (err == XDMS_ERR_BUSY)
			sub_end(sub, 503, "refused", -1);
		else
			sub_end(sub, 0, "invalid", -1);
	}
}

static void subscribe_new(struct sip_sub *sub)
{
	dialog_new(sub);
	free(sub->ch);
	sub->ch = NULL;
	sub->auth_tries = 0;
	sub->has_min_expires = false;
	send_subscribe(sub, SUB_SUBSCRIBING, sub->expires);
}

/* ---- timers ------------------------------------------------------------------------------------- */

static void on_timer(void *arg);

static void timer_arm(struct sip_sub *sub, uint64_t delay_ms)
{
	sip_timer_cancel(sub->s, sub->timer);
	if (delay_ms > UINT32_MAX - 1)
		delay_ms = UINT32_MAX - 1;
	sub->timer = sip_timer_start(sub->s, (unsigned)delay_ms, on_timer, sub);
}

static uint64_t rnd_next(struct sip_subscriber *m)
{
	/* xorshift64: spreading timers needs no strength, only no pattern. */
	m->rnd ^= m->rnd << 13;
	m->rnd ^= m->rnd >> 7;
	m->rnd ^= m->rnd << 17;
	return m->rnd;
}

/*
 * ACTIVE: the refresh at max(E/2, E - margin) of the E seconds left, made
 * earlier by up to 5 % at random, so that subscriptions started together
 * (a restart, a burst of requests) do not refresh together for ever.
 */
static void refresh_arm(struct sip_sub *sub)
{
	int64_t left = sub->expires_at - now_s();
	int64_t at;
	uint64_t at_ms;

	if (left < 1)
		left = 1;
	at = left - (int64_t)sub->m->c.refresh_margin;
	if (at < left / 2)
		at = left / 2;
	if (at < 1)
		at = left > 1 ? 1 : 0;
	at_ms = (uint64_t)at * 1000;
	at_ms -= rnd_next(sub->m) % (at_ms / 20 + 1);
	sub->state = SUB_ACTIVE;
	timer_arm(sub, at_ms);
	log_debug("sip: subscription %" PRIu64 ": %" PRId64 "s granted left, refresh in %" PRId64 "s", sub->id, left,
		  at);
}

static void unsubscribe_now(struct sip_sub *sub)
{
	sip_timer_cancel(sub->s, sub->timer);
	sub->timer = NULL;
	sub->is_unsubscribe_wanted = false;
	send_subscribe(sub, SUB_UNSUBSCRIBING, 0);
}

static void on_timer(void *arg)
{
	struct sip_sub *sub = arg;

	sub->timer = NULL;
	switch (sub->state) {
	case SUB_ACTIVE:
		if (sub->expires_at && now_s() >= sub->expires_at) {
			/* A refresh retried until the end did not succeed. */
			sub_end(sub, 0, "expired", -1);
			return;
		}
		send_subscribe(sub, SUB_REFRESHING, sub->expires);
		break;
	case SUB_CLOSING:
		sub_end(sub, 0, "unsubscribed", -1);
		break;
	default:
		break;
	}
}

/* ---- responses --------------------------------------------------------------------------------- */

/* Keeps the best Digest challenge of @resp (SHA-256 before MD5). */
static bool take_challenge(struct sip_sub *sub, const struct sip_response *resp, int status)
{
	const char *name = status == 407 ? "Proxy-Authenticate" : "WWW-Authenticate";
	struct sip_challenge c, best;
	bool found = false;
	const char *v;

	for (size_t i = 0; (v = sip_response_header(resp, name, i)); i++) {
		if (!sip_challenge_parse(v, &c))
			continue;
		if (!found || (c.algo == DIGEST_ALGO_SHA256 && best.algo != DIGEST_ALGO_SHA256)) {
			best = c;
			found = true;
		}
	}
	if (found) {
		if (!sub->ch)
			sub->ch = xmalloc(sizeof(*sub->ch));
		*sub->ch = best;
		sub->is_proxy_ch = status == 407;
		sub->nc = 0;
	}
	return found;
}

/* The dialog from the 2xx of a SUBSCRIBE sent outside one. */
static void dialog_from_2xx(struct sip_sub *sub, const struct sip_response *resp)
{
	const char *tag = sip_response_to_tag(resp), *contact = sip_response_contact_uri(resp), *rr;
	size_t n = 0;

	if (sub->remote_tag)
		return; /* a NOTIFY made it first (RFC 6665 §4.1.2.4) */
	sub->remote_tag = dup_or_null(tag);
	sub->remote_target = xstrdup(contact ? contact : sub->resource_uri);
	while (sip_response_header(resp, "Record-Route", n))
		n++;
	/* RFC 3261 §12.1.2: the UAC takes the Record-Route set in reverse. */
	sub->routes = n ? xcalloc(n, sizeof(*sub->routes)) : NULL;
	for (size_t i = 0; i < n && (rr = sip_response_header(resp, "Record-Route", n - 1 - i)); i++)
		sub->routes[sub->route_count++] = xstrdup(rr);
}

static long retry_after_of(const struct sip_response *resp)
{
	const char *v = resp ? sip_response_header(resp, "Retry-After", 0) : NULL;
	char num[16];

	if (!v)
		return -1;
	/* "Retry-After: 30 (comment);duration=..." : the number first. */
	snprintf(num, sizeof(num), "%.*s", (int)strspn(v + strspn(v, " \t"), "0123456789"), v + strspn(v, " \t"));
	return sip_seconds_parse(num);
}

static void on_success(struct sip_sub *sub, enum sub_state was, const struct sip_response *resp)
{
	long granted = sip_response_expires(resp);

	if (was == SUB_UNSUBSCRIBING) {
		sub->state = SUB_CLOSING;
		timer_arm(sub, CLOSE_WAIT_MS);
		return;
	}
	if (was == SUB_SUBSCRIBING) {
		dialog_from_2xx(sub, resp);
		if (!sub->remote_tag) {
			/* RFC 3261 §8.2.6.2: a 2xx always has a To tag; no dialog without it. */
			sub_end(sub, sip_response_status(resp), "invalid", -1);
			return;
		}
		log_info("sip: subscription %" PRIu64 " to %s for %s: dialog call-id %s", sub->id, sub->target,
			 sub->resource_uri, sub->call_id);
	} else {
		const char *contact = sip_response_contact_uri(resp);

		/* A refresh is a target refresh request (RFC 6665 §4.1.2.2, RFC 3261 §12.2.1.2). */
		if (contact && (!sub->remote_target || strcmp(contact, sub->remote_target) != 0)) {
			free(sub->remote_target);
			sub->remote_target = xstrdup(contact);
		}
	}
	/* RFC 6665 §4.1.2.1: the 200 must say; absent, what we asked. */
	if (granted < 0)
		granted = sub->expires;
	if (granted == 0) {
		/* Granted nothing: the notifier ends it with a NOTIFY. */
		sub->state = SUB_CLOSING;
		timer_arm(sub, CLOSE_WAIT_MS);
		return;
	}
	sub->expires_at = now_s() + granted;
	refresh_arm(sub);
	report_dialog(sub);
	if (sub->is_unsubscribe_wanted)
		unsubscribe_now(sub);
}

/* A refresh failed with something other than 481/408: retry while time is left. */
static void refresh_retry(struct sip_sub *sub, int status, long retry_after)
{
	int64_t left = sub->expires_at - now_s();
	int64_t wait = retry_after >= 0 ? retry_after : left / 2;

	if (left <= 1 || wait >= left) {
		sub_end(sub, status, "expired", retry_after);
		return;
	}
	if (wait < 1)
		wait = 1;
	sub->state = SUB_ACTIVE;
	timer_arm(sub, (uint64_t)wait * 1000);
}

static void on_subscribe_response(void *arg, int status, const struct sip_response *resp)
{
	struct sip_sub *sub = arg;
	enum sub_state was = sub->state;
	unsigned auth_tries = sub->auth_tries;
	long min;

	if (was == SUB_ENDED)
		goto out;
	if (status == 0) {
		/* The server is stopping: nothing more can be sent. */
		sub_end(sub, 0, "abandoned", -1);
		goto out;
	}
	log_debug("sip: subscription %" PRIu64 ": SUBSCRIBE cseq %u -> %d", sub->id, (unsigned)sub->cseq, status);
	sub->auth_tries = 0;
	if (status >= 200 && status < 300) {
		on_success(sub, was, resp);
		goto out;
	}
	if ((status == 401 || status == 407) && resp) {
		/* Answered once; again without stale=true means wrong credentials
		 * (RFC 7616 §3.3), and a few stale ones in a row end it too. */
		bool is_retry_ok = sub->username && sub->password && auth_tries < AUTH_TRIES &&
				   take_challenge(sub, resp, status) && (auth_tries == 0 || sub->ch->is_stale);

		if (is_retry_ok) {
			sub->auth_tries = auth_tries + 1;
			send_subscribe(sub, was, was == SUB_UNSUBSCRIBING ? 0 : sub->expires);
		} else if (was == SUB_REFRESHING) {
			refresh_retry(sub, status, -1);
		} else {
			sub_end(sub, status, was == SUB_UNSUBSCRIBING ? "unsubscribed" : "refused", -1);
		}
		goto out;
	}
	if (status == 423 && resp && was != SUB_UNSUBSCRIBING) {
		/* RFC 6665 §4.1.2.1: ask again with at least Min-Expires, once. */
		min = sip_seconds_parse(sip_response_header(resp, "Min-Expires", 0));
		if (min > 0 && (unsigned long)min <= MAX_EXPIRES && !sub->has_min_expires &&
		    (unsigned long)min > sub->expires) {
			sub->has_min_expires = true;
			sub->expires = (unsigned)min;
			send_subscribe(sub, was, sub->expires);
			goto out;
		}
	}
	switch (was) {
	case SUB_SUBSCRIBING:
		sub_end(sub, status, "refused", retry_after_of(resp));
		break;
	case SUB_REFRESHING:
		/* RFC 6665 §4.1.2.2: 481 (and a refresh that got no answer: the
		 * notifier may be a new instance) means the dialog is gone; a new
		 * subscription replaces it. */
		if (status == 481 || status == 408) {
			log_info("sip: subscription %" PRIu64 ": refresh answered %d, subscribing anew", sub->id,
				 status);
			subscribe_new(sub);
		} else {
			refresh_retry(sub, status, retry_after_of(resp));
		}
		break;
	case SUB_UNSUBSCRIBING:
		sub_end(sub, status, "unsubscribed", -1);
		break;
	default:
		break;
	}
out:
	sub_unref(sub); /* the transaction's */
}

/* ---- NOTIFY ------------------------------------------------------------------------------------ */

static void answer(struct sip_request *req, int status, const char *why)
{
	struct sip_header h = { "Warning", NULL };
	char warning[200];

	if (why) {
		snprintf(warning, sizeof(warning), "399 xdmsd \"%s\"", why);
		h.value = warning;
	}
	if (sip_request_respond(req, status, NULL, &h, why ? 1 : 0, NULL, NULL, 0))
		log_warn("sip: could not answer NOTIFY with %d", status);
}

static struct sip_sub *sub_find(struct sip_subscriber *m, const char *call_id, const char *local_tag)
{
	if (!call_id || !local_tag)
		return NULL;
	for (struct sip_sub *sub = m->by_call_id[bucket_of(call_id)]; sub; sub = sub->hnext)
		if (!strcmp(sub->call_id, call_id) && !strcmp(sub->local_tag, local_tag))
			return sub;
	return NULL;
}

/* The dialog from a NOTIFY that came before the 2xx (RFC 6665 §4.1.2.4). */
static void dialog_from_notify(struct sip_sub *sub, struct sip_request *req)
{
	const char *rr;

	sub->remote_tag = xstrdup(sip_request_from_tag(req));
	sub->remote_target = xstrdup(sip_request_contact_uri(req));
	/* The NOTIFY's sender is the UAS side here: the set as received. */
	for (size_t i = 0; (rr = sip_request_header(req, "Record-Route", i)) && i < 16; i++) {
		sub->routes = xrealloc(sub->routes, (sub->route_count + 1) * sizeof(*sub->routes));
		sub->routes[sub->route_count++] = xstrdup(rr);
	}
}

static void on_notify(void *arg, struct sip_request *req)
{
	struct sip_subscriber *m = arg;
	struct sip_sub_state st;
	struct sip_sub_notify n = { 0 };
	const char *event = sip_request_event(req), *from_tag = sip_request_from_tag(req), *contact, *ss;
	struct sip_sub *sub;
	bool is_dialog_changed = false;
	uint32_t cseq = sip_request_cseq(req);
	size_t body_len = 0;
	const char *body;

	if (!event || strcmp(event, "xcap-diff") != 0) {
		static const struct sip_header h[] = { { "Allow-Events", SIP_ALLOW_EVENTS } };

		if (sip_request_respond(req, 489, NULL, h, 1, NULL, NULL, 0))
			log_warn("sip: could not answer NOTIFY with 489");
		return;
	}
	sub = sub_find(m, sip_request_call_id(req), sip_request_to_tag(req));
	if (!sub || sub->state == SUB_IDLE || !from_tag || (sub->remote_tag && strcmp(sub->remote_tag, from_tag))) {
		log_info("sip: NOTIFY from %s call-id %s matches no subscription: 481", sip_request_source(req),
			 sip_request_call_id(req));
		answer(req, 481, "no such subscription");
		return;
	}
	if (sub->has_remote_cseq && cseq == sub->remote_cseq) {
		/* A retransmission whose first copy was answered 200 (our
		 * transactions end on the answer): the same answer again. */
		sip_request_end_on_answer(req);
		answer(req, 200, NULL);
		return;
	}
	if (sub->has_remote_cseq && cseq < sub->remote_cseq) {
		answer(req, 500, "CSeq out of order");
		return;
	}
	ss = sip_request_header(req, "Subscription-State", 0);
	if (!ss || !sip_sub_state_parse(ss, &st)) {
		answer(req, 400, "missing or malformed Subscription-State");
		return;
	}
	contact = sip_request_contact_uri(req);
	if (!sub->remote_tag) {
		if (!contact) {
			answer(req, 400, "missing Contact");
			return;
		}
		dialog_from_notify(sub, req);
		is_dialog_changed = true;
	} else if (contact && (!sub->remote_target || strcmp(contact, sub->remote_target) != 0)) {
		/* NOTIFY is a target refresh request (RFC 6665 §4.1.3). */
		free(sub->remote_target);
		sub->remote_target = xstrdup(contact);
		is_dialog_changed = true;
	}
	sub->remote_cseq = cseq;
	sub->has_remote_cseq = true;
	body = sip_request_body(req, &body_len);
	n.state = st.state;
	n.expires = st.expires;
	n.reason = st.reason[0] ? st.reason : NULL;
	n.retry_after = st.retry_after;
	n.content_type = sip_request_content_type(req);
	if (body_len > m->c.max_notify_body) {
		/* The subscription goes on; the caller fetches the document. */
		log_warn("sip: subscription %" PRIu64 ": a %zu-byte NOTIFY body is over the limit; not passed on",
			 sub->id, body_len);
		n.is_body_dropped = true;
	} else if (body_len > 0) {
		n.body = body;
		n.body_len = body_len;
	}
	/* The strings above are the request's; keep it until the callback is done. */
	{
		char *state = xstrdup(st.state), *ctype = dup_or_null(n.content_type), *copy = NULL;

		if (n.body) {
			copy = xmalloc(n.body_len + 1);
			memcpy(copy, n.body, n.body_len);
			copy[n.body_len] = '\0';
			n.body = copy;
		}
		n.state = state;
		n.content_type = ctype;
		/* A final NOTIFY keeps its transaction: once the subscription is
		 * gone, a retransmission could no longer be told from a stray. */
		if (strcasecmp(st.state, "terminated") != 0)
			sip_request_end_on_answer(req);
		answer(req, 200, NULL);
		sub_ref(sub);
		if (is_dialog_changed && sub->state != SUB_SUBSCRIBING)
			report_dialog(sub);
		sub->cb.on_notify(sub->arg, &n);
		if (!strcasecmp(st.state, "terminated")) {
			bool was_closing = sub->state == SUB_CLOSING || sub->state == SUB_UNSUBSCRIBING;

			sub_end(sub, 0, was_closing ? "unsubscribed" : st.reason[0] ? st.reason : "terminated",
				st.retry_after);
		} else if (st.expires >= 0 && sub->state != SUB_ENDED) {
			int64_t at = now_s() + st.expires;

			/* A shorter time than the 200 granted: refresh earlier. */
			if (!sub->expires_at || at < sub->expires_at) {
				sub->expires_at = at;
				if (sub->state == SUB_ACTIVE)
					refresh_arm(sub);
			}
		}
		sub_unref(sub);
		free(state);
		free(ctype);
		free(copy);
	}
}

/* ---- the module and the queued entry points ----------------------------------------------------- */

static void attach(void *arg)
{
	struct sip_subscriber *m = arg;

	sip_server_on_notify(m->s, on_notify, m);
	pthread_mutex_lock(&m->lock);
	m->is_done = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void detach(void *arg)
{
	struct sip_subscriber *m = arg;

	while (m->subs)
		sub_end(m->subs, 0, "abandoned", -1);
	sip_server_on_notify(m->s, NULL, NULL);
	pthread_mutex_lock(&m->lock);
	m->is_done = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void wait_done(struct sip_subscriber *m)
{
	pthread_mutex_lock(&m->lock);
	while (!m->is_done)
		pthread_cond_wait(&m->cond, &m->lock);
	m->is_done = false;
	pthread_mutex_unlock(&m->lock);
}

enum xdms_err sip_subscriber_create(struct sip_server *s, const struct sip_subscriber_conf *c,
				    struct sip_subscriber **out)
{
	struct sip_subscriber *m = xcalloc(1, sizeof(*m));

	*out = NULL;
	m->s = s;
	if (c)
		m->c = *c;
	if (!m->c.max_subscriptions)
		m->c.max_subscriptions = DEFAULT_MAX_SUBSCRIPTIONS;
	if (!m->c.max_notify_body)
		m->c.max_notify_body = DEFAULT_MAX_NOTIFY_BODY;
	if (!m->c.refresh_margin)
		m->c.refresh_margin = DEFAULT_REFRESH_MARGIN;
	if (!m->c.default_expires)
		m->c.default_expires = DEFAULT_EXPIRES;
	if (getrandom(&m->rnd, sizeof(m->rnd), 0) != (ssize_t)sizeof(m->rnd) || !m->rnd)
		m->rnd = monotonic_ms() | 1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	if (sip_server_call(s, attach, m)) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
		free(m);
		return XDMS_ERR_BUSY;
	}
	wait_done(m);
	*out = m;
	return XDMS_ERR_OK;
}

void sip_subscriber_destroy(struct sip_subscriber *m)
{
	if (!m)
		return;
	if (sip_server_call(m->s, detach, m) == XDMS_ERR_OK)
		wait_done(m);
	else
		log_error("sip: the subscriber was destroyed after the server began stopping");
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

static struct sip_sub *sub_create(struct sip_subscriber *m, const struct sip_sub_params *p,
				  const struct sip_sub_callbacks *cb, void *arg)
{
	static atomic_uint_fast64_t next_id = 1;
	struct sip_sub *sub;

	if (!m || !p || !cb || !cb->on_notify || !cb->on_end || !is_clean(p->target) ||
	    !is_clean(p->resource_uri) || !is_clean(p->local_uri) || p->entry_count == 0 ||
	    p->entry_count > MAX_ENTRIES || (p->username && !is_clean(p->username)) ||
	    (p->password && strlen(p->password) >= MAX_FIELD) ||
	    (p->diff_processing && strcmp(p->diff_processing, "no-patching") &&
	     strcmp(p->diff_processing, "xcap-patching") && strcmp(p->diff_processing, "aggregate")))
		return NULL;
	for (size_t i = 0; i < p->entry_count; i++)
		if (!is_clean(p->entries[i]))
			return NULL;
	sub = xcalloc(1, sizeof(*sub));
	if (!target_parse(p->target, &sub->transport, sub->dest, sizeof(sub->dest))) {
		free(sub);
		return NULL;
	}
	atomic_init(&sub->refs, 2); /* the caller's and the one while alive */
	sub->m = m;
	sub->s = m->s;
	sub->cb = *cb;
	sub->arg = arg;
	sub->id = atomic_fetch_add(&next_id, 1);
	sub->target = xstrdup(p->target);
	sub->resource_uri = xstrdup(p->resource_uri);
	sub->local_uri = xstrdup(p->local_uri);
	sub->username = dup_or_null(p->username);
	sub->password = dup_or_null(p->password);
	sub->diff_processing = dup_or_null(p->diff_processing);
	sub->entries = xcalloc(p->entry_count, sizeof(*sub->entries));
	for (size_t i = 0; i < p->entry_count; i++)
		sub->entries[i] = xstrdup(p->entries[i]);
	sub->entry_count = p->entry_count;
	sub->expires = p->expires ? p->expires : m->c.default_expires;
	return sub;
}

/* IDLE -> listed; false (and the end) when the limit is reached. */
static bool sub_list(struct sip_sub *sub)
{
	struct sip_subscriber *m = sub->m;

	if (m->sub_count >= m->c.max_subscriptions) {
		log_warn("sip: subscription to %s for %s refused: %u subscriptions already", sub->target,
			 sub->resource_uri, m->sub_count);
		sub_end(sub, 0, "limit", -1);
		return false;
	}
	sub->next = m->subs;
	if (m->subs)
		m->subs->prev = sub;
	m->subs = sub;
	m->sub_count++;
	if (sub->call_id)
		hash_add(sub);
	return true;
}

static void op_start(void *arg)
{
	struct sip_sub *sub = arg;

	if (sub->state == SUB_IDLE && sub_list(sub)) {
		log_info("sip: subscription %" PRIu64 " to %s for %s (%zu resources, %us)", sub->id, sub->target,
			 sub->resource_uri, sub->entry_count, sub->expires);
		subscribe_new(sub);
	}
	sub_unref(sub); /* the queued call's */
}

static void op_resume(void *arg)
{
	struct sip_sub *sub = arg;

	struct sip_subscriber *m = sub->m;
	int64_t left = sub->expires_at ? sub->expires_at - now_s() : INT64_MAX;

	if (sub->state == SUB_IDLE && sub_list(sub)) {
		if (!sub->remote_tag || !sub->remote_target || left <= 0) {
			/* No dialog yet, or one that has ended since: start anew. */
			subscribe_new(sub);
		} else if (m->c.resume_spread && left > 2) {
			/* The dialog is taken now (its NOTIFYs are answered); its
			 * refresh comes at a random point of the spread. */
			int64_t span = (int64_t)m->c.resume_spread < left / 2 ? (int64_t)m->c.resume_spread : left / 2;

			log_info("sip: subscription %" PRIu64 " to %s for %s resumed (call-id %s)", sub->id,
				 sub->target, sub->resource_uri, sub->call_id);
			sub->state = SUB_ACTIVE;
			timer_arm(sub, rnd_next(m) % ((uint64_t)span * 1000 + 1));
		} else {
			log_info("sip: subscription %" PRIu64 " to %s for %s resumed (call-id %s)", sub->id,
				 sub->target, sub->resource_uri, sub->call_id);
			/* A NOTIFY of the dialog is taken while the refresh is out. */
			send_subscribe(sub, SUB_REFRESHING, sub->expires);
		}
	}
	sub_unref(sub);
}

static void op_unsubscribe(void *arg)
{
	struct sip_sub *sub = arg;

	switch (sub->state) {
	case SUB_ACTIVE:
		unsubscribe_now(sub);
		break;
	case SUB_IDLE:
	case SUB_SUBSCRIBING:
	case SUB_REFRESHING:
		sub->is_unsubscribe_wanted = true;
		break;
	default:
		break;
	}
	sub_unref(sub);
}

static void op_abandon(void *arg)
{
	struct sip_sub *sub = arg;

	if (sub->state != SUB_ENDED)
		sub_end(sub, 0, "abandoned", -1);
	sub_unref(sub);
}

static bool queue(struct sip_sub *sub, sip_run_fn fn)
{
	sub_ref(sub);
	if (sip_server_call(sub->s, fn, sub) == XDMS_ERR_OK)
		return true;
	sub_unref(sub);
	return false;
}

struct sip_sub *sip_sub_start(struct sip_subscriber *m, const struct sip_sub_params *p,
			      const struct sip_sub_callbacks *cb, void *arg)
{
	struct sip_sub *sub = sub_create(m, p, cb, arg);

	if (!sub)
		return NULL;
	if (!queue(sub, op_start)) {
		sub_free(sub);
		return NULL;
	}
	return sub;
}

struct sip_sub *sip_sub_resume(struct sip_subscriber *m, const struct sip_sub_params *p,
			       const struct sip_sub_dialog *d, const struct sip_sub_callbacks *cb, void *arg)
{
	struct sip_sub *sub;

	if (!d || !is_clean(d->call_id) || !is_clean(d->local_tag) || strlen(d->local_tag) >= 48 ||
	    (d->remote_tag && !is_clean(d->remote_tag)) || (d->remote_target && !is_clean(d->remote_target)) ||
	    d->route_count > 16)
		return NULL;
	for (size_t i = 0; i < d->route_count; i++)
		if (!is_clean(d->route_set[i]))
			return NULL;
	sub = sub_create(m, p, cb, arg);
	if (!sub)
		return NULL;
	sub->call_id = xstrdup(d->call_id);
	snprintf(sub->local_tag, sizeof(sub->local_tag), "%s", d->local_tag);
	sub->remote_tag = dup_or_null(d->remote_tag);
	sub->remote_target = dup_or_null(d->remote_target);
	sub->routes = d->route_count ? xcalloc(d->route_count, sizeof(*sub->routes)) : NULL;
	for (size_t i = 0; i < d->route_count; i++)
		sub->routes[sub->route_count++] = xstrdup(d->route_set[i]);
	sub->cseq = d->cseq + RESUME_CSEQ_GAP;
	sub->expires_at = d->expires_at;
	if (!queue(sub, op_resume)) {
		sub_free(sub);
		return NULL;
	}
	return sub;
}

void sip_sub_unsubscribe(struct sip_sub *sub)
{
	if (sub && !queue(sub, op_unsubscribe))
		log_debug("sip: unsubscribe after the server began stopping");
}

void sip_sub_abandon(struct sip_sub *sub)
{
	if (sub && !queue(sub, op_abandon))
		log_debug("sip: abandon after the server began stopping");
}

void sip_sub_release(struct sip_sub *sub)
{
	if (sub)
		sub_unref(sub);
}
