/* SPDX-License-Identifier: MIT */
/* Private to src/http: metrics. */
#ifndef XDMS_HTTP_INT_H
#define XDMS_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "auth/digest.h"
#include "store/store.h"

/* ---- metrics ----------------------------------------------------------------------------- */

struct http_metrics;

struct http_metrics *http_metrics_create(void);
void http_metrics_destroy(struct http_metrics *m);
/* Counts one finished request. Lock-free; any thread. */
void http_metrics_observe(struct http_metrics *m, const char *method, unsigned status, double seconds);
/* Renders the Prometheus text exposition (version 0.0.4) with the store's figures. */
enum xdms_err http_metrics_render(struct http_metrics *m, struct store *st, struct buf *out) XDMS_WUR;


/* ---- authentication (auth.c) ------------------------------------------------------------ */

#include <microhttpd.h>

#include "conf/conf.h"
#include "xcap/xcap.h"

struct http_auth;

enum http_auth_outcome {
	HTTP_AUTH_OK = 0,        /* identity and role are set */
	HTTP_AUTH_CHALLENGE,     /* answer 401 with fresh challenges */
	HTTP_AUTH_STALE,         /* answer 401 with stale=true */
};

/* @c and @st are borrowed. */
struct http_auth *http_auth_create(const struct conf *c, struct store *st);
void http_auth_destroy(struct http_auth *a);

/*
 * Authenticates the request on @conn for @realm: an asserted identity from a
 * trusted peer, else Digest, else Basic where allowed. @raw_uri is the
 * request-target as sent (Digest's uri must equal it). On OK, @identity
 * (STORE_XUI_MAX bytes) and *role are set. *why gets a static reason for the
 * log when the outcome is not OK.
 */
enum http_auth_outcome http_auth_check(struct http_auth *a, struct MHD_Connection *conn, const char *method,
				       const char *raw_uri, const char *realm, bool is_tls, char *identity,
				       enum xcap_role *role, const char **why);

/* Adds the WWW-Authenticate challenges (one per offered algorithm, and Basic
 * when allowed) for @realm to @resp. */
void http_auth_add_challenges(struct http_auth *a, struct MHD_Response *resp, const char *realm,
			      bool is_stale, bool is_tls);

/* The role of an identity under the configured lists. */
enum xcap_role http_auth_role(const struct http_auth *a, const char *identity);

/* ---- the head gate (gate.c) -------------------------------------------------------------- */

struct http_gate;

/* Why the gate refused a connection (counted per kind). */
enum gate_refusal {
	GATE_REFUSED_CAPACITY = 0,  /* http.max_connections reached: 503 */
	GATE_REFUSED_PER_ADDRESS,   /* http.max_per_address reached: 503 */
	GATE_REFUSED_HEAD_TIMEOUT,  /* head not complete within http.head_timeout: 408 */
	GATE_REFUSED_BAD_HEAD,      /* malformed request line or head: 400 or 505 */
	GATE_REFUSAL__COUNT
};

struct http_gate_options {
	int listen_fd;                  /* borrowed; made non-blocking */
	bool is_tls;                    /* heads are encrypted: hand over at once */
	/* Called on the gate thread with each admitted connection, which it
	 * owns from then on. False: it was not taken (and is closed); the gate
	 * uncounts it. */
	bool (*hand_over)(void *arg, int fd, const struct sockaddr *sa, socklen_t sa_len);
	unsigned max_connections;       /* 0 = no cap */
	unsigned max_per_address;       /* 0 = no cap */
	const struct conf_list *exempt; /* addresses free of the per-address cap; borrowed */
	unsigned head_timeout_s;
	size_t max_head;                /* bytes a head may have (http.max_header) */
	/* Called on the gate thread for every refusal, for the log and metrics. */
	void (*on_refused)(void *arg, const char *ip, unsigned status, const char *why);
	void *arg;
};

/* Starts the gate's thread on o->listen_fd. IO when a thread or epoll set
 * cannot be created. */
enum xdms_err http_gate_start(const struct http_gate_options *o, struct http_gate **out) XDMS_WUR;
/* Stops accepting and closes the connections whose heads are still awaited.
 * The counts stay usable (daemons still release into them). */
void http_gate_stop(struct http_gate *g);
/* Stops if needed and frees. Call after the daemons stopped. NULL-tolerant. */
void http_gate_destroy(struct http_gate *g);
/* A daemon closed a connection from @sa: uncount it. Any thread. NULL-tolerant. */
void http_gate_release(struct http_gate *g, const struct sockaddr *sa);
/* Connections open now (awaited heads and the daemons' connections). */
unsigned http_gate_open_count(struct http_gate *g);
/* Refusals of one kind since the start. Any thread. */
uint64_t http_gate_refused(struct http_gate *g, enum gate_refusal why);

/* Sends a complete plain-text answer with Connection: close on @fd, as far
 * as the socket takes it without blocking (for answers libmicrohttpd cannot
 * queue). Plain HTTP only. Any thread. */
void http_raw_answer(int fd, unsigned status, const char *why);

/* Writes " (held by pid N, NAME)" into @out when a process that we may
 * inspect listens on the TCP port of @ss (from /proc), else "". */
void http_port_holder(const struct sockaddr_storage *ss, char *out, size_t len);

/* ---- framing (framing.c) ---------------------------------------------------------------- */

/*
 * Checks the framing of the request head on @conn, on the access handler's
 * first call: @target and @target_len are the target as the URI callback
 * got it (libmicrohttpd's pointer, and its length then), @version the
 * handler's version argument. Returns 0 when the head is acceptable, else
 * 400 or 501 with a static reason in *why. The caller answers with that
 * status and closes the connection. Any pool thread.
 */
unsigned http_framing_check(struct MHD_Connection *conn, const char *target, size_t target_len,
			    const char *version, const char **why);

/* ---- a daemon's event loop (loop.c) ------------------------------------------------------ */

struct http_loop;

struct http_loop_options {
	/* Started with MHD_USE_EPOLL, MHD_USE_NO_LISTEN_SOCKET and without
	 * MHD_USE_INTERNAL_POLLING_THREAD; borrowed, stopped by the caller after
	 * http_loop_stop. */
	struct MHD_Daemon *daemon;
	bool is_tls; /* idle passes are only looked for over TLS (loop.c) */
	/* Called on the loop thread (or by http_loop_destroy) for a queued
	 * connection that never reached the daemon (already closed). */
	void (*on_lost)(void *arg, const struct sockaddr *sa);
	void *arg;
};

/* Starts the thread that runs @o->daemon (see loop.c). IO when the thread or
 * its wake-up cannot be made. */
enum xdms_err http_loop_start(const struct http_loop_options *o, struct http_loop **out) XDMS_WUR;
/* Queues @fd (owned from here) for the daemon. Any thread. False when the
 * loop is stopping: @fd is closed and on_lost is not called. */
bool http_loop_add(struct http_loop *l, int fd, const struct sockaddr *sa, socklen_t sa_len);
/* MHD_resume_connection(@conn) and a wake-up for its loop. Any thread. */
void http_loop_resume(struct http_loop *l, struct MHD_Connection *conn);
/* On the loop thread: the pass being run did work (bytes moved, a request
 * ran), so the next one may be needed at once (see loop.c). */
void http_loop_note_work(void);
/* Ends the thread; the daemon is no longer run. NULL-tolerant. */
void http_loop_stop(struct http_loop *l);
/* Stops if needed, closes what is still queued, frees. NULL-tolerant. */
void http_loop_destroy(struct http_loop *l);

/* ---- TLS credentials (tls.c) ------------------------------------------------------------ */

struct http_tls;

/*
 * Loads the certificate chain and the private key (PEM text, borrowed) for
 * libmicrohttpd's certificate callback and, with @tickets, the master key of
 * session tickets: from @ticket_key_file (made there when missing) or, when
 * that is NULL or empty, made in memory (see tls.c). One per process. PARSE
 * when a PEM file does not parse, IO or CORRUPT from the ticket key file,
 * each with *why (heap). Main thread, before the daemons start.
 */
enum xdms_err http_tls_create(const char *cert_pem, const char *key_pem, bool tickets, const char *ticket_key_file,
			      struct http_tls **out, char **why);
void http_tls_destroy(struct http_tls *t);
/* The gnutls_certificate_retrieve_function2 for MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *http_tls_callback(void);
/* On the daemon's thread, as libmicrohttpd reports a new TLS connection and
 * before its handshake: our hooks, socket calls and session tickets. */
void http_tls_connection_started(struct MHD_Connection *conn);
/* On the daemon's thread, as libmicrohttpd reports a TLS connection closed
 * (before it closes the socket): drops what the connection read ahead. */
void http_tls_connection_closed(struct MHD_Connection *conn);

/* Largest answer body that is corked (HTTP_TLS_CORK_MAX plus its head must
 * fit an empty socket's send buffer). */
#define HTTP_TLS_CORK_MAX 3072
/* On the daemon's thread, before a small answer is queued on the TLS
 * connection @conn: hold its records until http_tls_uncork. False (nothing
 * held) unless the socket has nothing waiting to be sent. */
bool http_tls_cork(struct MHD_Connection *conn);
/* Sends what http_tls_cork held, once libmicrohttpd has handed it all over
 * (its request-completed callback). */
void http_tls_uncork(struct MHD_Connection *conn);

#endif
