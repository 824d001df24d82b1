/* SPDX-License-Identifier: MIT */
/*
 * Private to src/store/: the definition of struct store, the read snapshot
 * and hook transaction objects, and the helpers the store's .c files share
 * (LMDB error translation, map locking and growth, value encodings).
 *
 * Conventions. Helpers returning enum xdms_err have already translated LMDB's
 * codes; helpers returning int return a raw LMDB code (0 = MDB_SUCCESS) so
 * that the writer can still tell MDB_MAP_FULL and MDB_TXN_FULL apart.
 *
 * Lock order: map_lock (rwlock) before LMDB's own write mutex. Every LMDB
 * transaction of this process runs with map_lock held shared; the map is only
 * resized with it held exclusively, because mdb_env_set_mapsize() requires
 * that no transaction of this process is active.
 */
#ifndef XDMS_STORE_INT_H
#define XDMS_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

#define STORE_SCHEMA_VERSION 1u

/* Keys of the meta database; values are big-endian integers. */
#define STORE_META_SCHEMA "schema_version"  /* 4 bytes */
#define STORE_META_INSTANCE "instance_id"   /* 4 bytes */
#define STORE_META_ETAG_COUNTER "etag_counter" /* 8 bytes */
#define STORE_META_LAST_SEQ "last_seq"     /* 8 bytes */

/* How often one operation adopts a map size another process set before giving up. */
#define STORE_ADOPT_TRIES 8

/* "<prefix>-<8 hex>-<16 hex>" must fit STORE_ETAG_MAX with its NUL. */
#define STORE_ETAG_PREFIX_MAX (STORE_ETAG_MAX - 1 - (1 + 8 + 1 + 16))

/* Commit listeners (store_add_commit_listener): the notifier, the IWF. */
#define STORE_LISTENERS_MAX 4

struct store_listener {
	void (*fn)(void *arg, uint64_t last_seq);
	void *arg;
};

/* A thread blocked in store_write_run(); lives on that thread's stack. */
struct store_waiter {
	struct store_write *w;
	pthread_cond_t cond; /* signalled with q_lock held */
	bool is_done;
	struct store_waiter *next;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi_docs;
	MDB_dbi dbi_changes;
	MDB_dbi dbi_users;
	MDB_dbi dbi_names;
	MDB_dbi dbi_meta;
	MDB_dbi dbi_index;   /* store-wide unique indexes (index.c) */
	MDB_dbi dbi_subs;    /* SIP subscriptions (subs.c) */
	MDB_dbi dbi_jobs;    /* IWF jobs (jobs.c) */
	MDB_dbi dbi_secrets; /* server-private values (jobs.c) */
	MDB_dbi dbi_watches; /* IWF subscribe-profile watches (watches.c) */
	struct store_wal *wal; /* the write-ahead log (wal.c), NULL without one */
	uint32_t instance_id;
	size_t max_key;      /* longest key LMDB accepts, capped at STORE_SELECTOR_MAX */
	unsigned batch_max;
	bool is_sync;        /* durable mode: commits use MDB_NOMETASYNC and acks wait for a sync */
	size_t map_size_max;

	/* Held shared by every transaction of this process, exclusively to resize. */
	pthread_rwlock_t map_lock;
	size_t map_size; /* written with map_lock exclusive, read with it held */

	/* The writer's queue (FIFO through w->next_) and its state. */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct store_write *q_head;
	struct store_write *q_tail;
	struct store_waiter *waiters;
	bool is_closing;
	bool has_writer;
	bool is_ack_lost; /* a flush failed under writes told at their commit (writer thread only) */
	pthread_t writer;
	struct store_listener listeners[STORE_LISTENERS_MAX]; /* under q_lock */
	pthread_mutex_t ack_lock; /* held while listeners run (store_remove_commit_listener) */
	unsigned listener_count;
	uint64_t feed_retention_ms;
	atomic_uint_fast64_t feed_floor; /* first change sequence still needed */

	/* Every cached read snapshot of this store, under the global reads lock (env.c). */
	struct store_read *reads;

	/* Process counters for store_stats_get(). */
	atomic_uint_fast64_t n_batches;
	atomic_uint_fast64_t n_batched_writes;
	atomic_uint_fast64_t n_flushes;
	atomic_uint_fast64_t n_buckets[STORE_BATCH_BUCKETS];
	atomic_uint_fast64_t n_map_grows;
	atomic_uint_fast64_t job_generation; /* store_job_generation() */
	atomic_uint_fast64_t watch_generation; /* store_watch_generation() */
};

/*
 * One thread's state for one store: its reusable read transaction and how
 * deeply it holds map_lock. It sits in two lists:
 * its thread's (only that thread walks it) and its store's (under the global
 * reads lock). store_close() aborts the transaction and clears @st; the owning
 * thread then frees the object the next time it walks its list, or at exit.
 */
struct store_read {
	_Atomic(struct store *) st; /* NULL once the store was closed */
	MDB_txn *txn;               /* reset between snapshots; NULL before first use */
	unsigned depth;             /* nested store_read_begin() calls on the owner */
	unsigned lock_depth;        /* the owner's nested holds of map_lock (snapshots, txns) */
	struct store_read *thread_next;
	struct store_read *store_prev;
	struct store_read *store_next;
};

/* What a commit hook writes through: the write's nested transaction. */
struct store_txn {
	struct store *st;
	MDB_txn *txn;
};

/* ---- env.c ---------------------------------------------------------------- */

/* Translates an LMDB (or errno) code into the project's table. */
enum xdms_err store_err_from_mdb(int rc);

/* A random 32-bit value (getrandom, or the clock and PID if that fails): an
 * instance id, which must differ between environments but need not be secret. */
uint32_t store_random_u32(void);
/* Unix time now, in milliseconds. */
uint64_t store_now_ms(void);

/* Takes map_lock shared for the calling thread (once, however nested). */
void store_map_enter(struct store *st);
void store_map_leave(struct store *st);
/* True while the calling thread holds map_lock: inside a snapshot or a txn. */
bool store_thread_holds_map(struct store *st);
/*
 * Grows the map (doubling, capped at map_size_max) unless it is already
 * larger than @seen, the size the caller's failed transaction ran with.
 * FULL when the map is at its maximum; BUSY when the calling thread still
 * holds map_lock (it would wait for itself).
 */
enum xdms_err store_map_grow(struct store *st, size_t seen);
/* Adopts the map size another process set (after MDB_MAP_RESIZED). Same rules. */
enum xdms_err store_map_adopt(struct store *st);

/* Reads a big-endian integer of @len (4 or 8) bytes from meta. MDB_NOTFOUND if absent. */
int store_meta_get(struct store *st, MDB_txn *txn, const char *key, size_t len, uint64_t *out);
int store_meta_put(struct store *st, MDB_txn *txn, const char *key, size_t len, uint64_t value);

/*
 * Runs @fn in a durable top-level write transaction of its own on the calling
 * thread (users, provisioned secrets), growing the map as needed; LMDB
 * serializes it with the writer thread and other processes. @fn may run more
 * than once. BUSY when the calling thread holds a snapshot or is the writer.
 */
enum xdms_err store_txn_run(struct store *st, enum xdms_err (*fn)(struct store *st, MDB_txn *txn, void *arg),
			    void *arg);

/*
 * Runs @fn inside the writer thread's next group commit, in a nested
 * transaction of its own, and waits for the outcome: bookkeeping that many
 * threads do at once (IWF job claims) shares the group's one flush instead
 * of each taking LMDB's write lock for a flush of its own. A failing @fn
 * rolls back alone. @fn must not block; it may run more than once. BUSY on
 * the writer thread, with a snapshot held, or while the store closes.
 */
enum xdms_err store_txn_group(struct store *st, enum xdms_err (*fn)(struct store *st, MDB_txn *txn, void *arg),
			      void *arg);

/* Starts the writer thread (writer.c); called once by store_open(). */
enum xdms_err store_writer_start(struct store *st);
/* Lets the queue drain and joins the writer (writer.c); called by store_close(). */
void store_writer_stop(struct store *st);

/* ---- wal.c ------------------------------------------------------------------ */

/*
 * Every put and delete of the store goes through these, so that the owner's
 * writer thread logs it (wal.c). MDB_RESERVE puts are logged by the caller
 * with store_kv_reserved() once the value is written. Same codes as LMDB's.
 */
int store_kv_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags);
void store_kv_reserved(struct store *st, MDB_dbi dbi, const MDB_val *k, const MDB_val *v);
int store_kv_del(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k);
int store_kv_cursor_del(struct store *st, MDB_cursor *cur, MDB_dbi dbi);
/* The log's length before a nested transaction, and its rollback with it. */
size_t store_log_mark(void);
void store_log_rewind(size_t mark);

/* Before mdb_env_open: opens the log in @dir (creating it when @wal_size is
 * not 0), waits at its gate and, when nobody owns it and nobody has the
 * environment open, writes its checkpoint's meta pages back into data.mdb. */
enum xdms_err store_wal_prepare(struct store *st, const char *dir, size_t wal_size);
/* After the databases are open: replays, checkpoints, opens the gate; the
 * process keeps the log (owner) when @is_owner_wanted and nobody else has it. */
enum xdms_err store_wal_finish(struct store *st, bool is_owner_wanted);
/* Clean close (the writer stopped): checkpoint marked clean, log closed. */
void store_wal_close(struct store *st);
/* Closes the log without a checkpoint (a failed open). */
void store_wal_free(struct store *st);
bool store_wal_is_owner(const struct store *st);
/* The writer thread logs its ops from now on (owner only). */
void store_wal_thread_attach(struct store *st);
/* Around each parent transaction of the writer (0, an LMDB code or an errno). */
int store_wal_pass_begin(struct store *st, MDB_txn *parent);
int store_wal_pass_append(struct store *st, MDB_txn *parent);
/* After the parent's commit (@rc its result): a failed commit's record is voided. */
void store_wal_pass_end(struct store *st, uint64_t txnid, int rc);
/* The writer answers each batch after its own flush: this process owns the
 * log, or another process does (and each commit here advances its checkpoint). */
bool store_wal_in_use(const struct store *st);
/* After a batch's commits, before any answer: makes them durable (the
 * owner: flushes the log, or checkpoints after a commit that went without). */
int store_wal_flush(struct store *st);
/* A durable transaction outside the writer: after it began, after its sync. */
int store_wal_txn_begun(struct store *st, MDB_txn *txn);
int store_wal_txn_done(struct store *st);

/* ---- move.c --------------------------------------------------------------- */

/* BUSY when document selector @sel (AUID/users/XUI/...) belongs to a user
 * frozen by store_user_freeze(); OK otherwise (global documents, no user). */
enum xdms_err store_move_guard(struct store *st, MDB_txn *txn, const char *sel);

/* ---- docs.c --------------------------------------------------------------- */

/* Decodes a docs value; the result points into @v. CORRUPT if malformed. */
enum xdms_err store_doc_decode(const MDB_val *v, struct store_doc *out);
/* Looks a document up inside @txn. NOTFOUND, CORRUPT or STORE on failure. */
enum xdms_err store_doc_txn_get(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len,
				struct store_doc *out);
/* Stores a document (LMDB code; MDB_BAD_VALSIZE when it cannot be encoded). */
int store_doc_txn_put(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len,
		      const char *etag, uint64_t mtime_ms, const char *data, size_t data_len);
int store_doc_txn_del(struct store *st, MDB_txn *txn, const char *sel, size_t sel_len);

/* ---- changes.c ------------------------------------------------------------ */

/* Appends one change record (LMDB code). @c->seq must exceed every stored seq. */
/*
 * Walks @dbi in key order from @from (the first key >= it; NULL = the first
 * key), calling @fn for each record until it returns non-zero. @fn returns
 * 1 to stop, -1 to stop with the error it put in *err. Returns OK, the
 * error of @fn, or the LMDB error.
 */
typedef int (*store_walk_fn)(void *arg, const MDB_val *k, const MDB_val *v, enum xdms_err *err);
enum xdms_err store_walk(struct store_read *rd, MDB_dbi dbi, const MDB_val *from, store_walk_fn fn, void *arg);

int store_change_append(struct store *st, MDB_txn *txn, const struct store_change *c);
/* Deletes up to @max of the oldest change records with seq < @floor and time < @before_ms. */
int store_changes_prune(struct store *st, MDB_txn *txn, uint64_t floor, uint64_t before_ms, unsigned max);

/* ---- byte order ------------------------------------------------------------ */

static inline void store_put_be(unsigned char *p, uint64_t v, size_t len)
{
	for (size_t i = len; i > 0; i--) {
		p[i - 1] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t store_get_be(const unsigned char *p, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++)
		v = (v << 8) | p[i];
	return v;
}

#endif
