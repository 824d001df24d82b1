/* SPDX-License-Identifier: MIT */
/* Unit tests for XCAP URI parsing (RFC 4825 §6) and XUI handling. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "xcap/xcap.h"
#include "unit.h"

static struct xcap_uri u;

static enum xdms_err parse(const char *path, const char *query)
{
	xcap_uri_cleanup(&u);
	return xcap_uri_parse("/xcap-root", path, query, &u);
}

START_TEST(user_document)
{
	ck_assert_int_eq(parse("/xcap-root/org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index", NULL),
			 XDMS_ERR_OK);
	ck_assert_str_eq(u.auid, "org.openmobilealliance.cab-pcc");
	ck_assert(!u.is_global);
	ck_assert_str_eq(u.xui, "sip:alice@example.com");
	ck_assert_str_eq(u.doc_path, "index");
	ck_assert_str_eq(u.doc_selector, "org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index");
	ck_assert_ptr_null(u.node_selector);
	ck_assert_ptr_null(u.query);
}
END_TEST

START_TEST(global_and_subdirectories)
{
	ck_assert_int_eq(parse("/xcap-root/xcap-caps/global/index", NULL), XDMS_ERR_OK);
	ck_assert(u.is_global);
	ck_assert_ptr_null(u.xui);
	ck_assert_str_eq(u.doc_selector, "xcap-caps/global/index");
	ck_assert_int_eq(parse("/xcap-root/resource-lists/users/tel:+15555550101/dir/sub/doc.xml", NULL),
			 XDMS_ERR_OK);
	ck_assert_str_eq(u.xui, "tel:+15555550101");
	ck_assert_str_eq(u.doc_path, "dir/sub/doc.xml");
}
END_TEST

START_TEST(percent_decoding_per_segment)
{
	/* An encoded "/" inside the XUI stays part of it. */
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a%2Fb@example.com/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(u.xui, "sip:a/b@example.com");
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip%3Aalice%40example.com/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(u.xui, "sip:alice@example.com");
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:%E3%81%82@example.com/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(u.xui, "sip:\xe3\x81\x82@example.com");
}
END_TEST

START_TEST(node_selector)
{
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/index/~~/resource-lists/list%5B@name=%22a%22%5D",
			       "xmlns(p=urn:x)"),
			 XDMS_ERR_OK);
	ck_assert_str_eq(u.doc_selector, "rl/users/sip:a@x/index");
	ck_assert_str_eq(u.node_selector, "resource-lists/list[@name=\"a\"]");
	ck_assert_str_eq(u.query, "xmlns(p=urn:x)");
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/index/%7E%7E/resource-lists", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(u.node_selector, "resource-lists");
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/~~/x", NULL), XDMS_ERR_NOTFOUND);
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/index/~~/", NULL), XDMS_ERR_NOTFOUND);
}
END_TEST

START_TEST(not_found_shapes)
{
	const char *bad[] = {
		"/other/rl/users/sip:a@x/index",
		"/xcap-root",
		"/xcap-root/",
		"/xcap-root/rl",
		"/xcap-root/rl/",
		"/xcap-root/rl/global",
		"/xcap-root/rl/global/",
		"/xcap-root/rl/users",
		"/xcap-root/rl/users/",
		"/xcap-root/rl/users/sip:a@x",
		"/xcap-root/rl/users/sip:a@x/",
		"/xcap-root/rl/users//index",
		"/xcap-root/rl/elsewhere/sip:a@x/index",
		"/xcap-root/rl/users/sip:a@x/dir//index",
		"/xcap-root/rl/users/sip:a@x/../index",
		"/xcap-root/rl/users/sip:a@x/index/",
		"/xcap-rootX/rl/global/index",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], NULL) == XDMS_ERR_NOTFOUND, "expected NOTFOUND for %s", bad[i]);
}
END_TEST

START_TEST(bad_escapes)
{
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a%zz@x/index", NULL), XDMS_ERR_PARSE);
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/index%", NULL), XDMS_ERR_PARSE);
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a@x/index%4", NULL), XDMS_ERR_PARSE);
	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:a%00@x/index", NULL), XDMS_ERR_PARSE);
}
END_TEST

START_TEST(too_long)
{
	char path[3000];

	strcpy(path, "/xcap-root/rl/users/sip:a@x/");
	memset(path + strlen(path), 'd', 2000);
	path[28 + 2000] = '\0';
	ck_assert_int_eq(parse(path, NULL), XDMS_ERR_TOOBIG);
}
END_TEST

START_TEST(xui_and_realm)
{
	char user[64], host[64], buf[64];

	ck_assert(xcap_xui_split("sip:alice@example.com", user, sizeof(user), host, sizeof(host)));
	ck_assert_str_eq(user, "alice");
	ck_assert_str_eq(host, "example.com");
	ck_assert(xcap_xui_split("sips:bob@b.example.org:5061;transport=tls", user, sizeof(user), host,
				 sizeof(host)));
	ck_assert_str_eq(host, "b.example.org");
	ck_assert(xcap_xui_split("tel:+15555550101;phone-context=x", user, sizeof(user), host, sizeof(host)));
	ck_assert_str_eq(user, "+15555550101");
	ck_assert_str_eq(host, "");
	ck_assert(!xcap_xui_split("mailto:a@b", user, sizeof(user), host, sizeof(host)));
	ck_assert(!xcap_xui_split("sip:@b", user, sizeof(user), host, sizeof(host)));
	ck_assert(!xcap_xui_split("sip:a@b\"c", user, sizeof(user), host, sizeof(host)));

	ck_assert_int_eq(parse("/xcap-root/rl/users/sip:alice@example.com/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(xcap_uri_realm(&u, "default", buf, sizeof(buf)), "example.com");
	ck_assert_int_eq(parse("/xcap-root/rl/users/tel:+1555/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(xcap_uri_realm(&u, "default", buf, sizeof(buf)), "default");
	ck_assert_int_eq(parse("/xcap-root/rl/global/index", NULL), XDMS_ERR_OK);
	ck_assert_str_eq(xcap_uri_realm(&u, "default", buf, sizeof(buf)), "default");
	ck_assert_str_eq(xcap_uri_realm(NULL, "default", buf, sizeof(buf)), "default");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_uri");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, user_document);
	tcase_add_test(tc, global_and_subdirectories);
	tcase_add_test(tc, percent_decoding_per_segment);
	tcase_add_test(tc, node_selector);
	tcase_add_test(tc, not_found_shapes);
	tcase_add_test(tc, bad_escapes);
	tcase_add_test(tc, too_long);
	tcase_add_test(tc, xui_and_realm);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_NOFORK);
	xcap_uri_cleanup(&u);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
