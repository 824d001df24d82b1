/* SPDX-License-Identifier: MIT */
/*
 * bench/jobs-backlog: what claiming an IWF job costs with a backlog.
 *
 * Two fresh stores in one run (store.sync=false, so that the disk does not
 * drown the figure): one with a backlog of --small jobs (default 1,000), one
 * with --backlog jobs (default 100,000), every one of them waiting for a
 * retry an hour away (the 3rd party is down) after being claimed once. Then,
 * --claims times (default 2,000): one new job is queued, claimed (the
 * figure) and ended. A claim that walks the unfinished jobs costs in
 * proportion to the backlog; one through the index of due times does not.
 * Prints the mean claim time of each store and their ratio against the
 * target (<= 1.50: constant cost), and exits 1 when something failed (with
 * --strict also when the target is missed).
 *
 *   bench/jobs-backlog [--backlog N] [--small N] [--claims N] [--strict]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/mem.h"
#include "store/store.h"

struct add_op {
	unsigned from, count;
	uint64_t *ids; /* count of them */
};

static enum xdms_err add_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
			      const struct store_doc *n)
{
	struct add_op *op = w->arg;
	enum xdms_err err = XDMS_ERR_OK;

	(void)o;
	(void)n;
	for (unsigned i = 0; i < op->count && !err; i++) {
		char xui[64], rid[32];

		snprintf(xui, sizeof(xui), "sip:user%u@example.com", op->from + i);
		snprintf(rid, sizeof(rid), "imp-%u", op->from + i);
		err = store_job_add_txn(txn, xui, rid, "0123456789abcdef0123456789abcdef", STORE_JOB_IMPORT,
					&op->ids[i]);
	}
	return err;
}

static enum xdms_err add_jobs(struct store *st, unsigned from, unsigned count, uint64_t *ids)
{
	struct add_op op = { from, count, ids };
	struct store_write w = { 0 };

	w.hook = add_hook;
	w.arg = &op;
	return store_write_run(st, &w);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Mean microseconds per claim with @backlog jobs waiting; < 0 on failure. */
static double run(const char *dir, unsigned backlog, unsigned claims)
{
	struct store_options so = { .path = dir, .map_size = (size_t)1 << 30, .is_sync = false };
	struct store *st = NULL;
	uint64_t *ids = xcalloc(1000, sizeof(*ids)), next_due;
	double total = 0;
	unsigned user = 0;
	struct store_job j;

	if (store_open(&so, &st)) {
		fprintf(stderr, "jobs-backlog: cannot open a store in %s\n", dir);
		return -1;
	}
	/* The backlog: claimed once, then waiting an hour for a retry. */
	while (user < backlog) {
		unsigned n = backlog - user < 1000 ? backlog - user : 1000;

		if (add_jobs(st, user, n, ids))
			goto fail;
		for (unsigned i = 0; i < n; i++) {
			if (store_job_claim(st, wall_ms(), 60000, &j, &next_due) ||
			    store_job_retry(st, j.id, wall_ms() + 3600000, true, "3rd party down"))
				goto fail;
		}
		user += n;
	}
	for (unsigned i = 0; i < claims; i++) {
		double t0;

		if (add_jobs(st, backlog + i, 1, ids))
			goto fail;
		t0 = now_us();
		if (store_job_claim(st, wall_ms(), 60000, &j, &next_due) || j.id != ids[0])
			goto fail;
		total += now_us() - t0;
		if (store_job_end(st, j.id, STORE_JOB_DONE, 200, "ok"))
			goto fail;
	}
	store_close(st);
	free(ids);
	return total / claims;
fail:
	fprintf(stderr, "jobs-backlog: a store operation failed with a backlog of %u\n", backlog);
	store_close(st);
	free(ids);
	return -1;
}

int main(int argc, char **argv)
{
	unsigned backlog = 100000, small = 1000, claims = 2000;
	bool is_strict = false;
	char tmpl[] = "/tmp/jobs-backlog.XXXXXX", a[64], b[64], cmd[200];
	double t_small, t_big, ratio;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backlog") && i + 1 < argc)
			backlog = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--small") && i + 1 < argc)
			small = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--claims") && i + 1 < argc)
			claims = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--strict"))
			is_strict = true;
		else {
			fprintf(stderr, "usage: jobs-backlog [--backlog N] [--small N] [--claims N] [--strict]\n");
			return 2;
		}
	}
	if (!claims || !mkdtemp(tmpl)) {
		fprintf(stderr, "jobs-backlog: bad --claims or no scratch directory\n");
		return 2;
	}
	snprintf(a, sizeof(a), "%s/small", tmpl);
	snprintf(b, sizeof(b), "%s/big", tmpl);
	fprintf(stderr, "jobs-backlog: %u claims with %u and with %u jobs waiting\n", claims, small, backlog);
	t_small = run(a, small, claims);
	t_big = t_small < 0 ? -1 : run(b, backlog, claims);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	rc = system(cmd);
	(void)rc;
	if (t_small < 0 || t_big < 0)
		return 1;
	ratio = t_big / t_small;
	printf("%-34s %12s %12s %7s %8s  %s\n", "case", "backlog", "claim us", "ratio", "target", "result");
	printf("%-34s %12u %12.1f\n", "IWF claim, small backlog", small, t_small);
	printf("%-34s %12u %12.1f %7.2f %8s  %s\n", "IWF claim, large backlog", backlog, t_big, ratio, "<=1.50",
	       ratio <= 1.5 ? "PASS" : "MISS");
	return is_strict && ratio > 1.5 ? 1 : 0;
}
