/* SPDX-License-Identifier: MIT */
/* Unit tests for src/base: the error table and the bounded buffer. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "unit.h"

START_TEST(err_table_complete)
{
	for (int e = 0; e < XDMS_ERR__COUNT; e++) {
		ck_assert_ptr_nonnull(xdms_err_str((enum xdms_err)e));
		ck_assert_str_ne(xdms_err_name((enum xdms_err)e), "UNKNOWN");
	}
	ck_assert_str_eq(xdms_err_name(XDMS_ERR_NOTFOUND), "NOTFOUND");
	ck_assert_str_eq(xdms_err_str((enum xdms_err)999), "unknown error");
}
END_TEST

START_TEST(buf_respects_max)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert_int_eq(buf_append(&b, "12345", 5), XDMS_ERR_OK);
	ck_assert_int_eq(buf_append(&b, "6789", 4), XDMS_ERR_TOOBIG);
	/* A refused append leaves the buffer as it was. */
	ck_assert_uint_eq(b.len, 5);
	ck_assert_str_eq(b.data, "12345");
	ck_assert_int_eq(buf_append(&b, "678", 3), XDMS_ERR_OK);
	ck_assert_str_eq(b.data, "12345678");
	ck_assert_int_eq(buf_printf(&b, "%d", 9), XDMS_ERR_TOOBIG);
	buf_cleanup(&b);
}
END_TEST

START_TEST(buf_escapes_xml)
{
	struct buf b;
	const char *in = "a<b>&\"c'";

	buf_init(&b, 1024);
	ck_assert_int_eq(buf_append_xml_escaped(&b, in, strlen(in)), XDMS_ERR_OK);
	ck_assert_str_eq(b.data, "a&lt;b&gt;&amp;&quot;c&apos;");
	buf_cleanup(&b);
}
END_TEST

START_TEST(buf_take_hands_over)
{
	struct buf b;
	size_t len;
	char *s;

	buf_init(&b, 64);
	s = buf_take(&b, &len);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	free(s);
	ck_assert_int_eq(buf_append_str(&b, "xyz"), XDMS_ERR_OK);
	s = buf_take(&b, &len);
	ck_assert_str_eq(s, "xyz");
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_null(b.data);
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("base");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, err_table_complete);
	tcase_add_test(tc, buf_respects_max);
	tcase_add_test(tc, buf_escapes_xml);
	tcase_add_test(tc, buf_take_hands_over);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
