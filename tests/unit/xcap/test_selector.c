/* SPDX-License-Identifier: MIT */
/* Unit tests for the XCAP node-selector grammar (RFC 4825 §6.3) and namespace bindings (§6.4). */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"
#include "unit.h"

static struct xcap_selector *sel;

static enum xdms_err parse(const char *s, const char *query)
{
	const char *why = NULL;
	enum xdms_err err;

	xcap_selector_free(sel);
	sel = NULL;
	err = xcap_selector_parse(s, query, "urn:d", &sel, &why);
	if (err) {
		ck_assert_ptr_null(sel);
		ck_assert_msg(why && why[0], "no reason given for refusing %s", s);
	} else {
		ck_assert_ptr_nonnull(sel);
	}
	return err;
}

static void ok(const char *s, const char *query, enum xcap_node_kind kind)
{
	enum xdms_err err = parse(s, query);

	ck_assert_msg(err == XDMS_ERR_OK, "expected %s (query %s) to parse, got %s", s, query ? query : "-",
		      xdms_err_name(err));
	ck_assert_msg(xcap_selector_kind(sel) == kind, "%s: expected kind %d, got %d", s, kind,
		      xcap_selector_kind(sel));
}

static void bad(const char *s, const char *query)
{
	enum xdms_err err = parse(s, query);

	ck_assert_msg(err == XDMS_ERR_PARSE, "expected %s (query %s) to be refused, got %s", s,
		      query ? query : "-", xdms_err_name(err));
}

/* GET of @s on @doc: the status and, for 200, the body. */
static unsigned get(const char *doc, const char *s, const char *query, char **body)
{
	struct xcap_node_result r;
	unsigned status;

	ck_assert_int_eq(parse(s, query), XDMS_ERR_OK);
	xcap_node_get(doc, strlen(doc), sel, &r);
	status = http_status_of(r.outcome);
	*body = r.body;
	r.body = NULL;
	xcap_node_result_cleanup(&r);
	return status;
}

START_TEST(valid_forms)
{
	ok("resource-lists", NULL, XCAP_NODE_ELEMENT);
	ok("resource-lists/list", NULL, XCAP_NODE_ELEMENT);
	ok("pcc/tel[2]", NULL, XCAP_NODE_ELEMENT);
	ok("*/*[3]", NULL, XCAP_NODE_ELEMENT);
	ok("*", NULL, XCAP_NODE_ELEMENT);
	/* RFC 4825 §6.3: position = 1*DIGIT; [0] parses (and selects nothing). */
	ok("a[0]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[00]", NULL, XCAP_NODE_ELEMENT);
	ok("a/*", NULL, XCAP_NODE_ELEMENT);
	ok("pcc/import-profile[@id=\"imp-0001\"]", NULL, XCAP_NODE_ELEMENT);
	ok("pcc/import-profile[@id='imp-0001']", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"&quot;\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x='\"']", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"'\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"a&amp;b&lt;&gt;&apos;\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"&#65;&#x263A;\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[@x=\"a b/c]d[e\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[2][@x=\"y\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/*[2][@x=\"y\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[007]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b[4294967294]", NULL, XCAP_NODE_ELEMENT);
	ok("a/b/@x", NULL, XCAP_NODE_ATTRIBUTE);
	ok("a/b[1]/@x", NULL, XCAP_NODE_ATTRIBUTE);
	ok("a/b/@p:x", "xmlns(p=urn:p)", XCAP_NODE_ATTRIBUTE);
	ok("a/b/@xml:lang", NULL, XCAP_NODE_ATTRIBUTE);
	ok("a/b/namespace::*", NULL, XCAP_NODE_NAMESPACES);
	ok("a/namespace::*", NULL, XCAP_NODE_NAMESPACES);
	ok("p:a/q:b", "xmlns(p=urn:p)xmlns(q=urn:q)", XCAP_NODE_ELEMENT);
	ok("p:a/q:b", "xmlns(p=\"urn:p\")xmlns(q='urn:q')", XCAP_NODE_ELEMENT);
	ok("p:a/q:b", "xmlns(p=urn:p) xmlns( q = urn:q )", XCAP_NODE_ELEMENT);
	ok("p:a/q:b", "xmlns(p=urn:p)xmlns(q=%22urn:q%22)", XCAP_NODE_ELEMENT);
	ok("p:a", "xmlns(p=urn:a^(b^)c^^)", XCAP_NODE_ELEMENT);
	ok("p:a", "xmlns(p=urn:old)xmlns(p=urn:new)", XCAP_NODE_ELEMENT);
	ok("a/p:b[@q:c=\"1\"]", "xmlns(p=urn:p)xmlns(q=urn:q)", XCAP_NODE_ELEMENT);
	ok("a", "", XCAP_NODE_ELEMENT);
	ok("J\xc3\xbcrgen/\xe3\x81\x82[@n=\"\xe2\x98\xba\"]", NULL, XCAP_NODE_ELEMENT);
	ok("a.b/c-d/_e/f9", NULL, XCAP_NODE_ELEMENT);
	ok("a\xcc\x80\xc2\xb7/\xef\xbb\xbf", NULL, XCAP_NODE_ELEMENT); /* XML 1.0 fifth edition name classes */
	ok("namespace", NULL, XCAP_NODE_ELEMENT);
	ok("a/namespace", NULL, XCAP_NODE_ELEMENT);
}
END_TEST

START_TEST(invalid_forms)
{
	const char *refused[] = {
		"",
		"/a",
		"a/",
		"a//b",
		"a/b/",
		"a[]",
		"a[-1]",
		"a[+1]",
		"a[1 ]",
		"a[ 1]",
		"a[4294967295]",
		"a[99999999999999999999]",
		"a[@x=v]",
		"a[@x=\"v]",
		"a[@x='v\"]",
		"a[@x=\"v\"",
		"a[@x=\"<\"]",
		"a[@x=\"&\"]",
		"a[@x=\"&foo;\"]",
		"a[@x=\"&#0;\"]",
		"a[@x = \"v\"]",
		"a[@x=\"v\"][1]",
		"a[1][2]",
		"a[1][@x=\"v\"][@y=\"w\"]",
		"a[@x=\"v\"][@y=\"w\"]",
		"a[x=\"v\"]",
		"a[1 + 1]",
		"a[position()=1]",
		"a[last()]",
		"a/text()",
		"a/..",
		"a/.",
		"..",
		"a/b/@x/c",
		"@x",
		"a/@",
		"a/@*",
		"a/@xmlns",
		"a/@xmlns:p",
		"a[@xmlns=\"u\"]",
		"a/namespace::*/b",
		"namespace::*",
		"a/namespace::x",
		"a/child::b",
		"a/b c",
		"a /b",
		"a|b",
		"a:b:c",
		"p:",
		":a",
		"1a",
		"-a",
		"a/*:b",
		"a/p:*",
		"a\xff",
		"a/b[@x=\"\xc3\"]",
		"a/@x\xef\x9b\xbf",       /* U+F6FF (private use) is no name character */
		"\xcc\x80" "a",          /* U+0300 may not start a name */
		"a/\xc2\xb7",             /* neither may U+00B7 */
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		bad(refused[i], NULL);
	/* Prefixes need bindings. */
	bad("p:a", NULL);
	bad("p:a", "xmlns(q=urn:q)");
	bad("a/@p:x", NULL);
	bad("a[@p:x=\"1\"]", NULL);
}
END_TEST

START_TEST(invalid_bindings)
{
	bad("a", "xmlns(p=urn:p");
	bad("a", "xmlns(p)");
	bad("a", "xmlns(=urn:p)");
	bad("a", "xmlns(p=)");
	bad("a", "xmlns(p=\"\")");
	bad("a", "xmlns(p=\"urn:p)");
	bad("a", "xmlns(p=urn^x)");
	bad("a", "xmlns(p=urn(x)");
	bad("a", "xmlns(xmlns=urn:x)");
	bad("a", "xmlns(xml=urn:x)");
	bad("a", "foo=bar");
	bad("a", "xmlns(p=urn:p)&x=1");
	bad("a", "xpointer(/a)");
	bad("a", "xmlns(p=urn:p)%");
	bad("a", "xmlns(p=urn:p)%zz");
	bad("a", "xmlns(1p=urn:p)");
	bad("a", "xmlns(%E0=urn:p)");
	bad("a", "xmlns(p=urn:%FF)");
	ok("a", "xmlns(xml=http://www.w3.org/XML/1998/namespace)", XCAP_NODE_ELEMENT);
}
END_TEST

START_TEST(namespaces_in_evaluation)
{
	const char *doc = "<r xmlns=\"urn:d\" xmlns:x=\"urn:p\"><x:a/><a n=\"1\"/></r>";
	char *body;

	/* Unprefixed element names are in the default namespace (urn:d here). */
	ck_assert_uint_eq(get(doc, "r/a", NULL, &body), 200);
	ck_assert_str_eq(body, "<a n=\"1\"/>");
	free(body);
	ck_assert_uint_eq(get(doc, "r/p:a", "xmlns(p=urn:p)", &body), 200);
	ck_assert_str_eq(body, "<x:a/>");
	free(body);
	/* The later binding of a prefix wins. */
	ck_assert_uint_eq(get(doc, "r/p:a", "xmlns(p=urn:q)xmlns(p=urn:p)", &body), 200);
	free(body);
	ck_assert_uint_eq(get(doc, "r/p:a", "xmlns(p=%22urn:p%22)", &body), 200);
	free(body);
	/* Unprefixed attribute names are in no namespace. */
	ck_assert_uint_eq(get(doc, "r/a[@n=\"1\"]", NULL, &body), 200);
	free(body);
	ck_assert_uint_eq(get(doc, "r/a[@p:n=\"1\"]", "xmlns(p=urn:d)", &body), 404);
	ck_assert_ptr_null(body);
}
END_TEST

START_TEST(null_tolerant_free)
{
	xcap_selector_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_selector");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_add_test(tc, valid_forms);
	tcase_add_test(tc, invalid_forms);
	tcase_add_test(tc, invalid_bindings);
	tcase_add_test(tc, namespaces_in_evaluation);
	tcase_add_test(tc, null_tolerant_free);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_NOFORK);
	xcap_selector_free(sel);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
