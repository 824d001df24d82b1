/* SPDX-License-Identifier: MIT */
/*
 * The writer thread and its group commit.
 *
 * Callers queue struct store_write objects (a FIFO linked through
 * w->next_, under q_lock). The one writer thread takes up to batch_max of
 * them, opens ONE parent write transaction and runs each write in its own
 * nested transaction: read the current document, let w->apply decide, store
 * or delete the document with a fresh ETag, append the change record, run
 * the commit hook, commit the nested transaction. A write that fails aborts
 * its nested transaction only. The parent is then committed once, so the
 * whole batch costs one fsync; if that commit fails, every write of the
 * batch that had succeeded reports the error and nothing is visible.
 *
 * The ETag counter and the last change sequence are read from meta at the
 * start of each parent transaction (xdmsctl may have written in between)
 * and stored back in it before the commit, so they only grow in committed
 * transactions and ETags are never reused.
 *
 * A full map (MDB_MAP_FULL) is invisible to callers while the map may still
 * grow: the writes already done in the parent are committed, the map is
 * doubled with no transaction open (store_map_grow), and the write that ran
 * out of room is run again (its apply is called again). When the map is at
 * its maximum the write fails FULL and the batch goes on without it. A
 * commit that runs out of room is retried whole after growing.
 *
 * Durable mode opens LMDB with MDB_NOMETASYNC: a commit syncs its data
 * pages but not its meta page, which the next sync flushes. A batch is
 * therefore acknowledged one commit later (the next batch's data sync made
 * it durable) or, when nothing else is queued, after an explicit
 * mdb_env_sync(). Acknowledging means, on the writer thread: every w->done,
 * then every commit listener with the highest sequence committed, then the
 * threads waiting in store_write_run() are woken. A busy writer pays one
 * flush per group commit instead of LMDB's usual two; nothing here blocks
 * except those flushes.
 *
 * With the write-ahead log (wal.c), the writer that owns it logs each
 * parent transaction before its commit (LMDB under MDB_NOSYNC) and answers
 * each batch right after the log's flush: nothing is pending there.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/store_int.h"

/* Why a pass over the batch stopped before its end. */
enum pass_stop {
	PASS_STOP_NONE,
	PASS_STOP_GROW,  /* the next write needs a bigger map */
	PASS_STOP_SPLIT, /* the next write needs a fresh parent transaction */
};

/* One parent transaction over a slice of the batch. */
struct pass {
	struct store *st;
	MDB_txn *parent;
	size_t map_seen;       /* map size the transaction ran with */
	uint64_t etag_counter; /* as committed so far in this parent */
	uint64_t last_seq;
	unsigned settled;      /* writes whose result is decided (before commit) */
	unsigned ok_count;
	enum pass_stop stop;
	bool has_begun;
};

static void write_out_reset(struct store_write *w)
{
	w->is_created = false;
	w->etag[0] = '\0';
	w->prev_etag[0] = '\0';
	w->seq = 0;
}

/*
 * Formats "<prefix>-<instance>-<counter>". The prefix is cosmetic (the
 * instance id and the counter make the ETag unique), so instead of failing
 * a write it is cut to fit STORE_ETAG_MAX and any byte that could break a
 * quoted HTTP header or an XML attribute becomes '_'.
 */
static void etag_format(char *out, const char *prefix, uint32_t instance_id, uint64_t counter)
{
	char p[STORE_ETAG_PREFIX_MAX + 1];
	size_t n;

	for (n = 0; prefix[n] && n < STORE_ETAG_PREFIX_MAX; n++) {
		char c = prefix[n];
		bool is_safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';

		p[n] = is_safe ? c : '_';
	}
	p[n] = '\0';
	snprintf(out, STORE_ETAG_MAX, "%s-%08" PRIx32 "-%016" PRIx64, p, instance_id, counter);
}

/* A record write (store.h): the hook alone in a nested transaction. */
static enum xdms_err record_one(struct pass *p, struct store_write *w, int *mdb_rc)
{
	struct store_txn stxn = { .st = p->st };
	size_t mark = store_log_mark();
	enum xdms_err err;
	int rc;

	write_out_reset(w);
	rc = mdb_txn_begin(p->st->env, p->parent, 0, &stxn.txn);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	err = w->hook(w, &stxn, NULL, NULL);
	if (err) {
		mdb_txn_abort(stxn.txn);
		goto out;
	}
	rc = mdb_txn_commit(stxn.txn);
	err = store_err_from_mdb(rc);
out:
	if (err)
		store_log_rewind(mark); /* the nested transaction left nothing */
	w->result = err;
	*mdb_rc = rc;
	return err;
}

/*
 * Runs one write in a nested transaction of p->parent. Returns its result;
 * *mdb_rc gets the LMDB code behind a failure (0 otherwise).
 */
static enum xdms_err write_one(struct pass *p, struct store_write *w, int *mdb_rc)
{
	struct store *st = p->st;
	struct store_doc cur, new_doc;
	const struct store_doc *curp = NULL;
	struct store_change change;
	struct store_txn stxn;
	uint64_t counter = p->etag_counter;
	uint64_t seq = p->last_seq + 1;
	uint64_t now = store_now_ms();
	size_t mark = store_log_mark();
	MDB_txn *txn = NULL;
	enum xdms_err err;
	size_t sel_len;
	int rc = 0;

	if (!w->selector && !w->apply && w->hook)
		return record_one(p, w, mdb_rc);
	write_out_reset(w);
	if (!w->selector || !w->apply || !w->etag_prefix) {
		err = XDMS_ERR_INVAL;
		goto out;
	}
	sel_len = strlen(w->selector);
	if (sel_len == 0) {
		err = XDMS_ERR_INVAL;
		goto out;
	}
	if (sel_len > st->max_key) {
		err = XDMS_ERR_TOOBIG;
		goto out;
	}
	rc = mdb_txn_begin(st->env, p->parent, 0, &txn);
	if (rc) {
		txn = NULL;
		err = store_err_from_mdb(rc);
		goto out;
	}
	/* A user being moved to another shard is read-only here (move.c). */
	if (!w->is_move) {
		err = store_move_guard(st, txn, w->selector);
		if (err)
			goto out;
	}
	err = store_doc_txn_get(st, txn, w->selector, sel_len, &cur);
	if (!err)
		curp = &cur;
	else if (err != XDMS_ERR_NOTFOUND)
		goto out;
	err = w->apply(w, curp);
	if (err)
		goto out;
	if (curp)
		snprintf(w->prev_etag, sizeof(w->prev_etag), "%s", cur.etag);
	if (w->is_delete) {
		if (!curp) {
			err = XDMS_ERR_NOTFOUND;
			goto out;
		}
		rc = store_doc_txn_del(st, txn, w->selector, sel_len);
	} else {
		if (!w->new_data && w->new_len) {
			err = XDMS_ERR_INVAL;
			goto out;
		}
		if (w->keep_etag && w->keep_etag[0] && strlen(w->keep_etag) < sizeof(w->etag)) {
			snprintf(w->etag, sizeof(w->etag), "%s", w->keep_etag);
		} else if (w->keep_etag) {
			err = XDMS_ERR_INVAL;
			goto out;
		} else {
			counter++;
			etag_format(w->etag, w->etag_prefix, st->instance_id, counter);
		}
		rc = store_doc_txn_put(st, txn, w->selector, sel_len, w->etag, now, w->new_data,
				       w->new_len);
	}
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	change.seq = seq;
	change.time_ms = now;
	change.selector = w->selector;
	change.prev_etag = w->prev_etag;
	change.new_etag = w->etag;
	change.detail = w->detail;
	change.detail_len = w->detail_len;
	change.is_move = w->is_move;
	rc = store_change_append(st, txn, &change);
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	if (w->hook) {
		new_doc.etag = w->etag;
		new_doc.mtime_ms = now;
		new_doc.data = w->new_data;
		new_doc.data_len = w->new_len;
		stxn.st = st;
		stxn.txn = txn;
		/* curp still points at the parent's (or the map's) copy: the put above
		 * wrote to pages of this nested transaction only. */
		err = w->hook(w, &stxn, curp, w->is_delete ? NULL : &new_doc);
		if (err)
			goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		err = store_err_from_mdb(rc);
		goto out;
	}
	w->is_created = !curp;
	w->seq = seq;
	p->etag_counter = counter;
	p->last_seq = seq;
out:
	if (txn)
		mdb_txn_abort(txn);
	if (err) {
		store_log_rewind(mark);
		write_out_reset(w);
	}
	w->result = err;
	*mdb_rc = rc;
	return err;
}

/* Gives @err to every write of ws[0..n) that had succeeded. */
static void writes_fail(struct store_write **ws, unsigned n, enum xdms_err err)
{
	for (unsigned i = 0; i < n; i++) {
		if (ws[i]->result == XDMS_ERR_OK) {
			ws[i]->result = err;
			write_out_reset(ws[i]);
		}
	}
}

#define FEED_PRUNE_MAX 256 /* change records deleted per group commit, at most */

/*
 * Deletes the head of the change feed, a little per commit so that it keeps
 * pace with the writes, in a nested transaction: when the deletions cannot
 * be done (no room for copied pages), they are dropped and wait for the next
 * commit, and the writes of the batch are not affected.
 */
static void feed_prune(struct store *st, MDB_txn *parent)
{
	uint64_t now = store_now_ms();
	size_t mark = store_log_mark();
	MDB_txn *txn;

	if (mdb_txn_begin(st->env, parent, 0, &txn))
		return;
	if (store_changes_prune(st, txn, atomic_load(&st->feed_floor),
				now > st->feed_retention_ms ? now - st->feed_retention_ms : 0, FEED_PRUNE_MAX)) {
		mdb_txn_abort(txn);
		store_log_rewind(mark);
		return;
	}
	if (mdb_txn_commit(txn))
		store_log_rewind(mark); /* the commit freed the nested transaction; the parent goes on */
}

/*
 * Runs ws[0..n) in one parent transaction, stopping early when a write needs
 * a bigger map or a fresh transaction. Returns the LMDB code of the parent
 * (begin, meta or commit); 0 when it committed or had nothing to commit.
 */
static int pass_run(struct pass *p, struct store_write **ws, unsigned n)
{
	struct store *st = p->st;
	uint64_t txnid;
	enum xdms_err err;
	unsigned i;
	int rc, wrc;

	p->parent = NULL;
	p->settled = 0;
	p->ok_count = 0;
	p->stop = PASS_STOP_NONE;
	p->has_begun = false;
	store_map_enter(st);
	p->map_seen = st->map_size;
	rc = mdb_txn_begin(st->env, NULL, 0, &p->parent);
	if (rc) {
		p->parent = NULL;
		goto out;
	}
	p->has_begun = true;
	rc = store_wal_pass_begin(st, p->parent);
	if (rc)
		goto out;
	rc = store_meta_get(st, p->parent, STORE_META_ETAG_COUNTER, 8, &p->etag_counter);
	if (!rc)
		rc = store_meta_get(st, p->parent, STORE_META_LAST_SEQ, 8, &p->last_seq);
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		err = write_one(p, ws[i], &wrc);
		if (err == XDMS_ERR_FULL && p->map_seen < st->map_size_max) {
			p->stop = PASS_STOP_GROW;
			break;
		}
		if (wrc == MDB_TXN_FULL) {
			/* Too many dirty pages for one transaction: alone, it can never fit. */
			if (i > 0) {
				p->stop = PASS_STOP_SPLIT;
				break;
			}
			ws[i]->result = XDMS_ERR_TOOBIG;
		}
		if (!err)
			p->ok_count++;
	}
	p->settled = i;
	if (p->ok_count == 0)
		goto out; /* nothing to commit: no fsync */
	if (st->feed_retention_ms)
		feed_prune(st, p->parent);
	rc = store_meta_put(st, p->parent, STORE_META_ETAG_COUNTER, 8, p->etag_counter);
	if (!rc)
		rc = store_meta_put(st, p->parent, STORE_META_LAST_SEQ, 8, p->last_seq);
	if (!rc)
		rc = store_wal_pass_append(st, p->parent);
	if (rc)
		goto out;
	txnid = mdb_txn_id(p->parent);
	rc = mdb_txn_commit(p->parent);
	p->parent = NULL;
	store_wal_pass_end(st, txnid, rc);
	if (!rc && st->is_sync && !store_wal_is_owner(st))
		atomic_fetch_add_explicit(&st->n_flushes, 1, memory_order_relaxed);
out:
	if (p->parent)
		mdb_txn_abort(p->parent);
	p->parent = NULL;
	store_map_leave(st);
	return rc;
}

/*
 * Runs a batch to its end. Returns true when something committed (a record
 * write commits without a change sequence); *last_seq gets the highest
 * sequence in the feed after it (0 if the feed has none).
 */
static bool batch_run(struct store *st, struct store_write **ws, unsigned n, uint64_t *last_seq)
{
	struct pass p = { .st = st };
	unsigned start = 0, adopts = 0;
	bool is_committed = false;
	enum xdms_err err;
	int rc;

	while (start < n) {
		rc = pass_run(&p, ws + start, n - start);
		if (!p.has_begun) {
			/* Another process grew the map past ours: adopt its size and retry. */
			if (rc == MDB_MAP_RESIZED && adopts++ < STORE_ADOPT_TRIES && !store_map_adopt(st))
				continue;
			for (unsigned i = start; i < n; i++) {
				write_out_reset(ws[i]);
				ws[i]->result = store_err_from_mdb(rc);
			}
			break;
		}
		if (rc == MDB_MAP_FULL && store_map_grow(st, p.map_seen) == XDMS_ERR_OK)
			continue; /* the commit ran out of room: run the same writes again */
		if (rc && p.settled == 0 && p.stop == PASS_STOP_NONE) {
			/* The parent failed before any write ran (reading meta). */
			for (unsigned i = start; i < n; i++) {
				write_out_reset(ws[i]);
				ws[i]->result = store_err_from_mdb(rc);
			}
			break;
		}
		if (rc) {
			writes_fail(ws + start, p.settled, store_err_from_mdb(rc));
		} else if (p.ok_count) {
			*last_seq = p.last_seq;
			is_committed = true;
		}
		start += p.settled;
		if (p.stop == PASS_STOP_GROW) {
			err = store_map_grow(st, p.map_seen);
			if (err) {
				ws[start]->result = err;
				start++;
			}
		}
		/* PASS_STOP_SPLIT: ws[start] simply starts the next parent transaction. */
	}
	return is_committed;
}

static void stats_count_batch(struct store *st, unsigned n)
{
	unsigned bucket = 0;

	while (bucket + 1 < STORE_BATCH_BUCKETS && n > (1u << bucket))
		bucket++;
	atomic_fetch_add_explicit(&st->n_batches, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->n_batched_writes, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->n_buckets[bucket], 1, memory_order_relaxed);
}

/* How long a busy writer waits for more writes before flushing alone. */
#define STORE_GROUP_WAIT_NS 300000L

/* How long the writer waits for the durable write that usually follows a
 * write told at its commit (store.h) before flushing that one alone. */
#define STORE_COMMIT_ACK_WAIT_NS 2000000L

/* One taken batch, from queue to acknowledgement. */
struct batch {
	struct store_write **ws;
	struct store_waiter **waiters;
	unsigned n;
	bool has_waiters;
	bool is_committed; /* something of it committed: it waits for a flush */
	bool has_commit_acks; /* some writes were told at their commit (ws[i] NULL now) */
	unsigned n_left;      /* writes still to be told */
	uint64_t last_seq;
};

/*
 * Tells the writers of @b their outcome: done callbacks, the commit listeners,
 * then the threads waiting in store_write_run(). Only called once the batch
 * is durable.
 */
static void batch_ack(struct store *st, struct batch *b)
{
	struct store_listener listeners[STORE_LISTENERS_MAX];
	unsigned listener_count;

	if (!b->n)
		return;
	for (unsigned i = 0; i < b->n; i++)
		if (b->ws[i] && b->ws[i]->done)
			b->ws[i]->done(b->ws[i]); /* may free an async write: ws[i] is dead after */
	pthread_mutex_lock(&st->ack_lock);
	pthread_mutex_lock(&st->q_lock);
	listener_count = st->listener_count;
	memcpy(listeners, st->listeners, sizeof(listeners));
	pthread_mutex_unlock(&st->q_lock);
	for (unsigned i = 0; b->last_seq && i < listener_count; i++)
		listeners[i].fn(listeners[i].arg, b->last_seq);
	pthread_mutex_unlock(&st->ack_lock);
	if (b->has_waiters) {
		pthread_mutex_lock(&st->q_lock);
		for (unsigned i = 0; i < b->n; i++) {
			if (b->waiters[i]) {
				b->waiters[i]->is_done = true;
				pthread_cond_signal(&b->waiters[i]->cond);
			}
		}
		pthread_mutex_unlock(&st->q_lock);
	}
	b->n = 0;
	b->n_left = 0;
	b->has_commit_acks = false;
}

/*
 * Tells the writes of @b that asked for it (is_commit_ack) their outcome now
 * that the batch has committed: done, then the waiting thread. They leave
 * the batch (ws[i] NULL: the caller may free them at once); the rest wait
 * for the flush as usual.
 */
static void batch_ack_commit(struct batch *b, struct store *st)
{
	bool has_wake = false;

	b->n_left = b->n;
	for (unsigned i = 0; i < b->n; i++) {
		if (!b->ws[i]->is_commit_ack)
			continue;
		if (b->ws[i]->done)
			b->ws[i]->done(b->ws[i]);
		b->ws[i] = NULL;
		b->has_commit_acks = true;
		b->n_left--;
		has_wake |= b->waiters[i] != NULL;
	}
	if (!has_wake)
		return;
	pthread_mutex_lock(&st->q_lock);
	for (unsigned i = 0; i < b->n; i++) {
		if (!b->ws[i] && b->waiters[i]) {
			b->waiters[i]->is_done = true;
			pthread_cond_signal(&b->waiters[i]->cond);
			b->waiters[i] = NULL;
		}
	}
	pthread_mutex_unlock(&st->q_lock);
}

/*
 * A flush failed under @b's committed writes: they are not known to be
 * durable, so none is told it succeeded.
 */
static void batch_fail_flush(struct store *st, struct batch *b, int rc)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->ws[i] && b->ws[i]->result == XDMS_ERR_OK)
			b->ws[i]->result = store_err_from_mdb(rc);
	b->last_seq = 0;
	if (b->has_commit_acks) {
		/* Writes already told OK may be lost: acknowledge nothing more. */
		st->is_ack_lost = true;
		log_error("store: a flush failed after writes were acknowledged at their commit: "
			  "refusing every further write");
	}
}

/* Flushes everything committed so far: the meta page MDB_NOMETASYNC left,
 * or what went without the write-ahead log (wal.c). */
static void store_flush(struct store *st, struct batch *b)
{
	int rc;

	if (!st->is_sync || !b->n)
		return;
	rc = st->wal ? store_wal_flush(st) : mdb_env_sync(st->env, 1);
	atomic_fetch_add_explicit(&st->n_flushes, 1, memory_order_relaxed);
	if (rc)
		batch_fail_flush(st, b, rc);
}

/* Takes up to batch_max queued writes into @b. Called with q_lock held. */
static void batch_take(struct store *st, struct batch *b)
{
	b->has_waiters = false;
	b->last_seq = 0;
	for (b->n = 0; b->n < st->batch_max && st->q_head; b->n++) {
		struct store_write *w = st->q_head;
		struct store_waiter **pp;

		st->q_head = w->next_;
		w->next_ = NULL;
		b->ws[b->n] = w;
		b->waiters[b->n] = NULL;
		/* Pair the write with its waiter now, while w is certainly alive. */
		for (pp = &st->waiters; *pp; pp = &(*pp)->next) {
			if ((*pp)->w == w) {
				b->waiters[b->n] = *pp;
				*pp = (*pp)->next;
				b->has_waiters = true;
				break;
			}
		}
	}
	if (!st->q_head)
		st->q_tail = NULL;
}

/* Runs a taken batch: its writes, then the answers due at its commit. */
static void batch_exec(struct store *st, struct batch *b)
{
	stats_count_batch(st, b->n);
	b->last_seq = 0;
	if (st->is_ack_lost) {
		for (unsigned i = 0; i < b->n; i++) {
			write_out_reset(b->ws[i]);
			b->ws[i]->result = XDMS_ERR_IO;
		}
		b->is_committed = false;
	} else {
		b->is_committed = batch_run(st, b->ws, b->n, &b->last_seq);
	}
	batch_ack_commit(b, st);
}

/*
 * The writer loop, with acknowledgements one commit behind: batch N is
 * acknowledged after batch N+1's commit, whose data sync also flushed N's
 * meta page, or, when nothing else is queued, after an explicit sync. So a
 * busy writer pays one flush per group commit and an idle one two, and no
 * write is acknowledged before it is durable.
 */
static void *writer_main(void *arg)
{
	struct store *st = arg;
	struct batch batches[2];
	struct batch *cur = &batches[0], *pending = &batches[1], *tmp;

	store_wal_thread_attach(st);
	for (int i = 0; i < 2; i++) {
		batches[i].ws = xcalloc(st->batch_max, sizeof(struct store_write *));
		batches[i].waiters = xcalloc(st->batch_max, sizeof(struct store_waiter *));
		batches[i].n = 0;
		batches[i].n_left = 0;
		batches[i].has_commit_acks = false;
	}
	pthread_mutex_lock(&st->q_lock);
	for (;;) {
		long wait_ns = 0;

		/* Several clients are writing: the ones just acknowledged are
		 * about to send again. Give them a moment, so that their writes'
		 * commit also makes the pending batch durable (one flush) instead
		 * of flushing for it alone. A lone writer never waits, unless all
		 * it wrote was told at its commit: its durable write follows. */
		if (!st->q_head && pending->n && !st->is_closing && st->is_sync)
			wait_ns = !pending->n_left ? STORE_COMMIT_ACK_WAIT_NS : pending->n > 1 ? STORE_GROUP_WAIT_NS : 0;
		if (wait_ns) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += wait_ns;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!st->q_head && !st->is_closing &&
			       pthread_cond_timedwait(&st->q_cond, &st->q_lock, &until) == 0)
				;
		}
		if (!st->q_head && pending->n) {
			/* Nothing else to commit: make the pending batch durable now. */
			pthread_mutex_unlock(&st->q_lock);
			store_flush(st, pending);
			batch_ack(st, pending);
			pthread_mutex_lock(&st->q_lock);
			continue;
		}
		while (!st->q_head && !st->is_closing)
			pthread_cond_wait(&st->q_cond, &st->q_lock);
		if (!st->q_head)
			break; /* closing and drained; nothing pending */
		batch_take(st, cur);
		pthread_mutex_unlock(&st->q_lock);
		batch_exec(st, cur);
		if (store_wal_in_use(st)) {
			/* The log's flush makes the batch durable on its own: it is
			 * answered now, and nothing stays pending. */
			if (pending->n) {
				store_flush(st, pending); /* an owner appeared meanwhile */
				batch_ack(st, pending);
			}
			if (cur->is_committed)
				store_flush(st, cur);
			batch_ack(st, cur);
			pthread_mutex_lock(&st->q_lock);
			continue;
		}
		if (pending->n) {
			/* A commit with writes synced its data, and with it the
			 * pending batch's meta page; otherwise sync explicitly. */
			if (!cur->is_committed || !st->is_sync)
				store_flush(st, pending);
			batch_ack(st, pending);
		}
		if (!cur->is_committed) {
			/* Nothing of it committed: nothing to wait for. */
			batch_ack(st, cur);
		}
		tmp = pending;
		pending = cur;
		cur = tmp;
		pthread_mutex_lock(&st->q_lock);
	}
	pthread_mutex_unlock(&st->q_lock);
	for (int i = 0; i < 2; i++) {
		free(batches[i].ws);
		free(batches[i].waiters);
	}
	return NULL;
}

enum xdms_err store_writer_start(struct store *st)
{
	sigset_t all, old;
	int rc;

	/* Signals belong to the program's own threads, not to the store's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&st->writer, NULL, writer_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return XDMS_ERR_STORE;
	st->has_writer = true;
	(void)pthread_setname_np(st->writer, "xdms-store");
	return XDMS_ERR_OK;
}

void store_writer_stop(struct store *st)
{
	if (!st->has_writer)
		return;
	pthread_mutex_lock(&st->q_lock);
	st->is_closing = true;
	pthread_cond_signal(&st->q_cond);
	pthread_mutex_unlock(&st->q_lock);
	pthread_join(st->writer, NULL);
	st->has_writer = false;
}

/* Appends @w to the queue; q_lock held. */
static void queue_push(struct store *st, struct store_write *w)
{
	w->next_ = NULL;
	if (st->q_tail)
		st->q_tail->next_ = w;
	else
		st->q_head = w;
	st->q_tail = w;
	pthread_cond_signal(&st->q_cond);
}

enum xdms_err store_write_submit(struct store *st, struct store_write *w)
{
	if (!st || !w)
		return XDMS_ERR_INVAL;
	pthread_mutex_lock(&st->q_lock);
	if (st->is_closing) {
		pthread_mutex_unlock(&st->q_lock);
		w->result = XDMS_ERR_BUSY;
		return XDMS_ERR_BUSY;
	}
	queue_push(st, w);
	pthread_mutex_unlock(&st->q_lock);
	return XDMS_ERR_OK;
}

enum xdms_err store_write_run(struct store *st, struct store_write *w)
{
	struct store_waiter waiter;

	if (!st || !w)
		return XDMS_ERR_INVAL;
	/*
	 * Waiting on the writer thread itself can never end; waiting while this
	 * thread holds map_lock (an open snapshot) could deadlock against a map
	 * resize, which needs every snapshot of the process closed.
	 */
	if ((st->has_writer && pthread_equal(pthread_self(), st->writer)) ||
	    store_thread_holds_map(st)) {
		w->result = XDMS_ERR_BUSY;
		return XDMS_ERR_BUSY;
	}
	waiter.w = w;
	waiter.is_done = false;
	pthread_cond_init(&waiter.cond, NULL);
	pthread_mutex_lock(&st->q_lock);
	if (st->is_closing) {
		pthread_mutex_unlock(&st->q_lock);
		pthread_cond_destroy(&waiter.cond);
		w->result = XDMS_ERR_BUSY;
		return XDMS_ERR_BUSY;
	}
	waiter.next = st->waiters;
	st->waiters = &waiter;
	queue_push(st, w);
	while (!waiter.is_done)
		pthread_cond_wait(&waiter.cond, &st->q_lock);
	pthread_mutex_unlock(&st->q_lock);
	pthread_cond_destroy(&waiter.cond);
	return w->result;
}

void store_set_feed_floor(struct store *st, uint64_t first_needed_seq)
{
	if (st)
		atomic_store(&st->feed_floor, first_needed_seq);
}

enum xdms_err store_add_commit_listener(struct store *st, void (*fn)(void *arg, uint64_t last_seq), void *arg)
{
	enum xdms_err err = XDMS_ERR_FULL;

	if (!st || !fn)
		return XDMS_ERR_INVAL;
	/* Under q_lock so the writer sees it with its next batch. */
	pthread_mutex_lock(&st->q_lock);
	if (st->listener_count < STORE_LISTENERS_MAX) {
		st->listeners[st->listener_count].fn = fn;
		st->listeners[st->listener_count].arg = arg;
		st->listener_count++;
		err = XDMS_ERR_OK;
	}
	pthread_mutex_unlock(&st->q_lock);
	return err;
}

void store_remove_commit_listener(struct store *st, void (*fn)(void *arg, uint64_t last_seq), void *arg)
{
	if (!st)
		return;
	/*
	 * batch_ack copies the table under q_lock and calls outside it; holding
	 * ack_lock across those calls is what lets removal wait for a call in
	 * progress.
	 */
	pthread_mutex_lock(&st->ack_lock);
	pthread_mutex_lock(&st->q_lock);
	for (unsigned i = 0; i < st->listener_count; i++) {
		if (st->listeners[i].fn == fn && st->listeners[i].arg == arg) {
			memmove(&st->listeners[i], &st->listeners[i + 1],
				(st->listener_count - i - 1) * sizeof(st->listeners[0]));
			st->listener_count--;
			break;
		}
	}
	pthread_mutex_unlock(&st->q_lock);
	pthread_mutex_unlock(&st->ack_lock);
}

