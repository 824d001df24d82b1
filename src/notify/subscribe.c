/* SPDX-License-Identifier: MIT */
/*
 * The SUBSCRIBE front (RFC 6665, RFC 5875): who subscribes (asserted
 * identity, From, or Digest), what (the resource list), how (diff-processing
 * mode, Expires), and the answer: a new subscription, a refresh, an
 * unsubscribe or a fetch.
 *
 * Design: a new or refreshed subscription is answered 200 only once its
 * record is durable (subscribe_ready, refresh_ready run when the write is
 * done); a refresh changes memory only then, so that a failed write leaves
 * the subscription as it was (RFC 6665 §4.1.2.2).
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

static const char *const mode_names[] = { "no-patching", "xcap-patching", "aggregate" };

/* ---- SUBSCRIBE ------------------------------------------------------------------------------ */

static void respond(struct sip_request *req, int status, const char *reason, const struct sip_header *h,
		    size_t nh)
{
	if (sip_request_respond(req, status, reason, h, nh, NULL, NULL, 0))
		log_warn("notify: could not answer SUBSCRIBE with %d", status);
}

static void respond_why(struct sip_request *req, int status, const char *why)
{
	struct sip_header h = { "Warning", NULL };
	char warning[300];

	/* RFC 3261 §20.43: 399 is "miscellaneous warning"; the text tells a person why. */
	snprintf(warning, sizeof(warning), "399 xdmsd \"%s\"", why);
	h.value = warning;
	respond(req, status, NULL, &h, 1);
}

static bool is_privileged(const struct notifier *n, const char *identity)
{
	return xcap_role_of(n->c, identity) != XCAP_ROLE_USER;
}

/*
 * Who is subscribing. Returns true with @identity set, or false after
 * answering the request (401 challenge or 403).
 */
static bool subscriber(struct notifier *n, struct sip_request *req, char *identity)
{
	const char *h, *why = "no credentials";
	const char *from = sip_request_from_uri(req);
	char realm[STORE_REALM_MAX];
	struct sip_header ch[2];
	char challenges[2][600];
	bool is_stale = false;
	const char *at;

	if (conf_list_has(&n->c->sip_trusted_peers, sip_request_source_ip(req))) {
		for (size_t i = 0; (h = sip_request_header(req, "P-Asserted-Identity", i)); i++) {
			if (auth_identity_uri(h, identity, STORE_XUI_MAX) &&
			    (!strncmp(identity, "sip:", 4) || !strncmp(identity, "sips:", 5) ||
			     !strncmp(identity, "tel:", 4)))
				return true;
		}
	}
	if (n->c->sip_trust_from && from && strlen(from) < STORE_XUI_MAX) {
		snprintf(identity, STORE_XUI_MAX, "%s", from);
		return true;
	}
	/* The realm of the subscriber's domain, as for its XCAP documents. */
	at = from && (!strncmp(from, "sip:", 4) || !strncmp(from, "sips:", 5)) ? strchr(from, '@') : NULL;
	if (at && strlen(at + 1) < sizeof(realm)) {
		snprintf(realm, sizeof(realm), "%s", at + 1);
		realm[strcspn(realm, ";:>")] = '\0';
	} else {
		digest_default_realm(n->st, n->c, realm, sizeof(realm));
	}
	h = sip_request_header(req, "Authorization", 0);
	if (h && !strncasecmp(h, "Digest ", 7)) {
		switch (digest_verify(n->digest, n->st, h, "SUBSCRIBE", sip_request_uri(req), realm, identity,
				      &why)) {
		case DIGEST_VERDICT_OK:
			return true;
		case DIGEST_VERDICT_STALE:
			is_stale = true;
			break;
		case DIGEST_VERDICT_CHALLENGE:
			break;
		}
	}
	log_info("notify: SUBSCRIBE from %s (%s) challenged: %s", from ? from : "?", sip_request_source(req), why);
	for (size_t i = 0; i < n->digest->algo_count; i++) {
		digest_challenge(n->digest, n->digest->algos[i], realm, is_stale, challenges[i],
				 sizeof(challenges[i]));
		ch[i].name = "WWW-Authenticate";
		ch[i].value = challenges[i];
	}
	respond(req, 401, NULL, ch, n->digest->algo_count);
	return false;
}

static enum mode event_mode(struct sip_request *req)
{
	const char *ev = sip_request_header(req, "Event", 0);
	const char *p = ev ? strcasestr(ev, "diff-processing") : NULL;

	if (!p)
		return MODE_NO_PATCHING;
	p += strlen("diff-processing");
	while (*p == ' ')
		p++;
	if (*p++ != '=')
		return MODE_NO_PATCHING;
	while (*p == ' ' || *p == '"')
		p++;
	for (int m = MODE_AGGREGATE; m > 0; m--) {
		size_t l = strlen(mode_names[m]);

		if (!strncasecmp(p, mode_names[m], l) && strchr(" ;\",", p[l]))
			return (enum mode)m;
	}
	return MODE_NO_PATCHING; /* absent or unknown (SPEC §2.3) */
}

static bool accepts_xcap_diff(struct sip_request *req)
{
	const char *h;
	size_t i;

	for (i = 0; (h = sip_request_header(req, "Accept", i)); i++) {
		while (*h == ' ')
			h++;
		if (!strncasecmp(h, DIFF_MIME, strlen(DIFF_MIME)) || !strncmp(h, "*/*", 3) ||
		    !strncasecmp(h, "application/*", 13))
			return true;
	}
	return i == 0; /* no Accept: the package's default type (RFC 6665 §8.2) */
}

static void subscribe_ready(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);
	struct sip_header h = { "Expires", NULL };
	char expires[16];

	if (b->w.result || !s) {
		respond_why(b->req, 500, "the subscription could not be stored");
		if (s)
			sub_end(n, s, false);
		return;
	}
	snprintf(expires, sizeof(expires), "%u", b->granted);
	h.value = expires;
	respond(b->req, 200, NULL, &h, 1);
	s->block_wait = false;
	sub_transition(s, SUB_EV_FULL_DUE, NULL);
	sub_expiry_arm(n, s);
	sub_send(n, s);
}

static void subscribe_persist(struct notifier *n, struct sub *s, struct sip_request *req, unsigned granted)
{
	struct pbatch *pb = pbatch_new(n);

	s->block_wait = true;
	s->is_dirty = false;
	pbatch_add(pb, s, false);
	pb->then = subscribe_ready;
	pb->req = req;
	pb->sub_id = s->id;
	pb->granted = granted;
	if (pbatch_submit(n, pb)) {
		respond_why(req, 500, "the subscription could not be stored");
		s->block_wait = false;
		sub_end(n, s, false);
	}
}

/* Exchanges the refreshable state of @s with @rf (twice restores both). */
static void refresh_swap(struct notifier *n, struct sub *s, struct refresh *rf)
{
	struct entry *es = s->entries;
	size_t ne = s->entry_count;
	int64_t expires_ms = s->expires_ms;
	enum mode mode = s->mode;
	char *target = s->target, *dest = s->dest;
	enum sip_transport transport = s->transport;

	if (rf->es) {
		if (n)
			sub_index(n, s, false);
		s->entries = rf->es;
		s->entry_count = rf->ne;
		rf->es = es;
		rf->ne = ne;
		if (n)
			sub_index(n, s, true);
	}
	s->expires_ms = rf->expires_ms;
	rf->expires_ms = expires_ms;
	s->mode = rf->mode;
	rf->mode = mode;
	if (rf->target) {
		s->target = rf->target;
		rf->target = target;
	}
	s->dest = rf->dest;
	rf->dest = dest;
	s->transport = rf->transport;
	rf->transport = transport;
}

/* The refresh is durable: it takes effect, 200, and a full state follows. */
static void refresh_ready(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);
	struct sip_header h = { "Expires", NULL };
	char expires[16];

	if (!s || sub_is_ending(s)) {
		respond_why(b->req, 481, "no such subscription");
		return;
	}
	s->block_wait = false;
	if (b->w.result) {
		/* RFC 6665 §4.1.2.2: a failed refresh leaves the subscription as it was. */
		respond_why(b->req, 500, "the refresh could not be stored; the subscription is unchanged");
		sub_send(n, s);
		return;
	}
	refresh_swap(n, s, b->refresh); /* b->refresh now holds the old state, freed with b */
	snprintf(expires, sizeof(expires), "%u", b->granted);
	h.value = expires;
	respond(b->req, 200, NULL, &h, 1);
	sub_transition(s, SUB_EV_FULL_DUE, NULL);
	sub_expiry_arm(n, s);
	sub_send(n, s);
}

static void on_refresh(struct notifier *n, struct sip_request *req, const char *identity, long expires,
		       struct entry *es, size_t ne)
{
	struct sub *s = sub_find_dialog(n, sip_request_call_id(req), sip_request_from_tag(req),
					sip_request_to_tag(req));
	struct sip_header h = { "Expires", "0" };
	struct refresh *rf;
	struct pbatch *pb;

	if (!s || sub_is_ending(s)) {
		respond_why(req, 481, "no such subscription");
		goto drop;
	}
	if (strcmp(s->identity, identity) != 0) {
		respond_why(req, 403, "the subscription belongs to someone else");
		goto drop;
	}
	rf = xcalloc(1, sizeof(*rf));
	rf->es = es;
	rf->ne = ne;
	rf->expires_ms = expires ? (int64_t)wall_ms() + expires * 1000 : s->expires_ms;
	rf->mode = expires ? event_mode(req) : s->mode;
	rf->target = sip_request_contact_uri(req) ? xstrdup(sip_request_contact_uri(req)) : NULL;
	rf->dest = xstrdup(sip_request_source(req));
	rf->transport = sip_request_transport(req);
	if (expires == 0) {
		/* Unsubscribe: nothing to store; the final NOTIFY goes where the
		 * subscriber is now, with the state of the list it asked for. */
		refresh_swap(n, s, rf);
		refresh_free(rf);
		respond(req, 200, NULL, &h, 1);
		sip_timer_cancel(n->sip, s->expiry_timer);
		s->expiry_timer = NULL;
		sub_transition(s, SUB_EV_END_FULL, "timeout");
		sub_send(n, s);
		return;
	}
	/* The record written is the refreshed state; memory changes once it is durable. */
	pb = pbatch_new(n);
	refresh_swap(NULL, s, rf);
	pbatch_add(pb, s, false);
	refresh_swap(NULL, s, rf);
	pb->refresh = rf;
	pb->then = refresh_ready;
	pb->req = req;
	pb->sub_id = s->id;
	pb->granted = (unsigned)expires;
	s->block_wait = true;
	if (pbatch_submit(n, pb)) {
		s->block_wait = false;
		respond_why(req, 500, "the refresh could not be stored; the subscription is unchanged");
	}
	return;
drop:
	for (size_t i = 0; i < ne; i++)
		entry_cleanup(&es[i]);
	free(es);
}

void notifier_on_subscribe(void *arg, struct sip_request *req)
{
	struct notifier *n = arg;
	char identity[STORE_XUI_MAX], expires_hdr[16], retry[16];
	struct sip_header h;
	long expires = sip_request_expires(req);
	const char *ctype, *body, *why = NULL, *rr;
	struct entry *es = NULL;
	size_t ne = 0, body_len = 0;
	struct sub *s;
	bool is_priv;
	int status;

	if (!n->is_started || n->is_stopping) {
		snprintf(retry, sizeof(retry), "%u", 5u);
		h.name = "Retry-After";
		h.value = retry;
		respond(req, 503, NULL, &h, 1);
		return;
	}
	if (expires < 0)
		expires = n->c->notify_default_expires;
	if (expires > 0 && (unsigned long)expires < n->c->notify_min_expires) {
		snprintf(expires_hdr, sizeof(expires_hdr), "%u", n->c->notify_min_expires);
		h.name = "Min-Expires";
		h.value = expires_hdr;
		respond(req, 423, NULL, &h, 1);
		return;
	}
	if ((unsigned long)expires > n->c->notify_max_expires)
		expires = n->c->notify_max_expires;
	if (!accepts_xcap_diff(req)) {
		respond_why(req, 406, "the subscriber does not accept application/xcap-diff+xml");
		return;
	}
	body = sip_request_body(req, &body_len);
	ctype = sip_request_content_type(req);
	if (body_len && (!ctype || strcasecmp(ctype, RL_MIME) != 0)) {
		h.name = "Accept";
		h.value = RL_MIME;
		respond(req, 415, NULL, &h, 1);
		return;
	}
	if (!subscriber(n, req, identity))
		return;
	is_priv = is_privileged(n, identity);
	if (body_len) {
		status = entries_from_body(n, body, body_len, identity, is_priv, &es, &ne, &why);
		if (status) {
			log_info("notify: SUBSCRIBE from %s refused %d: %s", identity, status, why);
			respond_why(req, status, why);
			return;
		}
	}
	if (sip_request_to_tag(req)) {
		on_refresh(n, req, identity, expires, es, ne);
		return;
	}
	if (!es) {
		respond_why(req, 400, "a new subscription needs a resource list");
		return;
	}
	if (n->sub_count >= n->c->notify_max_subscriptions ||
	    (!is_priv && user_sub_count(n, identity) >= n->c->notify_max_per_user)) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		snprintf(retry, sizeof(retry), "%u", n->c->notify_retry_after);
		h.name = "Retry-After";
		h.value = retry;
		log_warn("notify: SUBSCRIBE from %s refused: too many subscriptions", identity);
		respond(req, 503, NULL, &h, 1);
		return;
	}
	if (!sip_request_contact_uri(req)) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		respond_why(req, 400, "missing Contact");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->n = n;
	s->id = n->next_id++;
	s->call_id = xstrdup(sip_request_call_id(req));
	s->local_uri = xstrdup(sip_request_to_uri(req));
	s->local_tag = xstrdup(sip_request_local_tag(req));
	s->remote_uri = xstrdup(sip_request_from_uri(req));
	s->remote_tag = dup_or_null(sip_request_from_tag(req));
	s->target = xstrdup(sip_request_contact_uri(req));
	/* RFC 3261 §12.1.1: the UAS takes the Record-Route set in order. */
	for (size_t i = 0; (rr = sip_request_header(req, "Record-Route", i)); i++) {
		s->routes = xrealloc(s->routes, (s->route_count + 1) * sizeof(*s->routes));
		s->routes[s->route_count++] = xstrdup(rr);
	}
	s->transport = sip_request_transport(req);
	s->dest = xstrdup(sip_request_source(req));
	s->identity = xstrdup(identity);
	s->is_privileged = is_priv;
	s->mode = event_mode(req);
	s->expires_ms = (int64_t)wall_ms() + expires * 1000;
	s->cseq_block = CSEQ_BLOCK;
	s->acked_seq = s->queued_seq = n->feed_seq;
	s->entries = es;
	s->entry_count = ne;
	sub_register(n, s);
	log_info("notify: %s subscribes (%s, %zu resources, %s, %lds) from %s", identity, mode_names[s->mode], ne,
		 s->transport == SIP_TRANSPORT_TCP ? "tcp" : "udp", expires, s->dest);
	if (expires == 0) {
		/* A fetch (RFC 6665 §4.4.3): the state once, then the end. */
		h.name = "Expires";
		h.value = "0";
		s->is_transient = true;
		respond(req, 200, NULL, &h, 1);
		sub_transition(s, SUB_EV_END_FULL, "timeout");
		sub_send(n, s);
		return;
	}
	subscribe_persist(n, s, req, (unsigned)expires);
}
