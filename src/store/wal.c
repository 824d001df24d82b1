/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead log of a durable store (store.wal_size > 0): one flush per
 * group commit, taken by a small sequential file instead of LMDB's two.
 *
 * Without the log, a durable commit costs LMDB's data flush and then a flush
 * of its meta page (writer.c). With it, the server's writer thread
 * ("the owner" of the log) runs LMDB under MDB_NOSYNC and, for each parent
 * transaction, writes the puts and deletes it made (its "record") to the log
 * before the commit; after the commit it flushes the log and only then
 * answers. LMDB's own files are flushed at checkpoints.
 *
 * A commit under MDB_NOSYNC is visible at once and survives the death of
 * the process (the page cache keeps it), but after a power loss LMDB's file
 * may hold a meta page whose pages never reached the disk. So recovery does
 * not trust it: it writes back the two meta pages saved at the last
 * checkpoint and replays every record written after it. For that to give a
 * sound tree, the checkpoint's pages must still be on disk as they were:
 *
 *   - a checkpoint (owner, inside a write transaction, so that no commit of
 *     any process runs meanwhile) flushes LMDB (mdb_env_sync), reads back
 *     its two meta pages, opens a read transaction on that very snapshot
 *     (the "pin"), writes the header (the meta pages, the snapshot's txnid
 *     T, a new epoch) and flushes it; the next record starts the log again.
 *     The pin is never read: it only keeps LMDB from reusing any page freed
 *     after T, so every page of snapshot T stays as written until the next
 *     checkpoint. (A pin does not hold map_lock: growing the map remaps
 *     under it, which is harmless for a transaction that is never read.)
 *   - a process that writes without the log (xdmsctl while the server runs,
 *     the server's own user and secret transactions, an oversized batch)
 *     makes its commit durable with mdb_env_sync and, while an owner lives,
 *     moves the header's checkpoint to it ("advance"), keeping the owner's
 *     epoch and records. A process that has no pin of its own also advances
 *     inside its write transaction before writing, so that its commit never
 *     reuses a page of the snapshot the header names. (An oversized batch is
 *     one whose record would not fit in the log, or that stores a value over
 *     WAL_VALUE_MAX; the owner checkpoints after it instead.)
 *   - records carry the epoch of the header they follow and the txnid they
 *     committed as. Recovery takes the first record after T, which must be
 *     T + 1, and the ones that follow it one by one, and stops at the first
 *     gap, torn record or stale epoch. A record whose commit failed is voided
 *     (its magic cleared) before the failure is reported.
 *
 * Two byte-range locks on the log (open-file-description locks, so they
 * work between threads and processes alike): byte 0 is the gate every
 * store_open() passes before opening LMDB, held while it recovers; byte 1
 * is held by the owner for its lifetime. Recovery runs only when no owner
 * is alive and no other process has the environment open (LMDB holds a
 * lock on byte 0 of lock.mdb while it does). If another process has it
 * open, the machine has not restarted since the owner died, so the page
 * cache still holds every commit and LMDB's newest state is the truth: the
 * opener then only flushes it and starts a new checkpoint.
 *
 * Checkpoints come every WAL_CKPT_MS with writes or WAL_CKPT_COMMITS
 * commits; just before one, the flusher thread flushes data.mdb without
 * LMDB's write lock, so that the checkpoint's own flush has little left.
 *
 * A clean close (the owner's, or an opener's after recovery) flushes LMDB
 * and marks the header clean: nothing to restore at the next open.
 *
 * Threads: the log's state is under wal->lock; records are appended by the
 * owner's writer thread only, while it holds LMDB's write lock, and every
 * header write happens inside a write transaction, so header writes of all
 * processes are serialized by LMDB itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/store_int.h"

#define WAL_FILE "data.wal"
#define WAL_DATA_FILE "data.mdb"
#define WAL_LMDB_LOCK_FILE "lock.mdb"
#define WAL_MAGIC "XDMSWAL1"
#define WAL_VERSION 1u
#define WAL_FIXED 4096u     /* the header's own fields; the meta pages follow */
#define WAL_HDR_CLEAN_AT 48u /* nonzero: nothing to replay */
#define WAL_HDR_CRC_AT 52u  /* its CRC covers [0, 52) and the meta pages */
#define WAL_GROW_STEP ((size_t)1 << 20)

#define REC_MAGIC 0x58574c52u /* "XWLR" */
/* A transaction that stores a larger value (a document of hundreds of KiB)
 * goes without the log: writing it twice, to the log and to LMDB, costs more
 * than LMDB's own flush and a checkpoint (bench/xcap-http's 1 MiB element
 * PUTs at c=4: 654/s without logging such values, 476/s with). */
#define WAL_VALUE_MAX ((size_t)128 << 10)
#define REC_HDR 32u
#define OP_PUT 1u
#define OP_DEL 2u
#define OP_HDR 12u

/* LMDB 0.9's data file: meta pages 0 and 1, each a page header (16 bytes)
 * then MDB_meta, whose first field is the magic and whose txnid is at 144. */
#define LMDB_META_MAGIC 0xBEEFC0DEu
#define LMDB_META_MAGIC_AT 16u
#define LMDB_META_TXNID_AT 144u

/* A checkpoint is due after this many logged commits or milliseconds, or
 * when the log is half full. Frequent checkpoints keep few pages pinned (LMDB
 * soon reuses the pages commits free, and each checkpoint has little to
 * flush) and recovery short; each costs the writer two small flushes. In
 * bench/xcap-http, checkpoints every 2 s left durable p99 at 26-58 ms and
 * c=256 at 0.78-0.80 of no-sync; every 20 ms, 2-5 ms and 0.86-0.92. */
#define WAL_CKPT_COMMITS 128u
#define WAL_CKPT_MS 20u

/* The ops of the current parent transaction, on the owner's writer thread. */
struct wal_log {
	unsigned char *buf;
	size_t len;
	size_t cap;
	size_t max;   /* beyond this the transaction is written without the log */
	bool is_over;
};

struct store_wal {
	pthread_mutex_t lock;
	int fd;
	int data_fd;          /* data.mdb, read-only: the meta pages at checkpoints */
	char *path;
	char *dir;
	char *data_path;      /* data.mdb */
	size_t psize;         /* LMDB's page size: the size of a meta page */
	size_t hdr_len;       /* WAL_FIXED + 2 meta pages */
	size_t max;           /* the log never grows past this (store.wal_size) */
	size_t file_len;      /* bytes of the file that were written */
	size_t tail;          /* where the next record goes */
	size_t rec_start;     /* the last record, voided if its commit fails */
	bool has_rec;
	bool is_owner;
	bool must_replay;     /* prepared: the meta pages were written back */
	bool is_hdr_dirty;    /* prepared: a header that is not marked clean */
	bool needs_sync;      /* a commit went without the log: flush LMDB before answering */
	uint64_t epoch;
	uint64_t ckpt_txnid;
	uint64_t ckpt_ms;
	uint64_t last_txnid;  /* (owner) the newest commit it made or checkpointed */
	unsigned commits;     /* logged commits since the checkpoint */
	uint64_t data_ino;
	uint64_t data_dev;
	unsigned char *hdr;   /* hdr_len bytes: the header as written last */
	MDB_txn *pin;
	struct wal_log log;

	/* (owner) The flusher thread flushes data.mdb ahead of a checkpoint,
	 * without LMDB's write lock, so that the checkpoint's own flush inside
	 * the writer's transaction finds little left to write. Under lock. */
	pthread_t flusher;
	pthread_cond_t flush_cond;
	bool has_flusher;
	bool is_flusher_stopping;
	uint64_t flush_asked;
	uint64_t flush_done;
	uint64_t preflush;   /* the flush asked for the checkpoint that is due (0: none) */
	bool is_unflushed;   /* records written since the log's last flush */
};

static __thread struct wal_log *tl_log;

/* ---- CRC-32C ------------------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n)
{
	uint64_t c64 = c;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	for (; n; n--, p++)
		c = __builtin_ia32_crc32qi(c, *p);
	return c;
}
#endif

static uint32_t crc_add(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint32_t c = ~crc;

#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(c, p, n);
#endif
	pthread_once(&crc_once, crc_init);
	for (; n; n--, p++)
		c = crc_table[(c ^ *p) & 0xff] ^ (c >> 8);
	return ~c;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* An open-file-description lock on byte @at of @fd: F_WRLCK or F_UNLCK. */
static int range_lock(int fd, off_t at, short type, bool is_wait)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = at;
	fl.l_len = 1;
	for (;;) {
		if (fcntl(fd, is_wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EINTR)
			return errno;
	}
}

/* True when some other open file description holds byte 1 (the owner's). */
static bool owner_alive(const struct store_wal *w)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 1;
	fl.l_len = 1;
	if (fcntl(w->fd, F_OFD_GETLK, &fl))
		return true; /* cannot tell: act as if it were */
	return fl.l_type != F_UNLCK;
}

/* pread or pwrite of all @len bytes at @at: 0 or an errno value. */
static int io_all(int fd, void *buf, size_t len, off_t at, bool is_write)
{
	char *p = buf;

	while (len) {
		ssize_t n = is_write ? pwrite(fd, p, len, at) : pread(fd, p, len, at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t at)
{
	return io_all(fd, (void *)buf, len, at, true);
}

static int pread_all(int fd, void *buf, size_t len, off_t at)
{
	return io_all(fd, buf, len, at, false);
}

/*
 * Whether a process that does not own the log must move the header's
 * checkpoint to its own writes: while an owner lives (its records follow
 * the header's checkpoint), and also when the owner died after this
 * process opened the store and left its header dirty. A recovery would
 * then write the header's older meta pages back over this process's
 * synced commits; the advance names them instead. A clean or unreadable
 * header is never applied, and needs nothing.
 */
static bool must_advance(const struct store_wal *w)
{
	unsigned char fixed[WAL_HDR_CLEAN_AT + 4];

	if (owner_alive(w))
		return true;
	if (pread_all(w->fd, fixed, sizeof(fixed), 0) || memcmp(fixed, WAL_MAGIC, 8))
		return false;
	return store_get_be(fixed + WAL_HDR_CLEAN_AT, 4) == 0;
}

static int datasync(int fd)
{
	return fdatasync(fd) ? errno : 0;
}

/* The txnid a saved meta page names; 0 when it is no LMDB meta page. */
static uint64_t meta_txnid(const unsigned char *page)
{
	uint32_t magic;
	uint64_t txnid;

	memcpy(&magic, page + LMDB_META_MAGIC_AT, 4);
	if (magic != LMDB_META_MAGIC)
		return 0;
	memcpy(&txnid, page + LMDB_META_TXNID_AT, 8);
	return txnid;
}

/* The newer of the two meta pages at @pages: the snapshot they make current. */
static uint64_t metas_txnid(const unsigned char *pages, size_t psize)
{
	uint64_t a = meta_txnid(pages), b = meta_txnid(pages + psize);

	return a > b ? a : b;
}

#define WAL_DBIS 10

/* The store's databases in the order records number them (never reorder). */
static void dbi_table(const struct store *st, MDB_dbi out[WAL_DBIS])
{
	const MDB_dbi all[WAL_DBIS] = { st->dbi_docs, st->dbi_changes, st->dbi_users, st->dbi_names,
					st->dbi_meta, st->dbi_index, st->dbi_subs, st->dbi_jobs,
					st->dbi_secrets, st->dbi_watches };

	memcpy(out, all, sizeof(all));
}

static unsigned dbi_slot(const struct store *st, MDB_dbi dbi)
{
	MDB_dbi all[WAL_DBIS];

	dbi_table(st, all);
	for (unsigned i = 0; i < WAL_DBIS; i++)
		if (all[i] == dbi)
			return i;
	return 0xff;
}

static bool dbi_of_slot(const struct store *st, unsigned slot, MDB_dbi *out)
{
	MDB_dbi all[WAL_DBIS];

	if (slot >= WAL_DBIS)
		return false;
	dbi_table(st, all);
	*out = all[slot];
	return true;
}

/* ---- logging the writer's ops ------------------------------------------------------- */

static void log_op(const struct store *st, unsigned op, MDB_dbi dbi, const MDB_val *k, const MDB_val *v)
{
	struct wal_log *lg = tl_log;
	size_t vlen = v ? v->mv_size : 0;
	size_t need = OP_HDR + k->mv_size + vlen;
	unsigned char *p;

	if (lg->is_over)
		return;
	if (lg->len < REC_HDR)
		lg->len = REC_HDR; /* room for the record's header, filled at append */
	if (need > lg->max + REC_HDR - lg->len || vlen > WAL_VALUE_MAX || k->mv_size > UINT32_MAX) {
		lg->is_over = true; /* too big for the log: this commit goes without it */
		return;
	}
	if (lg->len + need > lg->cap) {
		size_t cap = lg->cap ? lg->cap : 65536;

		while (cap < lg->len + need)
			cap *= 2;
		lg->buf = xrealloc(lg->buf, cap);
		lg->cap = cap;
	}
	p = lg->buf + lg->len;
	p[0] = (unsigned char)op;
	p[1] = (unsigned char)dbi_slot(st, dbi);
	p[2] = p[3] = 0;
	store_put_be(p + 4, k->mv_size, 4);
	store_put_be(p + 8, vlen, 4);
	memcpy(p + OP_HDR, k->mv_data, k->mv_size);
	if (vlen)
		memcpy(p + OP_HDR + k->mv_size, v->mv_data, vlen);
	lg->len += need;
}

int store_kv_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
	int rc = mdb_put(txn, dbi, k, v, flags);

	if (!rc && tl_log && !(flags & MDB_RESERVE))
		log_op(st, OP_PUT, dbi, k, v);
	return rc;
}

void store_kv_reserved(struct store *st, MDB_dbi dbi, const MDB_val *k, const MDB_val *v)
{
	if (tl_log)
		log_op(st, OP_PUT, dbi, k, v);
}

int store_kv_del(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
	int rc = mdb_del(txn, dbi, k, NULL);

	if (!rc && tl_log)
		log_op(st, OP_DEL, dbi, k, NULL);
	return rc;
}

int store_kv_cursor_del(struct store *st, MDB_cursor *cur, MDB_dbi dbi)
{
	MDB_val k, v;
	int rc;

	if (tl_log) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc)
			return rc;
		/* Logged before the delete: the key points into the page it frees. */
		log_op(st, OP_DEL, dbi, &k, NULL);
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			tl_log->len -= OP_HDR + k.mv_size; /* not deleted: not logged */
		return rc;
	}
	return mdb_cursor_del(cur, 0);
}

size_t store_log_mark(void)
{
	return tl_log ? tl_log->len : 0;
}

void store_log_rewind(size_t mark)
{
	if (tl_log && mark <= tl_log->len)
		tl_log->len = mark;
}

/* ---- the header ---------------------------------------------------------------------- */

static void hdr_seal(struct store_wal *w)
{
	uint32_t crc;

	crc = crc_add(0, w->hdr, WAL_HDR_CRC_AT);
	crc = crc_add(crc, w->hdr + WAL_FIXED, w->hdr_len - WAL_FIXED);
	store_put_be(w->hdr + WAL_HDR_CRC_AT, crc, 4);
}

/* Sizes the header for meta pages of @psize bytes (LMDB's page size). */
static void psize_set(struct store_wal *w, size_t psize)
{
	if (psize == w->psize && w->hdr)
		return;
	w->psize = psize;
	w->hdr_len = WAL_FIXED + 2 * psize;
	free(w->hdr);
	w->hdr = xcalloc(1, w->hdr_len);
}

/* The page size a header on file was written with; 0 when there is none. */
static size_t hdr_psize(const struct store_wal *w)
{
	unsigned char fixed[16];
	size_t psize;

	if (pread_all(w->fd, fixed, sizeof(fixed), 0) || memcmp(fixed, WAL_MAGIC, 8))
		return 0;
	psize = store_get_be(fixed + 12, 4);
	return psize >= 512 && psize <= 65536 && !(psize & (psize - 1)) ? psize : 0;
}

/* Reads and checks the header into w->hdr and the fields. false when there is none. */
static bool hdr_load(struct store_wal *w)
{
	unsigned char fixed[WAL_FIXED];
	uint32_t crc;
	size_t psize;

	if (pread_all(w->fd, fixed, sizeof(fixed), 0) || memcmp(fixed, WAL_MAGIC, 8) ||
	    store_get_be(fixed + 8, 4) != WAL_VERSION)
		return false;
	psize = store_get_be(fixed + 12, 4);
	if (psize != w->psize)
		return false;
	memcpy(w->hdr, fixed, WAL_FIXED);
	if (pread_all(w->fd, w->hdr + WAL_FIXED, w->hdr_len - WAL_FIXED, WAL_FIXED))
		return false;
	crc = crc_add(0, w->hdr, WAL_HDR_CRC_AT);
	crc = crc_add(crc, w->hdr + WAL_FIXED, w->hdr_len - WAL_FIXED);
	if (crc != store_get_be(w->hdr + WAL_HDR_CRC_AT, 4))
		return false;
	w->epoch = store_get_be(w->hdr + 16, 8);
	w->ckpt_txnid = store_get_be(w->hdr + 24, 8);
	return true;
}

static bool hdr_is_clean(const struct store_wal *w)
{
	return store_get_be(w->hdr + WAL_HDR_CLEAN_AT, 4) != 0;
}

/*
 * Checkpoint or advance, inside the write transaction @wtxn (no commit of
 * any process can run meanwhile): flushes LMDB, saves its meta pages and
 * writes the header. @new_epoch starts the log again (owner); otherwise the
 * header on file keeps its epoch and records (advance). @repin moves the
 * pin to this snapshot; @is_clean marks a state with nothing to replay.
 * Called with w->lock held. Returns 0, an LMDB code or an errno value.
 */
static int checkpoint_in(struct store *st, MDB_txn *wtxn, bool new_epoch, bool repin, bool is_clean)
{
	struct store_wal *w = st->wal;
	uint64_t t = mdb_txn_id(wtxn) - 1;
	MDB_txn *pin = NULL;
	uint64_t epoch;
	int rc;

	rc = mdb_env_sync(st->env, 1);
	if (rc)
		return rc;
	if (!new_epoch) {
		/* Another process may own the log: keep what its header says. */
		if (!hdr_load(w))
			return 0; /* no header yet: nothing anyone could restore */
		epoch = w->epoch;
		is_clean = hdr_is_clean(w);
	} else {
		epoch = w->epoch + 1;
	}
	rc = pread_all(w->data_fd, w->hdr + WAL_FIXED, 2 * w->psize, 0);
	if (rc)
		return rc;
	if (metas_txnid(w->hdr + WAL_FIXED, w->psize) != t) {
		log_error("store: write-ahead log: LMDB's meta pages name txn %" PRIu64 ", not %" PRIu64,
			  metas_txnid(w->hdr + WAL_FIXED, w->psize), t);
		return MDB_CORRUPTED;
	}
	if (repin) {
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &pin);
		if (rc)
			return rc;
		if (mdb_txn_id(pin) != t) {
			mdb_txn_abort(pin);
			return MDB_CORRUPTED;
		}
	}
	memset(w->hdr, 0, WAL_FIXED);
	memcpy(w->hdr, WAL_MAGIC, 8);
	store_put_be(w->hdr + 8, WAL_VERSION, 4);
	store_put_be(w->hdr + 12, w->psize, 4);
	store_put_be(w->hdr + 16, epoch, 8);
	store_put_be(w->hdr + 24, t, 8);
	store_put_be(w->hdr + 32, w->data_ino, 8);
	store_put_be(w->hdr + 40, w->data_dev, 8);
	store_put_be(w->hdr + WAL_HDR_CLEAN_AT, is_clean ? 1 : 0, 4);
	hdr_seal(w);
	rc = pwrite_all(w->fd, w->hdr, w->hdr_len, 0);
	if (!rc)
		rc = datasync(w->fd);
	if (rc) {
		if (pin)
			mdb_txn_abort(pin);
		return rc;
	}
	if (w->file_len < w->hdr_len)
		w->file_len = w->hdr_len;
	w->epoch = epoch;
	w->ckpt_txnid = t;
	w->last_txnid = t;
	/* Every record written so far belongs to a commit LMDB has now flushed. */
	w->is_unflushed = false;
	if (new_epoch) {
		w->tail = w->hdr_len;
		w->has_rec = false;
		w->commits = 0;
		w->ckpt_ms = monotonic_ms();
		w->preflush = 0;
	}
	if (repin || is_clean) {
		if (w->pin)
			mdb_txn_abort(w->pin);
		w->pin = pin;
	}
	return 0;
}

/* checkpoint_in in the write transaction @txn, taking the log's lock. */
static int checkpoint_locked(struct store *st, MDB_txn *txn, bool new_epoch, bool repin, bool is_clean)
{
	int rc;

	pthread_mutex_lock(&st->wal->lock);
	rc = checkpoint_in(st, txn, new_epoch, repin, is_clean);
	pthread_mutex_unlock(&st->wal->lock);
	return rc;
}

/* Runs checkpoint_in in a write transaction of its own. */
static int checkpoint_run(struct store *st, bool new_epoch, bool repin, bool is_clean)
{
	MDB_txn *txn = NULL;
	int rc;

	for (unsigned tries = 0;; tries++) {
		store_map_enter(st);
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc != MDB_MAP_RESIZED || tries >= STORE_ADOPT_TRIES)
			break;
		store_map_leave(st);
		if (store_map_adopt(st))
			return rc;
	}
	if (!rc) {
		rc = checkpoint_locked(st, txn, new_epoch, repin, is_clean);
		mdb_txn_abort(txn);
	}
	store_map_leave(st);
	return rc;
}

/* ---- the flusher ------------------------------------------------------------------------- */

static void *flusher_main(void *arg)
{
	struct store_wal *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		uint64_t gen;

		while (w->flush_done == w->flush_asked && !w->is_flusher_stopping)
			pthread_cond_wait(&w->flush_cond, &w->lock);
		if (w->is_flusher_stopping)
			break;
		gen = w->flush_asked;
		pthread_mutex_unlock(&w->lock);
		/* An error here is LMDB's to see too (the kernel reports a writeback
		 * error to every open file), at the checkpoint's mdb_env_sync. */
		(void)fdatasync(w->data_fd);
		pthread_mutex_lock(&w->lock);
		w->flush_done = gen;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void flusher_stop(struct store_wal *w)
{
	if (!w->has_flusher)
		return;
	pthread_mutex_lock(&w->lock);
	w->is_flusher_stopping = true;
	pthread_cond_signal(&w->flush_cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->flusher, NULL);
	w->has_flusher = false;
}

static bool thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	bool is_ok;

	/* Signals belong to the program's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	is_ok = pthread_create(t, NULL, fn, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (is_ok)
		(void)pthread_setname_np(*t, name);
	return is_ok;
}

/* ---- opening and recovery ----------------------------------------------------------- */

static void wal_free(struct store_wal *w)
{
	if (!w)
		return;
	flusher_stop(w);
	pthread_cond_destroy(&w->flush_cond);
	if (w->fd >= 0)
		close(w->fd); /* releases both range locks */
	if (w->data_fd >= 0)
		close(w->data_fd);
	free(w->path);
	free(w->dir);
	free(w->data_path);
	free(w->hdr);
	free(w->log.buf);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* True when some process has the LMDB environment in @dir open. */
static bool env_in_use(const char *dir)
{
	char *path = xasprintf("%s/%s", dir, WAL_LMDB_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	bool is_used = false;

	free(path);
	if (fd < 0)
		return false;
	/* LMDB holds a POSIX lock on byte 0 of lock.mdb in every process that
	 * has the environment open; an open-file-description lock conflicts. */
	if (range_lock(fd, 0, F_WRLCK, false))
		is_used = true;
	close(fd);
	return is_used;
}

/* Writes the saved meta pages back into data.mdb (recovery, LMDB closed). */
static int metas_restore(struct store_wal *w)
{
	int fd = open(w->data_path, O_RDWR | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return errno;
	rc = pwrite_all(fd, w->hdr + WAL_FIXED, 2 * w->psize, 0);
	if (!rc)
		rc = fsync(fd) ? errno : 0;
	close(fd);
	return rc;
}

enum xdms_err store_wal_prepare(struct store *st, const char *dir, size_t wal_size)
{
	char *path = xasprintf("%s/%s", dir, WAL_FILE);
	struct store_wal *w;
	struct stat sb;
	size_t psize;
	long psz;
	int fd, rc;

	fd = open(path, O_RDWR | O_CLOEXEC | (wal_size ? O_CREAT : 0), 0600);
	if (fd < 0) {
		free(path);
		if (errno == ENOENT && !wal_size)
			return XDMS_ERR_OK; /* no log, and none to recover */
		log_error("store: cannot open the write-ahead log in %s: %s", dir, strerror(errno));
		return XDMS_ERR_IO;
	}
	w = xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->flush_cond, NULL);

	w->fd = fd;
	w->data_fd = -1;
	w->path = path;
	w->dir = xstrdup(dir);
	w->data_path = xasprintf("%s/%s", dir, WAL_DATA_FILE);
	/* Until LMDB is open (store_wal_finish), the page size the header
	 * was written with, which is what recovery writes back. */
	psz = sysconf(_SC_PAGESIZE);
	psize = hdr_psize(w);
	psize_set(w, psize ? psize : psz > 0 ? (size_t)psz : 4096);
	w->max = wal_size;
	if (fstat(fd, &sb) == 0)
		w->file_len = (size_t)sb.st_size;
	st->wal = w;

	rc = range_lock(fd, 0, F_WRLCK, true);
	if (rc) {
		log_error("store: cannot lock the write-ahead log %s: %s", path, strerror(rc));
		goto fail;
	}
	if (range_lock(fd, 1, F_WRLCK, false)) {
		/* Its owner is alive: no recovery; this process writes without it. */
		range_lock(fd, 0, F_UNLCK, false);
		return XDMS_ERR_OK;
	}
	w->is_owner = true; /* for now: store_wal_finish() decides whether it stays */
	if (!hdr_load(w)) {
		unsigned char magic[8];

		/* Every header is written after LMDB was flushed, inside a write
		 * transaction: one the power cut short leaves LMDB's own state
		 * sound and as new as any answered write. */
		if (!pread_all(fd, magic, sizeof(magic), 0) && !memcmp(magic, WAL_MAGIC, 8))
			log_warn("store: the header of the write-ahead log in %s is damaged (a checkpoint cut "
				 "short); LMDB's own state, flushed before it, is kept",
				 dir);
		return XDMS_ERR_OK;
	}
	if (hdr_is_clean(w))
		return XDMS_ERR_OK;
	w->is_hdr_dirty = true;
	rc = stat(w->data_path, &sb);
	if (rc || (uint64_t)sb.st_ino != store_get_be(w->hdr + 32, 8) ||
	    (uint64_t)sb.st_dev != store_get_be(w->hdr + 40, 8)) {
		log_warn("store: the write-ahead log in %s belongs to another data.mdb; not replayed", dir);
		return XDMS_ERR_OK;
	}
	if (env_in_use(dir)) {
		/* The machine did not restart since the owner died: LMDB's newest
		 * state is in the page cache, and another process is using it. */
		log_info("store: write-ahead log: environment open elsewhere, keeping LMDB's newest state");
		return XDMS_ERR_OK;
	}
	if (metas_txnid(w->hdr + WAL_FIXED, w->psize) != w->ckpt_txnid) {
		log_error("store: the write-ahead log in %s names txn %" PRIu64 " but saved meta pages of %" PRIu64,
			  dir, w->ckpt_txnid, metas_txnid(w->hdr + WAL_FIXED, w->psize));
		goto corrupt;
	}
	rc = metas_restore(w);
	if (rc) {
		log_error("store: cannot restore LMDB's checkpoint from the write-ahead log: %s", strerror(rc));
		goto fail;
	}
	w->must_replay = true;
	return XDMS_ERR_OK;
corrupt:
	wal_free(w);
	st->wal = NULL;
	return XDMS_ERR_CORRUPT;
fail:
	wal_free(w);
	st->wal = NULL;
	return XDMS_ERR_IO;
}

/* Applies one record's ops in @txn. */
static int replay_ops(struct store *st, MDB_txn *txn, const unsigned char *p, size_t len)
{
	while (len) {
		size_t klen, vlen;
		MDB_val k, v;
		MDB_dbi dbi;
		int rc;

		if (len < OP_HDR)
			return MDB_CORRUPTED;
		klen = store_get_be(p + 4, 4);
		vlen = store_get_be(p + 8, 4);
		if (klen > len - OP_HDR || vlen > len - OP_HDR - klen || !dbi_of_slot(st, p[1], &dbi))
			return MDB_CORRUPTED;
		k.mv_size = klen;
		k.mv_data = (void *)(p + OP_HDR);
		v.mv_size = vlen;
		v.mv_data = (void *)(p + OP_HDR + klen);
		if (p[0] == OP_PUT)
			rc = mdb_put(txn, dbi, &k, &v, 0);
		else if (p[0] == OP_DEL)
			rc = mdb_del(txn, dbi, &k, NULL);
		else
			rc = MDB_CORRUPTED;
		if (rc == MDB_NOTFOUND && p[0] == OP_DEL)
			rc = 0;
		if (rc)
			return rc;
		p += OP_HDR + klen + vlen;
		len -= OP_HDR + klen + vlen;
	}
	return 0;
}

/* Applies one record in a transaction of its own, growing the map as needed. */
static int replay_one(struct store *st, const unsigned char *payload, size_t len)
{
	for (unsigned tries = 0; tries < 64; tries++) {
		size_t seen;
		MDB_txn *txn;
		int rc;

		store_map_enter(st);
		seen = st->map_size;
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (!rc) {
			rc = replay_ops(st, txn, payload, len);
			if (rc)
				mdb_txn_abort(txn);
			else
				rc = mdb_txn_commit(txn);
		}
		store_map_leave(st);
		if (rc != MDB_MAP_FULL)
			return rc;
		if (store_map_grow(st, seen))
			return rc;
	}
	return MDB_MAP_FULL;
}

/* Replays the records after the checkpoint; returns how many, or -1. */
static long replay(struct store *st)
{
	struct store_wal *w = st->wal;
	uint64_t next = w->ckpt_txnid + 1;
	unsigned char rh[REC_HDR];
	unsigned char *buf = NULL;
	size_t at = w->hdr_len, cap = 0;
	long n = 0;

	while (at + REC_HDR <= w->file_len && !pread_all(w->fd, rh, REC_HDR, (off_t)at)) {
		size_t len = store_get_be(rh + 4, 4);
		uint64_t txnid = store_get_be(rh + 16, 8);
		uint32_t crc;
		int rc;

		if (store_get_be(rh, 4) != REC_MAGIC || store_get_be(rh + 8, 8) != w->epoch ||
		    len > w->file_len - at - REC_HDR)
			break;
		if (len > cap) {
			buf = xrealloc(buf, len);
			cap = len;
		}
		if (pread_all(w->fd, buf, len, (off_t)(at + REC_HDR)))
			break;
		crc = crc_add(crc_add(0, rh, 24), buf, len);
		if (crc != store_get_be(rh + 24, 4))
			break; /* torn: written, never flushed, never answered */
		at += REC_HDR + len;
		if (txnid < next)
			continue; /* already in the checkpoint (an advance moved it) */
		if (txnid != next)
			break; /* a gap: nothing after it was answered */
		rc = replay_one(st, buf, len);
		if (rc) {
			log_error("store: write-ahead log: replaying txn %" PRIu64 " failed: %s", txnid,
				  mdb_strerror(rc));
			free(buf);
			return -1;
		}
		next++;
		n++;
	}
	free(buf);
	return n;
}

enum xdms_err store_wal_finish(struct store *st, bool is_owner_wanted)
{
	struct store_wal *w = st->wal;
	struct stat sb;
	long n = 0;
	int rc;

	if (!w)
		return XDMS_ERR_OK;
	if (w->data_fd < 0) {
		w->data_fd = open(w->data_path, O_RDONLY | O_CLOEXEC);
		if (w->data_fd < 0 || fstat(w->data_fd, &sb)) {
			log_error("store: write-ahead log: cannot open data.mdb: %s", strerror(errno));
			return XDMS_ERR_IO;
		}
		w->data_ino = (uint64_t)sb.st_ino;
		w->data_dev = (uint64_t)sb.st_dev;
	}
	{
		MDB_stat ms;

		/* LMDB's own page size, which a data file made elsewhere may not share
		 * with this machine: its meta pages are that size. */
		rc = mdb_env_stat(st->env, &ms);
		if (rc)
			return store_err_from_mdb(rc);
		psize_set(w, ms.ms_psize);
	}
	if (!w->is_owner)
		return XDMS_ERR_OK; /* another process owns it */
	if (w->must_replay) {
		/* Pin the restored checkpoint while replaying, so that a crash now
		 * finds its pages as they were. */
		unsigned flags = 0;

		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &w->pin);
		if (rc) {
			w->pin = NULL;
			log_error("store: write-ahead log: %s", mdb_strerror(rc));
			return store_err_from_mdb(rc);
		}
		/* The checkpoint after the replay flushes it all at once; an opener
		 * with store.sync=false keeps its MDB_NOSYNC. */
		(void)mdb_env_get_flags(st->env, &flags);
		mdb_env_set_flags(st->env, MDB_NOSYNC, 1);
		n = replay(st);
		if (!(flags & MDB_NOSYNC))
			mdb_env_set_flags(st->env, MDB_NOSYNC, 0);
		if (n < 0)
			return XDMS_ERR_CORRUPT;
		log_info("store: write-ahead log: restored txn %" PRIu64 " and replayed %ld commits", w->ckpt_txnid,
			 n);
		w->must_replay = false;
	}
	if (is_owner_wanted) {
		rc = checkpoint_run(st, true, true, false);
		if (!rc)
			mdb_env_set_flags(st->env, MDB_NOSYNC, 1);
	} else {
		/* A clean header (or none) needs no new one: LMDB's state is synced. */
		rc = w->must_replay || w->is_hdr_dirty ? checkpoint_run(st, true, false, true) : 0;
		w->is_owner = false;
		range_lock(w->fd, 1, F_UNLCK, false);
	}
	range_lock(w->fd, 0, F_UNLCK, false);
	if (rc) {
		log_error("store: write-ahead log checkpoint failed: %s", rc > 0 ? strerror(rc) : mdb_strerror(rc));
		return rc > 0 ? XDMS_ERR_IO : store_err_from_mdb(rc);
	}
	if (w->is_owner) {
		w->log.max = w->max > w->hdr_len + REC_HDR ? w->max - w->hdr_len - REC_HDR : 0;
		w->ckpt_ms = monotonic_ms();
		w->has_flusher = thread_start(&w->flusher, flusher_main, w, "xdms-walflush");
	}
	return XDMS_ERR_OK;
}

void store_wal_close(struct store *st)
{
	struct store_wal *w = st->wal;

	if (!w)
		return;
	if (w->is_owner) {
		flusher_stop(w);
		mdb_env_set_flags(st->env, MDB_NOSYNC, 0);
		if (checkpoint_run(st, true, false, true))
			log_error("store: the write-ahead log could not be closed cleanly; it is replayed at the next start");
	}
	store_wal_free(st);
}

bool store_wal_is_owner(const struct store *st)
{
	return st->wal && st->wal->is_owner;
}

void store_wal_thread_attach(struct store *st)
{
	tl_log = store_wal_is_owner(st) ? &st->wal->log : NULL;
}

/* ---- the writer ------------------------------------------------------------------------ */

int store_wal_pass_begin(struct store *st, MDB_txn *parent)
{
	struct store_wal *w = st->wal;
	bool is_ready;

	if (!w)
		return 0;
	if (!w->is_owner)
		return store_wal_txn_begun(st, parent);
	w->log.len = REC_HDR;
	w->log.is_over = false;
	w->has_rec = false;
	/* Another transaction committed since our last (xdmsctl, or a store_txn_run
	 * thread that has not advanced yet): our records must not follow a gap.
	 * A log three quarters full cannot wait for the flusher either. */
	if (mdb_txn_id(parent) != w->last_txnid + 1 || w->tail - w->hdr_len > w->max / 4 * 3)
		return checkpoint_locked(st, parent, true, true, false);
	if (w->commits < WAL_CKPT_COMMITS && w->tail - w->hdr_len <= w->max / 2 &&
	    (!w->commits || monotonic_ms() - w->ckpt_ms < WAL_CKPT_MS))
		return 0;
	/* Due: the flusher writes LMDB's pages out first, while we go on. */
	pthread_mutex_lock(&w->lock);
	if (!w->preflush || !w->has_flusher) {
		w->preflush = ++w->flush_asked;
		pthread_cond_signal(&w->flush_cond);
	}
	is_ready = !w->has_flusher || w->flush_done >= w->preflush;
	pthread_mutex_unlock(&w->lock);
	return is_ready ? checkpoint_locked(st, parent, true, true, false) : 0;
}

/* Writes zeros up to @to (at most the log's size), so that a flush of the
 * log never has blocks to allocate. w->lock held. */
static int grow_to(struct store_wal *w, size_t to)
{
	static const unsigned char zeros[65536];
	int rc = 0;

	to = (to + WAL_GROW_STEP - 1) / WAL_GROW_STEP * WAL_GROW_STEP;
	if (to > w->max)
		to = w->max;
	while (!rc && w->file_len < to) {
		size_t n = to - w->file_len < sizeof(zeros) ? to - w->file_len : sizeof(zeros);

		rc = pwrite_all(w->fd, zeros, n, (off_t)w->file_len);
		if (!rc)
			w->file_len += n;
	}
	return rc;
}

int store_wal_pass_append(struct store *st, MDB_txn *parent)
{
	struct store_wal *w = st->wal;
	struct wal_log *lg;
	size_t rec_len;
	unsigned char *rh;
	int rc = 0;

	if (!w || !w->is_owner)
		return 0;
	lg = &w->log;
	if (lg->len <= REC_HDR && !lg->is_over)
		return 0; /* wrote nothing */
	rec_len = lg->len;
	if (lg->is_over || rec_len > w->max - w->hdr_len) {
		w->needs_sync = true; /* too big: LMDB's own flush before the answer */
		return 0;
	}
	pthread_mutex_lock(&w->lock);
	if (w->tail + rec_len > w->max)
		rc = checkpoint_in(st, parent, true, true, false);
	if (!rc && w->tail + rec_len > w->file_len)
		rc = grow_to(w, w->tail + rec_len);
	if (!rc) {
		rh = lg->buf;
		memset(rh, 0, REC_HDR);
		store_put_be(rh, REC_MAGIC, 4);
		store_put_be(rh + 4, rec_len - REC_HDR, 4);
		store_put_be(rh + 8, w->epoch, 8);
		store_put_be(rh + 16, mdb_txn_id(parent), 8);
		store_put_be(rh + 24, crc_add(crc_add(0, rh, 24), rh + REC_HDR, rec_len - REC_HDR), 4);
		rc = pwrite_all(w->fd, rh, rec_len, (off_t)w->tail);
	}
	if (!rc) {
		w->rec_start = w->tail;
		w->tail += rec_len;
		w->has_rec = true;
		w->commits++;
		w->is_unflushed = true;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void store_wal_pass_end(struct store *st, uint64_t txnid, int rc)
{
	struct store_wal *w = st->wal;
	static const unsigned char zero[4];

	if (!w || !w->is_owner)
		return;
	if (!rc) {
		pthread_mutex_lock(&w->lock);
		if (txnid > w->last_txnid)
			w->last_txnid = txnid; /* a checkpoint in between may have named a later one */
		pthread_mutex_unlock(&w->lock);
		return;
	}
	if (!w->has_rec)
		return;
	pthread_mutex_lock(&w->lock);
	/* The commit failed and its writers hear so: the record must never replay. */
	if (pwrite_all(w->fd, zero, sizeof(zero), (off_t)w->rec_start) || datasync(w->fd))
		log_error("store: cannot void a write-ahead log record: %s", strerror(errno));
	w->tail = w->rec_start;
	w->has_rec = false;
	w->commits--;
	pthread_mutex_unlock(&w->lock);
}

bool store_wal_in_use(const struct store *st)
{
	return st->wal && (st->wal->is_owner || must_advance(st->wal));
}

int store_wal_flush(struct store *st)
{
	struct store_wal *w = st->wal;
	bool is_due;
	int rc = 0;

	if (!w)
		return 0;
	if (!w->is_owner) {
		rc = mdb_env_sync(st->env, 1);
		if (!rc && must_advance(w))
			rc = checkpoint_run(st, false, false, false);
		return rc;
	}
	if (w->needs_sync) {
		/* Written without the log: a checkpoint flushes LMDB and names it. */
		w->needs_sync = false;
		return checkpoint_run(st, true, true, false);
	}
	pthread_mutex_lock(&w->lock);
	is_due = w->is_unflushed;
	w->is_unflushed = false;
	pthread_mutex_unlock(&w->lock);
	if (is_due) {
		rc = datasync(w->fd);
		if (rc) {
			/* The records may be lost, and a later flush of the log could
			 * succeed without them: the next batch is answered only after a
			 * checkpoint, LMDB's own flush, which starts the log again. */
			log_error("store: flushing the write-ahead log failed: %s", strerror(rc));
			w->needs_sync = true;
		}
	}
	return rc;
}

int store_wal_txn_begun(struct store *st, MDB_txn *txn)
{
	/* No pin here: while an owner lives, name a synced state that no
	 * commit of ours will touch before we write. The owner's pin covers
	 * its own transactions. */
	if (!st->wal || st->wal->is_owner || !must_advance(st->wal))
		return 0;
	return checkpoint_locked(st, txn, false, false, false);
}

int store_wal_txn_done(struct store *st)
{
	struct store_wal *w = st->wal;

	if (!w || (!w->is_owner && !must_advance(w)))
		return 0;
	return checkpoint_run(st, w->is_owner, w->is_owner, false);
}

void store_wal_free(struct store *st)
{
	if (!st->wal)
		return;
	if (st->wal->pin)
		mdb_txn_abort(st->wal->pin);
	st->wal->pin = NULL;
	wal_free(st->wal);
	st->wal = NULL;
}
