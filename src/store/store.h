/* SPDX-License-Identifier: MIT */
/*
 * store: xdmsd's persistent state in one LMDB environment.
 *
 * Named databases (DESIGN.md §3):
 *   docs     document selector -> { ETag, mtime, bytes }   (bytes exactly as written)
 *   changes  64-bit sequence (big-endian) -> change record (the change feed)
 *   users    XUI -> credential record;  names: "realm\0username" -> XUI
 *   meta     schema version, instance id, ETag counter, last change sequence,
 *            the default realm
 *   index    store-wide unique indexes kept by commit hooks
 *   subs     64-bit subscription id (big-endian) -> the notifier's record
 *   jobs     IWF jobs: Feature Handler requests to carry out (jobs.c)
 *   secrets  server-private opaque values, e.g. the IWF's sealed credentials (jobs.c)
 *   watches  the IWF's subscribe-profile subscriptions: XUI + request id -> state (watches.c)
 *
 * Threads. Any thread may read: store_read_begin() gives a snapshot that the
 * calling thread must end itself. Document writes go through one writer thread
 * owned by the store. It takes every queued write, runs each in its own nested
 * transaction inside one parent transaction, and commits the parent once
 * (group commit): one fsync for the whole batch, and a failing write is rolled
 * back alone without touching its neighbours. A write's `done` callback runs on
 * the writer thread after the batch is durable (or has failed).
 *
 * Invariants. A write that reports XDMS_ERR_OK is durable (fsync'd unless the
 * store was opened with is_sync false), its change record is in the feed in the
 * same transaction, and its commit hook's effects are in that transaction too.
 * A write that reports an error changed nothing. ETags are never reused: they
 * carry the store's random instance id and a 64-bit counter that only grows in
 * committed transactions.
 *
 * Several processes may open the same environment (xdmsd and xdmsctl); LMDB
 * serializes their write transactions.
 */
#ifndef XDMS_STORE_H
#define XDMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define STORE_ETAG_MAX 64      /* including the NUL */
#define STORE_SELECTOR_MAX 511 /* longest document selector in bytes: LMDB's default key limit */
#define STORE_XUI_MAX 256
#define STORE_REALM_MAX 256
#define STORE_USERNAME_MAX 256
#define STORE_USER_REALMS_MAX 2

struct store;      /* opaque; one per open environment */
struct store_read; /* opaque; a read snapshot, used by one thread */
struct store_txn;  /* opaque; the write transaction handed to commit hooks */

struct store_options {
	const char *path;    /* directory; created if missing */
	size_t map_size;     /* initial LMDB map size in bytes (0 = 1 GiB) */
	size_t map_size_max; /* the map grows up to this, then writes fail FULL (0 = 64 GiB) */
	bool is_sync;        /* fsync on every commit (true in production) */
	unsigned batch_max;  /* most writes in one group commit (0 = 256) */
	uint64_t feed_retention_ms; /* change records older than this may be pruned (0 = keep all) */
	size_t wal_size;     /* durable mode: the write-ahead log's size in bytes (0 = no log of
				this process's own; one left by another is still recovered), at
				least STORE_WAL_SIZE_MIN */
};

#define STORE_WAL_SIZE_MIN 65536
#define STORE_BATCH_MAX_LIMIT 65536u /* most writes one group commit may take */

/* ---- the data directory (lock.c) ----------------------------------------- */

struct store_lock; /* opaque; the server's hold on a data directory */

/*
 * Makes sure @path is a directory, creating it (and its parents, mode 0700)
 * when missing. INVAL when it exists and is not a directory, IO when it
 * cannot be created; *why (heap, caller frees) says which, naming @path.
 */
enum xdms_err store_dir_prepare(const char *path, char **why) XDMS_WUR;

/*
 * Prepares @path as store_dir_prepare() does and takes the server's
 * exclusive lock on it (the file "xdmsd.lock" in it, holding the PID), kept
 * until store_lock_release() or the end of the process. One server per data
 * directory; xdmsctl does not take it. BUSY when another process holds it
 * (*why names the directory and that process's PID), IO or INVAL as above.
 * Main thread.
 */
enum xdms_err store_lock_take(const char *path, struct store_lock **out, char **why) XDMS_WUR;

/* Releases the lock. NULL-tolerant. */
void store_lock_release(struct store_lock *lk);

/*
 * Opens (creating if needed) the environment at opt->path and starts the
 * writer thread. Returns INVAL for a bad option, IO or STORE when LMDB
 * cannot open the directory, CORRUPT for an unknown schema version.
 * On success *out is owned by the caller and released with store_close().
 */
enum xdms_err store_open(const struct store_options *opt, struct store **out) XDMS_WUR;

/*
 * Stops accepting writes, finishes every write already queued (their done
 * callbacks run), stops the writer thread and closes the environment.
 * No read snapshot may be open. NULL-tolerant.
 */
void store_close(struct store *st);

/*
 * Writes a consistent, compacted copy of the whole environment (LMDB's own
 * copy, MDB_CP_COMPACT) to @fd, an open, empty, writable file that becomes the
 * copy's data.mdb; the caller closes it. The copy is one read snapshot: every
 * write committed before the call is in it, writes go on meanwhile (in this
 * process and in others) and are not. Any thread that holds no snapshot of
 * @st. Returns IO when writing fails, STORE for other LMDB errors.
 */
enum xdms_err store_backup(struct store *st, int fd) XDMS_WUR;

/*
 * Gives the environment a new random instance id, so that a store restored
 * from a copy never hands out an ETag it (or the original) handed out before:
 * ETags are the instance id and a counter, and a copy's counter starts where
 * the copy was taken. Call it on a restored environment before any server
 * uses it. Writes in one durable transaction; STORE or IO on failure.
 */
enum xdms_err store_instance_renew(struct store *st) XDMS_WUR;

/* The instance id ETags carry (for tests and `xdmsctl stats`). */
uint32_t store_instance_id(const struct store *st);

/* ---- reading ---------------------------------------------------------- */

/* A stored document. Every pointer is borrowed from the snapshot it came
 * from and stays valid until store_read_end() of that snapshot (or, inside a
 * write callback, until the callback returns). */
struct store_doc {
	const char *etag;  /* NUL-terminated, without quotes */
	uint64_t mtime_ms; /* Unix time of the last write, in milliseconds */
	const char *data;  /* the document bytes; NOT NUL-terminated */
	size_t data_len;
};

/*
 * Begins a read snapshot for the calling thread. Cheap: reuses a per-thread
 * LMDB reader slot. Returns STORE on an LMDB failure.
 */
enum xdms_err store_read_begin(struct store *st, struct store_read **out) XDMS_WUR;
/* Ends the snapshot; everything borrowed from it becomes invalid. NULL-tolerant. */
void store_read_end(struct store_read *rd);

/* Looks up a document by selector. NOTFOUND when there is none. */
enum xdms_err store_doc_get(struct store_read *rd, const char *selector,
			    struct store_doc *out) XDMS_WUR;

/* Called for each document; return non-zero to stop the walk early. */
typedef int (*store_doc_visit_fn)(void *arg, const char *selector, const struct store_doc *doc);
/* Visits every document whose selector starts with @prefix ("" = all), in
 * byte order of the selector. */
enum xdms_err store_doc_list(struct store_read *rd, const char *prefix,
			     store_doc_visit_fn visit, void *arg) XDMS_WUR;
/* The same, starting after the selector @after (NULL or "" = from the first),
 * for walking a large collection in pages. */
enum xdms_err store_doc_list_after(struct store_read *rd, const char *prefix, const char *after,
				   store_doc_visit_fn visit, void *arg) XDMS_WUR;

/* ---- writing documents -------------------------------------------------- */

struct store_write;

/*
 * Runs on the writer thread, inside the write transaction, with the current
 * document (NULL when it does not exist). It decides the outcome of the write:
 * set w->new_data/new_len (the complete new document; the memory must stay
 * valid until `done` has run) or set w->is_delete, and optionally w->detail.
 * Returning non-OK abandons this write alone; that code becomes w->result.
 * It must not block and must not call back into the store's write functions.
 * It may run more than once for one write (when the map had to grow, the
 * write is run again in a new transaction); only the last run counts.
 */
typedef enum xdms_err (*store_apply_fn)(struct store_write *w, const struct store_doc *cur);

/*
 * The AUID commit hook: runs after the new document has been stored, in the
 * same (nested) transaction, with the old document (NULL if created) and the
 * new one (NULL if deleted). Its writes through @txn commit or roll back with
 * the document. Returning non-OK rolls back the whole write.
 */
typedef enum xdms_err (*store_hook_fn)(struct store_write *w, struct store_txn *txn,
				       const struct store_doc *old_doc,
				       const struct store_doc *new_doc);

/* A write with neither selector nor apply but a hook touches no document:
 * the hook alone runs (old_doc and new_doc NULL) in the group commit, for
 * records of other databases (store_int.h, store_txn_group). */
struct store_write {
	/* in: set by the caller before submitting */
	const char *selector;    /* document selector; borrowed until done */
	const char *etag_prefix; /* short AUID name for the ETag, e.g. "pcc" */
	store_apply_fn apply;    /* required */
	store_hook_fn hook;      /* optional */
	void *arg;               /* for apply, hook and done */
	void (*done)(struct store_write *w); /* optional; runs on the writer thread */
	const char *keep_etag;   /* NULL, or the ETag to store the document with instead of a
				    fresh one: a user moved in from another shard keeps its
				    ETags (they carry that shard's instance id, so stay unique) */
	bool is_move;            /* part of moving the user out: passes its freeze (below) */
	bool is_commit_ack;      /* told at its commit, before the flush (below) */

	/* set by apply */
	const char *new_data;
	size_t new_len;
	bool is_delete;
	const char *detail; /* opaque description of the change for the feed */
	size_t detail_len;

	/* out: valid when done runs (or when store_write_run returns) */
	enum xdms_err result;
	bool is_created;                 /* the document did not exist before */
	char etag[STORE_ETAG_MAX];       /* new ETag; "" after a delete */
	char prev_etag[STORE_ETAG_MAX];  /* ETag before the write; "" if created */
	uint64_t seq;                    /* change-feed sequence of this write */

	struct store_write *next_; /* private to the store */
};

/*
 * A write with is_commit_ack is told its outcome (done, then its waiter) as
 * soon as its transaction has committed, without waiting for the flush: it
 * is visible to every reader at once, and durable once any later write is
 * acknowledged (LMDB's commits are durable in order: one flush makes every
 * commit before it durable) or, when no write follows, after the writer's
 * short wait for one (STORE_COMMIT_ACK_WAIT_NS in writer.c). It is for a
 * caller whose next step is a durable write of its own that depends on this
 * one (an IWF job's PCC write before its <response>): a crash before that
 * write loses both or neither, and the two share one flush. The commit
 * listeners still run only once the write is durable. When that flush fails,
 * the store refuses every later write (IO), so nothing can be acknowledged
 * on top of a write that is lost.
 */

/*
 * Queues @w for the writer thread and returns at once. w->done runs later on
 * the writer thread with w->result set. Returns BUSY (and does not queue) when
 * the store is closing. @w stays owned by the caller and must stay valid until
 * done has run.
 */
enum xdms_err store_write_submit(struct store *st, struct store_write *w) XDMS_WUR;

/*
 * A record write: a store_write with selector and apply NULL and a hook. The
 * hook runs alone in its nested transaction, with both documents NULL, and
 * writes whatever it needs through @txn (store_sub_put, ...); no document,
 * ETag or change record is involved and w->seq stays 0. It shares the group
 * commit with document writes, so it is durable when done reports OK.
 */

/* Submits @w and waits for it. Returns w->result (or BUSY). w->done is still called.
 * BUSY without queueing also when called on the writer thread or while the
 * calling thread holds a read snapshot of @st (a map resize waits for it). */
enum xdms_err store_write_run(struct store *st, struct store_write *w) XDMS_WUR;

/* ---- store-wide unique indexes (for commit hooks) ------------------------------
 *
 * Some rules span documents (RFC 4826 §4.4: an RLS service URI is unique
 * across all users). A commit hook keeps such an index in the same
 * transaction as the document, so the index and the documents can never
 * disagree. An entry maps (@index, @key) to the selector of the document that
 * owns it. Keys and owners are NUL-free strings; together at most
 * STORE_SELECTOR_MAX bytes of key.
 */

/* Copies the owner of (@index, @key) into @owner. NOTFOUND when free;
 * TOOBIG when the key or the owner does not fit. */
enum xdms_err store_index_get(struct store_txn *txn, const char *index, const char *key, char *owner,
			      size_t owner_len) XDMS_WUR;
/* Sets the owner of (@index, @key), replacing any. */
enum xdms_err store_index_put(struct store_txn *txn, const char *index, const char *key,
			      const char *owner) XDMS_WUR;
/* Removes (@index, @key). NOTFOUND when absent. */
enum xdms_err store_index_del(struct store_txn *txn, const char *index, const char *key) XDMS_WUR;

/* ---- SIP subscriptions (the notifier's records) --------------------------------
 *
 * Opaque records keyed by a 64-bit id, written in record writes (above) and
 * read back at start-up. The store does not look inside them.
 */
enum xdms_err store_sub_put(struct store_txn *txn, uint64_t id, const void *rec, size_t len) XDMS_WUR;
/* NOTFOUND when absent. */
enum xdms_err store_sub_del(struct store_txn *txn, uint64_t id) XDMS_WUR;
typedef int (*store_sub_visit_fn)(void *arg, uint64_t id, const void *rec, size_t len);
/* Visits every record in id order; return non-zero to stop. */
enum xdms_err store_sub_list(struct store_read *rd, store_sub_visit_fn visit, void *arg) XDMS_WUR;

/* ---- IWF jobs ------------------------------------------------------------------
 *
 * A job is one Feature Handler request to carry out: (XUI, request id,
 * request hash), where the hash covers the request's bytes without its
 * <response>. The Feature Handler's commit hook creates, supersedes and
 * cancels jobs in the same transaction as the client's write, so a request
 * acknowledged with 200/201 has its job. For every request the store keeps
 * which job is current and the hash it was created for; a write that leaves
 * a request's hash unchanged creates nothing, which makes a request run once
 * however often the document is written.
 *
 * States: queued -> running (claimed with a lease) -> done | failed, or back
 * to queued for a retry; cancelled when the request is deleted or replaced by
 * a changed version. A running job whose lease has passed may be claimed
 * again (its worker died). A job ends (done/failed) in the transaction that
 * stores its final <response>, so the response is written once.
 */

#define STORE_JOB_ID_MAX 128  /* request id, including the NUL */
#define STORE_JOB_HASH_MAX 33 /* 32 hex digits and a NUL */
#define STORE_JOB_REASON_MAX 160

enum store_job_state {
	STORE_JOB_QUEUED = 0,
	STORE_JOB_RUNNING,
	STORE_JOB_DONE,      /* finished with a 2xx result */
	STORE_JOB_FAILED,    /* finished with an error result */
	STORE_JOB_CANCELLED, /* the request was deleted or changed before it finished */
	STORE_JOB__STATES
};

/* SUBSCRIBE jobs exist so that a <subscribe-profile> is answered: this
 * version's IWF cannot carry one out and answers it at once (501). */
enum store_job_kind { STORE_JOB_IMPORT = 1, STORE_JOB_EXPORT = 2, STORE_JOB_SUBSCRIBE = 3 };

struct store_job {
	uint64_t id;                         /* grows with every job; never reused */
	enum store_job_state state;
	enum store_job_kind kind;
	char xui[STORE_XUI_MAX];
	char request_id[STORE_JOB_ID_MAX];
	char hash[STORE_JOB_HASH_MAX];
	unsigned attempts;                   /* claims so far */
	unsigned code;                       /* result code (SPEC §4.3), 0 while unfinished */
	char reason[STORE_JOB_REASON_MAX];   /* last failure or result, "" for none */
	uint64_t created_ms;
	uint64_t updated_ms;
	uint64_t next_run_ms;                /* queued: not before this time */
	uint64_t lease_until_ms;             /* running: the claim expires at this time */
};

/* "queued", "running", ...; NULL for a value out of range. */
const char *store_job_state_name(enum store_job_state s);
/* The state called @name; false when there is none. */
bool store_job_state_parse(const char *name, enum store_job_state *out);

/* -- inside a commit hook (the write's transaction) -- */

/*
 * The current job of request (@xui, @request_id): its id and the hash it was
 * created for (or last refreshed to). NOTFOUND when the request has none.
 */
enum xdms_err store_job_current_txn(struct store_txn *txn, const char *xui, const char *request_id,
				    uint64_t *job_id, char hash[STORE_JOB_HASH_MAX]) XDMS_WUR;
/*
 * Queues a new job for the request and makes it current; the previous
 * current job, if still queued or running, is cancelled. INVAL when a string
 * is empty or too long.
 */
enum xdms_err store_job_add_txn(struct store_txn *txn, const char *xui, const char *request_id,
				const char *hash, enum store_job_kind kind, uint64_t *job_id) XDMS_WUR;
/* Records @hash as the request's current hash without creating a job (a
 * write that only changed what the hash must not see). NOTFOUND when none. */
enum xdms_err store_job_rehash_txn(struct store_txn *txn, const char *xui, const char *request_id,
				   const char *hash) XDMS_WUR;
/* The request is gone: cancels its job if unfinished and forgets the request.
 * NOTFOUND when the request had no job. */
enum xdms_err store_job_drop_txn(struct store_txn *txn, const char *xui, const char *request_id) XDMS_WUR;
/* Ends job @job_id as done or failed with @code and @reason (the answer's
 * text, cut to fit; NULL or "" clears an earlier one), if it is queued or
 * running (otherwise nothing changes). NOTFOUND when there is no such job. */
enum xdms_err store_job_end_txn(struct store_txn *txn, uint64_t job_id, enum store_job_state state,
				unsigned code, const char *reason) XDMS_WUR;

/* -- the worker pool (own transactions; not on the writer thread, no snapshot held) -- */

/*
 * Claims the job that became ready first (ties: the oldest): queued and due
 * at @now_ms, or running with a lease that ended by @now_ms. It becomes
 * running until @now_ms + @lease_ms and its attempts count grows; the job is
 * copied to *out. NOTFOUND when none is ready; then *next_due_ms (when not
 * NULL) gets the earliest time one will be (UINT64_MAX for never). Through
 * an index of due times: the cost does not grow with the backlog.
 */
enum xdms_err store_job_claim(struct store *st, uint64_t now_ms, uint64_t lease_ms, struct store_job *out,
			      uint64_t *next_due_ms) XDMS_WUR;
/* Claims, retries, ends and releases run in the writer's group commit
 * (they wait for it like store_write_run; BUSY once the store closes). */
/* Puts running job @job_id back in the queue until @next_run_ms, keeping
 * @reason (may be NULL). When @is_attempt is false the claim does not count
 * as an attempt (the job waited for a free slot). CONFLICT when it is no
 * longer running. */
enum xdms_err store_job_retry(struct store *st, uint64_t job_id, uint64_t next_run_ms, bool is_attempt,
			      const char *reason) XDMS_WUR;
/* Ends job @job_id (done, failed or cancelled) with @code and @reason when it
 * is queued or running. CONFLICT when it had ended already. */
enum xdms_err store_job_end(struct store *st, uint64_t job_id, enum store_job_state state, unsigned code,
			    const char *reason) XDMS_WUR;
/* A counter that grows whenever a write transaction queued a job (it may
 * also grow for a write that then rolled back). A commit listener compares
 * it to know whether workers have something new. Any thread. */
uint64_t store_job_generation(struct store *st);
/* Makes every running job claimable now (a restarted server: the workers
 * that held the leases are gone), after giving every unfinished job its key
 * in the index of due times if it lacks one (a store written by a version
 * without it). Sets *count (may be NULL) to how many were released. */
enum xdms_err store_job_release_all(struct store *st, unsigned *count) XDMS_WUR;

/*
 * Deletes the records of ended jobs (done, failed, cancelled) whose last
 * change is older than @before_ms (Unix ms), in batches that share the
 * writer's group commit; *count (may be NULL) gets how many. Unfinished jobs
 * and the requests' current hashes are kept. STORE on failure.
 */
enum xdms_err store_job_prune(struct store *st, uint64_t before_ms, unsigned *count) XDMS_WUR;

/* Counts the unfinished jobs (queued, running) through their index, in time
 * proportional to them, not to the jobs kept. INVAL or STORE on failure. */
enum xdms_err store_job_count_active(struct store_read *rd, uint64_t *queued, uint64_t *running) XDMS_WUR;

/* -- reading -- */

enum xdms_err store_job_get(struct store_read *rd, uint64_t job_id, struct store_job *out) XDMS_WUR;
/* The current job id of a request, as store_job_current_txn, in a snapshot. */
enum xdms_err store_job_current(struct store_read *rd, const char *xui, const char *request_id,
				uint64_t *job_id) XDMS_WUR;
typedef int (*store_job_visit_fn)(void *arg, const struct store_job *job);
/* Visits every job in id order; return non-zero to stop. */
enum xdms_err store_job_list(struct store_read *rd, store_job_visit_fn visit, void *arg) XDMS_WUR;

/* ---- server-private secrets --------------------------------------------------------
 *
 * Opaque values no XCAP request can reach (they are not documents), keyed by
 * (owner, name): the IWF keeps the credentials it took out of requests here,
 * sealed with its own key. The store never sees them in clear. A request
 * dropped by the Feature Handler's commit hook takes the secret
 * (XUI, "request:" + its id) with it in the same transaction.
 */
#define STORE_SECRET_MAX 4096

/* Stores @len bytes under (@owner, @name), replacing any, durably: with
 * @is_durable in a transaction of its own (any thread or process), else in
 * the writer's next group commit (many threads share its flush). INVAL for
 * empty or too long names, TOOBIG over STORE_SECRET_MAX. */
enum xdms_err store_secret_put(struct store *st, const char *owner, const char *name, const void *data,
			       size_t len, bool is_durable) XDMS_WUR;
/* Copies the secret into @out (@cap bytes). NOTFOUND when absent, TOOBIG when it does not fit. */
enum xdms_err store_secret_get(struct store_read *rd, const char *owner, const char *name, void *out,
			       size_t cap, size_t *len) XDMS_WUR;
/* Removes it. NOTFOUND when absent. */
enum xdms_err store_secret_del(struct store *st, const char *owner, const char *name) XDMS_WUR;

/* ---- IWF watches (subscribe-profile) ----------------------------------------------
 *
 * One record per <subscribe-profile> the IWF carries out, keyed by (XUI,
 * request id): which adapter it watches, until when, what it last saw at the
 * 3rd party (an opaque validator: ETag, Last-Modified or a sync token), when
 * it polls next, the sequence number of its <response>, and room for a SIP
 * dialog's state. The IWF writes records (store_watch_put, in the writer's
 * group commit); the Feature Handler's commit hook drops the record of a
 * request that disappeared in the client's own transaction
 * (store_watch_drop_txn), so a deleted request stops being watched even if
 * the server stops right after the answer.
 */
#define STORE_WATCH_ADAPTER_MAX 128   /* adapter id, including the NUL */
#define STORE_WATCH_VALIDATOR_MAX 512 /* including the NUL */
#define STORE_WATCH_HOOK_MAX 48       /* webhook id, including the NUL */
#define STORE_WATCH_SECRET_MAX 72     /* webhook secret (hex), including the NUL */
#define STORE_WATCH_DIALOG_MAX 2048   /* SIP dialog state, bytes */
#define STORE_WATCH_PARAM_MAX 256     /* the request's remote user and fields, including the NUL */

enum store_watch_state {
	STORE_WATCH_ACTIVE = 0, /* polled (or told) and imported */
	STORE_WATCH_HELD,       /* watched, but updates are held (subscription-prefs/auto-update false) */
	STORE_WATCH_TERMINATED, /* expired or ended by the 3rd party; kept until the request goes */
	STORE_WATCH__STATES
};

struct store_watch {
	char xui[STORE_XUI_MAX];
	char request_id[STORE_JOB_ID_MAX];
	uint64_t job_id;                          /* the job (request version) that set it up */
	enum store_watch_state state;
	char adapter[STORE_WATCH_ADAPTER_MAX];
	char target[32];                          /* what is kept up to date: "pcc" */
	char remote_user[STORE_WATCH_PARAM_MAX];  /* the request's, for every poll */
	char merge_policy[16];                    /* the request's, "" = none */
	char fields[STORE_WATCH_PARAM_MAX];       /* the request's <fields>, "" = all */
	uint64_t created_ms, expires_ms;          /* Unix ms */
	uint64_t next_poll_ms, last_poll_ms, last_update_ms;
	uint32_t seq;                             /* of the last <response> written */
	uint32_t failures;                        /* polls failed in a row */
	uint32_t code;                            /* of the last <response> */
	uint32_t imported_count;                  /* of the last update */
	char validator[STORE_WATCH_VALIDATOR_MAX];      /* of the version imported last */
	char held_validator[STORE_WATCH_VALIDATOR_MAX]; /* of a version seen but held */
	char pcc_etag[STORE_ETAG_MAX];
	char hook_id[STORE_WATCH_HOOK_MAX];       /* "" = no webhook */
	char hook_secret[STORE_WATCH_SECRET_MAX]; /* the webhook's HMAC key (hex) */
	char reason[STORE_JOB_REASON_MAX];        /* last failure, "" for none */
	unsigned char dialog[STORE_WATCH_DIALOG_MAX];
	size_t dialog_len;
	/* Where the request's credential is sealed under the XUI ("request:ID",
	 * "ref:NAME"); "" = the adapter's own or none. Kept last, after the
	 * dialog, so that records stored before it read back with "". */
	char cred[STORE_WATCH_PARAM_MAX];
	/* A graph-style webhook: the 3rd party's subscription id ("" = none)
	 * and when to renew it (Unix ms). Kept after cred, likewise. */
	char hook_remote[STORE_WATCH_PARAM_MAX];
	uint64_t hook_renew_ms;
};

/* "active", "held", "terminated"; NULL out of range. */
const char *store_watch_state_name(enum store_watch_state s);

/* Stores @w under (w->xui, w->request_id), replacing any, in the writer's
 * group commit (many threads share its flush). INVAL for empty or too long
 * strings; BUSY with a snapshot held or on the writer thread. */
enum xdms_err store_watch_put(struct store *st, const struct store_watch *w) XDMS_WUR;
/* Removes the record, in the group commit. NOTFOUND when absent. */
enum xdms_err store_watch_del(struct store *st, const char *xui, const char *request_id) XDMS_WUR;
/* Inside a commit hook: removes the record if there is one (OK either way). */
enum xdms_err store_watch_drop_txn(struct store_txn *txn, const char *xui, const char *request_id) XDMS_WUR;
/* Copies the record into *out. NOTFOUND when absent, CORRUPT when unreadable. */
enum xdms_err store_watch_get(struct store_read *rd, const char *xui, const char *request_id,
			      struct store_watch *out) XDMS_WUR;
typedef int (*store_watch_visit_fn)(void *arg, const struct store_watch *w);
/* Visits every record in key order (@w is valid during the call only);
 * return non-zero to stop. Unreadable records are skipped. */
enum xdms_err store_watch_list(struct store_read *rd, store_watch_visit_fn visit, void *arg) XDMS_WUR;
/* A counter that grows whenever a commit hook dropped a watch (any thread):
 * the IWF compares it to know that a request went away. */
uint64_t store_watch_generation(struct store *st);

/* ---- the change feed ------------------------------------------------------ */

/* One change record. Pointers are borrowed like store_doc's. */
struct store_change {
	uint64_t seq;
	uint64_t time_ms;
	const char *selector;
	const char *prev_etag; /* "" when the document was created */
	const char *new_etag;  /* "" when the document was deleted */
	const char *detail;    /* as given by the writer; may be NULL */
	size_t detail_len;
	bool is_move;          /* written by a user's move between shards (store_write.is_move) */
};

typedef int (*store_change_visit_fn)(void *arg, const struct store_change *c);
/* Visits changes with seq >= @from_seq in order; return non-zero to stop. */
enum xdms_err store_changes_scan(struct store_read *rd, uint64_t from_seq,
				 store_change_visit_fn visit, void *arg) XDMS_WUR;

/* The highest sequence in the feed as this snapshot sees it (0 when empty). */
enum xdms_err store_changes_last(struct store_read *rd, uint64_t *seq) XDMS_WUR;

/*
 * The change feed is pruned by the writer: with each group commit it deletes
 * up to a few hundred of the oldest records that are older than
 * feed_retention_ms AND below the floor, the first sequence some reader
 * still needs (the notifier's slowest subscriber). The floor starts at 0
 * (nothing is pruned) until the process sets it; a process with no feed
 * reader sets UINT64_MAX. Any thread.
 */
void store_set_feed_floor(struct store *st, uint64_t first_needed_seq);
/* The oldest sequence still in the feed (0 when empty). */
enum xdms_err store_changes_first(struct store_read *rd, uint64_t *seq) XDMS_WUR;

/*
 * Registers a function the writer thread calls after every durable commit
 * with the highest sequence it contains (the notifier and the IWF use it to
 * wake up). Up to 4 listeners, called in the order they were added; add them
 * before the first write. @fn must not block. INVAL for a NULL @fn, FULL
 * when 4 are registered already.
 */
enum xdms_err store_add_commit_listener(struct store *st, void (*fn)(void *arg, uint64_t last_seq),
					void *arg) XDMS_WUR;
/* Removes the listener added with (@fn, @arg); after it returns, the writer
 * no longer calls it (a call in progress has finished). No-op when absent. */
void store_remove_commit_listener(struct store *st, void (*fn)(void *arg, uint64_t last_seq), void *arg);

/* ---- users ------------------------------------------------------------------ */

/* Digest credentials of a user for one realm: H(username:realm:password) for
 * the two usernames a client may send (the XUI's user part and the full XUI),
 * with MD5 and with SHA-256 (RFC 7616 §3.4.2). No password is stored. */
struct store_user_realm {
	char realm[STORE_REALM_MAX];
	bool is_xui_only; /* only the full XUI logs in here (its user part belongs to another user) */
	uint8_t ha1_md5_user[16];
	uint8_t ha1_sha256_user[32];
	uint8_t ha1_md5_xui[16];
	uint8_t ha1_sha256_xui[32];
};

struct store_user {
	char xui[STORE_XUI_MAX];           /* "sip:alice@example.com", "tel:+1555..." */
	char username[STORE_USERNAME_MAX]; /* the XUI's user part: "alice", "+1555..." */
	uint64_t created_ms;
	unsigned realm_count;
	struct store_user_realm realms[STORE_USER_REALMS_MAX];
};

/*
 * Creates or replaces a user and its name index entries ("realm\0username"
 * and "realm\0xui" for every realm) in one durable transaction. Runs its own
 * write transaction (callable from any thread or process). EXISTS when
 * @is_create is true and the user exists already; CONFLICT when one of its
 * names already belongs to another user; BUSY when the calling thread holds
 * a read snapshot of @st (as store_write_run).
 */
enum xdms_err store_user_put(struct store *st, const struct store_user *u, bool is_create) XDMS_WUR;
/*
 * As store_user_put, and in the same transaction records @default_realm as
 * the store's default realm when none is recorded yet (NULL: record
 * nothing). CONFLICT also when a different default realm is recorded
 * already; INVAL for an empty or too long @default_realm.
 *
 * The first realm of @u is its own (its domain; the default realm for tel:
 * users), a second one an alias. When @u's user part in its own realm is held
 * by another user only as an alias, that alias becomes xui-only in the same
 * transaction and, when @yielded is not NULL (STORE_XUI_MAX bytes), its XUI is
 * copied there ("" when nothing gave way).
 */
enum xdms_err store_user_put_realm(struct store *st, const struct store_user *u, bool is_create,
				   const char *default_realm, char *yielded) XDMS_WUR;
/*
 * Copies the store's default realm (the realm of global documents and tel:
 * users when the configuration names none) into @out. NOTFOUND when none is
 * recorded (stores provisioned before it existed), TOOBIG when @out_len is
 * too small.
 */
enum xdms_err store_default_realm_get(struct store_read *rd, char *out, size_t out_len) XDMS_WUR;
/* Deletes a user and its index entries. NOTFOUND when absent; BUSY as store_user_put. */
enum xdms_err store_user_del(struct store *st, const char *xui) XDMS_WUR;
/* Copies the user record into *out. NOTFOUND when absent. */
enum xdms_err store_user_get(struct store_read *rd, const char *xui, struct store_user *out) XDMS_WUR;
/* Finds the user a Digest (realm, username) pair names. NOTFOUND when none. */
enum xdms_err store_user_find(struct store_read *rd, const char *realm, const char *username,
			      struct store_user *out) XDMS_WUR;
typedef int (*store_user_visit_fn)(void *arg, const struct store_user *u);
/* Visits every user in XUI byte order; return non-zero to stop. */
enum xdms_err store_user_list(struct store_read *rd, store_user_visit_fn visit, void *arg) XDMS_WUR;

/* ---- moving a user to another shard (move.c) ------------------------------------
 *
 * A user moves by export from its old shard and import into its new one
 * (DESIGN.md §6). For the moment of the move the user is frozen on the old
 * shard: every document write under AUID/users/XUI/ fails BUSY there (XCAP
 * answers 503) unless it is part of the move, so what the export reads is
 * every write ever acknowledged for the user and nothing acknowledged later
 * can be lost.
 */

/* Freezes (@is_frozen true) or thaws @xui, in a durable transaction of its
 * own: from its commit on, writes of the user's documents fail BUSY unless
 * their store_write has is_move. Idempotent; the user need not exist. INVAL
 * for an empty or too long XUI; BUSY as store_user_put. */
enum xdms_err store_user_freeze(struct store *st, const char *xui, bool is_frozen) XDMS_WUR;
/* OK when @xui is frozen, NOTFOUND when not. */
enum xdms_err store_user_frozen(struct store_read *rd, const char *xui) XDMS_WUR;

typedef int (*store_secret_visit_fn)(void *arg, const char *name, const void *data, size_t len);
/* Visits every secret of @owner in name order (sealed bytes, borrowed until
 * the callback returns); return non-zero to stop. */
enum xdms_err store_secret_list(struct store_read *rd, const char *owner, store_secret_visit_fn visit,
				void *arg) XDMS_WUR;

/* ---- statistics --------------------------------------------------------------- */

#define STORE_BATCH_BUCKETS 10 /* batch sizes 1, 2, 4, ... 256, more */

struct store_stats {
	uint64_t doc_count;
	uint64_t user_count;
	uint64_t last_seq;       /* highest change sequence */
	uint64_t map_size;       /* current LMDB map size, bytes */
	uint64_t used_bytes;     /* pages in use * page size */
	/* since this process opened the store: */
	uint64_t batches;        /* group commits */
	uint64_t batched_writes; /* writes they carried (successful or not) */
	uint64_t batch_size_buckets[STORE_BATCH_BUCKETS]; /* bucket i counts batches of size <= 2^i; the last counts larger */
	uint64_t map_grows;      /* times the map was grown */
	uint64_t flushes;        /* data flushes (fdatasync) of durable commits and explicit syncs */
};

/* Fills *out. The process counters are read without locking (approximate). */
enum xdms_err store_stats_get(struct store *st, struct store_stats *out) XDMS_WUR;

#endif
