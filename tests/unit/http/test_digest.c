/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for Digest authentication (RFC 7616): parsing, the response
 * computation against the RFC's own example (§3.9.1), and nonce reuse,
 * replay, expiry and forgery.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"
#include "unit.h"

#define RFC_HEADER(algo, response)                                                        \
	"Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", " \
	"algorithm=" algo ", nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, " \
	"cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"" response "\", " \
	"opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""

START_TEST(rfc7616_example_md5_and_sha256)
{
	struct digest_credentials cr;
	uint8_t ha1[32];

	ck_assert_int_eq(digest_parse(RFC_HEADER("MD5", "8ca523f5e9506fed4657c9700eebdbec"), NULL, &cr), XDMS_ERR_OK);
	ck_assert_str_eq(cr.username, "Mufasa");
	ck_assert_uint_eq(cr.nc, 1);
	ck_assert_int_eq(cr.algo, DIGEST_ALGO_MD5);
	digest_ha1(DIGEST_ALGO_MD5, "Mufasa", "http-auth@example.org", "Circle of Life", ha1);
	ck_assert(digest_response_ok(&cr, "GET", ha1));
	ck_assert(!digest_response_ok(&cr, "PUT", ha1));

	ck_assert_int_eq(digest_parse(RFC_HEADER("SHA-256",
						 "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
				      NULL, &cr),
			 XDMS_ERR_OK);
	ck_assert_int_eq(cr.algo, DIGEST_ALGO_SHA256);
	digest_ha1(DIGEST_ALGO_SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", ha1);
	ck_assert(digest_response_ok(&cr, "GET", ha1));
	digest_ha1(DIGEST_ALGO_SHA256, "Mufasa", "http-auth@example.org", "circle of life", ha1);
	ck_assert(!digest_response_ok(&cr, "GET", ha1));
}
END_TEST

START_TEST(parse_refusals)
{
	struct digest_credentials cr;

	ck_assert_int_eq(digest_parse("Basic Zm9vOmJhcg==", NULL, &cr), XDMS_ERR_PARSE);
	/* No qop: the RFC 2069 form without replay protection is refused. */
	ck_assert_int_eq(digest_parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"", NULL, &cr),
			 XDMS_ERR_PARSE);
	ck_assert_int_eq(digest_parse(RFC_HEADER("SHA-512-256", "00"), NULL, &cr), XDMS_ERR_PARSE);
	ck_assert_int_eq(digest_parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", "
				      "qop=auth, nc=1, cnonce=\"c\"",
				      NULL, &cr),
			 XDMS_ERR_PARSE); /* nc must be 8 hex digits */
	ck_assert_int_eq(digest_parse("Digest username=\"a\", realm", NULL, &cr), XDMS_ERR_PARSE);
}
END_TEST

#define RAW_TARGET "/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list[@name=\"friends\"]"
#define RAW_HEADER(uri)                                                                            \
	"Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"" uri "\", response=\"x\", " \
	"algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\""

START_TEST(parse_raw_quotes_in_uri)
{
	struct digest_credentials cr;

	/* urllib and curl -g put the request-target between quotes as it is. */
	ck_assert_int_eq(digest_parse(RAW_HEADER(RAW_TARGET), RAW_TARGET, &cr), XDMS_ERR_OK);
	ck_assert_str_eq(cr.uri, RAW_TARGET);
	ck_assert_str_eq(cr.response, "x");
	ck_assert_str_eq(cr.cnonce, "c");
	/* As the last parameter too. */
	ck_assert_int_eq(digest_parse("Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", "
				      "response=\"x\", qop=auth, nc=00000001, cnonce=\"c\", uri=\"" RAW_TARGET "\"",
				      RAW_TARGET, &cr),
			 XDMS_ERR_OK);
	ck_assert_str_eq(cr.uri, RAW_TARGET);
	/* The same bytes escaped as a quoted-string. */
	ck_assert_int_eq(digest_parse(RAW_HEADER("/a/list[@name=\\\"f\\\"]"), "/a/list[@name=\"f\"]", &cr),
			 XDMS_ERR_OK);
	ck_assert_str_eq(cr.uri, "/a/list[@name=\"f\"]");
	/* Without the request-target to match, or another one, the raw form is malformed. */
	ck_assert_int_eq(digest_parse(RAW_HEADER(RAW_TARGET), NULL, &cr), XDMS_ERR_PARSE);
	ck_assert_int_eq(digest_parse(RAW_HEADER(RAW_TARGET), "/other", &cr), XDMS_ERR_PARSE);
	/* A prefix of the uri is not the uri. */
	ck_assert_int_eq(digest_parse(RAW_HEADER(RAW_TARGET), "/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list[@name=", &cr),
			 XDMS_ERR_PARSE);
}
END_TEST

START_TEST(nonce_reuse_and_replay)
{
	struct digest_nonces *n = digest_nonces_create((const uint8_t *)"k", 1, 300);
	char nonce[96];

	digest_nonce_make(n, "example.com", 1000, nonce, sizeof(nonce));
	ck_assert_uint_eq(strlen(nonce), 64);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 1, 1000), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 2, 1001), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 2, 1001), DIGEST_NONCE_REPLAY);
	/* Out of order within the window is fine, once. */
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 5, 1002), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 4, 1002), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 4, 1002), DIGEST_NONCE_REPLAY);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 0, 1002), DIGEST_NONCE_REPLAY);
	/* Bound to the realm and to this server's key. */
	ck_assert_int_eq(digest_nonce_use(n, nonce, "other.example", 6, 1002), DIGEST_NONCE_BAD);
	nonce[63] = nonce[63] == '0' ? '1' : '0';
	ck_assert_int_eq(digest_nonce_use(n, nonce, "example.com", 6, 1002), DIGEST_NONCE_BAD);
	ck_assert_int_eq(digest_nonce_use(n, "zz", "example.com", 1, 1002), DIGEST_NONCE_BAD);
	digest_nonces_destroy(n);
}
END_TEST

/* A nonce whose slot in the replay table went to another nonce must not
 * get in again with nc 1: that is how a captured first request would be
 * replayed. */
START_TEST(nonce_evicted_cannot_replay_nc1)
{
	struct digest_nonces *n = digest_nonces_create((const uint8_t *)"k", 1, 300);
	char first[96], other[96];

	digest_nonce_make(n, "r", 1000, first, sizeof(first));
	ck_assert_int_eq(digest_nonce_use(n, first, "r", 1, 1000), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, first, "r", 1, 1000), DIGEST_NONCE_REPLAY);
	/* Enough later nonces to push it out of its slot (8,192 slots: the chance
	 * that none of 100,000 lands on it is below 1e-5). */
	for (int i = 0; i < 100000; i++) {
		digest_nonce_make(n, "r", 1001, other, sizeof(other));
		ck_assert_int_eq(digest_nonce_use(n, other, "r", 1, 1001), DIGEST_NONCE_OK);
	}
	ck_assert_int_ne(digest_nonce_use(n, first, "r", 1, 1002), DIGEST_NONCE_OK);
	/* A nonce made after the eviction still starts normally. */
	digest_nonce_make(n, "r", 1003, other, sizeof(other));
	ck_assert_int_eq(digest_nonce_use(n, other, "r", 1, 1003), DIGEST_NONCE_OK);
	digest_nonces_destroy(n);
}
END_TEST

START_TEST(nonce_expiry)
{
	struct digest_nonces *n = digest_nonces_create(NULL, 0, 60);
	char nonce[96];

	digest_nonce_make(n, "r", 1000, nonce, sizeof(nonce));
	ck_assert_int_eq(digest_nonce_use(n, nonce, "r", 1, 1060), DIGEST_NONCE_OK);
	ck_assert_int_eq(digest_nonce_use(n, nonce, "r", 2, 1061), DIGEST_NONCE_STALE);
	/* A nonce from the future is not trusted either. */
	digest_nonce_make(n, "r", 5000, nonce, sizeof(nonce));
	ck_assert_int_eq(digest_nonce_use(n, nonce, "r", 1, 4000), DIGEST_NONCE_STALE);
	digest_nonces_destroy(n);
}
END_TEST

START_TEST(credentials_fill)
{
	struct store_user_realm r;
	uint8_t expect[32];

	digest_credentials_fill(&r, "example.com", "alice", "sip:alice@example.com", "pw");
	ck_assert_str_eq(r.realm, "example.com");
	digest_ha1(DIGEST_ALGO_MD5, "alice", "example.com", "pw", expect);
	ck_assert_mem_eq(r.ha1_md5_user, expect, 16);
	digest_ha1(DIGEST_ALGO_SHA256, "sip:alice@example.com", "example.com", "pw", expect);
	ck_assert_mem_eq(r.ha1_sha256_xui, expect, 32);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_digest");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, rfc7616_example_md5_and_sha256);
	tcase_add_test(tc, parse_refusals);
	tcase_add_test(tc, parse_raw_quotes_in_uri);
	tcase_add_test(tc, nonce_reuse_and_replay);
	tcase_add_test(tc, nonce_evicted_cannot_replay_nc1);
	tcase_add_test(tc, nonce_expiry);
	tcase_add_test(tc, credentials_fill);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
