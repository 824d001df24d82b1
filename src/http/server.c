/* SPDX-License-Identifier: MIT */
/*
 * The libmicrohttpd server.
 *
 * Request life cycle. MHD hands us the raw request-target first (the URI log
 * callback), before it decodes anything; we keep it, because XCAP URIs must be
 * split into segments before percent-decoding and Digest compares the raw
 * form. The access handler then runs several times per request:
 *   1. headers complete: route, authenticate (401 before anything about the
 *      resource is revealed), refuse an announced body that is too large;
 *   2. body chunks: appended to a buffer capped at http.max_body;
 *   3. end of body: reads are answered at once; a write is prepared
 *      (validation runs here, on the pool thread), the connection suspended
 *      and the write queued for the store's writer thread;
 *   4. after the writer's callback resumed the connection: the response.
 * The completion callback writes the access-log line, counts the metrics and
 * frees the request.
 *
 * Connections. The head gate (gate.c) owns the one listening socket: it
 * accepts, applies the connection caps, waits for a well-formed request head
 * under a deadline and only then hands the connection to a daemon, in turn.
 * One socket without SO_REUSEPORT also means a second server cannot share
 * the port (bind fails, and the message names the process holding it).
 *
 * Threads: one single-threaded libmicrohttpd daemon per core (http.threads),
 * each run by its own loop thread (loop.c: libmicrohttpd's own epoll thread
 * can stall with many connections ready at once), runs everything above
 * except the resume, which the store's writer thread performs. The same
 * epoll loop serves plain HTTP and TLS. `inflight` counts suspended requests
 * so that shutdown can wait for them (MHD must not be stopped with suspended
 * connections).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/net.h"
#include "base/mem.h"
#include "http/http.h"
#include "http/http_int.h"

#define HTTP_DAEMONS_MAX 64
#define HTTP_METRICS_SOURCES_MAX 8
#define HTTP_ROUTES_MAX 4

struct http_server {
	const struct conf *c;
	struct store *st;
	struct xcap *x;
	struct MHD_Daemon *daemons[HTTP_DAEMONS_MAX]; /* one per core; the gate hands them connections */
	struct http_loop *loops[HTTP_DAEMONS_MAX];    /* loops[i] runs daemons[i] */
	unsigned daemon_count;
	unsigned loop_count;
	unsigned next_loop; /* gate thread only */
	int listen_fd;
	struct http_gate *gate;
	struct http_auth *auth;
	struct http_metrics *metrics;
	/* Other modules' figures for /metrics: slots are filled before the
	 * count that publishes them grows, and never change afterwards. */
	struct {
		http_metrics_fn fn;
		void *arg;
	} extra_metrics[HTTP_METRICS_SOURCES_MAX];
	atomic_uint extra_metrics_count;
	/* Other modules' paths (webhooks), published like extra_metrics. */
	struct {
		char *prefix;
		char *header;
		size_t max_body;
		http_route_fn fn;
		void *arg;
	} routes[HTTP_ROUTES_MAX];
	atomic_uint route_count;
	FILE *access_log; /* NULL = off; swapped under log_lock on SIGHUP */
	pthread_mutex_t log_lock;
	bool is_tls;
	char *tls_cert;
	char *tls_key;
	struct http_tls *tls;
	char root_path[512];
	char address[INET6_ADDRSTRLEN + 16];
	atomic_int inflight;
};

/* REQ_HEAD_READ: a request without a body whose head has been checked; it
 * is answered at libmicrohttpd's next call (see handle()). */
enum request_state { REQ_HEADERS = 0, REQ_HEAD_READ, REQ_BODY, REQ_WRITING, REQ_WRITTEN, REQ_ANSWERED };

struct request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_loop *loop; /* the loop running the connection's daemon */
	char *raw_uri;   /* as sent, path and query */
	const char *target; /* libmicrohttpd's copy of the target, for framing.c */
	size_t target_len;
	char *path;      /* raw path (before '?') */
	const char *query; /* into raw_uri, after '?', or NULL */
	const char *method;
	enum xcap_method xmethod;
	enum request_state state;
	struct timespec start;
	struct buf body;
	bool is_too_big;
	bool is_xcap;
	struct xcap_uri uri;
	enum xdms_err uri_err;
	char realm_buf[STORE_REALM_MAX];
	const char *realm;
	char identity[STORE_XUI_MAX];
	struct xcap_identity who;
	struct xcap_write *write;
	unsigned status;
	size_t bytes;
	const char *note; /* why a request was refused, for the access log */
	bool is_unauthorized; /* answer 401 once the body has been read */
	bool is_stale;        /* the 401 carries stale=true */
	bool is_close;        /* the answer closes the connection */
	bool is_corked;       /* the answer's TLS records wait for completed() */
	size_t body_seen;     /* body bytes received, for http.min_body_rate */
	int route;            /* index of the module route serving it, or -1 */
};

static double elapsed_seconds(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static struct http_loop *loop_of(struct http_server *srv, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);

	for (unsigned i = 0; ci && i < srv->loop_count; i++)
		if (srv->daemons[i] == ci->daemon)
			return srv->loops[i];
	abort(); /* every daemon has its loop before it gets a connection */
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	struct request *r = xcalloc(1, sizeof(*r));
	char *q;

	r->srv = srv;
	r->conn = conn;
	r->loop = loop_of(srv, conn);
	r->route = -1;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->raw_uri = xstrdup(uri ? uri : "");
	r->target = uri;
	r->target_len = strlen(r->raw_uri);
	r->path = xstrdup(r->raw_uri);
	q = strchr(r->path, '?');
	if (q) {
		*q = '\0';
		r->query = r->raw_uri + (q - r->path) + 1;
	}
	buf_init(&r->body, srv->c->http_max_body);
	return r;
}

/* MHD would percent-decode the path in place; XCAP must see it raw. */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
	return strlen(s);
}

static void request_free(struct request *r)
{
	if (!r)
		return;
	free(r->raw_uri);
	free(r->path);
	buf_cleanup(&r->body);
	xcap_uri_cleanup(&r->uri);
	free(r);
}

static void access_log_line(struct request *r, double seconds)
{
	char line[2048];
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line), "%s %s %s %u %zu %.3fms %s%s%s\n", when, r->method ? r->method : "-",
		 r->raw_uri, r->status, r->bytes, seconds * 1e3, r->identity[0] ? r->identity : "-",
		 r->note ? " " : "", r->note ? r->note : "");
	pthread_mutex_lock(&r->srv->log_lock);
	if (r->srv->access_log) {
		fputs(line, r->srv->access_log);
		fflush(r->srv->access_log);
	}
	pthread_mutex_unlock(&r->srv->log_lock);
}

static void request_record(struct request *r)
{
	struct http_server *srv = r->srv;
	double seconds = elapsed_seconds(&r->start);

	http_metrics_observe(srv->metrics, r->method ? r->method : "OTHER", r->status, seconds);
	if (r->status >= 500)
		log_error("%s %s: %u (%s)", r->method ? r->method : "-", r->raw_uri, r->status,
			  r->note ? r->note : "see the access log");
	if (srv->access_log)
		access_log_line(r, seconds);
}

static enum MHD_Result queue(struct request *r, unsigned status, const char *content_type, char *body,
			     size_t body_len, const char *etag, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char quoted[STORE_ETAG_MAX + 2];

	resp = MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (content_type && body_len)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (etag && etag[0]) {
		snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, quoted);
	}
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (r->is_close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == 401)
		http_auth_add_challenges(r->srv->auth, resp, r->realm ? r->realm : r->srv->c->auth_realm,
					 r->is_stale, r->srv->is_tls);
	r->status = status;
	r->bytes = body_len;
	r->state = REQ_ANSWERED;
	/* libmicrohttpd sends the head and the body of a TLS answer as two
	 * records in two writes; corked, a small answer leaves as one. */
	if (r->srv->is_tls && body_len <= HTTP_TLS_CORK_MAX)
		r->is_corked = http_tls_cork(r->conn);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	/* Counted and logged as the answer is handed over, so a client that
	 * reads /metrics right after a response sees that response counted. */
	request_record(r);
	return ret;
}

static enum MHD_Result queue_text(struct request *r, unsigned status, const char *text, const char *allow)
{
	size_t n = strlen(text);

	return queue(r, status, "text/plain; charset=utf-8", xstrndup(text, n), n, NULL, allow);
}

static enum MHD_Result queue_xcap(struct request *r, struct xcap_response *xr)
{
	size_t len;
	char *body = buf_take(&xr->body, &len);
	enum MHD_Result ret = queue(r, http_status_of(xr->outcome), xr->content_type, body, len, xr->etag,
				    xr->allow);

	xcap_response_cleanup(xr);
	return ret;
}

static enum xcap_method method_of(const char *m)
{
	if (!strcmp(m, MHD_HTTP_METHOD_GET))
		return XCAP_METHOD_GET;
	if (!strcmp(m, MHD_HTTP_METHOD_HEAD))
		return XCAP_METHOD_HEAD;
	if (!strcmp(m, MHD_HTTP_METHOD_PUT))
		return XCAP_METHOD_PUT;
	if (!strcmp(m, MHD_HTTP_METHOD_DELETE))
		return XCAP_METHOD_DELETE;
	return XCAP_METHOD_OTHER;
}

static const char *header(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* "http://host:port" as the client addressed us, for absolute URIs in bodies. */
static void base_url(struct request *r, char *out, size_t len)
{
	const char *host = header(r, MHD_HTTP_HEADER_HOST);

	snprintf(out, len, "%s://%s", r->srv->is_tls ? "https" : "http", host ? host : r->srv->address);
}

static void fill_request(struct request *r, struct xcap_request *xreq, char *base, size_t base_len)
{
	memset(xreq, 0, sizeof(*xreq));
	base_url(r, base, base_len);
	xreq->method = r->xmethod;
	xreq->uri = &r->uri;
	xreq->content_type = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	xreq->if_match = header(r, MHD_HTTP_HEADER_IF_MATCH);
	xreq->if_none_match = header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
	xreq->body = r->body.data ? r->body.data : "";
	xreq->body_len = r->body.len;
	xreq->who = &r->who;
	xreq->base_url = base;
}

static void write_done(void *arg)
{
	struct request *r = arg;

	/* Runs on the store's writer thread; MHD allows resuming from any thread. */
	r->state = REQ_WRITTEN;
	http_loop_resume(r->loop, r->conn);
}

/* The gate's figures: connections open, and refusals by reason. */
static enum xdms_err gate_metrics(struct http_server *srv, struct buf *out)
{
	static const char *const reasons[GATE_REFUSAL__COUNT] = { "capacity", "per_address", "head_timeout",
								   "bad_head" };
	enum xdms_err err;

	err = buf_printf(out,
			 "# HELP xdms_http_connections HTTP connections open (awaited heads included).\n"
			 "# TYPE xdms_http_connections gauge\nxdms_http_connections %u\n"
			 "# HELP xdms_http_refused_connections_total Connections refused before a request ran, "
			 "by reason.\n# TYPE xdms_http_refused_connections_total counter\n",
			 http_gate_open_count(srv->gate));
	for (unsigned i = 0; !err && i < GATE_REFUSAL__COUNT; i++)
		err = buf_printf(out, "xdms_http_refused_connections_total{reason=\"%s\"} %llu\n", reasons[i],
				 (unsigned long long)http_gate_refused(srv->gate, (enum gate_refusal)i));
	return err;
}

static enum MHD_Result serve_ops(struct request *r)
{
	struct http_server *srv = r->srv;

	if (strcmp(r->path, "/healthz") == 0) {
		if (r->xmethod != XCAP_METHOD_GET && r->xmethod != XCAP_METHOD_HEAD)
			return queue_text(r, 405, "use GET\n", "GET, HEAD");
		return queue_text(r, 200, "ok\n", NULL);
	}
	if (strcmp(r->path, "/metrics") == 0) {
		struct buf out;
		size_t len;
		char *body;

		if (r->xmethod != XCAP_METHOD_GET && r->xmethod != XCAP_METHOD_HEAD)
			return queue_text(r, 405, "use GET\n", "GET, HEAD");
		buf_init(&out, 1024 * 1024);
		unsigned n = atomic_load_explicit(&srv->extra_metrics_count, memory_order_acquire);
		enum xdms_err err = http_metrics_render(srv->metrics, srv->st, &out);

		if (!err)
			err = gate_metrics(srv, &out);
		for (unsigned i = 0; !err && i < n; i++)
			err = srv->extra_metrics[i].fn(srv->extra_metrics[i].arg, &out);
		if (err) {
			buf_cleanup(&out);
			return queue_text(r, 500, "metrics unavailable\n", NULL);
		}
		body = buf_take(&out, &len);
		return queue(r, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, NULL, NULL);
	}
	return queue_text(r, 404, "not found; XCAP documents are below the XCAP root\n", NULL);
}

/* The module route whose prefix @path starts with, or -1. */
static int route_of(struct http_server *srv, const char *path)
{
	unsigned n = atomic_load_explicit(&srv->route_count, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (!strncmp(path, srv->routes[i].prefix, strlen(srv->routes[i].prefix)))
			return (int)i;
	return -1;
}

/* A module route's request, its body read. */
static enum MHD_Result serve_route(struct request *r)
{
	struct http_server *srv = r->srv;
	struct http_route_call call;
	char *answer = NULL;
	unsigned status;
	enum MHD_Result ret;

	if (r->is_too_big) {
		r->note = "body too large";
		return queue_text(r, 413, "the request body is larger than this endpoint accepts\n", NULL);
	}
	call.method = r->method;
	call.rest = r->path + strlen(srv->routes[r->route].prefix);
	call.query = r->query;
	call.header = srv->routes[r->route].header ? header(r, srv->routes[r->route].header) : NULL;
	call.body = r->body.data ? r->body.data : "";
	call.body_len = r->body.len;
	status = srv->routes[r->route].fn(srv->routes[r->route].arg, &call, &answer);
	ret = queue_text(r, status, answer ? answer : "", NULL);
	free(answer);
	return ret;
}

/* True when the request announces a body of a size we are willing to read
 * and throw away (a Content-Length no larger than http.max_body). */
static bool body_is_drainable(struct request *r)
{
	const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;

	return n > 0 && n <= r->srv->c->http_max_body;
}

/* True when the head announces a body (RFC 9112 §6.3): a Transfer-Encoding,
 * or a Content-Length other than 0. */
static bool has_body(struct request *r)
{
	const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return true;
	if (!cl)
		return false;
	while (*cl == '0')
		cl++;
	return *cl != '\0';
}

/* Step 1: the headers are complete. */
static enum MHD_Result on_headers(struct request *r)
{
	struct http_server *srv = r->srv;
	const char *cl, *why = NULL;
	enum http_auth_outcome outcome;
	size_t root_len = strlen(srv->root_path);

	r->route = route_of(srv, r->path);
	if (r->route >= 0) {
		/* Read the body under the route's own cap; the route checks its
		 * own credentials (a signature), not HTTP authentication. */
		buf_cleanup(&r->body);
		buf_init(&r->body, srv->routes[r->route].max_body);
		r->state = REQ_BODY;
		return MHD_YES;
	}
	if (!strcmp(r->path, "/healthz") || !strcmp(r->path, "/metrics") ||
	    strncmp(r->path, srv->root_path, root_len) != 0 || (r->path[root_len] != '/' && r->path[root_len]))
		return serve_ops(r);
	r->is_xcap = true;
	r->uri_err = xcap_uri_parse(srv->root_path, r->path, r->query, &r->uri);
	r->realm = xcap_uri_realm(r->uri_err ? NULL : &r->uri, srv->c->auth_realm, r->realm_buf,
				  sizeof(r->realm_buf));
	outcome = http_auth_check(srv->auth, r->conn, r->method, r->raw_uri, r->realm, srv->is_tls, r->identity,
				  &r->who.role, &why);
	if (outcome != HTTP_AUTH_OK) {
		const char *expect = header(r, MHD_HTTP_HEADER_EXPECT);

		r->note = why;
		r->is_stale = outcome == HTTP_AUTH_STALE;
		/* A client that asked for 100-continue gets the 401 before sending
		 * its body. Any other client is already sending it: read and drop
		 * the body first, or closing on it would break its connection
		 * before it reads our answer. */
		if ((expect && strcasecmp(expect, "100-continue") == 0) || !body_is_drainable(r))
			return queue_text(r, 401, "authentication required\n", NULL);
		r->is_unauthorized = true;
		r->state = REQ_BODY;
		return MHD_YES;
	}
	r->who.id = r->identity;
	if (r->xmethod == XCAP_METHOD_OTHER)
		return queue_text(r, 405, "XCAP resources support GET, HEAD, PUT and DELETE\n",
				  "GET, HEAD, PUT, DELETE");
	cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);

		if (*end == '\0' && n > srv->c->http_max_body) {
			r->note = "body too large";
			return queue_text(r, 413, "the request body is larger than this server accepts\n", NULL);
		}
	}
	r->state = REQ_BODY;
	return MHD_YES;
}

/* Step 3: the whole request is in. */
static enum MHD_Result on_complete(struct request *r)
{
	struct xcap_request xreq;
	struct xcap_response xr;
	char base[512];

	if (r->route >= 0)
		return serve_route(r);
	if (r->is_unauthorized)
		return queue_text(r, 401, "authentication required\n", NULL);
	if (r->is_too_big) {
		r->note = "body too large";
		return queue_text(r, 413, "the request body is larger than this server accepts\n", NULL);
	}
	switch (r->uri_err) {
	case XDMS_ERR_OK:
		break;
	case XDMS_ERR_PARSE:
		return queue_text(r, http_status_of(XCAP_OUTCOME_BAD_REQUEST),
				  "malformed percent-encoding in the request URI\n", NULL);
	case XDMS_ERR_TOOBIG:
		return queue_text(r, http_status_of(XCAP_OUTCOME_URI_TOO_LONG),
				  "the document selector is too long\n", NULL);
	default:
		return queue_text(r, http_status_of(XCAP_OUTCOME_NOT_FOUND),
				  "no such resource; XCAP URIs are ROOT/AUID/users/XUI/DOCUMENT or ROOT/AUID/global/DOCUMENT\n",
				  NULL);
	}
	fill_request(r, &xreq, base, sizeof(base));
	xcap_response_init(&xr);
	if (r->xmethod == XCAP_METHOD_GET || r->xmethod == XCAP_METHOD_HEAD) {
		xcap_read(r->srv->x, &xreq, &xr);
		return queue_xcap(r, &xr);
	}
	r->write = xcap_write_prepare(r->srv->x, &xreq, &xr);
	if (!r->write)
		return queue_xcap(r, &xr);
	xcap_response_cleanup(&xr);
	r->state = REQ_WRITING;
	atomic_fetch_add(&r->srv->inflight, 1);
	MHD_suspend_connection(r->conn);
	if (xcap_write_submit(r->srv->x, r->write, write_done, r)) {
		/* The store is closing: nothing was queued, so answer now. */
		r->state = REQ_WRITTEN;
		http_loop_resume(r->loop, r->conn);
	}
	return MHD_YES;
}

/* Step 4: the writer is done with our write. */
static enum MHD_Result on_written(struct request *r)
{
	struct xcap_response xr;

	atomic_fetch_sub(&r->srv->inflight, 1);
	xcap_response_init(&xr);
	xcap_write_finish(r->write, &xr);
	r->write = NULL;
	return queue_xcap(r, &xr);
}

/*
 * True when a body has taken longer than http.head_timeout and its bytes
 * so far (with the @more just arrived) average less than http.min_body_rate
 * per second: a client trickling its body would otherwise hold its
 * connection for as long as it keeps sending a byte within the idle timeout.
 */
static bool body_is_too_slow(struct request *r, size_t more)
{
	const struct conf *c = r->srv->c;
	double seconds;

	r->body_seen += more;
	if (!c->http_min_body_rate)
		return false;
	seconds = elapsed_seconds(&r->start);
	if (seconds <= (double)c->http_head_timeout)
		return false;
	return (double)r->body_seen < (double)c->http_min_body_rate * seconds;
}

/*
 * Ends a request in the middle of its body. libmicrohttpd 0.9.75 queues no
 * response until the body is complete, so the answer is written to the
 * socket directly (plain HTTP; over TLS the connection is only closed), and
 * MHD_NO makes libmicrohttpd close the connection.
 */
static enum MHD_Result answer_mid_body(struct request *r, unsigned status, const char *why)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (!r->srv->is_tls && ci)
		http_raw_answer(ci->connect_fd, status, why);
	r->status = status;
	r->note = why;
	r->state = REQ_ANSWERED;
	request_record(r);
	return MHD_NO;
}

/* RFC 9110 §5.6.2 token: one or more tchar. */
static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size,
			      void **con_cls)
{
	struct request *r = *con_cls;
	unsigned status;

	if (!r)
		return MHD_NO;
	http_loop_note_work();
	switch (r->state) {
	case REQ_HEADERS:
		r->method = method;
		r->xmethod = method_of(method);
		if (!is_token(method)) {
			/* RFC 9110 §9.1: a method is a token; anything else is a broken
			 * request line, refused before routing or authentication. */
			r->method = "-";
			r->is_close = true;
			return queue_text(r, 400, "malformed request method\n", NULL);
		}
		/* Framing first: nothing of a request whose end we cannot be sure
		 * of may reach routing or authentication (framing.c). */
		status = http_framing_check(conn, r->target, r->target_len, version, &r->note);
		if (status) {
			char text[160];

			r->is_close = true;
			snprintf(text, sizeof(text), "%s: %s\n",
				 status == 501 ? "not implemented (only chunked is understood)" : "malformed request",
				 r->note);
			return queue_text(r, status, text, NULL);
		}
		/* libmicrohttpd (0.9.75) closes the connection after any answer
		 * queued with the head, even when no body follows. A request
		 * without a body is therefore answered at the next call, which
		 * comes at once, and its connection stays open for the next
		 * request (a Digest client's retry after its 401, a phone's next
		 * GET). A request with a body keeps the early answers (401 before
		 * a 100-continue body, 413): closing is right for those. */
		if (!has_body(r)) {
			r->state = REQ_HEAD_READ;
			return MHD_YES;
		}
		return on_headers(r);
	case REQ_HEAD_READ: {
		enum MHD_Result ret = on_headers(r);

		if (r->state != REQ_BODY)
			return ret;
		/* Body bytes after all: read as any request's body. */
		if (*upload_data_size)
			return handle(cls, conn, url, method, version, upload_data, upload_data_size, con_cls);
		return on_complete(r);
	}
	case REQ_BODY:
		if (*upload_data_size && body_is_too_slow(r, *upload_data_size))
			return answer_mid_body(r, 408, "request body slower than http.min_body_rate");
		if (*upload_data_size) {
			if (!r->is_too_big && !r->is_unauthorized &&
			    buf_append(&r->body, upload_data, *upload_data_size))
				r->is_too_big = true;
			*upload_data_size = 0;
			return MHD_YES;
		}
		return on_complete(r);
	case REQ_WRITING:
		/* Resumed spuriously before the writer finished; keep waiting. */
		return MHD_YES;
	case REQ_WRITTEN:
		return on_written(r);
	case REQ_ANSWERED:
		/* A response is queued; MHD may still feed us body bytes it discards. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct request *r = *con_cls;

	if (!r)
		return;
	if (r->is_corked) {
		/* libmicrohttpd has handed over the whole answer (or given up). */
		http_tls_uncork(conn);
		r->is_corked = false;
	}
	if (r->write && r->state == REQ_WRITTEN) {
		/* The client went away after its write was applied but before the
		 * answer: the write's outcome stands, only the answer is lost. */
		struct xcap_response lost;

		xcap_response_init(&lost);
		xcap_write_finish(r->write, &lost);
		xcap_response_cleanup(&lost);
		atomic_fetch_sub(&srv->inflight, 1);
	} else if (r->write) {
		/* Still queued at the store (only possible when shutdown gave up
		 * waiting): the writer will still call back with this request, so
		 * it is left allocated for the process exit. */
		*con_cls = NULL;
		return;
	}
	request_free(r);
	*con_cls = NULL;
}

/* libmicrohttpd's messages come with their own format strings. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("http: %s", msg);
}

static char *slurp(const char *path, char **why)
{
	char *data;

	return file_read(path, 1024 * 1024, &data, NULL, why) ? NULL : data;
}

/* The path part of http.xcap_root, which may be a path or an absolute URI. */
static void root_path_of(const char *root, char *out, size_t len)
{
	const char *p = root;

	if (strncmp(root, "http://", 7) == 0 || strncmp(root, "https://", 8) == 0) {
		p = strchr(strstr(root, "//") + 2, '/');
		if (!p)
			p = "/";
	}
	snprintf(out, len, "%s", p);
	/* Without its trailing slashes; the root "/" becomes "". */
	for (size_t n = strlen(out); n > 0 && out[n - 1] == '/'; n--)
		out[n - 1] = '\0';
}

/*
 * Opens the listening socket (SO_REUSEADDR for restarts over TIME_WAIT, but
 * not SO_REUSEPORT: another process must not be able to share the port).
 * Fills srv->listen_fd and srv->address (with the real port for port 0).
 */
static enum xdms_err listener_open(struct http_server *srv, struct sockaddr_storage *ss, socklen_t ss_len,
				   char **why)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)ss, ss_len) || listen(fd, 1024)) {
		int e = errno;
		char holder[96] = "";

		if (e == EADDRINUSE)
			http_port_holder(ss, holder, sizeof(holder));
		*why = xasprintf("cannot listen on %s: %s%s", srv->c->http_listen, strerror(e), holder);
		if (fd >= 0)
			close(fd);
		return XDMS_ERR_IO;
	}
	srv->listen_fd = fd;
	if (getsockname(fd, (struct sockaddr *)&bound, &len)) {
		*why = xasprintf("getsockname: %s", strerror(errno));
		return XDMS_ERR_IO;
	}
	net_addr_format(&bound, srv->address, sizeof(srv->address), NULL, 0);
	return XDMS_ERR_OK;
}

/* libmicrohttpd took a connection from the gate (its TLS session is made,
 * the handshake not begun), or closed one (the socket not yet closed). */
static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	const union MHD_ConnectionInfo *ci;

	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED && srv->is_tls)
		http_tls_connection_started(conn);
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	if (srv->is_tls)
		http_tls_connection_closed(conn);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		http_gate_release(srv->gate, ci->client_addr);
}

/* The gate refused a connection: one access-log line and the metrics. */
static void gate_refused(void *arg, const char *ip, unsigned status, const char *why)
{
	struct http_server *srv = arg;
	struct request r;
	char dash[] = "-";

	memset(&r, 0, sizeof(r));
	r.srv = srv;
	r.method = "-";
	r.raw_uri = dash;
	r.status = status;
	r.note = why;
	snprintf(r.identity, sizeof(r.identity), "[%s]", ip);
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	http_metrics_observe(srv->metrics, "OTHER", status, 0);
	if (srv->access_log)
		access_log_line(&r, 0);
}

/* The gate admitted a connection: the next daemon's loop takes it. */
static bool hand_over(void *arg, int fd, const struct sockaddr *sa, socklen_t sa_len)
{
	struct http_server *srv = arg;

	return http_loop_add(srv->loops[srv->next_loop++ % srv->loop_count], fd, sa, sa_len);
}

/* A connection queued for a daemon never reached it: uncount it. */
static void loop_lost(void *arg, const struct sockaddr *sa)
{
	struct http_server *srv = arg;

	http_gate_release(srv->gate, sa);
}

enum xdms_err http_server_start(const struct conf *c, struct store *st, struct xcap *x,
				struct http_server **out, char **why)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	struct sockaddr_storage ss;
	socklen_t ss_len;
	/* No internal thread: loop.c runs each daemon (see there why). */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
	struct http_gate_options go;
	struct http_loop_options lo;
	unsigned threads = c->http_threads;
	enum xdms_err err = XDMS_ERR_INVAL;

	*out = NULL;
	srv->listen_fd = -1;
	srv->c = c;
	srv->st = st;
	srv->x = x;
	atomic_init(&srv->inflight, 0);
	pthread_mutex_init(&srv->log_lock, NULL);
	root_path_of(c->http_xcap_root, srv->root_path, sizeof(srv->root_path));
	for (size_t i = 0; i < c->auth_digest_algorithms.count; i++) {
		enum digest_algo algo;

		if (digest_algo_parse(c->auth_digest_algorithms.items[i], &algo) != 0) {
			*why = xasprintf("auth.digest_algorithms: '%s' is not SHA-256 or MD5",
					 c->auth_digest_algorithms.items[i]);
			goto fail;
		}
	}
	if (!c->auth_digest_algorithms.count) {
		*why = xasprintf("auth.digest_algorithms: name at least one of SHA-256, MD5");
		goto fail;
	}
	if (!net_addr_parse(c->http_listen, &ss, &ss_len)) {
		*why = xasprintf("http.listen: '%s' is not ADDRESS:PORT", c->http_listen);
		goto fail;
	}
	if (c->http_tls_cert[0] || c->http_tls_key[0]) {
		if (!c->http_tls_cert[0] || !c->http_tls_key[0]) {
			*why = xasprintf("HTTPS needs both http.tls_cert and http.tls_key");
			goto fail;
		}
		srv->tls_cert = slurp(c->http_tls_cert, why);
		if (!srv->tls_cert)
			goto fail;
		srv->tls_key = slurp(c->http_tls_key, why);
		if (!srv->tls_key)
			goto fail;
		if (http_tls_create(srv->tls_cert, srv->tls_key, c->http_tls_session_tickets, c->http_tls_ticket_key_file,
				    &srv->tls, why))
			goto fail;
		srv->is_tls = true;
		flags |= MHD_USE_TLS;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (c->log_access) {
		if (c->log_access_file[0]) {
			srv->access_log = fopen(c->log_access_file, "a");
			if (!srv->access_log) {
				*why = xasprintf("log.access_file %s: %s", c->log_access_file, strerror(errno));
				err = XDMS_ERR_IO;
				goto fail;
			}
		} else {
			srv->access_log = stdout;
		}
	}
	srv->auth = http_auth_create(c, st);
	srv->metrics = http_metrics_create();
	if (threads > HTTP_DAEMONS_MAX)
		threads = HTTP_DAEMONS_MAX;
	err = listener_open(srv, &ss, ss_len, why);
	if (err)
		goto fail;
	for (unsigned i = 0; i < threads; i++) {
		/* TLS options must not be passed at all without TLS. The
		 * certificate goes through our callback (http/tls.c), which hooks
		 * every handshake. */
		struct MHD_OptionItem tls[] = {
			{ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, http_tls_callback() },
			{ MHD_OPTION_END, 0, NULL },
			{ MHD_OPTION_END, 0, NULL },
		};
		/* The gate counts connections against http.max_connections; a
		 * daemon may hold them all when the others are idle. */
		struct MHD_Daemon *d = MHD_start_daemon(
			flags, 0, NULL, NULL, handle, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
			MHD_OPTION_URI_LOG_CALLBACK, uri_log, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, srv,
			MHD_OPTION_NOTIFY_COMPLETED, completed, srv, MHD_OPTION_NOTIFY_CONNECTION, connection_notify,
			srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->http_max_header, MHD_OPTION_CONNECTION_LIMIT,
			c->http_max_connections ? c->http_max_connections : 1u, MHD_OPTION_CONNECTION_TIMEOUT,
			c->http_timeout, MHD_OPTION_ARRAY, srv->is_tls ? tls : tls + 2, MHD_OPTION_END);

		if (!d) {
			*why = xasprintf("cannot serve HTTP on %s (bad TLS files, or out of resources)", c->http_listen);
			err = XDMS_ERR_IO;
			goto fail;
		}
		srv->daemons[srv->daemon_count++] = d;
		memset(&lo, 0, sizeof(lo));
		lo.daemon = d;
		lo.is_tls = srv->is_tls;
		lo.on_lost = loop_lost;
		lo.arg = srv;
		err = http_loop_start(&lo, &srv->loops[srv->loop_count]);
		if (err) {
			*why = xasprintf("cannot start an HTTP thread: %s", strerror(errno));
			goto fail;
		}
		srv->loop_count++;
	}
	memset(&go, 0, sizeof(go));
	go.listen_fd = srv->listen_fd;
	go.is_tls = srv->is_tls;
	go.hand_over = hand_over;
	go.max_connections = c->http_max_connections;
	go.max_per_address = c->http_max_per_address;
	go.exempt = &c->auth_trusted_peers;
	go.head_timeout_s = c->http_head_timeout;
	go.max_head = c->http_max_header;
	go.on_refused = gate_refused;
	go.arg = srv;
	err = http_gate_start(&go, &srv->gate);
	if (err) {
		*why = xasprintf("cannot start accepting connections: %s", strerror(errno));
		goto fail;
	}
	*out = srv;
	return XDMS_ERR_OK;
fail:
	http_server_stop(srv, 0);
	return err;
}

void http_server_add_metrics(struct http_server *srv, http_metrics_fn fn, void *arg)
{
	unsigned n = atomic_load_explicit(&srv->extra_metrics_count, memory_order_relaxed);

	/* Called by the main thread only, a few times at start-up. */
	if (n >= HTTP_METRICS_SOURCES_MAX)
		abort();
	srv->extra_metrics[n].fn = fn;
	srv->extra_metrics[n].arg = arg;
	atomic_store_explicit(&srv->extra_metrics_count, n + 1, memory_order_release);
}

void http_server_add_route(struct http_server *srv, const char *prefix, const char *header, size_t max_body,
			   http_route_fn fn, void *arg)
{
	unsigned n = atomic_load_explicit(&srv->route_count, memory_order_relaxed);

	/* Called by the main thread only, once per module at start-up. */
	if (n >= HTTP_ROUTES_MAX || !prefix || prefix[0] != '/')
		abort();
	srv->routes[n].prefix = xstrdup(prefix);
	srv->routes[n].header = header ? xstrdup(header) : NULL;
	srv->routes[n].max_body = max_body;
	srv->routes[n].fn = fn;
	srv->routes[n].arg = arg;
	atomic_store_explicit(&srv->route_count, n + 1, memory_order_release);
}

void http_server_reopen_logs(struct http_server *srv)
{
	const char *path = srv->c->log_access_file;
	FILE *f;

	if (!srv->access_log || !path[0])
		return;
	f = fopen(path, "a");
	if (!f) {
		log_error("log.access_file %s: %s; still writing to the old file", path, strerror(errno));
		return;
	}
	pthread_mutex_lock(&srv->log_lock);
	fclose(srv->access_log);
	srv->access_log = f;
	pthread_mutex_unlock(&srv->log_lock);
}

const char *http_server_address(const struct http_server *srv)
{
	return srv->address;
}

void http_server_stop(struct http_server *srv, unsigned grace_ms)
{
	if (!srv)
		return;
	/* No new connection from here on. */
	http_gate_stop(srv->gate);
	if (srv->daemon_count) {
		/* Suspended requests are waiting for the store; let them finish. */
		for (unsigned waited = 0; atomic_load(&srv->inflight) > 0 && waited < grace_ms; waited += 10)
			usleep(10 * 1000);
		if (atomic_load(&srv->inflight) > 0) {
			/* MHD must not be stopped with suspended connections, and the
			 * store will still resume them: leave the daemon to the exit. */
			log_error("http: %d writes still in flight after %u ms; not waiting longer",
				  atomic_load(&srv->inflight), grace_ms);
			return;
		}
		for (unsigned i = 0; i < srv->loop_count; i++)
			http_loop_stop(srv->loops[i]);
		for (unsigned i = 0; i < srv->daemon_count; i++)
			MHD_stop_daemon(srv->daemons[i]);
	}
	for (unsigned i = 0; i < srv->loop_count; i++)
		http_loop_destroy(srv->loops[i]);
	http_gate_destroy(srv->gate);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	http_auth_destroy(srv->auth);
	http_metrics_destroy(srv->metrics);
	for (unsigned i = 0; i < atomic_load(&srv->route_count); i++) {
		free(srv->routes[i].prefix);
		free(srv->routes[i].header);
	}
	if (srv->access_log && srv->access_log != stdout)
		fclose(srv->access_log);
	pthread_mutex_destroy(&srv->log_lock);
	free(srv->tls_cert);
	free(srv->tls_key);
	http_tls_destroy(srv->tls);
	free(srv);
}
