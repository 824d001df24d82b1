/* SPDX-License-Identifier: MIT */
/* Unit tests for If-Match / If-None-Match evaluation (RFC 7232 as RFC 4825 uses it). */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "xcap/xcap.h"
#include "unit.h"

#define OK XCAP_PRECOND_OK
#define NM XCAP_PRECOND_NOT_MODIFIED
#define PF XCAP_PRECOND_FAILED

START_TEST(no_headers)
{
	ck_assert_int_eq(xcap_precond_eval(NULL, NULL, "e1", true), OK);
	ck_assert_int_eq(xcap_precond_eval(NULL, NULL, NULL, false), OK);
}
END_TEST

START_TEST(if_match)
{
	ck_assert_int_eq(xcap_precond_eval("\"e1\"", NULL, "e1", false), OK);
	ck_assert_int_eq(xcap_precond_eval("e1", NULL, "e1", false), OK); /* unquoted, as some clients send */
	ck_assert_int_eq(xcap_precond_eval("\"e2\"", NULL, "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval("\"e2\"", NULL, "e1", true), PF);
	ck_assert_int_eq(xcap_precond_eval("\"e2\", \"e1\"", NULL, "e1", false), OK);
	ck_assert_int_eq(xcap_precond_eval("\"e2\",e1", NULL, "e1", false), OK);
	ck_assert_int_eq(xcap_precond_eval("*", NULL, "e1", false), OK);
	ck_assert_int_eq(xcap_precond_eval(" * ", NULL, "e1", false), OK);
	/* No current document: If-Match never holds (RFC 7232 §3.1). */
	ck_assert_int_eq(xcap_precond_eval("*", NULL, NULL, false), PF);
	ck_assert_int_eq(xcap_precond_eval("\"e1\"", NULL, NULL, true), PF);
	/* Strong comparison: a weak tag never matches. */
	ck_assert_int_eq(xcap_precond_eval("W/\"e1\"", NULL, "e1", false), PF);
	/* A prefix is not a match. */
	ck_assert_int_eq(xcap_precond_eval("\"e\"", NULL, "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval("\"e10\"", NULL, "e1", false), PF);
}
END_TEST

START_TEST(if_none_match)
{
	ck_assert_int_eq(xcap_precond_eval(NULL, "\"e1\"", "e1", true), NM);
	ck_assert_int_eq(xcap_precond_eval(NULL, "\"e1\"", "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval(NULL, "W/\"e1\"", "e1", true), NM); /* weak comparison */
	ck_assert_int_eq(xcap_precond_eval(NULL, "\"e2\"", "e1", true), OK);
	ck_assert_int_eq(xcap_precond_eval(NULL, "*", "e1", true), NM);
	ck_assert_int_eq(xcap_precond_eval(NULL, "*", "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval(NULL, "*", NULL, false), OK); /* create-only PUT */
	ck_assert_int_eq(xcap_precond_eval(NULL, "\"a\", \"e1\"", "e1", true), NM);
}
END_TEST

START_TEST(both_headers)
{
	/* If-Match is evaluated first (RFC 7232 §6). */
	ck_assert_int_eq(xcap_precond_eval("\"e2\"", "\"e1\"", "e1", true), PF);
	ck_assert_int_eq(xcap_precond_eval("\"e1\"", "\"e1\"", "e1", true), NM);
	ck_assert_int_eq(xcap_precond_eval("\"e1\"", "\"e2\"", "e1", false), OK);
}
END_TEST

START_TEST(malformed_lists_terminate)
{
	ck_assert_int_eq(xcap_precond_eval("\"unterminated", NULL, "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval(",,,", NULL, "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval("", NULL, "e1", false), PF);
	ck_assert_int_eq(xcap_precond_eval("W/", NULL, "e1", false), PF);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_precond");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, no_headers);
	tcase_add_test(tc, if_match);
	tcase_add_test(tc, if_none_match);
	tcase_add_test(tc, both_headers);
	tcase_add_test(tc, malformed_lists_terminate);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
