/* SPDX-License-Identifier: MIT */
/*
 * Backups and restores. A backup is LMDB's own compacting copy of the
 * environment, taken in one read snapshot while writers go on: it holds
 * exactly the writes committed before it started. A restore (by xdmsctl) puts
 * such a copy in a new data directory and calls store_instance_renew(): the
 * restored store then makes ETags under a new instance id, so a client that
 * holds an ETag from after the backup can never be told "not modified" about
 * different bytes.
 *
 * Threads: the caller's. The copy takes map_lock shared like any reader, so
 * this process cannot resize the map under it; a resize by another process is
 * adopted and the copy retried.
 */
#include "config.h"

#include <errno.h>

#include "store/store_int.h"

enum xdms_err store_backup(struct store *st, int fd)
{
	int rc;

	if (!st || fd < 0)
		return XDMS_ERR_INVAL;
	for (unsigned tries = 0;; tries++) {
		store_map_enter(st);
		rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
		store_map_leave(st);
		if (rc != MDB_MAP_RESIZED || tries >= STORE_ADOPT_TRIES)
			break;
		/* Nothing was written yet: the snapshot could not even begin. */
		if (store_map_adopt(st))
			return XDMS_ERR_STORE;
	}
	/* LMDB returns errno values from write(2) as they are. */
	if (rc == EIO || rc == ENOSPC || rc == EBADF || rc == EFBIG || rc == EDQUOT)
		return XDMS_ERR_IO;
	return store_err_from_mdb(rc);
}

enum xdms_err store_instance_renew(struct store *st)
{
	MDB_txn *txn = NULL;
	uint32_t id;
	int rc;

	if (!st)
		return XDMS_ERR_INVAL;
	do
		id = store_random_u32();
	while (id == st->instance_id);
	store_map_enter(st);
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (!rc)
		rc = store_wal_txn_begun(st, txn);
	if (!rc)
		rc = store_meta_put(st, txn, STORE_META_INSTANCE, 4, id);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (!rc)
		rc = mdb_env_sync(st->env, 1);
	if (!rc)
		rc = store_wal_txn_done(st);
	if (txn)
		mdb_txn_abort(txn);
	store_map_leave(st);
	if (!rc)
		st->instance_id = id;
	return store_err_from_mdb(rc);
}

uint32_t store_instance_id(const struct store *st)
{
	return st->instance_id;
}
