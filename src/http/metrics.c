/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics. Request counters and the latency histogram are fixed
 * arrays of relaxed atomics, updated by every pool thread without locks and
 * read approximately by the /metrics handler. Store figures are read from
 * store_stats_get() at render time.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "http/http_int.h"

static const char *const methods[] = { "GET", "HEAD", "PUT", "DELETE", "OTHER" };
#define METHOD_COUNT (sizeof(methods) / sizeof(methods[0]))

static const unsigned statuses[] = { 200, 201, 304, 400, 401, 403, 404, 405, 408, 409, 412,
				     413, 414, 415, 500, 501, 503, 505, 507, 0 /* any other */ };
#define STATUS_COUNT (sizeof(statuses) / sizeof(statuses[0]))

static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };
#define BUCKET_COUNT (sizeof(buckets) / sizeof(buckets[0]))

struct http_metrics {
	atomic_uint_fast64_t requests[METHOD_COUNT][STATUS_COUNT];
	atomic_uint_fast64_t latency[BUCKET_COUNT + 1]; /* last = +Inf only */
	atomic_uint_fast64_t latency_count;
	atomic_uint_fast64_t latency_sum_us;
	double start_time; /* Unix seconds when the server started */
};

struct http_metrics *http_metrics_create(void)
{
	struct http_metrics *m = xcalloc(1, sizeof(struct http_metrics));
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	return m;
}

void http_metrics_destroy(struct http_metrics *m)
{
	free(m);
}

void http_metrics_observe(struct http_metrics *m, const char *method, unsigned status, double seconds)
{
	size_t mi = METHOD_COUNT - 1, si = STATUS_COUNT - 1, bi = BUCKET_COUNT;

	for (size_t i = 0; i < METHOD_COUNT - 1; i++)
		if (strcmp(method, methods[i]) == 0)
			mi = i;
	for (size_t i = 0; i < STATUS_COUNT - 1; i++)
		if (statuses[i] == status)
			si = i;
	for (size_t i = 0; i < BUCKET_COUNT; i++) {
		if (seconds <= buckets[i]) {
			bi = i;
			break;
		}
	}
	atomic_fetch_add_explicit(&m->requests[mi][si], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency[bi], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency_sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

enum xdms_err http_metrics_render(struct http_metrics *m, struct store *st, struct buf *out)
{
	struct store_stats s;
	uint64_t cumulative = 0;
	enum xdms_err err;

	err = buf_printf(out,
			 "# HELP xdms_build_info The running version (always 1).\n"
			 "# TYPE xdms_build_info gauge\nxdms_build_info{version=\"%s\"} 1\n"
			 "# HELP xdms_start_time_seconds When this process started, in Unix seconds.\n"
			 "# TYPE xdms_start_time_seconds gauge\nxdms_start_time_seconds %.3f\n",
			 PACKAGE_VERSION, m->start_time);
	if (!err)
		err = buf_append_str(out, "# HELP xdms_http_requests_total HTTP requests answered, by method and status.\n"
					  "# TYPE xdms_http_requests_total counter\n");
	for (size_t mi = 0; !err && mi < METHOD_COUNT; mi++) {
		for (size_t si = 0; !err && si < STATUS_COUNT; si++) {
			uint64_t v = atomic_load_explicit(&m->requests[mi][si], memory_order_relaxed);

			if (!v)
				continue;
			if (statuses[si])
				err = buf_printf(out, "xdms_http_requests_total{method=\"%s\",status=\"%u\"} %llu\n",
						 methods[mi], statuses[si], (unsigned long long)v);
			else
				err = buf_printf(out, "xdms_http_requests_total{method=\"%s\",status=\"other\"} %llu\n",
						 methods[mi], (unsigned long long)v);
		}
	}
	if (!err)
		err = buf_append_str(out, "# HELP xdms_http_request_duration_seconds Time from request to response.\n"
					  "# TYPE xdms_http_request_duration_seconds histogram\n");
	for (size_t i = 0; !err && i <= BUCKET_COUNT; i++) {
		cumulative += atomic_load_explicit(&m->latency[i], memory_order_relaxed);
		if (i < BUCKET_COUNT)
			err = buf_printf(out, "xdms_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
					 (unsigned long long)cumulative);
		else
			err = buf_printf(out, "xdms_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
					 (unsigned long long)cumulative);
	}
	if (!err)
		err = buf_printf(out,
				 "xdms_http_request_duration_seconds_sum %.6f\n"
				 "xdms_http_request_duration_seconds_count %llu\n",
				 (double)atomic_load_explicit(&m->latency_sum_us, memory_order_relaxed) / 1e6,
				 (unsigned long long)atomic_load_explicit(&m->latency_count, memory_order_relaxed));
	if (err)
		return err;
	err = store_stats_get(st, &s);
	if (err)
		return err;
	err = buf_printf(out,
			 "# HELP xdms_documents Documents stored.\n# TYPE xdms_documents gauge\nxdms_documents %llu\n"
			 "# HELP xdms_users Users provisioned.\n# TYPE xdms_users gauge\nxdms_users %llu\n"
			 "# HELP xdms_change_seq Sequence number of the newest change.\n"
			 "# TYPE xdms_change_seq counter\nxdms_change_seq %llu\n"
			 "# HELP xdms_store_map_size_bytes LMDB map size.\n"
			 "# TYPE xdms_store_map_size_bytes gauge\nxdms_store_map_size_bytes %llu\n"
			 "# HELP xdms_store_used_bytes LMDB pages in use.\n"
			 "# TYPE xdms_store_used_bytes gauge\nxdms_store_used_bytes %llu\n"
			 "# HELP xdms_store_map_grows_total Times the LMDB map was grown.\n"
			 "# TYPE xdms_store_map_grows_total counter\nxdms_store_map_grows_total %llu\n"
			 "# HELP xdms_store_write_batch_size Writes per group commit.\n"
			 "# TYPE xdms_store_write_batch_size histogram\n",
			 (unsigned long long)s.doc_count, (unsigned long long)s.user_count,
			 (unsigned long long)s.last_seq, (unsigned long long)s.map_size,
			 (unsigned long long)s.used_bytes, (unsigned long long)s.map_grows);
	cumulative = 0;
	for (size_t i = 0; !err && i < STORE_BATCH_BUCKETS; i++) {
		cumulative += s.batch_size_buckets[i];
		if (i + 1 < STORE_BATCH_BUCKETS)
			err = buf_printf(out, "xdms_store_write_batch_size_bucket{le=\"%u\"} %llu\n", 1u << i,
					 (unsigned long long)cumulative);
		else
			err = buf_printf(out, "xdms_store_write_batch_size_bucket{le=\"+Inf\"} %llu\n",
					 (unsigned long long)cumulative);
	}
	if (!err)
		err = buf_printf(out,
				 "xdms_store_write_batch_size_sum %llu\nxdms_store_write_batch_size_count %llu\n",
				 (unsigned long long)s.batched_writes, (unsigned long long)s.batches);
	if (!err)
		err = buf_printf(out,
				 "# HELP xdms_store_flushes_total Data flushes (fdatasync) of the store's writer.\n"
				 "# TYPE xdms_store_flushes_total counter\nxdms_store_flushes_total %llu\n",
				 (unsigned long long)s.flushes);
	return err;
}
