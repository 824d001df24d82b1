/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the store (src/store/store.h) against real LMDB
 * environments, each in a fresh temporary directory that is removed after
 * the test. Most tests go through the public header only; the hook and
 * close tests include store_int.h to reach the hook's MDB_txn and the
 * queue's closing flag, which the public header deliberately hides.
 *
 * Some tests make the writer thread wait inside an apply callback (a
 * "gate") so that the writes submitted meanwhile pile up and reach the
 * writer as one batch: that is the only way to test group-commit behaviour
 * deterministically. Production apply callbacks must never block.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"
#include "store/store_int.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

#define ck_assert_err(got, want)                                                              \
	do {                                                                                  \
		enum xdms_err got_ = (got), want_ = (want);                                   \
		ck_assert_msg(got_ == want_, "%s: expected %s, got %s", #got, xdms_err_name(want_), \
			      xdms_err_name(got_));                                           \
	} while (0)

/* ---- temporary directories ----------------------------------------------------- */

static char tmp_dir[512];
static char db_path[600];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_setup(void)
{
	const char *base = getenv("TMPDIR");

	if (!base || !base[0])
		base = "/tmp";
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/xdms-store-XXXXXX", base);
	ck_assert_msg(mkdtemp(tmp_dir) != NULL, "mkdtemp(%s): %s", tmp_dir, strerror(errno));
	/* Two missing levels: store_open must create them (mkdir -p). */
	snprintf(db_path, sizeof(db_path), "%s/data/env", tmp_dir);
}

static void tmp_teardown(void)
{
	if (tmp_dir[0])
		nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmp_dir[0] = '\0';
}

static struct store *open_store(size_t map_size, size_t map_max, bool is_sync)
{
	struct store_options opt = {
		.path = db_path,
		.map_size = map_size,
		.map_size_max = map_max,
		.is_sync = is_sync,
	};
	struct store *st = NULL;

	ck_assert_err(store_open(&opt, &st), XDMS_ERR_OK);
	ck_assert_ptr_nonnull(st);
	return st;
}

static struct store *open_default(void)
{
	return open_store(8 * MIB, 0, false);
}

/* ---- test writes ------------------------------------------------------------------ */

struct done_count {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n;
};

static void done_count_init(struct done_count *dc)
{
	pthread_mutex_init(&dc->lock, NULL);
	pthread_cond_init(&dc->cond, NULL);
	dc->n = 0;
}

static void done_count_wait(struct done_count *dc, unsigned n)
{
	pthread_mutex_lock(&dc->lock);
	while (dc->n < n)
		pthread_cond_wait(&dc->cond, &dc->lock);
	pthread_mutex_unlock(&dc->lock);
}

static void done_count_cleanup(struct done_count *dc)
{
	pthread_mutex_destroy(&dc->lock);
	pthread_cond_destroy(&dc->cond);
}

/* Makes the writer wait in apply until the test opens it (see the top comment). */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool is_entered;
	bool is_open;
};

struct hook_rec;

struct tw {
	struct store_write w;
	const char *data;
	size_t len;
	bool is_delete;
	enum xdms_err apply_ret;
	int apply_calls;
	bool had_cur;
	char cur_etag[STORE_ETAG_MAX];
	struct gate *gate;
	struct done_count *dc;
	int done_calls;
	struct store *submit_in_done; /* done tries to submit again (close test) */
	enum xdms_err submit_in_done_err;
	struct hook_rec *hook_rec; /* what test_hook saw */
};

static enum xdms_err tw_apply(struct store_write *w, const struct store_doc *cur)
{
	struct tw *t = w->arg;

	t->apply_calls++;
	t->had_cur = cur != NULL;
	snprintf(t->cur_etag, sizeof(t->cur_etag), "%s", cur ? cur->etag : "");
	if (t->gate) {
		pthread_mutex_lock(&t->gate->lock);
		t->gate->is_entered = true;
		pthread_cond_broadcast(&t->gate->cond);
		while (!t->gate->is_open)
			pthread_cond_wait(&t->gate->cond, &t->gate->lock);
		pthread_mutex_unlock(&t->gate->lock);
	}
	if (t->apply_ret)
		return t->apply_ret;
	if (t->is_delete) {
		w->is_delete = true;
	} else {
		w->new_data = t->data;
		w->new_len = t->len;
	}
	return XDMS_ERR_OK;
}

static void tw_done(struct store_write *w)
{
	struct tw *t = w->arg;
	static struct tw dummy;

	t->done_calls++;
	if (t->submit_in_done) {
		memset(&dummy, 0, sizeof(dummy));
		dummy.w.selector = "late";
		dummy.w.etag_prefix = "pcc";
		dummy.w.apply = tw_apply;
		dummy.w.arg = &dummy;
		t->submit_in_done_err = store_write_submit(t->submit_in_done, &dummy.w);
	}
	if (t->dc) {
		pthread_mutex_lock(&t->dc->lock);
		t->dc->n++;
		pthread_cond_broadcast(&t->dc->cond);
		pthread_mutex_unlock(&t->dc->lock);
	}
}

static void tw_init(struct tw *t, const char *selector, const void *data, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->data = data;
	t->len = len;
	t->w.selector = selector;
	t->w.etag_prefix = "pcc";
	t->w.apply = tw_apply;
	t->w.arg = t;
	t->w.done = tw_done;
}

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->is_entered = false;
	g->is_open = false;
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->is_entered)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->is_open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gate_cleanup(struct gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

/* Writes a document synchronously; returns the result and copies the new ETag. */
static enum xdms_err put_doc(struct store *st, const char *sel, const void *data, size_t len,
			     char etag[STORE_ETAG_MAX])
{
	struct tw t;
	enum xdms_err err;

	tw_init(&t, sel, data, len);
	err = store_write_run(st, &t.w);
	ck_assert_err(err, t.w.result);
	ck_assert_int_eq(t.done_calls, 1);
	if (etag)
		snprintf(etag, STORE_ETAG_MAX, "%s", t.w.etag);
	return err;
}

static enum xdms_err del_doc(struct store *st, const char *sel)
{
	struct tw t;

	tw_init(&t, sel, NULL, 0);
	t.is_delete = true;
	return store_write_run(st, &t.w);
}

/* Reads a document and compares it with @data; returns its ETag in @etag. */
static void expect_doc(struct store *st, const char *sel, const void *data, size_t len,
		       char etag[STORE_ETAG_MAX])
{
	struct store_read *rd = NULL;
	struct store_doc doc;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, sel, &doc), XDMS_ERR_OK);
	ck_assert_msg(doc.data_len == len, "%s: expected %zu bytes, got %zu", sel, len, doc.data_len);
	ck_assert_msg(len == 0 || memcmp(doc.data, data, len) == 0, "%s: bytes differ", sel);
	if (etag)
		snprintf(etag, STORE_ETAG_MAX, "%s", doc.etag);
	store_read_end(rd);
}

static void expect_no_doc(struct store *st, const char *sel)
{
	struct store_read *rd = NULL;
	struct store_doc doc;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, sel, &doc), XDMS_ERR_NOTFOUND);
	store_read_end(rd);
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Checks "pcc-<8 hex>-<16 hex>" and returns the counter. */
static uint64_t etag_counter(const char *etag)
{
	ck_assert_msg(strlen(etag) == 3 + 1 + 8 + 1 + 16, "bad ETag length: '%s'", etag);
	ck_assert_msg(strncmp(etag, "pcc-", 4) == 0 && etag[12] == '-', "bad ETag shape: '%s'", etag);
	ck_assert_msg(is_lower_hex(etag + 4, 8) && is_lower_hex(etag + 13, 16), "bad ETag hex: '%s'", etag);
	return strtoull(etag + 13, NULL, 16);
}

/* ---- the change feed collector --------------------------------------------------- */

struct feed_rec {
	uint64_t seq;
	uint64_t time_ms;
	char selector[128];
	char prev[STORE_ETAG_MAX];
	char next[STORE_ETAG_MAX];
	bool has_detail;
	char detail[64];
	size_t detail_len;
};

struct feed {
	struct feed_rec recs[64];
	unsigned n;
	unsigned stop_after;
};

static int feed_visit(void *arg, const struct store_change *c)
{
	struct feed *f = arg;
	struct feed_rec *r;

	ck_assert_uint_lt(f->n, 64);
	r = &f->recs[f->n++];
	r->seq = c->seq;
	r->time_ms = c->time_ms;
	snprintf(r->selector, sizeof(r->selector), "%s", c->selector);
	snprintf(r->prev, sizeof(r->prev), "%s", c->prev_etag);
	snprintf(r->next, sizeof(r->next), "%s", c->new_etag);
	r->has_detail = c->detail != NULL;
	r->detail_len = c->detail_len;
	if (c->detail) {
		ck_assert_uint_le(c->detail_len, sizeof(r->detail));
		memcpy(r->detail, c->detail, c->detail_len);
	}
	return f->stop_after && f->n >= f->stop_after;
}

static void feed_read(struct store *st, uint64_t from, struct feed *f)
{
	struct store_read *rd = NULL;

	f->n = 0;
	f->stop_after = 0;
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_changes_scan(rd, from, feed_visit, f), XDMS_ERR_OK);
	store_read_end(rd);
}

/* ---- documents ------------------------------------------------------------------------ */

START_TEST(test_put_get_exact)
{
	static const char doc[] = "<?xml version=\"1.0\"?>\n<a>caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80</a>\0tail\0\xff";
	struct store *st = open_default();
	struct store_read *rd = NULL;
	struct store_doc d;
	char etag[STORE_ETAG_MAX], etag2[STORE_ETAG_MAX];
	uint64_t before = store_now_ms();

	ck_assert_err(put_doc(st, "pcc/users/sip:alice@example.com/index", doc, sizeof(doc), etag), XDMS_ERR_OK);
	etag_counter(etag);
	expect_doc(st, "pcc/users/sip:alice@example.com/index", doc, sizeof(doc), etag2);
	ck_assert_str_eq(etag, etag2);

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, "pcc/users/sip:alice@example.com/index", &d), XDMS_ERR_OK);
	ck_assert_uint_ge(d.mtime_ms, before);
	ck_assert_uint_le(d.mtime_ms, store_now_ms());
	ck_assert_err(store_doc_get(rd, "pcc/users/sip:alice@example.com/inde", &d), XDMS_ERR_NOTFOUND);
	ck_assert_err(store_doc_get(rd, "", &d), XDMS_ERR_NOTFOUND);
	store_read_end(rd);

	/* An empty document is a document. */
	ck_assert_err(put_doc(st, "empty", "", 0, NULL), XDMS_ERR_OK);
	expect_doc(st, "empty", "", 0, NULL);
	store_close(st);
}
END_TEST

START_TEST(test_etag_changes_and_never_repeats)
{
	static const char doc[] = "<same/>";
	char seen[8][STORE_ETAG_MAX];
	struct store *st = open_default();
	uint64_t last = 0;

	for (int i = 0; i < 4; i++) {
		ck_assert_err(put_doc(st, "d", doc, sizeof(doc), seen[i]), XDMS_ERR_OK);
		ck_assert_uint_gt(etag_counter(seen[i]), last);
		last = etag_counter(seen[i]);
	}
	store_close(st);
	st = open_default();
	for (int i = 4; i < 8; i++) {
		ck_assert_err(put_doc(st, i % 2 ? "d" : "other", doc, sizeof(doc), seen[i]), XDMS_ERR_OK);
		ck_assert_uint_gt(etag_counter(seen[i]), last);
		last = etag_counter(seen[i]);
		/* Same environment, same instance id. */
		ck_assert_int_eq(strncmp(seen[i], seen[0], 12), 0);
	}
	for (int i = 0; i < 8; i++)
		for (int j = i + 1; j < 8; j++)
			ck_assert_str_ne(seen[i], seen[j]);
	store_close(st);
}
END_TEST

START_TEST(test_created_replaced_prev_etag)
{
	struct store *st = open_default();
	struct tw t;
	char first[STORE_ETAG_MAX];

	tw_init(&t, "doc", "<v1/>", 5);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert(t.w.is_created);
	ck_assert_str_eq(t.w.prev_etag, "");
	ck_assert(!t.had_cur);
	ck_assert_uint_eq(t.w.seq, 1);
	snprintf(first, sizeof(first), "%s", t.w.etag);

	tw_init(&t, "doc", "<v2/>", 5);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert(!t.w.is_created);
	ck_assert(t.had_cur);
	ck_assert_str_eq(t.cur_etag, first);
	ck_assert_str_eq(t.w.prev_etag, first);
	ck_assert_str_ne(t.w.etag, first);
	ck_assert_uint_eq(t.w.seq, 2);
	expect_doc(st, "doc", "<v2/>", 5, NULL);
	store_close(st);
}
END_TEST

START_TEST(test_delete)
{
	struct store *st = open_default();
	struct feed f;
	struct tw t;
	char etag[STORE_ETAG_MAX];

	ck_assert_err(put_doc(st, "doc", "<x/>", 4, etag), XDMS_ERR_OK);
	tw_init(&t, "doc", NULL, 0);
	t.is_delete = true;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert_str_eq(t.w.etag, "");
	ck_assert_str_eq(t.w.prev_etag, etag);
	ck_assert(!t.w.is_created);
	ck_assert_uint_eq(t.w.seq, 2);
	expect_no_doc(st, "doc");

	feed_read(st, 0, &f);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_uint_eq(f.recs[1].seq, 2);
	ck_assert_str_eq(f.recs[1].selector, "doc");
	ck_assert_str_eq(f.recs[1].prev, etag);
	ck_assert_str_eq(f.recs[1].next, "");

	/* apply says delete but there is nothing: NOTFOUND, and no change record. */
	ck_assert_err(del_doc(st, "doc"), XDMS_ERR_NOTFOUND);
	ck_assert_err(del_doc(st, "never"), XDMS_ERR_NOTFOUND);
	feed_read(st, 0, &f);
	ck_assert_uint_eq(f.n, 2);
	store_close(st);
}
END_TEST

START_TEST(test_apply_error_isolated_in_batch)
{
	struct store *st = open_default();
	struct store_stats s;
	struct done_count dc;
	struct gate g;
	struct tw gt, t[8];
	char sels[8][16], old_etag[STORE_ETAG_MAX];

	ck_assert_err(put_doc(st, "doc3", "<old/>", 6, old_etag), XDMS_ERR_OK);
	done_count_init(&dc);
	gate_init(&g);
	tw_init(&gt, "gate", "<g/>", 4);
	gt.gate = &g;
	gt.dc = &dc;
	ck_assert_err(store_write_submit(st, &gt.w), XDMS_ERR_OK);
	gate_wait_entered(&g);
	for (int i = 0; i < 8; i++) {
		snprintf(sels[i], sizeof(sels[i]), "doc%d", i);
		tw_init(&t[i], sels[i], "<new/>", 6);
		t[i].dc = &dc;
		if (i == 3)
			t[i].apply_ret = XDMS_ERR_CONFLICT;
		ck_assert_err(store_write_submit(st, &t[i].w), XDMS_ERR_OK);
	}
	gate_open(&g);
	done_count_wait(&dc, 9);

	ck_assert_err(gt.w.result, XDMS_ERR_OK);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(t[i].done_calls, 1);
		if (i == 3) {
			ck_assert_err(t[i].w.result, XDMS_ERR_CONFLICT);
			ck_assert_str_eq(t[i].w.etag, "");
			expect_doc(st, sels[i], "<old/>", 6, NULL);
		} else {
			ck_assert_err(t[i].w.result, XDMS_ERR_OK);
			expect_doc(st, sels[i], "<new/>", 6, NULL);
		}
	}
	/* The 8 writes queued behind the gate went through as one group commit. */
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.batches, 3);
	ck_assert_uint_eq(s.batched_writes, 10);
	ck_assert_uint_eq(s.batch_size_buckets[3], 1); /* 8 <= 2^3 */
	ck_assert_uint_eq(s.last_seq, 9);
	store_close(st);
	gate_cleanup(&g);
	done_count_cleanup(&dc);
}
END_TEST

START_TEST(test_change_feed_chain)
{
	static const char detail[] = "replace\0/a/b";
	struct store *st = open_default();
	struct feed f;
	struct tw t;
	char e[5][STORE_ETAG_MAX];

	ck_assert_err(put_doc(st, "A", "<1/>", 4, e[0]), XDMS_ERR_OK);
	ck_assert_err(put_doc(st, "B", "<1/>", 4, e[1]), XDMS_ERR_OK);
	tw_init(&t, "A", "<2/>", 4);
	t.w.detail = detail;
	t.w.detail_len = sizeof(detail);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	snprintf(e[2], sizeof(e[2]), "%s", t.w.etag);
	ck_assert_err(put_doc(st, "A", "<3/>", 4, e[3]), XDMS_ERR_OK);
	ck_assert_err(del_doc(st, "B"), XDMS_ERR_OK);

	feed_read(st, 0, &f);
	ck_assert_uint_eq(f.n, 5);
	for (unsigned i = 0; i < f.n; i++) {
		ck_assert_uint_eq(f.recs[i].seq, i + 1);
		if (i)
			ck_assert_uint_ge(f.recs[i].time_ms, f.recs[i - 1].time_ms);
	}
	ck_assert_str_eq(f.recs[0].selector, "A");
	ck_assert_str_eq(f.recs[0].prev, "");
	ck_assert_str_eq(f.recs[0].next, e[0]);
	ck_assert(!f.recs[0].has_detail);
	ck_assert_str_eq(f.recs[1].selector, "B");
	ck_assert_str_eq(f.recs[1].prev, "");
	ck_assert_str_eq(f.recs[1].next, e[1]);
	ck_assert_str_eq(f.recs[2].selector, "A");
	ck_assert_str_eq(f.recs[2].prev, e[0]);
	ck_assert_str_eq(f.recs[2].next, e[2]);
	ck_assert(f.recs[2].has_detail);
	ck_assert_uint_eq(f.recs[2].detail_len, sizeof(detail));
	ck_assert_mem_eq(f.recs[2].detail, detail, sizeof(detail));
	ck_assert_str_eq(f.recs[3].prev, e[2]);
	ck_assert_str_eq(f.recs[3].next, e[3]);
	ck_assert_str_eq(f.recs[4].selector, "B");
	ck_assert_str_eq(f.recs[4].prev, e[1]);
	ck_assert_str_eq(f.recs[4].next, "");

	/* From the middle, and stopping early. */
	feed_read(st, 3, &f);
	ck_assert_uint_eq(f.n, 3);
	ck_assert_uint_eq(f.recs[0].seq, 3);
	f.stop_after = 1;
	{
		struct store_read *rd = NULL;

		f.n = 0;
		ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
		ck_assert_err(store_changes_scan(rd, 2, feed_visit, &f), XDMS_ERR_OK);
		store_read_end(rd);
		ck_assert_uint_eq(f.n, 1);
		ck_assert_uint_eq(f.recs[0].seq, 2);
	}
	f.stop_after = 0;
	feed_read(st, 6, &f);
	ck_assert_uint_eq(f.n, 0);
	store_close(st);
}
END_TEST

/* ---- the commit hook ----------------------------------------------------------------------- */

struct hook_rec {
	int calls;
	bool had_old;
	bool had_new;
	char old_etag[STORE_ETAG_MAX];
	char new_etag[STORE_ETAG_MAX];
	size_t new_len;
	const char *marker;
	enum xdms_err ret;
};

static enum xdms_err test_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *old_doc,
			       const struct store_doc *new_doc)
{
	struct tw *t = w->arg;
	struct hook_rec *h = t->hook_rec;
	MDB_val k = { strlen(h->marker), (void *)h->marker };
	MDB_val v = { 3, (void *)"yes" };

	h->calls++;
	h->had_old = old_doc != NULL;
	h->had_new = new_doc != NULL;
	snprintf(h->old_etag, sizeof(h->old_etag), "%s", old_doc ? old_doc->etag : "");
	snprintf(h->new_etag, sizeof(h->new_etag), "%s", new_doc ? new_doc->etag : "");
	h->new_len = new_doc ? new_doc->data_len : 0;
	/* The hook's own write, through the transaction it was given. */
	ck_assert_ptr_nonnull(txn);
	ck_assert_int_eq(mdb_put(txn->txn, txn->st->dbi_meta, &k, &v, 0), 0);
	return h->ret;
}

static bool marker_exists(struct store *st, const char *marker)
{
	struct store_read *rd = NULL;
	MDB_val k = { strlen(marker), (void *)marker }, v;
	int rc;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	rc = mdb_get(rd->txn, st->dbi_meta, &k, &v);
	store_read_end(rd);
	ck_assert(rc == 0 || rc == MDB_NOTFOUND);
	return rc == 0;
}

START_TEST(test_hook_in_txn)
{
	struct store *st = open_default();
	struct store_stats s;
	struct hook_rec h;
	struct tw t;
	char etag[STORE_ETAG_MAX];

	ck_assert_err(put_doc(st, "fh", "<v1/>", 5, etag), XDMS_ERR_OK);

	/* A hook that succeeds: its write commits with the document. */
	memset(&h, 0, sizeof(h));
	h.marker = "test-hook-ok";
	tw_init(&t, "fh", "<v2/>", 5);
	t.w.hook = test_hook;
	t.hook_rec = &h;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert_int_eq(h.calls, 1);
	ck_assert(h.had_old && h.had_new);
	ck_assert_str_eq(h.old_etag, etag);
	ck_assert_str_eq(h.new_etag, t.w.etag);
	ck_assert_uint_eq(h.new_len, 5);
	ck_assert(marker_exists(st, "test-hook-ok"));
	snprintf(etag, sizeof(etag), "%s", t.w.etag);

	/* A hook that fails: the document, the feed and the hook's write roll back. */
	memset(&h, 0, sizeof(h));
	h.marker = "test-hook-fail";
	h.ret = XDMS_ERR_CONFLICT;
	tw_init(&t, "fh", "<v3/>", 5);
	t.w.hook = test_hook;
	t.hook_rec = &h;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_CONFLICT);
	ck_assert_int_eq(h.calls, 1);
	ck_assert_str_eq(t.w.etag, "");
	ck_assert_uint_eq(t.w.seq, 0);
	ck_assert(!marker_exists(st, "test-hook-fail"));
	{
		char now_etag[STORE_ETAG_MAX];

		expect_doc(st, "fh", "<v2/>", 5, now_etag);
		ck_assert_str_eq(now_etag, etag);
	}
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.last_seq, 2);

	/* A delete's hook sees no new document. */
	memset(&h, 0, sizeof(h));
	h.marker = "test-hook-del";
	tw_init(&t, "fh", NULL, 0);
	t.is_delete = true;
	t.w.hook = test_hook;
	t.hook_rec = &h;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert(h.had_old && !h.had_new);
	ck_assert(marker_exists(st, "test-hook-del"));
	store_close(st);
}
END_TEST

/* ---- group commit under concurrency ----------------------------------------------------------- */

#define GC_THREADS 16
#define GC_WRITES 50

struct gc_arg {
	struct store *st;
	int id;
	int failures;
};

static void *gc_thread(void *arg)
{
	struct gc_arg *a = arg;

	for (int i = 0; i < GC_WRITES; i++) {
		char sel[64], body[64];
		struct tw t;

		snprintf(sel, sizeof(sel), "pcc/users/t%02d/doc%02d", a->id, i);
		snprintf(body, sizeof(body), "<doc t=\"%d\" i=\"%d\"/>", a->id, i);
		tw_init(&t, sel, body, strlen(body));
		t.w.done = NULL;
		if (store_write_run(a->st, &t.w) != XDMS_ERR_OK || t.w.result != XDMS_ERR_OK || !t.w.is_created)
			a->failures++;
	}
	return NULL;
}

static atomic_uint_fast64_t listener_last;

static void test_listener(void *arg, uint64_t last_seq)
{
	(void)arg;
	atomic_store(&listener_last, last_seq);
}

START_TEST(test_group_commit_concurrency)
{
	struct store *st = open_store(64 * MIB, 0, true);
	pthread_t th[GC_THREADS];
	struct gc_arg args[GC_THREADS];
	struct store_stats s;

	atomic_store(&listener_last, 0);
	ck_assert_err(store_add_commit_listener(st, test_listener, NULL), XDMS_ERR_OK);
	for (int i = 0; i < GC_THREADS; i++) {
		args[i].st = st;
		args[i].id = i;
		args[i].failures = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, gc_thread, &args[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(args[i].failures == 0, "thread %d: %d failed writes", i, args[i].failures);
	}
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.batched_writes, GC_THREADS * GC_WRITES);
	ck_assert_msg(s.batches < s.batched_writes, "no batching: %" PRIu64 " batches for %" PRIu64 " writes",
		      s.batches, s.batched_writes);
	ck_assert_uint_eq(s.doc_count, GC_THREADS * GC_WRITES);
	ck_assert_uint_eq(s.last_seq, GC_THREADS * GC_WRITES);
	ck_assert_uint_eq(atomic_load(&listener_last), GC_THREADS * GC_WRITES);
	for (int i = 0; i < GC_THREADS; i++) {
		for (int j = 0; j < GC_WRITES; j++) {
			char sel[64], body[64];

			snprintf(sel, sizeof(sel), "pcc/users/t%02d/doc%02d", i, j);
			snprintf(body, sizeof(body), "<doc t=\"%d\" i=\"%d\"/>", i, j);
			expect_doc(st, sel, body, strlen(body), NULL);
		}
	}
	store_close(st);
}
END_TEST

#define CA_PAIRS 20

/*
 * A write told at its commit (is_commit_ack) returns before its flush, is
 * visible at once, and the durable write that follows it makes both durable
 * with the flushes it needed anyway: pairs of (commit-ack, durable) writes
 * cost fewer flushes than pairs of durable writes, nothing is lost across a
 * reopen, and the commit listeners still hear of every change.
 */
START_TEST(test_commit_ack_shares_the_flush)
{
	struct store *st = open_store(64 * MIB, 0, true);
	struct store_stats s0, s1, s2;
	uint64_t durable_pairs, ack_pairs;

	atomic_store(&listener_last, 0);
	ck_assert_err(store_add_commit_listener(st, test_listener, NULL), XDMS_ERR_OK);
	ck_assert_err(store_stats_get(st, &s0), XDMS_ERR_OK);
	for (int i = 0; i < CA_PAIRS; i++) {
		char sel[32], body[32];

		snprintf(sel, sizeof(sel), "d/%02d", i);
		snprintf(body, sizeof(body), "<d i=\"%d\"/>", i);
		ck_assert_err(put_doc(st, sel, body, strlen(body), NULL), XDMS_ERR_OK);
		ck_assert_err(put_doc(st, "d/end", "<end/>", 6, NULL), XDMS_ERR_OK);
	}
	ck_assert_err(store_stats_get(st, &s1), XDMS_ERR_OK);
	for (int i = 0; i < CA_PAIRS; i++) {
		char sel[32], body[32];
		struct tw t;

		snprintf(sel, sizeof(sel), "a/%02d", i);
		snprintf(body, sizeof(body), "<a i=\"%d\"/>", i);
		tw_init(&t, sel, body, strlen(body));
		t.w.is_commit_ack = true;
		ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
		ck_assert_int_eq(t.done_calls, 1);
		ck_assert_uint_gt(t.w.seq, 0);
		expect_doc(st, sel, body, strlen(body), NULL);
		ck_assert_err(put_doc(st, "a/end", "<end/>", 6, NULL), XDMS_ERR_OK);
		/* The durable write's acknowledgement came after its flush, which
		 * the listeners heard of first, the commit-ack write included. */
		ck_assert_uint_ge(atomic_load(&listener_last), t.w.seq + 1);
	}
	ck_assert_err(store_stats_get(st, &s2), XDMS_ERR_OK);
	durable_pairs = s1.flushes - s0.flushes;
	ack_pairs = s2.flushes - s1.flushes;
	ck_assert_uint_ge(durable_pairs, 2 * CA_PAIRS);
	/* Each pair's first write needed no flush of its own (unless the
	 * writer's wait for the second one ran out, on a busy machine). */
	ck_assert_msg(ack_pairs < durable_pairs, "commit-ack pairs: %" PRIu64 " flushes, durable pairs: %" PRIu64,
		      ack_pairs, durable_pairs);
	store_close(st);

	st = open_store(64 * MIB, 0, true);
	for (int i = 0; i < CA_PAIRS; i++) {
		char sel[32], body[32];

		snprintf(sel, sizeof(sel), "a/%02d", i);
		snprintf(body, sizeof(body), "<a i=\"%d\"/>", i);
		expect_doc(st, sel, body, strlen(body), NULL);
	}
	store_close(st);
}
END_TEST

/* ---- map size --------------------------------------------------------------------------------- */

static char *pattern(size_t len, unsigned seed)
{
	char *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (char)((i * 31 + seed * 7) & 0xff);
	return p;
}

START_TEST(test_map_growth)
{
	enum { N = 100 };
	const size_t len = 64 * KIB;
	struct store *st = open_store(1 * MIB, 64 * MIB, false);
	struct done_count dc;
	struct gate g;
	struct tw gt, *t = calloc(N, sizeof(*t));
	char *data[N], sels[N][16];
	struct store_stats s;

	ck_assert_ptr_nonnull(t);
	done_count_init(&dc);
	gate_init(&g);
	tw_init(&gt, "gate", "<g/>", 4);
	gt.gate = &g;
	gt.dc = &dc;
	ck_assert_err(store_write_submit(st, &gt.w), XDMS_ERR_OK);
	gate_wait_entered(&g);
	/* 6.4 MiB in one batch against a 1 MiB map: it must grow mid-batch. */
	for (int i = 0; i < N; i++) {
		data[i] = pattern(len, (unsigned)i);
		snprintf(sels[i], sizeof(sels[i]), "big%03d", i);
		tw_init(&t[i], sels[i], data[i], len);
		t[i].dc = &dc;
		ck_assert_err(store_write_submit(st, &t[i].w), XDMS_ERR_OK);
	}
	gate_open(&g);
	done_count_wait(&dc, N + 1);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(t[i].w.result == XDMS_ERR_OK, "write %d: %s", i, xdms_err_name(t[i].w.result));
		ck_assert_uint_eq(t[i].w.seq, (uint64_t)i + 2);
	}
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_gt(s.map_grows, 0);
	ck_assert_uint_gt(s.map_size, 6 * MIB);
	ck_assert_uint_le(s.map_size, 64 * MIB);
	ck_assert_uint_le(s.used_bytes, s.map_size);
	ck_assert_uint_eq(s.last_seq, N + 1);
	for (int i = 0; i < N; i++)
		expect_doc(st, sels[i], data[i], len, NULL);
	store_close(st);

	/* The grown size is kept: reopening with the small size does not shrink it. */
	st = open_store(1 * MIB, 64 * MIB, false);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_gt(s.map_size, 6 * MIB);
	for (int i = 0; i < N; i++) {
		expect_doc(st, sels[i], data[i], len, NULL);
		free(data[i]);
	}
	store_close(st);
	free(t);
	gate_cleanup(&g);
	done_count_cleanup(&dc);
}
END_TEST

START_TEST(test_map_exhausted)
{
	const size_t len = 128 * KIB;
	struct store *st = open_store(1 * MIB, 1 * MIB, false);
	struct done_count dc;
	struct gate g;
	struct tw gt, small1, huge, small2;
	struct store_stats s;
	char *big = pattern(2 * MIB, 1), *chunk = pattern(len, 2);
	char keep_etag[STORE_ETAG_MAX], sel[STORE_ETAG_MAX];
	uint64_t ok_writes = 0;
	bool is_full = false;

	ck_assert_err(put_doc(st, "keep", "<keep/>", 7, keep_etag), XDMS_ERR_OK);
	ok_writes++;

	/* In one batch: the write that cannot fit fails FULL, its neighbours succeed. */
	done_count_init(&dc);
	gate_init(&g);
	tw_init(&gt, "gate", "<g/>", 4);
	gt.gate = &g;
	gt.dc = &dc;
	ck_assert_err(store_write_submit(st, &gt.w), XDMS_ERR_OK);
	gate_wait_entered(&g);
	tw_init(&small1, "small1", "<s1/>", 5);
	tw_init(&huge, "huge", big, 2 * MIB);
	tw_init(&small2, "small2", "<s2/>", 5);
	small1.dc = huge.dc = small2.dc = &dc;
	ck_assert_err(store_write_submit(st, &small1.w), XDMS_ERR_OK);
	ck_assert_err(store_write_submit(st, &huge.w), XDMS_ERR_OK);
	ck_assert_err(store_write_submit(st, &small2.w), XDMS_ERR_OK);
	gate_open(&g);
	done_count_wait(&dc, 4);
	ck_assert_err(gt.w.result, XDMS_ERR_OK);
	ck_assert_err(small1.w.result, XDMS_ERR_OK);
	ck_assert_err(huge.w.result, XDMS_ERR_FULL);
	ck_assert_str_eq(huge.w.etag, "");
	ck_assert_err(small2.w.result, XDMS_ERR_OK);
	ok_writes += 3;
	expect_no_doc(st, "huge");

	/* Fill the map: eventually FULL, and nothing of the failed write is visible. */
	for (int i = 0; i < 32 && !is_full; i++) {
		enum xdms_err err;

		snprintf(sel, sizeof(sel), "fill%02d", i);
		err = put_doc(st, sel, chunk, len, NULL);
		if (err == XDMS_ERR_FULL) {
			is_full = true;
			expect_no_doc(st, sel);
		} else {
			ck_assert_err(err, XDMS_ERR_OK);
			ok_writes++;
		}
	}
	ck_assert_msg(is_full, "a 1 MiB map never filled up");
	expect_doc(st, "keep", "<keep/>", 7, sel);
	ck_assert_str_eq(sel, keep_etag);
	expect_doc(st, "small1", "<s1/>", 5, NULL);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.map_grows, 0);
	ck_assert_uint_eq(s.last_seq, ok_writes);
	ck_assert_uint_eq(s.doc_count, ok_writes);
	store_close(st);
	free(big);
	free(chunk);
	gate_cleanup(&g);
	done_count_cleanup(&dc);
}
END_TEST

/*
 * A map that cannot grow, kept full by random batches of writes and
 * deletes. Writes then fail FULL in their nested transaction or, when the
 * parent's commit itself runs out of room, all together. Whatever happens,
 * the outcome reported to each write must match the store exactly: the feed
 * holds precisely the writes that reported OK, in order, and every
 * document's ETag is that of the last OK write to it.
 */
#define FS_ROUNDS 300
#define FS_SELS 60

struct fs_ok {
	uint64_t seq;
	int sel;
	char etag[STORE_ETAG_MAX];
};

struct fs_feed {
	const struct fs_ok *oks;
	unsigned n_ok;
	unsigned i;
	bool is_bad;
	char sels[FS_SELS][8];
};

static int fs_feed_visit(void *arg, const struct store_change *c)
{
	struct fs_feed *f = arg;
	const struct fs_ok *o = &f->oks[f->i];

	if (f->i >= f->n_ok || c->seq != o->seq || strcmp(c->selector, f->sels[o->sel]) != 0 ||
	    strcmp(c->new_etag, o->etag) != 0) {
		f->is_bad = true;
		return 1;
	}
	f->i++;
	return 0;
}

static uint32_t fs_rand(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

START_TEST(test_full_map_outcomes_match_store)
{
	struct store *st = open_store(512 * KIB, 512 * KIB, false);
	struct fs_ok *oks = calloc((size_t)FS_ROUNDS * 16, sizeof(*oks));
	char expect[FS_SELS][STORE_ETAG_MAX];
	char *buf = pattern(40 * KIB, 3);
	struct fs_feed f = { .oks = oks };
	struct store_read *rd = NULL;
	struct store_stats s;
	struct done_count dc;
	struct tw t[16];
	int sel_of[16];
	uint32_t seed = 42;
	unsigned n_ok = 0, n_full = 0;

	ck_assert_ptr_nonnull(oks);
	memset(expect, 0, sizeof(expect));
	for (int i = 0; i < FS_SELS; i++)
		snprintf(f.sels[i], sizeof(f.sels[i]), "d%02d", i);
	done_count_init(&dc);
	for (int round = 0; round < FS_ROUNDS; round++) {
		unsigned n = 1 + fs_rand(&seed) % 16;

		dc.n = 0;
		for (unsigned i = 0; i < n; i++) {
			size_t len = fs_rand(&seed) % (fs_rand(&seed) % 2 ? 3000 : 40000);

			sel_of[i] = (int)(fs_rand(&seed) % FS_SELS);
			tw_init(&t[i], f.sels[sel_of[i]], buf, len);
			t[i].is_delete = fs_rand(&seed) % 3 == 0;
			t[i].dc = &dc;
			ck_assert_err(store_write_submit(st, &t[i].w), XDMS_ERR_OK);
		}
		done_count_wait(&dc, n);
		for (unsigned i = 0; i < n; i++) {
			enum xdms_err r = t[i].w.result;

			if (r == XDMS_ERR_OK) {
				ck_assert_uint_gt(t[i].w.seq, n_ok ? oks[n_ok - 1].seq : 0);
				oks[n_ok].seq = t[i].w.seq;
				oks[n_ok].sel = sel_of[i];
				snprintf(oks[n_ok].etag, sizeof(oks[n_ok].etag), "%s", t[i].w.etag);
				snprintf(expect[sel_of[i]], sizeof(expect[0]), "%s", t[i].w.etag);
				n_ok++;
			} else if (r == XDMS_ERR_FULL) {
				ck_assert_str_eq(t[i].w.etag, "");
				ck_assert_uint_eq(t[i].w.seq, 0);
				n_full++;
			} else {
				ck_assert_msg(r == XDMS_ERR_NOTFOUND && t[i].is_delete, "write %s: %s", f.sels[sel_of[i]],
					      xdms_err_name(r));
			}
		}
	}
	ck_assert_msg(n_ok > 100 && n_full > 100, "the map should have been full often: %u OK, %u FULL", n_ok,
		      n_full);

	f.n_ok = n_ok;
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_changes_scan(rd, 0, fs_feed_visit, &f), XDMS_ERR_OK);
	ck_assert_msg(!f.is_bad && f.i == n_ok, "feed disagrees with the reported outcomes at record %u of %u", f.i,
		      n_ok);
	for (int i = 0; i < FS_SELS; i++) {
		struct store_doc d;
		enum xdms_err err = store_doc_get(rd, f.sels[i], &d);

		if (expect[i][0]) {
			ck_assert_err(err, XDMS_ERR_OK);
			ck_assert_str_eq(d.etag, expect[i]);
		} else {
			ck_assert_err(err, XDMS_ERR_NOTFOUND);
		}
	}
	store_read_end(rd);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.last_seq, oks[n_ok - 1].seq);
	ck_assert_uint_eq(s.last_seq, n_ok);
	store_close(st);
	free(buf);
	free(oks);
	done_count_cleanup(&dc);
}
END_TEST

START_TEST(test_selector_too_long)
{
	struct store *st = open_default();
	char sel[2100];
	struct tw t;

	memset(sel, 'a', sizeof(sel));
	sel[600] = '\0';
	tw_init(&t, sel, "<x/>", 4);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_TOOBIG);
	ck_assert_int_eq(t.apply_calls, 0);
	ck_assert_int_eq(t.done_calls, 1);

	sel[600] = 'a';
	sel[2000] = '\0';
	tw_init(&t, sel, "<x/>", 4);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_TOOBIG);
	ck_assert_int_eq(t.apply_calls, 0);
	expect_no_doc(st, sel);

	sel[400] = '\0';
	ck_assert_err(put_doc(st, sel, "<x/>", 4, NULL), XDMS_ERR_OK);
	expect_doc(st, sel, "<x/>", 4, NULL);

	/* Other malformed writes fail the same way: through result and done. */
	tw_init(&t, "", "<x/>", 4);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_INVAL);
	ck_assert_int_eq(t.done_calls, 1);
	tw_init(&t, "x", "<x/>", 4);
	t.w.etag_prefix = NULL;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_INVAL);
	ck_assert_int_eq(t.apply_calls, 0);
	tw_init(&t, "x", "<x/>", 4);
	t.w.apply = NULL;
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_INVAL);
	ck_assert_int_eq(t.done_calls, 1);

	/* An ETag prefix is cosmetic: unsafe bytes are replaced, a long one is cut. */
	tw_init(&t, "x", "<x/>", 4);
	t.w.etag_prefix = "bad\"pre fix";
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert_int_eq(strncmp(t.w.etag, "bad_pre_fix-", 12), 0);
	tw_init(&t, "x", "<x/>", 4);
	t.w.etag_prefix = "org.openmobilealliance.cab-feature-handler.extra";
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_OK);
	ck_assert_uint_eq(strlen(t.w.etag), STORE_ETAG_MAX - 1);
	ck_assert_int_eq(strncmp(t.w.etag, "org.openmobilealliance.cab-feature-h", 36), 0);
	store_close(st);
}
END_TEST

/* ---- listing ----------------------------------------------------------------------------------- */

struct list_acc {
	char sels[16][32];
	unsigned n;
	unsigned stop_after;
};

static int list_visit(void *arg, const char *selector, const struct store_doc *doc)
{
	struct list_acc *a = arg;

	ck_assert_uint_lt(a->n, 16);
	ck_assert_uint_eq(doc->data_len, strlen(selector));
	ck_assert_mem_eq(doc->data, selector, doc->data_len);
	snprintf(a->sels[a->n++], sizeof(a->sels[0]), "%s", selector);
	return a->stop_after && a->n >= a->stop_after;
}

static void list(struct store *st, const char *prefix, struct list_acc *a)
{
	struct store_read *rd = NULL;

	a->n = 0;
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_list(rd, prefix, list_visit, a), XDMS_ERR_OK);
	store_read_end(rd);
}

START_TEST(test_doc_list_prefix)
{
	static const char *const sels[] = { "b/1", "a/2", "a/10", "ab", "a/1", "a" };
	struct store *st = open_default();
	struct list_acc a = { .stop_after = 0 };

	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
		ck_assert_err(put_doc(st, sels[i], sels[i], strlen(sels[i]), NULL), XDMS_ERR_OK);
	list(st, "a/", &a);
	ck_assert_uint_eq(a.n, 3);
	ck_assert_str_eq(a.sels[0], "a/1");
	ck_assert_str_eq(a.sels[1], "a/10");
	ck_assert_str_eq(a.sels[2], "a/2");
	list(st, "", &a);
	ck_assert_uint_eq(a.n, 6);
	ck_assert_str_eq(a.sels[0], "a");
	ck_assert_str_eq(a.sels[5], "b/1");
	list(st, "a", &a);
	ck_assert_uint_eq(a.n, 5);
	list(st, "zzz", &a);
	ck_assert_uint_eq(a.n, 0);
	list(st, "b/1", &a);
	ck_assert_uint_eq(a.n, 1);
	a.stop_after = 2;
	list(st, "", &a);
	ck_assert_uint_eq(a.n, 2);
	store_close(st);
}
END_TEST

START_TEST(test_doc_list_after_pages)
{
	static const char *const sels[] = { "a/1", "a/2", "a/3", "a/4", "b/1" };
	struct store *st = open_default();
	struct list_acc a = { .stop_after = 2 };
	struct store_read *rd = NULL;

	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
		ck_assert_err(put_doc(st, sels[i], sels[i], strlen(sels[i]), NULL), XDMS_ERR_OK);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_list_after(rd, "a/", NULL, list_visit, &a), XDMS_ERR_OK);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_str_eq(a.sels[1], "a/2");
	a.n = 0;
	ck_assert_err(store_doc_list_after(rd, "a/", "a/2", list_visit, &a), XDMS_ERR_OK);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_str_eq(a.sels[0], "a/3");
	ck_assert_str_eq(a.sels[1], "a/4");
	a.n = 0;
	/* a key that no longer exists still resumes after it; the prefix still ends the walk */
	ck_assert_err(store_doc_list_after(rd, "a/", "a/25", list_visit, &a), XDMS_ERR_OK);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_str_eq(a.sels[0], "a/3");
	a.n = 0;
	a.stop_after = 0;
	ck_assert_err(store_doc_list_after(rd, "a/", "a/4", list_visit, &a), XDMS_ERR_OK);
	ck_assert_uint_eq(a.n, 0);
	store_read_end(rd);
	store_close(st);
}
END_TEST

/* ---- record writes and subscription records ------------------------------------------------------ */

struct rec_op {
	uint64_t id;
	const char *rec; /* NULL: delete */
	bool fail;       /* fail after writing, to check the rollback */
};

static enum xdms_err rec_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
			      const struct store_doc *n)
{
	const struct rec_op *op = w->arg;
	enum xdms_err err;

	ck_assert_ptr_null(o);
	ck_assert_ptr_null(n);
	err = op->rec ? store_sub_put(txn, op->id, op->rec, strlen(op->rec)) : store_sub_del(txn, op->id);
	if (!err && op->fail)
		return XDMS_ERR_INVAL;
	return err;
}

static enum xdms_err rec_write(struct store *st, const struct rec_op *op)
{
	struct store_write w = { .hook = rec_hook, .arg = (void *)op };

	return store_write_run(st, &w);
}

struct sub_acc {
	uint64_t ids[8];
	char recs[8][32];
	unsigned n;
};

static int sub_visit(void *arg, uint64_t id, const void *rec, size_t len)
{
	struct sub_acc *a = arg;

	ck_assert_uint_lt(a->n, 8);
	ck_assert_uint_lt(len, 32);
	a->ids[a->n] = id;
	memcpy(a->recs[a->n], rec, len);
	a->recs[a->n][len] = '\0';
	a->n++;
	return 0;
}

static void subs_read(struct store *st, struct sub_acc *a)
{
	struct store_read *rd = NULL;

	memset(a, 0, sizeof(*a));
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_sub_list(rd, sub_visit, a), XDMS_ERR_OK);
	store_read_end(rd);
}

START_TEST(test_record_writes_and_subs)
{
	struct store *st = open_store(0, 0, true);
	struct store_stats before, after;
	struct rec_op put2 = { .id = 2, .rec = "two" }, put300 = { .id = 300, .rec = "three hundred" };
	struct rec_op bad = { .id = 7, .rec = "never", .fail = true }, del2 = { .id = 2 };
	struct sub_acc a;

	ck_assert_err(store_stats_get(st, &before), XDMS_ERR_OK);
	ck_assert_err(rec_write(st, &put300), XDMS_ERR_OK);
	ck_assert_err(rec_write(st, &put2), XDMS_ERR_OK);
	ck_assert_err(rec_write(st, &bad), XDMS_ERR_INVAL);
	subs_read(st, &a);
	ck_assert_uint_eq(a.n, 2); /* id order; the failed write left nothing */
	ck_assert_uint_eq(a.ids[0], 2);
	ck_assert_str_eq(a.recs[0], "two");
	ck_assert_uint_eq(a.ids[1], 300);
	ck_assert_str_eq(a.recs[1], "three hundred");
	/* record writes touch neither the feed nor the ETag counter */
	ck_assert_err(store_stats_get(st, &after), XDMS_ERR_OK);
	ck_assert_uint_eq(after.last_seq, before.last_seq);
	ck_assert_uint_eq(after.doc_count, before.doc_count);
	ck_assert_err(rec_write(st, &del2), XDMS_ERR_OK);
	ck_assert_err(rec_write(st, &del2), XDMS_ERR_NOTFOUND);
	store_close(st);
	st = open_store(0, 0, true);
	subs_read(st, &a);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_uint_eq(a.ids[0], 300);
	store_close(st);
}
END_TEST

/* ---- IWF watches --------------------------------------------------------------------- */

static int count_watch(void *arg, const struct store_watch *w)
{
	unsigned *n = arg;

	(void)w;
	(*n)++;
	return 0;
}

START_TEST(test_watch_round_trip)
{
	struct store *st = open_store(0, 0, true);
	struct store_watch *w = calloc(1, sizeof(*w)), *got = calloc(1, sizeof(*got));
	struct store_read *rd = NULL;
	unsigned n = 0;

	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_nonnull(got);
	snprintf(w->xui, sizeof(w->xui), "sip:alice@example.com");
	snprintf(w->request_id, sizeof(w->request_id), "sub-1");
	snprintf(w->adapter, sizeof(w->adapter), "remote-cab");
	snprintf(w->target, sizeof(w->target), "pcc");
	snprintf(w->validator, sizeof(w->validator), "E:\"abc\"");
	snprintf(w->hook_id, sizeof(w->hook_id), "0123abcd");
	snprintf(w->remote_user, sizeof(w->remote_user), "alice.remote");
	snprintf(w->fields, sizeof(w->fields), "fn tel");
	w->job_id = 42;
	w->state = STORE_WATCH_HELD;
	w->expires_ms = 1700000000123ull;
	w->next_poll_ms = 1700000000456ull;
	w->seq = 7;
	w->failures = 2;
	w->dialog_len = 3;
	memcpy(w->dialog, "\0\1\2", 3);
	snprintf(w->cred, sizeof(w->cred), "ref:people-token");
	ck_assert_err(store_watch_put(st, w), XDMS_ERR_OK);
	store_close(st);
	/* Durable: read back after a reopen, every field as written. */
	st = open_store(0, 0, true);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_watch_get(rd, "sip:alice@example.com", "sub-1", got), XDMS_ERR_OK);
	ck_assert_err(store_watch_get(rd, "sip:alice@example.com", "sub-2", got + 0), XDMS_ERR_NOTFOUND);
	store_read_end(rd);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_watch_get(rd, "sip:alice@example.com", "sub-1", got), XDMS_ERR_OK);
	store_read_end(rd);
	ck_assert_int_eq(memcmp(w, got, sizeof(*w)), 0);
	/* A record without an adapter is refused. */
	w->adapter[0] = '\0';
	ck_assert_err(store_watch_put(st, w), XDMS_ERR_INVAL);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_watch_list(rd, count_watch, &n), XDMS_ERR_OK);
	store_read_end(rd);
	ck_assert_uint_eq(n, 1);
	ck_assert_err(store_watch_del(st, "sip:alice@example.com", "sub-1"), XDMS_ERR_OK);
	ck_assert_err(store_watch_del(st, "sip:alice@example.com", "sub-1"), XDMS_ERR_NOTFOUND);
	n = 0;
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_watch_list(rd, count_watch, &n), XDMS_ERR_OK);
	store_read_end(rd);
	ck_assert_uint_eq(n, 0);
	store_close(st);
	free(w);
	free(got);
}
END_TEST

START_TEST(test_changes_last)
{
	struct store *st = open_default();
	struct store_read *rd = NULL;
	uint64_t seq = 99;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_changes_last(rd, &seq), XDMS_ERR_OK);
	ck_assert_uint_eq(seq, 0);
	store_read_end(rd);
	ck_assert_err(put_doc(st, "x/1", "a", 1, NULL), XDMS_ERR_OK);
	ck_assert_err(put_doc(st, "x/2", "b", 1, NULL), XDMS_ERR_OK);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_changes_last(rd, &seq), XDMS_ERR_OK);
	ck_assert_uint_eq(seq, 2);
	store_read_end(rd);
	store_close(st);
}
END_TEST

static uint64_t feed_first(struct store *st)
{
	struct store_read *rd = NULL;
	uint64_t seq = 0;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_changes_first(rd, &seq), XDMS_ERR_OK);
	store_read_end(rd);
	return seq;
}

START_TEST(test_feed_pruned_by_age_and_floor)
{
	struct store_options opt = { .path = db_path, .feed_retention_ms = 1 };
	struct store *st = NULL;
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	char sel[32];

	ck_assert_err(store_open(&opt, &st), XDMS_ERR_OK);
	for (int i = 0; i < 5; i++) {
		snprintf(sel, sizeof(sel), "a/%d", i);
		ck_assert_err(put_doc(st, sel, "x", 1, NULL), XDMS_ERR_OK);
	}
	nanosleep(&pause, NULL);
	/* The floor starts at 0: old enough is not enough. */
	ck_assert_err(put_doc(st, "b/1", "x", 1, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(feed_first(st), 1);
	/* A reader still needs sequence 3: 1 and 2 go, 3 stays. */
	store_set_feed_floor(st, 3);
	ck_assert_err(put_doc(st, "b/2", "x", 1, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(feed_first(st), 3);
	/* No reader: everything old enough goes; the newest records are too young. */
	store_set_feed_floor(st, UINT64_MAX);
	nanosleep(&pause, NULL);
	ck_assert_err(put_doc(st, "b/3", "x", 1, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(feed_first(st), 8);
	store_close(st);
}
END_TEST

/* ---- users -------------------------------------------------------------------------------------- */

static void user_fill(struct store_user *u, const char *xui, const char *username, const char *realm1,
		      const char *realm2, unsigned char seed)
{
	memset(u, 0xa5, sizeof(*u)); /* garbage past the NULs must not matter */
	snprintf(u->xui, sizeof(u->xui), "%s", xui);
	snprintf(u->username, sizeof(u->username), "%s", username);
	u->created_ms = 1700000000000ull + seed;
	u->realm_count = realm2 ? 2 : 1;
	snprintf(u->realms[0].realm, sizeof(u->realms[0].realm), "%s", realm1);
	u->realms[0].is_xui_only = false;
	if (realm2) {
		snprintf(u->realms[1].realm, sizeof(u->realms[1].realm), "%s", realm2);
		u->realms[1].is_xui_only = false;
	}
	for (unsigned r = 0; r < u->realm_count; r++) {
		memset(u->realms[r].ha1_md5_user, seed + r, 16);
		memset(u->realms[r].ha1_sha256_user, seed + r + 1, 32);
		memset(u->realms[r].ha1_md5_xui, seed + r + 2, 16);
		memset(u->realms[r].ha1_sha256_xui, seed + r + 3, 32);
	}
}

static void user_expect_eq(const struct store_user *got, const struct store_user *want)
{
	ck_assert_str_eq(got->xui, want->xui);
	ck_assert_str_eq(got->username, want->username);
	ck_assert_uint_eq(got->created_ms, want->created_ms);
	ck_assert_uint_eq(got->realm_count, want->realm_count);
	for (unsigned r = 0; r < want->realm_count; r++) {
		ck_assert_str_eq(got->realms[r].realm, want->realms[r].realm);
		ck_assert_mem_eq(got->realms[r].ha1_md5_user, want->realms[r].ha1_md5_user, 16);
		ck_assert_mem_eq(got->realms[r].ha1_sha256_user, want->realms[r].ha1_sha256_user, 32);
		ck_assert_mem_eq(got->realms[r].ha1_md5_xui, want->realms[r].ha1_md5_xui, 16);
		ck_assert_mem_eq(got->realms[r].ha1_sha256_xui, want->realms[r].ha1_sha256_xui, 32);
	}
}

static enum xdms_err user_find(struct store *st, const char *realm, const char *name, struct store_user *out)
{
	struct store_read *rd = NULL;
	enum xdms_err err;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	err = store_user_find(rd, realm, name, out);
	store_read_end(rd);
	return err;
}

static enum xdms_err user_get(struct store *st, const char *xui, struct store_user *out)
{
	struct store_read *rd = NULL;
	enum xdms_err err;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	err = store_user_get(rd, xui, out);
	store_read_end(rd);
	return err;
}

struct user_acc {
	char xuis[8][STORE_XUI_MAX];
	unsigned n;
};

static int user_visit(void *arg, const struct store_user *u)
{
	struct user_acc *a = arg;

	ck_assert_uint_lt(a->n, 8);
	snprintf(a->xuis[a->n++], sizeof(a->xuis[0]), "%s", u->xui);
	return 0;
}

START_TEST(test_users)
{
	struct store *st = open_default();
	struct store_user alice, bob, got, alice2, clash;
	struct store_read *rd = NULL;
	struct store_stats s;
	struct user_acc a = { .n = 0 };

	user_fill(&alice, "sip:alice@example.com", "alice", "example.com", "xcap", 1);
	user_fill(&bob, "tel:+15551234", "+15551234", "example.com", NULL, 9);
	ck_assert_err(store_user_put(st, &alice, true), XDMS_ERR_OK);
	ck_assert_err(store_user_put(st, &bob, true), XDMS_ERR_OK);
	ck_assert_err(store_user_put(st, &alice, true), XDMS_ERR_EXISTS);

	ck_assert_err(user_get(st, "sip:alice@example.com", &got), XDMS_ERR_OK);
	user_expect_eq(&got, &alice);
	ck_assert_err(user_find(st, "example.com", "alice", &got), XDMS_ERR_OK);
	user_expect_eq(&got, &alice);
	ck_assert_err(user_find(st, "example.com", "sip:alice@example.com", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@example.com");
	ck_assert_err(user_find(st, "xcap", "alice", &got), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "xcap", "sip:alice@example.com", &got), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "example.com", "+15551234", &got), XDMS_ERR_OK);
	user_expect_eq(&got, &bob);
	ck_assert_err(user_find(st, "other", "alice", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_find(st, "xcap", "+15551234", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_get(st, "sip:carol@example.com", &got), XDMS_ERR_NOTFOUND);

	/* Another user may not take a name that already logs somebody in. */
	user_fill(&clash, "sip:alice@other.org", "alice", "example.com", NULL, 3);
	ck_assert_err(store_user_put(st, &clash, true), XDMS_ERR_CONFLICT);
	ck_assert_err(user_get(st, "sip:alice@other.org", &got), XDMS_ERR_NOTFOUND);

	/* Replacing drops the old realm's names and adds the new ones. */
	user_fill(&alice2, "sip:alice@example.com", "alice", "newrealm", NULL, 5);
	ck_assert_err(store_user_put(st, &alice2, false), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "example.com", "alice", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_find(st, "xcap", "sip:alice@example.com", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_find(st, "newrealm", "alice", &got), XDMS_ERR_OK);
	user_expect_eq(&got, &alice2);

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_user_list(rd, user_visit, &a), XDMS_ERR_OK);
	store_read_end(rd);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_str_eq(a.xuis[0], "sip:alice@example.com");
	ck_assert_str_eq(a.xuis[1], "tel:+15551234");
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.user_count, 2);

	ck_assert_err(store_user_del(st, "sip:alice@example.com"), XDMS_ERR_OK);
	ck_assert_err(user_get(st, "sip:alice@example.com", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_find(st, "newrealm", "alice", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(user_find(st, "newrealm", "sip:alice@example.com", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(store_user_del(st, "sip:alice@example.com"), XDMS_ERR_NOTFOUND);
	/* Now the name is free for the other alice. */
	ck_assert_err(store_user_put(st, &clash, true), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "example.com", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@other.org");

	/* Invalid records are refused. */
	clash.realm_count = 3;
	ck_assert_err(store_user_put(st, &clash, false), XDMS_ERR_INVAL);
	memset(clash.xui, 'x', sizeof(clash.xui));
	clash.realm_count = 1;
	ck_assert_err(store_user_put(st, &clash, false), XDMS_ERR_INVAL);
	store_close(st);
}
END_TEST

/* ---- IWF jobs: pruning and the count of unfinished jobs ----------------------- */

struct job_add {
	const char *rid;
	enum store_job_kind kind;
	uint64_t id;
};

static enum xdms_err job_add_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *old_doc,
				  const struct store_doc *new_doc)
{
	struct job_add *a = w->arg;
	char hash[STORE_JOB_HASH_MAX];

	(void)old_doc;
	(void)new_doc;
	memset(hash, 'a' + (int)(strlen(a->rid) % 16), sizeof(hash) - 1);
	hash[sizeof(hash) - 1] = '\0';
	return store_job_add_txn(txn, "sip:alice@example.com", a->rid, hash, a->kind, &a->id);
}

static uint64_t job_add(struct store *st, const char *rid)
{
	struct job_add a = { rid, STORE_JOB_IMPORT, 0 };
	struct store_write w;

	memset(&w, 0, sizeof(w));
	w.hook = job_add_hook;
	w.arg = &a;
	ck_assert_err(store_write_run(st, &w), XDMS_ERR_OK);
	return a.id;
}

static void active_count(struct store *st, uint64_t *queued, uint64_t *running)
{
	struct store_read *rd = NULL;

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_job_count_active(rd, queued, running), XDMS_ERR_OK);
	store_read_end(rd);
}

START_TEST(test_job_prune_keeps_unfinished_jobs_and_requests)
{
	struct store *st = open_default();
	uint64_t ended = job_add(st, "r-ended"), waiting = job_add(st, "r-waiting"), queued, running, cur;
	struct store_job j, claimed;
	struct store_read *rd = NULL;
	unsigned pruned = 99;

	active_count(st, &queued, &running);
	ck_assert_uint_eq(queued, 2);
	ck_assert_uint_eq(running, 0);
	ck_assert_err(store_job_end(st, ended, STORE_JOB_DONE, 200, "done"), XDMS_ERR_OK);
	/* Claimed and then back in the queue for a retry: still unfinished. */
	ck_assert_err(store_job_claim(st, store_now_ms(), 60000, &claimed, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(claimed.id, waiting);
	active_count(st, &queued, &running);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(running, 1);
	/* A cut-off before the jobs were made prunes nothing. */
	ck_assert_err(store_job_prune(st, 1, &pruned), XDMS_ERR_OK);
	ck_assert_uint_eq(pruned, 0);
	/* A cut-off after: the ended job goes, the running one stays. */
	ck_assert_err(store_job_prune(st, store_now_ms() + 1000, &pruned), XDMS_ERR_OK);
	ck_assert_uint_eq(pruned, 1);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_job_get(rd, ended, &j), XDMS_ERR_NOTFOUND);
	ck_assert_err(store_job_get(rd, waiting, &j), XDMS_ERR_OK);
	ck_assert_int_eq(j.state, STORE_JOB_RUNNING);
	/* The request of the pruned job still names it: its next write is
	 * compared with the hash it had, and an unchanged one runs nothing. */
	ck_assert_err(store_job_current(rd, "sip:alice@example.com", "r-ended", &cur), XDMS_ERR_OK);
	ck_assert_uint_eq(cur, ended);
	store_read_end(rd);
	active_count(st, &queued, &running);
	ck_assert_uint_eq(running, 1);
	store_close(st);
}
END_TEST

/* Claims go by the index of due times: a job waiting for a retry does not
 * stand in the way of one that is due, leases count as due times, and a
 * cancelled or ended job is never claimed. */
START_TEST(test_job_claim_follows_due_times)
{
	struct store *st = open_default();
	uint64_t now = store_now_ms(), ids[40], next_due = 0, fresh, cancelled;
	struct store_job j;
	char rid[32];

	for (unsigned i = 0; i < 40; i++) {
		snprintf(rid, sizeof(rid), "r-%u", i);
		ids[i] = job_add(st, rid);
		ck_assert_err(store_job_claim(st, store_now_ms(), 60000, &j, NULL), XDMS_ERR_OK);
		ck_assert_uint_eq(j.id, ids[i]);
		/* Later jobs wait less: the index must order by due time, not id. */
		ck_assert_err(store_job_retry(st, j.id, now + 100000 - i * 1000, true, "later"), XDMS_ERR_OK);
	}
	ck_assert_err(store_job_claim(st, now, 60000, &j, &next_due), XDMS_ERR_NOTFOUND);
	ck_assert_uint_eq(next_due, now + 100000 - 39 * 1000);
	fresh = job_add(st, "r-fresh");
	cancelled = job_add(st, "r-cancelled");
	ck_assert_err(store_job_end(st, cancelled, STORE_JOB_CANCELLED, 0, "gone"), XDMS_ERR_OK);
	ck_assert_err(store_job_claim(st, store_now_ms(), 600000, &j, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(j.id, fresh);
	/* Its lease is a due time too: before it ends the retries come first. */
	ck_assert_err(store_job_claim(st, now + 100000 - 39 * 1000, 60000, &j, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(j.id, ids[39]);
	ck_assert_err(store_job_claim(st, now + 100000 - 38 * 1000, 60000, &j, NULL), XDMS_ERR_OK);
	ck_assert_uint_eq(j.id, ids[38]);
	ck_assert_err(store_job_end(st, fresh, STORE_JOB_DONE, 200, "ok"), XDMS_ERR_OK);
	ck_assert_err(store_job_end(st, ids[39], STORE_JOB_DONE, 200, "ok"), XDMS_ERR_OK);
	ck_assert_err(store_job_end(st, ids[38], STORE_JOB_FAILED, 500, "no"), XDMS_ERR_OK);
	/* Every job still unfinished is claimed exactly once when all are due. */
	for (unsigned i = 0; i < 38; i++) {
		ck_assert_err(store_job_claim(st, now + 200000, 60000, &j, NULL), XDMS_ERR_OK);
		ck_assert_uint_eq(j.id, ids[37 - i]);
	}
	ck_assert_err(store_job_claim(st, now + 200000, 60000, &j, &next_due), XDMS_ERR_NOTFOUND);
	/* The 38 just claimed hold leases; nothing else is unfinished. */
	ck_assert_uint_eq(next_due, now + 200000 + 60000);
	store_close(st);
}
END_TEST

START_TEST(test_users_of_two_domains)
{
	struct store *st = open_default();
	struct store_user a, b, got;
	struct store_read *rd = NULL;
	char realm[STORE_REALM_MAX];

	/* A store without a recorded default realm says so. */
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_default_realm_get(rd, realm, sizeof(realm)), XDMS_ERR_NOTFOUND);
	store_read_end(rd);

	/* The first user records its domain as the default realm. */
	user_fill(&a, "sip:alice@a.example", "alice", "a.example", NULL, 1);
	ck_assert_err(store_user_put_realm(st, &a, true, "a.example", NULL), XDMS_ERR_OK);
	/* alice@b owns "alice" in b.example; in a.example only her full XUI. */
	user_fill(&b, "sip:alice@b.example", "alice", "b.example", "a.example", 2);
	ck_assert_err(store_user_put_realm(st, &b, true, "a.example", NULL), XDMS_ERR_CONFLICT);
	b.realms[1].is_xui_only = true;
	ck_assert_err(store_user_put_realm(st, &b, true, "a.example", NULL), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "a.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@a.example");
	ck_assert_err(user_find(st, "b.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@b.example");
	ck_assert_err(user_find(st, "a.example", "sip:alice@b.example", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@b.example");
	/* The flag is stored, so a replace or a delete walks the same names. */
	ck_assert(got.realms[1].is_xui_only);
	ck_assert(!got.realms[0].is_xui_only);
	ck_assert_err(store_user_put(st, &b, false), XDMS_ERR_OK);
	ck_assert_err(store_user_del(st, "sip:alice@b.example"), XDMS_ERR_OK);
	ck_assert_err(user_find(st, "a.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@a.example");
	ck_assert_err(user_find(st, "a.example", "sip:alice@b.example", &got), XDMS_ERR_NOTFOUND);

	/* The record is written once: another realm later is a CONFLICT and
	 * changes nothing; the same realm again is fine. */
	user_fill(&b, "sip:bob@c.example", "bob", "c.example", NULL, 3);
	ck_assert_err(store_user_put_realm(st, &b, true, "c.example", NULL), XDMS_ERR_CONFLICT);
	ck_assert_err(user_get(st, "sip:bob@c.example", &got), XDMS_ERR_NOTFOUND);
	ck_assert_err(store_user_put_realm(st, &b, true, "a.example", NULL), XDMS_ERR_OK);
	ck_assert_err(store_user_put_realm(st, &b, true, "", NULL), XDMS_ERR_INVAL);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_default_realm_get(rd, realm, sizeof(realm)), XDMS_ERR_OK);
	ck_assert_str_eq(realm, "a.example");
	ck_assert_err(store_default_realm_get(rd, realm, 4), XDMS_ERR_TOOBIG);
	store_read_end(rd);
	store_close(st);
}
END_TEST

/* The other order: alice@b first takes "alice" in a.example as an alias; when
 * alice@a arrives the alias gives way, in the same transaction. */
START_TEST(test_own_realm_wins_over_an_alias)
{
	struct store *st = open_default();
	struct store_user x, a, b, got;
	char yielded[STORE_XUI_MAX] = "?";

	user_fill(&x, "sip:x@a.example", "x", "a.example", NULL, 1);
	ck_assert_err(store_user_put_realm(st, &x, true, "a.example", NULL), XDMS_ERR_OK);
	user_fill(&b, "sip:alice@b.example", "alice", "b.example", "a.example", 2);
	ck_assert_err(store_user_put_realm(st, &b, true, "a.example", yielded), XDMS_ERR_OK);
	ck_assert_str_eq(yielded, "");
	ck_assert_err(user_find(st, "a.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@b.example");
	user_fill(&a, "sip:alice@a.example", "alice", "a.example", NULL, 3);
	ck_assert_err(store_user_put_realm(st, &a, true, "a.example", yielded), XDMS_ERR_OK);
	ck_assert_str_eq(yielded, "sip:alice@b.example");
	ck_assert_err(user_find(st, "a.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@a.example");
	/* alice@b keeps her full XUI in a.example and her own realm. */
	ck_assert_err(user_find(st, "a.example", "sip:alice@b.example", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@b.example");
	ck_assert(got.realms[1].is_xui_only);
	ck_assert_err(user_find(st, "b.example", "alice", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:alice@b.example");
	/* A name taken in its holder's own realm does not give way. */
	user_fill(&b, "sips:alice@a.example", "alice", "a.example", NULL, 4);
	ck_assert_err(store_user_put_realm(st, &b, true, "a.example", yielded), XDMS_ERR_CONFLICT);
	store_close(st);
}
END_TEST

START_TEST(test_users_grow_map)
{
	struct store *st = open_store(1 * MIB, 64 * MIB, false);
	struct store_user u, got;
	struct store_stats s;
	char xui[64], name[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(xui, sizeof(xui), "sip:user%04d@example.com", i);
		snprintf(name, sizeof(name), "user%04d", i);
		user_fill(&u, xui, name, "example.com", "xcap", (unsigned char)i);
		ck_assert_err(store_user_put(st, &u, true), XDMS_ERR_OK);
	}
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.user_count, 2000);
	ck_assert_uint_gt(s.map_grows, 0);
	ck_assert_err(user_find(st, "xcap", "user1999", &got), XDMS_ERR_OK);
	ck_assert_str_eq(got.xui, "sip:user1999@example.com");
	store_close(st);
}
END_TEST

/* ---- callbacks that call back into the store ---------------------------------------------------- */

struct reenter {
	struct store *st;
	bool apply_read_ok;
	enum xdms_err apply_run_err;
	enum xdms_err apply_user_err;
	bool hook_read_ok;
	bool done_read_ok;
	enum xdms_err done_run_err;
};

/* Reads "other" in a snapshot of its own; true when it holds "<o/>". */
static bool reenter_read_other(struct store *st)
{
	struct store_read *rd = NULL;
	struct store_doc d;
	bool is_ok;

	if (store_read_begin(st, &rd))
		return false;
	is_ok = !store_doc_get(rd, "other", &d) && d.data_len == 4 && !memcmp(d.data, "<o/>", 4);
	store_read_end(rd);
	return is_ok;
}

static enum xdms_err reenter_apply(struct store_write *w, const struct store_doc *cur)
{
	struct reenter *r = w->arg;
	struct store_write w2 = { .selector = "nested", .etag_prefix = "x", .apply = reenter_apply };
	struct store_user u;

	(void)cur;
	r->apply_read_ok = reenter_read_other(r->st);
	/* Forbidden by the contract; must fail instead of hanging the writer. */
	r->apply_run_err = store_write_run(r->st, &w2);
	memset(&u, 0, sizeof(u));
	snprintf(u.xui, sizeof(u.xui), "sip:x@example.com");
	snprintf(u.username, sizeof(u.username), "x");
	r->apply_user_err = store_user_put(r->st, &u, true);
	w->new_data = "<d/>";
	w->new_len = 4;
	return XDMS_ERR_OK;
}

static enum xdms_err reenter_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *old_doc,
				  const struct store_doc *new_doc)
{
	struct reenter *r = w->arg;

	(void)txn;
	(void)old_doc;
	(void)new_doc;
	r->hook_read_ok = reenter_read_other(r->st);
	return XDMS_ERR_OK;
}

static void reenter_done(struct store_write *w)
{
	struct reenter *r = w->arg;
	struct store_write w2 = { .selector = "nested", .etag_prefix = "x", .apply = reenter_apply };

	r->done_read_ok = reenter_read_other(r->st);
	r->done_run_err = store_write_run(r->st, &w2);
}

START_TEST(test_callbacks_reenter)
{
	struct store *st = open_default();
	struct reenter r = { .st = st };
	struct store_write w = { .selector = "doc", .etag_prefix = "pcc", .apply = reenter_apply,
				 .hook = reenter_hook, .done = reenter_done, .arg = &r };
	struct store_read *rd = NULL;
	struct store_user u;

	ck_assert_err(put_doc(st, "other", "<o/>", 4, NULL), XDMS_ERR_OK);
	ck_assert_err(store_write_run(st, &w), XDMS_ERR_OK);
	ck_assert(r.apply_read_ok);
	ck_assert(r.hook_read_ok);
	ck_assert(r.done_read_ok);
	ck_assert_err(r.apply_run_err, XDMS_ERR_BUSY);
	ck_assert_err(r.apply_user_err, XDMS_ERR_BUSY);
	ck_assert_err(r.done_run_err, XDMS_ERR_BUSY);
	expect_doc(st, "doc", "<d/>", 4, NULL);
	expect_no_doc(st, "nested");
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_user_get(rd, "sip:x@example.com", &u), XDMS_ERR_NOTFOUND);
	/* A thread inside a snapshot may not wait for a user write either. */
	memset(&u, 0, sizeof(u));
	snprintf(u.xui, sizeof(u.xui), "sip:y@example.com");
	snprintf(u.username, sizeof(u.username), "y");
	ck_assert_err(store_user_put(st, &u, true), XDMS_ERR_BUSY);
	store_read_end(rd);
	ck_assert_err(store_user_put(st, &u, true), XDMS_ERR_OK);
	store_close(st);
}
END_TEST

/* ---- snapshots, lifecycle ----------------------------------------------------------------------- */

struct writer_arg {
	struct store *st;
	const char *sel;
	const char *data;
	enum xdms_err err;
};

static void *writer_thread(void *arg)
{
	struct writer_arg *a = arg;
	struct tw t;

	tw_init(&t, a->sel, a->data, strlen(a->data));
	a->err = store_write_run(a->st, &t.w);
	return NULL;
}

START_TEST(test_snapshot_isolation)
{
	struct store *st = open_default();
	struct store_read *rd = NULL, *rd2 = NULL;
	struct writer_arg wa = { .sel = "doc", .data = "<v2/>" };
	struct store_doc d, d2;
	struct tw t;
	pthread_t th;

	wa.st = st;
	ck_assert_err(put_doc(st, "doc", "<v1/>", 5, NULL), XDMS_ERR_OK);
	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, "doc", &d), XDMS_ERR_OK);
	ck_assert_mem_eq(d.data, "<v1/>", 5);

	/* Waiting for a write while holding a snapshot is refused, not deadlocked. */
	tw_init(&t, "doc", "<no/>", 5);
	ck_assert_err(store_write_run(st, &t.w), XDMS_ERR_BUSY);
	ck_assert_int_eq(t.apply_calls, 0);

	ck_assert_int_eq(pthread_create(&th, NULL, writer_thread, &wa), 0);
	pthread_join(th, NULL);
	ck_assert_err(wa.err, XDMS_ERR_OK);
	/* The open snapshot still sees v1, through its borrowed pointers too. */
	ck_assert_mem_eq(d.data, "<v1/>", 5);
	ck_assert_err(store_doc_get(rd, "doc", &d2), XDMS_ERR_OK);
	ck_assert_mem_eq(d2.data, "<v1/>", 5);
	/* A nested begin on the same thread shares the snapshot. */
	ck_assert_err(store_read_begin(st, &rd2), XDMS_ERR_OK);
	ck_assert_ptr_eq(rd2, rd);
	store_read_end(rd2);
	ck_assert_err(store_doc_get(rd, "doc", &d2), XDMS_ERR_OK);
	store_read_end(rd);

	ck_assert_err(store_read_begin(st, &rd), XDMS_ERR_OK);
	ck_assert_err(store_doc_get(rd, "doc", &d), XDMS_ERR_OK);
	ck_assert_mem_eq(d.data, "<v2/>", 5);
	store_read_end(rd);
	store_read_end(NULL);
	store_close(st);
}
END_TEST

START_TEST(test_reopen_keeps_everything)
{
	struct store *st = open_default();
	struct store_user u, got;
	struct store_stats s;
	struct feed f;
	char e1[STORE_ETAG_MAX], e2[STORE_ETAG_MAX], e3[STORE_ETAG_MAX];

	ck_assert_err(put_doc(st, "a", "<a/>", 4, e1), XDMS_ERR_OK);
	ck_assert_err(put_doc(st, "b", "<b/>", 4, NULL), XDMS_ERR_OK);
	ck_assert_err(del_doc(st, "b"), XDMS_ERR_OK);
	user_fill(&u, "sip:alice@example.com", "alice", "example.com", NULL, 4);
	ck_assert_err(store_user_put(st, &u, true), XDMS_ERR_OK);
	store_close(st);
	store_close(NULL);

	st = open_default();
	expect_doc(st, "a", "<a/>", 4, e2);
	ck_assert_str_eq(e1, e2);
	expect_no_doc(st, "b");
	ck_assert_err(user_find(st, "example.com", "alice", &got), XDMS_ERR_OK);
	user_expect_eq(&got, &u);
	feed_read(st, 0, &f);
	ck_assert_uint_eq(f.n, 3);
	ck_assert_str_eq(f.recs[0].next, e1);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_eq(s.last_seq, 3);
	ck_assert_uint_eq(s.doc_count, 1);
	ck_assert_uint_eq(s.user_count, 1);
	ck_assert_uint_eq(s.batches, 0); /* process counters restart */
	ck_assert_err(put_doc(st, "a", "<a2/>", 5, e3), XDMS_ERR_OK);
	ck_assert_uint_gt(etag_counter(e3), etag_counter(e1));
	feed_read(st, 4, &f);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_str_eq(f.recs[0].prev, e1);
	store_close(st);
}
END_TEST

static void *close_thread(void *arg)
{
	store_close(arg);
	return NULL;
}

START_TEST(test_close_drains_queue)
{
	struct store *st = open_default();
	struct done_count dc;
	struct gate g;
	struct tw gt, t[5];
	char sels[5][16];
	pthread_t th;
	bool is_closing = false;

	done_count_init(&dc);
	gate_init(&g);
	tw_init(&gt, "gate", "<g/>", 4);
	gt.gate = &g;
	gt.dc = &dc;
	ck_assert_err(store_write_submit(st, &gt.w), XDMS_ERR_OK);
	gate_wait_entered(&g);
	for (int i = 0; i < 5; i++) {
		snprintf(sels[i], sizeof(sels[i]), "q%d", i);
		tw_init(&t[i], sels[i], "<q/>", 4);
		t[i].dc = &dc;
	}
	t[4].submit_in_done = st;
	for (int i = 0; i < 5; i++)
		ck_assert_err(store_write_submit(st, &t[i].w), XDMS_ERR_OK);
	ck_assert_int_eq(pthread_create(&th, NULL, close_thread, st), 0);
	while (!is_closing) {
		pthread_mutex_lock(&st->q_lock);
		is_closing = st->is_closing;
		pthread_mutex_unlock(&st->q_lock);
		if (!is_closing)
			usleep(1000);
	}
	gate_open(&g);
	pthread_join(th, NULL);
	ck_assert_uint_eq(dc.n, 6);
	ck_assert_err(gt.w.result, XDMS_ERR_OK);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(t[i].done_calls, 1);
		ck_assert_err(t[i].w.result, XDMS_ERR_OK);
	}
	ck_assert_err(t[4].submit_in_done_err, XDMS_ERR_BUSY);

	st = open_default();
	for (int i = 0; i < 5; i++)
		expect_doc(st, sels[i], "<q/>", 4, NULL);
	expect_no_doc(st, "late");
	store_close(st);
	gate_cleanup(&g);
	done_count_cleanup(&dc);
}
END_TEST

START_TEST(test_open_errors)
{
	struct store_options opt = { .path = db_path, .map_size = 8 * MIB, .map_size_max = 4 * MIB };
	struct store *st = (struct store *)1;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char two[4] = { 0, 0, 0, 2 };
	MDB_val k = { strlen("schema_version"), (void *)"schema_version" }, v = { 4, two };

	ck_assert_err(store_open(&opt, &st), XDMS_ERR_INVAL);
	ck_assert_ptr_null(st);
	opt.path = NULL;
	ck_assert_err(store_open(&opt, &st), XDMS_ERR_INVAL);
	ck_assert_err(store_open(NULL, &st), XDMS_ERR_INVAL);
	opt.path = "/proc/xdms-cannot-create";
	opt.map_size_max = 0;
	ck_assert_err(store_open(&opt, &st), XDMS_ERR_IO);

	/* A schema this code does not know: CORRUPT, not silently reused. */
	st = open_default();
	store_close(st);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, db_path, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	opt.path = db_path;
	opt.map_size = 0;
	ck_assert_err(store_open(&opt, &st), XDMS_ERR_CORRUPT);
}
END_TEST

/* ---- another process grows the map ---------------------------------------------------------------- */

static const char *self_path; /* argv[0], to run this binary as the other process */

/*
 * The other process: opens the environment with a small map and writes
 * 4 MiB, so that its map grows well past the parent's. It runs as a fresh
 * exec of this binary (like xdmsctl would), not as a bare fork of a process
 * that has a store open.
 */
static int child_fill(const char *path)
{
	struct store_options opt = { .path = path, .map_size = 1 * MIB, .map_size_max = 64 * MIB };
	struct store *st = NULL;
	char *data = malloc(100 * KIB);
	enum xdms_err err;
	int status = 0;

	if (!data)
		return 1;
	err = store_open(&opt, &st);
	if (err) {
		fprintf(stderr, "child: store_open: %s\n", xdms_err_name(err));
		free(data);
		return 1;
	}
	memset(data, 'c', 100 * KIB);
	for (int i = 0; i < 40 && !status; i++) {
		char sel[32];
		struct tw t;

		snprintf(sel, sizeof(sel), "child%02d", i);
		tw_init(&t, sel, data, 100 * KIB);
		t.w.done = NULL;
		err = store_write_run(st, &t.w);
		if (err) {
			fprintf(stderr, "child: write %d: %s\n", i, xdms_err_name(err));
			status = 2;
		}
	}
	store_close(st);
	free(data);
	return status;
}

static void run_child_fill(void)
{
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execlp(self_path, self_path, "--child-fill", db_path, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: status %d", status);
}

START_TEST(test_map_resized_by_other_process)
{
	struct store *st = open_store(1 * MIB, 64 * MIB, false);
	char *data = malloc(100 * KIB);
	struct store_stats s;

	ck_assert_ptr_nonnull(data);
	memset(data, 'c', 100 * KIB);
	ck_assert_err(put_doc(st, "parent0", "<p/>", 4, NULL), XDMS_ERR_OK);
	run_child_fill();

	/* The first read meets MDB_MAP_RESIZED and adopts the child's map size. */
	expect_doc(st, "child39", data, 100 * KIB, NULL);
	expect_doc(st, "parent0", "<p/>", 4, NULL);
	ck_assert_err(put_doc(st, "parent1", "<p1/>", 5, NULL), XDMS_ERR_OK);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_ge(s.map_size, 4 * MIB);
	ck_assert_uint_eq(s.doc_count, 42);
	ck_assert_uint_eq(s.last_seq, 42);
	store_close(st);
	free(data);
}
END_TEST

START_TEST(test_map_resized_then_write)
{
	struct store *st = open_store(1 * MIB, 64 * MIB, false);
	struct store_stats s;

	ck_assert_err(put_doc(st, "parent0", "<p/>", 4, NULL), XDMS_ERR_OK);
	run_child_fill();
	/* The writer meets MDB_MAP_RESIZED when it begins its transaction. */
	ck_assert_err(put_doc(st, "parent1", "<p1/>", 5, NULL), XDMS_ERR_OK);
	ck_assert_err(store_stats_get(st, &s), XDMS_ERR_OK);
	ck_assert_uint_ge(s.map_size, 4 * MIB);
	ck_assert_uint_eq(s.last_seq, 42);
	store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("docs");
	TCase *tc_conc = tcase_create("concurrency");
	TCase *tc_map = tcase_create("map");
	TCase *tc_users = tcase_create("users");
	TCase *tc_life = tcase_create("lifecycle");
	TCase *tc_proc = tcase_create("multiprocess");
	TCase *all[] = { tc, tc_conc, tc_map, tc_users, tc_life, tc_proc };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i], tmp_setup, tmp_teardown);
		tcase_set_timeout(all[i], 120);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(tc, test_put_get_exact);
	tcase_add_test(tc, test_etag_changes_and_never_repeats);
	tcase_add_test(tc, test_created_replaced_prev_etag);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_change_feed_chain);
	tcase_add_test(tc, test_hook_in_txn);
	tcase_add_test(tc, test_selector_too_long);
	tcase_add_test(tc, test_doc_list_prefix);
	tcase_add_test(tc, test_doc_list_after_pages);
	tcase_add_test(tc, test_record_writes_and_subs);
	tcase_add_test(tc, test_watch_round_trip);
	tcase_add_test(tc, test_changes_last);
	tcase_add_test(tc, test_feed_pruned_by_age_and_floor);
	tcase_add_test(tc_conc, test_apply_error_isolated_in_batch);
	tcase_add_test(tc_conc, test_group_commit_concurrency);
	tcase_add_test(tc_conc, test_commit_ack_shares_the_flush);
	tcase_add_test(tc_conc, test_snapshot_isolation);
	tcase_add_test(tc_conc, test_callbacks_reenter);
	tcase_add_test(tc_map, test_map_growth);
	tcase_add_test(tc_map, test_map_exhausted);
	tcase_add_test(tc_map, test_full_map_outcomes_match_store);
	tcase_add_test(tc_users, test_users);
	tcase_add_test(tc_users, test_users_grow_map);
	tcase_add_test(tc_users, test_users_of_two_domains);
	tcase_add_test(tc_users, test_own_realm_wins_over_an_alias);
	tcase_add_test(tc_users, test_job_prune_keeps_unfinished_jobs_and_requests);
	tcase_add_test(tc_users, test_job_claim_follows_due_times);
	tcase_add_test(tc_life, test_reopen_keeps_everything);
	tcase_add_test(tc_life, test_close_drains_queue);
	tcase_add_test(tc_life, test_open_errors);
	tcase_add_test(tc_proc, test_map_resized_by_other_process);
	tcase_add_test(tc_proc, test_map_resized_then_write);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && strcmp(argv[1], "--child-fill") == 0)
		return child_fill(argv[2]);
	self_path = argv[0];
	sr = srunner_create(store_suite());

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
