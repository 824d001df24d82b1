/* SPDX-License-Identifier: MIT */
/* Unit tests for the pure parts of src/iwf and src/xml/xslt.c: URL
 * templates, field lists, the PCC merge and export selection, XSLT under
 * the security policy, and sealed credentials over a temporary store. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iwf/iwf.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"
#include "unit.h"

#define PCC_HEAD "<pcc xmlns=\"urn:oma:xml:cab:pcc\"><person-details>"
#define PCC_TAIL "</person-details></pcc>"
#define TEL(pref, num) \
	"<tel pref=\"" pref "\" tel-type=\"Home\"><tel-nb><tel-string>" num "</tel-string></tel-nb></tel>"
#define NAME(dn) "<name><name-entry><display-name>" dn "</display-name></name-entry></name>"

/* Watches poll at their own phase of the interval: 10,000 of them spread
 * over a minute put no second above twice the mean, and each watch's next
 * slot is within one interval, after now, and the same every time. */
START_TEST(watch_slots_spread)
{
	enum { WATCHES = 10000, INTERVAL_S = 60 };
	unsigned per_second[INTERVAL_S] = { 0 }, max = 0;
	const uint64_t now = 1700000000123ull, interval = INTERVAL_S * 1000ull;
	char xui[64], rid[32];

	for (unsigned i = 0; i < WATCHES; i++) {
		uint64_t slot, again;

		snprintf(xui, sizeof(xui), "sip:user%u@example.com", i / 3);
		snprintf(rid, sizeof(rid), "sub-%u", i % 3);
		slot = iwf_watch_next_slot(xui, rid, interval, now);
		again = iwf_watch_next_slot(xui, rid, interval, now);
		ck_assert_uint_eq(slot, again);
		ck_assert(slot > now && slot <= now + interval);
		/* The next one after that slot is one interval later: a steady rhythm. */
		ck_assert_uint_eq(iwf_watch_next_slot(xui, rid, interval, slot), slot + interval);
		per_second[(slot - now - 1) / 1000]++;
	}
	for (unsigned s = 0; s < INTERVAL_S; s++)
		max = per_second[s] > max ? per_second[s] : max;
	ck_assert_msg(max * INTERVAL_S <= 2u * WATCHES, "busiest second has %u polls, mean %u", max,
		      WATCHES / INTERVAL_S);
}
END_TEST

START_TEST(url_templates)
{
	char *out = NULL, *why = NULL;

	ck_assert_int_eq(iwf_url_expand("http://h:1/p/{remote-user}/{xui}?x=1", "a/b?c@d", "sip:al@ex.com", &out, &why),
			 XDMS_ERR_OK);
	ck_assert_str_eq(out, "http://h:1/p/a%2Fb%3Fc%40d/sip%3Aal%40ex.com?x=1");
	free(out);
	ck_assert_int_eq(iwf_url_expand("http://h/{nope}", "a", "x", &out, &why), XDMS_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(why, "unknown placeholder"));
	free(why);
	ck_assert_int_eq(iwf_url_expand("http://h/{remote-user}", NULL, "x", &out, &why), XDMS_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(why, "<remote-user>"));
	free(why);
	ck_assert_int_eq(iwf_url_expand("file:///etc/passwd", "a", "x", &out, &why), XDMS_ERR_INVAL);
	free(why);
	ck_assert_ptr_null(out);
	/* A page or sync token goes back percent-encoded, after any query. */
	out = iwf_url_with_param("http://h/p?personFields=names", "pageToken", "a/b+c=&d");
	ck_assert_str_eq(out, "http://h/p?personFields=names&pageToken=a%2Fb%2Bc%3D%26d");
	free(out);
	out = iwf_url_with_param("http://h/p", "syncToken", "CPDd3Y-rMh_~.");
	ck_assert_str_eq(out, "http://h/p?syncToken=CPDd3Y-rMh_~.");
	free(out);
}
END_TEST

START_TEST(field_lists)
{
	unsigned mask;
	char *why = NULL;

	ck_assert_int_eq(iwf_fields_parse(NULL, &mask, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(mask, IWF_FIELD_ALL);
	ck_assert_int_eq(iwf_fields_parse(" fn\ttel ", &mask, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(mask, IWF_FIELD_NAME | IWF_FIELD_TEL);
	ck_assert_int_eq(iwf_fields_parse("fn shoe-size", &mask, &why), XDMS_ERR_INVAL);
	ck_assert_str_eq(why, "unknown field name 'shoe-size' in <fields>");
	free(why);
	ck_assert_uint_eq(iwf_fields_mask_lenient("shoe-size email"), IWF_FIELD_EMAIL);
}
END_TEST

static struct iwf_merge_out merge(const char *local, const char *imported, enum iwf_merge_policy p, unsigned fields)
{
	struct iwf_merge_out m;
	char *why = NULL;

	ck_assert_msg(iwf_merge(local, local ? strlen(local) : 0, imported, strlen(imported), p, fields, &m, &why) ==
			      XDMS_ERR_OK,
		      "merge: %s", why);
	return m;
}

START_TEST(merge_policies)
{
	const char *local = PCC_HEAD NAME("Local") "<comm-addr>" TEL("1", "tel:+1 555 0101") "</comm-addr>" PCC_TAIL;
	const char *imported = PCC_HEAD NAME("Remote") "<comm-addr>" TEL("1", "tel:+15550101") TEL("2", "tel:+15550199")
		"</comm-addr><career><employer>Co</employer></career>" PCC_TAIL;
	struct iwf_merge_out m;

	/* merge: the same number (normalized) is not added twice; the new one
	 * gets a free pref; a name-entry with another name is added. */
	m = merge(local, imported, IWF_MERGE, IWF_FIELD_ALL);
	ck_assert_uint_eq(m.count, 3);
	ck_assert(!m.is_partial);
	ck_assert_ptr_nonnull(strstr(m.doc, "<tel pref=\"2\" tel-type=\"Home\"><tel-nb><tel-string>tel:+15550199"));
	ck_assert_ptr_null(strstr(m.doc, "tel:+15550101<"));
	ck_assert_ptr_nonnull(strstr(m.doc, "<display-name>Remote</display-name>"));
	free(m.doc);
	/* add-only: only the absent group (career). */
	m = merge(local, imported, IWF_ADD_ONLY, IWF_FIELD_ALL);
	ck_assert_uint_eq(m.count, 1);
	ck_assert_ptr_null(strstr(m.doc, "Remote"));
	ck_assert_ptr_nonnull(strstr(m.doc, "<employer>Co</employer>"));
	free(m.doc);
	/* replace, tel only: comm-addr replaced (its two values), the rest
	 * filtered out and named. */
	m = merge(local, imported, IWF_REPLACE, IWF_FIELD_TEL);
	ck_assert_uint_eq(m.count, 2);
	ck_assert(m.is_partial);
	ck_assert_uint_eq(m.dropped, IWF_FIELD_NAME | IWF_FIELD_CAREER);
	ck_assert_uint_eq(m.person_count, 1);
	ck_assert_ptr_null(strstr(m.doc, "tel:+1 555 0101"));
	ck_assert_ptr_nonnull(strstr(m.doc, "<display-name>Local</display-name>"));
	ck_assert_ptr_null(strstr(m.doc, "Co<"));
	free(m.doc);
	/* merge again on its own result: nothing new (a re-run adds nothing). */
	m = merge(local, imported, IWF_MERGE, IWF_FIELD_ALL);
	{
		struct iwf_merge_out again = merge(m.doc, imported, IWF_MERGE, IWF_FIELD_ALL);

		ck_assert_uint_eq(again.count, 0);
		ck_assert(!again.is_changed);
		free(again.doc);
	}
	free(m.doc);
	/* No PCC yet: a new one. */
	m = merge(NULL, imported, IWF_MERGE, IWF_FIELD_ALL);
	ck_assert(m.is_changed);
	ck_assert_ptr_nonnull(strstr(m.doc, "<pcc xmlns=\"urn:oma:xml:cab:pcc\"><person-details><name>"));
	free(m.doc);
}
END_TEST

START_TEST(merge_refuses)
{
	struct iwf_merge_out m;
	char *why = NULL;
	const char *other = "<x xmlns=\"urn:other\"/>";

	ck_assert_int_eq(iwf_merge(NULL, 0, other, strlen(other), IWF_MERGE, IWF_FIELD_ALL, &m, &why), XDMS_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "no PCC person-details"));
	free(why);
	ck_assert_int_eq(iwf_merge(NULL, 0, "<pcc", 4, IWF_MERGE, IWF_FIELD_ALL, &m, &why), XDMS_ERR_PARSE);
	free(why);
}
END_TEST

START_TEST(dropped_fields_described)
{
	const char *two = PCC_HEAD NAME("Me") "</person-details><person-details>" NAME("Friend") PCC_TAIL;
	struct iwf_merge_out m;
	char what[256] = "";

	iwf_fields_describe(IWF_FIELD_TEL | IWF_FIELD_MEDIA | IWF_FIELD_OTHER, IWF_FIELD_ALL & ~IWF_FIELD_TEL,
			    IWF_FIELD_ALL & ~IWF_FIELD_MEDIA, what, sizeof(what));
	ck_assert_str_eq(what, "tel (not in <fields>), photo (not allowed by the user's preferences), "
			       "parts the PCC mapping does not know");
	/* Two people in one profile: the first is merged, the second counted. */
	m = merge(NULL, two, IWF_MERGE, IWF_FIELD_ALL);
	ck_assert_uint_eq(m.person_count, 2);
	ck_assert_uint_eq(m.count, 1);
	ck_assert_ptr_null(strstr(m.doc, "Friend"));
	free(m.doc);
}
END_TEST

START_TEST(export_selection)
{
	const char *pcc = PCC_HEAD NAME("One") "<comm-addr>" TEL("1", "tel:+1") "</comm-addr>" PCC_TAIL;
	char *out = NULL, *why = NULL;
	size_t len;
	unsigned count;
	unsigned dropped;

	ck_assert_int_eq(iwf_export_select(pcc, strlen(pcc), NULL, IWF_FIELD_ALL, &out, &len, &count, &dropped, &why),
			 XDMS_ERR_OK);
	ck_assert_uint_eq(count, 2);
	ck_assert_ptr_nonnull(strstr(out, "<display-name>One</display-name>"));
	free(out);
	ck_assert_int_eq(iwf_export_select(pcc, strlen(pcc), "pcc/person-details[1]", IWF_FIELD_NAME, &out, &len,
					   &count, &dropped, &why),
			 XDMS_ERR_OK);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(dropped, IWF_FIELD_TEL);
	free(out);
	ck_assert_int_eq(iwf_export_select(pcc, strlen(pcc), "pcc/person-details[2]", IWF_FIELD_ALL, &out, &len,
					   &count, &dropped, &why),
			 XDMS_ERR_NOTFOUND);
	free(why);
	ck_assert_int_eq(iwf_export_select(pcc, strlen(pcc), "pcc/../x", IWF_FIELD_ALL, &out, &len, &count,
					   &dropped, &why),
			 XDMS_ERR_INVAL);
	free(why);
}
END_TEST

static const char *sheet(const char *body)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
		 "<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\">"
		 "<xsl:param name=\"xui\"/><xsl:template match=\"/\">%s</xsl:template></xsl:stylesheet>",
		 body);
	return buf;
}

static enum xdms_err apply(const char *body, size_t max_out, char **out, char **why)
{
	const char *s = sheet(body);
	const char *params[] = { "xui", "it's \"quoted\"" };
	struct xml_xslt *x = NULL;
	size_t len;
	enum xdms_err err;

	ck_assert_msg(xml_xslt_compile(s, strlen(s), &x, why) == XDMS_ERR_OK, "compile: %s", *why);
	err = xml_xslt_apply(x, "<a/>", 4, params, 1, max_out, out, &len, why);
	xml_xslt_free(x);
	return err;
}

START_TEST(xslt_policy)
{
	char *out = NULL, *why = NULL;
	struct xml_xslt *x = NULL;
	char tmp[] = "/tmp/xdms-xslt-XXXXXX";
	char body[512];
	int fd;

	/* Parameters are literal strings, even with both quote characters. */
	ck_assert_int_eq(apply("<r><xsl:value-of select=\"$xui\"/></r>", 4096, &out, &why), XDMS_ERR_OK);
	ck_assert_ptr_nonnull(strstr(out, "<r>it's \"quoted\"</r>"));
	free(out);
	/* Reading a file is refused, though the file exists. */
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "<secret/>", 9), 9);
	close(fd);
	snprintf(body, sizeof(body), "<r><xsl:copy-of select=\"document('file://%s')\"/></r>", tmp);
	ck_assert_int_eq(apply(body, 4096, &out, &why), XDMS_ERR_PARSE);
	ck_assert_ptr_null(out);
	free(why);
	why = NULL;
	/* Writing one too. */
	snprintf(body, sizeof(body),
		 "<xsl:document xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" href=\"%s.out\"><x/></xsl:document><r/>",
		 tmp);
	(void)apply(body, 4096, &out, &why);
	free(out);
	free(why);
	why = NULL;
	snprintf(body, sizeof(body), "%s.out", tmp);
	ck_assert_int_ne(access(body, F_OK), 0);
	unlink(tmp);
	/* The output cap. */
	ck_assert_int_eq(apply("<r>0123456789012345678901234567890123456789</r>", 20, &out, &why), XDMS_ERR_TOOBIG);
	free(why);
	why = NULL;
	/* xsl:message terminate fails the transform. */
	ck_assert_int_eq(apply("<xsl:message terminate=\"yes\">no</xsl:message>", 4096, &out, &why), XDMS_ERR_PARSE);
	free(why);
	why = NULL;
	/* A broken stylesheet does not compile. */
	ck_assert_int_eq(xml_xslt_compile(sheet("<xsl:value-of/>"), strlen(sheet("<xsl:value-of/>")), &x, &why),
			 XDMS_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "not a valid XSLT 1.0 stylesheet"));
	free(why);
}
END_TEST

START_TEST(sealed_credentials)
{
	char dir[] = "/tmp/xdms-cred-XXXXXX", path[128], cmd[160];
	struct store_options so = { .path = NULL, .is_sync = false };
	struct iwf_cred in = { "alice", "pa55word", "" }, out;
	uint8_t key[IWF_KEY_LEN], key2[IWF_KEY_LEN], other[IWF_KEY_LEN];
	struct store *st = NULL;
	char *why = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	so.path = dir;
	ck_assert_int_eq(store_open(&so, &st), XDMS_ERR_OK);
	snprintf(path, sizeof(path), "%s/iwf.key", dir);
	ck_assert_int_eq(iwf_key_load(path, key, &why), XDMS_ERR_OK);
	ck_assert_int_eq(iwf_key_load(path, key2, &why), XDMS_ERR_OK);
	ck_assert_mem_eq(key, key2, IWF_KEY_LEN);
	ck_assert_int_eq(iwf_cred_save(st, key, "sip:a@x", "request:r1", &in, true), XDMS_ERR_OK);
	ck_assert_int_eq(iwf_cred_load(st, key, "sip:a@x", "request:r1", &out), XDMS_ERR_OK);
	ck_assert_str_eq(out.username, "alice");
	ck_assert_str_eq(out.password, "pa55word");
	ck_assert_int_eq(iwf_cred_load(st, key, "sip:a@x", "request:r2", &out), XDMS_ERR_NOTFOUND);
	memset(other, 7, sizeof(other));
	ck_assert_int_eq(iwf_cred_load(st, other, "sip:a@x", "request:r1", &out), XDMS_ERR_CORRUPT);
	ck_assert_str_eq(out.password, "");
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(adapter_kinds)
{
	const struct iwf_kind *x = iwf_kind_find("xcap"), *h = iwf_kind_find("http");

	/* One table of functions: every kind fetches and sends; both can be
	 * watched by a conditional GET; subscribe is room for SIP. */
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(iwf_kind_find("carddav"));
	ck_assert_ptr_null(iwf_kind_find("sip"));
	ck_assert_ptr_null(iwf_kind_find("XCAP"));
	ck_assert_ptr_eq(h->fetch, iwf_http_fetch);
	ck_assert_ptr_eq(h->send, iwf_http_send);
	ck_assert_ptr_nonnull(x->fetch);
	ck_assert_ptr_nonnull(x->send);
	ck_assert_ptr_null(x->subscribe);
	ck_assert_ptr_eq(h->poll, iwf_http_poll);
	ck_assert_ptr_eq(x->poll, iwf_http_poll);
	/* The defaults each kind's documents start from. */
	ck_assert_str_eq(x->content_type, "application/vnd.oma.cab-pcc+xml");
	ck_assert_int_eq(x->auth, IWF_AUTH_DIGEST);
	ck_assert_str_eq(x->import_xslt, "pcc-identity.xsl");
	ck_assert_str_eq(h->content_type, "application/xml");
	ck_assert_int_eq(h->auth, IWF_AUTH_NONE);
	ck_assert_ptr_null(h->import_xslt);
	ck_assert_str_eq(h->import_method, "GET");
	ck_assert_str_eq(h->export_method, "PUT");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("iwf");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, url_templates);
	tcase_add_test(tc, field_lists);
	tcase_add_test(tc, merge_policies);
	tcase_add_test(tc, merge_refuses);
	tcase_add_test(tc, export_selection);
	tcase_add_test(tc, dropped_fields_described);
	tcase_add_test(tc, xslt_policy);
	tcase_add_test(tc, sealed_credentials);
	tcase_add_test(tc, adapter_kinds);
	tcase_add_test(tc, watch_slots_spread);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
