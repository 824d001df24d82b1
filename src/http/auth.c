/* SPDX-License-Identifier: MIT */
/*
 * Who is asking. In order:
 *  1. An identity asserted by a trusted peer (an Aggregation Proxy, the IWF,
 *     a CAB server; 3GPP TS 24.109 X-3GPP-Asserted-Identity, or the XDM 1.x
 *     X-XCAP-Asserted-Identity). The header is ignored from any other address,
 *     so a client cannot assert itself in.
 *  2. Digest (RFC 7616) against the store's users, for the realm of the XUI
 *     the request addresses. An empty realm (global documents, tel: users)
 *     is the default realm, digest_default_realm().
 *  3. Basic, only over TLS or when the operator enabled it explicitly.
 * The role (user, trusted server, admin) then comes from the configured
 * identity lists. Nothing here logs; the caller logs the outcome with *why.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <nettle/base64.h>

#include "base/mem.h"
#include "http/http_int.h"

struct http_auth {
	const struct conf *c;
	struct store *st;
	struct digest_policy *digest;
};

struct http_auth *http_auth_create(const struct conf *c, struct store *st)
{
	struct http_auth *a = xcalloc(1, sizeof(*a));

	a->c = c;
	a->st = st;
	a->digest = digest_policy_create(c);
	return a;
}

void http_auth_destroy(struct http_auth *a)
{
	if (!a)
		return;
	digest_policy_destroy(a->digest);
	free(a);
}

enum xcap_role http_auth_role(const struct http_auth *a, const char *identity)
{
	return xcap_role_of(a->c, identity);
}

static bool peer_is_trusted(const struct http_auth *a, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char addr[INET6_ADDRSTRLEN];
	const struct sockaddr *sa;

	if (!a->c->auth_trusted_peers.count || !ci || !ci->client_addr)
		return false;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr, sizeof(addr));
	else
		return false;
	return conf_list_has(&a->c->auth_trusted_peers, addr);
}

static enum http_auth_outcome check_digest(struct http_auth *a, const char *header, const char *method,
					   const char *raw_uri, const char *realm, char *identity,
					   const char **why)
{
	switch (digest_verify(a->digest, a->st, header, method, raw_uri, realm, identity, why)) {
	case DIGEST_VERDICT_OK:
		return HTTP_AUTH_OK;
	case DIGEST_VERDICT_STALE:
		return HTTP_AUTH_STALE;
	case DIGEST_VERDICT_CHALLENGE:
		break;
	}
	return HTTP_AUTH_CHALLENGE;
}

static enum http_auth_outcome check_basic(struct http_auth *a, const char *header, const char *realm,
					  char *identity, const char **why)
{
	struct base64_decode_ctx ctx;
	char decoded[1024];
	size_t len = sizeof(decoded) - 1;
	const char *b64 = header + 5;
	char *colon;
	char xui[STORE_XUI_MAX];
	uint8_t ha1[32], stored[32];
	unsigned char diff = 0;

	while (*b64 == ' ')
		b64++;
	if (strlen(b64) > 1300) {
		*why = "Basic credentials too long";
		return HTTP_AUTH_CHALLENGE;
	}
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &len, (uint8_t *)decoded, strlen(b64), b64) ||
	    !base64_decode_final(&ctx)) {
		*why = "malformed Basic credentials";
		return HTTP_AUTH_CHALLENGE;
	}
	decoded[len] = '\0';
	colon = strchr(decoded, ':');
	if (!colon || memchr(decoded, '\0', len)) {
		*why = "malformed Basic credentials";
		return HTTP_AUTH_CHALLENGE;
	}
	*colon = '\0';
	if (!digest_user_ha1(a->st, realm, decoded, DIGEST_ALGO_SHA256, stored, xui, sizeof(xui))) {
		explicit_bzero(decoded, sizeof(decoded));
		*why = "unknown user";
		return HTTP_AUTH_CHALLENGE;
	}
	digest_ha1(DIGEST_ALGO_SHA256, decoded, realm, colon + 1, ha1);
	for (size_t i = 0; i < sizeof(ha1); i++)
		diff |= (unsigned char)(ha1[i] ^ stored[i]);
	explicit_bzero(decoded, sizeof(decoded));
	explicit_bzero(stored, sizeof(stored));
	if (diff) {
		*why = "wrong password";
		return HTTP_AUTH_CHALLENGE;
	}
	snprintf(identity, STORE_XUI_MAX, "%s", xui);
	return HTTP_AUTH_OK;
}

enum http_auth_outcome http_auth_check(struct http_auth *a, struct MHD_Connection *conn, const char *method,
				       const char *raw_uri, const char *realm, bool is_tls, char *identity,
				       enum xcap_role *role, const char **why)
{
	const char *h;
	enum http_auth_outcome outcome = HTTP_AUTH_CHALLENGE;
	char default_realm[STORE_REALM_MAX];

	*why = "no credentials";
	if (peer_is_trusted(a, conn)) {
		h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-3GPP-Asserted-Identity");
		if (!h)
			h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-XCAP-Asserted-Identity");
		if (h) {
			if (!auth_identity_uri(h, identity, STORE_XUI_MAX)) {
				*why = "malformed asserted identity";
				return HTTP_AUTH_CHALLENGE;
			}
			*role = http_auth_role(a, identity);
			return HTTP_AUTH_OK;
		}
	}
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h && !realm[0]) {
		digest_default_realm(a->st, a->c, default_realm, sizeof(default_realm));
		realm = default_realm;
	}
	if (h && strncasecmp(h, "Digest ", 7) == 0) {
		outcome = check_digest(a, h, method, raw_uri, realm, identity, why);
	} else if (h && strncasecmp(h, "Basic ", 6) == 0) {
		if (is_tls || a->c->auth_allow_basic)
			outcome = check_basic(a, h, realm, identity, why);
		else
			*why = "Basic authentication refused over plain HTTP";
	} else if (h) {
		*why = "unsupported authentication scheme";
	}
	if (outcome == HTTP_AUTH_OK)
		*role = http_auth_role(a, identity);
	return outcome;
}

void http_auth_add_challenges(struct http_auth *a, struct MHD_Response *resp, const char *realm,
			      bool is_stale, bool is_tls)
{
	char value[1024];
	char default_realm[STORE_REALM_MAX];

	if (!realm[0]) {
		digest_default_realm(a->st, a->c, default_realm, sizeof(default_realm));
		realm = default_realm;
	}
	for (size_t i = 0; i < a->digest->algo_count; i++) {
		digest_challenge(a->digest, a->digest->algos[i], realm, is_stale, value, sizeof(value));
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, value);
	}
	if (is_tls || a->c->auth_allow_basic) {
		snprintf(value, sizeof(value), "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, value);
	}
}
