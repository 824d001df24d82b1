/* SPDX-License-Identifier: MIT */
/* JSON <-> its XPath 3.1 XML representation (src/json), both ways. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "unit.h"
#include "xml/xml.h"

#define NS "xmlns=\"http://www.w3.org/2005/xpath-functions\""

static struct json_limits lim;

static void setup(void)
{
	json_limits_init(&lim);
}

/* JSON -> XML; NULL when refused (the reason goes to *why_out when given). */
static char *to_xml(const char *json, char **why_out)
{
	struct buf b;
	char *why = NULL;

	buf_init(&b, 1 << 20);
	if (json_to_xml(json, strlen(json), &lim, &b, &why)) {
		buf_cleanup(&b);
		ck_assert_ptr_nonnull(why);
		if (why_out)
			*why_out = why;
		else
			free(why);
		return NULL;
	}
	ck_assert_ptr_null(why);
	return buf_take(&b, NULL);
}

static char *to_json(const char *xml, char **why_out)
{
	struct buf b;
	char *why = NULL;

	buf_init(&b, 1 << 20);
	if (json_from_xml(xml, strlen(xml), &lim, &b, &why)) {
		buf_cleanup(&b);
		ck_assert_ptr_nonnull(why);
		if (why_out)
			*why_out = why;
		else
			free(why);
		return NULL;
	}
	return buf_take(&b, NULL);
}

static void expect_xml(const char *json, const char *xml)
{
	char *got = to_xml(json, NULL);

	ck_assert_msg(got && !strcmp(got, xml), "%s\n  expected %s\n  got      %s", json, xml, got ? got : "(refused)");
	free(got);
}

static void expect_json(const char *xml, const char *json)
{
	char *got = to_json(xml, NULL);

	ck_assert_msg(got && !strcmp(got, json), "%s\n  expected %s\n  got      %s", xml, json, got ? got : "(refused)");
	free(got);
}

static void expect_refused(const char *json, const char *words)
{
	char *why = NULL, *got = to_xml(json, &why);

	ck_assert_msg(!got, "%s was accepted as %s", json, got);
	ck_assert_msg(strstr(why, words), "%s: expected a reason with '%s', got '%s'", json, words, why);
	free(why);
}

START_TEST(json_to_xml_shapes)
{
	expect_xml("{}", "<map " NS "/>");
	expect_xml("[]", "<array " NS "/>");
	expect_xml("{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}",
		   "<map " NS "><number key=\"a\">1</number><array key=\"b\"><boolean>true</boolean>"
		   "<boolean>false</boolean><null/></array><string key=\"c\">x</string></map>");
	/* Members stay in document order. */
	expect_xml("{\"z\":1,\"a\":2}", "<map " NS "><number key=\"z\">1</number><number key=\"a\">2</number></map>");
	expect_xml("\"top\"", "<string " NS ">top</string>");
	/* XML specials are escaped; a key with a quote too. */
	expect_xml("{\"a\\\"<&\":\"<b>&amp;\"}",
		   "<map " NS "><string key=\"a&quot;&lt;&amp;\">&lt;b&gt;&amp;amp;</string></map>");
	/* Unicode escapes become characters. */
	expect_xml("[\"\\u00e9\\ud83d\\ude00\"]", "<array " NS "><string>\xc3\xa9\xf0\x9f\x98\x80</string></array>");
	/* A CR survives XML line-end normalisation as a reference. */
	expect_xml("[\"a\\r\\nb\"]", "<array " NS "><string>a&#13;\nb</string></array>");
}
END_TEST

START_TEST(numbers_keep_their_text)
{
	expect_xml("[123456789012345678901234567890, 0.1, -1.5e-300, 1E+2, 9223372036854775808]",
		   "<array " NS "><number>123456789012345678901234567890</number><number>0.1</number>"
		   "<number>-1.5e-300</number><number>1E+2</number><number>9223372036854775808</number></array>");
	/* Numbers inside strings are not numbers. */
	expect_xml("{\"1\":\"2\",\"n\":3}", "<map " NS "><string key=\"1\">2</string><number key=\"n\">3</number></map>");
	expect_refused("[1e400]", "not valid");
	expect_refused("[01]", "not valid");
}
END_TEST

START_TEST(escaped_form_for_what_xml_cannot_carry)
{
	expect_xml("[\"a\\u0001b\\\\c\"]", "<array " NS "><string escaped=\"true\">a\\u0001b\\\\c</string></array>");
	expect_xml("{\"k\\u0002\":1}", "<map " NS "><number escaped-key=\"true\" key=\"k\\u0002\">1</number></map>");
	/* And back again. */
	expect_json("<array " NS "><string escaped=\"true\">a\\u0001b\\\\c</string></array>", "[\"a\\u0001b\\\\c\"]");
	expect_json("<map " NS "><number escaped-key=\"true\" key=\"k\\u0002\">1</number></map>", "{\"k\\u0002\":1}");
	expect_json("<string " NS " escaped=\"true\">\\ud83d\\ude00 \\/ \\n</string>", "\"\xf0\x9f\x98\x80 / \\n\"");
}
END_TEST

START_TEST(refusals_and_caps)
{
	char *deep, *wide, *why = NULL;
	size_t i;

	expect_refused("{\"a\":1,}", "not valid");
	expect_refused("{\"a\":1,\"a\":2}", "not valid");
	expect_refused("[\"\xff\"]", "not valid");
	expect_refused("[\"\xc3\x28\"]", "not valid");
	expect_refused("[\"\\u0000\"]", "not valid");
	expect_refused("[\"\\ud800\"]", "not valid");
	expect_refused("", "not valid");
	expect_refused("[1] [2]", "not valid");
	expect_refused("/* no */ []", "not valid");
	deep = malloc(200);
	for (i = 0; i < 100; i++)
		deep[i] = '[';
	deep[i] = '\0';
	expect_refused(deep, "deeper than 64");
	free(deep);
	lim.max_members = 3;
	expect_refused("[1,2,3,4]", "more than 3 members");
	expect_refused("{\"a\":1,\"b\":1,\"c\":1,\"d\":1}", "more than 3 members");
	lim.max_string = 4;
	expect_refused("[\"12345\"]", "longer than 4");
	expect_refused("[123456]", "longer than 4");
	json_limits_init(&lim);
	lim.max_size = 10;
	expect_refused("[1,2,3,4,5,6]", "larger than 10");
	json_limits_init(&lim);
	/* The output buffer has its own cap. */
	wide = malloc(5000);
	wide[0] = '[';
	for (i = 1; i < 4000; i += 2)
		memcpy(wide + i, "1,", 2);
	memcpy(wide + i - 1, "1]", 3);
	{
		struct buf b;

		buf_init(&b, 1000);
		ck_assert_int_eq(json_to_xml(wide, strlen(wide), &lim, &b, &why), XDMS_ERR_TOOBIG);
		ck_assert_ptr_nonnull(strstr(why, "larger than 1000"));
		free(why);
		buf_cleanup(&b);
	}
	free(wide);
}
END_TEST

START_TEST(xml_to_json_shapes)
{
	expect_json("<map " NS "><string key=\"name\">Alice</string><array key=\"tel\"><string>+1</string>"
		    "<number>2.50</number></array><boolean key=\"b\"> 1 </boolean><null key=\"n\"/><map key=\"m\"/></map>",
		    "{\"name\":\"Alice\",\"tel\":[\"+1\",2.50],\"b\":true,\"n\":null,\"m\":{}}");
	/* Another prefix for the same namespace is the same element. */
	expect_json("<j:array xmlns:j=\"http://www.w3.org/2005/xpath-functions\"><j:string>\"q\"\t\\</j:string></j:array>",
		    "[\"\\\"q\\\"\\t\\\\\"]");
	expect_json("<number " NS "> 12345678901234567890123 </number>", "12345678901234567890123");
}
END_TEST

static void expect_xml_refused(const char *xml, const char *words)
{
	char *why = NULL, *got = to_json(xml, &why);

	ck_assert_msg(!got, "%s was accepted as %s", xml, got);
	ck_assert_msg(strstr(why, words), "%s: expected a reason with '%s', got '%s'", xml, words, why);
	free(why);
}

START_TEST(xml_to_json_refusals)
{
	expect_xml_refused("<map " NS "><string>no key</string></map>", "no key");
	expect_xml_refused("<map " NS "><string key=\"a\"/><number key=\"a\">1</number></map>", "appears twice");
	expect_xml_refused("<number " NS ">1.</number>", "not a JSON number");
	expect_xml_refused("<number " NS ">NaN</number>", "not a JSON number");
	expect_xml_refused("<boolean " NS ">yes</boolean>", "not a boolean");
	expect_xml_refused("<null " NS ">x</null>", "not empty");
	expect_xml_refused("<array " NS "><object/></array>", "not an element of the JSON representation");
	expect_xml_refused("<array><string/></array>", "not an element of the JSON representation");
	expect_xml_refused("<string " NS "><b/></string>", "element inside");
	expect_xml_refused("<string " NS " escaped=\"true\">\\x</string>", "bad escape");
	expect_xml_refused("<string " NS " escaped=\"true\">\\udc00</string>", "bad escape");
	expect_xml_refused("<array " NS ">", "does not parse");
}
END_TEST

/* JSON -> XML -> JSON gives the same compact text; XML -> JSON -> XML the same XML. */
START_TEST(round_trips)
{
	static const char *const docs[] = {
		"{\"connections\":[{\"resourceName\":\"people/c1\",\"names\":[{\"givenName\":\"Al\xc3\xaf" "ce\"}],"
		"\"phoneNumbers\":[{\"value\":\"+1 555\",\"type\":\"work\"}]}],\"nextPageToken\":\"p2\",\"totalItems\":3}",
		"[1.0,-0,1e5,\"\\u0007\",{\"\":\"empty key\"},[[[]]],null,true,\"tab\\tcr\\r\"]",
		"{\"@odata.nextLink\":\"https://graph.example/v1.0/me/contacts?$skip=10&x=<>\"}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char *xml = to_xml(docs[i], NULL), *json, *xml2;

		ck_assert_ptr_nonnull(xml);
		json = to_json(xml, NULL);
		ck_assert_msg(json && !strcmp(json, docs[i]), "round trip of %s gave %s via %s", docs[i], json, xml);
		xml2 = to_xml(json, NULL);
		ck_assert_str_eq(xml, xml2);
		free(xml);
		free(xml2);
		free(json);
	}
}
END_TEST

START_TEST(pointers)
{
	struct json_doc *d = NULL;
	char *why = NULL;
	long long v = 0;
	const char *text = "{\"nextPageToken\":\"t2\",\"@odata.deltaLink\":\"https://x/d\",\"a/b\":{\"~c\":\"deep\"},"
			   "\"list\":[\"zero\",\"one\"],\"expires_in\":3599,\"big\":123456789012345678901234567890,"
			   "\"half\":1.5}";

	ck_assert_int_eq(json_doc_parse(text, strlen(text), &lim, &d, &why), XDMS_ERR_OK);
	ck_assert_str_eq(json_doc_string(d, "/nextPageToken"), "t2");
	ck_assert_str_eq(json_doc_string(d, "/@odata.deltaLink"), "https://x/d");
	ck_assert_str_eq(json_doc_string(d, "/a~1b/~0c"), "deep");
	ck_assert_str_eq(json_doc_string(d, "/list/1"), "one");
	ck_assert_ptr_null(json_doc_string(d, "/list/01"));
	ck_assert_ptr_null(json_doc_string(d, "/list/2"));
	ck_assert_ptr_null(json_doc_string(d, "/missing"));
	ck_assert_ptr_null(json_doc_string(d, "/expires_in"));
	ck_assert_ptr_null(json_doc_string(d, "nextPageToken"));
	ck_assert(json_doc_integer(d, "/expires_in", &v));
	ck_assert_int_eq(v, 3599);
	ck_assert(!json_doc_integer(d, "/big", &v));
	ck_assert(!json_doc_integer(d, "/half", &v));
	ck_assert(!json_doc_integer(d, "/nextPageToken", &v));
	json_doc_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, json_to_xml_shapes);
	tcase_add_test(tc, numbers_keep_their_text);
	tcase_add_test(tc, escaped_form_for_what_xml_cannot_carry);
	tcase_add_test(tc, refusals_and_caps);
	tcase_add_test(tc, xml_to_json_shapes);
	tcase_add_test(tc, xml_to_json_refusals);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, pointers);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
