/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the scan of stored documents (xml_scan_build_stored): on
 * every document the checking scanner (xml_scan_build) accepts, both give the
 * same scan, field by field; on malformed input the stored scanner may accept
 * what the checks would refuse, but still refuses broken structure and
 * honours the limits. The fuzz target fuzz_scan_stored does the same on
 * random input.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "xml/xml.h"
#include "unit.h"

/* Documents the checking scanner accepts. */
static const char *const good_docs[] = {
	"<a/>",
	"<a></a>",
	"<a ></a >",
	"\xef\xbb\xbf<a/>",
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a/>\n",
	"\xef\xbb\xbf<?xml version='1.0'?><a>x</a>",
	" \n<a/>\r\n\t",
	"<!-- before --><?pi data?><a/><!-- after --><?pi2?>",
	"<r xmlns=\"urn:r\" xmlns:p='urn:p' p:x=\"1\" y='2'><p:e/><e p:z=\"&amp;\"/></r>",
	"<r xmlns=\"urn:r\"><e xmlns=\"\"><f/></e><g/></r>",
	"<r xmlns:p=\"urn:1\"><a xmlns:p=\"urn:2\"><p:b/></a><p:c/></r>",
	"<r xmlns:p=\"urn:1\"><a xmlns:p=\"\"><p:b/></a></r>",
	"<r xmlns:xml=\"" XML_NS_XML "\" xml:lang=\"en\"><q:unbound q:a=\"1\"/></r>",
	"<r xmlns=\"urn:&#x72;&amp;&#114;\" xmlns:p=\"urn:&lt;p&gt;\"><p:a/></r>",
	"<r>text &lt; &gt; &amp; &quot; &apos; &#65; &#x1F600; and more</r>",
	"<r a=\"&#9;&#10;&#13;\" b='\t\n\r' c=\"it's\" d='say \"hi\"'>\r\n</r>",
	"<r><![CDATA[ <not> &a tag; ]] ]]><e/><![CDATA[]]></r>",
	"<r><!-- a - b -><- c --><e/></r>",
	"<r><?target with <odd> & bytes?><e/></r>",
	"<r>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80<\xc3\xa9l\xc3\xa9ment attr\xc3\xa9=\"\xe2\x82\xac\"/></r>",
	"<r><a.b-c_d1/><_x/><A:B xmlns:A=\"urn:a\"/></r>",
	"<r\n\tattr\n=\n'v'\n/>",
	"<r><e></e><e/><e> </e></r>",
	"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"l\">"
	"<entry uri=\"sip:a@example.com\"><display-name>A</display-name></entry>"
	"<entry uri=\"sip:b@example.com\"><display-name>B &amp; C</display-name></entry></list></resource-lists>",
};

/* Malformed structure: both scanners refuse it. */
static const char *const bad_structure[] = {
	"",
	"<",
	"<a",
	"<a>",
	"<a></b>",
	"<a></ab>",
	"<ab></a>",
	"<a></a:b>",
	"<a><b></a></b>",
	"<a/><b/>",
	"<a x='1/>",
	"<a x=1/>",
	"<a x/>",
	"<a x='1'y='2'/>",
	"<a><!-- unterminated </a>",
	"<a><![CDATA[ unterminated </a>",
	"<a><? </a>",
	"<!DOCTYPE a><a/>",
	"<a:b:c/>",
	"<:a/>",
	"<a:/>",
	"<a>text",
	"</a>",
	"<a></a",
	"<a/ >",
	"<?xml version='1.0'?><?xml version='1.0'?><a/>",
};

/* Well-structured but failing only the checks the stored scanner skips: the
 * checking scanner refuses these, the stored one accepts them (the store
 * never holds such bytes). */
static const char *const bad_content[] = {
	"<a>&bogus;</a>",
	"<a>&#0;</a>",
	"<a>\x01</a>",
	"<a x='<'/>",
	"<a x='&nope;'/>",
	"text<a/>",
	"<a/>text",
};

static struct xml_scan *scan_with(bool is_stored, const char *s, enum xdms_err *err)
{
	struct xml_scan *scan = NULL;

	*err = is_stored ? xml_scan_build_stored(s, strlen(s), &scan) : xml_scan_build(s, strlen(s), &scan);
	return scan;
}

START_TEST(same_scan_on_good_documents)
{
	for (size_t i = 0; i < sizeof(good_docs) / sizeof(good_docs[0]); i++) {
		enum xdms_err e1, e2;
		struct xml_scan *a = scan_with(false, good_docs[i], &e1), *b = scan_with(true, good_docs[i], &e2);

		ck_assert_msg(e1 == XDMS_ERR_OK, "checking scan refused document %zu: %s", i, good_docs[i]);
		ck_assert_msg(e2 == XDMS_ERR_OK, "stored scan refused document %zu: %s", i, good_docs[i]);
		ck_assert_msg(xml_scan_same(a, b), "scans differ on document %zu: %s", i, good_docs[i]);
		ck_assert_uint_eq(a->string_count, b->string_count);
		xml_scan_free(a);
		xml_scan_free(b);
	}
}
END_TEST

START_TEST(fields_of_a_stored_scan)
{
	const char *doc = "<r xmlns=\"urn:r\" xmlns:p='urn:p'><p:e a=\"&amp;\" p:b='2'/>t&lt;<f></f></r>";
	enum xdms_err err;
	struct xml_scan *s = scan_with(true, doc, &err);
	const struct xml_scan_elem *r, *e, *f;

	ck_assert_int_eq(err, XDMS_ERR_OK);
	ck_assert_uint_eq(s->elem_count, 3);
	ck_assert_uint_eq(s->attr_count, 4);
	r = &s->elems[0];
	e = &s->elems[1];
	f = &s->elems[2];
	ck_assert_str_eq(r->ns, "urn:r");
	ck_assert_str_eq(e->ns, "urn:p");
	ck_assert_uint_eq(e->prefix_len, 1);
	ck_assert(e->is_empty);
	ck_assert_uint_eq(e->depth, 1);
	ck_assert_uint_eq(e->parent, 0);
	ck_assert_uint_eq(r->first_child, 1);
	ck_assert_uint_eq(e->next_sibling, 2);
	ck_assert_uint_eq(f->next_sibling, XML_SCAN_NONE);
	ck_assert_uint_eq(e->start, strstr(doc, "<p:e") - doc);
	ck_assert_uint_eq(f->end_start, strstr(doc, "</f>") - doc);
	ck_assert_uint_eq(r->end, strlen(doc));
	ck_assert_str_eq(s->attrs[e->attr_first].ns, "");
	ck_assert_uint_eq(s->attrs[e->attr_first].value_len, 5);
	ck_assert_str_eq(s->attrs[e->attr_first + 1].ns, "urn:p");
	xml_scan_free(s);
}
END_TEST

START_TEST(broken_structure_refused)
{
	for (size_t i = 0; i < sizeof(bad_structure) / sizeof(bad_structure[0]); i++) {
		enum xdms_err e1, e2;
		struct xml_scan *a = scan_with(false, bad_structure[i], &e1), *b = scan_with(true, bad_structure[i], &e2);

		ck_assert_msg(e1 == XDMS_ERR_PARSE && !a, "checking scan accepted %zu: %s", i, bad_structure[i]);
		ck_assert_msg(e2 == XDMS_ERR_PARSE && !b, "stored scan accepted %zu: %s", i, bad_structure[i]);
	}
}
END_TEST

START_TEST(content_checks_skipped)
{
	for (size_t i = 0; i < sizeof(bad_content) / sizeof(bad_content[0]); i++) {
		enum xdms_err e1, e2;
		struct xml_scan *a = scan_with(false, bad_content[i], &e1), *b = scan_with(true, bad_content[i], &e2);

		ck_assert_msg(e1 == XDMS_ERR_PARSE && !a, "checking scan accepted %zu: %s", i, bad_content[i]);
		ck_assert_msg(e2 == XDMS_ERR_OK && b && b->elem_count == 1, "stored scan refused %zu: %s", i,
			      bad_content[i]);
		xml_scan_free(b);
	}
}
END_TEST

START_TEST(deep_nesting_and_limits)
{
	char *doc = malloc(XML_SCAN_MAX_DEPTH * 8 + 16);
	size_t n = 0;

#define PUT(s) (memcpy(doc + n, s, sizeof(s) - 1), n += sizeof(s) - 1, doc[n] = '\0')
	enum xdms_err e1, e2;
	struct xml_scan *a, *b;

	/* The deepest nesting allowed: same scan. */
	for (unsigned i = 0; i < XML_SCAN_MAX_DEPTH; i++)
		PUT("<e>");
	for (unsigned i = 0; i < XML_SCAN_MAX_DEPTH; i++)
		PUT("</e>");
	a = scan_with(false, doc, &e1);
	b = scan_with(true, doc, &e2);
	ck_assert_int_eq(e1, XDMS_ERR_OK);
	ck_assert_int_eq(e2, XDMS_ERR_OK);
	ck_assert(xml_scan_same(a, b));
	ck_assert_uint_eq(b->elems[XML_SCAN_MAX_DEPTH - 1].depth, XML_SCAN_MAX_DEPTH - 1);
	xml_scan_free(a);
	xml_scan_free(b);
	/* One level more: TOOBIG from both. */
	n = 0;
	for (unsigned i = 0; i <= XML_SCAN_MAX_DEPTH; i++)
		PUT("<e>");
	a = scan_with(false, doc, &e1);
	b = scan_with(true, doc, &e2);
	ck_assert_int_eq(e1, XDMS_ERR_TOOBIG);
	ck_assert_int_eq(e2, XDMS_ERR_TOOBIG);
	ck_assert(!a && !b);
	free(doc);
#undef PUT
}
END_TEST

START_TEST(every_prefix_of_a_document)
{
	/* Cut anywhere, a document must not make the stored scanner read past
	 * its length (ASan builds check it) nor accept an unclosed root. */
	const char *doc = good_docs[sizeof(good_docs) / sizeof(good_docs[0]) - 1];
	size_t len = strlen(doc);

	for (size_t cut = 0; cut < len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		struct xml_scan *s = NULL;

		memcpy(copy, doc, cut);
		ck_assert_int_ne(xml_scan_build_stored(copy, cut, &s), XDMS_ERR_OK);
		ck_assert(!s);
		free(copy);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xml_scan");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_add_test(tc, same_scan_on_good_documents);
	tcase_add_test(tc, fields_of_a_stored_scan);
	tcase_add_test(tc, broken_structure_refused);
	tcase_add_test(tc, content_checks_skipped);
	tcase_add_test(tc, deep_nesting_and_limits);
	tcase_add_test(tc, every_prefix_of_a_document);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
