/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of store/move.c through store.h: a frozen user's documents
 * refuse writes (BUSY) except the move's own, other users and global
 * documents are untouched, a write can keep a given ETag, and a user's
 * secrets are listed by owner. Each test opens a store in a fresh
 * temporary directory.
 */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"
#include "unit.h"

#define ck_assert_err(got, want)                                                                  \
	do {                                                                                      \
		enum xdms_err got_ = (got), want_ = (want);                                       \
		ck_assert_msg(got_ == want_, "%s: expected %s, got %s", #got, xdms_err_name(want_), \
			      xdms_err_name(got_));                                               \
	} while (0)

static char dir[512];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *open_tmp(void)
{
	struct store_options o = { 0 };
	struct store *st = NULL;
	const char *base = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/xdms-move-XXXXXX", base && base[0] ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	o.path = dir;
	ck_assert_err(store_open(&o, &st), XDMS_ERR_OK);
	return st;
}

static void close_tmp(struct store *st)
{
	store_close(st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct put {
	struct store_write w;
	const char *data;
};

static enum xdms_err put_apply(struct store_write *w, const struct store_doc *cur)
{
	struct put *p = w->arg;

	(void)cur;
	if (p->data) {
		w->new_data = p->data;
		w->new_len = strlen(p->data);
	} else {
		w->is_delete = true;
	}
	return XDMS_ERR_OK;
}

/* Writes (or with @data NULL deletes) @sel; returns the result and the ETag. */
static enum xdms_err put(struct store *st, const char *sel, const char *data, const char *keep_etag,
			 bool is_move, char etag[STORE_ETAG_MAX])
{
	struct put p;
	enum xdms_err err;

	memset(&p, 0, sizeof(p));
	p.data = data;
	p.w.selector = sel;
	p.w.etag_prefix = "rl";
	p.w.apply = put_apply;
	p.w.arg = &p;
	p.w.keep_etag = keep_etag;
	p.w.is_move = is_move;
	err = store_write_run(st, &p.w);
	if (etag)
		snprintf(etag, STORE_ETAG_MAX, "%s", p.w.etag);
	return err;
}

#define ALICE "sip:alice@example.com"
#define DOC_A "resource-lists/users/" ALICE "/index"
#define DOC_B "resource-lists/users/sip:bob@example.com/index"
#define DOC_AA "resource-lists/users/" ALICE "x/index" /* a XUI that extends Alice's */

START_TEST(test_freeze_refuses_writes_of_that_user_only)
{
	struct store *st = open_tmp();
	struct store_read *rd = NULL;
	char etag[STORE_ETAG_MAX], etag2[STORE_ETAG_MAX];

	ck_assert_err(put(st, DOC_A, "<a/>", NULL, false, etag), XDMS_ERR_OK);
	ck_assert_err(store_user_freeze(st, ALICE, true), XDMS_ERR_OK);
	ck_assert_err(store_user_freeze(st, ALICE, true), XDMS_ERR_OK); /* idempotent */
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_user_frozen(rd, ALICE), XDMS_ERR_OK);
	ck_assert_err(store_user_frozen(rd, "sip:bob@example.com"), XDMS_ERR_NOTFOUND);
	store_read_end(rd);

	ck_assert_err(put(st, DOC_A, "<b/>", NULL, false, NULL), XDMS_ERR_BUSY);
	ck_assert_err(put(st, DOC_A, NULL, NULL, false, NULL), XDMS_ERR_BUSY);
	ck_assert_err(put(st, "pcc/users/" ALICE "/index", "<p/>", NULL, false, NULL), XDMS_ERR_BUSY);
	/* Other users, a longer XUI and global documents are not frozen. */
	ck_assert_err(put(st, DOC_B, "<b/>", NULL, false, NULL), XDMS_ERR_OK);
	ck_assert_err(put(st, DOC_AA, "<b/>", NULL, false, NULL), XDMS_ERR_OK);
	ck_assert_err(put(st, "resource-lists/global/index", "<g/>", NULL, false, NULL), XDMS_ERR_OK);
	/* The document kept what it had before the freeze. */
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	{
		struct store_doc d;

		ck_assert_err(store_doc_get(rd, DOC_A, &d), XDMS_ERR_OK);
		ck_assert_str_eq(d.etag, etag);
	}
	store_read_end(rd);
	/* The move's own writes pass; thawing makes the user writable again. */
	ck_assert_err(put(st, DOC_A, NULL, NULL, true, NULL), XDMS_ERR_OK);
	ck_assert_err(store_user_freeze(st, ALICE, false), XDMS_ERR_OK);
	ck_assert_err(put(st, DOC_A, "<c/>", NULL, false, etag2), XDMS_ERR_OK);
	ck_assert_err(store_user_freeze(st, "", true), XDMS_ERR_INVAL);
	ck_assert_err(store_user_freeze(st, "sip:a/b", true), XDMS_ERR_INVAL);
	close_tmp(st);
}
END_TEST

START_TEST(test_keep_etag)
{
	struct store *st = open_tmp();
	struct store_read *rd = NULL;
	struct store_doc d;
	char etag[STORE_ETAG_MAX], next[STORE_ETAG_MAX];

	ck_assert_err(put(st, DOC_A, "<a/>", "rl-0badcafe-0000000000000007", false, etag), XDMS_ERR_OK);
	ck_assert_str_eq(etag, "rl-0badcafe-0000000000000007");
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, DOC_A, &d), XDMS_ERR_OK);
	ck_assert_str_eq(d.etag, "rl-0badcafe-0000000000000007");
	store_read_end(rd);
	/* An empty ETag to keep is refused and changes nothing; a normal write
	 * afterwards gets a fresh ETag of this store. */
	ck_assert_err(put(st, DOC_A, "<b/>", "", false, NULL), XDMS_ERR_INVAL);
	ck_assert_err(put(st, DOC_A, "<b/>", NULL, false, next), XDMS_ERR_OK);
	ck_assert_str_ne(next, etag);
	close_tmp(st);
}
END_TEST

struct seen {
	char names[4][64];
	unsigned count;
};

static int see_secret(void *arg, const char *name, const void *data, size_t len)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->count, 4);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(data, "abc", 3), 0);
	snprintf(s->names[s->count++], sizeof(s->names[0]), "%s", name);
	return 0;
}

START_TEST(test_secret_list_by_owner)
{
	struct store *st = open_tmp();
	struct store_read *rd = NULL;
	struct seen s = { 0 };

	ck_assert_err(store_secret_put(st, ALICE, "request:2", "abc", 3, true), XDMS_ERR_OK);
	ck_assert_err(store_secret_put(st, ALICE, "request:1", "abc", 3, true), XDMS_ERR_OK);
	ck_assert_err(store_secret_put(st, ALICE "x", "request:9", "abc", 3, true), XDMS_ERR_OK);
	ck_assert_err(store_secret_put(st, "sip:alic", "request:8", "abc", 3, true), XDMS_ERR_OK);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_secret_list(rd, ALICE, see_secret, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.count, 2);
	ck_assert_str_eq(s.names[0], "request:1");
	ck_assert_str_eq(s.names[1], "request:2");
	ck_assert_err(store_secret_list(rd, "", see_secret, &s), XDMS_ERR_INVAL);
	store_read_end(rd);
	close_tmp(st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store-move");
	TCase *tc = tcase_create("move");

	tcase_add_test(tc, test_freeze_refuses_writes_of_that_user_only);
	tcase_add_test(tc, test_keep_etag);
	tcase_add_test(tc, test_secret_list_by_owner);
	suite_add_tcase(s, tc);
	return unit_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
