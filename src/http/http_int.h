/* SPDX-License-Identifier: MIT */
/* Private to src/http: metrics. */
#ifndef XDMS_HTTP_INT_H
#define XDMS_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

#endif
