/* SPDX-License-Identifier: MIT */
/*
 * The libosip2 glue: one osip_t whose transactions the loop drives.
 *
 * Server side: a new request gets an IST (INVITE) or a NIST (anything else)
 * whose context (osip's "your instance") is a struct sip_request. On the
 * first pass of the state machine libosip2 reports the request through a
 * message callback, which calls sip_dispatch; the response goes back into
 * the transaction as an event, so libosip2 keeps it and answers
 * retransmissions with it (RFC 3261 §17.2.2) until Timer J, and for INVITE
 * retransmits the final answer until the ACK (Timer G/H, §17.2.1).
 *
 * Client side: sip_send_request builds the request and starts a NICT whose
 * context is a struct sip_client; libosip2 retransmits it over UDP (Timer E,
 * T1 = 500 ms doubling to T2) and gives up at Timer F (64*T1). Over TCP (Via
 * transport TCP) libosip2 itself disables retransmission. The first final
 * response, Timer F, a transport error or the transaction's end reports the
 * outcome exactly once.
 *
 * libosip2 leaves freeing to the application: the kill callback only
 * queues the transaction, and sip_osip_run frees it (with its context)
 * after the execute pass that killed it, when no osip code holds it.
 *
 * Memory under a flood. A server transaction holds the parsed request and
 * its answer, some 20 KB, for Timer J (32 s over UDP) after the answer. A
 * final answer other than 2xx changes nothing on our side (a challenge, a
 * refusal), so such a transaction ends as soon as the answer is sent: a
 * retransmitted request is then simply answered again, as a stateless
 * server would (RFC 3261 §8.2.7). So does a 2xx whose handler asked for it
 * (sip_request_end_on_answer: the subscriber's NOTIFYs, which it tells
 * apart by CSeq, so that thousands of dialogs do not hold thousands of
 * transactions). Those that stay (other 2xx) are capped by
 * sip.max_transactions and, per source address outside sip.trusted_peers,
 * by sip.max_per_source; a request over a cap gets a stateless 503 with
 * Retry-After (message.c). When a flood has passed (the transactions alive
 * fell to a sixteenth of their peak), malloc_trim() gives the freed memory
 * back to the system, at most once a second.
 *
 * libosip2 is built thread-safe but we use it from the loop thread only.
 */
#include "config.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>

#include "base/net.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "sip/sip_int.h"

static struct sip_server *server_of(osip_transaction_t *tr)
{
	return osip_get_application_context(tr->config);
}

static const struct sip_transport_ops *ops_for(enum sip_transport t)
{
	return t == SIP_TRANSPORT_TCP ? &sip_transport_tcp_ops : &sip_transport_udp_ops;
}

static int cb_send(osip_transaction_t *tr, osip_message_t *msg, char *host, int port, int out_socket)
{
	struct sip_server *s;
	struct sip_peer to;
	bool may_connect;
	char *text = NULL;
	size_t len = 0;
	enum xdms_err err;

	if (!tr)
		return -1; /* ixt retransmissions (2xx to INVITE): never started */
	s = server_of(tr);
	if (tr->ctx_type == NIST || tr->ctx_type == IST) {
		struct sip_request *r = osip_transaction_get_your_instance(tr);

		to = r->peer;
		/* RFC 3261 §18.2.2 with RFC 3581: to the source IP (it is the
		 * "received" value, or the Via host when they are equal), at
		 * rport if present, else at the Via port. Over TCP, on the
		 * connection the request came on. */
		if (to.transport == SIP_TRANSPORT_UDP && port > 0 && port < 65536) {
			if (to.addr.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&to.addr)->sin6_port = htons((uint16_t)port);
			else
				((struct sockaddr_in *)&to.addr)->sin_port = htons((uint16_t)port);
		}
		may_connect = false;
	} else {
		struct sip_client *c = osip_transaction_get_your_instance(tr);

		to = c->peer;
		may_connect = true;
	}
	if (osip_message_to_str(msg, &text, &len) != 0 || !text)
		return -1;
	err = ops_for(to.transport)->send(s, &to, text, len, may_connect);
	osip_free(text);
	return err ? -1 : 0;
}

static void cb_new_request(int type, osip_transaction_t *tr, osip_message_t *msg)
{
	struct sip_request *r = osip_transaction_get_your_instance(tr);

	r->msg = msg;
	sip_dispatch(r->s, r);
}

/* Reports the outcome once; @msg is the final response, NULL when none came. */
static void report_response(struct sip_client *c, int status, osip_message_t *msg)
{
	struct sip_response resp = { .msg = msg };

	if (c->is_reported)
		return;
	c->is_reported = true;
	if (c->done) {
		c->done(c->arg, status);
		return;
	}
	c->on_response(c->arg, status, msg ? &resp : NULL);
	sip_response_cleanup(&resp);
}

static void report(struct sip_client *c, int status)
{
	report_response(c, status, NULL);
}

void sip_clients_transport_failed(struct sip_server *s, const struct sockaddr_storage *peer)
{
	for (struct sip_client *c = s->clients; c; c = c->next)
		if (!c->is_reported && c->peer.transport == SIP_TRANSPORT_TCP && sip_addr_equal(&c->peer.addr, peer))
			report(c, 503);
}

static void cb_final(int type, osip_transaction_t *tr, osip_message_t *msg)
{
	report_response(osip_transaction_get_your_instance(tr), msg->status_code, msg);
}

static void cb_timeout(int type, osip_transaction_t *tr, osip_message_t *msg)
{
	report(osip_transaction_get_your_instance(tr), 408);
}

static void cb_transport_error(int type, osip_transaction_t *tr, int error)
{
	if (type == OSIP_NICT_TRANSPORT_ERROR) {
		report(osip_transaction_get_your_instance(tr), 503);
	} else {
		struct sip_request *r = osip_transaction_get_your_instance(tr);

		log_info("sip: could not send the response to %s (call-id %s)", r->source,
			 r->msg ? r->msg->call_id->number : "-");
	}
}

static void cb_kill(int type, osip_transaction_t *tr)
{
	struct sip_server *s = server_of(tr);

	if (s->dead_count == s->dead_cap) {
		s->dead_cap = s->dead_cap ? 2 * s->dead_cap : 64;
		s->dead = xrealloc(s->dead, s->dead_cap * sizeof(*s->dead));
	}
	s->dead[s->dead_count++] = tr;
}

/* FNV-1a of a string, into the client index (and, reduced, the sources). */
static unsigned branch_bucket(const char *branch)
{
	return (unsigned)(fnv1a_str(branch) % SIP_CLIENT_BUCKETS);
}

struct sip_client *sip_client_by_branch(struct sip_server *s, const char *branch)
{
	for (struct sip_client *c = s->client_index[branch_bucket(branch)]; c; c = c->hnext)
		if (!strcmp(c->branch, branch))
			return c;
	return NULL;
}

static void client_unlink(struct sip_server *s, struct sip_client *c)
{
	for (struct sip_client **pp = &s->client_index[branch_bucket(c->branch)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->client_count--;
}

/* ---- server transactions in flight, per source ----------------------------------------- */

static struct sip_source **source_find(struct sip_server *s, const char *ip)
{
	struct sip_source **p;

	for (p = &s->sources[branch_bucket(ip) % SIP_SOURCE_BUCKETS]; *p && strcmp((*p)->ip, ip) != 0;
	     p = &(*p)->next)
		;
	return p;
}

enum xdms_err sip_server_metrics(struct sip_server *s, struct buf *out)
{
	return buf_printf(out,
			  "# HELP xdms_sip_server_transactions SIP requests in progress (server transactions alive).\n"
			  "# TYPE xdms_sip_server_transactions gauge\nxdms_sip_server_transactions %u\n"
			  "# HELP xdms_sip_refused_total SIP requests refused with 503 by sip.max_transactions or "
			  "sip.max_per_source.\n# TYPE xdms_sip_refused_total counter\nxdms_sip_refused_total %llu\n",
			  atomic_load_explicit(&s->server_count, memory_order_relaxed),
			  (unsigned long long)atomic_load_explicit(&s->refused_count, memory_order_relaxed));
}

bool sip_server_admits(struct sip_server *s, const char *ip, const char **why)
{
	struct sip_source *src;

	if (s->c->sip_max_transactions && s->server_count >= s->c->sip_max_transactions) {
		*why = "sip.max_transactions";
		return false;
	}
	if (!s->c->sip_max_per_source || conf_list_has(&s->c->sip_trusted_peers, ip))
		return true;
	src = *source_find(s, ip);
	if (src && src->count >= s->c->sip_max_per_source) {
		*why = "sip.max_per_source";
		return false;
	}
	return true;
}

static void server_count_add(struct sip_server *s, struct sip_request *r)
{
	struct sip_source **p = source_find(s, r->source_ip);

	if (!*p) {
		*p = xcalloc(1, sizeof(**p));
		snprintf((*p)->ip, sizeof((*p)->ip), "%s", r->source_ip);
	}
	(*p)->count++;
	r->is_counted = true;
	if (++s->server_count > s->server_peak)
		s->server_peak = s->server_count;
}

static void server_count_del(struct sip_server *s, struct sip_request *r)
{
	struct sip_source **p = source_find(s, r->source_ip), *src = *p;

	if (!r->is_counted)
		return;
	r->is_counted = false;
	s->server_count--;
	if (src && --src->count == 0) {
		*p = src->next;
		free(src);
	}
}

/* Frees a transaction and its context; @status for an unreported client. */
static void transaction_free(struct sip_server *s, osip_transaction_t *tr, int status)
{
	void *ctx = osip_transaction_get_your_instance(tr);

	if (tr->ctx_type == NICT || tr->ctx_type == ICT) {
		struct sip_client *c = ctx;

		if (c) {
			report(c, status);
			client_unlink(s, c);
			free(c);
		}
	} else {
		if (ctx)
			server_count_del(s, ctx);
		sip_request_free(ctx);
	}
	osip_transaction_free(tr);
}

enum xdms_err sip_osip_init(struct sip_server *s)
{
	if (osip_init(&s->osip) != 0)
		return XDMS_ERR_IO;
	osip_set_application_context(s->osip, s);
	osip_set_cb_send_message(s->osip, cb_send);
	for (int t = OSIP_NIST_REGISTER_RECEIVED; t <= OSIP_NIST_UNKNOWN_REQUEST_RECEIVED; t++)
		osip_set_message_callback(s->osip, t, cb_new_request);
	osip_set_message_callback(s->osip, OSIP_IST_INVITE_RECEIVED, cb_new_request);
	for (int t = OSIP_NICT_STATUS_2XX_RECEIVED; t <= OSIP_NICT_STATUS_6XX_RECEIVED; t++)
		osip_set_message_callback(s->osip, t, cb_final);
	osip_set_message_callback(s->osip, OSIP_NICT_STATUS_TIMEOUT, cb_timeout);
	osip_set_kill_transaction_callback(s->osip, OSIP_IST_KILL_TRANSACTION, cb_kill);
	osip_set_kill_transaction_callback(s->osip, OSIP_NIST_KILL_TRANSACTION, cb_kill);
	osip_set_kill_transaction_callback(s->osip, OSIP_NICT_KILL_TRANSACTION, cb_kill);
	osip_set_kill_transaction_callback(s->osip, OSIP_ICT_KILL_TRANSACTION, cb_kill);
	osip_set_transport_error_callback(s->osip, OSIP_NIST_TRANSPORT_ERROR, cb_transport_error);
	osip_set_transport_error_callback(s->osip, OSIP_IST_TRANSPORT_ERROR, cb_transport_error);
	osip_set_transport_error_callback(s->osip, OSIP_NICT_TRANSPORT_ERROR, cb_transport_error);
	return XDMS_ERR_OK;
}

static bool has_pending_events(osip_list_t *list)
{
	osip_list_iterator_t it;

	/* An iterator, not osip_list_get(list, i): that walks from the head each
	 * time, and a fan-out keeps a thousand transactions in this list. */
	for (osip_transaction_t *tr = osip_list_get_first(list, &it); osip_list_iterator_has_elem(it);
	     tr = osip_list_get_next(&it)) {
		if (osip_fifo_size(tr->transactionff) > 0)
			return true;
	}
	return false;
}

static void free_dead(struct sip_server *s)
{
	/* The kill callback can only fire once per transaction, but a
	 * callback run while freeing may kill another: loop until empty. */
	while (s->dead_count > 0) {
		osip_transaction_t *tr = s->dead[--s->dead_count];

		transaction_free(s, tr, 408);
	}
}

/*
 * Ends the transactions answered with a final non-2xx status whose answer
 * has gone out. One that libosip2 terminated meanwhile (Timer J is 0 over
 * TCP) is on the dead list instead and is left to it.
 */
static void free_ended(struct sip_server *s)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->ended_count; i++) {
		osip_transaction_t *tr = s->ended[i];

		if (tr->state == NIST_TERMINATED)
			continue;
		if (tr->state == NIST_COMPLETED && osip_fifo_size(tr->transactionff) == 0)
			transaction_free(s, tr, 0);
		else
			s->ended[kept++] = tr;
	}
	s->ended_count = kept;
}

/* After a flood, give the memory its transactions held back to the system. */
static void trim_after_flood(struct sip_server *s)
{
	uint64_t now;

	if (s->server_peak < SIP_TRIM_PEAK || s->server_count > s->server_peak / 16)
		return;
	now = sip_now_ms();
	if (now < s->next_trim_ms)
		return;
	s->next_trim_ms = now + 1000;
	log_info("sip: %u server transactions at the peak, %u now: returning freed memory", s->server_peak,
		 s->server_count);
	s->server_peak = s->server_count;
	malloc_trim(0);
}

void sip_osip_run(struct sip_server *s)
{
	osip_timers_ist_execute(s->osip);
	osip_timers_nist_execute(s->osip);
	osip_timers_nict_execute(s->osip);
	/* Callbacks may queue events on other transactions (a result callback
	 * sending the next request); a few rounds settle them. */
	for (int round = 0; round < 4; round++) {
		osip_ist_execute(s->osip);
		osip_nist_execute(s->osip);
		osip_nict_execute(s->osip);
		if (!has_pending_events(&s->osip->osip_ist_transactions) &&
		    !has_pending_events(&s->osip->osip_nist_transactions) &&
		    !has_pending_events(&s->osip->osip_nict_transactions))
			break;
	}
	free_ended(s);
	free_dead(s);
	trim_after_flood(s);
}

int sip_osip_timeout_ms(struct sip_server *s)
{
	struct timeval tv = { 0 };
	long ms;

	osip_timers_gettimeout(s->osip, &tv);
	if (tv.tv_sec >= 1)
		return 1000;
	ms = tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	return ms < 0 ? 0 : (int)ms;
}

void sip_osip_shutdown(struct sip_server *s)
{
	osip_list_t *lists[4];

	if (!s->osip)
		return;
	/* Still in libosip2's lists: freed with them below. */
	s->ended_count = 0;
	free_dead(s);
	lists[0] = &s->osip->osip_ist_transactions;
	lists[1] = &s->osip->osip_nist_transactions;
	lists[2] = &s->osip->osip_nict_transactions;
	lists[3] = &s->osip->osip_ict_transactions;
	for (size_t i = 0; i < 4; i++) {
		osip_transaction_t *tr;

		while ((tr = osip_list_get(lists[i], 0)) != NULL)
			transaction_free(s, tr, 0);
	}
	osip_release(s->osip);
	s->osip = NULL;
	free(s->ended);
	s->ended = NULL;
	s->ended_cap = 0;
	for (size_t i = 0; i < SIP_SOURCE_BUCKETS; i++) {
		while (s->sources[i]) {
			struct sip_source *src = s->sources[i];

			s->sources[i] = src->next;
			free(src);
		}
	}
}

void sip_osip_new_server_transaction(struct sip_server *s, osip_event_t *evt, const struct sip_peer *from)
{
	struct sip_request *r = xcalloc(1, sizeof(*r));
	osip_transaction_t *tr;

	r->s = s;
	r->peer = *from;
	net_addr_format(&from->addr, r->source, sizeof(r->source), r->source_ip, sizeof(r->source_ip));
	sip_token(s, r->local_tag, sizeof(r->local_tag));
	tr = osip_create_transaction(s->osip, evt);
	if (!tr) {
		log_info("sip: could not create a transaction for a %s from %s", evt->sip->sip_method, r->source);
		osip_event_free(evt);
		free(r);
		return;
	}
	r->tr = tr;
	osip_transaction_set_your_instance(tr, r);
	server_count_add(s, r);
	osip_transaction_add_event(tr, evt);
}

void sip_osip_send_response(struct sip_request *r, osip_message_t *resp)
{
	struct sip_server *s = r->s;
	bool is_short = (resp->status_code >= 300 || r->is_short) && r->tr->ctx_type == NIST;
	osip_event_t *evt = osip_new_outgoing_sipmessage(resp);

	if (!evt) {
		osip_message_free(resp);
		return;
	}
	osip_transaction_add_event(r->tr, evt);
	if (is_short) {
		if (s->ended_count == s->ended_cap) {
			s->ended_cap = s->ended_cap ? 2 * s->ended_cap : 64;
			s->ended = xrealloc(s->ended, s->ended_cap * sizeof(*s->ended));
		}
		s->ended[s->ended_count++] = r->tr;
	}
}

/* -- sending requests ----------------------------------------------------- */

static bool is_clean(const char *s)
{
	return s && s[0] && !strpbrk(s, "\r\n");
}

static bool is_token(const char *s)
{
	return s && s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") ==
				   strlen(s);
}

static bool is_managed_header(const char *name)
{
	static const char *const managed[] = { "Via",	    "From",	    "To",	   "Call-ID",
					       "CSeq",	    "Content-Length", "Content-Type", "Route",
					       "Max-Forwards", "v",		"f",		"t",
					       "i",	    "l",		"c" };

	for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
		if (!strcasecmp(name, managed[i]))
			return true;
	return false;
}

/* The URI inside "<...>" (or the whole value), into a fresh string. */
static char *strip_brackets(const char *v)
{
	const char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	return xstrdup(v);
}

/* The destination from a URI whose host is an IP literal (RFC 3263 would
 * need DNS, which this stack does not do). */
static bool peer_from_uri(const char *uri_text, struct sip_peer *peer)
{
	osip_uri_t *u = NULL;
	char addr[INET6_ADDRSTRLEN + 16];
	bool ok = false;

	if (osip_uri_init(&u) != 0)
		return false;
	if (osip_uri_parse(u, uri_text) == 0 && u->host) {
		const char *port = u->port && u->port[0] ? u->port : "5060";

		if (strchr(u->host, ':'))
			snprintf(addr, sizeof(addr), "[%s]:%s", u->host, port);
		else
			snprintf(addr, sizeof(addr), "%s:%s", u->host, port);
		ok = net_addr_parse(addr, &peer->addr, &peer->addr_len);
	}
	osip_uri_free(u);
	return ok;
}

static enum xdms_err send_request(struct sip_server *s, const char *method, const struct sip_dialog_out *d,
				  const struct sip_header *headers, size_t header_count, const char *content_type,
				  const char *body, size_t body_len, sip_sent_fn done, sip_response_fn on_response,
				  void *arg)
{
	struct sip_peer peer = { .transport = d->transport };
	osip_message_t *m = NULL;
	osip_uri_t *ruri = NULL;
	osip_transaction_t *tr = NULL;
	struct sip_client *c;
	osip_event_t *evt;
	char host[INET6_ADDRSTRLEN + 2], branch[48], line[1024], *first_route = NULL;
	const char *ruri_text = d->remote_target;
	size_t route_from = 0;
	bool is_strict = false, ok;
	unsigned port;
	enum xdms_err err = XDMS_ERR_INVAL;

	if (!is_token(method) || !is_clean(d->call_id) || !is_clean(d->local_uri) || !is_clean(d->local_tag) ||
	    !is_clean(d->remote_uri) || !is_clean(d->remote_target) ||
	    (d->remote_tag && !is_clean(d->remote_tag)) || (!done && !on_response) ||
	    (body_len > 0 && (!body || !is_clean(content_type))))
		return XDMS_ERR_INVAL;
	for (size_t i = 0; i < d->route_count; i++)
		if (!is_clean(d->route_set[i]))
			return XDMS_ERR_INVAL;
	for (size_t i = 0; i < header_count; i++)
		if (!is_token(headers[i].name) || !headers[i].value || strpbrk(headers[i].value, "\r\n") ||
		    is_managed_header(headers[i].name))
			return XDMS_ERR_INVAL;
	if (s->client_count >= SIP_MAX_CLIENT_TRANSACTIONS)
		return XDMS_ERR_BUSY;

	if (d->route_count > 0) {
		first_route = strip_brackets(d->route_set[0]);
		/* RFC 3261 §12.2.1.1: a first route without ;lr is a strict
		 * router, which takes the Request-URI's place. */
		is_strict = !strstr(first_route, ";lr");
		if (is_strict) {
			ruri_text = first_route;
			route_from = 1;
		}
	}
	if (d->destination)
		ok = net_addr_parse(d->destination, &peer.addr, &peer.addr_len);
	else
		ok = peer_from_uri(first_route ? first_route : d->remote_target, &peer);
	if (!ok)
		goto out;

	osip_message_init(&m);
	osip_message_set_method(m, osip_strdup(method));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (osip_uri_init(&ruri) != 0 || osip_uri_parse(ruri, ruri_text) != 0)
		goto out;
	osip_message_set_uri(m, ruri);
	ruri = NULL;
	sip_local_host(s, &peer.addr, host, sizeof(host));
	port = s->bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&s->bound)->sin6_port)
					       : ntohs(((struct sockaddr_in *)&s->bound)->sin_port);
	sip_token(s, branch, sizeof(branch));
	snprintf(line, sizeof(line), "SIP/2.0/%s %s:%u;branch=z9hG4bK%s;rport", ops_for(peer.transport)->name,
		 host, port, branch);
	if (osip_message_set_via(m, line))
		goto out;
	for (size_t i = route_from; i < d->route_count; i++)
		if (osip_message_set_route(m, d->route_set[i]))
			goto out;
	if (is_strict) {
		snprintf(line, sizeof(line), "<%s>", d->remote_target);
		if (osip_message_set_route(m, line))
			goto out;
	}
	snprintf(line, sizeof(line), "<%s>;tag=%s", d->local_uri, d->local_tag);
	if (osip_message_set_from(m, line))
		goto out;
	if (d->remote_tag)
		snprintf(line, sizeof(line), "<%s>;tag=%s", d->remote_uri, d->remote_tag);
	else
		snprintf(line, sizeof(line), "<%s>", d->remote_uri);
	if (osip_message_set_to(m, line) || osip_message_set_call_id(m, d->call_id))
		goto out;
	snprintf(line, sizeof(line), "%u %s", (unsigned)d->cseq, method);
	if (osip_message_set_cseq(m, line))
		goto out;
	snprintf(line, sizeof(line), "<sip:%s:%u%s>", host, port,
		 peer.transport == SIP_TRANSPORT_TCP ? ";transport=tcp" : "");
	if (osip_message_set_contact(m, line))
		goto out;
	osip_message_set_max_forwards(m, "70");
	for (size_t i = 0; i < header_count; i++)
		osip_message_set_header(m, headers[i].name, headers[i].value);
	osip_message_set_user_agent(m, s->server_header);
	if (body_len > 0) {
		osip_message_set_body(m, body, body_len);
		if (osip_message_set_content_type(m, content_type))
			goto out;
	}
	if (osip_transaction_init(&tr, NICT, s->osip, m) != 0) {
		tr = NULL;
		goto out;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->tr = tr;
	c->peer = peer;
	c->done = done;
	c->on_response = on_response;
	c->arg = arg;
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	s->client_count++;
	snprintf(c->branch, sizeof(c->branch), "z9hG4bK%s", branch);
	c->hnext = s->client_index[branch_bucket(c->branch)];
	s->client_index[branch_bucket(c->branch)] = c;
	osip_transaction_set_your_instance(tr, c);
	evt = osip_new_outgoing_sipmessage(m);
	if (!evt) {
		c->is_reported = true;
		transaction_free(s, tr, 0);
		goto out;
	}
	m = NULL; /* the transaction owns it from here */
	osip_transaction_add_event(tr, evt);
	log_debug("sip: %s to %s/%s call-id %s cseq %u", method, ops_for(peer.transport)->name, ruri_text,
		  d->call_id, (unsigned)d->cseq);
	err = XDMS_ERR_OK;
out:
	if (ruri)
		osip_uri_free(ruri);
	if (m)
		osip_message_free(m);
	free(first_route);
	return err;
}

enum xdms_err sip_send_request(struct sip_server *s, const char *method, const struct sip_dialog_out *d,
			       const struct sip_header *headers, size_t header_count,
			       const char *content_type, const char *body, size_t body_len,
			       sip_sent_fn done, void *arg)
{
	if (!done)
		return XDMS_ERR_INVAL;
	return send_request(s, method, d, headers, header_count, content_type, body, body_len, done, NULL, arg);
}

enum xdms_err sip_send_request_full(struct sip_server *s, const char *method, const struct sip_dialog_out *d,
				    const struct sip_header *headers, size_t header_count,
				    const char *content_type, const char *body, size_t body_len,
				    sip_response_fn done, void *arg)
{
	if (!done)
		return XDMS_ERR_INVAL;
	return send_request(s, method, d, headers, header_count, content_type, body, body_len, NULL, done, arg);
}

void sip_server_on_notify(struct sip_server *s, sip_notify_fn fn, void *arg)
{
	s->on_notify = fn;
	s->on_notify_arg = arg;
}
