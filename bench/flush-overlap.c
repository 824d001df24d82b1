/* SPDX-License-Identifier: MIT */
/*
 * bench/flush-overlap: can a write-ahead log flush overlap LMDB's data flush
 * on this disk?
 *
 * A durable write at one connection pays two serial flushes today: the
 * commit's data flush (MDB_NOMETASYNC) and then mdb_env_sync() for its meta
 * page. A write-ahead log written and flushed by a second thread while the
 * writer commits LMDB would replace the second flush, and gain only if two
 * flushes issued at the same time cost clearly less than two in a row. This
 * program measures that, in a directory of the disk the store lives on:
 *
 *   one         a 4 KiB pwrite + fdatasync of a preallocated file (the
 *               reference: what bench/xcap-http calls the disk's fdatasync)
 *   serial      the same on two files, one after the other
 *   concurrent  the same on two files from two threads at once
 *   today       one write transaction of an LMDB environment shaped like the
 *               store (replace a 2 KiB document among 1,000, append a change
 *               record, two meta keys), mdb_txn_commit + mdb_env_sync
 *   commit      the same commit without the mdb_env_sync (its data flush
 *               only: the floor of any scheme that waits for it)
 *   overlapped  the commit while a second thread pwrites + fdatasyncs a log
 *               record: the write-ahead log scheme at one connection
 *
 * The modes take turns within every round (the order rotates), so that a
 * disk shared with other work disturbs them alike. The transaction is built
 * before the clock starts: only commit and flush time is measured. The log
 * files are fallocated and written with zeros once, so their fdatasync has
 * no metadata to commit.
 *
 * bench/xcap-http's c=1 target is: durable p50 <= no-sync p50 + 1.5 x one.
 * A durable write costs at least its no-sync time plus its flush time, so a
 * scheme whose flush time exceeds 1.5 x one (ratio above 1.00 in the
 * "x (1.5 x one flush)" column) cannot meet that target on this disk,
 * whatever the rest costs. The go/no-go of the write-ahead log is
 * concurrent <= 1.40 x one.
 *
 *   bench/flush-overlap [--dir DIR] [--rounds N] [--strict]
 *
 * Exit status: 0 when everything ran, 1 when something failed (with
 * --strict also when a target is missed), 2 bad usage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"

#define LOG_SIZE (4u << 20)
#define REC_SIZE 4096u
#define DOC_COUNT 1000u
#define DOC_SIZE 2048u

enum mode { M_ONE, M_SERIAL, M_CONCURRENT, M_TODAY, M_COMMIT, M_OVERLAPPED, M_COUNT };

static const char *const mode_names[M_COUNT] = {
	"one flush (4 KiB + fdatasync)", "two flushes, serial", "two flushes, concurrent",
	"LMDB commit + env sync (today)", "LMDB commit alone", "LMDB commit & log flush at once",
};

/* The second thread: flushes one record of its log each time it is woken. */
struct helper {
	pthread_t thread;
	sem_t go, done;
	int fd;
	unsigned next;
	bool is_stopping, has_failed;
};

struct bench {
	char dir[4096];
	int fd_a; /* the first log, flushed by the main thread */
	unsigned next_a;
	MDB_env *env;
	MDB_dbi docs, changes, meta;
	uint64_t seq;
	char *rec, *doc;
	struct helper h;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* One log record: a 4 KiB pwrite into the ring and its fdatasync. */
static int log_flush(int fd, unsigned *next, const char *rec)
{
	off_t off = (off_t)(*next % (LOG_SIZE / REC_SIZE)) * REC_SIZE;

	(*next)++;
	if (pwrite(fd, rec, REC_SIZE, off) != (ssize_t)REC_SIZE || fdatasync(fd))
		return -1;
	return 0;
}

static void *helper_main(void *arg)
{
	struct bench *b = arg;

	for (;;) {
		while (sem_wait(&b->h.go) && errno == EINTR)
			;
		if (b->h.is_stopping)
			break;
		if (log_flush(b->h.fd, &b->h.next, b->rec))
			b->h.has_failed = true;
		sem_post(&b->h.done);
	}
	return NULL;
}

static void helper_wait(struct bench *b)
{
	while (sem_wait(&b->h.done) && errno == EINTR)
		;
}

/* A log file of LOG_SIZE bytes, allocated and written once, synced. */
static int log_open(const char *dir, const char *name)
{
	char path[4200];
	char *zero = xcalloc(1, LOG_SIZE);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (posix_fallocate(fd, 0, LOG_SIZE) || pwrite(fd, zero, LOG_SIZE, 0) != (ssize_t)LOG_SIZE || fsync(fd)) {
		close(fd);
		fd = -1;
	}
out:
	free(zero);
	return fd;
}

/* Builds one write transaction shaped like a store write (not committed). */
static int txn_build(struct bench *b, MDB_txn **out)
{
	char key[32], change[128], etag_key[] = "etag", seq_key[] = "seq";
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint64_t seq = ++b->seq;

	if (mdb_txn_begin(b->env, NULL, 0, &txn))
		return -1;
	snprintf(key, sizeof(key), "doc%05u", (unsigned)(seq % DOC_COUNT));
	memset(b->doc, 'a' + (int)(seq % 26), DOC_SIZE);
	k = (MDB_val){ strlen(key), key };
	v = (MDB_val){ DOC_SIZE, b->doc };
	if (mdb_put(txn, b->docs, &k, &v, 0))
		goto fail;
	snprintf(change, sizeof(change), "resource-lists/users/sip:user%u@example.com/index etag %016llx",
		 (unsigned)(seq % DOC_COUNT), (unsigned long long)seq);
	k = (MDB_val){ sizeof(seq), &seq };
	v = (MDB_val){ strlen(change), change };
	if (mdb_put(txn, b->changes, &k, &v, MDB_APPEND))
		goto fail;
	k = (MDB_val){ sizeof(etag_key) - 1, etag_key };
	v = (MDB_val){ sizeof(seq), &seq };
	if (mdb_put(txn, b->meta, &k, &v, 0))
		goto fail;
	k = (MDB_val){ sizeof(seq_key) - 1, seq_key };
	if (mdb_put(txn, b->meta, &k, &v, 0))
		goto fail;
	*out = txn;
	return 0;
fail:
	mdb_txn_abort(txn);
	return -1;
}

/* The environment, opened as the durable store opens it, with its documents. */
static int env_open(struct bench *b)
{
	char path[4200];
	MDB_txn *txn = NULL;

	snprintf(path, sizeof(path), "%s/env", b->dir);
	if (mkdir(path, 0700))
		return -1;
	if (mdb_env_create(&b->env) || mdb_env_set_mapsize(b->env, (size_t)256 << 20) ||
	    mdb_env_set_maxdbs(b->env, 4) || mdb_env_open(b->env, path, MDB_NOTLS | MDB_NOMETASYNC, 0600))
		return -1;
	if (mdb_txn_begin(b->env, NULL, 0, &txn) || mdb_dbi_open(txn, "docs", MDB_CREATE, &b->docs) ||
	    mdb_dbi_open(txn, "changes", MDB_CREATE | MDB_INTEGERKEY, &b->changes) ||
	    mdb_dbi_open(txn, "meta", MDB_CREATE, &b->meta) || mdb_txn_commit(txn))
		return -1;
	/* The documents exist: every measured write replaces one. */
	for (unsigned i = 0; i < DOC_COUNT; i++) {
		if (txn_build(b, &txn) || mdb_txn_commit(txn))
			return -1;
	}
	return mdb_env_sync(b->env, 1) ? -1 : 0;
}

/* Runs @m once; its commit and flush time in microseconds, < 0 on failure. */
static double mode_run(struct bench *b, enum mode m)
{
	MDB_txn *txn = NULL;
	double t0;
	int rc = 0;

	if (m >= M_TODAY && txn_build(b, &txn))
		return -1;
	t0 = now_us();
	switch (m) {
	case M_ONE:
		rc = log_flush(b->fd_a, &b->next_a, b->rec);
		break;
	case M_SERIAL:
		rc = log_flush(b->fd_a, &b->next_a, b->rec) || log_flush(b->h.fd, &b->h.next, b->rec);
		break;
	case M_CONCURRENT:
		sem_post(&b->h.go);
		rc = log_flush(b->fd_a, &b->next_a, b->rec);
		helper_wait(b);
		break;
	case M_TODAY:
		rc = mdb_txn_commit(txn) || mdb_env_sync(b->env, 1);
		break;
	case M_COMMIT:
		rc = mdb_txn_commit(txn);
		break;
	case M_OVERLAPPED:
		sem_post(&b->h.go);
		rc = mdb_txn_commit(txn);
		helper_wait(b);
		break;
	case M_COUNT:
		break;
	}
	if (rc || b->h.has_failed)
		return -1;
	return now_us() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Two decimals, or three where two would round a miss of @target down to it. */
static void ratio_format(char *out, size_t out_len, double ratio, double target)
{
	snprintf(out, out_len, "%.2f", ratio);
	if (target > 0 && ratio > target && strtod(out, NULL) <= target)
		snprintf(out, out_len, "%.3f", ratio);
}

static int run(struct bench *b, unsigned rounds, double p50[M_COUNT], double p99[M_COUNT])
{
	double *t[M_COUNT];
	int rc = -1;

	for (int m = 0; m < M_COUNT; m++)
		t[m] = xcalloc(rounds, sizeof(double));
	for (unsigned r = 0; r < rounds; r++) {
		for (int i = 0; i < M_COUNT; i++) {
			enum mode m = (enum mode)((i + r) % M_COUNT);

			t[m][r] = mode_run(b, m);
			if (t[m][r] < 0) {
				fprintf(stderr, "flush-overlap: %s failed\n", mode_names[m]);
				goto out;
			}
		}
	}
	for (int m = 0; m < M_COUNT; m++) {
		qsort(t[m], rounds, sizeof(double), cmp_double);
		p50[m] = t[m][rounds / 2];
		p99[m] = t[m][rounds * 99 / 100];
	}
	rc = 0;
out:
	for (int m = 0; m < M_COUNT; m++)
		free(t[m]);
	return rc;
}

int main(int argc, char **argv)
{
	const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	unsigned rounds = 1000;
	bool is_strict = false, is_go, is_fit;
	struct bench b = { .fd_a = -1, .h = { .fd = -1 } };
	double p50[M_COUNT], p99[M_COUNT], one, budget;
	char cmd[4300];
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			parent = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--strict"))
			is_strict = true;
		else {
			fprintf(stderr, "usage: flush-overlap [--dir DIR] [--rounds N] [--strict]\n");
			return 2;
		}
	}
	snprintf(b.dir, sizeof(b.dir), "%s/flush-overlap.XXXXXX", parent);
	if (rounds < 10 || rounds > 1000000 || !mkdtemp(b.dir)) {
		fprintf(stderr, "flush-overlap: bad --rounds (10 to 1000000) or cannot make a directory in %s\n",
			parent);
		return 2;
	}
	b.rec = xcalloc(1, REC_SIZE);
	memset(b.rec, 'r', REC_SIZE);
	b.doc = xcalloc(1, DOC_SIZE);
	b.fd_a = log_open(b.dir, "log-a");
	b.h.fd = log_open(b.dir, "log-b");
	if (b.fd_a < 0 || b.h.fd < 0 || env_open(&b)) {
		fprintf(stderr, "flush-overlap: cannot set up the logs and the environment in %s\n", b.dir);
		goto out;
	}
	sem_init(&b.h.go, 0, 0);
	sem_init(&b.h.done, 0, 0);
	if (pthread_create(&b.h.thread, NULL, helper_main, &b)) {
		fprintf(stderr, "flush-overlap: cannot start a thread\n");
		goto out_sem;
	}
	fprintf(stderr, "flush-overlap: %u rounds of each case in %s\n", rounds, b.dir);
	rc = run(&b, rounds, p50, p99) ? 1 : 0;
	b.h.is_stopping = true;
	sem_post(&b.h.go);
	pthread_join(b.h.thread, NULL);
	if (rc)
		goto out_sem;
	one = p50[M_ONE];
	budget = 1.5 * one;
	is_go = p50[M_CONCURRENT] <= 1.40 * one;
	is_fit = p50[M_OVERLAPPED] <= budget;
	printf("%-32s %9s %9s %7s %-22s %7s  %s\n", "case", "p50", "p99", "ratio", "", "target", "result");
	printf("%-32s %7.0fus %7.0fus\n", mode_names[M_ONE], p50[M_ONE], p99[M_ONE]);
	for (int m = M_SERIAL; m < M_COUNT; m++) {
		bool is_flushes = m <= M_CONCURRENT, has_target = m == M_CONCURRENT || m == M_OVERLAPPED;
		double ratio = p50[m] / (is_flushes ? one : budget);
		double target = m == M_CONCURRENT ? 1.40 : 1.00;
		char shown[16];

		ratio_format(shown, sizeof(shown), ratio, has_target ? target : 0);
		printf("%-32s %7.0fus %7.0fus %7s %-22s %7s  %s\n", mode_names[m], p50[m], p99[m], shown,
		       is_flushes ? "x one flush" : "x (1.5 x one flush)",
		       !has_target ? "" : m == M_CONCURRENT ? "<=1.40" : "<=1.00",
		       !has_target ? "" : ratio <= target ? "PASS" : "MISS");
	}
	printf("\ncommit & log flush at once vs today: %.2f; vs the commit alone: %.2f\n",
	       p50[M_OVERLAPPED] / p50[M_TODAY], p50[M_OVERLAPPED] / p50[M_COMMIT]);
	if (is_strict && (!is_go || !is_fit))
		rc = 1;
out_sem:
	sem_destroy(&b.h.go);
	sem_destroy(&b.h.done);
out:
	if (b.env)
		mdb_env_close(b.env);
	if (b.fd_a >= 0)
		close(b.fd_a);
	if (b.h.fd >= 0)
		close(b.h.fd);
	free(b.rec);
	free(b.doc);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.dir);
	if (system(cmd))
		fprintf(stderr, "flush-overlap: could not remove %s\n", b.dir);
	return rc;
}
