/* SPDX-License-Identifier: MIT */
/* Unit tests for src/iwf/dav.c and the URL rules of the carddav kind:
 * multistatus answers of PROPFIND, sync-collection and multiget, their
 * caps, DAV:error preconditions, request bodies, and hrefs that must stay
 * on the adapter's server. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "iwf/iwf_int.h"
#include "xml/xml.h"
#include "unit.h"

#define SYNC_ANSWER                                                                                        \
	"<?xml version=\"1.0\"?><multistatus xmlns=\"DAV:\"><sync-token>http://r/ns/sync/7</sync-token>"  \
	"<response><href>/u/book/</href><status>HTTP/1.1 507 Insufficient Storage</status></response>"      \
	"<response><href>http://127.0.0.1:8/u/book/a.vcf</href><propstat><prop><getetag>\"e1\"</getetag>" \
	"</prop><status>HTTP/1.1 200 OK</status></propstat></response>"                                     \
	"<response><href>/u/book/b.vcf</href><status>HTTP/1.1 404 Not Found</status></response>"            \
	"</multistatus>"

START_TEST(sync_answer)
{
	struct iwf_dav_multistatus ms;
	char *why = NULL;

	ck_assert_int_eq(iwf_dav_parse(SYNC_ANSWER, strlen(SYNC_ANSWER), 10, 100, &ms, &why), XDMS_ERR_OK);
	ck_assert_ptr_null(why);
	ck_assert_str_eq(ms.sync_token, "http://r/ns/sync/7");
	ck_assert_uint_eq(ms.count, 3);
	ck_assert_str_eq(ms.items[0].href, "/u/book/");
	ck_assert_uint_eq(ms.items[0].status, 507);
	/* An absolute href keeps only its path. */
	ck_assert_str_eq(ms.items[1].href, "/u/book/a.vcf");
	ck_assert_uint_eq(ms.items[1].status, 200);
	ck_assert_str_eq(ms.items[1].etag, "\"e1\"");
	ck_assert_uint_eq(ms.items[2].status, 404);
	ck_assert_ptr_null(ms.items[2].etag);
	iwf_dav_multistatus_cleanup(&ms);
}
END_TEST

START_TEST(discovery_answer)
{
	static const char a[] =
		"<D:multistatus xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\"><D:response>"
		"<D:href>/u/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>"
		"<D:current-user-principal><D:href>/u/</D:href></D:current-user-principal>"
		"<C:addressbook-home-set><D:href> /u/ </D:href></C:addressbook-home-set></D:prop>"
		"<D:status>HTTP/1.1 200 OK</D:status></D:propstat><D:propstat><D:prop><D:displayname/></D:prop>"
		"<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
		"<D:response><D:href>/u/book/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"
		"<C:addressbook/></D:resourcetype><D:displayname>Work</D:displayname></D:prop>"
		"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>";
	struct iwf_dav_multistatus ms;
	char *why = NULL;

	ck_assert_int_eq(iwf_dav_parse(a, strlen(a), 10, 100, &ms, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(ms.count, 2);
	ck_assert(ms.items[0].is_collection && !ms.items[0].is_addressbook);
	ck_assert_str_eq(ms.items[0].principal, "/u/");
	ck_assert_str_eq(ms.items[0].home, "/u/");
	ck_assert_uint_eq(ms.items[0].status, 200);
	ck_assert(ms.items[1].is_addressbook);
	ck_assert_str_eq(ms.items[1].displayname, "Work");
	iwf_dav_multistatus_cleanup(&ms);
}
END_TEST

START_TEST(caps_and_refusals)
{
	static const char card[] = "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">"
				   "<response><href>/b/1.vcf</href><propstat><prop><C:address-data>"
				   "BEGIN:VCARD\nFN:0123456789012345678901234567890123456789\nEND:VCARD"
				   "</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat>"
				   "</response></multistatus>";
	struct iwf_dav_multistatus ms;
	char *why = NULL;

	/* Over the per-card cap: that card is not kept, but named (413, its
	 * size); over the item cap: the answer is refused. */
	ck_assert_int_eq(iwf_dav_parse(card, strlen(card), 10, 20, &ms, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(ms.count, 1);
	ck_assert_str_eq(ms.items[0].href, "/b/1.vcf");
	ck_assert_uint_eq(ms.items[0].status, 413);
	ck_assert_ptr_null(ms.items[0].data);
	ck_assert_uint_gt(ms.items[0].data_len, 20);
	iwf_dav_multistatus_cleanup(&ms);
	ck_assert_int_eq(iwf_dav_parse(SYNC_ANSWER, strlen(SYNC_ANSWER), 2, 100, &ms, &why), XDMS_ERR_TOOBIG);
	free(why);
	ck_assert_int_eq(iwf_dav_parse(card, strlen(card), 10, 200, &ms, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(ms.items[0].data_len, strlen(ms.items[0].data));
	iwf_dav_multistatus_cleanup(&ms);
	/* Not XML, not a multistatus, a response without href. */
	ck_assert_int_eq(iwf_dav_parse("<a", 2, 10, 10, &ms, &why), XDMS_ERR_PARSE);
	free(why);
	ck_assert_int_eq(iwf_dav_parse("<x xmlns=\"DAV:\"/>", 17, 10, 10, &ms, &why), XDMS_ERR_PARSE);
	free(why);
	ck_assert_int_eq(iwf_dav_parse("<multistatus xmlns=\"DAV:\"><response/></multistatus>", 52, 10, 10, &ms, &why),
			 XDMS_ERR_PARSE);
	free(why);
	/* An entity is not expanded from outside (the safe parser). */
	{
		static const char ent[] = "<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
					  "<multistatus xmlns=\"DAV:\"><response><href>&x;</href></response></multistatus>";

		ck_assert_int_ne(iwf_dav_parse(ent, strlen(ent), 10, 10, &ms, &why), XDMS_ERR_OK);
		free(why);
	}
}
END_TEST

START_TEST(error_preconditions)
{
	static const char e[] = "<error xmlns=\"DAV:\"><valid-sync-token/></error>";

	ck_assert(iwf_dav_error_has(e, strlen(e), IWF_DAV_NS, "valid-sync-token"));
	ck_assert(!iwf_dav_error_has(e, strlen(e), IWF_DAV_NS, "number-of-matches-within-limits"));
	ck_assert(!iwf_dav_error_has("<html/>", 7, IWF_DAV_NS, "valid-sync-token"));
	ck_assert(!iwf_dav_error_has(NULL, 0, IWF_DAV_NS, "valid-sync-token"));
}
END_TEST

START_TEST(request_bodies)
{
	const char *hrefs[] = { "/b/a&b.vcf", "/b/<c>.vcf" };
	char *sync = iwf_dav_sync_body("tok<&>"), *initial = iwf_dav_sync_body(NULL);
	char *mget = iwf_dav_multiget_body(hrefs, 2, 4096), *small = iwf_dav_multiget_body(hrefs, 2, 50);
	struct xml_doc *doc = NULL;
	struct xml_issue issue;

	/* Tokens and hrefs are opaque text, escaped, and the bodies parse. */
	ck_assert_ptr_nonnull(strstr(sync, "<D:sync-token>tok&lt;&amp;&gt;</D:sync-token>"));
	ck_assert_ptr_nonnull(strstr(initial, "<D:sync-token></D:sync-token>"));
	ck_assert_ptr_nonnull(strstr(mget, "<D:href>/b/a&amp;b.vcf</D:href>"));
	ck_assert_ptr_null(small);
	ck_assert_int_eq(xml_parse(mget, strlen(mget), 16, &doc, &issue), XDMS_ERR_OK);
	xml_doc_free(doc);
	ck_assert_int_eq(xml_parse(sync, strlen(sync), 16, &doc, &issue), XDMS_ERR_OK);
	xml_doc_free(doc);
	free(sync);
	free(initial);
	free(mget);
}
END_TEST

START_TEST(hrefs_stay_on_the_server)
{
	char *u;

	u = iwf_dav_url("https://dav.example.com:8443/u/book/", "/u/book/a.vcf");
	ck_assert_str_eq(u, "https://dav.example.com:8443/u/book/a.vcf");
	free(u);
	u = iwf_dav_url("https://dav.example.com/u/book/", "a.vcf");
	ck_assert_str_eq(u, "https://dav.example.com/u/book/a.vcf");
	free(u);
	u = iwf_dav_url("https://dav.example.com/u/book/", "https://DAV.example.com/u/book/a.vcf");
	ck_assert_ptr_nonnull(u);
	free(u);
	/* Credentials never follow an href to another host. */
	ck_assert_ptr_null(iwf_dav_url("https://dav.example.com/u/book/", "https://evil.example/u/a.vcf"));
	ck_assert_ptr_null(iwf_dav_url("https://dav.example.com/u/book/", "http://dav.example.com/u/a.vcf"));
	ck_assert_ptr_null(iwf_dav_url("https://dav.example.com/u/book/", ""));
}
END_TEST

START_TEST(carddav_kind)
{
	const struct iwf_kind *k = iwf_kind_find("carddav");

	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(k->book);
	ck_assert_ptr_nonnull(k->book->locate);
	ck_assert_ptr_nonnull(k->book->list);
	ck_assert_ptr_nonnull(k->book->fetch);
	ck_assert_str_eq(k->import_xslt, "xcard2pcc.xsl");
	ck_assert_str_eq(k->export_xslt, "pcc2xcard.xsl");
	ck_assert_int_eq(k->auth, IWF_AUTH_BASIC);
	ck_assert(!k->book->is_xcard && !k->book->list_cards && !k->book->create);
	/* The http kind's books are JSON ones (book_json.c), read as xCard. */
	ck_assert_ptr_eq(iwf_kind_find("http")->book, &iwf_json_book);
	ck_assert(iwf_json_book.is_xcard && iwf_json_book.list_cards && iwf_json_book.create);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dav");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, sync_answer);
	tcase_add_test(tc, discovery_answer);
	tcase_add_test(tc, caps_and_refusals);
	tcase_add_test(tc, error_preconditions);
	tcase_add_test(tc, request_bodies);
	tcase_add_test(tc, hrefs_stay_on_the_server);
	tcase_add_test(tc, carddav_kind);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
