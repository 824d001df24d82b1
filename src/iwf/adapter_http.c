/* SPDX-License-Identifier: MIT */
/*
 * The `http` adapter kind: a 3rd party's own API over HTTP(S), XML or JSON.
 * Its documents must name their transforms (no defaults); the import is the
 * adapter's import method (GET) on its URL, the export its export method
 * (PUT) with the transformed PCC part as the body, both through the
 * worker's libcurl handle (http.c), with the adapter's timeouts, response
 * cap and authentication. Other kinds that reach their 3rd party over plain
 * HTTP use these two calls as they are.
 *
 * JSON (format json). The import reads every page the 3rd party links,
 * by a next-page token sent back in a query parameter or by a next link,
 * up to max-pages, and hands the import transform one document: an
 * <array> of the pages, each in the XPath 3.1 XML representation of JSON
 * (src/json). The last page may carry a sync token or a delta link; it is
 * kept per user and adapter (iwf_sync_*), once the import is stored, and
 * the next import starts from it and gets only the changes. A 3rd party
 * that answers 410 Gone to a stored state has expired it: the import runs
 * once more as a full sync. Next and delta links must stay on the origin
 * (scheme, host, port) of the adapter's URL, so a 3rd party cannot send the
 * IWF, with the user's token, anywhere else. The export transform writes
 * the XML representation and the body sent is the JSON it stands for.
 *
 * OAuth 2.0 (auth oauth2): every call carries an access token from
 * oauth.c; a 401 answer gets one fresh token and one more try.
 *
 * Threads: any worker.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "json/json.h"

#define SYNC_PREFIX "sync:"
#define STATE_TOKEN "token:"
#define STATE_LINK "link:"
#define PAGES_MAX_BYTES (64u * 1024u * 1024u)

/* The parts of a call every HTTP request of an adapter shares. */
static void call_init(struct iwf_http_call *call, const struct iwf_call *c, const char *method)
{
	const struct iwf_adapter *a = c->a;

	memset(call, 0, sizeof(*call));
	call->method = method;
	call->url = c->url;
	call->timeout_s = a->timeout_s;
	call->connect_timeout_s = a->connect_timeout_s;
	call->max_response = a->max_response;
	call->ca_file = c->env->opt->ca_file;
	call->cancel = c->env->stopping;
	call->auth = a->auth;
	call->username = c->username;
	call->password = c->password;
	call->token = c->token;
}

/* One call with the adapter's authentication; under OAuth, a 401 gets one
 * fresh access token and one more try (RFC 6750 §3.1: the token expired or
 * was revoked). */
static enum xdms_err authed_do(const struct iwf_call *c, struct iwf_http_call *call, struct buf *body, long *status,
			       struct iwf_result *r)
{
	char *token;
	enum xdms_err err = XDMS_ERR_OK;

	if (c->a->auth != IWF_AUTH_OAUTH2)
		return iwf_http_do(c->curl, call, body, status, r);
	token = xmalloc(IWF_ACCESS_TOKEN_MAX);
	for (int attempt = 0; attempt < 2; attempt++) {
		err = iwf_oauth_token(c, attempt > 0, token, IWF_ACCESS_TOKEN_MAX, r);
		if (err)
			break;
		call->auth = IWF_AUTH_BEARER;
		call->token = token;
		buf_reset(body);
		err = iwf_http_do(c->curl, call, body, status, r);
		if (!err || *status != 401)
			break;
	}
	memset(token, 0, IWF_ACCESS_TOKEN_MAX);
	free(token);
	call->token = NULL;
	return err;
}

/* The length of "scheme://authority" of @url. */
static size_t origin_len(const char *url)
{
	const char *p = strstr(url, "://");

	return p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : 0;
}

static bool same_origin(const char *a, const char *b)
{
	size_t n = origin_len(a);

	return n && n == origin_len(b) && !strncasecmp(a, b, n);
}

/* ---- paging state ---------------------------------------------------------------------- */

void iwf_sync_cleanup(struct iwf_sync *s)
{
	if (!s)
		return;
	free(s->used);
	free(s->next);
	memset(s, 0, sizeof(*s));
}

enum xdms_err iwf_sync_load(struct store *st, const char *xui, const char *adapter_id, struct iwf_sync *s)
{
	char *name = xasprintf(SYNC_PREFIX "%s", adapter_id), *v = xmalloc(STORE_SECRET_MAX + 1);
	struct store_read *rd = NULL;
	size_t len = 0;
	enum xdms_err err = store_read_begin(st, &rd);

	if (!err)
		err = store_secret_get(rd, xui, name, v, STORE_SECRET_MAX, &len);
	store_read_end(rd);
	if (!err) {
		v[len] = '\0';
		s->used = xstrdup(v);
	}
	free(v);
	free(name);
	return err == XDMS_ERR_NOTFOUND ? XDMS_ERR_OK : err;
}

enum xdms_err iwf_sync_save(struct store *st, const char *xui, const char *adapter_id, const struct iwf_sync *s)
{
	char *name;
	enum xdms_err err;

	if (!s->next)
		return XDMS_ERR_OK;
	name = xasprintf(SYNC_PREFIX "%s", adapter_id);
	err = store_secret_put(st, xui, name, s->next, strlen(s->next), false);
	free(name);
	return err;
}

/* Where the import starts: the stored delta link, the adapter's URL with the
 * stored sync token, or the adapter's URL. *is_delta when from a state. */
static char *start_url(const struct iwf_call *c, bool *is_delta)
{
	const char *used = c->sync ? c->sync->used : NULL;
	const struct iwf_adapter *a = c->a;

	*is_delta = false;
	if (used && !strncmp(used, STATE_LINK, strlen(STATE_LINK)) && a->delta_link &&
	    same_origin(used + strlen(STATE_LINK), c->url)) {
		*is_delta = true;
		return xstrdup(used + strlen(STATE_LINK));
	}
	if (used && !strncmp(used, STATE_TOKEN, strlen(STATE_TOKEN)) && a->sync_token && a->sync_token_param) {
		*is_delta = true;
		return iwf_url_with_param(c->url, a->sync_token_param, used + strlen(STATE_TOKEN));
	}
	return xstrdup(c->url);
}

/* What follows page @d of a listing that began at @first: the next page's
 * URL (heap), or NULL at the end.
 * INVAL with @r set for a next link off the adapter's origin. */
static enum xdms_err next_url(const struct iwf_call *c, const char *first, const struct json_doc *d, const char *host,
			      char **out, struct iwf_result *r)
{
	const struct iwf_adapter *a = c->a;
	const char *v;

	*out = NULL;
	if (a->next_link && (v = json_doc_string(d, a->next_link)) != NULL && v[0]) {
		if (!same_origin(v, c->url)) {
			iwf_result_set(r, 502, false, "the 3rd party at %s linked a next page on another site", host);
			return XDMS_ERR_INVAL;
		}
		*out = xstrdup(v);
	} else if (a->next_page_token && (v = json_doc_string(d, a->next_page_token)) != NULL && v[0]) {
		/* On the first page's URL: a sync token stays on every page. */
		*out = iwf_url_with_param(first, a->page_token_param, v);
	}
	return XDMS_ERR_OK;
}

/* The state the last page @d gives for the next import, into c->sync->next. */
static void keep_state(const struct iwf_call *c, const struct json_doc *d)
{
	const struct iwf_adapter *a = c->a;
	const char *v;
	char *state = NULL;

	if (!c->sync)
		return;
	if (a->delta_link && (v = json_doc_string(d, a->delta_link)) != NULL && v[0] && same_origin(v, c->url))
		state = xasprintf(STATE_LINK "%s", v);
	else if (a->sync_token && (v = json_doc_string(d, a->sync_token)) != NULL && v[0])
		state = xasprintf(STATE_TOKEN "%s", v);
	/* A state too long to keep means a full sync next time, not an error. */
	if (state && strlen(state) > STORE_SECRET_MAX) {
		free(state);
		state = NULL;
	}
	free(c->sync->next);
	c->sync->next = state;
}

static const char ARRAY_OPEN[] = "<array xmlns=\"" JSON_XML_NS "\">";

enum xdms_err iwf_http_fetch_pages(const struct iwf_call *c, struct buf *out, struct iwf_result *r)
{
	const struct iwf_adapter *a = c->a;
	struct json_limits lim;
	struct buf page;
	char host[256], *url, *first, *why = NULL;
	unsigned pages = 0;
	bool is_delta;
	enum xdms_err err;

	iwf_url_host(c->url, host, sizeof(host));
	json_limits_init(&lim);
	lim.max_size = a->max_response;
	/* The transform reads XML up to IWF_MAX_DEPTH levels: the array of
	 * pages and the leaf elements take two of them. */
	lim.max_depth = IWF_MAX_DEPTH - 2;
	buf_init(&page, a->max_response);
	url = start_url(c, &is_delta);
	first = xstrdup(url);
	err = buf_append_str(out, ARRAY_OPEN);
	while (!err) {
		struct iwf_http_call call;
		struct json_doc *d = NULL;
		char *next = NULL;
		long status = 0;

		if (pages >= a->max_pages) {
			iwf_result_set(r, 413, false, "the 3rd party at %s has more than %u pages (the adapter's max-pages)",
				       host, a->max_pages);
			err = XDMS_ERR_TOOBIG;
			break;
		}
		call_init(&call, c, a->import_method);
		call.url = url;
		call.accept = a->content_type;
		buf_reset(&page);
		err = authed_do(c, &call, &page, &status, r);
		if (err && status == 410 && is_delta) {
			/* The stored sync state expired: one full sync. */
			is_delta = false;
			if (c->sync)
				c->sync->is_reset = true;
			free(url);
			url = xstrdup(c->url);
			free(first);
			first = xstrdup(c->url);
			pages = 0;
			buf_reset(out);
			err = buf_append_str(out, ARRAY_OPEN);
			continue;
		}
		if (err)
			break;
		pages++;
		if (c->sync)
			c->sync->pages++;
		err = json_doc_parse(page.data ? page.data : "", page.len, &lim, &d, &why);
		if (err) {
			iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false,
				       "the 3rd party at %s sent unusable JSON (page %u): %s", host, pages, why);
			free(why);
			why = NULL;
			break;
		}
		err = json_doc_to_xml(d, NULL, out);
		if (err) {
			iwf_result_set(r, 413, false, "the 3rd party's %u pages are larger than %zu bytes together", pages,
				       out->max_len);
		} else {
			err = next_url(c, first, d, host, &next, r);
			if (!err && !next)
				keep_state(c, d);
		}
		json_doc_free(d);
		if (err || !next)
			break;
		free(url);
		url = next;
	}
	if (!err)
		err = buf_append_str(out, "</array>");
	if (c->sync)
		c->sync->is_delta = !err && is_delta;
	buf_cleanup(&page);
	free(url);
	free(first);
	return err;
}

/* ---- the kind's calls --------------------------------------------------------------------- */

enum xdms_err iwf_http_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r)
{
	struct iwf_http_call call;
	long status;

	if (c->a->format == IWF_FORMAT_JSON) {
		/* Pages together may pass one response's cap; their own cap. */
		size_t cap = c->a->max_response * (size_t)(c->a->max_pages ? c->a->max_pages : 1) * 2;

		body->max_len = cap > PAGES_MAX_BYTES ? PAGES_MAX_BYTES : cap;
		return iwf_http_fetch_pages(c, body, r);
	}
	call_init(&call, c, c->a->import_method);
	call.accept = c->a->content_type;
	return authed_do(c, &call, body, &status, r);
}

enum xdms_err iwf_http_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			    struct iwf_result *r)
{
	struct iwf_http_call call;
	struct json_limits lim;
	struct buf json;
	char *why = NULL;
	enum xdms_err err;

	*status = 0;
	buf_init(&json, c->a->max_response);
	if (c->a->format == IWF_FORMAT_JSON) {
		json_limits_init(&lim);
		err = json_from_xml(data, len, &lim, &json, &why);
		if (err) {
			iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false,
				       "the export transform's output is not JSON in its XML form: %s", why);
			free(why);
			buf_cleanup(&json);
			return err;
		}
		data = json.data ? json.data : "";
		len = json.len;
	}
	call_init(&call, c, c->a->export_method);
	call.content_type = c->a->content_type;
	call.body = data;
	call.body_len = len;
	err = authed_do(c, &call, body, status, r);
	buf_cleanup(&json);
	return err;
}

enum xdms_err iwf_http_poll(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			    bool *is_changed, struct buf *body, struct iwf_result *r)
{
	struct iwf_http_call call;
	char etag[IWF_VALIDATOR_MAX], modified[IWF_VALIDATOR_MAX];
	long status;
	enum xdms_err err;

	*is_changed = false;
	new_validator[0] = '\0';
	call_init(&call, c, "GET");
	call.accept = c->a->content_type;
	if (!strncmp(validator, "E:", 2))
		call.if_none_match = validator + 2;
	else if (!strncmp(validator, "M:", 2))
		call.if_modified_since = validator + 2;
	call.got_etag = etag;
	call.got_last_modified = modified;
	err = authed_do(c, &call, body, &status, r);
	if (err || status == 304)
		return err;
	*is_changed = true;
	if (etag[0])
		snprintf(new_validator, IWF_VALIDATOR_MAX, "E:%.509s", etag);
	else if (modified[0])
		snprintf(new_validator, IWF_VALIDATOR_MAX, "M:%.509s", modified);
	return XDMS_ERR_OK;
}

enum xdms_err iwf_http_hook_register(const struct iwf_call *c, const char *register_url, bool is_register,
				     const char *callback_url, const char *hook_id, const char *secret,
				     const char *remote_user, uint64_t expires_ms, struct iwf_result *r)
{
	struct iwf_http_call call;
	struct buf doc, answer;
	char when[32];
	time_t t = (time_t)(expires_ms / 1000u);
	struct tm tm;
	long status;
	enum xdms_err err;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_init(&doc, 16384);
	err = buf_printf(&doc, "<webhook xmlns=\"urn:xdmsd:xml:iwf-webhook\" action=\"%s\"><id>",
			 is_register ? "register" : "unregister");
	if (!err)
		err = buf_append_xml_escaped(&doc, hook_id, strlen(hook_id));
	if (!err)
		err = buf_append_str(&doc, "</id><callback>");
	if (!err)
		err = buf_append_xml_escaped(&doc, callback_url, strlen(callback_url));
	if (!err)
		err = buf_append_str(&doc, "</callback>");
	if (!err && is_register)
		err = buf_printf(&doc, "<secret>%s</secret><expires>%s</expires>", secret, when);
	if (!err && remote_user) {
		err = buf_append_str(&doc, "<remote-user>");
		if (!err)
			err = buf_append_xml_escaped(&doc, remote_user, strlen(remote_user));
		if (!err)
			err = buf_append_str(&doc, "</remote-user>");
	}
	if (!err)
		err = buf_append_str(&doc, "</webhook>");
	if (err) {
		buf_cleanup(&doc);
		iwf_result_set(r, 400, false, "the webhook registration is too large");
		return err;
	}
	call_init(&call, c, is_register ? "POST" : "DELETE");
	call.url = register_url;
	call.content_type = "application/xml";
	call.body = doc.data;
	call.body_len = doc.len;
	buf_init(&answer, 65536);
	err = iwf_http_do(c->curl, &call, &answer, &status, r);
	buf_cleanup(&answer);
	buf_cleanup(&doc);
	return err;
}

enum xdms_err iwf_http_write(const struct iwf_call *c, const char *method, const char *url, const char *if_match,
			     const char *data, size_t len, struct buf *body, char etag[IWF_CARD_ETAG_MAX], long *status,
			     struct iwf_result *r)
{
	struct iwf_http_call call;

	*status = 0;
	etag[0] = '\0';
	call_init(&call, c, method);
	call.url = url;
	call.accept = "application/json";
	if (data) {
		call.content_type = "application/json";
		call.body = data;
		call.body_len = len;
	}
	call.if_match = if_match;
	call.etag_out = etag;
	call.etag_out_len = IWF_CARD_ETAG_MAX;
	return authed_do(c, &call, body, status, r);
}

/* "2026-12-07T15:20:00Z" (fraction and offset Z only) into Unix ms; 0 when unreadable. */
static uint64_t iso_ms(const char *s)
{
	struct tm tm;
	int n = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			 &tm.tm_sec, &n) != 6)
		return 0;
	s += n;
	if (*s == '.')
		s += 1 + strspn(s + 1, "0123456789");
	if (strcmp(s, "Z") != 0 && strcmp(s, "+00:00") != 0)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t > 0 ? (uint64_t)t * 1000u : 0;
}

#define GRAPH_ANSWER_MAX 65536

enum xdms_err iwf_http_hook_graph(const struct iwf_call *c, const char *method, const char *url,
				  const char *callback, const char *resource, const char *secret, uint64_t expires_ms,
				  char *remote_id, size_t remote_cap, uint64_t *granted_ms, struct iwf_result *r)
{
	struct iwf_http_call call;
	struct buf doc, answer;
	struct json_limits lim;
	struct json_doc *d = NULL;
	char when[32], host[256], *why = NULL;
	time_t t = (time_t)(expires_ms / 1000u);
	struct tm tm;
	bool is_delete = !strcmp(method, "DELETE");
	const char *v;
	long status = 0;
	enum xdms_err err = XDMS_ERR_OK;

	if (granted_ms)
		*granted_ms = 0;
	iwf_url_host(url, host, sizeof(host));
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_init(&doc, 16384);
	if (!strcmp(method, "POST")) {
		err = buf_append_str(&doc, "{\"changeType\":\"updated\",\"notificationUrl\":");
		if (!err)
			err = json_append_string(&doc, callback, strlen(callback));
		if (!err)
			err = buf_append_str(&doc, ",\"resource\":");
		if (!err)
			err = json_append_string(&doc, resource, strlen(resource));
		if (!err)
			err = buf_append_str(&doc, ",\"clientState\":");
		if (!err)
			err = json_append_string(&doc, secret, strlen(secret));
		if (!err)
			err = buf_printf(&doc, ",\"expirationDateTime\":\"%s\"}", when);
	} else if (!is_delete) {
		err = buf_printf(&doc, "{\"expirationDateTime\":\"%s\"}", when);
	}
	if (err) {
		buf_cleanup(&doc);
		iwf_result_set(r, 400, false, "the webhook subscription is too large");
		return err;
	}
	call_init(&call, c, method);
	call.url = url;
	if (!is_delete) {
		call.content_type = "application/json";
		call.accept = "application/json";
		call.body = doc.data;
		call.body_len = doc.len;
	}
	buf_init(&answer, GRAPH_ANSWER_MAX);
	err = authed_do(c, &call, &answer, &status, r);
	if (!err && !is_delete) {
		json_limits_init(&lim);
		lim.max_size = GRAPH_ANSWER_MAX;
		err = json_doc_parse(answer.data ? answer.data : "", answer.len, &lim, &d, &why);
		if (err) {
			iwf_result_set(r, 502, false, "the webhook subscription at %s answered unusable JSON: %s", host,
				       why);
			free(why);
		} else if (remote_id && (!(v = json_doc_string(d, "/id")) || !v[0] || strlen(v) >= remote_cap ||
					 strpbrk(v, "/?#\r\n "))) {
			iwf_result_set(r, 502, false, "the webhook subscription at %s answered no usable id", host);
			err = XDMS_ERR_PARSE;
		} else {
			if (remote_id)
				snprintf(remote_id, remote_cap, "%s", v);
			if (granted_ms)
				*granted_ms = iso_ms(json_doc_string(d, "/expirationDateTime"));
		}
		json_doc_free(d);
	}
	buf_cleanup(&answer);
	buf_cleanup(&doc);
	return err;
}

const struct iwf_kind iwf_kind_http = {
	.name = "http",
	.content_type = "application/xml",
	.import_method = "GET",
	.export_method = "PUT",
	.import_xslt = NULL,
	.export_xslt = NULL,
	.auth = IWF_AUTH_NONE,
	.fetch = iwf_http_fetch,
	.send = iwf_http_send,
	.poll = iwf_http_poll,
	.book = &iwf_json_book,
};
