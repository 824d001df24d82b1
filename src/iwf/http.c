/* SPDX-License-Identifier: MIT */
/*
 * Calls to 3rd parties over HTTP(S) with libcurl. Each worker owns one easy
 * handle for its whole life and resets its options before every call, which
 * keeps the handle's connection cache: calls to the same 3rd party reuse
 * their connection. Only http and https are allowed, redirects are not
 * followed (an adapter's URL is what the administrator configured), TLS peer
 * and host verification stay on. The response body is refused as soon as it
 * passes the adapter's cap.
 *
 * CURLcode and HTTP statuses become SPEC §4.3 codes here: connection refused,
 * resolution failure, a dropped connection or a 5xx are transient (503 when
 * retries run out), a timeout is transient (504), 401/407 is the 3rd party
 * refusing the credentials (401), 403 and 404 pass through, a body over the
 * cap is 413, anything else is a bad answer (502).
 *
 * WebDAV calls (adapter_carddav.c) add Depth, If-Match and If-None-Match
 * headers and read the answer's ETag and Location; their 207 is a 2xx like
 * any other, and the caller reads *status for the statuses WebDAV gives a
 * meaning (403 with a precondition, 405, 412, 501, 507).
 *
 * Credentials are handed to libcurl only; no error text here contains them.
 */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "iwf/iwf_int.h"

struct sink {
	struct buf *body;
	bool is_over;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (buf_append(s->body, data, size * n)) {
		s->is_over = true;
		return 0; /* stops the transfer with CURLE_WRITE_ERROR */
	}
	return size * n;
}

/* libcurl's header callback: keeps the ETag, Location and Last-Modified
 * headers of the final response (a 100 Continue or a 401 before Digest's
 * second round have their own). A value that does not fit its buffer is
 * dropped rather than cut: a cut ETag would only ever mismatch. */
struct header_sink {
	char *etag, *location, *last_modified;
	size_t etag_cap, location_cap, last_modified_cap;
};

/* Copies the value of header line @data (@len bytes) if it is @name. */
static void header_value(const char *data, size_t len, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);

	if (!out || !cap || len <= n || strncasecmp(data, name, n))
		return;
	data += n;
	len -= n;
	while (len && (*data == ' ' || *data == '\t'))
		data++, len--;
	while (len && strchr(" \t\r\n", data[len - 1]))
		len--;
	if (len >= cap) {
		out[0] = '\0';
		return;
	}
	memcpy(out, data, len);
	out[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct header_sink *e = arg;
	size_t len = size * n;

	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		if (e->etag_cap)
			e->etag[0] = '\0';
		if (e->location_cap)
			e->location[0] = '\0';
		if (e->last_modified_cap)
			e->last_modified[0] = '\0';
	}
	header_value(data, len, "ETag:", e->etag, e->etag_cap);
	header_value(data, len, "Location:", e->location, e->location_cap);
	header_value(data, len, "Last-Modified:", e->last_modified, e->last_modified_cap);
	return len;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const atomic_bool *cancel = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(cancel) ? 1 : 0;
}

static void classify_curl(CURLcode rc, const char *url_host, struct iwf_result *r)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		iwf_result_set(r, 503, true, "the 3rd party at %s cannot be reached (%s)", url_host,
			       curl_easy_strerror(rc));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		iwf_result_set(r, 504, true, "the 3rd party at %s did not answer in time", url_host);
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		iwf_result_set(r, 503, true, "the call to the 3rd party at %s was stopped: the server is shutting down",
			       url_host);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		iwf_result_set(r, 503, true, "the connection to the 3rd party at %s broke (%s)", url_host,
			       curl_easy_strerror(rc));
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
		iwf_result_set(r, 502, false, "TLS with the 3rd party at %s failed (%s)", url_host,
			       curl_easy_strerror(rc));
		break;
	default:
		iwf_result_set(r, 502, false, "the call to the 3rd party at %s failed (%s)", url_host,
			       curl_easy_strerror(rc));
		break;
	}
}

static void classify_status(long status, const char *url_host, struct iwf_result *r)
{
	if (status == 401 || status == 407)
		iwf_result_set(r, 401, false, "the 3rd party at %s refused the credentials (HTTP %ld)", url_host,
			       status);
	else if (status == 403)
		iwf_result_set(r, 403, false, "the 3rd party at %s refused the request (HTTP 403)", url_host);
	else if (status == 404 || status == 410)
		iwf_result_set(r, 404, false, "the 3rd party at %s has no such profile (HTTP %ld)", url_host,
			       status);
	else if (status == 413)
		iwf_result_set(r, 413, false, "the 3rd party at %s refused the data as too large", url_host);
	else if (status == 408 || status == 429 || status >= 500)
		iwf_result_set(r, status == 504 ? 504 : 503, true, "the 3rd party at %s is unavailable (HTTP %ld)",
			       url_host, status);
	else
		iwf_result_set(r, 502, false, "the 3rd party at %s gave an unexpected answer (HTTP %ld)", url_host,
			       status);
}

void iwf_url_host(const char *url, char *out, size_t out_len)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	if (strchr(p, '@') && strchr(p, '@') < p + strcspn(p, "/?#"))
		p = strchr(p, '@') + 1;
	n = strcspn(p, "/?#");
	snprintf(out, out_len, "%.*s", (int)n, p);
}

enum xdms_err iwf_http_do(void *curl, const struct iwf_http_call *call, struct buf *body, long *status,
			  struct iwf_result *r)
{
	CURL *h = curl;
	struct curl_slist *headers = NULL;
	struct sink sink = { body, false };
	struct header_sink hs = { 0 };
	bool is_conditional = call->if_none_match || call->if_modified_since;
	char host[256], line[IWF_VALIDATOR_MAX + 32];
	CURLcode rc;
	bool ok = true;

	*status = 0;
	iwf_url_host(call->url, host, sizeof(host));
	curl_easy_reset(h);
	ok &= curl_easy_setopt(h, CURLOPT_URL, call->url) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)call->timeout_s * 1000L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)call->connect_timeout_s * 1000L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_response) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_USERAGENT, "xdmsd-iwf/" PACKAGE_VERSION) == CURLE_OK;
	if (call->cancel) {
		ok &= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)call->cancel) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
	}
	if (call->etag_out && call->etag_out_len) {
		hs.etag = call->etag_out;
		hs.etag_cap = call->etag_out_len;
	} else if (call->got_etag) {
		hs.etag = call->got_etag;
		hs.etag_cap = IWF_VALIDATOR_MAX;
	}
	if (call->location_out && call->location_out_len) {
		hs.location = call->location_out;
		hs.location_cap = call->location_out_len;
	}
	if (call->got_last_modified) {
		hs.last_modified = call->got_last_modified;
		hs.last_modified_cap = IWF_VALIDATOR_MAX;
	}
	if (hs.etag_cap || hs.location_cap || hs.last_modified_cap) {
		if (hs.etag_cap)
			hs.etag[0] = '\0';
		if (hs.location_cap)
			hs.location[0] = '\0';
		if (hs.last_modified_cap)
			hs.last_modified[0] = '\0';
		ok &= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_HEADERDATA, &hs) == CURLE_OK;
	}
	if (call->ca_file && call->ca_file[0])
		ok &= curl_easy_setopt(h, CURLOPT_CAINFO, call->ca_file) == CURLE_OK;
	switch (call->auth) {
	case IWF_AUTH_BASIC:
	case IWF_AUTH_DIGEST:
		ok &= curl_easy_setopt(h, CURLOPT_HTTPAUTH,
				       call->auth == IWF_AUTH_BASIC ? CURLAUTH_BASIC : CURLAUTH_DIGEST) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_USERNAME, call->username ? call->username : "") == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_PASSWORD, call->password ? call->password : "") == CURLE_OK;
		break;
	case IWF_AUTH_BEARER:
		ok &= curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BEARER) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, call->token ? call->token : "") == CURLE_OK;
		break;
	case IWF_AUTH_NONE:
	default:
		break;
	}
	if (!strcmp(call->method, "DELETE") && !call->body) {
		/* A WebDAV DELETE has no body; a webhook's unregistration has one. */
		ok &= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method) == CURLE_OK;
	} else if (strcmp(call->method, "GET") != 0) {
		ok &= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body ? call->body : "") == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len) == CURLE_OK;
		/* No "Expect: 100-continue" round trip for small bodies. */
		headers = curl_slist_append(headers, "Expect:");
	}
	if (call->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", call->content_type);
		headers = curl_slist_append(headers, line);
	}
	if (call->accept) {
		snprintf(line, sizeof(line), "Accept: %s", call->accept);
		headers = curl_slist_append(headers, line);
	}
	if (call->depth) {
		snprintf(line, sizeof(line), "Depth: %s", call->depth);
		headers = curl_slist_append(headers, line);
	}
	/* Validators as the 3rd party gave them, and "*": a value with a line
	 * break would add a header. */
	if (call->if_match && !strpbrk(call->if_match, "\r\n")) {
		snprintf(line, sizeof(line), "If-Match: %s", call->if_match);
		headers = curl_slist_append(headers, line);
	}
	if (call->if_none_match && !strpbrk(call->if_none_match, "\r\n")) {
		snprintf(line, sizeof(line), "If-None-Match: %s", call->if_none_match);
		headers = curl_slist_append(headers, line);
	}
	if (call->if_modified_since && !strpbrk(call->if_modified_since, "\r\n")) {
		snprintf(line, sizeof(line), "If-Modified-Since: %s", call->if_modified_since);
		headers = curl_slist_append(headers, line);
	}
	if (headers)
		ok &= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
	if (!ok) {
		curl_slist_free_all(headers);
		iwf_result_set(r, 500, false, "the HTTP client could not be set up for %s", host);
		return XDMS_ERR_INVAL;
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (sink.is_over || rc == CURLE_FILESIZE_EXCEEDED) {
		iwf_result_set(r, 413, false, "the 3rd party at %s sent more than %zu bytes", host,
			       call->max_response);
		return XDMS_ERR_TOOBIG;
	}
	if (rc != CURLE_OK) {
		classify_curl(rc, host, r);
		return XDMS_ERR_IO;
	}
	if (*status == 304 && is_conditional)
		return XDMS_ERR_OK;
	if (*status < 200 || *status >= 300) {
		classify_status(*status, host, r);
		return XDMS_ERR_IO;
	}
	return XDMS_ERR_OK;
}
