/* SPDX-License-Identifier: MIT */
/*
 * Digest access authentication (RFC 7616) with MD5 and SHA-256, qop=auth.
 *
 * The server stores no passwords, only H(username:realm:password) per
 * algorithm (store_user_realm). Nonces are stateless: hex of a creation time,
 * 8 random bytes and a truncated HMAC-SHA-256 over both and the realm, so any
 * pool thread can check any nonce without shared state. To let clients reuse
 * a nonce for many requests (one 401 round trip, not one per request) while
 * refusing replays, a fixed table remembers, per nonce, the highest nonce
 * count seen and a 64-bit window of the counts below it; concurrent requests
 * on one nonce may arrive slightly out of order and still pass. A nonce whose
 * slot was taken by another is answered "stale", and the client simply
 * retries with a fresh one.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>

#include "base/mem.h"
#include "auth/digest.h"

#define NONCE_SLOTS 8192
#define NONCE_LOCKS 64
#define NONCE_MAC_LEN 16

const char *digest_algo_name(enum digest_algo algo)
{
	return algo == DIGEST_ALGO_SHA256 ? "SHA-256" : "MD5";
}

int digest_algo_parse(const char *name, enum digest_algo *out)
{
	if (strcasecmp(name, "MD5") == 0) {
		*out = DIGEST_ALGO_MD5;
		return 0;
	}
	if (strcasecmp(name, "SHA-256") == 0) {
		*out = DIGEST_ALGO_SHA256;
		return 0;
	}
	return -1;
}

size_t digest_algo_len(enum digest_algo algo)
{
	return algo == DIGEST_ALGO_SHA256 ? 32 : 16;
}

/* Hashes the pieces joined by ':' into @out. */
static void hash_joined(enum digest_algo algo, const char *const *parts, size_t count, uint8_t *out)
{
	if (algo == DIGEST_ALGO_SHA256) {
		struct sha256_ctx c;

		sha256_init(&c);
		for (size_t i = 0; i < count; i++) {
			if (i)
				sha256_update(&c, 1, (const uint8_t *)":");
			sha256_update(&c, strlen(parts[i]), (const uint8_t *)parts[i]);
		}
		sha256_digest(&c, SHA256_DIGEST_SIZE, out);
	} else {
		struct md5_ctx c;

		md5_init(&c);
		for (size_t i = 0; i < count; i++) {
			if (i)
				md5_update(&c, 1, (const uint8_t *)":");
			md5_update(&c, strlen(parts[i]), (const uint8_t *)parts[i]);
		}
		md5_digest(&c, MD5_DIGEST_SIZE, out);
	}
}

static void to_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void digest_ha1(enum digest_algo algo, const char *username, const char *realm, const char *password,
		uint8_t *out)
{
	const char *parts[] = { username, realm, password };

	hash_joined(algo, parts, 3, out);
}

void digest_credentials_fill(struct store_user_realm *r, const char *realm, const char *username,
			   const char *xui, const char *password)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->realm, sizeof(r->realm), "%s", realm);
	digest_ha1(DIGEST_ALGO_MD5, username, realm, password, r->ha1_md5_user);
	digest_ha1(DIGEST_ALGO_SHA256, username, realm, password, r->ha1_sha256_user);
	digest_ha1(DIGEST_ALGO_MD5, xui, realm, password, r->ha1_md5_xui);
	digest_ha1(DIGEST_ALGO_SHA256, xui, realm, password, r->ha1_sha256_xui);
}

void digest_response_make(const struct digest_credentials *cr, const char *method, const uint8_t *ha1,
			  char *out)
{
	size_t len = digest_algo_len(cr->algo);
	char ha1_hex[65], ha2_hex[65], nc[9];
	uint8_t h[32];
	const char *a2[] = { method, cr->uri };

	to_hex(ha1, len, ha1_hex);
	hash_joined(cr->algo, a2, 2, h);
	to_hex(h, len, ha2_hex);
	snprintf(nc, sizeof(nc), "%08x", cr->nc);
	if (cr->qop[0]) {
		const char *kd[] = { ha1_hex, cr->nonce, nc, cr->cnonce, cr->qop, ha2_hex };

		hash_joined(cr->algo, kd, 6, h);
	} else {
		/* RFC 2617 §3.2.2.1 without qop (RFC 2069 compatibility). */
		const char *kd[] = { ha1_hex, cr->nonce, ha2_hex };

		hash_joined(cr->algo, kd, 3, h);
	}
	to_hex(h, len, out);
}

bool digest_response_ok(const struct digest_credentials *cr, const char *method, const uint8_t *ha1)
{
	size_t len = digest_algo_len(cr->algo);
	char expect[65];
	unsigned char diff = 0;
	size_t resp_len = strlen(cr->response);

	if (!cr->qop[0])
		return false; /* the server side requires qop=auth */
	digest_response_make(cr, method, ha1, expect);
	if (resp_len != 2 * len)
		return false;
	for (size_t i = 0; i < 2 * len; i++)
		diff |= (unsigned char)(tolower((unsigned char)cr->response[i]) ^ expect[i]);
	return diff == 0;
}

/* Copies a token or quoted-string value, undoing backslash escapes. */
static const char *parse_value(const char *p, char *out, size_t out_len, bool *is_overflow)
{
	size_t n = 0;

	*is_overflow = false;
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < out_len)
				out[n++] = *p;
			else
				*is_overflow = true;
			p++;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p && *p != ',' && *p != ' ' && *p != '\t') {
			if (n + 1 < out_len)
				out[n++] = *p;
			else
				*is_overflow = true;
			p++;
		}
	}
	out[n] = '\0';
	return p;
}

/*
 * The uri parameter as a client that does not escape its request-target
 * writes it: uri="/…/list[@name="friends"]", raw '"' and all (Python's
 * urllib, curl -g). As a quoted-string it would end at the first inner '"',
 * so when the bytes between the opening quote and a closing quote that ends
 * the parameter are exactly the request-target, they are taken verbatim
 * (RFC 7616 §3.4: the uri is the request-target; §3.4.6 then compares it).
 * Returns the position after the closing quote, or NULL when @p does not
 * hold @target that way.
 */
static const char *match_raw_uri(const char *p, const char *target)
{
	size_t len = strlen(target);
	const char *e;

	if (*p != '"' || strncmp(p + 1, target, len) != 0 || p[1 + len] != '"')
		return NULL;
	e = p + len + 2;
	while (*e == ' ' || *e == '\t')
		e++;
	return *e == ',' || *e == '\0' ? p + len + 2 : NULL;
}

enum xdms_err digest_parse(const char *header, const char *target, struct digest_credentials *out)
{
	const char *p = header, *raw_end;
	char name[32], value[4096], algo[32] = "MD5";
	bool has_username = false, has_realm = false, has_nonce = false, has_uri = false, has_response = false;

	memset(out, 0, sizeof(*out));
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "Digest", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return XDMS_ERR_PARSE;
	p += 6;
	while (*p) {
		size_t n = 0;
		bool is_overflow;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		while (*p && *p != '=' && *p != ' ' && n + 1 < sizeof(name))
			name[n++] = *p++;
		name[n] = '\0';
		while (*p == ' ')
			p++;
		if (*p != '=')
			return XDMS_ERR_PARSE;
		p++;
		while (*p == ' ')
			p++;
		if (target && strcasecmp(name, "uri") == 0 && strlen(target) < sizeof(out->uri) &&
		    (raw_end = match_raw_uri(p, target)) != NULL) {
			p = raw_end;
			strcpy(out->uri, target);
			has_uri = true;
			continue;
		}
		p = parse_value(p, value, sizeof(value), &is_overflow);
		if (is_overflow)
			return XDMS_ERR_PARSE;
#define FIELD(key, dst, flag)                                                  \
	else if (strcasecmp(name, key) == 0)                                   \
	{                                                                      \
		if (strlen(value) >= sizeof(dst))                              \
			return XDMS_ERR_PARSE;                                 \
		strcpy(dst, value);                                            \
		flag = true;                                                   \
	}
		bool ignored = false;

		if (0) {
		}
		FIELD("username", out->username, has_username)
		FIELD("realm", out->realm, has_realm)
		FIELD("nonce", out->nonce, has_nonce)
		FIELD("uri", out->uri, has_uri)
		FIELD("response", out->response, has_response)
		FIELD("cnonce", out->cnonce, ignored)
		FIELD("opaque", out->opaque, ignored)
		FIELD("qop", out->qop, ignored)
		FIELD("algorithm", algo, ignored)
		else if (strcasecmp(name, "nc") == 0) {
			char *end;
			unsigned long v = strtoul(value, &end, 16);

			if (end == value || *end || strlen(value) != 8 || v > UINT32_MAX)
				return XDMS_ERR_PARSE;
			out->nc = (uint32_t)v;
			out->has_nc = true;
		} else if (strcasecmp(name, "userhash") == 0) {
			out->is_userhash = strcasecmp(value, "true") == 0;
		}
#undef FIELD
		(void)ignored;
	}
	if (!has_username || !has_realm || !has_nonce || !has_uri || !has_response)
		return XDMS_ERR_PARSE;
	if (digest_algo_parse(algo, &out->algo) != 0)
		return XDMS_ERR_PARSE;
	/* Only qop=auth is offered: the legacy RFC 2069 form has no replay protection. */
	if (strcmp(out->qop, "auth") != 0 || !out->has_nc || !out->cnonce[0])
		return XDMS_ERR_PARSE;
	return XDMS_ERR_OK;
}

/* ---- nonces ------------------------------------------------------------------------------- */

struct nonce_slot {
	uint8_t id[8];  /* the nonce's random part; all zero = empty */
	uint32_t max_nc;
	uint64_t seen;  /* bit i: max_nc - i was used */
	uint64_t issued;  /* issue number of the nonce in the slot */
	uint64_t evicted; /* highest issue number of a nonce pushed out of the slot */
};

struct digest_nonces {
	uint8_t secret[32];
	unsigned timeout;
	pthread_mutex_t locks[NONCE_LOCKS];
	struct nonce_slot slots[NONCE_SLOTS];
	atomic_uint_fast64_t issued; /* nonces made so far: each carries its number */
};

struct digest_nonces *digest_nonces_create(const uint8_t *secret, size_t secret_len, unsigned timeout)
{
	struct digest_nonces *n = xcalloc(1, sizeof(*n));

	if (secret && secret_len) {
		struct sha256_ctx c;

		/* Any length of configured secret becomes a 32-byte key. */
		sha256_init(&c);
		sha256_update(&c, secret_len, secret);
		sha256_digest(&c, sizeof(n->secret), n->secret);
	} else if (getrandom(n->secret, sizeof(n->secret), 0) != (ssize_t)sizeof(n->secret)) {
		abort();
	}
	n->timeout = timeout ? timeout : 300;
	for (size_t i = 0; i < NONCE_LOCKS; i++)
		pthread_mutex_init(&n->locks[i], NULL);
	return n;
}

void digest_nonces_destroy(struct digest_nonces *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < NONCE_LOCKS; i++)
		pthread_mutex_destroy(&n->locks[i]);
	free(n);
}

static void nonce_mac(const struct digest_nonces *n, const uint8_t *body, size_t body_len, const char *realm,
		      uint8_t *mac)
{
	struct hmac_sha256_ctx c;
	uint8_t full[SHA256_DIGEST_SIZE];

	hmac_sha256_set_key(&c, sizeof(n->secret), n->secret);
	hmac_sha256_update(&c, body_len, body);
	hmac_sha256_update(&c, strlen(realm), (const uint8_t *)realm);
	hmac_sha256_digest(&c, sizeof(full), full);
	memcpy(mac, full, NONCE_MAC_LEN);
}

void digest_nonce_make(struct digest_nonces *n, const char *realm, time_t now, char *out, size_t out_len)
{
	uint8_t raw[16 + NONCE_MAC_LEN];
	uint64_t t = (uint64_t)now;
	uint64_t number = atomic_fetch_add(&n->issued, 1) + 1;

	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)(t >> (56 - 8 * i));
	/* The id: a 40-bit issue number (unique, and it orders nonces for the
	 * replay table) and 24 random bits. Never all zero (an empty slot). */
	for (int i = 0; i < 5; i++)
		raw[8 + i] = (uint8_t)(number >> (32 - 8 * i));
	if (getrandom(raw + 13, 3, 0) != 3)
		abort();
	nonce_mac(n, raw, 16, realm, raw + 16);
	if (out_len < 2 * sizeof(raw) + 1) {
		out[0] = '\0';
		return;
	}
	to_hex(raw, sizeof(raw), out);
}

static int from_hex(const char *s, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]))
			return -1;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

enum digest_nonce_state digest_nonce_use(struct digest_nonces *n, const char *nonce, const char *realm,
					 uint32_t nc, time_t now)
{
	uint8_t raw[16 + NONCE_MAC_LEN], mac[NONCE_MAC_LEN];
	unsigned char diff = 0;
	uint64_t t = 0, slot_index = 0;
	struct nonce_slot *slot;
	pthread_mutex_t *lock;
	enum digest_nonce_state state;

	if (strlen(nonce) != 2 * sizeof(raw) || from_hex(nonce, raw, sizeof(raw)) != 0)
		return DIGEST_NONCE_BAD;
	nonce_mac(n, raw, 16, realm, mac);
	for (size_t i = 0; i < NONCE_MAC_LEN; i++)
		diff |= (unsigned char)(mac[i] ^ raw[16 + i]);
	if (diff)
		return DIGEST_NONCE_BAD;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | raw[i];
	if ((uint64_t)now < t || (uint64_t)now - t > n->timeout)
		return DIGEST_NONCE_STALE;
	if (nc == 0)
		return DIGEST_NONCE_REPLAY;
	for (int i = 8; i < 16; i++)
		slot_index = (slot_index << 8) ^ raw[i] ^ (slot_index >> 56);
	slot = &n->slots[slot_index % NONCE_SLOTS];
	lock = &n->locks[slot_index % NONCE_LOCKS];
	pthread_mutex_lock(lock);
	if (memcmp(slot->id, raw + 8, 8) != 0) {
		/* First use of this nonce here, or its slot was reused: only a fresh
		 * nonce (nc 1) may claim the slot; an older one is told it is stale. */
		if (nc != 1) {
			state = DIGEST_NONCE_STALE;
			goto out;
		}
		/* A nonce issued before one that was pushed out of this slot may
		 * have been used here before: its nc 1 could be a replay. */
		uint64_t number = 0;

		for (int i = 8; i < 13; i++)
			number = (number << 8) | raw[i];
		if (number <= slot->evicted) {
			state = DIGEST_NONCE_STALE;
			goto out;
		}
		if (slot->issued > slot->evicted)
			slot->evicted = slot->issued;
		slot->issued = number;
		memcpy(slot->id, raw + 8, 8);
		slot->max_nc = 1;
		slot->seen = 1;
		state = DIGEST_NONCE_OK;
		goto out;
	}
	if (nc > slot->max_nc) {
		uint32_t shift = nc - slot->max_nc;

		slot->seen = shift >= 64 ? 0 : slot->seen << shift;
		slot->seen |= 1;
		slot->max_nc = nc;
		state = DIGEST_NONCE_OK;
	} else if (slot->max_nc - nc < 64 && !(slot->seen & (1ULL << (slot->max_nc - nc)))) {
		slot->seen |= 1ULL << (slot->max_nc - nc);
		state = DIGEST_NONCE_OK;
	} else {
		state = DIGEST_NONCE_REPLAY;
	}
out:
	pthread_mutex_unlock(lock);
	return state;
}

/* ---- checking credentials against the store ---------------------------------------- */

bool digest_user_ha1(struct store *st, const char *realm, const char *username, enum digest_algo algo,
		     uint8_t *ha1, char *xui, size_t xui_len)
{
	struct store_read *rd;
	struct store_user u;
	const struct store_user_realm *r = NULL;
	bool is_xui_name;
	enum xdms_err err = store_read_begin(st, &rd);

	if (err)
		return false;
	err = store_user_find(rd, realm, username, &u);
	store_read_end(rd);
	if (err)
		return false;
	for (unsigned i = 0; i < u.realm_count && i < STORE_USER_REALMS_MAX; i++)
		if (strcmp(u.realms[i].realm, realm) == 0)
			r = &u.realms[i];
	if (!r)
		return false;
	is_xui_name = strcmp(username, u.xui) == 0;
	if (algo == DIGEST_ALGO_SHA256)
		memcpy(ha1, is_xui_name ? r->ha1_sha256_xui : r->ha1_sha256_user, 32);
	else
		memcpy(ha1, is_xui_name ? r->ha1_md5_xui : r->ha1_md5_user, 16);
	snprintf(xui, xui_len, "%s", u.xui);
	explicit_bzero(&u, sizeof(u));
	return true;
}

void digest_default_realm(struct store *st, const struct conf *c, char *out, size_t out_len)
{
	struct store_read *rd;
	enum xdms_err err = XDMS_ERR_NOTFOUND;

	if (c->auth_realm[0]) {
		snprintf(out, out_len, "%s", c->auth_realm);
		return;
	}
	if (st && !store_read_begin(st, &rd)) {
		err = store_default_realm_get(rd, out, out_len);
		store_read_end(rd);
	}
	if (err)
		snprintf(out, out_len, "%s", DIGEST_REALM_FALLBACK);
}

enum digest_verdict digest_verify(const struct digest_policy *p, struct store *st, const char *header,
				  const char *method, const char *uri, const char *realm, char *identity,
				  const char **why)
{
	struct digest_credentials cr;
	char xui[STORE_XUI_MAX];
	uint8_t ha1[32];
	bool is_offered = false, is_ok;

	if (digest_parse(header, uri, &cr)) {
		*why = "malformed Digest credentials";
		return DIGEST_VERDICT_CHALLENGE;
	}
	for (size_t i = 0; i < p->algo_count; i++)
		if (p->algos[i] == cr.algo)
			is_offered = true;
	if (!is_offered) {
		*why = "Digest algorithm not offered";
		return DIGEST_VERDICT_CHALLENGE;
	}
	if (strcmp(cr.realm, realm) != 0) {
		*why = "Digest realm does not match the resource";
		return DIGEST_VERDICT_CHALLENGE;
	}
	/* RFC 7616 §3.4.6: the credentials are for this request-target only. */
	if (strcmp(cr.uri, uri) != 0) {
		*why = "Digest uri does not match the request";
		return DIGEST_VERDICT_CHALLENGE;
	}
	if (cr.is_userhash || !digest_user_ha1(st, realm, cr.username, cr.algo, ha1, xui, sizeof(xui))) {
		*why = "unknown user";
		return DIGEST_VERDICT_CHALLENGE;
	}
	is_ok = digest_response_ok(&cr, method, ha1);
	explicit_bzero(ha1, sizeof(ha1));
	if (!is_ok) {
		*why = "wrong password";
		return DIGEST_VERDICT_CHALLENGE;
	}
	switch (digest_nonce_use(p->nonces, cr.nonce, realm, cr.nc, time(NULL))) {
	case DIGEST_NONCE_OK:
		break;
	case DIGEST_NONCE_BAD:
		*why = "nonce not issued by this server";
		return DIGEST_VERDICT_CHALLENGE;
	case DIGEST_NONCE_STALE:
		*why = "stale nonce";
		return DIGEST_VERDICT_STALE;
	case DIGEST_NONCE_REPLAY:
		*why = "replayed nonce count";
		return DIGEST_VERDICT_STALE;
	}
	snprintf(identity, STORE_XUI_MAX, "%s", xui);
	return DIGEST_VERDICT_OK;
}

void digest_challenge(const struct digest_policy *p, enum digest_algo algo, const char *realm, bool is_stale,
		      char *out, size_t out_len)
{
	char nonce[96];

	/* One nonce per challenge; either may be the one the client picks. */
	digest_nonce_make(p->nonces, realm, time(NULL), nonce, sizeof(nonce));
	/* opaque is optional (RFC 7616 §3.3) but some clients insist on it;
	 * it carries nothing: the nonce is self-authenticating. */
	snprintf(out, out_len, "Digest realm=\"%s\", qop=\"auth\", algorithm=%s, nonce=\"%s\", opaque=\"%.16s\"%s",
		 realm, digest_algo_name(algo), nonce, nonce + 16, is_stale ? ", stale=true" : "");
}

struct digest_policy *digest_policy_create(const struct conf *c)
{
	struct digest_policy *p = xcalloc(1, sizeof(*p));

	p->nonces = digest_nonces_create((const uint8_t *)c->auth_secret, strlen(c->auth_secret),
					 c->auth_nonce_timeout);
	for (size_t i = 0; i < c->auth_digest_algorithms.count && p->algo_count < 2; i++) {
		enum digest_algo algo;

		if (digest_algo_parse(c->auth_digest_algorithms.items[i], &algo) == 0)
			p->algos[p->algo_count++] = algo;
	}
	if (!p->algo_count)
		p->algos[p->algo_count++] = DIGEST_ALGO_SHA256;
	return p;
}

void digest_policy_destroy(struct digest_policy *p)
{
	if (!p)
		return;
	digest_nonces_destroy(p->nonces);
	free(p);
}

bool auth_identity_uri(const char *in, char *out, size_t out_len)
{
	const char *s = in, *e;
	const char *lt = strchr(in, '<');
	size_t n;

	if (lt) {
		s = lt + 1;
		e = strchr(s, '>');
		if (!e)
			return false;
	} else {
		while (*s == ' ' || *s == '"')
			s++;
		e = s + strcspn(s, ";");
		while (e > s && (e[-1] == ' ' || e[-1] == '"'))
			e--;
	}
	n = (size_t)(e - s);
	if (n == 0 || n >= out_len || memchr(s, '"', n) || memchr(s, ',', n))
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}
