/* SPDX-License-Identifier: MIT */
/*
 * store/move.c: what the store does for a user moving to another shard.
 *
 * A frozen user has an entry in the store-wide index "user-move" (index.c),
 * keyed by its XUI. The writer checks it (store_move_guard) in the nested
 * transaction of every document write under AUID/users/XUI/, so a freeze
 * that has committed is seen by every later write, in this process and in
 * any other that opens the environment (xdmsctl freezes while xdmsd runs):
 * LMDB serializes the freeze's transaction with the writer's.
 *
 * The secrets walk is for the export: it reads the "secrets" database
 * (owner NUL name -> sealed bytes, jobs.c) in a snapshot, never unsealing.
 */
#include "config.h"

#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

#define MOVE_INDEX "user-move"

/* Copies the XUI of selector @sel (AUID/users/XUI/...) into @xui; false when
 * @sel is not a user's document. */
static bool selector_xui(const char *sel, char xui[STORE_XUI_MAX])
{
	const char *s = strchr(sel, '/'), *e;

	if (!s || strncmp(s, "/users/", 7) != 0)
		return false;
	s += 7;
	e = strchr(s, '/');
	if (!e || e == s || (size_t)(e - s) >= STORE_XUI_MAX)
		return false;
	memcpy(xui, s, (size_t)(e - s));
	xui[e - s] = '\0';
	return true;
}

enum xdms_err store_move_guard(struct store *st, MDB_txn *txn, const char *sel)
{
	struct store_txn t = { st, txn };
	char xui[STORE_XUI_MAX], owner[16];
	enum xdms_err err;

	if (!selector_xui(sel, xui))
		return XDMS_ERR_OK;
	err = store_index_get(&t, MOVE_INDEX, xui, owner, sizeof(owner));
	if (err == XDMS_ERR_NOTFOUND)
		return XDMS_ERR_OK;
	return err ? err : XDMS_ERR_BUSY;
}

struct freeze_op {
	const char *xui;
	bool is_frozen;
};

static enum xdms_err freeze_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct freeze_op *op = arg;
	struct store_txn t = { st, txn };
	enum xdms_err err;

	if (op->is_frozen)
		return store_index_put(&t, MOVE_INDEX, op->xui, "moving");
	err = store_index_del(&t, MOVE_INDEX, op->xui);
	return err == XDMS_ERR_NOTFOUND ? XDMS_ERR_OK : err;
}

enum xdms_err store_user_freeze(struct store *st, const char *xui, bool is_frozen)
{
	struct freeze_op op = { xui, is_frozen };

	if (!xui || !xui[0] || strlen(xui) >= STORE_XUI_MAX || strchr(xui, '/'))
		return XDMS_ERR_INVAL;
	return store_txn_run(st, freeze_txn, &op);
}

enum xdms_err store_user_frozen(struct store_read *rd, const char *xui)
{
	struct store *st = rd ? atomic_load(&rd->st) : NULL;
	struct store_txn t;
	char owner[16];

	if (!st || !rd->txn)
		return XDMS_ERR_STORE;
	if (!xui || !xui[0] || strlen(xui) >= STORE_XUI_MAX)
		return XDMS_ERR_INVAL;
	t.st = st;
	t.txn = rd->txn;
	return store_index_get(&t, MOVE_INDEX, xui, owner, sizeof(owner));
}

enum xdms_err store_secret_list(struct store_read *rd, const char *owner, store_secret_visit_fn visit, void *arg)
{
	struct store *st = rd ? atomic_load(&rd->st) : NULL;
	char kb[STORE_SELECTOR_MAX + 1], name[STORE_SELECTOR_MAX + 1];
	size_t olen = owner ? strlen(owner) : 0;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	enum xdms_err err = XDMS_ERR_OK;
	int rc;

	if (!st || !rd->txn)
		return XDMS_ERR_STORE;
	if (!olen || olen + 1 > st->max_key)
		return XDMS_ERR_INVAL;
	memcpy(kb, owner, olen);
	kb[olen] = '\0';
	k.mv_data = kb;
	k.mv_size = olen + 1;
	rc = mdb_cursor_open(rd->txn, st->dbi_secrets, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t nlen;

		if (k.mv_size <= olen + 1 || memcmp(k.mv_data, kb, olen + 1) != 0)
			break;
		nlen = k.mv_size - olen - 1;
		if (nlen >= sizeof(name)) {
			err = XDMS_ERR_CORRUPT;
			break;
		}
		memcpy(name, (const char *)k.mv_data + olen + 1, nlen);
		name[nlen] = '\0';
		if (visit(arg, name, v.mv_data, v.mv_size))
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
	mdb_cursor_close(cur);
	return err;
}
