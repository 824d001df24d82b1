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

#include <string.h>

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
};
