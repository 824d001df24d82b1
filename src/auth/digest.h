/* SPDX-License-Identifier: MIT */
/*
 * auth/digest: Digest access authentication (RFC 7616, and RFC 3261 §22 /
 * RFC 8760 for SIP, which uses the same computation) against the users in the
 * store. Shared by the HTTP front (XCAP) and the SIP notifier (SUBSCRIBE), so
 * a user has one password for both. No libmicrohttpd or osip here.
 *
 * Threads: every function may run on any thread; the nonce table locks itself.
 */
#ifndef XDMS_AUTH_DIGEST_H
#define XDMS_AUTH_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/err.h"
#include "conf/conf.h"
#include "store/store.h"

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
 * @target, when not NULL, is the request-target as sent: a uri parameter
 * that holds exactly it between quotes is taken verbatim even when it
 * contains raw '"' (clients that do not escape node selectors send that).
 * Returns OK, or PARSE for a malformed header, a missing required field, an
 * unknown algorithm or a field longer than its buffer.
 */
enum xdms_err digest_parse(const char *header, const char *target, struct digest_credentials *out) XDMS_WUR;

/* H(username ":" realm ":" password) into @out (digest_algo_len bytes). */
void digest_ha1(enum digest_algo algo, const char *username, const char *realm, const char *password,
		uint8_t *out);

/*
 * Writes the hex request-digest of @cr for @method into @out (65 bytes):
 * H(HA1:nonce:nc:cnonce:qop:H(method:uri)) when @cr->qop is set (RFC 7616
 * §3.4.1), else H(HA1:nonce:H(method:uri)) (RFC 2617 without qop). For a
 * client answering a challenge (the SIP subscriber) and for checking one.
 */
void digest_response_make(const struct digest_credentials *cr, const char *method, const uint8_t *ha1,
			  char *out);

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

/*
 * Derives the Digest credentials xdmsd checks (RFC 7616 H(username:realm:password)
 * with MD5 and SHA-256, for the user-part and the full-XUI usernames) into @r.
 * The password is not kept. Used by the admin tool when provisioning users.
 */
void digest_credentials_fill(struct store_user_realm *r, const char *realm, const char *username,
			     const char *xui, const char *password);

/*
 * Finds the user that (@realm, @username) names and copies its stored
 * H(A1) for @algo (digest_algo_len bytes) into @ha1 and its XUI into @xui.
 * False when there is no such user or no credentials for @realm.
 */
bool digest_user_ha1(struct store *st, const char *realm, const char *username, enum digest_algo algo,
		     uint8_t *ha1, char *xui, size_t xui_len);

#define DIGEST_REALM_FALLBACK "xdms"

/*
 * Writes the default realm (global documents, tel: users, URIs that do not
 * parse) into @out: auth.realm when it is set; otherwise the store's
 * recorded default realm (the domain of its first user, store.h); otherwise
 * DIGEST_REALM_FALLBACK, the default of stores provisioned before the record
 * existed. @out_len is at least STORE_REALM_MAX.
 */
void digest_default_realm(struct store *st, const struct conf *c, char *out, size_t out_len);

enum digest_verdict {
	DIGEST_VERDICT_OK = 0,
	DIGEST_VERDICT_CHALLENGE, /* challenge again (no, wrong or foreign credentials) */
	DIGEST_VERDICT_STALE,     /* genuine but stale nonce: challenge with stale=true */
};

/* What a server accepts: the algorithms it offers and its nonces. */
struct digest_policy {
	struct digest_nonces *nonces;
	enum digest_algo algos[2]; /* offered, in order */
	size_t algo_count;
};

/* From auth.digest_algorithms (SHA-256 when none is known), auth.secret and
 * auth.nonce_timeout. */
struct digest_policy *digest_policy_create(const struct conf *c);
void digest_policy_destroy(struct digest_policy *p);

/*
 * Checks the value of an Authorization header (@header, starting "Digest ")
 * for a request with @method on @uri (the request-target as sent) in
 * @realm. On OK copies the user's XUI into @identity (STORE_XUI_MAX bytes).
 * Otherwise *why says why in a few words, for the log.
 */
enum digest_verdict digest_verify(const struct digest_policy *p, struct store *st, const char *header,
				  const char *method, const char *uri, const char *realm, char *identity,
				  const char **why);

/* Writes one challenge ("Digest realm=..., nonce=..., ...") for @algo into
 * @out (at least 512 bytes). */
void digest_challenge(const struct digest_policy *p, enum digest_algo algo, const char *realm, bool is_stale,
		      char *out, size_t out_len);

/*
 * Reduces an asserted identity (X-3GPP-Asserted-Identity over HTTP,
 * P-Asserted-Identity over SIP) to the bare URI: senders write it as a
 * name-addr with angle brackets ("Alice" <sip:alice@example.com>), quoted
 * ("sip:alice@example.com") or bare (parameters after ';' are dropped).
 * False when nothing usable is left, it holds a quote or a comma, or it does
 * not fit @out_len.
 */
bool auth_identity_uri(const char *in, char *out, size_t out_len);

#endif
