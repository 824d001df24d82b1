/* SPDX-License-Identifier: MIT */
/*
 * Store-wide unique indexes (store.h): one LMDB database, "index", keyed by
 * index name, a NUL, and the key; the value is the owning document's
 * selector. Used only inside write transactions, by commit hooks, so every
 * change to an index commits or rolls back with the document that caused it.
 */
#include "config.h"

#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

static size_t index_key(const struct store *st, char *buf, const char *index, const char *key)
{
	size_t il = strlen(index), kl = strlen(key);

	if (il + 1 + kl > st->max_key)
		return 0;
	memcpy(buf, index, il);
	buf[il] = '\0';
	memcpy(buf + il + 1, key, kl);
	return il + 1 + kl;
}

enum xdms_err store_index_get(struct store_txn *txn, const char *index, const char *key, char *owner,
			      size_t owner_len)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k, v;
	int rc;

	k.mv_size = index_key(txn->st, kb, index, key);
	k.mv_data = kb;
	if (!k.mv_size)
		return XDMS_ERR_TOOBIG;
	rc = mdb_get(txn->txn, txn->st->dbi_index, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size >= owner_len)
		return XDMS_ERR_TOOBIG;
	memcpy(owner, v.mv_data, v.mv_size);
	owner[v.mv_size] = '\0';
	return XDMS_ERR_OK;
}

enum xdms_err store_index_put(struct store_txn *txn, const char *index, const char *key, const char *owner)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k, v;

	k.mv_size = index_key(txn->st, kb, index, key);
	k.mv_data = kb;
	if (!k.mv_size)
		return XDMS_ERR_TOOBIG;
	v.mv_size = strlen(owner);
	v.mv_data = (void *)owner;
	return store_err_from_mdb(store_kv_put(txn->st, txn->txn, txn->st->dbi_index, &k, &v, 0));
}

enum xdms_err store_index_del(struct store_txn *txn, const char *index, const char *key)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k;

	k.mv_size = index_key(txn->st, kb, index, key);
	k.mv_data = kb;
	if (!k.mv_size)
		return XDMS_ERR_TOOBIG;
	return store_err_from_mdb(store_kv_del(txn->st, txn->txn, txn->st->dbi_index, &k));
}
