/* SPDX-License-Identifier: MIT */
/*
 * OAuth 2.0 access tokens for `auth oauth2` adapters.
 *
 * The user's refresh token comes with the request, sealed like every
 * credential (cred.c): inline in <credentials><token>, taken out of the
 * document at once, or provisioned and named by <credential-ref>. The
 * adapter document names the token endpoint and the client id; the client
 * secret is the adapter's sealed secret IWF_OAUTH_CLIENT_SECRET (its
 * password). An access token is obtained with the refresh-token grant (RFC
 * 6749 §6), client authentication in the request body (RFC 6749 §2.3.1),
 * and kept in memory per adapter and user until shortly before it expires
 * (expires_in, RFC 6749 §5.1). When the endpoint returns a new refresh token
 * (rotation), it is sealed where the old one was, durably, before the
 * access token is used: the old one may already be dead.
 *
 * A refused grant (RFC 6749 §5.2: invalid_grant, invalid_client, ...) is
 * answered 401 with the error code and what to do; the endpoint's
 * error_description is not repeated (it is the 3rd party's text). No
 * token, secret or form body is ever logged or put in a reason.
 *
 * Threads: any worker; the cache is under its mutex. Tokens are copied out
 * and wiped when dropped.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "json/json.h"

#define CACHE_MAX 4096
#define EXPIRY_MARGIN_MS 30000u     /* a token this close to its end is not used */
#define DEFAULT_LIFETIME_S 3600     /* when the endpoint gives no expires_in */
#define TOKEN_RESPONSE_MAX 65536

struct token_entry {
	char *key; /* adapter id NUL-separated from the XUI */
	size_t key_len;
	char *token;
	char *refresh;       /* a rotated refresh token, newer than the request's; NULL = none */
	uint64_t expires_ms; /* monotonic */
	struct token_entry *next;
};

struct iwf_oauth_cache {
	pthread_mutex_t lock;
	struct token_entry *head;
	size_t count;
};

static void entry_free(struct token_entry *e)
{
	if (!e)
		return;
	memset(e->token, 0, strlen(e->token));
	free(e->token);
	if (e->refresh)
		memset(e->refresh, 0, strlen(e->refresh));
	free(e->refresh);
	free(e->key);
	free(e);
}

struct iwf_oauth_cache *iwf_oauth_cache_create(void)
{
	struct iwf_oauth_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void iwf_oauth_cache_destroy(struct iwf_oauth_cache *c)
{
	if (!c)
		return;
	while (c->head) {
		struct token_entry *e = c->head;

		c->head = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static char *cache_key(const struct iwf_call *c, size_t *len)
{
	const char *xui = c->xui ? c->xui : "";
	size_t il = strlen(c->a->id), xl = strlen(xui);
	char *k = xmalloc(il + 1 + xl + 1);

	memcpy(k, c->a->id, il + 1);
	memcpy(k + il + 1, xui, xl + 1);
	*len = il + 1 + xl;
	return k;
}

/* Copies a live token for @key into @out; false when there is none. With
 * @is_stale, the entry is dropped instead, and the refresh token it was
 * rotated to, if any, goes to @refresh (@rsize bytes). */
static bool cache_get(struct iwf_oauth_cache *c, const char *key, size_t key_len, bool is_stale, char *out,
		      size_t size, char *refresh, size_t rsize)
{
	struct token_entry **p, *e;
	bool found = false;
	uint64_t now = monotonic_ms();

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	for (p = &c->head; (e = *p) != NULL; p = &e->next)
		if (e->key_len == key_len && !memcmp(e->key, key, key_len))
			break;
	if (e && (is_stale || e->expires_ms <= now)) {
		if (e->refresh && strlen(e->refresh) < rsize)
			strcpy(refresh, e->refresh);
		*p = e->next;
		c->count--;
		entry_free(e);
	} else if (e && strlen(e->token) < size) {
		strcpy(out, e->token);
		found = true;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void cache_put(struct iwf_oauth_cache *c, const char *key, size_t key_len, const char *token,
		      const char *refresh, uint64_t expires_ms)
{
	struct token_entry **p, *e;
	uint64_t now = monotonic_ms();

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	/* Drop this key's entry and every expired one. */
	for (p = &c->head; (e = *p) != NULL;) {
		if (e->expires_ms <= now || (e->key_len == key_len && !memcmp(e->key, key, key_len))) {
			*p = e->next;
			c->count--;
			entry_free(e);
		} else {
			p = &e->next;
		}
	}
	if (c->count >= CACHE_MAX) {
		/* Full of live tokens: forget the oldest (the last), which
		 * costs one more grant later, never a failure. */
		for (p = &c->head; (*p)->next; p = &(*p)->next)
			;
		entry_free(*p);
		*p = NULL;
		c->count--;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = xmalloc(key_len + 1);
	memcpy(e->key, key, key_len + 1);
	e->key_len = key_len;
	e->token = xstrdup(token);
	e->refresh = refresh ? xstrdup(refresh) : NULL;
	e->expires_ms = expires_ms;
	e->next = c->head;
	c->head = e;
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

static bool is_unreserved(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
	       ch == '.' || ch == '_' || ch == '~';
}

/* application/x-www-form-urlencoded (RFC 6749 Appendix B). */
static enum xdms_err form_add(struct buf *b, const char *name, const char *value)
{
	enum xdms_err err = buf_printf(b, "%s%s=", b->len ? "&" : "", name);

	for (const unsigned char *p = (const unsigned char *)value; *p && !err; p++)
		err = is_unreserved(*p) ? buf_append(b, p, 1) : buf_printf(b, "%%%02X", *p);
	return err;
}

/* An RFC 6749 §5.2 error code is a short token; anything else is not
 * repeated. */
static const char *error_code(const struct json_doc *d)
{
	const char *e = json_doc_string(d, "/error");

	if (!e || !e[0] || strlen(e) > 40 || strspn(e, "abcdefghijklmnopqrstuvwxyz_") != strlen(e))
		return NULL;
	return e;
}

/* The refusal of a grant, as a sentence the administrator or user can act on. */
static void refused(struct iwf_result *r, const char *host, long status, const struct json_doc *d)
{
	const char *code = d ? error_code(d) : NULL;

	if (code && !strcmp(code, "invalid_grant"))
		iwf_result_set(r, 401, false,
			       "the OAuth token endpoint at %s refused the refresh token (invalid_grant): it expired or "
			       "was revoked; the user must authorize again and send a new one",
			       host);
	else if (code && !strcmp(code, "invalid_client"))
		iwf_result_set(r, 401, false,
			       "the OAuth token endpoint at %s refused the adapter's client id or secret (invalid_client)",
			       host);
	else
		iwf_result_set(r, 401, false, "the OAuth token endpoint at %s refused the grant (HTTP %ld, %s)", host,
			       status, code ? code : "no error code");
}

/* Seals a rotated refresh token where the old one was. */
static enum xdms_err rotate(const struct iwf_call *c, const char *fresh)
{
	struct iwf_cred cred;
	enum xdms_err err;

	if (!c->seal.owner || !c->seal.name || !c->env->key)
		return XDMS_ERR_OK;
	if (strlen(fresh) >= sizeof(cred.token))
		return XDMS_ERR_TOOBIG;
	err = iwf_cred_load(c->env->st, c->env->key, c->seal.owner, c->seal.name, &cred);
	if (err == XDMS_ERR_NOTFOUND) {
		memset(&cred, 0, sizeof(cred));
		err = XDMS_ERR_OK;
	}
	if (!err) {
		memset(cred.token, 0, sizeof(cred.token));
		strcpy(cred.token, fresh);
		err = iwf_cred_save(c->env->st, c->env->key, c->seal.owner, c->seal.name, &cred, true);
	}
	memset(&cred, 0, sizeof(cred));
	return err;
}

/* Loads the adapter's client secret into @cred; false with @r set when there is none. */
static bool client_secret(const struct iwf_call *c, struct iwf_cred *cred, struct iwf_result *r)
{
	char *owner;
	enum xdms_err err;

	if (!c->env->key) {
		iwf_result_set(r, 500, false, "the OAuth client secret of adapter %s cannot be read here", c->a->id);
		return false;
	}
	owner = xasprintf(IWF_ADAPTER_OWNER "%s", c->a->id);
	err = iwf_cred_load(c->env->st, c->env->key, owner, IWF_OAUTH_CLIENT_SECRET, cred);
	free(owner);
	if (err == XDMS_ERR_NOTFOUND)
		iwf_result_set(r, 500, false,
			       "adapter %s has no OAuth client secret (xdmsctl credential set --adapter %s "
			       "--client-secret ...)",
			       c->a->id, c->a->id);
	else if (err)
		iwf_result_set(r, 500, false, "the OAuth client secret of adapter %s cannot be opened (%s)", c->a->id,
			       xdms_err_str(err));
	return err == XDMS_ERR_OK;
}

enum xdms_err iwf_oauth_token(const struct iwf_call *c, bool is_stale, char *out, size_t size,
			      struct iwf_result *r)
{
	const struct iwf_adapter *a = c->a;
	struct iwf_http_call call;
	struct iwf_cred cred;
	struct json_limits lim;
	struct json_doc *d = NULL;
	struct buf form, resp;
	char host[256], *key, *why = NULL, rotated[sizeof(cred.token)] = "";
	const char *access, *type, *fresh, *refresh;
	size_t key_len;
	long status = 0;
	long long lifetime = DEFAULT_LIFETIME_S;
	enum xdms_err err;

	key = cache_key(c, &key_len);
	if (cache_get(c->env->oauth, key, key_len, is_stale, out, size, rotated, sizeof(rotated))) {
		free(key);
		return XDMS_ERR_OK;
	}
	/* The request's refresh token, unless this worker's grant rotated it. */
	refresh = rotated[0] ? rotated : c->token;
	iwf_url_host(a->token_url, host, sizeof(host));
	if (!refresh || !refresh[0]) {
		iwf_result_set(r, 401, false,
			       "adapter %s uses OAuth 2.0 but the request brings no refresh token (<credentials><token> "
			       "or a <credential-ref> to one)",
			       a->id);
		free(key);
		return XDMS_ERR_UNAUTH;
	}
	if (!client_secret(c, &cred, r)) {
		free(key);
		return XDMS_ERR_NOTFOUND;
	}
	buf_init(&form, 3 * (sizeof(cred) + strlen(a->client_id) + (a->scope ? strlen(a->scope) : 0)) + 256);
	buf_init(&resp, TOKEN_RESPONSE_MAX);
	err = form_add(&form, "grant_type", "refresh_token");
	if (!err)
		err = form_add(&form, "refresh_token", refresh);
	if (!err)
		err = form_add(&form, "client_id", a->client_id);
	if (!err)
		err = form_add(&form, "client_secret", cred.password);
	if (!err && a->scope && a->scope[0])
		err = form_add(&form, "scope", a->scope);
	memset(&cred, 0, sizeof(cred));
	if (err) {
		iwf_result_set(r, 400, false, "the OAuth grant for adapter %s is too long to send", a->id);
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.url = a->token_url;
	call.auth = IWF_AUTH_NONE;
	call.content_type = "application/x-www-form-urlencoded";
	call.accept = "application/json";
	call.body = form.data;
	call.body_len = form.len;
	call.timeout_s = a->timeout_s;
	call.connect_timeout_s = a->connect_timeout_s;
	call.max_response = TOKEN_RESPONSE_MAX;
	call.ca_file = c->env->opt->ca_file;
	call.cancel = c->env->stopping;
	err = iwf_http_do(c->curl, &call, &resp, &status, r);
	json_limits_init(&lim);
	lim.max_size = TOKEN_RESPONSE_MAX;
	lim.max_depth = 8;
	if (err && (status == 400 || status == 401)) {
		/* The error body is read when it is JSON (RFC 6749 §5.2); the
		 * refusal stands either way. */
		if (json_doc_parse(resp.data ? resp.data : "", resp.len, &lim, &d, &why) != XDMS_ERR_OK)
			d = NULL;
		refused(r, host, status, d);
		err = XDMS_ERR_UNAUTH;
		goto out;
	}
	if (err) {
		/* r says why (unreachable, timeout, 5xx: transient). */
		goto out;
	}
	if (json_doc_parse(resp.data ? resp.data : "", resp.len, &lim, &d, &why)) {
		iwf_result_set(r, 502, false, "the OAuth token endpoint at %s sent unusable JSON: %s", host, why);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	access = json_doc_string(d, "/access_token");
	type = json_doc_string(d, "/token_type");
	fresh = json_doc_string(d, "/refresh_token");
	if (!access || !access[0] || strlen(access) >= size || strcspn(access, "\r\n") != strlen(access)) {
		iwf_result_set(r, 502, false, "the OAuth token endpoint at %s sent no usable access_token", host);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	/* RFC 6749 §7.1: only bearer tokens (RFC 6750) are understood. */
	if (type && strcasecmp(type, "bearer") != 0) {
		iwf_result_set(r, 502, false, "the OAuth token endpoint at %s sent a token of type '%.20s', not Bearer",
			       host, type);
		err = XDMS_ERR_UNSUPPORTED;
		goto out;
	}
	if (json_doc_integer(d, "/expires_in", &lifetime) && lifetime < 0)
		lifetime = 0;
	if (fresh && fresh[0] && strcmp(fresh, refresh) != 0) {
		err = rotate(c, fresh);
		if (err) {
			iwf_result_set(r, 500, true, "the rotated OAuth refresh token could not be stored (%s)",
				       xdms_err_str(err));
			goto out;
		}
	}
	strcpy(out, access);
	if ((uint64_t)lifetime * 1000u > EXPIRY_MARGIN_MS)
		cache_put(c->env->oauth, key, key_len, access,
			  fresh && fresh[0] && strcmp(fresh, refresh) != 0 ? fresh : rotated[0] ? rotated : NULL,
			  monotonic_ms() + (uint64_t)lifetime * 1000u - EXPIRY_MARGIN_MS);
out:
	json_doc_free(d);
	free(why);
	if (form.data)
		memset(form.data, 0, form.len);
	buf_cleanup(&form);
	if (resp.data)
		memset(resp.data, 0, resp.len);
	buf_cleanup(&resp);
	memset(rotated, 0, sizeof(rotated));
	free(key);
	return err;
}
