/* SPDX-License-Identifier: MIT */
/*
 * sip: the SIP stack of xdmsd. One event-loop thread owns a UDP socket and a
 * TCP listener on sip.listen (same address and port), the TCP connections,
 * libosip2's transaction state machines (retransmissions and timers) and the
 * timers below. Everything the stack calls back (the SUBSCRIBE handler, the
 * result of a sent request, timers, functions queued with sip_server_call)
 * runs on that thread, one at a time.
 *
 * Threads: sip_server_start/stop are called by the main program;
 * sip_server_call and the two address getters may be called from any thread;
 * every other function here must be called on the loop thread (from inside
 * a callback).
 *
 * What the stack answers by itself: OPTIONS (200 with Allow, Allow-Events,
 * Accept), SUBSCRIBE for another event package (489), other methods (405 or
 * 501), retransmissions (absorbed by the server transaction). SUBSCRIBE with
 * Event: xcap-diff, in or out of a dialog, goes to the registered handler;
 * without a handler it is answered 501. NOTIFY goes to the handler set with
 * sip_server_on_notify; without one
 * it is answered 405.
 *
 * As a user agent client the stack sends requests in or out of a dialog
 * (sip_send_request, sip_send_request_full) and reports their final
 * response.
 */
#ifndef XDMS_SIP_H
#define XDMS_SIP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "conf/conf.h"

struct sip_server;
/* A received SUBSCRIBE inside its server transaction. Opaque. */
struct sip_request;
/* A one-shot timer on the loop thread. Opaque. */
struct sip_timer;
/* The final response to a sent request, borrowed by a sip_response_fn. Opaque. */
struct sip_response;

enum sip_transport {
	SIP_TRANSPORT_UDP = 0,
	SIP_TRANSPORT_TCP,
};

/* A header to add to a message. Both strings are borrowed for the call. */
struct sip_header {
	const char *name;
	const char *value;
};

/*
 * Called on the loop thread for every new SUBSCRIBE with Event: xcap-diff.
 * @req is valid until sip_request_respond() is called on it, which must
 * happen exactly once: during the call, or later on the loop thread (for
 * example from a function queued with sip_server_call). Until then the
 * server transaction absorbs retransmissions without answering them.
 */
typedef void (*sip_subscribe_fn)(void *arg, struct sip_request *req);

/* Called on the loop thread for every new NOTIFY, with the same contract
 * as sip_subscribe_fn (respond exactly once). */
typedef void (*sip_notify_fn)(void *arg, struct sip_request *req);

/*
 * The final outcome of a request sent with sip_send_request: the status of
 * the final response, 408 when no final response came in time (Timer F) or
 * 503 when it could not be sent (no route, connection refused or lost).
 * Status 0 means the server stopped first; then the callback runs on the
 * thread calling sip_server_stop(). Called exactly once per accepted request.
 */
typedef void (*sip_sent_fn)(void *arg, int status);

/*
 * The final outcome of a request sent with sip_send_request_full: @status as
 * for sip_sent_fn, and @resp the final response when one came (NULL for the
 * 408 of Timer F, 503 and 0). @resp and every string read from it are
 * borrowed for the call only.
 */
typedef void (*sip_response_fn)(void *arg, int status, const struct sip_response *resp);

/* A function run on the loop thread (sip_server_call, timers). */
typedef void (*sip_run_fn)(void *arg);

/* -- life cycle ----------------------------------------------------------- */

/*
 * Binds UDP and TCP on c->sip_listen ("ADDR:PORT" or "[ADDR6]:PORT"; port 0
 * picks a free port shared by both) and starts the loop thread. @c must
 * outlive the server. @on_subscribe may be NULL (SUBSCRIBE xcap-diff then
 * gets 501); it and @arg are used on the loop thread only.
 * Returns INVAL for a bad address, IO when a socket cannot be bound or the
 * thread not started; *why then holds a heap sentence the caller frees.
 */
enum xdms_err sip_server_start(const struct conf *c, sip_subscribe_fn on_subscribe, void *arg,
			       struct sip_server **out, char **why) XDMS_WUR;

/* "127.0.0.1:PORT" ("[::1]:PORT" for IPv6) of the bound sockets. Borrowed,
 * valid until sip_server_stop; any thread. */
const char *sip_server_udp_address(const struct sip_server *s);
const char *sip_server_tcp_address(const struct sip_server *s);

/*
 * Appends the SIP layer's Prometheus lines to @out: server transactions
 * alive (xdms_sip_server_transactions) and requests refused by
 * sip.max_transactions or sip.max_per_source (xdms_sip_refused_total).
 * Any thread.
 */
enum xdms_err sip_server_metrics(struct sip_server *s, struct buf *out) XDMS_WUR;

/*
 * Stops the loop: runs the functions already queued with sip_server_call,
 * joins the thread, reports status 0 to every sip_sent_fn still pending
 * (on the calling thread), drops unanswered requests and pending timers
 * without calling them, closes every socket and frees @s. NULL-tolerant.
 * Not from the loop thread.
 */
void sip_server_stop(struct sip_server *s);

/*
 * Queues @fn(@arg) to run on the loop thread and wakes it. Any thread.
 * Functions run in the order they were queued. Returns BUSY once
 * sip_server_stop has begun (then @fn will never run).
 */
enum xdms_err sip_server_call(struct sip_server *s, sip_run_fn fn, void *arg) XDMS_WUR;

/* -- timers (loop thread) ------------------------------------------------- */

/*
 * Runs @fn(@arg) once, on the loop thread, after @delay_ms milliseconds
 * (monotonic clock). The handle is valid until the timer fires or is
 * cancelled; timers still pending at stop are freed without running.
 */
struct sip_timer *sip_timer_start(struct sip_server *s, unsigned delay_ms, sip_run_fn fn, void *arg);
/* Cancels a timer that has not fired yet. NULL-tolerant. */
void sip_timer_cancel(struct sip_server *s, struct sip_timer *t);

/* -- received requests (loop thread; @req as in sip_subscribe_fn) --------- */

/* "SUBSCRIBE". Borrowed from @req. */
const char *sip_request_method(const struct sip_request *req);
/* The Request-URI as text. Borrowed from @req. */
const char *sip_request_uri(const struct sip_request *req);

/*
 * The @index-th value (0-based, in message order) of header @name, or NULL.
 * Names compare case-insensitively and compact forms are understood
 * ("o" = Event, "m" = Contact, ...). Headers whose values libosip2 splits
 * (Via, Contact, Route, Record-Route, Accept) give one value per element, so
 * "Record-Route: <a>, <b>" is index 0 "<a>" and index 1 "<b>". Values are as
 * libosip2 re-serialises them, without the header name. Borrowed from @req.
 */
const char *sip_request_header(struct sip_request *req, const char *name, size_t index);

/* Call-ID, From/To URIs (without display name or brackets) and tags; a tag
 * is NULL when absent (a To tag is absent on an initial SUBSCRIBE).
 * Borrowed from @req. */
const char *sip_request_call_id(const struct sip_request *req);
const char *sip_request_from_uri(struct sip_request *req);
const char *sip_request_from_tag(const struct sip_request *req);
const char *sip_request_to_uri(struct sip_request *req);
const char *sip_request_to_tag(const struct sip_request *req);
/* The CSeq number. */
uint32_t sip_request_cseq(const struct sip_request *req);
/* The URI of the first Contact (the remote target), or NULL. Borrowed. */
const char *sip_request_contact_uri(struct sip_request *req);
/* The Event package token without parameters ("xcap-diff"). Borrowed. */
const char *sip_request_event(struct sip_request *req);
/* The Expires value in seconds, or -1 when absent or not a number. */
long sip_request_expires(struct sip_request *req);
/* The Content-Type ("type/subtype" without parameters), or NULL. Borrowed. */
const char *sip_request_content_type(struct sip_request *req);
/* The body (NULL and *len 0 when there is none). Borrowed from @req. */
const char *sip_request_body(const struct sip_request *req, size_t *len);

/* Where the request came from: transport and "IP:PORT" of the peer (for a
 * NOTIFY's destination and for sip.trusted_peers). Borrowed. */
enum sip_transport sip_request_transport(const struct sip_request *req);
const char *sip_request_source(const struct sip_request *req);
/* The source IP alone, as compared against sip.trusted_peers. Borrowed. */
const char *sip_request_source_ip(const struct sip_request *req);

/*
 * The To tag of this side of the dialog: the request's To tag when it has
 * one (a refresh), otherwise the tag the stack generated for this
 * transaction, which every response to it carries. Call it before
 * responding to keep it for the dialog. Borrowed from @req.
 */
const char *sip_request_local_tag(const struct sip_request *req);

/*
 * Answers @req and releases it (the caller must not touch @req afterwards,
 * whatever the result). The response copies Via, From, To (with the local
 * tag from sip_request_local_tag() for every status above 100), Call-ID and
 * CSeq, and carries Server and Content-Length. A 2xx to SUBSCRIBE also
 * copies the Record-Route set and gets a Contact for this server unless
 * @headers has one. @headers (may be NULL when @header_count is 0) are
 * added as given; names must not be Via, From, To, Call-ID, CSeq,
 * Content-Length or Content-Type, and no name or value may hold CR or LF.
 * @body may be NULL; @content_type is required when @body_len > 0.
 * @status must be 200..699 (provisional answers are not supported).
 * Returns INVAL for a bad status, header or body: the request is then
 * answered 500 instead, so the transaction still ends. OK otherwise (a
 * transport failure later is logged, not reported).
 */
enum xdms_err sip_request_respond(struct sip_request *req, int status, const char *reason,
				  const struct sip_header *headers, size_t header_count,
				  const char *content_type, const char *body, size_t body_len) XDMS_WUR;

/* -- requests inside a dialog (loop thread) ------------------------------- */

/* The dialog as the sending side sees it (RFC 3261 §12). All strings are
 * borrowed for the duration of the call. */
struct sip_dialog_out {
	const char *call_id;
	const char *local_uri;      /* From URI, e.g. "sip:alice@example.com" */
	const char *local_tag;      /* From tag (our To tag in the SUBSCRIBE's 200) */
	const char *remote_uri;     /* To URI */
	const char *remote_tag;     /* To tag (the subscriber's From tag) */
	const char *remote_target;  /* Request-URI: the subscriber's Contact URI */
	const char *const *route_set; /* Route values in order, e.g. "<sip:p1;lr>": for the
				       * notifier (the UAS of the SUBSCRIBE) the SUBSCRIBE's
				       * Record-Route list as received (RFC 3261 §12.1.1) */
	size_t route_count;
	uint32_t cseq;              /* the local CSeq number for this request */
	enum sip_transport transport;
	/* "IP:PORT" to send to, e.g. sip_request_source() of the SUBSCRIBE. NULL:
	 * the host and port of the first Route or else the remote target, which
	 * must then be an IP literal (the stack does no DNS). */
	const char *destination;
};

/*
 * Sends @method (e.g. "NOTIFY") in dialog @d with a new client transaction:
 * UDP retransmits per RFC 3261 Timer E until Timer F (32 s); TCP reuses an
 * open connection to the destination (e.g. the one the SUBSCRIBE came on)
 * or opens one. Adds Via (new branch), Max-Forwards, From, To, Call-ID,
 * CSeq, Route, Contact, Content-Length and @headers (e.g. Event,
 * Subscription-State). @body may be NULL; @content_type is required when
 * @body_len > 0. On OK, @done(@arg, status) is called exactly once later
 * on the loop thread (never during this call). Returns INVAL for a missing
 * or malformed field or destination, BUSY when too many requests are in
 * flight; @done is then never called.
 */
enum xdms_err sip_send_request(struct sip_server *s, const char *method, const struct sip_dialog_out *d,
			       const struct sip_header *headers, size_t header_count,
			       const char *content_type, const char *body, size_t body_len,
			       sip_sent_fn done, void *arg) XDMS_WUR;

/*
 * As sip_send_request, but @done gets the final response itself, for its
 * headers (a SUBSCRIBE's To tag, Expires, Contact, Record-Route, a
 * challenge). @d->remote_tag may be NULL for a request outside a dialog
 * (then @d->remote_target is the Request-URI and @d->destination where it
 * goes). Provisional responses are not reported.
 */
enum xdms_err sip_send_request_full(struct sip_server *s, const char *method, const struct sip_dialog_out *d,
				    const struct sip_header *headers, size_t header_count,
				    const char *content_type, const char *body, size_t body_len,
				    sip_response_fn done, void *arg) XDMS_WUR;

/* -- a final response (loop thread, inside a sip_response_fn) ------------- */

/* The status code (200..699). */
int sip_response_status(const struct sip_response *resp);
/* The @index-th value of header @name, as sip_request_header: WWW-Authenticate,
 * Proxy-Authenticate, Record-Route and Contact give one value per element;
 * Min-Expires, Retry-After and the rest as received. Borrowed from @resp. */
const char *sip_response_header(const struct sip_response *resp, const char *name, size_t index);
/* The To tag, or NULL. Borrowed from @resp. */
const char *sip_response_to_tag(const struct sip_response *resp);
/* The Expires value in seconds, or -1 when absent or not a number. */
long sip_response_expires(const struct sip_response *resp);
/* The URI of the first Contact, or NULL. Borrowed from @resp. */
const char *sip_response_contact_uri(const struct sip_response *resp);

/*
 * Routes every new NOTIFY to @fn(@arg, req) (NULL: answered 405 again).
 * Loop thread (or before any request can arrive).
 */
void sip_server_on_notify(struct sip_server *s, sip_notify_fn fn, void *arg);

#endif
