/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for xcap-diff documents (RFC 5874) and RFC 5261 patches
 * (src/notify/diff.h). Detail-based patches are produced from real XCAP node
 * writes (xcap_node_put / xcap_node_delete) and must apply back to the new
 * document byte for byte; top-down diffs must apply to a document equal to
 * the new one in canonical XML (libxml2's C14N is the independent judge).
 */
#include "config.h"

#include <check.h>
#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "notify/diff.h"
#include "http/http.h"
#include "xcap/xcap.h"
#include "xml/xml.h"
#include "unit.h"

#define PCC_NS "urn:oma:xml:cab:pcc"
#define FH_NS "urn:oma:xml:cab:feature-handler"
#define TEST_NS "urn:test"

/* A patch is sent only when it is smaller than the new document (SPEC
 * §2.3). Small test documents carry this comment before their root, which
 * no patch touches, so that their patches fit. */
#define PAD                                                                                                       \
	"<!-- padding: a patch is sent only when it is smaller than the document. 0123456789 0123456789 0123456789 "  \
	"0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 "         \
	"0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 -->\n"

/* ---- helpers ---------------------------------------------------------------------------- */

static bool well_formed(const char *d, size_t len)
{
	struct xml_doc *x = NULL;
	struct xml_issue issue;

	if (xml_parse(d, len, 256, &x, &issue))
		return false;
	xml_doc_free(x);
	return true;
}

/* Canonical XML 1.0 with comments, as a heap string; NULL when libxml2
 * cannot read @d. */
static char *c14n(const char *d, size_t len)
{
	xmlDocPtr x = xmlReadMemory(d, (int)len, NULL, NULL, XML_PARSE_NONET);
	xmlChar *out = NULL;
	char *s = NULL;

	if (!x)
		return NULL;
	if (xmlC14NDocDumpMemory(x, NULL, XML_C14N_1_0, NULL, 1, &out) >= 0)
		s = xstrdup((const char *)out);
	xmlFree(out);
	xmlFreeDoc(x);
	return s;
}

static void assert_same_infoset(const char *a, size_t a_len, const char *b, size_t b_len)
{
	char *ca = c14n(a, a_len), *cb = c14n(b, b_len);

	ck_assert_msg(ca && cb, "C14N failed on\n%s\nor\n%s", a, b);
	ck_assert_msg(strcmp(ca, cb) == 0, "not the same infoset:\n got      %s\n expected %s", ca, cb);
	free(ca);
	free(cb);
}

/* One XCAP node write: the new document and the change feed's detail. */
struct change {
	char *new_doc;
	size_t new_len;
	char *detail;
};

static void change_cleanup(struct change *c)
{
	free(c->new_doc);
	free(c->detail);
	memset(c, 0, sizeof(*c));
}

/* PUT (@body not NULL) or DELETE @sel on @doc; the write must succeed. */
static struct change node_write(const char *doc, const char *sel_text, const char *query, const char *ns,
				const char *body)
{
	struct xcap_selector *sel = NULL;
	struct xcap_node_result r;
	struct change c = { 0 };
	const char *why = NULL;

	ck_assert_msg(xcap_selector_parse(sel_text, query, ns, &sel, &why) == XDMS_ERR_OK, "selector %s: %s", sel_text,
		      why ? why : "");
	if (body)
		xcap_node_put(doc, strlen(doc), sel, body, strlen(body), &r);
	else
		xcap_node_delete(doc, strlen(doc), sel, &r);
	xcap_selector_free(sel);
	ck_assert_msg(http_status_of(r.outcome) == 200 || http_status_of(r.outcome) == 201,
		      "%s %s: status %u (%s)", body ? "PUT" : "DELETE", sel_text,
		      http_status_of(r.outcome), r.error.phrase);
	c.new_doc = r.new_doc;
	c.new_len = r.new_len;
	c.detail = r.detail;
	r.new_doc = NULL;
	r.detail = NULL;
	xcap_node_result_cleanup(&r);
	return c;
}

/* diff_patch (no size trouble expected) into a fresh string. */
static char *patch(const char *old_doc, const char *new_doc, size_t new_len, const char *detail, const char *ns)
{
	struct buf ops;
	bool is_too_big = true;
	enum xdms_err err;

	buf_init(&ops, 1 << 20);
	err = diff_patch(old_doc, strlen(old_doc), new_doc, new_len, detail, ns, "p", &ops, &is_too_big);
	ck_assert_msg(err == XDMS_ERR_OK, "diff_patch: %s", xdms_err_name(err));
	ck_assert_msg(!is_too_big, "diff_patch said too big for\n%s\n->\n%s", old_doc, new_doc);
	return buf_take(&ops, NULL);
}

static char *apply(const char *doc, const char *ops, const char *ns, size_t *len)
{
	char *out = NULL;
	enum xdms_err err = diff_patch_apply(doc, strlen(doc), ops, strlen(ops), "p", ns, &out, len);

	ck_assert_msg(err == XDMS_ERR_OK, "apply %s on\n%s\nfailed: %s", ops, doc, xdms_err_name(err));
	return out;
}

/*
 * A node write on @doc, its detail-based patch (compared with @expect_ops
 * unless NULL), and the patch applied to @doc: exactly the new document.
 */
static void detail_roundtrip(const char *doc, const char *sel, const char *query, const char *ns, const char *body,
			     const char *expect_ops)
{
	struct change c = node_write(doc, sel, query, ns, body);
	char *ops = patch(doc, c.new_doc, c.new_len, c.detail, ns), *out;
	size_t out_len;

	if (expect_ops)
		ck_assert_msg(strcmp(ops, expect_ops) == 0, "%s:\n got      %s expected %s", c.detail, ops, expect_ops);
	ck_assert_msg(strlen(ops) > 0, "%s: no operation", c.detail);
	out = apply(doc, ops, ns, &out_len);
	ck_assert_msg(out_len == c.new_len && memcmp(out, c.new_doc, out_len) == 0,
		      "%s with\n%s applied:\n got      %s\n expected %s", c.detail, ops, out, c.new_doc);
	free(out);
	free(ops);
	change_cleanup(&c);
}

/* A top-down diff of @old_doc -> @new_doc (compared with @expect_ops unless
 * NULL), applied: the same infoset, and the same bytes when @is_exact. */
static void topdown_roundtrip(const char *old_doc, const char *new_doc, const char *ns, const char *expect_ops,
			      bool is_exact)
{
	char *ops = patch(old_doc, new_doc, strlen(new_doc), NULL, ns), *out;
	size_t out_len;

	if (expect_ops)
		ck_assert_msg(strcmp(ops, expect_ops) == 0, "\n got      %s expected %s", ops, expect_ops);
	out = apply(old_doc, ops, ns, &out_len);
	ck_assert(well_formed(out, out_len));
	assert_same_infoset(out, out_len, new_doc, strlen(new_doc));
	if (is_exact)
		ck_assert_msg(strcmp(out, new_doc) == 0, "with\n%s applied:\n got      %s\n expected %s", ops, out,
			      new_doc);
	free(out);
	free(ops);
}

/* A document of tests/integration/data (SPEC §6 fixtures), or NULL. */
static char *read_fixture(const char *name)
{
	static const char *const dirs[] = { "tests/integration/data", "tests/integration/data/usages" };
	const char *srcdir = getenv("XDMS_SRCDIR");
	char root[512], path[1024];
	FILE *f = NULL;
	struct buf b;
	char chunk[4096];
	size_t n;

	if (srcdir) {
		snprintf(root, sizeof(root), "%s", srcdir);
	} else {
		/* Built by hand: the source tree is three levels above this file. */
		const char *end = strstr(__FILE__, "tests/unit/notify/");

		snprintf(root, sizeof(root), "%.*s.", end ? (int)(end - __FILE__) : 0, __FILE__);
	}
	for (size_t i = 0; i < 2 && !f; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", root, dirs[i], name);
		f = fopen(path, "rb");
	}
	if (!f)
		return NULL;
	buf_init(&b, 1 << 22);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ck_assert(buf_append(&b, chunk, n) == XDMS_ERR_OK);
	fclose(f);
	return buf_take(&b, NULL);
}

/* ---- rendering (SPEC §2.5) ------------------------------------------------------------- */

/* INITIAL and PATCHED are, byte for byte, SPEC fixtures xcap-diff-initial.xml
 * and xcap-diff-patch.xml (the spec's fixture directory is not part of the
 * source tree). */

static const char *const INITIAL =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<xcap-diff xmlns=\"urn:ietf:params:xml:ns:xcap-diff\" xcap-root=\"http://xdms.example.com/xcap-root/\">\n"
	"  <document new-etag=\"pcc-0000000000000007\" "
	"sel=\"org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index\"/>\n"
	"  <document new-etag=\"fh-0000000000000003\" "
	"sel=\"org.openmobilealliance.cab-feature-handler/users/sip:alice@example.com/index\"/>\n"
	"  <document new-etag=\"ab-0000000000000002\" "
	"sel=\"org.openmobilealliance.cab-address-book/users/sip:alice@example.com/index\"/>\n"
	"</xcap-diff>\n";

#define OP_TEL                                                                                                   \
	"    <add sel=\"p:pcc/p:person-details/p:comm-addr\"><tel xmlns=\"urn:oma:xml:cab:pcc\" pref=\"3\" "           \
	"tel-type=\"Home\"><tel-nb><tel-string>tel:+15555550150</tel-string></tel-nb></tel></add>\n"
#define OP_URI                                                                                                   \
	"    <add sel=\"p:pcc/p:person-details/p:comm-addr\"><uri-entry xmlns=\"urn:oma:xml:cab:pcc\" pref=\"3\" "     \
	"addr-uri-type=\"Email\"><addr-uri>mailto:alice@acme.example</addr-uri><label>home</label></uri-entry>"   \
	"</add>\n"
#define OP_FH                                                                                                    \
	"    <add sel=\"f:cab-feature-handler/f:import-profile[@id='imp-0001']\"><response "                          \
	"xmlns=\"urn:oma:xml:cab:feature-handler\" status=\"success\" code=\"200\" updated=\"2024-05-01T10:00:07Z\" " \
	"seq=\"1\"><reason>profile imported</reason><imported-count>2</imported-count><pcc-etag>"                   \
	"pcc-0000000000000008</pcc-etag></response></add>\n"

static const char *const PATCHED =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<xcap-diff xmlns=\"urn:ietf:params:xml:ns:xcap-diff\" xmlns:p=\"urn:oma:xml:cab:pcc\" "
	"xmlns:f=\"urn:oma:xml:cab:feature-handler\" xcap-root=\"http://xdms.example.com/xcap-root/\">\n"
	"  <document previous-etag=\"pcc-0000000000000007\" new-etag=\"pcc-0000000000000008\" "
	"sel=\"org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index\">\n" OP_TEL OP_URI
	"  </document>\n"
	"  <document previous-etag=\"fh-0000000000000003\" new-etag=\"fh-0000000000000004\" "
	"sel=\"org.openmobilealliance.cab-feature-handler/users/sip:alice@example.com/index\">\n" OP_FH
	"  </document>\n"
	"</xcap-diff>\n";

START_TEST(render_initial_notify)
{
	const struct diff_document docs[] = {
		{ .sel = "org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index",
		  .new_etag = "pcc-0000000000000007" },
		{ .sel = "org.openmobilealliance.cab-feature-handler/users/sip:alice@example.com/index",
		  .new_etag = "fh-0000000000000003" },
		{ .sel = "org.openmobilealliance.cab-address-book/users/sip:alice@example.com/index",
		  .new_etag = "ab-0000000000000002" },
	};
	struct buf out;

	buf_init(&out, 1 << 16);
	ck_assert_int_eq(diff_render("http://xdms.example.com/xcap-root/", docs, 3, NULL, 0, NULL, &out), XDMS_ERR_OK);
	ck_assert_str_eq(out.data, INITIAL);
	ck_assert(well_formed(out.data, out.len));
	buf_cleanup(&out);
}
END_TEST

START_TEST(render_patch_notify)
{
	const char *const prefixes[] = { "p", PCC_NS, "f", FH_NS, NULL };
	const char *pcc_ops = OP_TEL OP_URI, *fh_ops = OP_FH;
	const struct diff_document docs[] = {
		{ .sel = "org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index",
		  .prev_etag = "pcc-0000000000000007",
		  .new_etag = "pcc-0000000000000008",
		  .ops = pcc_ops,
		  .ops_len = strlen(pcc_ops) },
		{ .sel = "org.openmobilealliance.cab-feature-handler/users/sip:alice@example.com/index",
		  .prev_etag = "fh-0000000000000003",
		  .new_etag = "fh-0000000000000004",
		  .ops = fh_ops,
		  .ops_len = strlen(fh_ops) },
	};
	struct buf out;

	buf_init(&out, 1 << 16);
	ck_assert_int_eq(diff_render("http://xdms.example.com/xcap-root/", docs, 2, NULL, 0, prefixes, &out),
			 XDMS_ERR_OK);
	ck_assert_str_eq(out.data, PATCHED);
	ck_assert(well_formed(out.data, out.len));
	buf_cleanup(&out);
}
END_TEST

START_TEST(render_other_entries)
{
	const struct diff_document docs[] = {
		{ .sel = "a/users/sip:x@y/index", .prev_etag = "e1", .new_etag = "e2", .is_body_not_changed = true },
		{ .sel = "a/users/sip:x@y/old", .prev_etag = "e9" },
		{ .sel = "a/users/sip:x@y/q&\"<", .new_etag = "\"quoted\"" },
	};
	const char *attr_value = "a&amp;b\tc"; /* as written between quotes */
	const struct diff_node nodes[] = {
		{ .sel = "a/users/sip:x@y/index/~~/r/e%5b@id=%22x%22%5d", .exists = true,
		  .content = "<e xmlns=\"urn:a\" id=\"x\"/>", .content_len = 25 },
		{ .sel = "a/users/sip:x@y/index/~~/r/f", .exists = false },
		{ .sel = "a/users/sip:x@y/index/~~/r/@v", .is_attribute = true, .exists = true,
		  .content = attr_value, .content_len = strlen(attr_value) },
		{ .sel = "a/users/sip:x@y/index/~~/r/@w", .is_attribute = true, .exists = false },
	};
	const char *expect =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<xcap-diff xmlns=\"urn:ietf:params:xml:ns:xcap-diff\" xcap-root=\"http://x/\">\n"
		"  <document previous-etag=\"e1\" new-etag=\"e2\" sel=\"a/users/sip:x@y/index\">\n"
		"    <body-not-changed/>\n"
		"  </document>\n"
		"  <document previous-etag=\"e9\" sel=\"a/users/sip:x@y/old\"/>\n"
		"  <document new-etag=\"&quot;quoted&quot;\" sel=\"a/users/sip:x@y/q&amp;&quot;&lt;\"/>\n"
		"  <element sel=\"a/users/sip:x@y/index/~~/r/e%5b@id=%22x%22%5d\">"
		"<e xmlns=\"urn:a\" id=\"x\"/></element>\n"
		"  <element sel=\"a/users/sip:x@y/index/~~/r/f\" exists=\"0\"/>\n"
		"  <attribute sel=\"a/users/sip:x@y/index/~~/r/@v\">a&amp;b c</attribute>\n"
		"  <attribute sel=\"a/users/sip:x@y/index/~~/r/@w\" exists=\"0\"/>\n"
		"</xcap-diff>\n";
	struct diff_document bad = { .sel = "s", .ops = "x", .ops_len = 1, .is_body_not_changed = true };
	const char *const odd[] = { "p", NULL };
	const char *const bad_prefix[] = { "1p", "urn:x", NULL };
	struct buf out;

	buf_init(&out, 1 << 16);
	ck_assert_int_eq(diff_render("http://x/", docs, 3, nodes, 4, NULL, &out), XDMS_ERR_OK);
	ck_assert_str_eq(out.data, expect);
	ck_assert(well_formed(out.data, out.len));
	buf_reset(&out);
	ck_assert_int_eq(diff_render("http://x/", NULL, 0, NULL, 0, NULL, &out), XDMS_ERR_OK);
	ck_assert_str_eq(out.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff "
				   "xmlns=\"urn:ietf:params:xml:ns:xcap-diff\" xcap-root=\"http://x/\">\n"
				   "</xcap-diff>\n");
	ck_assert_int_eq(diff_render("http://x/", &bad, 1, NULL, 0, NULL, &out), XDMS_ERR_INVAL);
	ck_assert_int_eq(diff_render("http://x/", NULL, 0, NULL, 0, odd, &out), XDMS_ERR_INVAL);
	ck_assert_int_eq(diff_render("http://x/", NULL, 0, NULL, 0, bad_prefix, &out), XDMS_ERR_INVAL);
	ck_assert_int_eq(diff_render(NULL, NULL, 0, NULL, 0, NULL, &out), XDMS_ERR_INVAL);
	/* A full buffer is TOOBIG, never a truncated document passed as OK. */
	buf_cleanup(&out);
	buf_init(&out, 40);
	ck_assert_int_eq(diff_render("http://x/", docs, 3, NULL, 0, NULL, &out), XDMS_ERR_TOOBIG);
	buf_cleanup(&out);
}
END_TEST

/* ---- detail-based patches -------------------------------------------------------------- */

static const char *const PCC =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<pcc xmlns=\"urn:oma:xml:cab:pcc\" pcc-type=\"individual\">\n"
	"  <person-details>\n"
	"    <comm-addr xml:lang=\"en\">\n"
	"      <tel pref=\"1\" tel-type=\"Mobile\"><tel-nb><tel-string>tel:+15555550101</tel-string></tel-nb></tel>\n"
	"      <tel pref=\"2\" tel-type=\"Work\"><tel-nb><tel-string>tel:+15555550199</tel-string></tel-nb></tel>\n"
	"      <uri-entry pref=\"1\" addr-uri-type=\"Email\"><addr-uri>mailto:alice@example.com</addr-uri>"
	"</uri-entry>\n"
	"    </comm-addr>\n"
	"    <career/>\n"
	"  </person-details>\n"
	"</pcc>\n";

#define TEL3                                                                                                   \
	"<tel xmlns=\"urn:oma:xml:cab:pcc\" pref=\"3\" tel-type=\"Home\"><tel-nb><tel-string>tel:+15555550150"   \
	"</tel-string></tel-nb></tel>"

START_TEST(detail_element_insert)
{
	/* node.c puts a new tel after the last tel: pos="after" on it. */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[@pref=\"3\"]", NULL, PCC_NS, TEL3,
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[2]\" pos=\"after\">" TEL3 "</add>\n");
	/* Position 1: before the current first tel. */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[1][@pref=\"0\"]", NULL, PCC_NS, "<tel pref=\"0\"/>",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[1]\" pos=\"before\"><tel pref=\"0\"  "
			 "xmlns=\"urn:oma:xml:cab:pcc\"/></add>\n");
	/* A name with no sibling yet: the last child, RFC 5261's plain <add>
	 * (the fixture's form). */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/label", NULL, PCC_NS,
			 "<label xmlns=\"urn:oma:xml:cab:pcc\">home</label>",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr\"><label "
			 "xmlns=\"urn:oma:xml:cab:pcc\">home</label></add>\n");
	/* An empty parent opens up, as node.c does it. */
	detail_roundtrip(PCC, "pcc/person-details/career/employer", NULL, PCC_NS,
			 "<employer a=\"1\">Example</employer>",
			 "    <add sel=\"p:pcc/p:person-details/p:career\"><employer a=\"1\"  "
			 "xmlns=\"urn:oma:xml:cab:pcc\">Example</employer></add>\n");
	/* "*" with a position. */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/*[4]", NULL, PCC_NS, "<uri-entry pref=\"9\"/>",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:uri-entry\" pos=\"after\"><uri-entry "
			 "pref=\"9\"  xmlns=\"urn:oma:xml:cab:pcc\"/></add>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/*[2][@pref=\"9\"]", NULL, PCC_NS, "<uri-entry pref=\"9\"/>",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[1]\" pos=\"after\"><uri-entry "
			 "pref=\"9\"  xmlns=\"urn:oma:xml:cab:pcc\"/></add>\n");
	/* Attribute-less elements, relying on the namespace in scope or
	 * declaring it: both come back as written. */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/label", NULL, PCC_NS, "<label>x</label>",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr\"><label  "
			 "xmlns=\"urn:oma:xml:cab:pcc\">x</label></add>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/label", NULL, PCC_NS,
			 "<label xmlns=\"urn:oma:xml:cab:pcc\"><x/></label>", NULL);
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/label", NULL, PCC_NS,
			 "<label xmlns=\"urn:oma:xml:cab:pcc\" a=\"1\" xmlns:q=\"urn:q\"/>", NULL);
	/* Nested content relying on a prefix declared above. */
	detail_roundtrip(PAD "<r xmlns=\"urn:test\" xmlns:x=\"urn:x\"><a/></r>", "r/b", NULL, TEST_NS,
			 "<b k=\"1\"><x:c x:d=\"2\"/></b>",
			 "    <add sel=\"p:r\"><b k=\"1\"  xmlns=\"urn:test\" "
			 "xmlns:x=\"urn:x\"><x:c x:d=\"2\"/></b></add>\n");
}
END_TEST

START_TEST(detail_element_replace_delete)
{
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[2]", NULL, PCC_NS,
			 "<tel pref=\"2\" tel-type=\"Home\"><label>x</label></tel>",
			 "    <replace sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[2]\"><tel pref=\"2\" "
			 "tel-type=\"Home\"  "
			 "xmlns=\"urn:oma:xml:cab:pcc\"><label>x</label></tel></replace>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/uri-entry", NULL, PCC_NS,
			 "<uri-entry xmlns=\"urn:oma:xml:cab:pcc\" pref=\"7\"/>", NULL);
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[2]", NULL, PCC_NS, NULL,
			 "    <remove sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[2]\"/>\n");
	detail_roundtrip(PCC, "pcc/person-details/career", NULL, PCC_NS, NULL,
			 "    <remove sel=\"p:pcc/p:person-details/p:career\"/>\n");
	/* The white space around a deleted element stays (node.c), and so in the patch. */
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/uri-entry", NULL, PCC_NS, NULL, NULL);
}
END_TEST

START_TEST(detail_attributes)
{
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[1]/@label", NULL, PCC_NS, "cell",
			 "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[1]\" type=\"@label\">cell</add>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/tel[1]/@pref", NULL, PCC_NS, "5",
			 "    <replace sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[1]/@pref\">5</replace>\n");
	detail_roundtrip(PCC, "pcc/@pcc-type", NULL, PCC_NS, NULL, "    <remove sel=\"p:pcc/@pcc-type\"/>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/@xml:lang", NULL, PCC_NS, NULL,
			 "    <remove sel=\"p:pcc/p:person-details/p:comm-addr/@xml:lang\"/>\n");
	detail_roundtrip(PCC, "pcc/person-details/comm-addr/@xml:lang", NULL, PCC_NS, "fr",
			 "    <replace sel=\"p:pcc/p:person-details/p:comm-addr/@xml:lang\">fr</replace>\n");
	/* Quotes and references travel as written; an empty value too. */
	detail_roundtrip(PCC, "pcc/person-details/@note", NULL, PCC_NS, "say \"hi\" &amp; &#x41;",
			 "    <add sel=\"p:pcc/p:person-details\" type=\"@note\">say \"hi\" &amp; &#x41;</add>\n");
	detail_roundtrip(PCC, "pcc/@pcc-type", NULL, PCC_NS, "it's", NULL);
	detail_roundtrip(PCC, "pcc/@pcc-type", NULL, PCC_NS, "", NULL);
	detail_roundtrip(PAD "<r xmlns=\"urn:test\" a='x\"y'/>", "r/@a", NULL, TEST_NS, "plain", NULL);
	/* A namespaced attribute keeps the document's prefix, declared on the op. */
	detail_roundtrip(PAD "<r xmlns=\"urn:test\" xmlns:q=\"urn:q\"><e q:v=\"1\"/></r>", "r/e/@q:w", "xmlns(q=urn:q)",
			 TEST_NS, "2",
			 "    <add sel=\"p:r/p:e\" type=\"@q:w\" xmlns:q=\"urn:q\">2</add>\n");
	detail_roundtrip(PAD "<r xmlns=\"urn:test\" xmlns:q=\"urn:q\"><e q:v=\"1\"/></r>", "r/e/@z:v", "xmlns(z=urn:q)",
			 TEST_NS, "3",
			 "    <replace sel=\"p:r/p:e/@q:v\" xmlns:q=\"urn:q\">3</replace>\n");
}
END_TEST

START_TEST(detail_namespaces_and_positions)
{
	const char *mixed = PAD "<r xmlns=\"urn:test\" xmlns:o=\"urn:other\"><o:x/><a/><o:x/><a/><o:x><a/></o:x></r>";
	const char *plain = PAD "<r><a/><b/><a>t</a></r>";

	/* Another namespace: a generated prefix, declared on the operation. */
	detail_roundtrip(mixed, "r/o:x[3]/a", "xmlns(o=urn:other)", TEST_NS, "<a>new</a>",
			 "    <replace sel=\"p:r/p1:x[3]/p:a\" xmlns:p1=\"urn:other\"><a  "
			 "xmlns=\"urn:test\">new</a></replace>\n");
	detail_roundtrip(mixed, "r/a[2]", NULL, TEST_NS, NULL, "    <remove sel=\"p:r/p:a[2]\"/>\n");
	/* No namespace at all: "*" counted among all elements. */
	detail_roundtrip(plain, "r/a[2]", NULL, "", NULL, "    <remove sel=\"*/*[3]\"/>\n");
	detail_roundtrip(plain, "r/b/c", NULL, "", "<c/>", "    <add sel=\"*/*[2]\"><c  xmlns=\"\"/></add>\n");
	/* The document's default namespace may differ from the usage's. */
	detail_roundtrip(PAD "<r xmlns=\"urn:x\"><a/></r>", "x:r/x:a/@k", "xmlns(x=urn:x)", TEST_NS, "v",
			 "    <add sel=\"p1:r/p1:a\" type=\"@k\" xmlns:p1=\"urn:x\">v</add>\n");
}
END_TEST

/* The IWF's import from SPEC §2.5, as element PUTs on the fixture document. */
START_TEST(detail_on_fixture)
{
	char *pcc = read_fixture("pcc-alice.xml");
	struct change c1, c2;
	char *ops1, *ops2, *both, *out;
	size_t out_len;

	ck_assert_msg(pcc != NULL, "tests/integration/data/pcc-alice.xml not found (set XDMS_SRCDIR)");
	c1 = node_write(pcc, "pcc/person-details/comm-addr/tel[@pref=\"3\"]", NULL, PCC_NS, TEL3);
	c2 = node_write(c1.new_doc, "pcc/person-details/comm-addr/uri-entry[@pref=\"3\"]", NULL, PCC_NS,
			"<uri-entry xmlns=\"urn:oma:xml:cab:pcc\" pref=\"3\" addr-uri-type=\"Email\"><addr-uri>"
			"mailto:alice@acme.example</addr-uri><label>home</label></uri-entry>");
	ops1 = patch(pcc, c1.new_doc, c1.new_len, c1.detail, PCC_NS);
	ops2 = patch(c1.new_doc, c2.new_doc, c2.new_len, c2.detail, PCC_NS);
	ck_assert_str_eq(ops1, "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:tel[2]\" pos=\"after\">" TEL3
			       "</add>\n");
	/* Aggregation: the two patches concatenated apply in order. */
	both = xasprintf("%s%s", ops1, ops2);
	out = apply(pcc, both, PCC_NS, &out_len);
	ck_assert(out_len == c2.new_len && memcmp(out, c2.new_doc, out_len) == 0);
	free(out);
	free(both);
	free(ops1);
	free(ops2);
	change_cleanup(&c1);
	change_cleanup(&c2);
	free(pcc);
}
END_TEST

/* What a patch cannot carry (diff.h): the same infoset, other bytes. */
START_TEST(detail_documented_inexact)
{
	const char *doc = PAD "<r xmlns=\"urn:test\"><a/></r>";
	struct change c;
	char *ops, *out;
	size_t out_len;

	/* An element that redeclares the binding in scope after two spaces
	 * looks like one "f" marked: it comes back without the declaration. */
	c = node_write(doc, "r/b", NULL, TEST_NS, "<b  xmlns=\"urn:test\">x</b>");
	ops = patch(doc, c.new_doc, c.new_len, c.detail, TEST_NS);
	ck_assert_str_eq(ops, "    <add sel=\"p:r\"><b  xmlns=\"urn:test\">x</b></add>\n");
	out = apply(doc, ops, TEST_NS, &out_len);
	ck_assert_str_eq(out, PAD "<r xmlns=\"urn:test\"><a/><b>x</b></r>");
	assert_same_infoset(out, out_len, c.new_doc, c.new_len);
	free(out);
	free(ops);
	change_cleanup(&c);
	/* An attribute value with a literal tab: sent as its value, a space. */
	c = node_write(doc, "r/a/@v", NULL, TEST_NS, "x\ty");
	ops = patch(doc, c.new_doc, c.new_len, c.detail, TEST_NS);
	ck_assert_str_eq(ops, "    <add sel=\"p:r/p:a\" type=\"@v\">x y</add>\n");
	out = apply(doc, ops, TEST_NS, &out_len);
	ck_assert_str_eq(out, PAD "<r xmlns=\"urn:test\"><a v=\"x y\"/></r>");
	assert_same_infoset(out, out_len, c.new_doc, c.new_len);
	free(out);
	free(ops);
	change_cleanup(&c);
}
END_TEST

START_TEST(detail_that_does_not_fit_falls_back)
{
	const char *old_doc = PAD "<r xmlns=\"urn:test\"><a/><b/></r>";
	const char *new_doc = PAD "<r xmlns=\"urn:test\"><a/><c/></r>";

	static const char *const details[] = { "delete-element r/a", "put-element insert r/c", "bogus",
						"put-attribute replace r/a/@x", "delete-element %zz" };

	/* The detail names another change: the top-down diff is used instead. */
	for (size_t i = 0; i < sizeof(details) / sizeof(details[0]); i++) {
		char *ops = patch(old_doc, new_doc, strlen(new_doc), details[i], TEST_NS);

		ck_assert_str_eq(ops, "    <replace sel=\"p:r/p:b\"><c  xmlns=\"urn:test\"/></replace>\n");
		free(ops);
	}
	topdown_roundtrip(old_doc, new_doc, TEST_NS, NULL, true);
}
END_TEST

/* ---- top-down diffs ------------------------------------------------------------------------ */

START_TEST(topdown_basic_changes)
{
	const char *base = PAD "<r xmlns=\"urn:test\">\n  <a k=\"1\">x</a>\n  <b/>\n</r>";

	/* Appended child, with the white space before it. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <a k=\"1\">x</a>\n  <b/>\n  <c/>\n</r>", TEST_NS,
			  "    <add sel=\"p:r/p:b\" pos=\"after\">\n  <c  xmlns=\"urn:test\"/></add>\n", true);
	/* Removed child: ws="before" takes its indentation. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <b/>\n</r>", TEST_NS,
			  "    <remove sel=\"p:r/p:a\" ws=\"before\"/>\n", true);
	/* Changed child: recursion down to the text. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <a k=\"1\">y</a>\n  <b/>\n</r>", TEST_NS,
			  "    <replace sel=\"p:r/p:a/text()\">y</replace>\n", true);
	/* Attributes: replaced, added, removed. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <a k=\"2\">x</a>\n  <b m=\"&amp;\"/>\n</r>", TEST_NS,
			  "    <add sel=\"p:r/p:b\" type=\"@m\">&amp;</add>\n"
			  "    <replace sel=\"p:r/p:a/@k\">2</replace>\n",
			  true);
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <a>x</a>\n  <b/>\n</r>", TEST_NS,
			  "    <remove sel=\"p:r/p:a/@k\"/>\n", true);
	/* An element with another name in the same place: replaced. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\">\n  <a k=\"1\">x</a>\n  <z/>\n</r>", TEST_NS,
			  "    <replace sel=\"p:r/p:b\"><z  xmlns=\"urn:test\"/></replace>\n", true);
	/* A child removed in the middle and another appended: two operations,
	 * not a replacement of every child in between. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><a/><b/><c/><d/></r>",
			  PAD "<r xmlns=\"urn:test\"><a/><c/><d/><e/></r>",
			  TEST_NS,
			  "    <add sel=\"p:r/p:d\" pos=\"after\"><e  xmlns=\"urn:test\"/></add>\n"
			  "    <remove sel=\"p:r/p:b\"/>\n",
			  true);
	/* Prepended. */
	topdown_roundtrip(base, PAD "<r xmlns=\"urn:test\"><c/>\n  <a k=\"1\">x</a>\n  <b/>\n</r>", TEST_NS, NULL,
			  true);
}
END_TEST

START_TEST(topdown_identical_and_too_big)
{
	struct buf ops;
	bool is_too_big = true;
	const char *doc = PAD "<r xmlns=\"urn:test\"><a>x</a></r>";

	buf_init(&ops, 1 << 16);
	ck_assert_int_eq(diff_patch(doc, strlen(doc), doc, strlen(doc), NULL, TEST_NS, "p", &ops, &is_too_big),
			 XDMS_ERR_OK);
	ck_assert(!is_too_big);
	ck_assert_uint_eq(ops.len, 0);
	/* Also when a detail says an element was replaced by the same bytes. */
	ck_assert_int_eq(diff_patch(doc, strlen(doc), doc, strlen(doc), "put-element replace r/a", TEST_NS, "p", &ops,
				    &is_too_big),
			 XDMS_ERR_OK);
	ck_assert(!is_too_big);
	ck_assert_uint_eq(ops.len, 0);
	/* Replacing everything costs more than the document. */
	{
		const char *a = "<r xmlns=\"urn:test\"><a>x</a></r>", *b = "<r xmlns=\"urn:test\"><q>y</q></r>";

		ck_assert_int_eq(diff_patch(a, strlen(a), b, strlen(b), NULL, TEST_NS, "p", &ops, &is_too_big),
				 XDMS_ERR_OK);
		ck_assert(is_too_big);
		ck_assert_uint_eq(ops.len, 0);
	}
	/* The same for a detail-based patch. */
	{
		const char *a = "<r xmlns=\"urn:test\"><a/></r>";
		struct change c = node_write(a, "r/a", NULL, TEST_NS, "<a>a much longer element than before</a>");

		is_too_big = false;
		ck_assert_int_eq(diff_patch(a, strlen(a), c.new_doc, c.new_len, c.detail, TEST_NS, "p", &ops,
					    &is_too_big),
				 XDMS_ERR_OK);
		ck_assert(is_too_big);
		ck_assert_uint_eq(ops.len, 0);
		change_cleanup(&c);
	}
	/* A renamed root, changed root declarations, a changed prolog: no patch. */
	{
		const char *a = "<!--x--><r xmlns=\"urn:test\">aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</r>";
		const char *b[] = {
			"<!--x--><s xmlns=\"urn:test\">aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</s>",
			"<!--x--><r xmlns=\"urn:test\" xmlns:q=\"urn:q\">"
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</r>",
			"<!--y--><r xmlns=\"urn:test\">aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</r>",
		};

		for (size_t i = 0; i < 3; i++) {
			is_too_big = false;
			ck_assert_int_eq(diff_patch(a, strlen(a), b[i], strlen(b[i]), NULL, TEST_NS, "p", &ops,
						    &is_too_big),
					 XDMS_ERR_OK);
			ck_assert_msg(is_too_big, "case %zu", i);
		}
		/* The XML declaration is not part of the infoset we patch. */
		topdown_roundtrip(a,
				  "<?xml version=\"1.0\"?>\n<!--x--><r xmlns=\"urn:test\">"
				  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</r>",
				  TEST_NS, NULL, false);
	}
	ck_assert_uint_eq(ops.len, 0);
	ck_assert_int_eq(diff_patch("<r/>", 4, "<r", 2, NULL, TEST_NS, "p", &ops, &is_too_big), XDMS_ERR_PARSE);
	ck_assert_int_eq(diff_patch("<r/>", 4, "<r/>", 4, NULL, TEST_NS, "xmlfoo", &ops, &is_too_big), XDMS_ERR_INVAL);
	ck_assert_int_eq(diff_patch("<r/>", 4, "<r/>", 4, NULL, TEST_NS, "a:b", &ops, &is_too_big), XDMS_ERR_INVAL);
	buf_cleanup(&ops);
}
END_TEST

START_TEST(topdown_mixed_content)
{
	/* Text, comments, PIs, CDATA; kinds changing places. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\">a<!--c--><?pi x?>b<e/>c</r>",
			  PAD "<r xmlns=\"urn:test\">a<!--d--><e/>b<?pi y?>c<![CDATA[<&>]]></r>", TEST_NS, NULL, true);
	/* "<r></r>" for "<r/>": the same infoset. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\">text only</r>", PAD "<r xmlns=\"urn:test\"/>", TEST_NS,
			  "    <remove sel=\"p:r/text()\"/>\n", false);
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"/>", PAD "<r xmlns=\"urn:test\">new &amp; text<e/></r>", TEST_NS,
			  "    <add sel=\"p:r\">new &amp; text<e  xmlns=\"urn:test\"/></add>\n", true);
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><e/>t<f/></r>", PAD "<r xmlns=\"urn:test\"><e/><f/></r>", TEST_NS,
			  "    <remove sel=\"p:r/text()\"/>\n", true);
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><e/><!--c--><f/></r>",
			  PAD "<r xmlns=\"urn:test\"><e/><g/><f/></r>",
			  TEST_NS, NULL, true);
	/* Many same-named siblings: positions counted while operations run. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><a/><b/><a/><b/><a/></r>",
			  PAD "<r xmlns=\"urn:test\"><b/><a/><a/><c/></r>",
			  TEST_NS, NULL, true);
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><a>1</a><a>2</a><a>3</a></r>",
			  PAD "<r xmlns=\"urn:test\"><a>1</a><a>x</a><a>3</a><a>4</a></r>", TEST_NS,
			  "    <add sel=\"p:r/p:a[3]\" pos=\"after\"><a  xmlns=\"urn:test\">4</a></add>\n"
			  "    <replace sel=\"p:r/p:a[2]/text()\">x</replace>\n",
			  true);
	/* Foreign namespaces, no namespace, prefixed attributes. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\" xmlns:o=\"urn:o\"><o:x o:a=\"1\"/><y xmlns=\"\"><z/></y></r>",
			  PAD "<r xmlns=\"urn:test\" xmlns:o=\"urn:o\"><o:x o:a=\"2\" o:b=\"3\"/>"
				"<y xmlns=\"\"><z k=\"1\"/>t</y></r>",
			  TEST_NS, NULL, true);
	/* Namespace declarations changed below the root: the element is replaced. */
	topdown_roundtrip(PAD "<r xmlns=\"urn:test\"><a xmlns:q=\"urn:q\"/><b/></r>",
			  PAD "<r xmlns=\"urn:test\"><a xmlns:q=\"urn:q2\"/><b/></r>", TEST_NS,
			  "    <replace sel=\"p:r/p:a\"><a xmlns:q=\"urn:q2\"  xmlns=\"urn:test\"/></replace>\n", true);
}
END_TEST

START_TEST(topdown_on_fixtures)
{
	char *a = read_fixture("pcc-alice.xml"), *b = read_fixture("pcc-alice-after-import.xml");

	ck_assert_msg(a && b, "fixtures not found (set XDMS_SRCDIR)");
	{
		/* One <add> after the last uri-entry; the elements come back
		 * without the declarations the patch gave them. */
		char *ops = patch(a, b, strlen(b), NULL, PCC_NS);

		ck_assert_msg(strncmp(ops, "    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:uri-entry[2]\" "
					   "pos=\"after\">\n      <tel pref=\"3\" tel-type=\"Home\"  "
					   "xmlns=\"urn:oma:xml:cab:pcc\">",
				      strlen("    <add sel=\"p:pcc/p:person-details/p:comm-addr/p:uri-entry[2]\" "
					     "pos=\"after\">\n      <tel pref=\"3\" tel-type=\"Home\" "
					     " xmlns=\"urn:oma:xml:cab:pcc\">")) == 0,
			      "got %s", ops);
		free(ops);
		topdown_roundtrip(a, b, PCC_NS, NULL, true);
		topdown_roundtrip(b, a, PCC_NS, NULL, true);
	}
	free(a);
	free(b);
	a = read_fixture("fh-requests.xml");
	b = read_fixture("fh-with-responses.xml");
	ck_assert_msg(a && b, "fixtures not found (set XDMS_SRCDIR)");
	{
		/* Anchored on the unchanged children: a <credentials> removed
		 * and a <response> added per profile, nothing else. */
		char *ops = patch(a, b, strlen(b), NULL, FH_NS);

		ck_assert_ptr_nonnull(strstr(ops, "    <remove "
						  "sel=\"p:cab-feature-handler/p:export-profile/p:credentials\" "
						  "ws=\"before\"/>\n"));
		ck_assert_ptr_nonnull(strstr(ops, "    <add "
						  "sel=\"p:cab-feature-handler/p:export-profile/p:source-sel\" "
						  "pos=\"after\">\n    <response "));
		ck_assert_ptr_null(strstr(ops, "<replace"));
		free(ops);
	}
	topdown_roundtrip(a, b, FH_NS, NULL, true);
	topdown_roundtrip(b, a, FH_NS, NULL, true);
	free(a);
	free(b);
}
END_TEST

/* A 10,000-entry list with 100 entries changed, one removed, one added: the
 * middle is too large for the LCS table and is anchored on unique entries. */
START_TEST(topdown_large_list)
{
	struct buf a, b;
	char *ops;

	buf_init(&a, 1 << 22);
	buf_init(&b, 1 << 22);
	ck_assert(!buf_append_str(&a, "<resource-lists xmlns=\"urn:test\">\n  <list name=\"l\">\n"));
	ck_assert(!buf_append_str(&b, "<resource-lists xmlns=\"urn:test\">\n  <list name=\"l\">\n"));
#define ENTRY "    <entry uri=\"sip:user%d@example.com\"><display-name>%s %d</display-name></entry>\n"
	for (int i = 0; i < 10000; i++) {
		ck_assert(!buf_printf(&a, ENTRY, i, "User", i));
		if (i == 7000)
			ck_assert(!buf_append_str(&b, "    <entry uri=\"sip:new@example.com\"/>\n"));
		if (i != 5000)
			ck_assert(!buf_printf(&b, ENTRY, i, i % 100 ? "User" : "Changed", i));
	}
#undef ENTRY
	ck_assert(!buf_append_str(&a, "  </list>\n</resource-lists>\n"));
	ck_assert(!buf_append_str(&b, "  </list>\n</resource-lists>\n"));
	ops = patch(a.data, b.data, b.len, NULL, TEST_NS);
	ck_assert_msg(strlen(ops) < 12000, "a patch of %zu bytes", strlen(ops));
	ck_assert_ptr_nonnull(strstr(ops, "    <remove sel=\"p:resource-lists/p:list/p:entry[5001]\" ws=\"before\"/>\n"));
	free(ops);
	topdown_roundtrip(a.data, b.data, TEST_NS, NULL, true);
	buf_cleanup(&a);
	buf_cleanup(&b);
}
END_TEST

/* ---- the applier's own refusals ------------------------------------------------------------- */

START_TEST(apply_refuses_outside_subset)
{
	const char *doc = PAD "<r xmlns=\"urn:test\"><a/><a/></r>";
	char *out = NULL;
	size_t len;
	static const struct {
		const char *ops;
		enum xdms_err err;
	} cases[] = {
		{ "<remove sel=\"p:r/p:a\"/>", XDMS_ERR_NOTFOUND },       /* two match */
		{ "<remove sel=\"p:r/p:a[3]\"/>", XDMS_ERR_NOTFOUND },
		{ "<remove sel=\"p:r/p:a[@k='1']\"/>", XDMS_ERR_UNSUPPORTED },
		{ "<remove sel=\"p:r\"/>", XDMS_ERR_INVAL },               /* the root */
		{ "<remove sel=\"p:r//p:a\"/>", XDMS_ERR_UNSUPPORTED },
		{ "<remove sel=\"q:r\"/>", XDMS_ERR_PARSE },                 /* unbound prefix */
		{ "<add sel=\"p:r/p:a[1]\" type=\"namespace::q\">urn:q</add>", XDMS_ERR_UNSUPPORTED },
		{ "<frob sel=\"p:r\"/>", XDMS_ERR_UNSUPPORTED },
		{ "<replace sel=\"p:r/p:a[1]\">text</replace>", XDMS_ERR_INVAL },
		{ "text<remove sel=\"p:r/p:a[1]\"/>", XDMS_ERR_UNSUPPORTED },
		{ "<remove sel=\"p:r/p:a[1]\"", XDMS_ERR_PARSE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum xdms_err err = diff_patch_apply(doc, strlen(doc), cases[i].ops, strlen(cases[i].ops), "p", TEST_NS,
						     &out, &len);

		ck_assert_msg(err == cases[i].err, "%s: expected %s, got %s", cases[i].ops, xdms_err_name(cases[i].err),
			      xdms_err_name(err));
		ck_assert_ptr_null(out);
	}
	/* And what it takes: ws on both sides, prepend, a leading "/". */
	{
		const char *d = "<r xmlns=\"urn:test\">\n <a/>\n <b/>\n</r>";
		const char *o = "<remove sel=\"/p:r/p:b\" ws=\"both\"/>"
				"<add sel=\"p:r\" pos=\"prepend\"><c xmlns=\"urn:test\"/></add>";

		ck_assert_int_eq(diff_patch_apply(d, strlen(d), o, strlen(o), "p", TEST_NS, &out, &len), XDMS_ERR_OK);
		ck_assert_str_eq(out, "<r xmlns=\"urn:test\"><c xmlns=\"urn:test\"/>\n <a/></r>");
		free(out);
		/* RFC 5261 §4.2.1: an unprefixed name is in the patch's default
		 * namespace (xcap-diff's here), not in the document's. */
		o = "<remove sel=\"r/p:a\"/>";
		ck_assert_int_eq(diff_patch_apply(d, strlen(d), o, strlen(o), "p", TEST_NS, &out, &len),
				 XDMS_ERR_NOTFOUND);
	}
}
END_TEST

/* ---- element and attribute reports ----------------------------------------------------------- */

START_TEST(node_content)
{
	const char *doc = PAD "<r xmlns=\"urn:test\" xmlns:q=\"urn:q\"><e q:k=\"a&amp;b\"><q:f/></e></r>";
	struct buf c;
	bool is_attr, exists;

	buf_init(&c, 1 << 16);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r/e", NULL, TEST_NS, &c, &is_attr, &exists), XDMS_ERR_OK);
	ck_assert(exists && !is_attr);
	ck_assert_str_eq(c.data, "<e q:k=\"a&amp;b\" xmlns=\"urn:test\" xmlns:q=\"urn:q\"><q:f/></e>");
	ck_assert(well_formed(c.data, c.len));
	buf_reset(&c);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r/e/@z:k", "xmlns(z=urn:q)", TEST_NS, &c, &is_attr,
					   &exists),
			 XDMS_ERR_OK);
	ck_assert(exists && is_attr);
	ck_assert_str_eq(c.data, "a&amp;b");
	buf_reset(&c);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r/x", NULL, TEST_NS, &c, &is_attr, &exists), XDMS_ERR_OK);
	ck_assert(!exists && !is_attr);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r/e/@nope", NULL, TEST_NS, &c, &is_attr, &exists),
			 XDMS_ERR_OK);
	ck_assert(!exists && is_attr);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r/e/namespace::*", NULL, TEST_NS, &c, &is_attr, &exists),
			 XDMS_ERR_UNSUPPORTED);
	ck_assert_int_eq(diff_node_content(doc, strlen(doc), "r//e", NULL, TEST_NS, &c, &is_attr, &exists),
			 XDMS_ERR_PARSE);
	buf_cleanup(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify_diff");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, render_initial_notify);
	tcase_add_test(tc, render_patch_notify);
	tcase_add_test(tc, render_other_entries);
	tcase_add_test(tc, detail_element_insert);
	tcase_add_test(tc, detail_element_replace_delete);
	tcase_add_test(tc, detail_attributes);
	tcase_add_test(tc, detail_namespaces_and_positions);
	tcase_add_test(tc, detail_on_fixture);
	tcase_add_test(tc, detail_documented_inexact);
	tcase_add_test(tc, detail_that_does_not_fit_falls_back);
	tcase_add_test(tc, topdown_basic_changes);
	tcase_add_test(tc, topdown_identical_and_too_big);
	tcase_add_test(tc, topdown_mixed_content);
	tcase_add_test(tc, topdown_on_fixtures);
	tcase_add_test(tc, topdown_large_list);
	tcase_add_test(tc, apply_refuses_outside_subset);
	tcase_add_test(tc, node_content);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
