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
 * sip_server_on_notify (the subscriber module below sets it); without one
 * it is answered 405.
 *
 * As a user agent client the stack sends requests in or out of a dialog
 * (sip_send_request, sip_send_request_full) and reports their final
 * response. The subscriber module (struct sip_subscriber, at the end) uses
 * that to subscribe to another XDMS's xcap-diff event package.
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
 * Ends @req's server transaction as soon as its answer is sent, whatever the
 * status, instead of keeping a 2xx for Timer J (32 s over UDP) to answer
 * retransmissions. A retransmission then comes to the handler again as a new
 * request, which must recognise it and give it the same answer. For a
 * handler with many dialogs that can (the subscriber tells a repeated NOTIFY
 * by its CSeq): it holds no transaction per answered request. Call it before
 * sip_request_respond.
 */
void sip_request_end_on_answer(struct sip_request *req);

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

/* -- the subscriber: xcap-diff subscriptions to another XDMS ---------------- */

/*
 * xdmsd as a SIP subscriber (RFC 6665 UAC, RFC 5875 event package): one
 * struct sip_subscriber per SIP server takes the server's NOTIFYs and holds
 * the subscriptions (struct sip_sub), each one dialog with a remote XDMS.
 *
 * Threads. The functions below may be called from any thread, the loop
 * thread included: each queues its work on the loop with sip_server_call
 * and returns at once (except sip_subscriber_destroy, which waits). The
 * callbacks of a subscription run on the loop thread, one at a time, in
 * this order: any number of on_dialog and on_notify, then on_end exactly
 * once, after which no callback of that subscription runs again. A
 * subscription's @arg must stay valid until its on_end has returned.
 *
 * What a subscription does by itself (details in subscriber.c):
 * Digest on 401/407 (MD5 or SHA-256, qop=auth, nonce counts; the
 * credentials given are used on every later request of the dialog); 423
 * honoured once with the Min-Expires asked; a refresh when max(E/2,
 * E - refresh_margin) of the granted E seconds have passed; a refresh
 * answered 481 or 408 (or not at all) starts a new subscription outside
 * the dialog; every NOTIFY of the dialog answered 200 before on_notify.
 */
struct sip_subscriber;
struct sip_sub;

/* The module's limits; 0 takes the default in brackets. */
struct sip_subscriber_conf {
	unsigned max_subscriptions;   /* subscriptions alive at once [10000] */
	size_t max_notify_body;       /* a larger NOTIFY body is not passed on [1 MiB] */
	unsigned refresh_margin;      /* seconds before expiry to refresh at the latest [60] */
	unsigned default_expires;     /* asked when the caller asks 0 [3600] */
	/* A resumed dialog refreshes at a random point of the first
	 * min(resume_spread, half its time left) seconds, so that a restart
	 * with many subscriptions does not send all refreshes at once; 0: at
	 * once [0]. */
	unsigned resume_spread;
};

/* What to subscribe to; every string is copied by sip_sub_start/resume. */
struct sip_sub_params {
	/* Where the SUBSCRIBE goes: "sip:IP:PORT[;transport=tcp]" (an IP
	 * literal; the stack does no DNS). */
	const char *target;
	/* Request-URI and To: the owner of the watched documents as the remote
	 * XDMS knows it, e.g. "sip:alice@example.com". */
	const char *resource_uri;
	/* From: who subscribes, e.g. "sip:alice@example.com". */
	const char *local_uri;
	/* The XCAP selectors to watch, relative to the remote XCAP root
	 * ("org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index"),
	 * sent as the resource-lists body. At least one. */
	const char *const *entries;
	size_t entry_count;
	/* Digest credentials for the remote side; NULL when there are none
	 * (then a challenge ends the subscription with status 401/407). */
	const char *username;
	const char *password;
	unsigned expires; /* seconds asked; 0: the module's default */
	/* NULL (no-patching), "xcap-patching" or "aggregate" (RFC 5875 §4.4). */
	const char *diff_processing;
};

/*
 * The dialog as it must be kept to resume after a restart. Strings are
 * borrowed for the callback (on_dialog) or the call (sip_sub_resume).
 */
struct sip_sub_dialog {
	const char *call_id;
	const char *local_tag;      /* our From tag */
	const char *remote_tag;     /* the notifier's tag; NULL before it is known */
	uint32_t cseq;              /* the last CSeq number we sent */
	const char *remote_target;  /* the notifier's Contact URI; NULL before it is known */
	const char *const *route_set; /* Route values in the order they are sent */
	size_t route_count;
	enum sip_transport transport;
	const char *destination;    /* "IP:PORT" the requests go to */
	int64_t expires_at;         /* wall clock (Unix seconds) the subscription ends; 0 unknown */
};

/* One NOTIFY of the dialog, already answered 200. Borrowed for the call. */
struct sip_sub_notify {
	const char *state;        /* "active", "pending", "terminated" or another token */
	long expires;             /* Subscription-State expires=, -1 when absent */
	const char *reason;       /* terminated: reason=, or NULL */
	long retry_after;         /* retry-after=, -1 when absent */
	const char *content_type; /* "type/subtype", or NULL */
	const char *body;         /* NULL when none or when it was over max_notify_body */
	size_t body_len;
	bool is_body_dropped;     /* true: a body over max_notify_body came and was not kept */
};

/* Why a subscription ended. Borrowed for the call. */
struct sip_sub_end {
	/* The SIP status of the refusal that ended it (401 after our answer
	 * to a challenge, 403, 404, 489, 408/503 when the remote side did not
	 * answer, ...), or 0 when it did not end on a response. */
	int status;
	/* The Subscription-State reason of a terminating NOTIFY ("timeout",
	 * "deactivated", "noresource", "rejected", "giveup", ...), or one of
	 * ours: "refused" (status says why), "unsubscribed" (sip_sub_unsubscribe
	 * done), "abandoned" (sip_sub_abandon or sip_subscriber_destroy), "expired"
	 * (no refresh succeeded in time), "limit" (max_subscriptions reached),
	 * "invalid" (unusable parameters or dialog). After "deactivated" or
	 * "timeout" from the notifier a new subscription may start at once;
	 * after "probation" or "giveup", not before retry_after (RFC 6665
	 * §4.1.3). */
	const char *reason;
	long retry_after;         /* seconds, -1 when none was given */
};

struct sip_sub_callbacks {
	/* The dialog changed (created, refreshed, re-created, new target):
	 * store it to resume later. May be NULL. */
	void (*on_dialog)(void *arg, const struct sip_sub_dialog *d);
	/* A NOTIFY (initial state, a change, or the final one). */
	void (*on_notify)(void *arg, const struct sip_sub_notify *n);
	/* The end; the last callback. */
	void (*on_end)(void *arg, const struct sip_sub_end *e);
};

/*
 * Creates the module for @s and routes @s's NOTIFYs to it. @c may be NULL
 * (defaults) and is copied. Any thread but the loop's; waits until the
 * loop has taken it. Returns BUSY when the server is stopping (*out NULL).
 */
enum xdms_err sip_subscriber_create(struct sip_server *s, const struct sip_subscriber_conf *c,
				    struct sip_subscriber **out) XDMS_WUR;

/*
 * Abandons every subscription (on_end with reason "abandoned", on the loop
 * thread, no SIP message sent: the remote dialogs stay for a resume), stops
 * taking NOTIFYs (405 again) and frees @m once the loop is done with it.
 * Must be called before sip_server_stop, from any thread but the loop's;
 * waits for the loop. Handles not yet released stay valid until
 * sip_sub_release. NULL-tolerant.
 */
void sip_subscriber_destroy(struct sip_subscriber *m);

/*
 * Starts a subscription. Returns a handle the caller owns (release it with
 * sip_sub_release, before or after on_end), or NULL when @p is unusable
 * (missing field, no entry, a target that is not "sip:IP:PORT...") or the
 * server is stopping; then no callback is ever made. Limits reached later
 * end the subscription through on_end ("limit").
 */
struct sip_sub *sip_sub_start(struct sip_subscriber *m, const struct sip_sub_params *p,
			      const struct sip_sub_callbacks *cb, void *arg);

/*
 * Resumes a subscription from a dialog kept by on_dialog: a refresh in the
 * dialog (CSeq continues 1000 above the saved one, in case a request was
 * sent after the last save), at once or spread (resume_spread); a 481 or no
 * answer starts a new subscription with @p. A dialog without remote tag or
 * target, or past its expires_at, starts a new subscription at once. NOTIFYs of the dialog are taken from the moment the loop runs the
 * resume. Same returns as sip_sub_start.
 */
struct sip_sub *sip_sub_resume(struct sip_subscriber *m, const struct sip_sub_params *p,
			       const struct sip_sub_dialog *d, const struct sip_sub_callbacks *cb, void *arg);

/*
 * Ends the subscription at the remote side: SUBSCRIBE with Expires: 0 in
 * the dialog, then on_end ("unsubscribed") when the final NOTIFY has come
 * (or a few seconds after the answer when it does not). Does nothing once
 * the subscription has ended.
 */
void sip_sub_unsubscribe(struct sip_sub *sub);

/* Ends the subscription here only (on_end "abandoned"), leaving the remote
 * dialog to expire or to be resumed. Does nothing once it has ended. */
void sip_sub_abandon(struct sip_sub *sub);

/* Gives up the caller's handle. The subscription itself goes on until it
 * ends; the memory goes when both have happened. NULL-tolerant. */
void sip_sub_release(struct sip_sub *sub);

#endif
