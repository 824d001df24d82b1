/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the element API of src/xml/xml.h ("trees"): iteration by
 * namespace and name, text and attributes, removal, copies between
 * documents with their namespace declarations, and serialization.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "xml/xml.h"
#include "unit.h"

#define NS "urn:test"

static struct xml_doc *parse(const char *s)
{
	struct xml_doc *d = NULL;
	struct xml_issue issue;

	ck_assert_msg(xml_parse(s, strlen(s), 32, &d, &issue) == XDMS_ERR_OK, "parse: %s", issue.phrase);
	return d;
}

START_TEST(reading)
{
	struct xml_doc *d = parse("<r xmlns=\"" NS "\" xmlns:o=\"urn:o\" kind=\"k\"><!-- c -->text<a o:x=\"1\">A&amp;"
				  "<b>B</b></a><o:a/><a y=\"2\"/><c xmlns=\"\"/></r>");
	struct xml_node *r = xml_doc_root_elem(d), *a, *n;
	char *s;
	int count = 0;

	ck_assert(xml_node_is(r, NS, "r"));
	ck_assert(!xml_node_is(r, "urn:o", "r"));
	ck_assert(!xml_node_is(NULL, NULL, NULL));
	s = xml_node_attr(r, "kind");
	ck_assert_str_eq(s, "k");
	free(s);
	ck_assert_ptr_null(xml_node_attr(r, "none"));
	a = xml_node_child(r, NS, "a");
	ck_assert_ptr_nonnull(a);
	s = xml_node_attr(a, "x"); /* whatever its namespace */
	ck_assert_str_eq(s, "1");
	free(s);
	s = xml_node_text(a);
	ck_assert_str_eq(s, "A&B");
	free(s);
	/* Elements only; in the namespace asked for; NULL: any. */
	for (n = xml_node_child(r, NS, "a"); n; n = xml_node_next(n, NS, "a"))
		count++;
	ck_assert_int_eq(count, 2);
	count = 0;
	for (n = xml_node_child(r, NULL, NULL); n; n = xml_node_next(n, NULL, NULL))
		count++;
	ck_assert_int_eq(count, 4);
	ck_assert_str_eq(xml_node_name(xml_node_child(r, "urn:o", NULL)), "a");
	ck_assert_ptr_null(xml_node_child(r, NS, "c")); /* no namespace */
	ck_assert_ptr_nonnull(xml_node_child(r, NULL, "c"));
	ck_assert_ptr_null(xml_node_child(NULL, NULL, NULL));
	ck_assert_ptr_null(xml_node_text(NULL));
	xml_doc_free(d);
}
END_TEST

START_TEST(trimming)
{
	char a[] = " \t\r\n token \n", b[] = "plain", c[] = " \n\t ", d[] = "in  side";

	ck_assert_str_eq(xml_trim(a), "token");
	ck_assert_str_eq(xml_trim(b), "plain");
	ck_assert_str_eq(xml_trim(c), "");
	ck_assert_str_eq(xml_trim(d), "in  side");
	ck_assert_ptr_null(xml_trim(NULL));
}
END_TEST

START_TEST(editing)
{
	struct xml_doc *to = parse("<r xmlns=\"" NS "\"><g><e pref=\"1\"/></g><old/></r>");
	struct xml_doc *from = parse("<r xmlns=\"" NS "\"><e pref=\"1\"><v>1</v></e><x:new xmlns:x=\"" NS "\"/></r>");
	struct xml_node *r = xml_doc_root_elem(to), *g = xml_node_child(r, NS, "g"), *e, *copy;
	char *s;
	size_t len;

	e = xml_node_child(xml_doc_root_elem(from), NS, "e");
	copy = xml_node_append_copy(g, e);
	ck_assert(xml_node_is(copy, NS, "e"));
	ck_assert_ptr_eq(xml_node_next(xml_node_child(g, NS, "e"), NS, "e"), copy);
	xml_node_set_attr(copy, "pref", "2");
	xml_node_replace_copy(xml_node_child(r, NS, "old"), xml_node_child(xml_doc_root_elem(from), NS, "new"));
	xml_node_remove(xml_node_child(g, NS, "e"));
	s = xml_doc_serialize(to, &len);
	ck_assert_uint_eq(strlen(s), len);
	/* A copy uses the declarations in scope where it lands; one of its own
	 * with another prefix stays. */
	ck_assert_msg(strstr(s, "<r xmlns=\"" NS "\"><g><e pref=\"2\"><v>1</v></e></g><x:new xmlns:x=\"" NS
				"\"/></r>") != NULL,
		      "got %s", s);
	ck_assert_msg(!strncmp(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38), "got %s", s);
	free(s);
	xml_doc_free(to);
	xml_doc_free(from);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xml_tree");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_add_test(tc, reading);
	tcase_add_test(tc, editing);
	tcase_add_test(tc, trimming);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
