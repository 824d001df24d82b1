/* SPDX-License-Identifier: MIT */
/*
 * The change feed: one record per successful document write, keyed by its
 * 64-bit sequence in big-endian so that LMDB's byte order is numeric order.
 * Records are appended by the writer thread in the same nested transaction
 * as the document they describe, so the feed and the documents can never
 * disagree; readers (the notifier) walk it from any thread in a snapshot.
 *
 * Value encoding (strings keep their NUL so readers get C strings that point
 * straight into the map):
 *
 *   0  u8   format (1)
 *   1  u8   flags: 1 = a detail was given (it may still be empty); 2 = the write
 *            moved the document between shards (store_write.is_move)
 *   2  u8   previous ETag length
 *   3  u8   new ETag length
 *   4  u16  selector length, big-endian
 *   6  u32  detail length, big-endian
 *   10 u64  time in Unix milliseconds, big-endian
 *   18 selector NUL, previous ETag NUL, new ETag NUL, detail bytes
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"
#include "store/store_int.h"

#define CHANGE_FORMAT 1u
#define CHANGE_HDR_LEN 18u
#define CHANGE_HAS_DETAIL 1u
#define CHANGE_IS_MOVE 2u

int store_change_append(struct store *st, MDB_txn *txn, const struct store_change *c)
{
	size_t sel_len = strlen(c->selector);
	size_t prev_len = strlen(c->prev_etag);
	size_t new_len = strlen(c->new_etag);
	size_t detail_len = c->detail ? c->detail_len : 0;
	size_t fixed_len = CHANGE_HDR_LEN + sel_len + 1 + prev_len + 1 + new_len + 1;
	unsigned char kbuf[8];
	MDB_val k = { sizeof(kbuf), kbuf };
	MDB_val v;
	unsigned char *p;
	int rc;

	if (sel_len > UINT16_MAX || prev_len > UINT8_MAX || new_len > UINT8_MAX ||
	    detail_len > UINT32_MAX - fixed_len)
		return MDB_BAD_VALSIZE;
	store_put_be(kbuf, c->seq, 8);
	v.mv_size = fixed_len + detail_len;
	v.mv_data = NULL;
	/* Sequences only grow, so MDB_APPEND fills pages without splitting them. */
	rc = store_kv_put(st, txn, st->dbi_changes, &k, &v, MDB_RESERVE | MDB_APPEND);
	if (rc)
		return rc;
	p = v.mv_data;
	p[0] = CHANGE_FORMAT;
	p[1] = (unsigned char)((c->detail ? CHANGE_HAS_DETAIL : 0) | (c->is_move ? CHANGE_IS_MOVE : 0));
	p[2] = (unsigned char)prev_len;
	p[3] = (unsigned char)new_len;
	store_put_be(p + 4, sel_len, 2);
	store_put_be(p + 6, detail_len, 4);
	store_put_be(p + 10, c->time_ms, 8);
	p += CHANGE_HDR_LEN;
	memcpy(p, c->selector, sel_len + 1);
	p += sel_len + 1;
	memcpy(p, c->prev_etag, prev_len + 1);
	p += prev_len + 1;
	memcpy(p, c->new_etag, new_len + 1);
	p += new_len + 1;
	if (detail_len)
		memcpy(p, c->detail, detail_len);
	store_kv_reserved(st, st->dbi_changes, &k, &v);
	return MDB_SUCCESS;
}

static enum xdms_err change_decode(const MDB_val *k, const MDB_val *v, struct store_change *out)
{
	const unsigned char *p = v->mv_data;
	size_t sel_len, prev_len, new_len, detail_len, off;

	if (k->mv_size != 8 || v->mv_size < CHANGE_HDR_LEN || p[0] != CHANGE_FORMAT)
		return XDMS_ERR_CORRUPT;
	prev_len = p[2];
	new_len = p[3];
	sel_len = (size_t)store_get_be(p + 4, 2);
	detail_len = (size_t)store_get_be(p + 6, 4);
	if (v->mv_size != CHANGE_HDR_LEN + sel_len + 1 + prev_len + 1 + new_len + 1 + detail_len)
		return XDMS_ERR_CORRUPT;
	off = CHANGE_HDR_LEN;
	out->seq = store_get_be(k->mv_data, 8);
	out->time_ms = store_get_be(p + 10, 8);
	out->selector = (const char *)p + off;
	off += sel_len;
	if (p[off] != '\0')
		return XDMS_ERR_CORRUPT;
	out->prev_etag = (const char *)p + off + 1;
	off += 1 + prev_len;
	if (p[off] != '\0')
		return XDMS_ERR_CORRUPT;
	out->new_etag = (const char *)p + off + 1;
	off += 1 + new_len;
	if (p[off] != '\0')
		return XDMS_ERR_CORRUPT;
	off += 1;
	out->detail = (p[1] & CHANGE_HAS_DETAIL) ? (const char *)p + off : NULL;
	out->detail_len = detail_len;
	out->is_move = (p[1] & CHANGE_IS_MOVE) != 0;
	return XDMS_ERR_OK;
}

struct change_walk {
	store_change_visit_fn visit;
	void *arg;
};

static int change_walk_one(void *arg, const MDB_val *k, const MDB_val *v, enum xdms_err *err)
{
	struct change_walk *w = arg;
	struct store_change c;

	*err = change_decode(k, v, &c);
	if (*err)
		return -1;
	return w->visit(w->arg, &c) ? 1 : 0;
}

enum xdms_err store_changes_scan(struct store_read *rd, uint64_t from_seq, store_change_visit_fn visit,
				 void *arg)
{
	unsigned char kbuf[8];
	MDB_val from = { sizeof(kbuf), kbuf };
	struct change_walk w = { visit, arg };

	if (!rd || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	store_put_be(kbuf, from_seq, 8);
	return store_walk(rd, atomic_load_explicit(&rd->st, memory_order_relaxed)->dbi_changes, &from,
			  change_walk_one, &w);
}

static enum xdms_err changes_edge(struct store_read *rd, MDB_cursor_op op, uint64_t *seq)
{
	MDB_cursor *cur = NULL;
	struct store *st;
	MDB_val k, v;
	int rc;

	if (!rd || !seq || !rd->txn)
		return XDMS_ERR_INVAL;
	*seq = 0;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	rc = mdb_cursor_open(rd->txn, st->dbi_changes, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &v, op);
	if (!rc && k.mv_size == 8)
		*seq = store_get_be(k.mv_data, 8);
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? store_err_from_mdb(rc) : XDMS_ERR_OK;
}

enum xdms_err store_changes_first(struct store_read *rd, uint64_t *seq)
{
	return changes_edge(rd, MDB_FIRST, seq);
}

int store_changes_prune(struct store *st, MDB_txn *txn, uint64_t floor, uint64_t before_ms, unsigned max)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, st->dbi_changes, &cur);
	if (rc)
		return rc;
	for (unsigned n = 0; n < max; n++) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc || k.mv_size != 8 || v.mv_size < CHANGE_HDR_LEN)
			break;
		if (store_get_be(k.mv_data, 8) >= floor ||
		    store_get_be((const unsigned char *)v.mv_data + 10, 8) >= before_ms)
			break;
		rc = store_kv_cursor_del(st, cur, st->dbi_changes);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

enum xdms_err store_changes_last(struct store_read *rd, uint64_t *seq)
{
	return changes_edge(rd, MDB_LAST, seq);
}
