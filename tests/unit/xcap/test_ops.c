/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the XCAP document operations, through xcap.h, against a
 * temporary store: validation and its 409 bodies, preconditions, access
 * control, the registry and xcap-caps. No sockets.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "xcap/xcap.h"
#include "xml/xml.h"
#include "unit.h"

static char dir[] = "/tmp/xdms-ops-XXXXXX";
static struct store *st;
static struct xcap_registry *reg;
static struct xcap *x;

static const struct xcap_identity alice = { "sip:alice@example.com", XCAP_ROLE_USER };
static const struct xcap_identity bob = { "sip:bob@example.com", XCAP_ROLE_USER };
static const struct xcap_identity iwf = { "sip:iwf@example.com", XCAP_ROLE_SERVER };
static const struct xcap_identity admin = { "sip:admin@example.com", XCAP_ROLE_ADMIN };

#define PCC_TYPE "application/vnd.oma.cab-pcc+xml"
#define PCC_DOC "/xcap-root/org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index"
#define PCC_OK                                                                                          \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- mine -->\n<pcc xmlns=\"urn:oma:xml:cab:pcc\">" \
	"<person-details><name><name-entry><display-name>Al\xc3\xaf" "ce &amp; co</display-name>"         \
	"</name-entry></name></person-details></pcc>"

static void setup(void)
{
	struct store_options so = { .path = dir, .is_sync = false };
	struct xcap_registry_options ro = { .descriptor_dir = NULL, .max_document = 65536 };
	struct xcap_options xo = { .root_path = "/xcap-root", .root_uri = "", .max_depth = 32 };
	char *why = NULL;

	strcpy(dir, "/tmp/xdms-ops-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	xml_init();
	ck_assert_int_eq(store_open(&so, &st), XDMS_ERR_OK);
	ck_assert_msg(xcap_registry_create(&ro, &reg, &why) == XDMS_ERR_OK, "registry: %s", why);
	ck_assert_int_eq(xcap_create(st, reg, &xo, &x), XDMS_ERR_OK);
}

static void teardown(void)
{
	char cmd[128];

	xcap_destroy(x);
	store_close(st);
	xcap_registry_destroy(reg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Runs one request end to end and returns the status; @resp keeps the rest. */
static unsigned run(enum xcap_method m, const char *path, const struct xcap_identity *who, const char *type,
		    const char *body, const char *if_match, const char *if_none_match, struct xcap_response *resp)
{
	struct xcap_uri uri;
	struct xcap_request req = { 0 };
	struct xcap_write *w;

	xcap_response_init(resp);
	ck_assert_int_eq(xcap_uri_parse("/xcap-root", path, NULL, &uri), XDMS_ERR_OK);
	req.method = m;
	req.uri = &uri;
	req.content_type = type;
	req.if_match = if_match;
	req.if_none_match = if_none_match;
	req.body = body ? body : "";
	req.body_len = body ? strlen(body) : 0;
	req.who = who;
	req.base_url = "http://xdms.example.com";
	if (m == XCAP_METHOD_GET || m == XCAP_METHOD_HEAD) {
		xcap_read(x, &req, resp);
	} else {
		w = xcap_write_prepare(x, &req, resp);
		if (w) {
			xcap_write_run(x, w);
			xcap_write_finish(w, resp);
		}
	}
	xcap_uri_cleanup(&uri);
	return http_status_of(resp->outcome);
}

static unsigned put(const char *path, const struct xcap_identity *who, const char *body)
{
	struct xcap_response r;
	unsigned s = run(XCAP_METHOD_PUT, path, who, PCC_TYPE, body, NULL, NULL, &r);

	xcap_response_cleanup(&r);
	return s;
}

/* Asserts a 409 whose single child is @element, with a non-empty phrase. */
static void assert_conflict(struct xcap_response *r, const char *element)
{
	char needle[128];

	ck_assert_uint_eq(http_status_of(r->outcome), 409);
	ck_assert_str_eq(r->content_type, "application/xcap-error+xml");
	snprintf(needle, sizeof(needle), "<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\"><%s phrase=\"",
		 element);
	ck_assert_msg(strstr(r->body.data, needle), "expected <%s> in %s", element, r->body.data);
}

/* Every outcome has its status and reason in http/'s table, and its name. */
START_TEST(outcome_statuses)
{
	static const unsigned expect[XCAP_OUTCOME__COUNT] = {
		[XCAP_OUTCOME_OK] = 200, [XCAP_OUTCOME_CREATED] = 201, [XCAP_OUTCOME_NOT_MODIFIED] = 304,
		[XCAP_OUTCOME_BAD_REQUEST] = 400, [XCAP_OUTCOME_FORBIDDEN] = 403, [XCAP_OUTCOME_NOT_FOUND] = 404,
		[XCAP_OUTCOME_NOT_ALLOWED] = 405, [XCAP_OUTCOME_CONFLICT] = 409,
		[XCAP_OUTCOME_PRECONDITION_FAILED] = 412, [XCAP_OUTCOME_TOO_LARGE] = 413,
		[XCAP_OUTCOME_URI_TOO_LONG] = 414, [XCAP_OUTCOME_UNSUPPORTED_TYPE] = 415,
		[XCAP_OUTCOME_INTERNAL] = 500, [XCAP_OUTCOME_UNAVAILABLE] = 503, [XCAP_OUTCOME_STORE_FULL] = 507,
	};

	for (unsigned o = 0; o < XCAP_OUTCOME__COUNT; o++) {
		ck_assert_msg(http_status_of(o) == expect[o], "%s: %u, expected %u", xcap_outcome_name(o),
			      http_status_of(o), expect[o]);
		ck_assert(http_reason_of(o)[0]);
		ck_assert_str_ne(xcap_outcome_name(o), "?");
	}
	ck_assert_str_eq(xcap_outcome_name(XCAP_OUTCOME_NOT_FOUND), "NOT_FOUND");
	ck_assert_str_eq(http_reason_of(XCAP_OUTCOME_NOT_FOUND), "Not Found");
}
END_TEST

START_TEST(put_get_byte_exact_and_etags)
{
	struct xcap_response r;
	char etag1[STORE_ETAG_MAX];

	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, PCC_OK, NULL, NULL, &r), 201);
	ck_assert_str_ne(r.etag, "");
	strcpy(etag1, r.etag);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &alice, NULL, NULL, NULL, NULL, &r), 200);
	ck_assert_str_eq(r.content_type, PCC_TYPE);
	ck_assert_uint_eq(r.body.len, strlen(PCC_OK));
	ck_assert_mem_eq(r.body.data, PCC_OK, strlen(PCC_OK));
	ck_assert_str_eq(r.etag, etag1);
	xcap_response_cleanup(&r);
	/* The same bytes again: replaced, with a new ETag. */
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, PCC_OK, NULL, NULL, &r), 200);
	ck_assert_str_ne(r.etag, etag1);
	xcap_response_cleanup(&r);
}
END_TEST

START_TEST(preconditions)
{
	struct xcap_response r;
	char etag[STORE_ETAG_MAX + 2], quoted[STORE_ETAG_MAX + 4];

	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, PCC_OK, "*", NULL, &r), 412);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, PCC_OK, NULL, "*", &r), 201);
	strcpy(etag, r.etag);
	snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, PCC_OK, NULL, "*", &r), 412);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &alice, NULL, NULL, NULL, quoted, &r), 304);
	ck_assert_str_eq(r.etag, etag);
	ck_assert_uint_eq(r.body.len, 0);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &alice, NULL, NULL, "\"nope\"", NULL, &r), 412);
	xcap_response_cleanup(&r);
	/* A precondition failure wins over a broken body (RFC 4825 §8.2.6 order). */
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, "<broken", "\"nope\"", NULL, &r), 412);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_DELETE, PCC_DOC, &alice, NULL, NULL, "\"nope\"", NULL, &r), 412);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_DELETE, PCC_DOC, &alice, NULL, NULL, etag, NULL, &r), 200);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &alice, NULL, NULL, NULL, NULL, &r), 404);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_DELETE, PCC_DOC, &alice, NULL, NULL, NULL, NULL, &r), 404);
	xcap_response_cleanup(&r);
}
END_TEST

START_TEST(validation_conflicts)
{
	struct xcap_response r;

	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, "<pcc xmlns=\"urn:oma:xml:cab:pcc\"><oops></pcc>", NULL,
	    NULL, &r);
	assert_conflict(&r, "not-well-formed");
	xcap_response_cleanup(&r);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, "<pcc xmlns=\"urn:oma:xml:cab:pcc\">\xff</pcc>", NULL, NULL,
	    &r);
	assert_conflict(&r, "not-utf-8");
	xcap_response_cleanup(&r);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE,
	    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><pcc xmlns=\"urn:oma:xml:cab:pcc\"/>", NULL, NULL, &r);
	assert_conflict(&r, "not-utf-8");
	xcap_response_cleanup(&r);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE,
	    "<pcc xmlns=\"urn:oma:xml:cab:pcc\"><person-details><comm-addr><tel tel-type=\"Cellular\">"
	    "<tel-nb><tel-string>tel:+1</tel-string></tel-nb></tel></comm-addr></person-details></pcc>",
	    NULL, NULL, &r);
	assert_conflict(&r, "schema-validation-error");
	ck_assert_ptr_nonnull(strstr(r.body.data, "Cellular"));
	xcap_response_cleanup(&r);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>",
	    NULL, NULL, &r);
	assert_conflict(&r, "schema-validation-error");
	xcap_response_cleanup(&r);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE,
	    "<!DOCTYPE pcc [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><pcc xmlns=\"urn:oma:xml:cab:pcc\">&e;</pcc>",
	    NULL, NULL, &r);
	assert_conflict(&r, "constraint-failure");
	ck_assert_ptr_null(strstr(r.body.data, "root:"));
	xcap_response_cleanup(&r);
	/* Nothing of the above was stored. */
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &alice, NULL, NULL, NULL, NULL, &r), 404);
	xcap_response_cleanup(&r);
}
END_TEST

START_TEST(depth_and_size_caps)
{
	struct xcap_response r;
	size_t depth = 40, n = 0;
	char *doc = malloc(depth * 16 + 128);
	char *big;

	n += (size_t)sprintf(doc + n, "<pcc xmlns=\"urn:oma:xml:cab:pcc\">");
	for (size_t i = 0; i < depth; i++)
		n += (size_t)sprintf(doc + n, "<a>");
	for (size_t i = 0; i < depth; i++)
		n += (size_t)sprintf(doc + n, "</a>");
	sprintf(doc + n, "</pcc>");
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, doc, NULL, NULL, &r);
	assert_conflict(&r, "constraint-failure");
	ck_assert_ptr_nonnull(strstr(r.body.data, "nested too deeply"));
	xcap_response_cleanup(&r);
	free(doc);
	big = malloc(70000);
	memset(big, ' ', 69999);
	big[69999] = '\0';
	memcpy(big, "<pcc xmlns=\"urn:oma:xml:cab:pcc\">", 33);
	memcpy(big + 69999 - 6, "</pcc>", 6);
	run(XCAP_METHOD_PUT, PCC_DOC, &alice, PCC_TYPE, big, NULL, NULL, &r);
	assert_conflict(&r, "constraint-failure");
	ck_assert_ptr_nonnull(strstr(r.body.data, "too large"));
	xcap_response_cleanup(&r);
	free(big);
}
END_TEST

START_TEST(methods_types_and_access)
{
	struct xcap_response r;

	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, "text/plain", PCC_OK, NULL, NULL, &r), 415);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, PCC_DOC, &alice, "application/vnd.oma.cab-pcc+xml; charset=UTF-8",
			      PCC_OK, NULL, NULL, &r),
			  201);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, PCC_DOC, &bob, NULL, NULL, NULL, NULL, &r), 403);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(put(PCC_DOC, &bob, PCC_OK), 403);
	ck_assert_uint_eq(put(PCC_DOC, &iwf, PCC_OK), 200);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, "/xcap-root/nope/users/sip:alice@example.com/index", &alice, NULL,
			      NULL, NULL, NULL, &r),
			  404);
	xcap_response_cleanup(&r);
	/* PCC has no global tree. */
	ck_assert_uint_eq(run(XCAP_METHOD_GET, "/xcap-root/org.openmobilealliance.cab-pcc/global/index", &admin,
			      NULL, NULL, NULL, NULL, &r),
			  404);
	xcap_response_cleanup(&r);
	/* Global documents: everyone reads, only the admin writes. */
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, "/xcap-root/resource-lists/global/index", &iwf,
			      "application/resource-lists+xml",
			      "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list/></resource-lists>",
			      NULL, NULL, &r),
			  403);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, "/xcap-root/resource-lists/global/index", &admin,
			      "application/resource-lists+xml",
			      "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list/></resource-lists>",
			      NULL, NULL, &r),
			  201);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_GET, "/xcap-root/resource-lists/global/index", &bob, NULL, NULL, NULL,
			      NULL, &r),
			  200);
	xcap_response_cleanup(&r);
}
END_TEST

START_TEST(xcap_caps)
{
	struct xcap_response r;

	ck_assert_uint_eq(run(XCAP_METHOD_GET, "/xcap-root/xcap-caps/global/index", &bob, NULL, NULL, NULL, NULL,
			      &r),
			  200);
	ck_assert_str_eq(r.content_type, "application/xcap-caps+xml");
	ck_assert_ptr_nonnull(strstr(r.body.data, "<auid>org.openmobilealliance.cab-pcc</auid>"));
	ck_assert_ptr_nonnull(strstr(r.body.data, "<namespace>urn:oma:xml:cab:feature-handler</namespace>"));
	ck_assert_str_ne(r.etag, "");
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, "/xcap-root/xcap-caps/global/index", &admin,
			      "application/xcap-caps+xml", "<x/>", NULL, NULL, &r),
			  405);
	ck_assert_str_eq(r.allow, "GET, HEAD");
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(run(XCAP_METHOD_DELETE, "/xcap-root/xcap-caps/global/index", &admin, NULL, NULL, NULL,
			      NULL, &r),
			  405);
	xcap_response_cleanup(&r);
}
END_TEST

#define FH_TYPE "application/vnd.oma.cab-feature-handler+xml"
#define FH_DOC "/xcap-root/org.openmobilealliance.cab-feature-handler/users/sip:alice@example.com/index"
#define FH_HEAD "<cab-feature-handler xmlns=\"urn:oma:xml:cab:feature-handler\">"
#define FH_IMPORT(user)                                                                              \
	"<import-profile id=\"imp-1\"><third-party id=\"remote\"/><remote-user>" user "</remote-user>" \
	"</import-profile>"
#define FH_EXPORT "<export-profile id=\"exp-1\"><third-party id=\"remote\"/></export-profile>"

struct job_tally {
	unsigned count[STORE_JOB__STATES];
	struct store_job last;
};

static int tally_visit(void *arg, const struct store_job *j)
{
	struct job_tally *t = arg;

	t->count[j->state]++;
	t->last = *j;
	return 0;
}

static struct job_tally tally(void)
{
	struct job_tally t = { 0 };
	struct store_read *rd;

	ck_assert_int_eq(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_int_eq(store_job_list(rd, tally_visit, &t), XDMS_ERR_OK);
	store_read_end(rd);
	return t;
}

static unsigned fh_put(const struct xcap_identity *who, const char *body)
{
	struct xcap_response r;
	unsigned s = run(XCAP_METHOD_PUT, FH_DOC, who, FH_TYPE, body, NULL, NULL, &r);

	xcap_response_cleanup(&r);
	return s;
}

START_TEST(fh_requests_become_jobs)
{
	struct job_tally t;

	ck_assert_uint_eq(fh_put(&alice, FH_HEAD FH_IMPORT("a") FH_EXPORT "</cab-feature-handler>"), 201);
	t = tally();
	ck_assert_uint_eq(t.count[STORE_JOB_QUEUED], 2);
	/* The same requests again, even with other whitespace around them: nothing new. */
	ck_assert_uint_eq(fh_put(&alice, FH_HEAD "\n" FH_IMPORT("a") "\n" FH_EXPORT "</cab-feature-handler>"), 200);
	t = tally();
	ck_assert_uint_eq(t.count[STORE_JOB_QUEUED], 2);
	ck_assert_uint_eq(t.count[STORE_JOB_CANCELLED], 0);
	/* A changed import supersedes its job; a deleted export cancels its job. */
	ck_assert_uint_eq(fh_put(&alice, FH_HEAD FH_IMPORT("b") "</cab-feature-handler>"), 200);
	t = tally();
	ck_assert_uint_eq(t.count[STORE_JOB_QUEUED], 1);
	ck_assert_uint_eq(t.count[STORE_JOB_CANCELLED], 2);
	ck_assert_str_eq(t.last.request_id, "imp-1");
	ck_assert_str_eq(t.last.xui, "sip:alice@example.com");
	ck_assert_int_eq(t.last.kind, STORE_JOB_IMPORT);
	/* A refused write (duplicate id) queues nothing. */
	ck_assert_uint_eq(fh_put(&alice, FH_HEAD FH_IMPORT("c") FH_IMPORT("d") "</cab-feature-handler>"), 409);
	t = tally();
	ck_assert_uint_eq(t.count[STORE_JOB_QUEUED], 1);
	ck_assert_uint_eq(t.count[STORE_JOB_QUEUED] + t.count[STORE_JOB_CANCELLED], 3);
}
END_TEST

START_TEST(fh_response_ends_job)
{
	struct xcap_response r;
	struct store_job j, again;
	uint64_t next_due;
	const char *resp = "<response xmlns=\"urn:oma:xml:cab:feature-handler\" status=\"success\" code=\"200\" "
			   "updated=\"2024-05-01T10:00:07Z\"><imported-count>1</imported-count></response>";
	uint64_t now = (uint64_t)time(NULL) * 1000;

	ck_assert_uint_eq(fh_put(&alice, FH_HEAD FH_IMPORT("a") "</cab-feature-handler>"), 201);
	ck_assert_int_eq(store_job_claim(st, now + 1000, 5000, &j, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(j.state, STORE_JOB_RUNNING);
	ck_assert_uint_eq(j.attempts, 1);
	/* Leased: nothing to claim until the lease ends, then the same job again. */
	ck_assert_int_eq(store_job_claim(st, now + 2000, 5000, &again, &next_due), XDMS_ERR_NOTFOUND);
	ck_assert_uint_eq(next_due, now + 6000);
	ck_assert_int_eq(store_job_claim(st, now + 6001, 5000, &again, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(again.id, j.id);
	ck_assert_uint_eq(again.attempts, 2);
	/* A retry puts it back for later. */
	ck_assert_int_eq(store_job_retry(st, j.id, now + 20000, true, "busy"), XDMS_ERR_OK);
	ck_assert_int_eq(store_job_claim(st, now + 7000, 5000, &again, &next_due), XDMS_ERR_NOTFOUND);
	ck_assert_uint_eq(next_due, now + 20000);
	ck_assert_int_eq(store_job_claim(st, now + 20000, 5000, &again, NULL), XDMS_ERR_OK);
	/* The trusted server's final <response> ends the job in the same write. */
	ck_assert_uint_eq(run(XCAP_METHOD_PUT, FH_DOC "/~~/cab-feature-handler/import-profile%5b@id=%22imp-1%22%5d/response",
			      &iwf, "application/xcap-el+xml", resp, NULL, NULL, &r), 201);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(tally().count[STORE_JOB_DONE], 1);
	ck_assert_uint_eq(tally().last.code, 200);
	ck_assert_int_eq(store_job_claim(st, now + 90000, 5000, &again, NULL), XDMS_ERR_NOTFOUND);
	ck_assert_int_eq(store_job_end(st, j.id, STORE_JOB_FAILED, 500, "late"), XDMS_ERR_CONFLICT);
	/* The client writing the answered request back queues nothing. */
	ck_assert_uint_eq(run(XCAP_METHOD_GET, FH_DOC, &alice, NULL, NULL, NULL, NULL, &r), 200);
	ck_assert_uint_eq(fh_put(&alice, r.body.data), 200);
	xcap_response_cleanup(&r);
	ck_assert_uint_eq(tally().count[STORE_JOB_QUEUED], 0);
}
END_TEST

START_TEST(fh_release_after_restart)
{
	struct store_job j;
	unsigned n = 0;
	uint64_t now = (uint64_t)time(NULL) * 1000;

	ck_assert_uint_eq(fh_put(&alice, FH_HEAD FH_IMPORT("a") "</cab-feature-handler>"), 201);
	ck_assert_int_eq(store_job_claim(st, now + 1000, 3600000, &j, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(store_job_release_all(st, &n), XDMS_ERR_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(store_job_claim(st, now + 1000, 3600000, &j, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(j.attempts, 2);
	ck_assert_str_eq(store_job_state_name(STORE_JOB_CANCELLED), "cancelled");
}
END_TEST

START_TEST(error_render_escapes)
{
	struct xcap_error e = { 0 };
	struct buf b;

	buf_init(&b, 4096);
	xcap_error_set(&e, XCAP_ERROR_UNIQUENESS_FAILURE, "duplicate \"%s\" <here>", "x&y");
	e.field = strdup("a/b[@c=\"d\"]/@c");
	e.alt_value = strdup("d-2");
	ck_assert_int_eq(xcap_error_render(&e, &b), XDMS_ERR_OK);
	ck_assert_ptr_nonnull(strstr(b.data, "<uniqueness-failure phrase=\"duplicate &quot;x&amp;y&quot; "
					     "&lt;here&gt;\"><exists field=\"a/b[@c=&quot;d&quot;]/@c\">"
					     "<alt-value>d-2</alt-value></exists></uniqueness-failure>"));
	xcap_error_cleanup(&e);
	buf_cleanup(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xcap_ops");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, outcome_statuses);
	tcase_add_test(tc, put_get_byte_exact_and_etags);
	tcase_add_test(tc, preconditions);
	tcase_add_test(tc, validation_conflicts);
	tcase_add_test(tc, depth_and_size_caps);
	tcase_add_test(tc, methods_types_and_access);
	tcase_add_test(tc, xcap_caps);
	tcase_add_test(tc, error_render_escapes);
	tcase_add_test(tc, fh_requests_become_jobs);
	tcase_add_test(tc, fh_response_ends_job);
	tcase_add_test(tc, fh_release_after_restart);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
