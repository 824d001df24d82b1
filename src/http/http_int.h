/* SPDX-License-Identifier: MIT */
/* Private to src/http: Digest authentication pieces and metrics. */
#ifndef XDMS_HTTP_INT_H
#define XDMS_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/store.h"

/* ---- Digest (RFC 7616), pure functions ------------------------------------------- */

enum digest_algo { DIGEST_ALGO_MD5 = 0, DIGEST_ALGO_SHA256 = 1 };

#define DIGEST_FIELD_MAX 512

/* The fields of an Authorization: Digest header that xdmsd uses. */
struct digest_credentials {
	char username[DIGEST_FIELD_MAX];
	char realm[DIGEST_FIELD_MAX];
	char nonce[DIGEST_FIELD_MAX];
	char uri[4096];
	char response[DIGEST_FIELD_MAX];
	char cnonce[DIGEST_FIELD_MAX];
	char opaque[DIGEST_FIELD_MAX];
	char qop[32];
	uint32_t nc;
	enum digest_algo algo;
	bool has_nc;
	bool is_userhash;
};

/* "MD5" or "SHA-256". */
const char *digest_algo_name(enum digest_algo algo);
/* Parses "MD5"/"SHA-256" (case-insensitive). -1 when unknown. */
int digest_algo_parse(const char *name, enum digest_algo *out);
/* Length in bytes of the algorithm's hash: 16 or 32. */
size_t digest_algo_len(enum digest_algo algo);

/*
 * Parses the value of an Authorization header starting with "Digest".
 * Returns OK, or PARSE for a malformed header, a missing required field, an
 * unknown algorithm or a field longer than its buffer.
 */
enum xdms_err digest_parse(const char *header, struct digest_credentials *out) XDMS_WUR;

/* H(username ":" realm ":" password) into @out (digest_algo_len bytes). */
void digest_ha1(enum digest_algo algo, const char *username, const char *realm, const char *password,
		uint8_t *out);

/*
 * True when the client's response matches H(HA1:nonce:nc:cnonce:qop:H(method:uri))
 * (qop=auth; RFC 7616 §3.4.1). Compared in constant time.
 */
bool digest_response_ok(const struct digest_credentials *cr, const char *method, const uint8_t *ha1);

/* Nonces: stateless HMAC tokens carrying their creation time, plus a table of
 * the nonce counts seen, so a nonce can be reused (nc increasing) but no
 * request replayed. */
struct digest_nonces;

enum digest_nonce_state {
	DIGEST_NONCE_OK = 0,
	DIGEST_NONCE_STALE,  /* genuine but expired or forgotten: challenge with stale=true */
	DIGEST_NONCE_BAD,    /* not one of ours */
	DIGEST_NONCE_REPLAY, /* this nonce count was used already */
};

/* @secret of @secret_len bytes (random when NULL); nonces live @timeout seconds. */
struct digest_nonces *digest_nonces_create(const uint8_t *secret, size_t secret_len, unsigned timeout);
void digest_nonces_destroy(struct digest_nonces *n);
/* Writes a new NUL-terminated nonce bound to @realm into @out (at least 80 bytes). */
void digest_nonce_make(struct digest_nonces *n, const char *realm, time_t now, char *out, size_t out_len);
/* Checks a nonce for @realm and records @nc. Thread-safe. */
enum digest_nonce_state digest_nonce_use(struct digest_nonces *n, const char *nonce, const char *realm,
					 uint32_t nc, time_t now);

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

#endif
