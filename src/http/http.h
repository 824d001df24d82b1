/* SPDX-License-Identifier: MIT */
/*
 * http: the libmicrohttpd front of xdmsd. Listeners (plain or TLS),
 * authentication (RFC 7616 Digest against the store's users, Basic where
 * allowed, asserted identities from trusted proxies), the mapping of xcap
 * results to HTTP, the access log, /healthz and /metrics, and routes other
 * modules serve outside the XCAP root (the IWF's webhook endpoint).
 *
 * Threads: libmicrohttpd's pool runs the handlers. Reads are answered on the
 * pool thread; writes suspend their connection, go to the store's writer
 * thread and resume when durable, so a pool thread never waits for an fsync
 * and concurrent writes share one commit.
 */
#ifndef XDMS_HTTP_H
#define XDMS_HTTP_H

#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "conf/conf.h"
#include "store/store.h"
#include "xcap/xcap.h"

/*
 * The HTTP status (200, 404, ...) and reason phrase ("Not Found") of an xcap
 * outcome: the one table (status.c). Also used by the programs that run
 * xcap without HTTP (xdmsctl, the IWF), so that they report the status a
 * client would have seen. Any thread.
 */
unsigned http_status_of(enum xcap_outcome o);
const char *http_reason_of(enum xcap_outcome o);

struct http_server;

/*
 * Starts listening on conf->http_listen and serving. @c, @st and @x are
 * borrowed and must outlive the server. On failure returns IO (cannot bind),
 * INVAL (bad address or TLS files) with a sentence in *why (heap; caller frees).
 */
enum xdms_err http_server_start(const struct conf *c, struct store *st, struct xcap *x,
				struct http_server **out, char **why) XDMS_WUR;

/* The bound address as "ADDR:PORT" (the real port when 0 was asked). Borrowed. */
const char *http_server_address(const struct http_server *srv);

/* Reopens the access-log file (after logrotate moved it). Any thread. */
void http_server_reopen_logs(struct http_server *srv);

/*
 * Registers @fn to append more Prometheus lines to /metrics (the notifier's,
 * the IWF's); sources are rendered in the order they were added, at most 8.
 * Main thread only, after start; @fn runs on HTTP threads and must be
 * thread-safe and non-blocking, and return non-OK to fail the scrape with
 * 500. @arg must outlive the server.
 */
typedef enum xdms_err (*http_metrics_fn)(void *arg, struct buf *out);
void http_server_add_metrics(struct http_server *srv, http_metrics_fn fn, void *arg);

/*
 * A path outside the XCAP root served by another module (the IWF's webhook
 * endpoint): every request whose path starts with @prefix goes to @fn,
 * without authentication (the module checks its own signature) and with a
 * body of at most @max_body bytes (413 beyond). @fn runs on an HTTP thread
 * and must not block; it returns the status and a text/plain body in *answer
 * (heap, may stay NULL). Up to 4 routes; main thread only, after start.
 * @prefix and @header are copied; @arg must outlive the server.
 */
struct http_route_call {
	const char *method;
	const char *rest;   /* the raw path after the prefix */
	const char *query;  /* after '?', or NULL */
	const char *header; /* the value of the route's header, or NULL */
	const char *body;
	size_t body_len;
};
typedef unsigned (*http_route_fn)(void *arg, const struct http_route_call *call, char **answer);
void http_server_add_route(struct http_server *srv, const char *prefix, const char *header, size_t max_body,
			   http_route_fn fn, void *arg);

/*
 * Stops accepting connections, lets requests in flight finish (waiting up to
 * @grace_ms for suspended writes), then stops the pool and frees the server.
 * NULL-tolerant.
 */
void http_server_stop(struct http_server *srv, unsigned grace_ms);

#endif
