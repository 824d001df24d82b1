/* SPDX-License-Identifier: MIT */
/*
 * notify/notifier: the xcap-diff event package (RFC 5875 over RFC 6665).
 *
 * Subscriptions. A SUBSCRIBE with Event: xcap-diff carries a resource list
 * (RFC 4826) of XCAP resource selectors relative to the XCAP root: documents,
 * collections (ending in "/": every document below, including later ones)
 * and element or attribute selectors ("/~~/"). The subscriber is who
 * P-Asserted-Identity says when the request comes from sip.trusted_peers,
 * else From when sip.trust_from is set, else whom Digest authenticates
 * (the XCAP users and passwords). A user may list only its own documents;
 * trusted servers and admins (auth.server_identities, auth.admin_identities)
 * may list any. Every accepted subscription is written to the store's subs
 * database before its 200 goes out, and lives on across restarts.
 *
 * Notifications. Right after every accepted (re)SUBSCRIBE: a full-state
 * NOTIFY. Then the notifier reads the store's change feed (woken by the
 * writer's commit listener, and once a second for writes by other
 * processes) and sends each subscription the changes it watches, in feed
 * order, one NOTIFY in flight per subscription: ETags only (no-patching),
 * RFC 5261 patches (xcap-patching), or transitions coalesced within
 * notify.aggregate_window (aggregate). Each subscription remembers, durably,
 * the last feed sequence its subscriber acknowledged; after a restart it
 * resumes from there with a higher CSeq, so nothing is skipped. A NOTIFY is
 * sent again after a restart only when its 200 had not been recorded yet
 * (a crash, not a clean stop: a clean stop waits for answers in flight).
 *
 * Threads: create and destroy on the main thread; everything else runs on
 * the SIP loop thread (the SUBSCRIBE handler, timers, the feed reader).
 */
#ifndef XDMS_NOTIFY_NOTIFIER_H
#define XDMS_NOTIFY_NOTIFIER_H

#include "base/buf.h"
#include "base/err.h"
#include "conf/conf.h"
#include "sip/sip.h"
#include "store/store.h"
#include "xcap/xcap.h"

struct notifier;

/*
 * Loads the stored subscriptions. @c, @st and @reg are borrowed and must
 * outlive the notifier. @xcap_root_uri is the absolute XCAP root written in
 * xcap-root ("http://host:port/xcap-root/"), @root_path its path
 * ("/xcap-root", or "" for the server root), used to read selectors given
 * as absolute URIs. Returns CORRUPT (with *why) for an unreadable record.
 */
enum xdms_err notifier_create(const struct conf *c, struct store *st, const struct xcap_registry *reg,
			      const char *xcap_root_uri, const char *root_path, struct notifier **out,
			      char **why) XDMS_WUR;

/* The SUBSCRIBE handler for sip_server_start(); @arg is the notifier. */
void notifier_on_subscribe(void *arg, struct sip_request *req);

/*
 * Starts notifying through @sip (started with notifier_on_subscribe):
 * resumes the loaded subscriptions (ending those that expired while the
 * server was down) and starts reading the feed. Any thread.
 */
enum xdms_err notifier_start(struct notifier *n, struct sip_server *sip) XDMS_WUR;

/*
 * Before sip_server_stop(): stops sending new NOTIFYs and waits up to
 * @grace_ms for those in flight to be answered and for pending
 * subscription writes to be durable. Main thread.
 */
void notifier_quiesce(struct notifier *n, unsigned grace_ms);

/* After sip_server_stop(): records every subscription's progress and frees
 * the notifier. NULL-tolerant. */
void notifier_destroy(struct notifier *n);

/* Counters for /metrics and xdmsctl stats (approximate, any thread). */
struct notifier_stats {
	uint64_t subscriptions;
	uint64_t notifies_sent;
	uint64_t notifies_failed;
};
void notifier_stats_get(const struct notifier *n, struct notifier_stats *out);
/* Appends the counters in the Prometheus text format (for http_server_add_metrics). */
enum xdms_err notifier_metrics(void *notifier, struct buf *out) XDMS_WUR;

#endif
