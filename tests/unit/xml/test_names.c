/* SPDX-License-Identifier: MIT */
/* Unit tests for XML names (src/xml/xml.h): NCNames and free prefixes. */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "xml/xml.h"
#include "unit.h"

START_TEST(ncnames)
{
	static const char *const good[] = { "a", "_", "d0", "cab-pcc", "x.y_z", "xml", "XMLish", "xmlns" };
	static const char *const bad[] = { "", "0a", "-a", ".a", "a:b", "a b", "é", "a/", "a@" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(xml_is_ncname(good[i]), "%s is an NCName", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!xml_is_ncname(bad[i]), "%s is not an NCName", bad[i]);
	ck_assert(!xml_is_ncname(NULL));
}
END_TEST

START_TEST(free_prefixes)
{
	/* Namespaces in XML 1.0 §3: "xml" in any case starts a reserved prefix. */
	ck_assert(xml_is_free_prefix("p"));
	ck_assert(xml_is_free_prefix("d12"));
	ck_assert(xml_is_free_prefix("xm"));
	ck_assert(xml_is_free_prefix("axml"));
	ck_assert(!xml_is_free_prefix("xml"));
	ck_assert(!xml_is_free_prefix("xmlns"));
	ck_assert(!xml_is_free_prefix("XMLfoo"));
	ck_assert(!xml_is_free_prefix("xMl1"));
	ck_assert(!xml_is_free_prefix("1p"));
	ck_assert(!xml_is_free_prefix(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xml_names");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, ncnames);
	tcase_add_test(tc, free_prefixes);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
