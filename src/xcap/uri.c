/* SPDX-License-Identifier: MIT */
/*
 * XCAP request URIs (RFC 4825 §6). The path is split into segments on "/"
 * before any decoding, so that percent-encoded slashes inside a XUI do not
 * become separators; each segment is then decoded on its own. The segment
 * "~~" (RFC 4825 §6.3) ends the document selector; the rest of the path,
 * decoded, is the node selector, which is parsed elsewhere.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/mem.h"
#include "xcap/xcap.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum xdms_err xcap_percent_decode(const char *in, size_t len, char **out)
{
	char *s = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '%') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = hex_value(in[i + 1]);
			lo = hex_value(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			s[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (in[i] == '\0') {
			goto bad;
		} else {
			s[n++] = in[i];
		}
	}
	s[n] = '\0';
	*out = s;
	return XDMS_ERR_OK;
bad:
	free(s);
	*out = NULL;
	return XDMS_ERR_PARSE;
}

/*
 * One encoder for every XCAP path the server writes (document URIs, the
 * selectors of NOTIFY bodies, <xcap-error> ancestors). Its three copies
 * disagreed on "(" and ")": RFC 3986 §3.3 lets a path segment carry every
 * sub-delim, "(" and ")" included, and RFC 4825 §6 builds node selectors on
 * that grammar, so they stay as they are.
 */
enum xdms_err xcap_percent_encode(struct buf *out, const char *in, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t i = 0; i < len && !err; i++) {
		unsigned char c = (unsigned char)in[i];
		bool is_plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				(c && strchr("-._~!$&'()*+,;=:@/", c));
		char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

		err = is_plain ? buf_append(out, in + i, 1) : buf_append(out, enc, 3);
	}
	return err;
}

void xcap_uri_cleanup(struct xcap_uri *uri)
{
	if (!uri)
		return;
	free(uri->auid);
	free(uri->xui);
	free(uri->doc_path);
	free(uri->doc_selector);
	free(uri->node_selector);
	free(uri->query);
	memset(uri, 0, sizeof(*uri));
}

/* Appends the next raw segment of *p (up to "/" or the end) decoded. */
static enum xdms_err next_segment(const char **p, const char *end, char **seg)
{
	const char *s = *p, *e = memchr(s, '/', (size_t)(end - s));

	if (!e)
		e = end;
	*p = e < end ? e + 1 : end;
	return xcap_percent_decode(s, (size_t)(e - s), seg);
}

static bool is_node_separator(const char *s, size_t len)
{
	return (len == 2 && s[0] == '~' && s[1] == '~') ||
	       (len == 6 && (strncasecmp(s, "%7e%7e", 6) == 0));
}

enum xdms_err xcap_uri_parse(const char *root_path, const char *path, const char *query,
			     struct xcap_uri *out)
{
	size_t root_len = strlen(root_path);
	const char *p, *end, *doc_end, *sep = NULL;
	struct buf sel;
	char *seg = NULL;
	enum xdms_err err;

	memset(out, 0, sizeof(*out));
	buf_init(&sel, STORE_SELECTOR_MAX);
	while (root_len && root_path[root_len - 1] == '/')
		root_len--;
	if (strncmp(path, root_path, root_len) != 0 || path[root_len] != '/')
		return XDMS_ERR_NOTFOUND;
	p = path + root_len + 1;
	end = p + strlen(p);

	/* Find the "~~" segment, if any: the document selector ends before it. */
	for (const char *s = p; s <= end;) {
		const char *e = memchr(s, '/', (size_t)(end - s));

		if (!e)
			e = end;
		if (is_node_separator(s, (size_t)(e - s))) {
			sep = s;
			break;
		}
		if (e == end)
			break;
		s = e + 1;
	}
	doc_end = sep ? sep - 1 : end; /* sep - 1 is the "/" before "~~" */
	if (sep && sep == p)
		return XDMS_ERR_NOTFOUND;

	err = next_segment(&p, doc_end, &out->auid);
	if (err)
		goto out;
	if (out->auid[0] == '\0' || p >= doc_end) {
		err = XDMS_ERR_NOTFOUND;
		goto out;
	}
	err = next_segment(&p, doc_end, &seg);
	if (err)
		goto out;
	if (strcmp(seg, "global") == 0) {
		out->is_global = true;
	} else if (strcmp(seg, "users") == 0) {
		if (p >= doc_end) {
			err = XDMS_ERR_NOTFOUND;
			goto out;
		}
		err = next_segment(&p, doc_end, &out->xui);
		if (err)
			goto out;
		if (out->xui[0] == '\0') {
			err = XDMS_ERR_NOTFOUND;
			goto out;
		}
	} else {
		err = XDMS_ERR_NOTFOUND;
		goto out;
	}
	/* The document path: one or more segments, none empty, no dot segments. */
	if (p >= doc_end) {
		err = XDMS_ERR_NOTFOUND;
		goto out;
	}
	{
		struct buf docp;
		bool is_last = false;

		buf_init(&docp, STORE_SELECTOR_MAX);
		while (!is_last) {
			const char *slash = memchr(p, '/', (size_t)(doc_end - p));

			is_last = slash == NULL;
			free(seg);
			seg = NULL;
			err = next_segment(&p, doc_end, &seg);
			if (!err && (seg[0] == '\0' || !strcmp(seg, ".") || !strcmp(seg, "..") || strchr(seg, '/')))
				err = XDMS_ERR_NOTFOUND;
			if (!err && ((docp.len && buf_append_str(&docp, "/")) || buf_append_str(&docp, seg)))
				err = XDMS_ERR_TOOBIG;
			if (err) {
				buf_cleanup(&docp);
				goto out;
			}
		}
		out->doc_path = buf_take(&docp, NULL);
	}
	if (buf_printf(&sel, "%s/%s%s%s/%s", out->auid, out->is_global ? "global" : "users",
		       out->is_global ? "" : "/", out->is_global ? "" : out->xui, out->doc_path)) {
		err = XDMS_ERR_TOOBIG;
		goto out;
	}
	out->doc_selector = buf_take(&sel, NULL);
	if (sep) {
		const char *ns = sep + (sep[0] == '%' ? 6 : 2);

		if (*ns != '/' || ns[1] == '\0') {
			err = XDMS_ERR_NOTFOUND;
			goto out;
		}
		err = xcap_percent_decode(ns + 1, strlen(ns + 1), &out->node_selector);
		if (err)
			goto out;
	}
	if (query && *query)
		out->query = xstrdup(query);
	err = XDMS_ERR_OK;
out:
	free(seg);
	buf_cleanup(&sel);
	if (err)
		xcap_uri_cleanup(out);
	return err;
}

bool xcap_xui_split(const char *xui, char *user, size_t user_len, char *host, size_t host_len)
{
	const char *colon = strchr(xui, ':'), *at, *end;
	size_t n, h;

	host[0] = '\0';
	if (!colon)
		return false;
	if (!strncmp(xui, "sip:", 4) || !strncmp(xui, "sips:", 5)) {
		at = strrchr(colon + 1, '@');
		if (!at || at == colon + 1)
			return false;
		n = (size_t)(at - colon - 1);
		/* The host ends at a port, URI parameters or headers. */
		end = at + 1 + strcspn(at + 1, ":;?>");
		h = (size_t)(end - at - 1);
		if (h == 0 || h >= host_len)
			return false;
		for (size_t i = 0; i < h; i++) {
			char ch = at[1 + i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			      ch == '.' || ch == '-' || ch == '[' || ch == ']'))
				return false;
		}
		memcpy(host, at + 1, h);
		host[h] = '\0';
	} else if (!strncmp(xui, "tel:", 4)) {
		n = strcspn(colon + 1, ";");
		if (!n)
			return false;
	} else {
		return false;
	}
	if (n >= user_len) {
		host[0] = '\0';
		return false;
	}
	memcpy(user, colon + 1, n);
	user[n] = '\0';
	return true;
}

const char *xcap_uri_realm(const struct xcap_uri *uri, const char *default_realm, char *buf,
			   size_t buf_len)
{
	char user[STORE_USERNAME_MAX];

	if (!uri || !uri->xui || !xcap_xui_split(uri->xui, user, sizeof(user), buf, buf_len) || !buf[0])
		return default_realm;
	return buf;
}
