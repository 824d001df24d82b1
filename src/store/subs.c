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
	return store_err_from_mdb(store_kv_put(txn->st, txn->txn, txn->st->dbi_subs, &k, &v, 0));
}

enum xdms_err store_sub_del(struct store_txn *txn, uint64_t id)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb };

	if (!txn)
		return XDMS_ERR_INVAL;
	store_put_be(kb, id, 8);
	return store_err_from_mdb(store_kv_del(txn->st, txn->txn, txn->st->dbi_subs, &k));
}

struct sub_walk {
	store_sub_visit_fn visit;
	void *arg;
};

static int sub_walk_one(void *arg, const MDB_val *k, const MDB_val *v, enum xdms_err *err)
{
	struct sub_walk *w = arg;

	if (k->mv_size != 8) {
		*err = XDMS_ERR_CORRUPT;
		return -1;
	}
	return w->visit(w->arg, store_get_be(k->mv_data, 8), v->mv_data, v->mv_size) ? 1 : 0;
}

enum xdms_err store_sub_list(struct store_read *rd, store_sub_visit_fn visit, void *arg)
{
	struct sub_walk w = { visit, arg };

	if (!rd || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	return store_walk(rd, atomic_load_explicit(&rd->st, memory_order_relaxed)->dbi_subs, NULL,
			  sub_walk_one, &w);
}
