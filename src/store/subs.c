/* SPDX-License-Identifier: MIT */
/*
 * The notifier's subscription records (store.h): one LMDB database, "subs",
 * keyed by the 64-bit id in big-endian order. Written inside record writes,
 * so a subscription is durable before its SUBSCRIBE is answered.
 */
#include "config.h"

#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

enum xdms_err store_sub_put(struct store_txn *txn, uint64_t id, const void *rec, size_t len)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v = { len, (void *)rec };

	if (!txn || (!rec && len))
		return XDMS_ERR_INVAL;
	store_put_be(kb, id, 8);
	return store_err_from_mdb(mdb_put(txn->txn, txn->st->dbi_subs, &k, &v, 0));
}

enum xdms_err store_sub_del(struct store_txn *txn, uint64_t id)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb };

	if (!txn)
		return XDMS_ERR_INVAL;
	store_put_be(kb, id, 8);
	return store_err_from_mdb(mdb_del(txn->txn, txn->st->dbi_subs, &k, NULL));
}

enum xdms_err store_sub_list(struct store_read *rd, store_sub_visit_fn visit, void *arg)
{
	MDB_cursor *cur = NULL;
	enum xdms_err err = XDMS_ERR_OK;
	struct store *st;
	MDB_val k, v;
	int rc;

	if (!rd || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	rc = mdb_cursor_open(rd->txn, st->dbi_subs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (!rc) {
		if (k.mv_size != 8) {
			err = XDMS_ERR_CORRUPT;
			break;
		}
		if (visit(arg, store_get_be(k.mv_data, 8), v.mv_data, v.mv_size))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
	mdb_cursor_close(cur);
	return err;
}
