/* SPDX-License-Identifier: MIT */
/*
 * Messages: what happens to a complete message from a transport, the
 * dispatch of new requests, the accessors on a received request and the
 * building of responses.
 *
 * A message goes through libosip2's parser. Responses go to the client
 * transaction they match, or are dropped. Requests must carry Via, From,
 * To, Call-ID and a CSeq whose method is the request's; then the top Via
 * gets received/rport (RFC 3261 §18.2.1, RFC 3581) and the request goes to
 * the server transaction it matches (a retransmission, or the ACK of an
 * INVITE we refused) or to a new one, whose first pass through libosip2
 * calls sip_dispatch. A request libosip2 cannot parse is answered 400
 * statelessly from its raw header lines when they are usable, otherwise
 * dropped; nothing of it reaches any transaction or dialog.
 *
 * Responses always copy Via, From, To, Call-ID and CSeq, carry a To tag
 * fixed per transaction (so a retransmitted answer is identical) and a
 * Server header; libosip2 writes Content-Length. A 2xx to SUBSCRIBE also
 * gets the Record-Route set and a Contact.
 *
 * Threads: the loop thread only.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>

#include "base/net.h"
#include "base/log.h"
#include "base/mem.h"
#include "sip/sip_int.h"

/* -- raw, stateless answers ----------------------------------------------- */

static bool line_name_is(const char *line, size_t nlen, const char *full, const char *compact)
{
	return (nlen == strlen(full) && !strncasecmp(line, full, nlen)) ||
	       (compact && nlen == 1 && tolower((unsigned char)line[0]) == compact[0]);
}

bool sip_raw_reply(struct sip_server *s, const char *data, size_t len, int status, const char *reason,
		   const char *extra, struct buf *out)
{
	const char *p = data, *end = data + len, *eol;
	unsigned via = 0, from = 0, to = 0, call_id = 0, cseq = 0;
	bool is_copying = false;
	size_t mlen;

	/* Request-Line = Method SP Request-URI SP SIP-Version CRLF */
	eol = memchr(p, '\n', len);
	if (!eol)
		return false;
	mlen = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._!%*+`'~");
	if (mlen == 0 || p[mlen] != ' ' || (mlen == 3 && !strncmp(p, "ACK", 3)))
		return false;
	{
		const char *v = eol;

		if (v > p && v[-1] == '\n')
			v--;
		if (v > p && v[-1] == '\r')
			v--;
		/* Any SIP version: a 505 answers the ones we do not speak. */
		if (v - p < (ptrdiff_t)mlen + 10 || strncmp(v - 8, " SIP/", 5) || !isdigit((unsigned char)v[-3]) ||
		    v[-2] != '.' || !isdigit((unsigned char)v[-1]))
			return false;
	}
	if (buf_printf(out, "SIP/2.0 %d %s\r\n", status, reason))
		return false;
	for (p = eol + 1; p < end; p = eol + 1) {
		const char *colon;
		size_t llen, nlen;
		bool is_to = false;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		llen = (size_t)(eol - p);
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;
		if (p[0] == ' ' || p[0] == '\t') {
			/* A folded continuation belongs to the line before it. */
			if (is_copying && (buf_append(out, " ", 1) || buf_append(out, p, llen)))
				return false;
			continue;
		}
		if (is_copying && buf_append(out, "\r\n", 2))
			return false;
		is_copying = false;
		colon = memchr(p, ':', llen);
		if (!colon)
			continue;
		nlen = (size_t)(colon - p);
		while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
			nlen--;
		if (line_name_is(p, nlen, "Via", "v"))
			via++, is_copying = true;
		else if (line_name_is(p, nlen, "From", "f"))
			from++, is_copying = true;
		else if (line_name_is(p, nlen, "To", "t"))
			to++, is_copying = is_to = true;
		else if (line_name_is(p, nlen, "Call-ID", "i"))
			call_id++, is_copying = true;
		else if (line_name_is(p, nlen, "CSeq", NULL))
			cseq++, is_copying = true;
		if (!is_copying)
			continue;
		if (buf_append(out, p, llen))
			return false;
		if (is_to && !memmem(p, llen, "tag=", 4)) {
			char tag[40];

			sip_token(s, tag, sizeof(tag));
			if (buf_printf(out, ";tag=%s", tag))
				return false;
		}
	}
	if (is_copying && buf_append(out, "\r\n", 2))
		return false;
	if (!via || !from || !to || !call_id || !cseq)
		return false;
	if (extra && buf_append_str(out, extra))
		return false;
	return !buf_printf(out, "Server: %s\r\nContent-Length: 0\r\n\r\n", s->server_header);
}

static void reply_raw(struct sip_server *s, const char *data, size_t len, const struct sip_peer *from,
		      const char *src, int status, const char *reason, const char *why)
{
	struct buf out;
	char extra[64] = "";

	if (status == 503)
		snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", SIP_RETRY_AFTER);
	buf_init(&out, 16384);
	if (sip_raw_reply(s, data, len, status, reason, extra[0] ? extra : NULL, &out)) {
		const struct sip_transport_ops *t =
			from->transport == SIP_TRANSPORT_TCP ? &sip_transport_tcp_ops : &sip_transport_udp_ops;

		/* Refusals under a flood would flood the log: debug level. */
		if (status == 503)
			log_debug("sip: request from %s/%s over %s: answered 503", t->name, src, why);
		else
			log_info("sip: %s from %s/%s: answered %d", why, t->name, src, status);
		(void)t->send(s, from, out.data, out.len, false);
	} else {
		log_debug("sip: dropped an unparseable %zu-byte message from %s", len, src);
	}
	buf_cleanup(&out);
}

/*
 * RFC 3261 §18.3 for a datagram: a Content-Length larger than what follows
 * the headers, negative or not a number is a 400; bytes after the body are
 * dropped (*len shrinks). §7.1: a request in another SIP version is a 505.
 * Returns 0 when the message may go on, else the status with *why.
 */
static int udp_check(const char *data, size_t *len, const char **why)
{
	const char *end = data + *len, *p, *eol, *body;
	const char *hdr_end = memmem(data, *len, "\r\n\r\n", 4);
	bool has_length = false;
	unsigned long long length = 0;

	if (!hdr_end)
		return 0; /* libosip2 refuses it, or it is a response to drop */
	body = hdr_end + 4;
	eol = memchr(data, '\n', *len);
	if (eol && strncmp(data, "SIP/", 4) != 0) {
		const char *v = eol;

		if (v > data && v[-1] == '\r')
			v--;
		if (v - data > 8 && !strncmp(v - 8, " SIP/", 5) && strncmp(v - 8, " SIP/2.0", 8)) {
			*why = "SIP version not supported";
			return 505;
		}
	}
	for (p = eol ? eol + 1 : end; p < hdr_end; p = eol + 1) {
		const char *colon, *v, *ve;
		size_t nlen;
		unsigned long long n = 0;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon)
			continue;
		nlen = (size_t)(colon - p);
		while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
			nlen--;
		if (!line_name_is(p, nlen, "Content-Length", "l"))
			continue;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (v == ve || ve - v > 9) {
			*why = "malformed Content-Length";
			return 400;
		}
		for (const char *d = v; d < ve; d++) {
			if (!isdigit((unsigned char)*d)) {
				*why = "malformed Content-Length";
				return 400;
			}
			n = n * 10 + (unsigned long long)(*d - '0');
		}
		if (has_length && n != length) {
			*why = "conflicting Content-Length headers";
			return 400;
		}
		has_length = true;
		length = n;
	}
	if (has_length && length > (unsigned long long)(end - body)) {
		*why = "Content-Length larger than the datagram";
		return 400;
	}
	if (has_length)
		*len = (size_t)(body - data) + (size_t)length;
	return 0;
}

/* -- inbound -------------------------------------------------------------- */

static bool has_core_headers(const osip_message_t *m)
{
	if (osip_list_size(&m->vias) < 1 || !m->from || !m->from->url || !m->to || !m->to->url ||
	    !m->call_id || !m->call_id->number || !m->cseq || !m->cseq->method || !m->cseq->number)
		return false;
	if (MSG_IS_REQUEST(m))
		return m->sip_method && m->req_uri && !strcmp(m->sip_method, m->cseq->method);
	return true;
}

void sip_inbound(struct sip_server *s, const char *data, size_t len, const struct sip_peer *from)
{
	char src[SIP_ADDR_LEN], ip[INET6_ADDRSTRLEN];
	osip_event_t *evt;
	osip_message_t *m;
	const char *why = "malformed request";
	unsigned port;
	int status;

	net_addr_format(&from->addr, src, sizeof(src), ip, sizeof(ip));
	if (from->transport == SIP_TRANSPORT_UDP) {
		status = udp_check(data, &len, &why);
		if (status) {
			reply_raw(s, data, len, from, src, status,
				  status == 505 ? "Version Not Supported" : "Bad Request", why);
			return;
		}
	}
	evt = osip_parse(data, len);
	if (!evt || !evt->sip || !has_core_headers(evt->sip)) {
		if (evt)
			osip_event_free(evt);
		reply_raw(s, data, len, from, src, 400, "Bad Request", why);
		return;
	}
	m = evt->sip;
	if (MSG_IS_RESPONSE(m)) {
		osip_via_t *via = osip_list_get(&m->vias, 0);
		osip_generic_param_t *branch = NULL;
		struct sip_client *c;

		/* RFC 3261 §17.1.3: the top Via's branch and the CSeq method name
		 * the client transaction. */
		static char branch_name[] = "branch"; /* osip wants a mutable name */

		if (via && !osip_via_param_get_byname(via, branch_name, &branch) && branch && branch->gvalue &&
		    (c = sip_client_by_branch(s, branch->gvalue)) && c->tr->cseq && c->tr->cseq->method &&
		    !strcmp(c->tr->cseq->method, m->cseq->method)) {
			osip_transaction_add_event(c->tr, evt);
			return;
		}
		if (osip_find_transaction_and_add_event(s->osip, evt) != 0) {
			log_debug("sip: dropped a %d response from %s matching no transaction (call-id %s)",
				  m->status_code, src, m->call_id->number);
			osip_event_free(evt);
		}
		return;
	}
	port = from->addr.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&from->addr)->sin6_port)
						: ntohs(((const struct sockaddr_in *)&from->addr)->sin_port);
	osip_message_fix_last_via_header(m, ip, (int)port);
	if (osip_find_transaction_and_add_event(s->osip, evt) == 0)
		return;
	if (MSG_IS_ACK(m)) {
		/* An ACK for a 2xx would be end to end, but we never send 2xx to
		 * INVITE; an ACK for an expired transaction needs nothing. */
		log_debug("sip: ignored an ACK from %s matching no transaction", src);
		osip_event_free(evt);
		return;
	}
	if (!sip_server_admits(s, ip, &why)) {
		uint64_t now = sip_now_ms();

		atomic_fetch_add_explicit(&s->refused_count, 1, memory_order_relaxed);
		/* One warning a second at most: a flood must not flood the log. */
		s->refused_since_warn++;
		if (now - s->last_refusal_warn_ms >= 1000) {
			log_warn("sip: refused %u request(s) with 503 since the last warning (%s); the latest from %s",
				 s->refused_since_warn, why, src);
			s->refused_since_warn = 0;
			s->last_refusal_warn_ms = now;
		}
		osip_event_free(evt);
		reply_raw(s, data, len, from, src, 503, "Service Unavailable", why);
		return;
	}
	sip_osip_new_server_transaction(s, evt, from);
}

/* -- the request object --------------------------------------------------- */

static void free_views(struct sip_request *r)
{
	free(r->uri_text);
	free(r->call_id_text);
	free(r->from_uri);
	free(r->to_uri);
	free(r->contact_uri);
	free(r->event);
	free(r->content_type);
	r->uri_text = r->call_id_text = r->from_uri = r->to_uri = r->contact_uri = r->event = r->content_type = NULL;
	sip_views_cleanup(&r->views);
}

static void unlink_request(struct sip_request *r)
{
	if (!r->is_handed_out)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		r->s->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->is_handed_out = false;
}

void sip_request_free(struct sip_request *r)
{
	if (!r)
		return;
	unlink_request(r);
	free_views(r);
	free(r);
}

/* Copies an osip-allocated string into our heap and frees the original. */
static char *take_osip_str(char *p)
{
	char *copy;

	if (!p)
		return NULL;
	copy = xstrdup(p);
	osip_free(p);
	return copy;
}

/* Long names for the compact forms libosip2 leaves as they are (RFC 3261
 * §7.3.3 and the event-framework extensions). */
static const char *long_name(const char *name)
{
	static const char *const map[][2] = {
		{ "o", "Event" },	  { "u", "Allow-Events" }, { "k", "Supported" },   { "s", "Subject" },
		{ "r", "Refer-To" },	  { "b", "Referred-By" },  { "x", "Session-Expires" },
		{ "i", "Call-ID" },	  { "m", "Contact" },	   { "f", "From" },	   { "t", "To" },
		{ "v", "Via" },		  { "c", "Content-Type" }, { "l", "Content-Length" },
		{ "e", "Content-Encoding" },
	};

	if (name[0] && !name[1]) {
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (tolower((unsigned char)name[0]) == map[i][0][0])
				return map[i][1];
	}
	return name;
}

void sip_views_cleanup(struct sip_views *r)
{
	for (size_t i = 0; i < r->hcount; i++) {
		free(r->hnames[i]);
		free(r->hvalues[i]);
	}
	free(r->hnames);
	free(r->hvalues);
	r->hnames = r->hvalues = NULL;
	r->hcount = 0;
	r->has_headers = false;
}

static void add_header(struct sip_views *r, const char *name, char *osip_value)
{
	if (!osip_value)
		return;
	r->hnames = xrealloc(r->hnames, (r->hcount + 1) * sizeof(*r->hnames));
	r->hvalues = xrealloc(r->hvalues, (r->hcount + 1) * sizeof(*r->hvalues));
	r->hnames[r->hcount] = xstrdup(name);
	r->hvalues[r->hcount] = take_osip_str(osip_value);
	r->hcount++;
}

static void build_headers(struct sip_views *r, osip_message_t *m)
{
	char *v;

	r->has_headers = true;
	for (int i = 0; i < osip_list_size(&m->vias); i++) {
		v = NULL;
		if (!osip_via_to_str(osip_list_get(&m->vias, i), &v))
			add_header(r, "Via", v);
	}
	v = NULL;
	if (!osip_from_to_str(m->from, &v))
		add_header(r, "From", v);
	v = NULL;
	if (!osip_to_to_str(m->to, &v))
		add_header(r, "To", v);
	v = NULL;
	if (!osip_call_id_to_str(m->call_id, &v))
		add_header(r, "Call-ID", v);
	v = NULL;
	if (!osip_cseq_to_str(m->cseq, &v))
		add_header(r, "CSeq", v);
	for (int i = 0; i < osip_list_size(&m->contacts); i++) {
		v = NULL;
		if (!osip_contact_to_str(osip_list_get(&m->contacts, i), &v))
			add_header(r, "Contact", v);
	}
	for (int i = 0; i < osip_list_size(&m->record_routes); i++) {
		v = NULL;
		if (!osip_record_route_to_str(osip_list_get(&m->record_routes, i), &v))
			add_header(r, "Record-Route", v);
	}
	for (int i = 0; i < osip_list_size(&m->routes); i++) {
		v = NULL;
		if (!osip_route_to_str(osip_list_get(&m->routes, i), &v))
			add_header(r, "Route", v);
	}
	for (int i = 0; i < osip_list_size(&m->accepts); i++) {
		v = NULL;
		if (!osip_accept_to_str(osip_list_get(&m->accepts, i), &v))
			add_header(r, "Accept", v);
	}
	for (int i = 0; i < osip_list_size(&m->authorizations); i++) {
		v = NULL;
		if (!osip_authorization_to_str(osip_list_get(&m->authorizations, i), &v))
			add_header(r, "Authorization", v);
	}
	for (int i = 0; i < osip_list_size(&m->proxy_authorizations); i++) {
		v = NULL;
		if (!osip_authorization_to_str(osip_list_get(&m->proxy_authorizations, i), &v))
			add_header(r, "Proxy-Authorization", v);
	}
	/* A challenge, in a response to a request we sent. */
	for (int i = 0; i < osip_list_size(&m->www_authenticates); i++) {
		v = NULL;
		if (!osip_www_authenticate_to_str(osip_list_get(&m->www_authenticates, i), &v))
			add_header(r, "WWW-Authenticate", v);
	}
	for (int i = 0; i < osip_list_size(&m->proxy_authenticates); i++) {
		v = NULL;
		if (!osip_proxy_authenticate_to_str(osip_list_get(&m->proxy_authenticates, i), &v))
			add_header(r, "Proxy-Authenticate", v);
	}
	v = NULL;
	if (m->content_type && !osip_content_type_to_str(m->content_type, &v))
		add_header(r, "Content-Type", v);
	for (int i = 0; i < osip_list_size(&m->headers); i++) {
		osip_header_t *h = osip_list_get(&m->headers, i);

		if (h && h->hname && h->hvalue)
			add_header(r, long_name(h->hname), osip_strdup(h->hvalue));
	}
}

const char *sip_views_header(struct sip_views *r, osip_message_t *m, const char *name, size_t index)
{
	const char *want = long_name(name);

	if (!r->has_headers)
		build_headers(r, m);
	for (size_t i = 0; i < r->hcount; i++) {
		if (!strcasecmp(r->hnames[i], want) && index-- == 0)
			return r->hvalues[i];
	}
	return NULL;
}

const char *sip_request_header(struct sip_request *r, const char *name, size_t index)
{
	return sip_views_header(&r->views, r->msg, name, index);
}

const char *sip_request_method(const struct sip_request *r)
{
	return r->msg->sip_method;
}

const char *sip_request_uri(const struct sip_request *r)
{
	struct sip_request *w = (struct sip_request *)r;

	if (!w->uri_text) {
		char *v = NULL;

		if (!osip_uri_to_str(r->msg->req_uri, &v))
			w->uri_text = take_osip_str(v);
	}
	return w->uri_text ? w->uri_text : "";
}

const char *sip_request_call_id(const struct sip_request *r)
{
	struct sip_request *w = (struct sip_request *)r; /* the text is a cache */
	const osip_call_id_t *c = r->msg->call_id;

	if (!w->call_id_text)
		w->call_id_text = c->host ? xasprintf("%s@%s", c->number, c->host) : xstrdup(c->number);
	return w->call_id_text;
}

static char *uri_of(osip_uri_t *u)
{
	char *v = NULL;

	if (!u || osip_uri_to_str(u, &v))
		return NULL;
	return take_osip_str(v);
}

static const char *tag_of(osip_from_t *h)
{
	static char name[] = "tag"; /* osip wants a mutable name */
	osip_generic_param_t *tag = NULL;

	if (osip_generic_param_get_byname(&h->gen_params, name, &tag) != 0 || !tag || !tag->gvalue || !tag->gvalue[0])
		return NULL;
	return tag->gvalue;
}

const char *sip_request_from_uri(struct sip_request *r)
{
	if (!r->from_uri)
		r->from_uri = uri_of(r->msg->from->url);
	return r->from_uri;
}

const char *sip_request_from_tag(const struct sip_request *r)
{
	return tag_of(r->msg->from);
}

const char *sip_request_to_uri(struct sip_request *r)
{
	if (!r->to_uri)
		r->to_uri = uri_of(r->msg->to->url);
	return r->to_uri;
}

const char *sip_request_to_tag(const struct sip_request *r)
{
	return tag_of(r->msg->to);
}

uint32_t sip_request_cseq(const struct sip_request *r)
{
	return (uint32_t)strtoul(r->msg->cseq->number, NULL, 10);
}

const char *sip_request_contact_uri(struct sip_request *r)
{
	osip_contact_t *c = osip_list_get(&r->msg->contacts, 0);

	if (!r->contact_uri && c && c->url)
		r->contact_uri = uri_of(c->url);
	return r->contact_uri;
}

const char *sip_request_event(struct sip_request *r)
{
	const char *v;
	size_t n;

	if (r->event)
		return r->event;
	v = sip_request_header(r, "Event", 0);
	if (!v)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, "; \t");
	r->event = xstrndup(v, n);
	return r->event;
}

long sip_seconds_parse(const char *v)
{
	char *end;
	long n;

	if (!v)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v < '0' || *v > '9' || strspn(v, "0123456789") > 9)
		return -1;
	n = strtol(v, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	return *end ? -1 : n;
}

long sip_request_expires(struct sip_request *r)
{
	return sip_seconds_parse(sip_request_header(r, "Expires", 0));
}

const char *sip_request_content_type(struct sip_request *r)
{
	osip_content_type_t *ct = r->msg->content_type;

	if (!r->content_type && ct && ct->type && ct->subtype)
		r->content_type = xasprintf("%s/%s", ct->type, ct->subtype);
	return r->content_type;
}

const char *sip_request_body(const struct sip_request *r, size_t *len)
{
	osip_body_t *b = osip_list_get(&r->msg->bodies, 0);

	*len = b ? b->length : 0;
	return b ? b->body : NULL;
}

enum sip_transport sip_request_transport(const struct sip_request *r)
{
	return r->peer.transport;
}

const char *sip_request_source(const struct sip_request *r)
{
	return r->source;
}

const char *sip_request_source_ip(const struct sip_request *r)
{
	return r->source_ip;
}

const char *sip_request_local_tag(const struct sip_request *r)
{
	const char *tag = tag_of(r->msg->to);

	return tag ? tag : r->local_tag;
}

void sip_request_end_on_answer(struct sip_request *r)
{
	r->is_short = true;
}

/* -- responses to sent requests ------------------------------------------- */

void sip_response_cleanup(struct sip_response *resp)
{
	sip_views_cleanup(&resp->views);
	free(resp->contact_uri);
	resp->contact_uri = NULL;
}

int sip_response_status(const struct sip_response *resp)
{
	return resp->msg->status_code;
}

const char *sip_response_header(const struct sip_response *resp, const char *name, size_t index)
{
	struct sip_response *w = (struct sip_response *)resp; /* the views are a cache */

	return sip_views_header(&w->views, resp->msg, name, index);
}

const char *sip_response_to_tag(const struct sip_response *resp)
{
	return tag_of(resp->msg->to);
}

long sip_response_expires(const struct sip_response *resp)
{
	return sip_seconds_parse(sip_response_header(resp, "Expires", 0));
}

const char *sip_response_contact_uri(const struct sip_response *resp)
{
	struct sip_response *w = (struct sip_response *)resp;
	osip_contact_t *c = osip_list_get(&resp->msg->contacts, 0);

	if (!w->contact_uri && c && c->url)
		w->contact_uri = uri_of(c->url);
	return w->contact_uri;
}

/* -- responses ------------------------------------------------------------ */

static const char *default_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 420: return "Bad Extension";
	case 423: return "Interval Too Brief";
	case 481: return "Call/Transaction Does Not Exist";
	case 489: return "Bad Event";
	case 500: return "Server Internal Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 513: return "Message Too Large";
	default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error"
			: status < 600 ? "Server Error" : "Global Failure";
	}
}

static bool is_reserved_header(const char *name)
{
	static const char *const reserved[] = { "Via", "From", "To", "Call-ID", "CSeq", "Content-Length",
						"Content-Type", "v", "f", "t", "i", "l", "c" };

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (!strcasecmp(name, reserved[i]))
			return true;
	return false;
}

static bool is_clean(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

enum xdms_err sip_request_respond(struct sip_request *r, int status, const char *reason,
				  const struct sip_header *headers, size_t header_count,
				  const char *content_type, const char *body, size_t body_len)
{
	struct sip_server *s = r->s;
	osip_message_t *req = r->msg, *resp = NULL;
	bool has_contact = false;
	enum xdms_err err = XDMS_ERR_INVAL;

	if (r->is_answered || status < 200 || status > 699 || (reason && !is_clean(reason)) ||
	    (body_len > 0 && (!body || !is_clean(content_type))))
		goto out;
	for (size_t i = 0; i < header_count; i++) {
		if (!is_clean(headers[i].name) || !is_clean(headers[i].value) || !headers[i].name[0] ||
		    strchr(headers[i].name, ':') || is_reserved_header(headers[i].name))
			goto out;
		if (!strcasecmp(headers[i].name, "Contact") || !strcasecmp(headers[i].name, "m"))
			has_contact = true;
	}
	osip_message_init(&resp);
	osip_message_set_version(resp, osip_strdup("SIP/2.0"));
	osip_message_set_status_code(resp, status);
	osip_message_set_reason_phrase(resp, osip_strdup(reason ? reason : default_reason(status)));
	for (int i = 0; i < osip_list_size(&req->vias); i++) {
		osip_via_t *via = NULL;

		if (!osip_via_clone(osip_list_get(&req->vias, i), &via))
			osip_list_add(&resp->vias, via, -1);
	}
	if (osip_from_clone(req->from, &resp->from) || osip_to_clone(req->to, &resp->to) ||
	    osip_call_id_clone(req->call_id, &resp->call_id) || osip_cseq_clone(req->cseq, &resp->cseq)) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	if (!tag_of(resp->to))
		osip_to_set_tag(resp->to, osip_strdup(r->local_tag));
	if (status < 300 && !strcmp(req->sip_method, "SUBSCRIBE")) {
		/* RFC 3261 §12.1.1, RFC 6665 §4.1.3: the 2xx that creates the
		 * subscription's dialog copies the Record-Route set and names
		 * this UA's Contact. */
		for (int i = 0; i < osip_list_size(&req->record_routes); i++) {
			char *v = NULL;

			if (!osip_record_route_to_str(osip_list_get(&req->record_routes, i), &v)) {
				osip_message_set_record_route(resp, v);
				osip_free(v);
			}
		}
		if (!has_contact) {
			char host[INET6_ADDRSTRLEN + 2], contact[128];
			unsigned port = s->bound.ss_family == AF_INET6
						? ntohs(((struct sockaddr_in6 *)&s->bound)->sin6_port)
						: ntohs(((struct sockaddr_in *)&s->bound)->sin_port);

			sip_local_host(s, &r->peer.addr, host, sizeof(host));
			snprintf(contact, sizeof(contact), "<sip:%s:%u%s>", host, port,
				 r->peer.transport == SIP_TRANSPORT_TCP ? ";transport=tcp" : "");
			osip_message_set_contact(resp, contact);
		}
	}
	for (size_t i = 0; i < header_count; i++)
		osip_message_set_header(resp, headers[i].name, headers[i].value);
	osip_message_set_header(resp, "Server", s->server_header);
	if (body_len > 0) {
		osip_message_set_body(resp, body, body_len);
		osip_message_set_content_type(resp, content_type);
	}
	log_info("sip: %s %s from %s/%s call-id %s cseq %s -> %d", req->sip_method, sip_request_uri(r),
		 r->peer.transport == SIP_TRANSPORT_TCP ? "tcp" : "udp", r->source, req->call_id->number,
		 req->cseq->number, status);
	r->is_answered = true;
	unlink_request(r);
	sip_osip_send_response(r, resp);
	resp = NULL;
	free_views(r);
	err = XDMS_ERR_OK;
out:
	if (resp)
		osip_message_free(resp);
	if (err && !r->is_answered) {
		/* The contract: @req is released whatever the result, so the
		 * transaction must still end; a bare 500 does that. */
		log_error("sip: invalid response %d to %s (call-id %s); answering 500", status, req->sip_method,
			  req->call_id->number);
		if ((status != 500 || headers || body_len) && sip_request_respond(r, 500, NULL, NULL, 0, NULL, NULL, 0))
			log_error("sip: could not answer 500 either");
	}
	return err;
}

/* -- dispatch ------------------------------------------------------------- */

static void answer(struct sip_request *r, int status, const struct sip_header *h, size_t n)
{
	if (sip_request_respond(r, status, NULL, h, n, NULL, NULL, 0))
		log_error("sip: could not answer %d", status);
}

void sip_dispatch(struct sip_server *s, struct sip_request *r)
{
	static const char *const known[] = { "INVITE", "MESSAGE", "PUBLISH", "REFER", "INFO",
					     "UPDATE", "PRACK",	  "REGISTER", "NOTIFY" };
	const struct sip_header allow[] = { { "Allow", s->on_notify ? SIP_ALLOW_NOTIFY : SIP_ALLOW } };
	const char *m = r->msg->sip_method, *require;

	/* RFC 3261 §8.2.2.3: we support no extension, so any Require fails
	 * (except on CANCEL, which only ever names the INVITE's). */
	require = strcmp(m, "CANCEL") ? sip_request_header(r, "Require", 0) : NULL;
	if (require) {
		struct sip_header h[] = { { "Unsupported", require } };

		answer(r, 420, h, 1);
		return;
	}
	if (!strcmp(m, "OPTIONS")) {
		const struct sip_header h[] = {
			{ "Allow", allow[0].value },
			{ "Allow-Events", SIP_ALLOW_EVENTS },
			{ "Accept", SIP_ACCEPT },
		};

		answer(r, 200, h, 3);
	} else if (!strcmp(m, "SUBSCRIBE")) {
		const char *event = sip_request_event(r);
		static const struct sip_header h[] = { { "Allow-Events", SIP_ALLOW_EVENTS } };

		/* RFC 6665 §4.2.1.1 (with §8.2.1: event types compare as tokens). */
		if (!event || strcmp(event, SIP_ALLOW_EVENTS) != 0) {
			answer(r, 489, h, 1);
		} else if (!s->on_subscribe) {
			answer(r, 501, allow, 1);
		} else {
			r->is_handed_out = true;
			r->next = s->requests;
			if (s->requests)
				s->requests->prev = r;
			s->requests = r;
			s->on_subscribe(s->on_subscribe_arg, r);
		}
	} else if (!strcmp(m, "NOTIFY") && s->on_notify) {
		r->is_handed_out = true;
		r->next = s->requests;
		if (s->requests)
			s->requests->prev = r;
		s->requests = r;
		s->on_notify(s->on_notify_arg, r);
	} else if (!strcmp(m, "CANCEL") || !strcmp(m, "BYE")) {
		/* Every INVITE is refused at once, so there is never an INVITE
		 * to cancel or a session to end (RFC 3261 §9.2, §15.1.2). */
		answer(r, 481, NULL, 0);
	} else {
		bool is_known = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			is_known |= !strcmp(m, known[i]);
		answer(r, is_known ? 405 : 501, allow, 1);
	}
}
