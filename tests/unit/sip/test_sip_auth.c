/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for what the SIP client reads from the remote side
 * (src/sip/auth.c): WWW-Authenticate challenges and the answers to them,
 * against the published examples of RFC 2069, RFC 2617 and RFC 7616, and
 * Subscription-State values. The functions are internal to src/sip, so
 * this test includes sip_int.h.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "sip/sip_int.h"
#include "unit.h"

static char *answer(const struct sip_challenge *ch, const char *user, const char *pass, const char *method,
		    const char *uri, uint32_t nc, const char *cnonce)
{
	static char out[2048];
	struct buf b;

	buf_init(&b, sizeof(out) - 1);
	ck_assert_int_eq(sip_authorization_make(ch, user, pass, method, uri, nc, cnonce, &b), XDMS_ERR_OK);
	ck_assert_uint_lt(b.len, sizeof(out));
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	buf_cleanup(&b);
	return out;
}

START_TEST(rfc2617_md5_qop_auth)
{
	struct sip_challenge ch;
	const char *a;

	ck_assert(sip_challenge_parse("Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
				      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
				      "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
				      &ch));
	ck_assert_str_eq(ch.realm, "testrealm@host.com");
	ck_assert_str_eq(ch.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
	ck_assert_str_eq(ch.opaque, "5ccc069c403ebaf9f0171e9517f40e41");
	ck_assert_int_eq(ch.algo, DIGEST_ALGO_MD5);
	ck_assert(ch.has_qop && ch.has_qop_auth && ch.has_opaque && !ch.is_stale);
	a = answer(&ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
	ck_assert_msg(strstr(a, "response=\"6629fae49393a05397450978507c4ef1\""), "%s", a);
	ck_assert_msg(strstr(a, "qop=auth, nc=00000001") && strstr(a, "cnonce=\"0a4f113b\""), "%s", a);
	ck_assert_msg(strstr(a, "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""), "%s", a);
	ck_assert_msg(!strncmp(a, "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", ", 53), "%s", a);
}
END_TEST

START_TEST(rfc7616_sha256_qop_auth)
{
	struct sip_challenge ch;
	const char *a;

	ck_assert(sip_challenge_parse("Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n"
				      " algorithm=SHA-256,\r\n nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n"
				      " opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
				      &ch));
	ck_assert_int_eq(ch.algo, DIGEST_ALGO_SHA256);
	a = answer(&ch, "Mufasa", "Circle of Life", "GET", "/dir/index.html", 1,
		   "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
	ck_assert_msg(strstr(a, "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""), "%s",
		      a);
	ck_assert_msg(strstr(a, "algorithm=SHA-256"), "%s", a);
}
END_TEST

START_TEST(rfc2069_without_qop)
{
	struct sip_challenge ch;
	const char *a;

	ck_assert(sip_challenge_parse("Digest realm=\"testrealm@host.com\", "
				      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
				      "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
				      &ch));
	ck_assert(!ch.has_qop);
	a = answer(&ch, "Mufasa", "CircleOfLife", "GET", "/dir/index.html", 1, "unused");
	ck_assert_msg(strstr(a, "response=\"1949323746fe6a43ef61f9606e7febea\""), "%s", a);
	ck_assert_msg(!strstr(a, "qop=") && !strstr(a, "cnonce=") && !strstr(a, "nc="), "%s", a);
}
END_TEST

START_TEST(quoting_both_ways)
{
	struct sip_challenge ch;
	const char *a;

	ck_assert(sip_challenge_parse("DIGEST realm=\"a \\\"b\\\" c\", nonce=n1, stale=TRUE, qop=auth, domain=\"x y\"",
				      &ch));
	ck_assert_str_eq(ch.realm, "a \"b\" c");
	ck_assert_str_eq(ch.nonce, "n1");
	ck_assert(ch.is_stale && ch.has_qop_auth && !ch.has_opaque);
	a = answer(&ch, "al\"ice", "pw", "SUBSCRIBE", "sip:alice@example.com", 2, "c1");
	ck_assert_msg(!strncmp(a, "Digest username=\"al\\\"ice\", realm=\"a \\\"b\\\" c\", nonce=\"n1\", "
				  "uri=\"sip:alice@example.com\", ", 85),
		      "%s", a);
	ck_assert_msg(strstr(a, "nc=00000002"), "%s", a);
}
END_TEST

START_TEST(unusable_challenges)
{
	static const char *const bad[] = {
		"Basic realm=\"x\"",
		"Digest",
		"Digestrealm=\"x\", nonce=\"y\"",
		"Digest nonce=\"y\"",
		"Digest realm=\"x\"",
		"Digest realm=\"x\", nonce=\"y\", algorithm=MD5-sess",
		"Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512-256",
		"Digest realm=\"x\", nonce=\"y\", qop=\"auth-int\"",
		"Digest realm=\"x\", nonce=\"y",
		"Digest realm=\"x\" nonce",
		"Digest realm=, nonce=\"y\"",
	};
	struct sip_challenge ch;
	char big[600];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!sip_challenge_parse(bad[i], &ch), "accepted: %s", bad[i]);
	snprintf(big, sizeof(big), "Digest realm=\"x\", nonce=\"%0*d\"", SIP_CHALLENGE_FIELD, 7);
	ck_assert(!sip_challenge_parse(big, &ch));
	snprintf(big, sizeof(big), "Digest realm=\"x\", nonce=\"%0*d\"", SIP_CHALLENGE_FIELD - 1, 7);
	ck_assert(sip_challenge_parse(big, &ch));
}
END_TEST

START_TEST(answer_refuses_line_breaks_and_stops_at_its_limit)
{
	struct sip_challenge ch;
	struct buf b;

	ck_assert(sip_challenge_parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth\"", &ch));
	buf_init(&b, 4096);
	ck_assert_int_eq(sip_authorization_make(&ch, "a\r\nX: y", "pw", "SUBSCRIBE", "sip:a@b", 1, "c", &b),
			 XDMS_ERR_INVAL);
	ck_assert_int_eq(sip_authorization_make(&ch, "a", "pw", "SUBSCRIBE", "sip:a@b\r\n", 1, "c", &b),
			 XDMS_ERR_INVAL);
	buf_cleanup(&b);
	buf_init(&b, 40);
	ck_assert_int_eq(sip_authorization_make(&ch, "a", "pw", "SUBSCRIBE", "sip:a@b", 1, "c", &b), XDMS_ERR_TOOBIG);
	buf_cleanup(&b);
}
END_TEST

START_TEST(control_characters_make_a_challenge_unusable)
{
	struct sip_challenge ch;

	ck_assert(!sip_challenge_parse("Digest realm=\"a\r\nX: y\", nonce=\"n\"", &ch));
	ck_assert(!sip_challenge_parse("Digest realm=\"a\", nonce=n\001", &ch));
	ck_assert(sip_challenge_parse("Digest realm=\"a\tb\", nonce=n", &ch));
}
END_TEST

START_TEST(subscription_state_values)
{
	struct sip_sub_state st;

	ck_assert(sip_sub_state_parse("active;expires=600", &st));
	ck_assert_str_eq(st.state, "active");
	ck_assert_int_eq(st.expires, 600);
	ck_assert_int_eq(st.retry_after, -1);
	ck_assert_str_eq(st.reason, "");
	ck_assert(sip_sub_state_parse(" terminated ; reason=probation ;retry-after=30;x=1", &st));
	ck_assert_str_eq(st.state, "terminated");
	ck_assert_str_eq(st.reason, "probation");
	ck_assert_int_eq(st.retry_after, 30);
	ck_assert_int_eq(st.expires, -1);
	ck_assert(sip_sub_state_parse("pending;EXPIRES=12;Reason=x", &st));
	ck_assert_int_eq(st.expires, 12);
	ck_assert_str_eq(st.reason, "x");
	/* Numbers that are not, or too large: absent. */
	ck_assert(sip_sub_state_parse("active;expires=12x;retry-after=99999999999", &st));
	ck_assert_int_eq(st.expires, -1);
	ck_assert_int_eq(st.retry_after, -1);
	/* A reason that is not a token is dropped; a state that is not one refuses the value. */
	ck_assert(sip_sub_state_parse("terminated;reason=\"a b\"", &st));
	ck_assert_str_eq(st.reason, "");
	ck_assert(!sip_sub_state_parse("", &st));
	ck_assert(!sip_sub_state_parse(";expires=5", &st));
	ck_assert(!sip_sub_state_parse("act\"ive", &st));
	ck_assert(!sip_sub_state_parse("averyveryveryveryverylongstatetoken", &st));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sip_auth");
	TCase *tc = tcase_create("digest client");

	tcase_add_test(tc, rfc2617_md5_qop_auth);
	tcase_add_test(tc, rfc7616_sha256_qop_auth);
	tcase_add_test(tc, rfc2069_without_qop);
	tcase_add_test(tc, quoting_both_ways);
	tcase_add_test(tc, unusable_challenges);
	tcase_add_test(tc, answer_refuses_line_breaks_and_stops_at_its_limit);
	tcase_add_test(tc, control_characters_make_a_challenge_unusable);
	tcase_add_test(tc, subscription_state_values);
	suite_add_tcase(s, tc);
	return unit_run(s, CK_FORK) ? 1 : 0;
}
