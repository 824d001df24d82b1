/* SPDX-License-Identifier: MIT */
/*
 * The `http` adapter kind: a 3rd party's proprietary XML API over HTTP(S).
 * Its documents must name their transforms (no defaults); the import is the
 * adapter's import method (GET) on its URL, the export its export method
 * (PUT) with the transformed PCC part as the body, both through the
 * worker's libcurl handle (http.c), with the adapter's timeouts, response
 * cap and authentication. Other kinds that reach their 3rd party over plain
 * HTTP use these two calls as they are.
 *
 * Threads: any worker.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iwf/iwf_int.h"

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

enum xdms_err iwf_http_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r)
{
	struct iwf_http_call call;
	long status;

	call_init(&call, c, c->a->import_method);
	call.accept = c->a->content_type;
	return iwf_http_do(c->curl, &call, body, &status, r);
}

enum xdms_err iwf_http_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			    struct iwf_result *r)
{
	struct iwf_http_call call;

	call_init(&call, c, c->a->export_method);
	call.content_type = c->a->content_type;
	call.body = data;
	call.body_len = len;
	return iwf_http_do(c->curl, &call, body, status, r);
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
	err = iwf_http_do(c->curl, &call, body, &status, r);
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
};
