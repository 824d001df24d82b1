/* SPDX-License-Identifier: MIT */
/*
 * The IWF's figures for /metrics: jobs ended by kind and code, retries,
 * jobs running now, 3rd-party call latency per adapter, and (read from the
 * store when scraped) jobs by state.
 *
 * Counters are atomics bumped by the workers; the per-adapter histograms
 * live in a fixed table of IWF_METRICS_ADAPTERS rows found by adapter id
 * under a mutex (a row is taken once per adapter and never given back;
 * adapters beyond the table share the row "other"), so the series a scrape
 * returns are bounded whatever the administrators configure.
 *
 * Threads: workers record; the HTTP thread that serves /metrics renders.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"

#define IWF_METRICS_ADAPTERS 64

/* Codes the IWF writes (SPEC §4.3); anything else is counted as "other". */
static const unsigned codes[] = { 200, 202, 206, 400, 401, 403, 404, 409, 413, 500, 501, 502, 503, 504 };
#define CODE_COUNT (sizeof(codes) / sizeof(codes[0]))
#define KIND_COUNT 3 /* import, export, subscribe: store_job_kind - 1 */
static const char *const kinds[KIND_COUNT] = { "import", "export", "subscribe" };

/* 3rd-party call latency buckets, in seconds. */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define BUCKET_COUNT (sizeof(buckets) / sizeof(buckets[0]))

struct adapter_row {
	char id[64]; /* "" while free; "other" for the overflow row */
	atomic_uint_fast64_t le[BUCKET_COUNT + 1];
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
	atomic_uint_fast64_t failures;
};

struct iwf_metrics {
	atomic_uint_fast64_t ended[KIND_COUNT][CODE_COUNT + 1];
	atomic_uint_fast64_t retries;
	atomic_uint_fast64_t running;
	pthread_mutex_t lock; /* guards taking a row */
	atomic_uint row_count;
	struct adapter_row rows[IWF_METRICS_ADAPTERS];
};

struct iwf_metrics *iwf_metrics_create(void)
{
	struct iwf_metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	/* Written once here, read without the lock: a label no adapter id can
	 * be (ids are [A-Za-z0-9._-]). */
	snprintf(m->rows[IWF_METRICS_ADAPTERS - 1].id, sizeof(m->rows[0].id), "(other)");
	return m;
}

void iwf_metrics_destroy(struct iwf_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void iwf_metrics_job_ended(struct iwf_metrics *m, enum store_job_kind kind, unsigned code)
{
	size_t ci = 0;

	if (!m || kind < STORE_JOB_IMPORT || kind > STORE_JOB_SUBSCRIBE)
		return;
	while (ci < CODE_COUNT && codes[ci] != code)
		ci++;
	atomic_fetch_add_explicit(&m->ended[kind - 1][ci], 1, memory_order_relaxed);
}

void iwf_metrics_retry(struct iwf_metrics *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->retries, 1, memory_order_relaxed);
}

void iwf_metrics_running(struct iwf_metrics *m, int delta)
{
	if (m)
		atomic_fetch_add_explicit(&m->running, (uint_fast64_t)(int_fast64_t)delta, memory_order_relaxed);
}

/* Adapter ids are [A-Za-z0-9._-] (xdmsctl and the adapter schema check
 * them), so they need no escaping; an id that is not (a document written by
 * other means) was counted in the "(other)" row instead (row_of). */
static bool is_plain_id(const char *id)
{
	return id[0] &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(id);
}

/* The row of @adapter, taking a free one (or the last, "other") the first time. */
static struct adapter_row *row_of(struct iwf_metrics *m, const char *adapter)
{
	unsigned n = atomic_load_explicit(&m->row_count, memory_order_acquire);
	struct adapter_row *row = NULL;

	for (unsigned i = 0; i < n; i++)
		if (!strcmp(m->rows[i].id, adapter))
			return &m->rows[i];
	pthread_mutex_lock(&m->lock);
	n = atomic_load_explicit(&m->row_count, memory_order_relaxed);
	for (unsigned i = 0; i < n && !row; i++)
		if (!strcmp(m->rows[i].id, adapter))
			row = &m->rows[i];
	if (!row && n < IWF_METRICS_ADAPTERS - 1 && strlen(adapter) < sizeof(row->id) && is_plain_id(adapter)) {
		row = &m->rows[n];
		snprintf(row->id, sizeof(row->id), "%s", adapter);
		atomic_store_explicit(&m->row_count, n + 1, memory_order_release);
	}
	if (!row)
		row = &m->rows[IWF_METRICS_ADAPTERS - 1];
	pthread_mutex_unlock(&m->lock);
	return row;
}

void iwf_metrics_call(struct iwf_metrics *m, const char *adapter, double seconds, bool is_failure)
{
	struct adapter_row *row;
	size_t bi = 0;

	if (!m || !adapter)
		return;
	row = row_of(m, adapter);
	while (bi < BUCKET_COUNT && seconds > buckets[bi])
		bi++;
	atomic_fetch_add_explicit(&row->le[bi], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&row->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&row->sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
	if (is_failure)
		atomic_fetch_add_explicit(&row->failures, 1, memory_order_relaxed);
}



static enum xdms_err render_adapters(struct iwf_metrics *m, struct buf *out)
{
	enum xdms_err err = buf_append_str(
		out, "# HELP xdms_iwf_call_duration_seconds Time of one call to a 3rd party, by adapter.\n"
		     "# TYPE xdms_iwf_call_duration_seconds histogram\n");
	unsigned n = atomic_load_explicit(&m->row_count, memory_order_acquire);

	for (unsigned i = 0; !err && i < IWF_METRICS_ADAPTERS; i++) {
		struct adapter_row *row = &m->rows[i];
		uint64_t cumulative = 0;
		const char *id;

		if (i >= n && i != IWF_METRICS_ADAPTERS - 1)
			continue;
		id = row->id;
		for (size_t b = 0; !err && b <= BUCKET_COUNT; b++) {
			cumulative += atomic_load_explicit(&row->le[b], memory_order_relaxed);
			if (b < BUCKET_COUNT)
				err = buf_printf(out, "xdms_iwf_call_duration_seconds_bucket{adapter=\"%s\",le=\"%g\"} %llu\n",
						 id, buckets[b], (unsigned long long)cumulative);
			else
				err = buf_printf(out, "xdms_iwf_call_duration_seconds_bucket{adapter=\"%s\",le=\"+Inf\"} %llu\n",
						 id, (unsigned long long)cumulative);
		}
		if (!err)
			err = buf_printf(out,
					 "xdms_iwf_call_duration_seconds_sum{adapter=\"%s\"} %.6f\n"
					 "xdms_iwf_call_duration_seconds_count{adapter=\"%s\"} %llu\n",
					 id, (double)atomic_load_explicit(&row->sum_us, memory_order_relaxed) / 1e6, id,
					 (unsigned long long)atomic_load_explicit(&row->count, memory_order_relaxed));
	}
	if (!err)
		err = buf_append_str(out, "# HELP xdms_iwf_call_failures_total Calls to a 3rd party that failed "
					  "(no answer, or an error status), by adapter.\n"
					  "# TYPE xdms_iwf_call_failures_total counter\n");
	for (unsigned i = 0; !err && i < IWF_METRICS_ADAPTERS; i++) {
		struct adapter_row *row = &m->rows[i];

		if (i >= n && i != IWF_METRICS_ADAPTERS - 1)
			continue;
		err = buf_printf(out, "xdms_iwf_call_failures_total{adapter=\"%s\"} %llu\n", row->id,
				 (unsigned long long)atomic_load_explicit(&row->failures, memory_order_relaxed));
	}
	return err;
}

enum xdms_err iwf_metrics_render(struct iwf_metrics *m, struct store *st, struct buf *out)
{
	struct store_read *rd = NULL;
	uint64_t queued = 0, running = 0;
	enum xdms_err err;

	/* Only the unfinished jobs are walked (their index), so a scrape costs
	 * the backlog, not the history iwf.job_retention keeps. */
	err = store_read_begin(st, &rd);
	if (!err) {
		err = store_job_count_active(rd, &queued, &running);
		store_read_end(rd);
	}
	if (err)
		return err;
	err = buf_printf(out,
			 "# HELP xdms_iwf_jobs Unfinished IWF jobs in the store, by state.\n"
			 "# TYPE xdms_iwf_jobs gauge\nxdms_iwf_jobs{state=\"queued\"} %llu\n"
			 "xdms_iwf_jobs{state=\"running\"} %llu\n",
			 (unsigned long long)queued, (unsigned long long)running);
	if (!err)
		err = buf_printf(out,
				 "# HELP xdms_iwf_jobs_running Jobs a worker of this process is carrying out now.\n"
				 "# TYPE xdms_iwf_jobs_running gauge\nxdms_iwf_jobs_running %llu\n"
				 "# HELP xdms_iwf_retries_total Job attempts that failed transiently and were queued again.\n"
				 "# TYPE xdms_iwf_retries_total counter\nxdms_iwf_retries_total %llu\n"
				 "# HELP xdms_iwf_jobs_ended_total Jobs answered with a final <response>, by kind and code.\n"
				 "# TYPE xdms_iwf_jobs_ended_total counter\n",
				 (unsigned long long)atomic_load_explicit(&m->running, memory_order_relaxed),
				 (unsigned long long)atomic_load_explicit(&m->retries, memory_order_relaxed));
	for (size_t k = 0; !err && k < KIND_COUNT; k++) {
		for (size_t ci = 0; !err && ci <= CODE_COUNT; ci++) {
			uint64_t v = atomic_load_explicit(&m->ended[k][ci], memory_order_relaxed);

			if (!v)
				continue;
			if (ci < CODE_COUNT)
				err = buf_printf(out, "xdms_iwf_jobs_ended_total{kind=\"%s\",code=\"%u\"} %llu\n", kinds[k],
						 codes[ci], (unsigned long long)v);
			else
				err = buf_printf(out, "xdms_iwf_jobs_ended_total{kind=\"%s\",code=\"other\"} %llu\n",
						 kinds[k], (unsigned long long)v);
		}
	}
	if (!err)
		err = render_adapters(m, out);
	return err;
}
