/* SPDX-License-Identifier: MIT */
/*
 * The store's environment: opening and closing the LMDB environment, the
 * meta database (schema version, instance id, ETag counter, last change
 * sequence), read snapshots, map growth and statistics.
 *
 * Read snapshots. Each thread keeps one read-only MDB_txn per store and
 * recycles it with mdb_txn_reset()/mdb_txn_renew(), so a snapshot costs no
 * allocation and keeps its reader slot. The environment is opened with
 * MDB_NOTLS so that the slot belongs to that MDB_txn, not to LMDB's own
 * thread-local key: our cache decides when a slot is released, which lets
 * store_close() release the slots of threads that are still running, and a
 * thread-exit destructor release them when a thread ends. A nested
 * store_read_begin() on the same thread returns the snapshot already open
 * (reference counted) instead of taking a second reader slot and a second
 * shared hold of map_lock, which could deadlock behind a waiting resize.
 *
 * Map growth. mdb_env_set_mapsize() may only run while no transaction of the
 * process is active, so every transaction runs with map_lock held shared and
 * a resize takes it exclusively. The rwlock prefers writers so that a steady
 * stream of readers cannot starve a resize; that is also why a thread never
 * takes the shared lock twice.
 *
 * Threads: any thread may read; the writer thread (writer.c) and
 * store_user_put/del callers write; store_open/store_close run alone.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/clock.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/store_int.h"

#define STORE_MAP_SIZE_DEFAULT ((size_t)1 << 30)     /* 1 GiB */
#define STORE_MAP_SIZE_MAX_DEFAULT ((size_t)64 << 30) /* 64 GiB */
#define STORE_BATCH_MAX_DEFAULT 256u
#define STORE_MAXDBS 16 /* docs, changes, users, names, meta, and room for subs, jobs, indexes */
#define STORE_MAXREADERS 1024

/* ---- errors, time ---------------------------------------------------------- */

enum xdms_err store_err_from_mdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return XDMS_ERR_OK;
	case MDB_NOTFOUND:
		return XDMS_ERR_NOTFOUND;
	case MDB_MAP_FULL:
		return XDMS_ERR_FULL;
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_PAGE_NOTFOUND: /* lmdb.h: "usually indicates corruption" */
		return XDMS_ERR_CORRUPT;
	case MDB_KEYEXIST:
		return XDMS_ERR_EXISTS;
	case MDB_BAD_VALSIZE:
		return XDMS_ERR_TOOBIG;
	case ENOSPC:
	case EDQUOT:
		/* LMDB passes errno through: the disk (not the map) is full. */
		return XDMS_ERR_FULL;
	default:
		return XDMS_ERR_STORE;
	}
}

uint64_t store_now_ms(void)
{
	return wall_ms(); /* stored times (changes, jobs) outlive the process */
}

/* ---- the map ------------------------------------------------------------------ */

/* Refreshes st->map_size from LMDB, which may round a requested size up. */
static void map_size_refresh(struct store *st)
{
	MDB_envinfo info;

	if (mdb_env_info(st->env, &info) == MDB_SUCCESS)
		st->map_size = info.me_mapsize;
}

enum xdms_err store_map_grow(struct store *st, size_t seen)
{
	enum xdms_err err = XDMS_ERR_OK;
	size_t size;
	int rc;

	if (store_thread_holds_map(st))
		return XDMS_ERR_BUSY; /* waiting for ourselves would never end */
	(void)pthread_rwlock_wrlock(&st->map_lock);
	if (st->map_size > seen)
		goto out; /* another thread grew it while we waited */
	if (st->map_size >= st->map_size_max) {
		err = XDMS_ERR_FULL;
		goto out;
	}
	size = st->map_size > st->map_size_max / 2 ? st->map_size_max : st->map_size * 2;
	rc = mdb_env_set_mapsize(st->env, size);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	map_size_refresh(st);
	atomic_fetch_add_explicit(&st->n_map_grows, 1, memory_order_relaxed);
out:
	(void)pthread_rwlock_unlock(&st->map_lock);
	return err;
}

enum xdms_err store_map_adopt(struct store *st)
{
	int rc;

	if (store_thread_holds_map(st))
		return XDMS_ERR_BUSY;
	(void)pthread_rwlock_wrlock(&st->map_lock);
	/* Size 0 adopts the size recorded in the environment by the other process. */
	rc = mdb_env_set_mapsize(st->env, 0);
	if (!rc)
		map_size_refresh(st);
	(void)pthread_rwlock_unlock(&st->map_lock);
	return store_err_from_mdb(rc);
}

/* ---- meta ---------------------------------------------------------------------- */

int store_meta_get(struct store *st, MDB_txn *txn, const char *key, size_t len, uint64_t *out)
{
	MDB_val k = { strlen(key), (void *)key };
	MDB_val v;
	int rc;

	rc = mdb_get(txn, st->dbi_meta, &k, &v);
	if (rc)
		return rc;
	if (v.mv_size != len)
		return MDB_CORRUPTED;
	*out = store_get_be(v.mv_data, len);
	return MDB_SUCCESS;
}

int store_meta_put(struct store *st, MDB_txn *txn, const char *key, size_t len, uint64_t value)
{
	unsigned char buf[8];
	MDB_val k = { strlen(key), (void *)key };
	MDB_val v = { len, buf };

	store_put_be(buf, value, len);
	return store_kv_put(st, txn, st->dbi_meta, &k, &v, 0);
}

/* ---- read snapshots ------------------------------------------------------------- */

static pthread_once_t reads_once = PTHREAD_ONCE_INIT;
static pthread_key_t reads_key;
static bool reads_key_ok;
/* Guards every store's `reads` list and the `st` field of every snapshot. */
static pthread_mutex_t reads_lock = PTHREAD_MUTEX_INITIALIZER;
/* This thread's snapshots, one per store it has read from. */
static __thread struct store_read *reads_of_thread;

static void reads_unlink_store(struct store *st, struct store_read *rd)
{
	if (rd->store_prev)
		rd->store_prev->store_next = rd->store_next;
	else
		st->reads = rd->store_next;
	if (rd->store_next)
		rd->store_next->store_prev = rd->store_prev;
}

/* Thread-exit destructor: releases the reader slots of the ending thread. */
static void reads_thread_exit(void *value)
{
	struct store_read **head = value;
	struct store_read *rd, *next;

	pthread_mutex_lock(&reads_lock);
	for (rd = *head; rd; rd = next) {
		struct store *st = atomic_load_explicit(&rd->st, memory_order_relaxed);

		next = rd->thread_next;
		if (st) {
			/* A thread that ends inside a snapshot must not keep the map locked. */
			if (rd->lock_depth)
				(void)pthread_rwlock_unlock(&st->map_lock);
			if (rd->txn)
				mdb_txn_abort(rd->txn);
			reads_unlink_store(st, rd);
		}
		free(rd);
	}
	*head = NULL;
	pthread_mutex_unlock(&reads_lock);
}

static void reads_init(void)
{
	reads_key_ok = pthread_key_create(&reads_key, reads_thread_exit) == 0;
}

/* Frees this thread's snapshots of closed stores. Only the owner walks its list. */
static void reads_prune_thread(void)
{
	struct store_read **pp = &reads_of_thread;
	struct store_read *rd;

	while ((rd = *pp)) {
		if (!atomic_load_explicit(&rd->st, memory_order_acquire)) {
			*pp = rd->thread_next;
			free(rd);
			continue;
		}
		pp = &rd->thread_next;
	}
}

/* Finds (or creates) the calling thread's snapshot object for @st. */
static struct store_read *reads_slot(struct store *st)
{
	struct store_read *rd;

	for (rd = reads_of_thread; rd; rd = rd->thread_next)
		if (atomic_load_explicit(&rd->st, memory_order_acquire) == st)
			return rd;
	reads_prune_thread();
	(void)pthread_once(&reads_once, reads_init);
	rd = xcalloc(1, sizeof(*rd));
	atomic_init(&rd->st, st);
	pthread_mutex_lock(&reads_lock);
	rd->store_next = st->reads;
	if (st->reads)
		st->reads->store_prev = rd;
	st->reads = rd;
	pthread_mutex_unlock(&reads_lock);
	rd->thread_next = reads_of_thread;
	reads_of_thread = rd;
	/* Without the key a thread's slot lives until store_close(); still correct. */
	if (reads_key_ok)
		(void)pthread_setspecific(reads_key, &reads_of_thread);
	return rd;
}

/*
 * map_lock is taken once per thread however deep the nesting (a snapshot
 * opened inside a write callback, stats inside a snapshot): the rwlock
 * prefers writers, so a second shared hold could wait behind a resize that
 * waits for the first.
 */
void store_map_enter(struct store *st)
{
	struct store_read *rd = reads_slot(st);

	if (rd->lock_depth++ == 0)
		(void)pthread_rwlock_rdlock(&st->map_lock);
}

void store_map_leave(struct store *st)
{
	struct store_read *rd = reads_slot(st);

	if (--rd->lock_depth == 0)
		(void)pthread_rwlock_unlock(&st->map_lock);
}

bool store_thread_holds_map(struct store *st)
{
	struct store_read *rd;

	for (rd = reads_of_thread; rd; rd = rd->thread_next)
		if (atomic_load_explicit(&rd->st, memory_order_acquire) == st)
			return rd->lock_depth > 0;
	return false;
}

/* store_close(): releases every cached snapshot of @st, whichever thread owns it. */
static void reads_release_store(struct store *st)
{
	struct store_read *rd, *next;

	pthread_mutex_lock(&reads_lock);
	for (rd = st->reads; rd; rd = next) {
		next = rd->store_next;
		if (rd->txn)
			mdb_txn_abort(rd->txn); /* legal from any thread under MDB_NOTLS */
		rd->txn = NULL;
		/* Last touch: from here on the owner thread may free it. */
		atomic_store_explicit(&rd->st, NULL, memory_order_release);
	}
	st->reads = NULL;
	pthread_mutex_unlock(&reads_lock);
	reads_prune_thread();
}

enum xdms_err store_read_begin(struct store *st, struct store_read **out)
{
	struct store_read *rd;
	int rc;

	if (!out)
		return XDMS_ERR_INVAL;
	*out = NULL;
	if (!st)
		return XDMS_ERR_INVAL;
	rd = reads_slot(st);
	if (rd->depth > 0) {
		rd->depth++;
		*out = rd;
		return XDMS_ERR_OK;
	}
	for (unsigned tries = 0;; tries++) {
		store_map_enter(st);
		if (rd->txn) {
			rc = mdb_txn_renew(rd->txn);
			if (rc) {
				mdb_txn_abort(rd->txn);
				rd->txn = NULL;
			}
		} else {
			rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &rd->txn);
			if (rc)
				rd->txn = NULL;
		}
		if (!rc) {
			rd->depth = 1;
			*out = rd;
			return XDMS_ERR_OK;
		}
		store_map_leave(st);
		/* xdmsctl (another process) grew the map beyond ours: adopt its size. */
		if (rc != MDB_MAP_RESIZED || tries >= STORE_ADOPT_TRIES)
			return store_err_from_mdb(rc);
		if (store_map_adopt(st))
			return XDMS_ERR_STORE;
	}
}

void store_read_end(struct store_read *rd)
{
	struct store *st;

	if (!rd || rd->depth == 0)
		return;
	if (--rd->depth > 0)
		return;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	mdb_txn_reset(rd->txn);
	store_map_leave(st);
}

/* ---- open and close ---------------------------------------------------------------- */

uint32_t store_random_u32(void)
{
	uint32_t v;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), 0) == (ssize_t)sizeof(v))
		return v;
	/* The id only has to differ between environments, not be secret. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
}

static int dbs_open(struct store *st, MDB_txn *txn)
{
	int rc;

	rc = mdb_dbi_open(txn, "docs", MDB_CREATE, &st->dbi_docs);
	if (!rc)
		rc = mdb_dbi_open(txn, "changes", MDB_CREATE, &st->dbi_changes);
	if (!rc)
		rc = mdb_dbi_open(txn, "users", MDB_CREATE, &st->dbi_users);
	if (!rc)
		rc = mdb_dbi_open(txn, "names", MDB_CREATE, &st->dbi_names);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->dbi_meta);
	if (!rc)
		rc = mdb_dbi_open(txn, "index", MDB_CREATE, &st->dbi_index);
	if (!rc)
		rc = mdb_dbi_open(txn, "subs", MDB_CREATE, &st->dbi_subs);
	if (!rc)
		rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &st->dbi_jobs);
	if (!rc)
		rc = mdb_dbi_open(txn, "secrets", MDB_CREATE, &st->dbi_secrets);
	if (!rc)
		rc = mdb_dbi_open(txn, "watches", MDB_CREATE, &st->dbi_watches);
	return rc;
}

/* Creates the meta records of a new environment, or checks an existing one's. */
static enum xdms_err meta_init(struct store *st, MDB_txn *txn)
{
	uint64_t v;
	MDB_stat ms;
	int rc;

	rc = store_meta_get(st, txn, STORE_META_SCHEMA, 4, &v);
	if (rc == MDB_SUCCESS) {
		if (v != STORE_SCHEMA_VERSION)
			return XDMS_ERR_CORRUPT;
		rc = store_meta_get(st, txn, STORE_META_INSTANCE, 4, &v);
		if (rc)
			return rc == MDB_NOTFOUND ? XDMS_ERR_CORRUPT : store_err_from_mdb(rc);
		st->instance_id = (uint32_t)v;
		return XDMS_ERR_OK;
	}
	if (rc != MDB_NOTFOUND)
		return store_err_from_mdb(rc);
	/* No schema record: only an empty environment may be initialized. */
	rc = mdb_stat(txn, st->dbi_docs, &ms);
	if (!rc && ms.ms_entries == 0)
		rc = mdb_stat(txn, st->dbi_users, &ms);
	if (rc)
		return store_err_from_mdb(rc);
	if (ms.ms_entries != 0)
		return XDMS_ERR_CORRUPT;
	st->instance_id = store_random_u32();
	rc = store_meta_put(st, txn, STORE_META_SCHEMA, 4, STORE_SCHEMA_VERSION);
	if (!rc)
		rc = store_meta_put(st, txn, STORE_META_INSTANCE, 4, st->instance_id);
	if (!rc)
		rc = store_meta_put(st, txn, STORE_META_ETAG_COUNTER, 8, 0);
	if (!rc)
		rc = store_meta_put(st, txn, STORE_META_LAST_SEQ, 8, 0);
	return store_err_from_mdb(rc);
}

/* Opens the named databases and checks or creates meta, in one write txn. */
static enum xdms_err env_init(struct store *st)
{
	enum xdms_err err;
	MDB_txn *txn = NULL;
	int rc;

	for (unsigned tries = 0;; tries++) {
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc != MDB_MAP_RESIZED || tries >= STORE_ADOPT_TRIES)
			break;
		err = store_map_adopt(st);
		if (err)
			return err;
	}
	if (rc)
		return store_err_from_mdb(rc);
	rc = dbs_open(st, txn);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	err = meta_init(st, txn);
	if (err)
		goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (!rc && st->is_sync)
		rc = mdb_env_sync(st->env, 1);
	err = store_err_from_mdb(rc);
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

static size_t round_up(size_t v, size_t unit)
{
	return (v + unit - 1) / unit * unit;
}

/* Frees a store whose writer is not running. */
static void store_free(struct store *st)
{
	if (!st)
		return;
	store_wal_free(st);
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->map_lock);
	pthread_mutex_destroy(&st->q_lock);
	pthread_mutex_destroy(&st->ack_lock);
	pthread_cond_destroy(&st->q_cond);
	free(st);
}

enum xdms_err store_open(const struct store_options *opt, struct store **out)
{
	struct store *st = NULL;
	pthread_rwlockattr_t attr;
	size_t page, map_size, map_max;
	enum xdms_err err;
	long psz;
	int rc;

	if (!out)
		return XDMS_ERR_INVAL;
	*out = NULL;
	if (!opt || !opt->path || !opt->path[0] || opt->batch_max > STORE_BATCH_MAX_LIMIT ||
	    (opt->wal_size && opt->wal_size < STORE_WAL_SIZE_MIN))
		return XDMS_ERR_INVAL;
	psz = sysconf(_SC_PAGESIZE);
	page = psz > 0 ? (size_t)psz : 4096;
	map_max = opt->map_size_max ? opt->map_size_max : STORE_MAP_SIZE_MAX_DEFAULT;
	map_size = opt->map_size ? opt->map_size
				 : (map_max < STORE_MAP_SIZE_DEFAULT ? map_max : STORE_MAP_SIZE_DEFAULT);
	map_max = round_up(map_max, page);
	map_size = round_up(map_size, page);
	if (map_size > map_max)
		return XDMS_ERR_INVAL;
	{
		char *why = NULL;

		/* The caller that wants the sentence asked store_dir_prepare() first. */
		err = store_dir_prepare(opt->path, &why);
		free(why);
		if (err)
			return err;
	}

	st = xcalloc(1, sizeof(*st));
	st->batch_max = opt->batch_max ? opt->batch_max : STORE_BATCH_MAX_DEFAULT;
	st->is_sync = opt->is_sync;
	st->feed_retention_ms = opt->feed_retention_ms;
	st->map_size_max = map_max;
	pthread_rwlockattr_init(&attr);
	/* Resizes must not starve behind a steady stream of readers. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&st->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc || pthread_mutex_init(&st->q_lock, NULL) || pthread_mutex_init(&st->ack_lock, NULL) ||
	    pthread_cond_init(&st->q_cond, NULL)) {
		free(st);
		return XDMS_ERR_STORE;
	}

	rc = mdb_env_create(&st->env);
	if (rc) {
		st->env = NULL;
		err = store_err_from_mdb(rc);
		goto out;
	}
	rc = mdb_env_set_maxdbs(st->env, STORE_MAXDBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(st->env, STORE_MAXREADERS);
	if (!rc)
		rc = mdb_env_set_mapsize(st->env, map_size);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	/* Durable mode syncs data pages at commit but leaves the meta page to
	 * the next sync (MDB_NOMETASYNC keeps the database consistent; a crash
	 * can only undo the newest commit). The writer acknowledges a batch
	 * only once a later sync covered its meta page, so nothing acknowledged
	 * is lost and each group commit costs one flush, not two. With the
	 * write-ahead log the owner switches to MDB_NOSYNC once it is open
	 * (wal.c). A log left by a server that died is replayed whatever this
	 * opener's own settings: its gate comes before LMDB is opened. */
	err = store_wal_prepare(st, opt->path, opt->is_sync ? opt->wal_size : 0);
	if (err)
		goto out;
	rc = mdb_env_open(st->env, opt->path, MDB_NOTLS | (opt->is_sync ? MDB_NOMETASYNC : MDB_NOSYNC), 0600);
	if (rc) {
		/* Positive codes are errno values from opening the files. */
		err = rc > 0 ? XDMS_ERR_IO : store_err_from_mdb(rc);
		goto out;
	}
	/* Reader slots of processes that died (a killed server's snapshots and
	 * its log's pin) would keep LMDB from reusing pages until every process
	 * closed the environment; LMDB clears them only when it is the first. */
	{
		int dead = 0;

		(void)mdb_reader_check(st->env, &dead);
	}
	st->max_key = (size_t)mdb_env_get_maxkeysize(st->env);
	if (st->max_key > STORE_SELECTOR_MAX)
		st->max_key = STORE_SELECTOR_MAX;

	/*
	 * Start from the size the environment already reached (recorded by an
	 * earlier growth, here or in xdmsctl) when it is larger than asked, so a
	 * restart does not have to grow the map again write by write.
	 */
	rc = mdb_env_set_mapsize(st->env, 0);
	map_size_refresh(st);
	if (!rc && st->map_size < map_size)
		rc = mdb_env_set_mapsize(st->env, map_size);
	map_size_refresh(st);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}

	err = env_init(st);
	if (err)
		goto out;
	err = store_wal_finish(st, opt->is_sync && opt->wal_size > 0);
	if (err)
		goto out;
	err = store_writer_start(st);
out:
	if (err) {
		store_free(st);
		return err;
	}
	*out = st;
	return XDMS_ERR_OK;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_writer_stop(st);
	store_wal_close(st);
	reads_release_store(st);
	store_free(st);
}

/* ---- statistics ------------------------------------------------------------------------ */

enum xdms_err store_stats_get(struct store *st, struct store_stats *out)
{
	struct store_read *rd = NULL;
	enum xdms_err err;
	MDB_envinfo info;
	MDB_stat ms;
	int rc;

	if (!st || !out)
		return XDMS_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	err = store_read_begin(st, &rd);
	if (err)
		return err;
	rc = mdb_stat(rd->txn, st->dbi_docs, &ms);
	if (rc)
		goto out;
	out->doc_count = ms.ms_entries;
	rc = mdb_stat(rd->txn, st->dbi_users, &ms);
	if (rc)
		goto out;
	out->user_count = ms.ms_entries;
	rc = store_meta_get(st, rd->txn, STORE_META_LAST_SEQ, 8, &out->last_seq);
	if (rc)
		goto out;
	/* Under the snapshot map_lock is held, so the map size cannot change here. */
	rc = mdb_env_info(st->env, &info);
	if (!rc)
		rc = mdb_env_stat(st->env, &ms);
	if (rc)
		goto out;
	out->map_size = info.me_mapsize;
	out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
out:
	store_read_end(rd);
	out->batches = atomic_load_explicit(&st->n_batches, memory_order_relaxed);
	out->batched_writes = atomic_load_explicit(&st->n_batched_writes, memory_order_relaxed);
	out->flushes = atomic_load_explicit(&st->n_flushes, memory_order_relaxed);
	for (size_t i = 0; i < STORE_BATCH_BUCKETS; i++)
		out->batch_size_buckets[i] = atomic_load_explicit(&st->n_buckets[i], memory_order_relaxed);
	out->map_grows = atomic_load_explicit(&st->n_map_grows, memory_order_relaxed);
	return store_err_from_mdb(rc);
}

enum xdms_err store_walk(struct store_read *rd, MDB_dbi dbi, const MDB_val *from, store_walk_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	enum xdms_err err = XDMS_ERR_OK;
	MDB_val k = { 0, NULL }, v;
	int rc, stop = 0;

	rc = mdb_cursor_open(rd->txn, dbi, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	if (from)
		k = *from;
	rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
	while (!rc && !(stop = fn(arg, &k, &v, &err)))
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	if (!stop && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
	mdb_cursor_close(cur);
	return stop < 0 || !stop ? err : XDMS_ERR_OK;
}

#define STORE_TXN_TRIES 64 /* bounds growth and adopt retries; the map doubles each time */

enum xdms_err store_txn_run(struct store *st, enum xdms_err (*fn)(struct store *st, MDB_txn *txn, void *arg),
			    void *arg)
{
	enum xdms_err err = XDMS_ERR_STORE;
	MDB_txn *txn;
	size_t seen;
	int rc;

	/*
	 * Growing the map needs every snapshot closed, this thread's too, and a
	 * write callback on the writer thread already runs inside a transaction.
	 */
	if (store_thread_holds_map(st))
		return XDMS_ERR_BUSY;
	for (unsigned tries = 0; tries < STORE_TXN_TRIES; tries++) {
		store_map_enter(st);
		seen = st->map_size;
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc) {
			store_map_leave(st);
			if (rc == MDB_MAP_RESIZED && !store_map_adopt(st))
				continue;
			return store_err_from_mdb(rc);
		}
		rc = store_wal_txn_begun(st, txn);
		err = rc ? store_err_from_mdb(rc) : fn(st, txn, arg);
		if (err) {
			mdb_txn_abort(txn);
		} else {
			rc = mdb_txn_commit(txn);
			/* MDB_NOMETASYNC (or the log's MDB_NOSYNC) left the commit
			 * unsynced; the caller is told OK only once it is durable,
			 * and the log's checkpoint names it (wal.c). */
			if (!rc && st->is_sync)
				rc = mdb_env_sync(st->env, 1);
			if (!rc && st->is_sync)
				rc = store_wal_txn_done(st);
			err = store_err_from_mdb(rc);
		}
		store_map_leave(st);
		if (err != XDMS_ERR_FULL || store_map_grow(st, seen))
			return err;
	}
	return err;
}

struct group_op {
	enum xdms_err (*fn)(struct store *st, MDB_txn *txn, void *arg);
	void *arg;
};

static enum xdms_err group_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *old_doc,
				const struct store_doc *new_doc)
{
	const struct group_op *op = w->arg;

	(void)old_doc;
	(void)new_doc;
	return op->fn(txn->st, txn->txn, op->arg);
}

enum xdms_err store_txn_group(struct store *st, enum xdms_err (*fn)(struct store *st, MDB_txn *txn, void *arg),
			      void *arg)
{
	struct group_op op = { fn, arg };
	struct store_write w;

	memset(&w, 0, sizeof(w));
	w.hook = group_hook;
	w.arg = &op;
	return store_write_run(st, &w);
}
