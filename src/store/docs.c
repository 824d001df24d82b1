/* SPDX-License-Identifier: MIT */
/*
 * The docs database: document selector -> { ETag, mtime, bytes }.
 *
 * Encoding. The key is the selector's bytes without a NUL, so LMDB's byte
 * order is the selector's byte order and a prefix is a key range. The value
 * is a fixed header, the ETag with its NUL, then the document bytes exactly
 * as written:
 *
 *   0  u8   format (1)
 *   1  u8   ETag length, without the NUL
 *   2  u64  mtime in Unix milliseconds, big-endian
 *   10 ETag bytes, NUL
 *   .. document bytes
 *
 * Keeping the NUL in the value lets store_doc_get() hand out pointers
 * straight into the LMDB map (no copy) that are valid C strings; they live
 * as long as the read snapshot. Integers are encoded byte by byte
 * (store_put_be/store_get_be) because LMDB does not align values.
 *
 * Threads: the readers run on any thread inside their own snapshot; the
 * write helpers run on the writer thread inside its nested transaction.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"
#include "store/store_int.h"

#define DOC_FORMAT 1u
#define DOC_HDR_LEN 10u

enum xdms_err store_doc_decode(const MDB_val *v, struct store_doc *out)
{
	const unsigned char *p = v->mv_data;
	size_t etag_len;

	if (v->mv_size < DOC_HDR_LEN + 1 || p[0] != DOC_FORMAT)
		return XDMS_ERR_CORRUPT;
	etag_len = p[1];
	if (v->mv_size < DOC_HDR_LEN + etag_len + 1 || p[DOC_HDR_LEN + etag_len] != '\0')
		return XDMS_ERR_CORRUPT;
	out->mtime_ms = store_get_be(p + 2, 8);
	out->etag = (const char *)p + DOC_HDR_LEN;
	out->data = (const char *)p + DOC_HDR_LEN + etag_len + 1;
	out->data_len = v->mv_size - (DOC_HDR_LEN + etag_len + 1);
	return XDMS_ERR_OK;
}

enum xdms_err store_doc_txn_get(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len,
				struct store_doc *out)
{
	MDB_val k = { sel_len, (void *)sel };
	MDB_val v;
	int rc;

	/* No stored key is empty or longer than LMDB allows, and LMDB rejects such keys. */
	if (sel_len == 0 || sel_len > st->max_key)
		return XDMS_ERR_NOTFOUND;
	rc = mdb_get(txn, st->dbi_docs, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	return store_doc_decode(&v, out);
}

int store_doc_txn_put(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len,
		      const char *etag, uint64_t mtime_ms, const char *data, size_t data_len)
{
	size_t etag_len = strlen(etag);
	size_t hdr_len = DOC_HDR_LEN + etag_len + 1;
	MDB_val k = { sel_len, (void *)sel };
	MDB_val v;
	unsigned char *p;
	int rc;

	/* LMDB stores value sizes in 32 bits. */
	if (etag_len > UINT8_MAX || data_len > UINT32_MAX - hdr_len)
		return MDB_BAD_VALSIZE;
	v.mv_size = hdr_len + data_len;
	v.mv_data = NULL;
	/* MDB_RESERVE: encode straight into the page, no intermediate copy. */
	rc = store_kv_put(st, txn, st->dbi_docs, &k, &v, MDB_RESERVE);
	if (rc)
		return rc;
	p = v.mv_data;
	p[0] = DOC_FORMAT;
	p[1] = (unsigned char)etag_len;
	store_put_be(p + 2, mtime_ms, 8);
	memcpy(p + DOC_HDR_LEN, etag, etag_len + 1);
	if (data_len)
		memcpy(p + hdr_len, data, data_len);
	store_kv_reserved(st, st->dbi_docs, &k, &v);
	return MDB_SUCCESS;
}

int store_doc_txn_del(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len)
{
	MDB_val k = { sel_len, (void *)sel };

	return store_kv_del(st, txn, st->dbi_docs, &k);
}

enum xdms_err store_doc_get(struct store_read *rd, const char *selector, struct store_doc *out)
{
	struct store *st;

	if (!rd || !selector || !out || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	return store_doc_txn_get(st, rd->txn, selector, strlen(selector), out);
}

enum xdms_err store_doc_list(struct store_read *rd, const char *prefix, store_doc_visit_fn visit,
			     void *arg)
{
	return store_doc_list_after(rd, prefix, NULL, visit, arg);
}

enum xdms_err store_doc_list_after(struct store_read *rd, const char *prefix, const char *after,
				   store_doc_visit_fn visit, void *arg)
{
	char sel[STORE_SELECTOR_MAX + 1];
	struct store_doc doc;
	MDB_cursor *cur = NULL;
	enum xdms_err err = XDMS_ERR_OK;
	struct store *st;
	size_t prefix_len;
	MDB_val k, v;
	int rc;

	if (!rd || !prefix || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	prefix_len = strlen(prefix);
	if (prefix_len > st->max_key)
		return XDMS_ERR_OK; /* no key can be that long */
	rc = mdb_cursor_open(rd->txn, st->dbi_docs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	k.mv_size = prefix_len;
	k.mv_data = (void *)prefix;
	if (after && *after && strncmp(after, prefix, prefix_len) == 0) {
		k.mv_size = strlen(after);
		k.mv_data = (void *)after;
	}
	/* MDB_SET_RANGE positions at the first key >= prefix; "" means from the start. */
	rc = mdb_cursor_get(cur, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
	if (!rc && after && *after && k.mv_size == strlen(after) && memcmp(k.mv_data, after, k.mv_size) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	while (!rc) {
		if (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0)
			break;
		if (k.mv_size > STORE_SELECTOR_MAX) {
			err = XDMS_ERR_CORRUPT;
			goto out;
		}
		err = store_doc_decode(&v, &doc);
		if (err)
			goto out;
		memcpy(sel, k.mv_data, k.mv_size);
		sel[k.mv_size] = '\0';
		if (visit(arg, sel, &doc))
			goto out;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
out:
	mdb_cursor_close(cur);
	return err;
}
