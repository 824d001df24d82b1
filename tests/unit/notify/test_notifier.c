/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the notifier's lower files (src/notify/notify_int.h): a
 * subscription's state machine (state.c), resource-list entries and their
 * matching (entry.c), change records and the version cache (change.c).
 * These are private to src/notify, so the tests include its internal
 * header; they need no sockets, no SIP loop and no store, only a
 * configuration and the built-in application usages.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "conf/conf.h"
#include "notify/notify_int.h"
#include "xml/xml.h"
#include "unit.h"

#define RL "resource-lists/users/sip:alice@example.com/index"
#define EMPTY_RL "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>"

static struct conf conf;
static struct xcap_registry *reg;
static struct notifier *n;

static void setup(void)
{
	struct xcap_registry_options ro = { .descriptor_dir = NULL, .max_document = 65536 };
	char *why = NULL;

	xml_init();
	conf_init(&conf);
	ck_assert_msg(xcap_registry_create(&ro, &reg, &why) == XDMS_ERR_OK, "registry: %s", why);
	n = xcalloc(1, sizeof(*n));
	n->c = &conf;
	n->reg = reg;
	n->root_path = xstrdup("/xcap-root");
}

static void teardown(void)
{
	while (n->v_oldest)
		vcache_drop(n, n->v_oldest->key);
	smap_free(&n->vcache);
	free(n->root_path);
	free(n);
	xcap_registry_destroy(reg);
	conf_cleanup(&conf);
}

/* ---- the state machine ------------------------------------------------------------------ */

START_TEST(state_table)
{
	/* Rows: events; columns: LIVE, FULL, ENDING, ENDING_FULL, DEAD (state.c's table). */
	static const enum sub_state want[5][5] = {
		[SUB_EV_FULL_DUE] = { SUB_FULL, SUB_FULL, SUB_ENDING_FULL, SUB_ENDING_FULL, SUB_DEAD },
		[SUB_EV_FULL_SENT] = { SUB_LIVE, SUB_LIVE, SUB_ENDING, SUB_ENDING, SUB_DEAD },
		[SUB_EV_END] = { SUB_ENDING, SUB_ENDING, SUB_ENDING, SUB_ENDING, SUB_DEAD },
		[SUB_EV_END_FULL] = { SUB_ENDING_FULL, SUB_ENDING_FULL, SUB_ENDING_FULL, SUB_ENDING_FULL, SUB_DEAD },
		[SUB_EV_GONE] = { SUB_DEAD, SUB_DEAD, SUB_DEAD, SUB_DEAD, SUB_DEAD },
	};

	for (int ev = SUB_EV_FULL_DUE; ev <= SUB_EV_GONE; ev++)
		for (int st = SUB_LIVE; st <= SUB_DEAD; st++)
			ck_assert_msg(sub_state_next((enum sub_state)st, (enum sub_event)ev) == want[ev][st],
				      "event %d in %s: got %s, expected %s", ev, sub_state_name((enum sub_state)st),
				      sub_state_name(sub_state_next((enum sub_state)st, (enum sub_event)ev)),
				      sub_state_name(want[ev][st]));
}
END_TEST

START_TEST(state_transitions)
{
	struct sub s;

	memset(&s, 0, sizeof(s));
	/* A new subscription owes nothing until its record is durable. */
	ck_assert_int_eq(s.state, SUB_LIVE);
	ck_assert(!sub_is_full_due(&s) && !sub_is_ending(&s));
	/* Accepted: a full state, from the first entry, outdating any page in flight. */
	s.full_entry = 3;
	s.full_after = xstrdup("resource-lists/users/x/");
	sub_transition(&s, SUB_EV_FULL_DUE, NULL);
	ck_assert_int_eq(s.state, SUB_FULL);
	ck_assert(sub_is_full_due(&s) && !sub_is_ending(&s));
	ck_assert_uint_eq(s.full_gen, 1);
	ck_assert_uint_eq(s.full_entry, 0);
	ck_assert_ptr_null(s.full_after);
	/* A refresh while the full state is being sent restarts it. */
	sub_transition(&s, SUB_EV_FULL_DUE, NULL);
	ck_assert_uint_eq(s.full_gen, 2);
	sub_transition(&s, SUB_EV_FULL_SENT, NULL);
	ck_assert_int_eq(s.state, SUB_LIVE);
	ck_assert_uint_eq(s.full_gen, 2);
	/* Expiry: the final NOTIFY carries what is queued, with its reason. */
	sub_transition(&s, SUB_EV_END, "timeout");
	ck_assert_int_eq(s.state, SUB_ENDING);
	ck_assert_str_eq(s.end_reason, "timeout");
	ck_assert(sub_is_ending(&s) && !sub_is_full_due(&s));
	/* The end is final: a refresh arriving now does not bring it back. */
	sub_transition(&s, SUB_EV_FULL_DUE, NULL);
	ck_assert_int_eq(s.state, SUB_ENDING_FULL);
	ck_assert(sub_is_ending(&s));
	sub_transition(&s, SUB_EV_FULL_SENT, NULL);
	ck_assert_int_eq(s.state, SUB_ENDING);
	sub_transition(&s, SUB_EV_GONE, NULL);
	ck_assert_int_eq(s.state, SUB_DEAD);
	ck_assert(sub_is_ending(&s));
	sub_transition(&s, SUB_EV_FULL_DUE, NULL);
	ck_assert_int_eq(s.state, SUB_DEAD);
	free(s.full_after);
}
END_TEST

START_TEST(state_unsubscribe_sends_full_state)
{
	struct sub s;

	memset(&s, 0, sizeof(s));
	sub_transition(&s, SUB_EV_END_FULL, "timeout");
	ck_assert_int_eq(s.state, SUB_ENDING_FULL);
	ck_assert(sub_is_full_due(&s) && sub_is_ending(&s));
	ck_assert_uint_eq(s.full_gen, 1);
	/* Deactivated while the final full state is pending: queued changes only. */
	sub_transition(&s, SUB_EV_END, "deactivated");
	ck_assert_int_eq(s.state, SUB_ENDING);
	ck_assert_str_eq(s.end_reason, "deactivated");
}
END_TEST

/* ---- entries -------------------------------------------------------------------------------- */

static int parse(const char *text, const char *who, bool is_priv, struct entry *e, const char **why)
{
	*why = NULL;
	return entry_parse(n, text, who, is_priv, e, why);
}

START_TEST(entry_kinds)
{
	struct entry e;
	const char *why;

	ck_assert_int_eq(parse(RL, "sip:alice@example.com", false, &e, &why), 0);
	ck_assert_int_eq(e.kind, ENTRY_DOC);
	ck_assert_str_eq(e.key, RL);
	ck_assert_str_eq(e.sel, RL);
	ck_assert_str_eq(e.auid->name, "resource-lists");
	entry_cleanup(&e);

	/* Absolute forms below the root read the same. */
	ck_assert_int_eq(parse("/xcap-root/" RL, "sip:alice@example.com", false, &e, &why), 0);
	ck_assert_str_eq(e.key, RL);
	entry_cleanup(&e);
	ck_assert_int_eq(parse("http://xcap.example.com/xcap-root/" RL, "sip:alice@example.com", false, &e, &why), 0);
	ck_assert_str_eq(e.key, RL);
	entry_cleanup(&e);

	ck_assert_int_eq(parse("resource-lists/users/sip:alice@example.com/", "sip:alice@example.com", false, &e,
			       &why), 0);
	ck_assert_int_eq(e.kind, ENTRY_COLL);
	ck_assert_str_eq(e.key, "resource-lists/users/sip:alice@example.com/");
	entry_cleanup(&e);

	ck_assert_int_eq(parse(RL "/~~/resource-lists/list%5B@name=%22friends%22%5D", "sip:alice@example.com", false,
			       &e, &why), 0);
	ck_assert_int_eq(e.kind, ENTRY_NODE);
	ck_assert_str_eq(e.key, RL);
	ck_assert_str_eq(e.node_sel, "resource-lists/list[@name=\"friends\"]");
	ck_assert_str_eq(e.sel, RL "/~~/resource-lists/list%5B@name=%22friends%22%5D");
	entry_cleanup(&e);
}
END_TEST

START_TEST(entry_refusals)
{
	struct entry e;
	const char *why;

	/* A user watches only its own documents; trusted servers and admins any. */
	ck_assert_int_eq(parse(RL, "sip:bob@example.com", false, &e, &why), 403);
	ck_assert_str_eq(why, "a user may only watch its own documents");
	ck_assert_int_eq(parse("resource-lists/users/", "sip:bob@example.com", false, &e, &why), 403);
	ck_assert_int_eq(parse("resource-lists/users/sip:alice@example.com.evil/index", "sip:alice@example.com",
			       false, &e, &why), 403);
	ck_assert_int_eq(parse(RL, "sip:bob@example.com", true, &e, &why), 0);
	entry_cleanup(&e);
	ck_assert_int_eq(parse("/elsewhere/" RL, "sip:alice@example.com", false, &e, &why), 403);
	ck_assert_str_eq(why, "resource selector outside the XCAP root");
	ck_assert_int_eq(parse("no-such-auid/users/sip:alice@example.com/index", "sip:alice@example.com", false, &e,
			       &why), 400);
	ck_assert_str_eq(why, "unknown application usage");
	ck_assert_int_eq(parse(RL " x", "sip:alice@example.com", false, &e, &why), 400);
	ck_assert_int_eq(parse(RL "/~~/resource-lists/list[", "sip:alice@example.com", false, &e, &why), 400);
	ck_assert_str_eq(why, "malformed node selector");
	/* A refused entry is left empty. */
	ck_assert_ptr_null(e.key);
	ck_assert_ptr_null(e.text);
}
END_TEST

START_TEST(entry_matching)
{
	struct entry doc, coll, node;
	const char *why;

	ck_assert_int_eq(parse(RL, "sip:alice@example.com", false, &doc, &why), 0);
	ck_assert_int_eq(parse("resource-lists/users/sip:alice@example.com/", "sip:alice@example.com", false, &coll,
			       &why), 0);
	ck_assert_int_eq(parse(RL "/~~/resource-lists", "sip:alice@example.com", false, &node, &why), 0);
	ck_assert(entry_matches(&doc, RL));
	ck_assert(!entry_matches(&doc, RL "2"));
	ck_assert(!entry_matches(&doc, "resource-lists/users/sip:alice@example.com/other"));
	ck_assert(entry_matches(&coll, RL));
	ck_assert(entry_matches(&coll, "resource-lists/users/sip:alice@example.com/other"));
	ck_assert(entry_matches(&coll, "resource-lists/users/sip:alice@example.com/a/b"));
	ck_assert(!entry_matches(&coll, "resource-lists/users/sip:alice@example.com.x/index"));
	ck_assert(!entry_matches(&coll, "resource-lists/users/sip:bob@example.com/index"));
	ck_assert(entry_matches(&node, RL));
	ck_assert(!entry_matches(&node, RL "x"));
	entry_cleanup(&doc);
	entry_cleanup(&coll);
	entry_cleanup(&node);
}
END_TEST

START_TEST(entries_from_resource_list)
{
	static const char body[] =
		"<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">"
		"<list><entry uri=\"" RL "\"/><entry uri=\"resource-lists/users/sip:alice@example.com/\"/>"
		"<entry uri=\"" RL "/~~/resource-lists/list%5B@name=&quot;a&quot;%5D\"/></list></resource-lists>";
	struct entry *es = NULL;
	size_t count = 0;
	const char *why = NULL;

	ck_assert_int_eq(entries_from_body(n, body, strlen(body), "sip:alice@example.com", false, &es, &count, &why),
			 0);
	ck_assert_uint_eq(count, 3);
	ck_assert_int_eq(es[0].kind, ENTRY_DOC);
	ck_assert_int_eq(es[1].kind, ENTRY_COLL);
	ck_assert_int_eq(es[2].kind, ENTRY_NODE);
	ck_assert_str_eq(es[2].node_sel, "resource-lists/list[@name=\"a\"]");
	for (size_t i = 0; i < count; i++)
		entry_cleanup(&es[i]);
	free(es);

	conf.notify_max_entries = 2;
	ck_assert_int_eq(entries_from_body(n, body, strlen(body), "sip:alice@example.com", false, &es, &count, &why),
			 413);
	ck_assert_str_eq(why, "too many resource selectors");
	ck_assert_ptr_null(es);
	ck_assert_uint_eq(count, 0);

	ck_assert_int_eq(entries_from_body(n, "<x/>", 4, "sip:alice@example.com", false, &es, &count, &why), 400);
	ck_assert_str_eq(why, "body is not a resource-lists document");
	ck_assert_int_eq(entries_from_body(n, EMPTY_RL, strlen(EMPTY_RL),
					   "sip:alice@example.com", false, &es, &count, &why),
			 400);
	ck_assert_str_eq(why, "empty resource list");
}
END_TEST

START_TEST(selector_of_key)
{
	char *s = key_to_sel("resource-lists/users/sip:alice@example.com/my list\"%");

	/* Each byte that is not a pchar is percent-encoded; "/" separates segments. */
	ck_assert_str_eq(s, "resource-lists/users/sip:alice@example.com/my%20list%22%25");
	free(s);
	ck_assert_ptr_eq(auid_of_key(n, RL), xcap_registry_find(reg, "resource-lists"));
	ck_assert_ptr_null(auid_of_key(n, "no-such-auid/global/index"));
	ck_assert_ptr_null(auid_of_key(n, "no-slash"));
}
END_TEST

/* ---- change records and the version cache ------------------------------------------------ */

START_TEST(version_cache)
{
	const struct vent *v;

	conf.notify_patch_cache = 400;
	vcache_put(n, "a", "e1", "0123456789", 10);
	v = vcache_get(n, "a");
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v->etag, "e1");
	ck_assert_uint_eq(v->len, 10);
	ck_assert_int_eq(memcmp(v->data, "0123456789", 10), 0);
	/* A new version replaces the old one. */
	vcache_put(n, "a", "e2", "abc", 3);
	ck_assert_str_eq(vcache_get(n, "a")->etag, "e2");
	ck_assert_uint_eq(n->v_bytes, 3);
	/* Larger than a quarter of the cache: not kept (and the old one is gone). */
	vcache_put(n, "a", "e3", NULL, 101);
	ck_assert_ptr_null(vcache_get(n, "a"));
	ck_assert_uint_eq(n->v_bytes, 0);
	/* Oldest first out when the cache is full. */
	{
		char data[100];

		memset(data, 'x', sizeof(data));
		vcache_put(n, "k1", "1", data, 100);
		vcache_put(n, "k2", "2", data, 100);
		vcache_put(n, "k3", "3", data, 100);
		vcache_put(n, "k4", "4", data, 100);
		ck_assert_uint_eq(n->v_bytes, 400);
		vcache_put(n, "k5", "5", data, 50);
	}
	ck_assert_ptr_null(vcache_get(n, "k1"));
	ck_assert_ptr_nonnull(vcache_get(n, "k2"));
	ck_assert_ptr_nonnull(vcache_get(n, "k5"));
	ck_assert_uint_eq(n->v_bytes, 350);
	/* Dropping from the middle keeps the age list whole. */
	vcache_drop(n, "k3");
	ck_assert_ptr_null(vcache_get(n, "k3"));
	ck_assert_str_eq(n->v_oldest->key, "k2");
	ck_assert_str_eq(n->v_oldest->newer->key, "k4");
	ck_assert_str_eq(n->v_newest->key, "k5");
	vcache_drop(n, "k5");
	ck_assert_str_eq(n->v_newest->key, "k4");
	ck_assert_uint_eq(n->v_bytes, 200);
}
END_TEST

START_TEST(change_records)
{
	struct store_change c = { .seq = 7, .selector = RL, .prev_etag = "", .new_etag = "e9" };
	struct nchange *nc = nchange_new(n, &c);

	ck_assert_uint_eq(nc->refs, 1);
	ck_assert_uint_eq(nc->seq, 7);
	ck_assert_str_eq(nc->key, RL);
	ck_assert_str_eq(nc->sel, RL);
	ck_assert_ptr_null(nc->prev_etag); /* "" is a creation */
	ck_assert_str_eq(nc->new_etag, "e9");
	ck_assert_ptr_eq(nc->auid, xcap_registry_find(reg, "resource-lists"));
	ck_assert_str_eq(nc->prefix, "d");
	nc->refs++;
	nchange_put(nc);
	ck_assert_uint_eq(nc->refs, 1);
	nchange_put(nc);
	nchange_put(NULL);
}
END_TEST

START_TEST(secrets)
{
	static const char ops[] = "<replace sel=\"p:pcc/p:credentials/p:password\">x</replace>";

	ck_assert(has_secret(ops, strlen(ops), "credentials"));
	ck_assert(has_secret("<f:credentials/>", 16, "credentials"));
	ck_assert(has_secret("<credentials>", 13, "credentials"));
	ck_assert(!has_secret("<credentials-hint/>", 19, "credentials"));
	ck_assert(!has_secret("<my-credentials/>", 17, "credentials"));
	ck_assert(!has_secret(ops, strlen(ops), NULL));
	ck_assert(!has_secret(NULL, 0, "credentials"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify_lower");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, state_table);
	tcase_add_test(tc, state_transitions);
	tcase_add_test(tc, state_unsubscribe_sends_full_state);
	tcase_add_test(tc, entry_kinds);
	tcase_add_test(tc, entry_refusals);
	tcase_add_test(tc, entry_matching);
	tcase_add_test(tc, entries_from_resource_list);
	tcase_add_test(tc, selector_of_key);
	tcase_add_test(tc, version_cache);
	tcase_add_test(tc, change_records);
	tcase_add_test(tc, secrets);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
