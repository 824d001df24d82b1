/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for two decisions src/xcap makes for the whole server: the
 * percent-encoding of XCAP paths (xcap_percent_encode) and the role of an
 * identity (xcap_role_of).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "conf/conf.h"
#include "xcap/xcap.h"
#include "unit.h"

static char *encode(const char *s, size_t len, size_t max, enum xdms_err *err)
{
	struct buf b;

	buf_init(&b, max);
	*err = xcap_percent_encode(&b, s, len);
	return buf_take(&b, NULL);
}

START_TEST(percent_encoding)
{
	enum xdms_err err;
	char *s;

	/* RFC 3986 pchar and "/" stay, "(" and ")" included. */
	s = encode("AZaz09-._~!$&'()*+,;=:@/", 24, 100, &err);
	ck_assert_int_eq(err, XDMS_ERR_OK);
	ck_assert_str_eq(s, "AZaz09-._~!$&'()*+,;=:@/");
	free(s);
	/* Everything else is %XX, upper case; NUL and non-ASCII bytes too. */
	s = encode("a b\"[1]%?#<>\\^`{|}\x01\x7f\xc3\xa9", 22, 100, &err);
	ck_assert_int_eq(err, XDMS_ERR_OK);
	ck_assert_str_eq(s, "a%20b%22%5B1%5D%25%3F%23%3C%3E%5C%5E%60%7B%7C%7D%01%7F%C3%A9");
	free(s);
	s = encode("a\0b", 3, 100, &err);
	ck_assert_str_eq(s, "a%00b");
	free(s);
	/* A full buffer says so and keeps what fitted. */
	s = encode("ab cd", 5, 4, &err);
	ck_assert_int_eq(err, XDMS_ERR_TOOBIG);
	ck_assert_str_eq(s, "ab");
	free(s);
}
END_TEST

START_TEST(percent_roundtrip)
{
	char raw[256], *dec = NULL, *enc;
	enum xdms_err err;

	for (int i = 0; i < 255; i++)
		raw[i] = (char)(i + 1);
	enc = encode(raw, 255, 1024, &err);
	ck_assert_int_eq(err, XDMS_ERR_OK);
	ck_assert_int_eq(xcap_percent_decode(enc, strlen(enc), &dec), XDMS_ERR_OK);
	ck_assert_int_eq(memcmp(dec, raw, 255), 0);
	free(enc);
	free(dec);
}
END_TEST

START_TEST(roles)
{
	struct conf c;
	char *why = NULL;

	conf_init(&c);
	ck_assert_int_eq(conf_set(&c, "auth.admin_identities", "sip:admin@example.com", &why), XDMS_ERR_OK);
	ck_assert_int_eq(conf_set(&c, "auth.server_identities", "sip:iwf@example.com,sip:admin@example.com", &why),
			 XDMS_ERR_OK);
	ck_assert_int_eq(xcap_role_of(&c, "sip:admin@example.com"), XCAP_ROLE_ADMIN); /* admin first */
	ck_assert_int_eq(xcap_role_of(&c, "sip:iwf@example.com"), XCAP_ROLE_SERVER);
	ck_assert_int_eq(xcap_role_of(&c, "sip:alice@example.com"), XCAP_ROLE_USER);
	ck_assert_int_eq(xcap_role_of(&c, "sip:IWF@example.com"), XCAP_ROLE_USER);
	conf_cleanup(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_paths");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, percent_encoding);
	tcase_add_test(tc, percent_roundtrip);
	tcase_add_test(tc, roles);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
