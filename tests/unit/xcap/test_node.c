/* SPDX-License-Identifier: MIT */
/* Unit tests for XCAP node operations (RFC 4825 §8) and the byte-offset scanner. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "http/http.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"
#include "unit.h"

/* The document of SPEC §1.5 (OpenXCAP's test_element_put, without white space). */
static const char *const D =
	"<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/></root>";

static struct xcap_node_result r;

static struct xcap_selector *sel_ns(const char *s, const char *query, const char *default_ns)
{
	struct xcap_selector *sel = NULL;
	const char *why = NULL;
	enum xdms_err err = xcap_selector_parse(s, query, default_ns, &sel, &why);

	ck_assert_msg(err == XDMS_ERR_OK, "selector %s should parse, got %s (%s)", s, xdms_err_name(err),
		      why ? why : "");
	return sel;
}

static unsigned do_put_q(const char *doc, const char *s, const char *query, const char *default_ns,
			 const char *body)
{
	struct xcap_selector *sel = sel_ns(s, query, default_ns);

	xcap_node_result_cleanup(&r);
	xcap_node_put(doc, strlen(doc), sel, body, strlen(body), &r);
	xcap_selector_free(sel);
	if (http_status_of(r.outcome) == 200 || http_status_of(r.outcome) == 201) {
		ck_assert_ptr_nonnull(r.new_doc);
		ck_assert_uint_eq(strlen(r.new_doc), r.new_len);
	} else {
		ck_assert_ptr_null(r.new_doc);
	}
	return http_status_of(r.outcome);
}

static unsigned do_put(const char *doc, const char *s, const char *body)
{
	return do_put_q(doc, s, NULL, NULL, body);
}

static unsigned do_get_q(const char *doc, const char *s, const char *query, const char *default_ns)
{
	struct xcap_selector *sel = sel_ns(s, query, default_ns);

	xcap_node_result_cleanup(&r);
	xcap_node_get(doc, strlen(doc), sel, &r);
	xcap_selector_free(sel);
	return http_status_of(r.outcome);
}

static unsigned do_get(const char *doc, const char *s)
{
	return do_get_q(doc, s, NULL, NULL);
}

static unsigned do_delete_q(const char *doc, const char *s, const char *query, const char *default_ns)
{
	struct xcap_selector *sel = sel_ns(s, query, default_ns);

	xcap_node_result_cleanup(&r);
	xcap_node_delete(doc, strlen(doc), sel, &r);
	xcap_selector_free(sel);
	return http_status_of(r.outcome);
}

static unsigned do_delete(const char *doc, const char *s)
{
	return do_delete_q(doc, s, NULL, NULL);
}

static char *last_detail; /* the detail of the last put_expect() */

/* PUT, expect @status and @expect, GET the same URI, then DELETE it and expect
 * @doc back when @is_reversible. */
static void put_expect_ex(const char *doc, const char *s, const char *body, unsigned status, const char *expect,
			  bool is_reversible)
{
	char *new_doc;

	ck_assert_msg(do_put(doc, s, body) == status, "PUT %s %s: expected %u, got %u (%s)", s, body, status,
		      http_status_of(r.outcome), r.error.phrase);
	ck_assert_msg(strcmp(r.new_doc, expect) == 0, "PUT %s %s:\n expected %s\n got      %s", s, body, expect,
		      r.new_doc);
	new_doc = xstrdup(r.new_doc);
	free(last_detail);
	last_detail = xstrdup(r.detail);
	/* GET(PUT(x)) == x, x without the white space around an element */
	ck_assert_uint_eq(do_get(new_doc, s), 200);
	{
		size_t n = strlen(body);

		while (n && strchr(" \t\r\n", body[n - 1]))
			n--;
		while (n && strchr(" \t\r\n", body[0])) {
			body++;
			n--;
		}
		ck_assert_uint_eq(r.body_len, n);
		ck_assert(memcmp(r.body, body, n) == 0);
	}
	/* DELETE reverses the insertion (OpenXCAP's reverse()). */
	if (status == 201 && is_reversible) {
		ck_assert_msg(do_delete(new_doc, s) == 200, "DELETE %s: got %u (%s)", s,
			      http_status_of(r.outcome), r.error.phrase);
		ck_assert_str_eq(r.new_doc, doc);
	}
	free(new_doc);
}

static void put_expect(const char *doc, const char *s, const char *body, unsigned status, const char *expect)
{
	put_expect_ex(doc, s, body, status, expect, true);
}

static void put_conflict(const char *doc, const char *s, const char *body, enum xcap_error_kind kind)
{
	unsigned st = do_put(doc, s, body);

	ck_assert_msg(st == 409 && r.error.kind == kind, "PUT %s %s: expected 409 <%s>, got %u <%s> (%s)", s, body,
		      xcap_error_element(kind), st, xcap_error_element(r.error.kind), r.error.phrase);
	ck_assert_str_ne(r.error.phrase, "");
}

/* ---- SPEC §1.5 placement table ------------------------------------------------------ */

START_TEST(placement_table)
{
	const char *after_el1 = "<root><el1 att=\"first\"/><el1 att=\"second\"/><el1 att=\"third\"/><!--c-->"
				"<el2 att=\"first\"/></root>";

	put_expect(D, "root/el1[@att=\"third\"]", "<el1 att=\"third\"/>", 201, after_el1);
	put_expect(D, "root/el1[3][@att=\"third\"]", "<el1 att=\"third\"/>", 201, after_el1);
	put_expect(D, "root/*[3][@att=\"third\"]", "<el1 att=\"third\"/>", 201, after_el1);
	put_expect(D, "root/el3", "<el3 att=\"first\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "<el3 att=\"first\"/></root>");
	put_expect(D, "root/el2[1][@att=\"2\"]", "<el2 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"2\"/>"
		   "<el2 att=\"first\"/></root>");
	put_expect(D, "root/*[2][@att=\"2\"]", "<el2 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el2 att=\"2\"/><el1 att=\"second\"/><!--c-->"
		   "<el2 att=\"first\"/></root>");
	put_expect(D, "root/*[@att=\"2\"]", "<el3 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "<el3 att=\"2\"/></root>");
	/* "*" without a position takes the name from the body. */
	put_expect(D, "root/*[@att=\"2\"]", "<el1 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><el1 att=\"2\"/><!--c-->"
		   "<el2 att=\"first\"/></root>");
	put_expect(D, "root/*[@att=\"2\"]", "<el2 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "<el2 att=\"2\"/></root>");
	put_expect(D, "root/el2[@att=\"2\"]", "<el2 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "<el2 att=\"2\"/></root>");
	put_expect(D, "root/el2[2][@att=\"2\"]", "<el2 att=\"2\"/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "<el2 att=\"2\"/></root>");
	/* n = 1 with no sibling of that name yet: the last child. */
	put_expect(D, "root/el4[1]", "<el4/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/><el4/></root>");
	put_expect(D, "root/*[1][@att=\"0\"]", "<el0 att=\"0\"/>", 201,
		   "<root><el0 att=\"0\"/><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/>"
		   "</root>");
	put_expect(D, "root/*[4]", "<el9/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/><el9/></root>");

	/* Position past count + 1. */
	put_conflict(D, "root/el1[4][@att=\"third\"]", "<el1 att=\"third\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/*[5]", "<el1/>", XCAP_ERROR_CANNOT_INSERT);
	/* GET(PUT(x)) would not be x. */
	put_conflict(D, "root/el1[@att=\"third\"]", "<el1 att=\"fourth\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el1[3][@att=\"third\"]", "<el1 att=\"fourth\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/*[3][@att=\"third\"]", "<el1 att=\"fourth\"/>", XCAP_ERROR_CANNOT_INSERT);
}
END_TEST

START_TEST(position_zero_selects_nothing)
{
	/* RFC 4825 §6.3: position = 1*DIGIT, so "[0]" parses; it selects no
	 * element, so GET and DELETE find nothing and PUT cannot insert. */
	ck_assert_uint_eq(do_get(D, "root/el1[0]"), 404);
	ck_assert_uint_eq(do_get(D, "root/*[0]"), 404);
	ck_assert_uint_eq(do_get(D, "root[0]"), 404);
	ck_assert_uint_eq(do_delete(D, "root/el1[0]"), 404);
	put_conflict(D, "root/*[0][@att=\"third\"]", "<el1 att=\"third\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el1[0]", "<el1/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el3[0]", "<el3/>", XCAP_ERROR_CANNOT_INSERT);
}
END_TEST

START_TEST(replace_keeps_position)
{
	const char *expect = "<root><el1 att=\"third\"/><el1 att=\"second\"/><!--c--><el2 att=\"first\"/></root>";

	put_expect(D, "root/el1[1]", "<el1 att=\"third\"/>", 200, expect);
	ck_assert_str_eq(last_detail, "put-element replace root/el1%5B1%5D");
	put_expect(D, "root/*[1]", "<el1 att=\"third\"/>", 200, expect);
	put_expect(D, "root/el1[@att=\"second\"]", "<el1 att=\"second\">x</el1>", 200,
		   "<root><el1 att=\"first\"/><el1 att=\"second\">x</el1><!--c--><el2 att=\"first\"/></root>");
	/* A replacement the URI would no longer select. */
	put_conflict(D, "root/el1[@att=\"first\"]", "<el1 att=\"third\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el1[1][@att=\"first\"]", "<el1 att=\"third\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/*[1][@att=\"first\"]", "<el1 att=\"third\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el1[1]", "<el2/>", XCAP_ERROR_CANNOT_INSERT);
	/* The root element itself. */
	put_expect(D, "root", "<root/>", 200, "<root/>");
	put_conflict(D, "other", "<other/>", XCAP_ERROR_CANNOT_INSERT);
	/* A selector that selects two elements. */
	put_conflict(D, "root/el1", "<el1/>", XCAP_ERROR_CANNOT_INSERT);
}
END_TEST

START_TEST(get_element_exact_bytes)
{
	const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- top -->\n"
			  "<r>\n  <e a=\"x\">h\xc3\xa9llo <![CDATA[<raw> & </e> ]]><!-- c > </e> -->"
			  "<?pi stuff?><s/>&amp;&#x263A;</e>\n  <e a='y&gt;'/>\n</r>\n";

	ck_assert_uint_eq(do_get(doc, "r/e[1]"), 200);
	ck_assert_str_eq(r.body, "<e a=\"x\">h\xc3\xa9llo <![CDATA[<raw> & </e> ]]><!-- c > </e> -->"
				 "<?pi stuff?><s/>&amp;&#x263A;</e>");
	ck_assert_uint_eq(r.body_len, strlen(r.body));
	ck_assert_uint_eq(do_get(doc, "r/e[@a=\"y>\"]"), 200);
	ck_assert_str_eq(r.body, "<e a='y&gt;'/>");
	ck_assert_uint_eq(do_get(doc, "r/e[1]/s"), 200);
	ck_assert_str_eq(r.body, "<s/>");
	ck_assert_uint_eq(do_get(doc, "r"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e"), 404); /* two elements */
	ck_assert_uint_eq(do_get(doc, "r/e[3]"), 404);
	ck_assert_uint_eq(do_get(doc, "r/x"), 404);
	ck_assert_uint_eq(do_get(doc, "x"), 404);
	ck_assert_uint_eq(do_get(doc, "r[2]"), 404);
	ck_assert_uint_eq(do_get(doc, "r[1]/e[2]"), 200);
	ck_assert_uint_eq(do_get(doc, "*/*[2]"), 200);
	ck_assert_str_eq(r.body, "<e a='y&gt;'/>");
	/* Non-ASCII in a predicate. */
	ck_assert_uint_eq(do_get("<r><e n=\"J\xc3\xbcrgen\"/></r>", "r/e[@n=\"J\xc3\xbcrgen\"]"), 200);
}
END_TEST

START_TEST(predicates_decode_both_sides)
{
	const char *doc = "<r><e uri=\"a&amp;b\" q='say \"hi\"' n=\"&#65;\"/><f uri=\"a&amp;b\"/><e uri=\"x\"/></r>";

	ck_assert_uint_eq(do_get(doc, "r/e[@uri=\"a&amp;b\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@uri='a&amp;b']"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@uri=\"a&#38;b\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@uri=\"a&#x26;b\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@q='say \"hi\"']"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@q=\"say &quot;hi&quot;\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@n=\"A\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[@uri=\"a&amp;amp;b\"]"), 404);
	ck_assert_uint_eq(do_get(doc, "r/*[@uri=\"a&amp;b\"]"), 404); /* e and f */
	ck_assert_uint_eq(do_get(doc, "r/e[2][@uri=\"x\"]"), 200);
	ck_assert_uint_eq(do_get(doc, "r/e[1][@uri=\"x\"]"), 404); /* position first, then the test */
	ck_assert_uint_eq(do_get(doc, "r/*[3][@uri=\"x\"]"), 200);
}
END_TEST

/* ---- attributes --------------------------------------------------------------------------- */

START_TEST(attribute_get_put_delete)
{
	const char *doc = "<r><e a=\"a&amp;b &lt; &#x263A;\" b='x>\"y'/><f/><g x=\"1\" ></g></r>";

	/* RFC 4825 §8.3: the value as written between the quotes. */
	ck_assert_uint_eq(do_get(doc, "r/e/@a"), 200);
	ck_assert_str_eq(r.body, "a&amp;b &lt; &#x263A;");
	ck_assert_uint_eq(do_get(doc, "r/e/@b"), 200);
	ck_assert_str_eq(r.body, "x>\"y");
	ck_assert_uint_eq(do_get(doc, "r/e/@c"), 404);
	ck_assert_uint_eq(do_get(doc, "r/x/@a"), 404);

	put_expect(doc, "r/e/@a", "new", 200, "<r><e a=\"new\" b='x>\"y'/><f/><g x=\"1\" ></g></r>");
	ck_assert_str_eq(last_detail, "put-attribute replace r/e/@a");
	put_expect(doc, "r/e/@a", "&quot;q&quot; &amp; &#60;", 200,
		   "<r><e a=\"&quot;q&quot; &amp; &#60;\" b='x>\"y'/><f/><g x=\"1\" ></g></r>");
	/* The old quote cannot hold the new value: the other quote is used. */
	put_expect(doc, "r/e/@a", "say \"hi\"", 200, "<r><e a='say \"hi\"' b='x>\"y'/><f/><g x=\"1\" ></g></r>");
	put_expect(doc, "r/e/@b", "it's", 200, "<r><e a=\"a&amp;b &lt; &#x263A;\" b=\"it's\"/><f/><g x=\"1\" ></g></r>");
	/* Creation: after the last attribute. */
	put_expect(doc, "r/f/@n", "v", 201, "<r><e a=\"a&amp;b &lt; &#x263A;\" b='x>\"y'/><f n=\"v\"/><g x=\"1\" ></g></r>");
	ck_assert_str_eq(last_detail, "put-attribute insert r/f/@n");
	put_expect(doc, "r/g/@n", "\"", 201, "<r><e a=\"a&amp;b &lt; &#x263A;\" b='x>\"y'/><f/><g x=\"1\" n='\"' ></g></r>");
	put_expect(doc, "r/e/@c", "", 201, "<r><e a=\"a&amp;b &lt; &#x263A;\" b='x>\"y' c=\"\"/><f/><g x=\"1\" ></g></r>");

	put_conflict(doc, "r/e/@a", "a<b", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "a&b", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "a&foo;b", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "a&#0;b", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "\"'", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "\x01", XCAP_ERROR_NOT_XML_ATT_VALUE);
	put_conflict(doc, "r/e/@a", "\xff", XCAP_ERROR_NOT_UTF8);
	put_conflict(doc, "r/e/@a", "a\xef\xbf\xbf", XCAP_ERROR_NOT_XML_ATT_VALUE); /* U+FFFF */
	put_conflict(doc, "r/x/@a", "v", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "r");
	/* Changing the attribute the URI selects the element by. */
	put_conflict("<r><e a=\"1\"/></r>", "r/e[@a=\"1\"]/@a", "2", XCAP_ERROR_CANNOT_INSERT);
	put_expect("<r><e a=\"1\"/></r>", "r/e[@a=\"1\"]/@a", "1", 200, "<r><e a=\"1\"/></r>");

	ck_assert_uint_eq(do_delete("<r><e a=\"1\" b=\"2\"/></r>", "r/e/@a"), 200);
	ck_assert_str_eq(r.new_doc, "<r><e b=\"2\"/></r>");
	ck_assert_str_eq(r.detail, "delete-attribute r/e/@a");
	ck_assert_uint_eq(do_delete("<r><e a=\"1\"\n   b=\"2\" ></e></r>", "r/e/@b"), 200);
	ck_assert_str_eq(r.new_doc, "<r><e a=\"1\" ></e></r>");
	ck_assert_uint_eq(do_delete("<r><e a=\"1\"/></r>", "r/e/@b"), 404);
	ck_assert_uint_eq(do_delete("<r><e a=\"1\"/></r>", "r/x/@a"), 404);
	ck_assert_uint_eq(do_delete("<r><e a=\"1\"/></r>", "r/e[@a=\"1\"]/@a"), 200);
	ck_assert_str_eq(r.new_doc, "<r><e/></r>");
}
END_TEST

START_TEST(prefixed_attributes)
{
	const char *doc = "<r xmlns:x=\"urn:x\"><e x:a=\"1\" a=\"2\"/></r>";

	ck_assert_uint_eq(do_get_q(doc, "r/e/@p:a", "xmlns(p=urn:x)", NULL), 200);
	ck_assert_str_eq(r.body, "1");
	ck_assert_uint_eq(do_get_q(doc, "r/e/@a", "xmlns(p=urn:x)", NULL), 200);
	ck_assert_str_eq(r.body, "2");
	/* Created with the document's prefix for the namespace. */
	ck_assert_uint_eq(do_put_q(doc, "r/e/@p:b", "xmlns(p=urn:x)", NULL, "3"), 201);
	ck_assert_str_eq(r.new_doc, "<r xmlns:x=\"urn:x\"><e x:a=\"1\" a=\"2\" x:b=\"3\"/></r>");
	ck_assert_str_eq(r.detail, "put-attribute insert r/e/@p:b?xmlns(p=urn:x)");
	ck_assert_uint_eq(do_put_q(doc, "r/e/@p:b", "xmlns(p=urn:none)", NULL, "3"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_CANNOT_INSERT);
	ck_assert_uint_eq(do_put_q(doc, "r/e/@xml:lang", NULL, NULL, "en"), 201);
	ck_assert_str_eq(r.new_doc, "<r xmlns:x=\"urn:x\"><e x:a=\"1\" a=\"2\" xml:lang=\"en\"/></r>");
}
END_TEST

/* ---- namespaces ------------------------------------------------------------------------------ */

START_TEST(namespace_bindings_get)
{
	const char *doc = "<r xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:z=\"urn:z&amp;1\">"
			  "<a:e xmlns:b=\"urn:b\" xmlns:a=\"urn:a2\"><f/></a:e></r>";

	ck_assert_uint_eq(do_get_q(doc, "r/p:e/namespace::*", "xmlns(p=urn:a2)", "urn:d"), 200);
	ck_assert_str_eq(r.body, "<a:e xmlns=\"urn:d\" xmlns:z=\"urn:z&amp;1\" xmlns:b=\"urn:b\" xmlns:a=\"urn:a2\"/>");
	ck_assert_uint_eq(do_get_q(doc, "r/namespace::*", NULL, "urn:d"), 200);
	ck_assert_str_eq(r.body, "<r xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:z=\"urn:z&amp;1\"/>");
	ck_assert_uint_eq(do_get_q(doc, "r/p:e/f/namespace::*", "xmlns(p=urn:a2)", "urn:d"), 200);
	ck_assert_str_eq(r.body, "<f xmlns=\"urn:d\" xmlns:z=\"urn:z&amp;1\" xmlns:b=\"urn:b\" xmlns:a=\"urn:a2\"/>");
	ck_assert_uint_eq(do_get_q(doc, "r/p:e/namespace::*", "xmlns(p=urn:a)", "urn:d"), 404);
	/* An undeclared default namespace is not a binding. */
	ck_assert_uint_eq(do_get_q("<r xmlns=\"urn:d\"><e xmlns=\"\"/></r>", "r/*/namespace::*", NULL, "urn:d"), 200);
	ck_assert_str_eq(r.body, "<e/>");
}
END_TEST

START_TEST(namespace_writes_are_refused)
{
	struct xcap_selector *sel = sel_ns("root/namespace::*", NULL, NULL);

	xcap_node_result_cleanup(&r);
	xcap_node_put(D, strlen(D), sel, "x", 1, &r);
	ck_assert_uint_eq(http_status_of(r.outcome), 405);
	xcap_node_result_cleanup(&r);
	xcap_node_delete(D, strlen(D), sel, &r);
	ck_assert_uint_eq(http_status_of(r.outcome), 405);
	xcap_selector_free(sel);
}
END_TEST

START_TEST(prefixed_elements)
{
	const char *doc = "<r xmlns=\"urn:d\" xmlns:x=\"urn:x\"><x:item id=\"1\"/><item id=\"2\"/></r>";
	const char *q = "xmlns(p=urn:x)";

	ck_assert_uint_eq(do_get_q(doc, "r/item", q, "urn:d"), 200);
	ck_assert_str_eq(r.body, "<item id=\"2\"/>");
	ck_assert_uint_eq(do_get_q(doc, "r/p:item", q, "urn:d"), 200);
	ck_assert_str_eq(r.body, "<x:item id=\"1\"/>");
	ck_assert_uint_eq(do_get_q(doc, "p:r", q, "urn:d"), 404);
	ck_assert_uint_eq(do_get_q(doc, "r/*[1]", q, "urn:d"), 200);
	ck_assert_str_eq(r.body, "<x:item id=\"1\"/>");

	ck_assert_uint_eq(do_put_q(doc, "r/p:item[@id=\"3\"]", q, "urn:d", "<x:item id=\"3\"/>"), 201);
	ck_assert_str_eq(r.new_doc,
			 "<r xmlns=\"urn:d\" xmlns:x=\"urn:x\"><x:item id=\"1\"/><x:item id=\"3\"/><item id=\"2\"/></r>");
	ck_assert_str_eq(r.detail, "put-element insert r/p:item%5B@id=%223%22%5D?xmlns(p=urn:x)");
	/* A prefix of the body's own. */
	ck_assert_uint_eq(do_put_q(doc, "r/p:item[@id=\"3\"]", q, "urn:d", "<y:item xmlns:y=\"urn:x\" id=\"3\"/>"),
			  201);
	/* Same local name, other namespace. */
	ck_assert_uint_eq(do_put_q(doc, "r/p:item[@id=\"3\"]", q, "urn:d", "<item id=\"3\"/>"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_CANNOT_INSERT);
	/* A prefix bound nowhere. */
	ck_assert_uint_eq(do_put_q(doc, "r/item[@id=\"3\"]", q, "urn:d", "<item id=\"3\"><zz:c/></item>"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_NOT_XML_FRAG);
	ck_assert_uint_eq(do_put_q(doc, "r/item[@id=\"3\"]", q, "urn:d", "<item zz:id=\"3\"/>"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_NOT_XML_FRAG);
	/* "*" takes the body's expanded name: x:item goes after x:item. */
	ck_assert_uint_eq(do_put_q(doc, "r/*[@id=\"4\"]", q, "urn:d", "<x:item id=\"4\"/>"), 201);
	ck_assert_str_eq(r.new_doc,
			 "<r xmlns=\"urn:d\" xmlns:x=\"urn:x\"><x:item id=\"1\"/><x:item id=\"4\"/><item id=\"2\"/></r>");
	ck_assert_uint_eq(do_delete_q(doc, "r/p:item", q, "urn:d"), 200);
	ck_assert_str_eq(r.new_doc, "<r xmlns=\"urn:d\" xmlns:x=\"urn:x\"><item id=\"2\"/></r>");
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

START_TEST(no_parent_with_ancestor)
{
	put_conflict(D, "root/el1[3]/child", "<child/>", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "root");
	put_conflict(D, "root/el9/x/y", "<y/>", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "root");
	put_conflict(D, "other/x", "<x/>", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "");
	put_conflict(D, "root/el1/child", "<child/>", XCAP_ERROR_NO_PARENT); /* two parents */
	ck_assert_str_eq(r.ancestor, "root");
	put_conflict(D, "root/el1[@att=\"first\"]/a/b", "<b/>", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "root/el1%5B@att=%22first%22%5D");
	put_conflict("<r><e a=\"x y\"><f/></e></r>", "r/e[@a=\"x y\"]/f/g/h", "<h/>", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "r/e%5B@a=%22x%20y%22%5D/f");
	put_conflict(D, "root/el9/@a", "v", XCAP_ERROR_NO_PARENT);
	ck_assert_str_eq(r.ancestor, "root");
	/* The parent exists: the child is created (a DELETE leaves "<el1 ...></el1>"). */
	put_expect_ex(D, "root/el1[2]/child", "<child/>", 201,
		   "<root><el1 att=\"first\"/><el1 att=\"second\"><child/></el1><!--c--><el2 att=\"first\"/></root>",
		      false);
}
END_TEST

START_TEST(cannot_insert)
{
	put_conflict(D, "root/el3", "<el4/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el3[@a=\"1\"]", "<el3 a=\"2\"/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el3[@a=\"1\"]", "<el3/>", XCAP_ERROR_CANNOT_INSERT);
	put_conflict(D, "root/el1[@att=\"second\"]", "<el1 att=\"other\"/>", XCAP_ERROR_CANNOT_INSERT);
	/* White space around the body is not part of the element. */
	put_expect(D, "root/el3", "\n  <el3/>\r\n", 201, "<root><el1 att=\"first\"/><el1 att=\"second\"/><!--c-->"
							   "<el2 att=\"first\"/><el3/></root>");
}
END_TEST

START_TEST(not_xml_frag)
{
	put_conflict(D, "root/el3", "<el3/><el3/>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "text", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3></el4>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3/>text", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<!--c--><el3/>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3/><!--c-->", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<?xml version=\"1.0\"?><el3/>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<!DOCTYPE el3><el3/>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3>&bogus;</el3>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3 a=\"1\" a=\"2\"/>", XCAP_ERROR_NOT_XML_FRAG);
	put_conflict(D, "root/el3", "<el3>\xc3</el3>", XCAP_ERROR_NOT_UTF8);
}
END_TEST

START_TEST(cannot_delete)
{
	const char *doc = "<list><entry n=\"1\"/><entry n=\"2\"/><entry n=\"3\"/></list>";

	ck_assert_uint_eq(do_delete(doc, "list/entry[2]"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_CANNOT_DELETE);
	ck_assert_ptr_null(r.new_doc);
	ck_assert_uint_eq(do_delete(doc, "list/*[1]"), 409);
	ck_assert_uint_eq(do_delete(doc, "list/entry[3]"), 200);
	ck_assert_str_eq(r.new_doc, "<list><entry n=\"1\"/><entry n=\"2\"/></list>");
	ck_assert_str_eq(r.detail, "delete-element list/entry%5B3%5D");
	ck_assert_uint_eq(do_delete(doc, "list/entry[@n=\"2\"]"), 200);
	ck_assert_str_eq(r.new_doc, "<list><entry n=\"1\"/><entry n=\"3\"/></list>");
	ck_assert_uint_eq(do_delete(doc, "list"), 409);
	ck_assert_int_eq(r.error.kind, XCAP_ERROR_CANNOT_DELETE);
	ck_assert_uint_eq(do_delete(doc, "list/entry"), 404);
	ck_assert_uint_eq(do_delete(doc, "list/entry[4]"), 404);
	ck_assert_uint_eq(do_delete(doc, "other"), 404);
	/* White space around a deleted element stays. */
	ck_assert_uint_eq(do_delete("<l>\n  <a/>\n  <b>t</b>\n</l>", "l/b"), 200);
	ck_assert_str_eq(r.new_doc, "<l>\n  <a/>\n  \n</l>");
}
END_TEST

START_TEST(empty_parent_opens_up)
{
	put_expect_ex("<rl><list name=\"a\"/></rl>", "rl/list/entry", "<entry uri=\"x\"/>", 201,
		      "<rl><list name=\"a\"><entry uri=\"x\"/></list></rl>", false);
	ck_assert_uint_eq(do_delete("<rl><list name=\"a\"><entry uri=\"x\"/></list></rl>", "rl/list/entry"), 200);
	ck_assert_str_eq(r.new_doc, "<rl><list name=\"a\"></list></rl>");
	ck_assert_uint_eq(do_put("<rl><list name=\"a\" /></rl>", "rl/list[@name=\"a\"]/entry[1]", "<entry/>"), 201);
	ck_assert_str_eq(r.new_doc, "<rl><list name=\"a\" ><entry/></list></rl>");
	ck_assert_uint_eq(do_put_q("<p:rl xmlns:p=\"urn:p\"><p:list/></p:rl>", "q:rl/q:list/q:entry", "xmlns(q=urn:p)",
				   NULL, "<p:entry/>"),
			  201);
	ck_assert_str_eq(r.new_doc, "<p:rl xmlns:p=\"urn:p\"><p:list><p:entry/></p:list></p:rl>");
	ck_assert_uint_eq(do_put("<r/>", "r/a", "<a/>"), 201);
	ck_assert_str_eq(r.new_doc, "<r><a/></r>");
}
END_TEST

START_TEST(stored_document_outside_the_subset)
{
	ck_assert_uint_eq(do_get("<!DOCTYPE r><r/>", "r"), 500);
	ck_assert_uint_eq(do_put("<!DOCTYPE r><r/>", "r/a", "<a/>"), 500);
	ck_assert_uint_eq(do_delete("<!DOCTYPE r><r/>", "r/a"), 500);
}
END_TEST

/* ---- large documents ---------------------------------------------------------------------- */

START_TEST(ten_thousand_entries)
{
	struct buf b;
	char *doc, *e_start, *e_end;
	const char *body, *sel_text;
	size_t len, pre, post_old;
	const char *old = "<entry uri=\"sip:u5000@example.com\"><display-name>User 5000</display-name></entry>";

	buf_init(&b, 4u << 20);
	ck_assert(!buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				      "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n"
				      " <list name=\"all\">\n"));
	for (int i = 0; i < 10000; i++)
		ck_assert(!buf_printf(&b,
				      "  <entry uri=\"sip:u%d@example.com\"><display-name>User %d</display-name>"
				      "</entry>\n",
				      i, i));
	ck_assert(!buf_append_str(&b, " </list>\n</resource-lists>\n"));
	doc = buf_take(&b, &len);
	ck_assert_uint_gt(len, 800000);
	body = "<entry uri=\"sip:u5000@example.com\"><display-name>Renamed \xe2\x98\xba</display-name></entry>";
	sel_text = "resource-lists/list[@name=\"all\"]/entry[@uri=\"sip:u5000@example.com\"]";

	ck_assert_uint_eq(do_put_q(doc, sel_text, NULL, "urn:ietf:params:xml:ns:resource-lists", body), 200);
	e_start = strstr(doc, old);
	ck_assert_ptr_nonnull(e_start);
	pre = (size_t)(e_start - doc);
	e_end = e_start + strlen(old);
	post_old = len - (size_t)(e_end - doc);
	ck_assert_uint_eq(r.new_len, len - strlen(old) + strlen(body));
	ck_assert(memcmp(r.new_doc, doc, pre) == 0);
	ck_assert(memcmp(r.new_doc + pre, body, strlen(body)) == 0);
	ck_assert(memcmp(r.new_doc + pre + strlen(body), e_end, post_old) == 0);

	/* A new entry goes after the last one. */
	ck_assert_uint_eq(do_put_q(doc, "resource-lists/list/entry[@uri=\"sip:new@example.com\"]", NULL,
				   "urn:ietf:params:xml:ns:resource-lists", "<entry uri=\"sip:new@example.com\"/>"),
			  201);
	ck_assert_ptr_nonnull(strstr(r.new_doc, "<display-name>User 9999</display-name></entry>"
						"<entry uri=\"sip:new@example.com\"/>\n </list>"));
	ck_assert_uint_eq(do_get_q(doc, "resource-lists/list/entry[10000]/display-name", NULL,
				   "urn:ietf:params:xml:ns:resource-lists"),
			  200);
	ck_assert_str_eq(r.body, "<display-name>User 9999</display-name>");
	ck_assert_uint_eq(do_delete_q(doc, "resource-lists/list/entry[@uri=\"sip:u1@example.com\"]", NULL,
				      "urn:ietf:params:xml:ns:resource-lists"),
			  200);
	ck_assert_uint_eq(r.new_len, len - strlen("<entry uri=\"sip:u1@example.com\"><display-name>User 1"
						  "</display-name></entry>"));
	free(doc);
}
END_TEST

/* ---- the scanner ------------------------------------------------------------------------- */

START_TEST(scanner_offsets)
{
	const char *doc = "\xef\xbb\xbf<?xml version='1.0'?><!--x--><a xmlns='urn:a' xmlns:p=\"urn:p\" p:x = '1>2'>"
			  "t<p:b/><c\n></c ><![CDATA[<d>]]></a>\n<?pi?>";
	struct xml_scan *s = NULL;
	size_t n;

	ck_assert_int_eq(xml_scan_build(doc, strlen(doc), &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s->elem_count, 3);
	ck_assert_uint_eq(s->elems[0].start, (size_t)(strstr(doc, "<a ") - doc));
	ck_assert_uint_eq(s->elems[0].end, (size_t)(strstr(doc, "</a>") - doc) + 4);
	ck_assert_uint_eq(s->elems[0].end_start, (size_t)(strstr(doc, "</a>") - doc));
	ck_assert_str_eq(s->elems[0].ns, "urn:a");
	ck_assert_uint_eq(s->elems[0].attr_count, 3);
	ck_assert(s->attrs[0].is_xmlns);
	ck_assert_str_eq(s->attrs[2].ns, "urn:p");
	ck_assert_int_eq(s->attrs[2].quote, '\'');
	ck_assert(memcmp(doc + s->attrs[2].value_off, "1>2", 3) == 0);
	ck_assert_uint_eq(s->elems[1].prefix_len, 1);
	ck_assert_str_eq(s->elems[1].ns, "urn:p");
	ck_assert(s->elems[1].is_empty);
	ck_assert_uint_eq(s->elems[0].first_child, 1);
	ck_assert_uint_eq(s->elems[1].next_sibling, 2);
	ck_assert_uint_eq(s->elems[2].parent, 0);
	ck_assert_uint_eq(s->elems[2].next_sibling, XML_SCAN_NONE);
	ck_assert(memcmp(xml_scan_elem_local(s, 1, &n), "b", 1) == 0 && n == 1);
	ck_assert_str_eq(xml_scan_prefix_ns(s, 2, "p", 1), "urn:p");
	ck_assert_ptr_null(xml_scan_prefix_ns(s, 2, "q", 1));
	ck_assert_str_eq(xml_scan_prefix_ns(s, 2, "xml", 3), XML_NS_XML);
	xml_scan_free(s);

	/* Scopes end with their element. */
	ck_assert_int_eq(xml_scan_build("<a><b xmlns:p='u'/><p:c/></a>", 29, &s), XDMS_ERR_OK);
	ck_assert_ptr_null(s->elems[2].ns);
	xml_scan_free(s);
	ck_assert_int_eq(xml_scan_build("<a xmlns='u'><b xmlns=''/></a>", 30, &s), XDMS_ERR_OK);
	ck_assert_str_eq(s->elems[1].ns, "");
	xml_scan_free(s);
}
END_TEST

START_TEST(scanner_refuses_malformed)
{
	const char *bad[] = {
		"", " ", "<", "<a", "<a>", "</a>", "<a></b>", "<a/><b/>", "<a/>x", "x<a/>", "<a b/>", "<a b=c/>",
		"<a b=\"c/>", "<a b=\"<\"/>", "<a b=\"&\"/>", "<a b=\"&x;\"/>", "<a>&lt</a>", "<a>&#xD800;</a>",
		"<a>&#0;</a>", "<a><!-- a -- b --></a>", "<a><![CDATA[x</a>", "<!DOCTYPE a><a/>",
		"<a><?xml v?></a>", "<a:b:c/>", "<:a/>", "<a: />", "<a b=\"1\"c=\"2\"/>", "<a>\x01</a>",
		"<![CDATA[x]]><a/>", "<a><b></a></b>", "<1a/>", "<a></a >x", "<a><!-x--></a>", "<a/ >",
	};
	struct xml_scan *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = (struct xml_scan *)1;
		ck_assert_msg(xml_scan_build(bad[i], strlen(bad[i]), &s) == XDMS_ERR_PARSE, "accepted: %s", bad[i]);
		ck_assert_ptr_null(s);
	}
}
END_TEST

START_TEST(scanner_limits)
{
	struct buf b;
	char *doc;
	size_t len;
	struct xml_scan *s;

	buf_init(&b, 1u << 20);
	for (int i = 0; i < 300; i++)
		ck_assert(!buf_append_str(&b, "<a>"));
	for (int i = 0; i < 300; i++)
		ck_assert(!buf_append_str(&b, "</a>"));
	doc = buf_take(&b, &len);
	ck_assert_int_eq(xml_scan_build(doc, len, &s), XDMS_ERR_TOOBIG);
	free(doc);
	buf_init(&b, 8u << 20);
	ck_assert(!buf_append_str(&b, "<r>"));
	for (unsigned i = 0; i < XML_SCAN_MAX_ELEMENTS; i++)
		ck_assert(!buf_append_str(&b, "<a/>"));
	ck_assert(!buf_append_str(&b, "</r>"));
	doc = buf_take(&b, &len);
	ck_assert_int_eq(xml_scan_build(doc, len, &s), XDMS_ERR_TOOBIG);
	free(doc);
}
END_TEST

START_TEST(attvalue_helpers)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert_int_eq(xml_attvalue_decode("a&amp;b&#x41;&#66;\r\n\tc", strlen("a&amp;b&#x41;&#66;\r\n\tc"), &b), XDMS_ERR_OK);
	ck_assert_str_eq(b.data, "a&bAB  c");
	buf_reset(&b);
	ck_assert_int_eq(xml_attvalue_decode("&#x10FFFF;", 10, &b), XDMS_ERR_OK);
	ck_assert_str_eq(b.data, "\xf4\x8f\xbf\xbf");
	buf_reset(&b);
	ck_assert_int_eq(xml_attvalue_decode("&#x110000;", 10, &b), XDMS_ERR_PARSE);
	ck_assert_int_eq(xml_attvalue_decode("&#;", 3, &b), XDMS_ERR_PARSE);
	ck_assert_int_eq(xml_attvalue_decode("&amp", 4, &b), XDMS_ERR_PARSE);
	buf_cleanup(&b);
	ck_assert(xml_attvalue_equal("a&lt;b", 6, "a<b", 3));
	ck_assert(!xml_attvalue_equal("a&lt;b", 6, "a<", 2));
	ck_assert(!xml_attvalue_equal("a&lt;", 5, "a<b", 3));
	ck_assert(xml_attvalue_equal("", 0, "", 0));
	ck_assert(!xml_attvalue_equal("ab", 2, "abc", 3));
	ck_assert(xml_attvalue_equal("a\r\nb", 4, "a b", 3));
}
END_TEST

/* xml_attvalue_equal against its definition, decode then compare, on random
 * values made of plain bytes, references, line ends and malformed pieces,
 * each compared with its decoding, a changed copy and a cut one. */
START_TEST(attvalue_equal_is_decode_then_compare)
{
	static const char *const pieces[] = {
		"a", "b", "sip:contact0", "&amp;", "&lt;", "&#x41;", "&#66;", "&#x10FFFF;", "\r\n", "\r", "\n",
		"\t", "&", "&amp", "<", "\x01", "\xef\xbf\xbe", "\xef\xbb\xbf", "\xc3\xa9", " ",
	};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct buf raw, dec;

	buf_init(&raw, 1000);
	buf_init(&dec, 1000);
	for (int round = 0; round < 20000; round++) {
		size_t n;
		bool is_ok;

		buf_reset(&raw);
		buf_reset(&dec);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		n = x % 8;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ck_assert_int_eq(buf_append(&raw, pieces[x % (sizeof(pieces) / sizeof(pieces[0]))],
						    strlen(pieces[x % (sizeof(pieces) / sizeof(pieces[0]))])), 0);
		}
		is_ok = xml_attvalue_decode(raw.data ? raw.data : "", raw.len, &dec) == XDMS_ERR_OK;
		if (!is_ok) {
			/* A malformed value equals nothing, not even its own bytes. */
			ck_assert(!xml_attvalue_equal(raw.data, raw.len, raw.data, raw.len));
			continue;
		}
		ck_assert(xml_attvalue_equal(raw.data ? raw.data : "", raw.len, dec.data ? dec.data : "", dec.len));
		if (dec.len) {
			char *changed = xmalloc(dec.len);

			memcpy(changed, dec.data, dec.len);
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			changed[x % dec.len] ^= 0x20;
			ck_assert(!xml_attvalue_equal(raw.data, raw.len, changed, dec.len));
			ck_assert(!xml_attvalue_equal(raw.data, raw.len, dec.data, dec.len - 1));
			free(changed);
		}
	}
	buf_cleanup(&raw);
	buf_cleanup(&dec);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_node");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, placement_table);
	tcase_add_test(tc, position_zero_selects_nothing);
	tcase_add_test(tc, replace_keeps_position);
	tcase_add_test(tc, get_element_exact_bytes);
	tcase_add_test(tc, predicates_decode_both_sides);
	tcase_add_test(tc, attribute_get_put_delete);
	tcase_add_test(tc, prefixed_attributes);
	tcase_add_test(tc, namespace_bindings_get);
	tcase_add_test(tc, namespace_writes_are_refused);
	tcase_add_test(tc, prefixed_elements);
	tcase_add_test(tc, no_parent_with_ancestor);
	tcase_add_test(tc, cannot_insert);
	tcase_add_test(tc, not_xml_frag);
	tcase_add_test(tc, cannot_delete);
	tcase_add_test(tc, empty_parent_opens_up);
	tcase_add_test(tc, stored_document_outside_the_subset);
	tcase_add_test(tc, ten_thousand_entries);
	tcase_add_test(tc, scanner_offsets);
	tcase_add_test(tc, scanner_refuses_malformed);
	tcase_add_test(tc, scanner_limits);
	tcase_add_test(tc, attvalue_helpers);
	tcase_add_test(tc, attvalue_equal_is_decode_then_compare);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_NOFORK);
	xcap_node_result_cleanup(&r);
	free(last_detail);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
