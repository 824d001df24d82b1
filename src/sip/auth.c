/* SPDX-License-Identifier: MIT */
/*
 * The header values a user agent client reads from the remote side:
 * Digest as a client (RFC 3261 §22.2, RFC 2617, RFC 7616), that is a
 * WWW-Authenticate or Proxy-Authenticate challenge from a response to a
 * request we sent and the Authorization (or Proxy-Authorization) value that
 * answers it, and a NOTIFY's Subscription-State (RFC 6665 §8.2.3). The
 * hashing is auth/digest's, shared with the server side.
 *
 * Both come from the network: every field is copied into a fixed buffer,
 * a value that does not fit or holds a control character makes the whole
 * value unusable, and nothing here allocates from input.
 *
 * Threads: pure functions; the SIP loop thread uses them.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "sip/sip_int.h"

/* RFC 3261 §25.1 token characters. */
#define TOKEN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"

/* Skips spaces, tabs and (in a folded header) line ends. */
static const char *skip_lws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/*
 * Reads a token or a quoted-string (undoing backslash escapes) into @out.
 * Returns the position after it, or NULL when it is empty, unterminated or
 * longer than @out_len - 1.
 */
static const char *read_value(const char *p, char *out, size_t out_len)
{
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 >= out_len || ((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
				return NULL;
			out[n++] = *p;
		}
		if (*p != '"')
			return NULL;
		p++;
	} else {
		while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			if (n + 1 >= out_len || (unsigned char)*p < 0x20 || *p == 0x7f)
				return NULL;
			out[n++] = *p++;
		}
		if (n == 0)
			return NULL;
	}
	out[n] = '\0';
	return p;
}

/* True when the comma-separated list @list holds @want (case-insensitive). */
static bool list_has(const char *list, const char *want)
{
	size_t wl = strlen(want);

	for (const char *p = list; *p;) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ", \t");
		if (n == wl && !strncasecmp(p, want, wl))
			return true;
		p += n;
	}
	return false;
}

bool sip_challenge_parse(const char *value, struct sip_challenge *out)
{
	const char *p = skip_lws(value);

	memset(out, 0, sizeof(*out));
	out->algo = DIGEST_ALGO_MD5; /* RFC 7616 §3.3: absent means MD5 */
	if (strncasecmp(p, "Digest", 6) != 0 || !strchr(" \t\r\n", p[6]) || !p[6])
		return false;
	p += 6;
	for (;;) {
		char name[32], v[SIP_CHALLENGE_FIELD];
		size_t nlen;

		p = skip_lws(p);
		while (*p == ',')
			p = skip_lws(p + 1);
		if (!*p)
			break;
		nlen = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
		if (nlen == 0 || nlen >= sizeof(name))
			return false;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		p = skip_lws(p + nlen);
		if (*p != '=')
			return false;
		p = read_value(skip_lws(p + 1), v, sizeof(v));
		if (!p)
			return false;
		if (!strcasecmp(name, "realm")) {
			snprintf(out->realm, sizeof(out->realm), "%s", v);
		} else if (!strcasecmp(name, "nonce")) {
			snprintf(out->nonce, sizeof(out->nonce), "%s", v);
		} else if (!strcasecmp(name, "opaque")) {
			snprintf(out->opaque, sizeof(out->opaque), "%s", v);
			out->has_opaque = true;
		} else if (!strcasecmp(name, "stale")) {
			out->is_stale = !strcasecmp(v, "true");
		} else if (!strcasecmp(name, "qop")) {
			out->has_qop = true;
			out->has_qop_auth = list_has(v, "auth");
		} else if (!strcasecmp(name, "algorithm")) {
			/* The -sess variants and anything else: not supported. */
			if (digest_algo_parse(v, &out->algo) != 0)
				return false;
		}
		/* domain, charset, userhash and unknown parameters are ignored
		 * (RFC 7616 §3.3: unknown directives must be ignored). */
	}
	/* A qop list without "auth" (only auth-int) cannot be answered. */
	return out->realm[0] && out->nonce[0] && (!out->has_qop || out->has_qop_auth);
}

/* Appends @v to @out as a quoted-string (RFC 3261 §25.1 quoted-pair). */
static void put_quoted(struct buf *out, const char *v, bool *is_ok)
{
	*is_ok &= !buf_append(out, "\"", 1);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			*is_ok &= !buf_append(out, "\\", 1);
		*is_ok &= !buf_append(out, v, 1);
	}
	*is_ok &= !buf_append(out, "\"", 1);
}

enum xdms_err sip_authorization_make(const struct sip_challenge *ch, const char *username, const char *password,
				     const char *method, const char *uri, uint32_t nc, const char *cnonce,
				     struct buf *out)
{
	struct digest_credentials *cr;
	uint8_t ha1[32];
	char response[65];
	bool is_ok = true;

	if (strpbrk(username, "\r\n") || strpbrk(uri, "\r\n") || strlen(uri) >= sizeof(cr->uri) ||
	    strlen(cnonce) >= sizeof(cr->cnonce))
		return XDMS_ERR_INVAL;
	cr = xcalloc(1, sizeof(*cr));
	cr->algo = ch->algo;
	snprintf(cr->nonce, sizeof(cr->nonce), "%s", ch->nonce);
	snprintf(cr->uri, sizeof(cr->uri), "%s", uri);
	if (ch->has_qop) {
		snprintf(cr->qop, sizeof(cr->qop), "auth");
		snprintf(cr->cnonce, sizeof(cr->cnonce), "%s", cnonce);
		cr->nc = nc;
	}
	digest_ha1(ch->algo, username, ch->realm, password, ha1);
	digest_response_make(cr, method, ha1, response);
	is_ok &= !buf_append_str(out, "Digest username=");
	put_quoted(out, username, &is_ok);
	is_ok &= !buf_append_str(out, ", realm=");
	put_quoted(out, ch->realm, &is_ok);
	is_ok &= !buf_append_str(out, ", nonce=");
	put_quoted(out, ch->nonce, &is_ok);
	is_ok &= !buf_append_str(out, ", uri=");
	put_quoted(out, uri, &is_ok);
	is_ok &= !buf_printf(out, ", response=\"%s\", algorithm=%s", response, digest_algo_name(ch->algo));
	if (ch->has_qop)
		is_ok &= !buf_printf(out, ", cnonce=\"%s\", qop=auth, nc=%08x", cnonce, (unsigned)nc);
	if (ch->has_opaque) {
		is_ok &= !buf_append_str(out, ", opaque=");
		put_quoted(out, ch->opaque, &is_ok);
	}
	free(cr);
	return is_ok ? XDMS_ERR_OK : XDMS_ERR_TOOBIG;
}

/* ---- Subscription-State (RFC 6665 §8.2.3), read by the subscriber ------------------------- */

bool sip_sub_state_parse(const char *v, struct sip_sub_state *out)
{
	size_t n;

	memset(out, 0, sizeof(*out));
	out->expires = out->retry_after = -1;
	v += strspn(v, " \t");
	n = strcspn(v, "; \t");
	if (n == 0 || n >= sizeof(out->state) || strspn(v, TOKEN_CHARS) < n)
		return false;
	memcpy(out->state, v, n);
	v += n;
	while (*v) {
		const char *name, *val;
		size_t nl, vl;

		v += strspn(v, " \t;");
		if (!*v)
			break;
		name = v;
		nl = strcspn(v, "=; \t");
		v += nl;
		v += strspn(v, " \t");
		val = "";
		vl = 0;
		if (*v == '=') {
			v++;
			v += strspn(v, " \t");
			val = v;
			vl = strcspn(v, "; \t");
			v += vl;
		}
		if (nl == 6 && !strncasecmp(name, "reason", 6) && vl < sizeof(out->reason) &&
		    strspn(val, TOKEN_CHARS) >= vl) {
			memcpy(out->reason, val, vl);
			out->reason[vl] = '\0';
		} else if (nl == 7 && !strncasecmp(name, "expires", 7)) {
			char num[16];

			snprintf(num, sizeof(num), "%.*s", (int)(vl < 15 ? vl : 15), val);
			out->expires = vl < 15 ? sip_seconds_parse(num) : -1;
		} else if (nl == 11 && !strncasecmp(name, "retry-after", 11)) {
			char num[16];

			snprintf(num, sizeof(num), "%.*s", (int)(vl < 15 ? vl : 15), val);
			out->retry_after = vl < 15 ? sip_seconds_parse(num) : -1;
		}
	}
	return true;
}
