/* SPDX-License-Identifier: MIT */
/*
 * Watches: keeping a subscribe-profile's PCC up to date (SPEC §5.3 step 8).
 *
 * A subscribe-profile job makes the first import and stores a watch record
 * (store.h, "IWF watches"); from then on this file keeps it: it asks the
 * adapter's kind for the profile only if it changed since the stored
 * validator (a conditional GET for xcap and http, and of the user's own
 * card for carddav), imports a change through the same steps as an
 * import-profile (iwf_profile_from, iwf_import_store), and replaces the
 * request's one <response> with seq + 1. A watch whose target is the
 * address book (a carddav or JSON http adapter) imports the book again
 * instead, from the stored sync token (book_poll). An update applied
 * twice changes nothing: the merge finds its values there already, the PCC
 * is not written, and no response is written either.
 *
 * The schedule is in memory, rebuilt from the store at start-up: a binary
 * min-heap of watches by due time, and two string maps (by key, by webhook
 * id). A watch polls at its own phase of the adapter's interval, a hash of
 * its key (iwf_watch_next_slot), so many watches spread evenly over the
 * interval and each keeps a steady rhythm; there is no burst at the turn of
 * a minute. At start-up every watch is polled at once (in the order of its
 * stored next poll), whatever its slot: nobody knows what changed while the
 * server was down, and a webhook's calls went nowhere meanwhile. After that
 * first poll each watch is back at its own phase.
 *
 * A watch ends when it expires or its 3rd party ends it (the <response>
 * becomes status="terminated" code="410"), or when its request goes: the
 * Feature Handler's commit hook drops the record in the client's own
 * transaction and bumps the store's watch generation; the commit listener
 * (pool.c) calls iwf_watches_kick() and a watch thread forgets every watch
 * whose record is gone and unregisters its webhook. Before each poll the
 * record is read again, so a deleted request never polls again even if the
 * kick was missed.
 *
 * JSON adapters poll from the user's stored sync token or delta link, so
 * only changes come back (poll_json); an OAuth 2.0 grant refused during a
 * watch ends it with 401. Graph-style webhooks (an adapter's
 * webhook-style) are subscription resources at the 3rd party, renewed by
 * the watch thread before they expire (iwf_watch_hook_graph, graph_hook).
 *
 * Webhooks: the 3rd party calls POST /iwf/hook/<id> with the body's
 * HMAC-SHA256 under the watch's secret in X-Xdms-Signature; a good call
 * makes the watch due at once (the body is not trusted for content: the
 * watch fetches the profile as it would poll). GET /iwf/hook/<id>?challenge=T
 * echoes T (the validation handshake).
 *
 * Threads: @threads watch threads (named xdms-watch), each with its own
 * libcurl handle, take due watches from the heap; a watch is polled by one
 * thread at a time (is_busy). The schedule is under one mutex, held only to
 * move entries: the HTTP threads (webhooks), the workers (a new watch) and
 * the store's writer thread (the kick) take it briefly and never wait for
 * a poll.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <nettle/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/clock.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/smap.h"
#include "iwf/iwf_int.h"
#include "json/json.h"
#include "sip/sip.h"

#define IDLE_WAIT_MS 5000u   /* the longest sleep with nothing due */
#define RETRY_MS 5000u       /* a watch whose record cannot be read tries again after this */
#define CHALLENGE_MAX 256    /* the longest validation token echoed */
#define VALIDATION_MAX 1024  /* the longest graph-style validationToken echoed (decoded) */
#define NOTIFY_VALUES_MAX 100 /* graph-style notifications checked in one call */

struct entry {
	char *key;         /* xui "\n" request id */
	char *xui, *request_id;
	char *adapter;
	char hook_id[STORE_WATCH_HOOK_MAX];
	char hook_secret[STORE_WATCH_SECRET_MAX];
	char *hook_remote; /* a graph-style webhook's subscription at the 3rd party, or NULL */
	uint64_t due_ms;
	size_t heap_at;    /* SIZE_MAX when not in the heap */
	bool is_busy;      /* a thread polls it */
	bool is_again;     /* made due while busy: poll again at once */
	bool is_refreshed; /* a job set it up again while busy: keep it whatever the poll said */
	bool is_gone;      /* its record went while busy: forget it after */
	bool needs_attention; /* a SIP event came while busy: see to it after */
	/* SIP (an xcap adapter with a sip-uri); under the lock */
	struct sip_sub *sub;  /* the xcap-diff subscription, or NULL */
	uint64_t sip_gen;     /* the link of the current subscription */
	bool has_sip;         /* its adapter watches over SIP */
	bool is_sip_fallback; /* SIP failed: polled at the adapter's interval */
	unsigned char *dialog; /* the dialog to store (on_dialog), or NULL */
	size_t dialog_len;
	bool has_sip_end;     /* on_end came: its reason and status below */
	int sip_end_status;
	char sip_end_reason[32];
};

/* A key whose entry has SIP events to see to. */
struct pend {
	char *key;
	struct pend *next;
};

/* The @arg of a SIP subscription's callbacks: it outlives the entry if need
 * be, and finds it again by key; @gen tells a stale subscription from the
 * entry's current one. Freed by on_end. */
struct sip_link {
	struct iwf_watches *ws;
	char *key;
	uint64_t gen;
};

struct watch_thread {
	struct iwf_watches *ws;
	pthread_t thread;
	void *curl;
	struct store_watch rec; /* the record being worked on */
};

/* A webhook to unregister, outside the lock. */
struct unreg {
	char *adapter;
	char *hook_remote; /* graph style: the 3rd party's subscription id */
	char hook_id[STORE_WATCH_HOOK_MAX];
	struct unreg *next;
};

struct iwf_watches {
	const struct iwf_env *env;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct entry **heap;
	size_t heap_len, heap_cap;
	struct smap by_key;  /* key -> entry (value) */
	struct smap by_hook; /* webhook id -> entry (value) */
	struct smap expected; /* graph-style webhook ids being registered (their handshake may come) */
	size_t count;
	bool is_stopping;
	bool is_reconcile_due;
	uint64_t seen_gen;
	struct unreg *unregs;
	struct watch_thread *threads;
	unsigned thread_count;
	struct sip_subscriber *sip; /* NULL: no SIP, every watch polls */
	unsigned sip_users;         /* threads inside a sip_sub_start/resume */
	pthread_cond_t sip_idle;
	uint64_t sip_gen_next;
	struct pend *attention;

	atomic_uint_fast64_t n_polls, n_unchanged, n_changed, n_poll_failed, n_updates, n_held, n_failures, n_terminated;
	atomic_uint_fast64_t n_hook_ok, n_hook_unauthorized, n_hook_forbidden, n_hook_unknown;
	atomic_uint_fast64_t n_sip_notifies, n_sip_fallbacks;
};

/* ---- the schedule (lock held) -------------------------------------------------------- */

static void heap_swap(struct iwf_watches *ws, size_t a, size_t b)
{
	struct entry *t = ws->heap[a];

	ws->heap[a] = ws->heap[b];
	ws->heap[b] = t;
	ws->heap[a]->heap_at = a;
	ws->heap[b]->heap_at = b;
}

static void heap_up(struct iwf_watches *ws, size_t i)
{
	while (i > 0 && ws->heap[(i - 1) / 2]->due_ms > ws->heap[i]->due_ms) {
		heap_swap(ws, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct iwf_watches *ws, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < ws->heap_len && ws->heap[l]->due_ms < ws->heap[m]->due_ms)
			m = l;
		if (r < ws->heap_len && ws->heap[r]->due_ms < ws->heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(ws, i, m);
		i = m;
	}
}

static void heap_push(struct iwf_watches *ws, struct entry *e)
{
	if (ws->heap_len == ws->heap_cap) {
		ws->heap_cap = ws->heap_cap ? 2 * ws->heap_cap : 64;
		ws->heap = xrealloc(ws->heap, ws->heap_cap * sizeof(*ws->heap));
	}
	e->heap_at = ws->heap_len;
	ws->heap[ws->heap_len++] = e;
	heap_up(ws, e->heap_at);
}

static void heap_remove(struct iwf_watches *ws, struct entry *e)
{
	size_t i = e->heap_at;

	if (i == SIZE_MAX)
		return;
	ws->heap_len--;
	if (i != ws->heap_len) {
		ws->heap[i] = ws->heap[ws->heap_len];
		ws->heap[i]->heap_at = i;
		heap_down(ws, i);
		heap_up(ws, i);
	}
	e->heap_at = SIZE_MAX;
}

/* Moves @e to @due_ms (in the heap unless a thread has it). */
static void entry_due(struct iwf_watches *ws, struct entry *e, uint64_t due_ms)
{
	if (e->is_busy) {
		if (due_ms <= wall_ms())
			e->is_again = true;
		return;
	}
	heap_remove(ws, e);
	e->due_ms = due_ms;
	heap_push(ws, e);
	pthread_cond_signal(&ws->wake);
}

static char *key_of(const char *xui, const char *request_id)
{
	return xasprintf("%s\n%s", xui, request_id);
}

static void hook_set(struct iwf_watches *ws, struct entry *e, const char *id, const char *secret)
{
	struct smap_slot *slot;

	if (e->hook_id[0] && strcmp(e->hook_id, id) != 0 && (slot = smap_get(&ws->by_hook, e->hook_id, false)))
		smap_drop(&ws->by_hook, slot);
	snprintf(e->hook_id, sizeof(e->hook_id), "%s", id);
	snprintf(e->hook_secret, sizeof(e->hook_secret), "%s", secret);
	if (id[0])
		smap_get(&ws->by_hook, id, true)->val = e;
}

/* The entry of @w, created when new; its hook and adapter follow @w. */
static struct entry *entry_get(struct iwf_watches *ws, const struct store_watch *w)
{
	char *key = key_of(w->xui, w->request_id);
	struct smap_slot *slot = smap_get(&ws->by_key, key, true);
	struct entry *e = slot->val;

	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->key = key;
		key = NULL;
		e->xui = xstrdup(w->xui);
		e->request_id = xstrdup(w->request_id);
		e->heap_at = SIZE_MAX;
		slot->val = e;
		ws->count++;
	}
	free(key);
	if (!e->adapter || strcmp(e->adapter, w->adapter) != 0) {
		free(e->adapter);
		e->adapter = xstrdup(w->adapter);
	}
	hook_set(ws, e, w->hook_id, w->hook_secret);
	free(e->hook_remote);
	e->hook_remote = w->hook_remote[0] ? xstrdup(w->hook_remote) : NULL;
	return e;
}

/* Forgets @e (not in the heap, not busy), queueing its webhook's unregistration. */
static void entry_forget(struct iwf_watches *ws, struct entry *e, bool is_unregister)
{
	struct smap_slot *slot;

	heap_remove(ws, e);
	if (is_unregister && e->hook_id[0]) {
		struct unreg *u = xcalloc(1, sizeof(*u));

		u->adapter = xstrdup(e->adapter);
		u->hook_remote = e->hook_remote ? xstrdup(e->hook_remote) : NULL;
		memcpy(u->hook_id, e->hook_id, sizeof(u->hook_id));
		u->next = ws->unregs;
		ws->unregs = u;
	}
	hook_set(ws, e, "", "");
	if (e->sub) {
		/* Ended at the remote side too (a no-op once it has ended). */
		sip_sub_unsubscribe(e->sub);
		sip_sub_release(e->sub);
		e->sub = NULL;
	}
	free(e->dialog);
	if ((slot = smap_get(&ws->by_key, e->key, false)))
		smap_drop(&ws->by_key, slot);
	ws->count--;
	memset(e->hook_secret, 0, sizeof(e->hook_secret));
	free(e->hook_remote);
	free(e->key);
	free(e->xui);
	free(e->request_id);
	free(e->adapter);
	free(e);
}

/* ---- slots and hooks --------------------------------------------------------------- */

uint64_t iwf_watch_next_slot(const char *xui, const char *request_id, uint64_t interval_ms, uint64_t now_ms)
{
	uint64_t h = fnv1a_add(fnv1a_add(fnv1a_str(xui), "\n", 1), request_id, strlen(request_id)), slot;

	if (!interval_ms)
		return now_ms;
	/* FNV-1a's low bits follow the last bytes closely (ids "w-1", "w-2"
	 * ...); a finalizer mixes every bit in before the modulo. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	slot = now_ms - now_ms % interval_ms + h % interval_ms;
	while (slot <= now_ms)
		slot += interval_ms;
	return slot;
}

static void hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void iwf_watch_hook_new(char id[STORE_WATCH_HOOK_MAX], char secret[STORE_WATCH_SECRET_MAX])
{
	uint8_t r[32 + 16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* no randomness: no secret worth the name */
		got += (size_t)n;
	}
	hex(r, 16, id);
	hex(r + 16, 32, secret);
	memset(r, 0, sizeof(r));
}

/* ---- graph-style webhooks ------------------------------------------------------------------- */

/*
 * The subscription resources of Graph-shaped APIs: xdmsd POSTs
 * {changeType, notificationUrl, resource, clientState, expirationDateTime}
 * to the adapter's webhook-register URL; before answering, the 3rd party
 * POSTs to the notification URL with ?validationToken=T and wants T back as
 * text/plain within seconds, so the id is announced (expected) for the
 * length of the call. The answer's id names the subscription (PATCH to
 * renew, DELETE to end) and its expirationDateTime the expiry granted,
 * which may be shorter than asked: the watch renews when two thirds of it
 * have passed. A notification is {"value": [{"clientState": ...}, ...]};
 * every clientState must be the watch's secret.
 */
static void hook_expect(struct iwf_watches *ws, const char *hook_id, bool is_expected)
{
	struct smap_slot *slot;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	if (is_expected)
		smap_get(&ws->expected, hook_id, true)->val = (void *)1;
	else if ((slot = smap_get(&ws->expected, hook_id, false)))
		smap_drop(&ws->expected, slot);
	pthread_mutex_unlock(&ws->lock);
}

enum xdms_err iwf_watch_hook_graph(const struct iwf_env *env, const struct iwf_call *call, struct store_watch *w,
				   struct iwf_result *r)
{
	const struct iwf_adapter *a = call->a;
	uint64_t now = wall_ms(), granted = 0;
	enum xdms_err err = XDMS_ERR_INVAL;
	char *callback, *url;

	if (w->hook_id[0] != IWF_HOOK_GRAPH_PREFIX) {
		char id[STORE_WATCH_HOOK_MAX];

		iwf_watch_hook_new(id, w->hook_secret);
		snprintf(w->hook_id, sizeof(w->hook_id), "%c%.40s", IWF_HOOK_GRAPH_PREFIX, id);
		w->hook_remote[0] = '\0';
	}
	if (w->hook_remote[0]) {
		url = xasprintf("%s/%s", a->webhook_register, w->hook_remote);
		err = iwf_http_hook_graph(call, "PATCH", url, NULL, NULL, NULL, w->expires_ms, NULL, 0, &granted, r);
		free(url);
		if (err)
			log_info("iwf watch %s %s: renewing its webhook subscription failed (%s); making a new one",
				 w->xui, w->request_id, r->reason);
	}
	if (err) {
		callback = xasprintf("%s/iwf/hook/%s", a->webhook_base, w->hook_id);
		hook_expect(env->watches, w->hook_id, true);
		err = iwf_http_hook_graph(call, "POST", a->webhook_register, callback,
					  w->remote_user[0] ? w->remote_user : call->url, w->hook_secret, w->expires_ms,
					  w->hook_remote, sizeof(w->hook_remote), &granted, r);
		hook_expect(env->watches, w->hook_id, false);
		free(callback);
	}
	if (err)
		return err;
	if (!granted || granted > w->expires_ms)
		granted = w->expires_ms;
	w->hook_renew_ms = granted > now ? now + (granted - now) * 2 / 3 : now;
	return XDMS_ERR_OK;
}

/* ---- one poll (a watch thread, no lock held) ----------------------------------------------- */

static bool watch_wants(void *arg)
{
	const void *const *pair = arg;
	const struct iwf_env *env = pair[0];
	const struct store_watch *w = pair[1];
	struct store_read *rd = NULL;
	uint64_t current = 0;
	enum xdms_err err = store_read_begin(env->st, &rd);

	if (!err)
		err = store_job_current(rd, w->xui, w->request_id, &current);
	store_read_end(rd);
	return !err && current == w->job_id;
}

/* The credentials a watch calls with, and where they are sealed (for OAuth
 * 2.0, whose refresh token may rotate): the request's own (the place the
 * record names, or "request:ID" for records older than that), else the
 * adapter's. @name holds the seal's name. */
static void watch_credentials(const struct iwf_env *env, const struct store_watch *w, struct iwf_cred *c,
			      struct iwf_seal *seal, char name[STORE_WATCH_PARAM_MAX], char **owner)
{
	*owner = NULL;
	memset(c, 0, sizeof(*c));
	memset(seal, 0, sizeof(*seal));
	if (w->cred[0])
		snprintf(name, STORE_WATCH_PARAM_MAX, "%s", w->cred);
	else
		snprintf(name, STORE_WATCH_PARAM_MAX, "request:%s", w->request_id);
	if (iwf_cred_load(env->st, env->key, w->xui, name, c) == XDMS_ERR_OK) {
		seal->owner = w->xui;
		seal->name = name;
		return;
	}
	memset(c, 0, sizeof(*c));
	*owner = xasprintf(IWF_ADAPTER_OWNER "%s", w->adapter);
	if (iwf_cred_load(env->st, env->key, *owner, IWF_ADAPTER_SECRET, c) != XDMS_ERR_OK) {
		memset(c, 0, sizeof(*c));
		return;
	}
	seal->owner = *owner;
	seal->name = IWF_ADAPTER_SECRET;
}

static void record_put(const struct iwf_env *env, const struct store_watch *w)
{
	enum xdms_err err = store_watch_put(env->st, w);

	if (err)
		log_warn("iwf watch %s %s: the record could not be stored: %s", w->xui, w->request_id,
			 xdms_err_str(err));
}

/* Writes a new <response> with seq + 1; false when the request is gone. */
static bool respond(const struct iwf_env *env, struct store_watch *w, unsigned code, const char *status,
		    const char *reason, unsigned count)
{
	char *body;
	bool is_gone = false, ok;

	w->seq++;
	body = iwf_response_body(STORE_JOB_SUBSCRIBE, code, status, reason, count, w->pcc_etag, w->seq,
				 w->expires_ms);
	ok = iwf_watch_response_write(env, w, body, &is_gone);
	free(body);
	if (!ok)
		w->seq--;
	return ok;
}

static void unregister(struct watch_thread *t, const char *adapter_id, const char *hook_id, const char *hook_remote)
{
	const struct iwf_env *env = t->ws->env;
	struct iwf_adapter a;
	struct iwf_result r = { 0 };
	char *why = NULL, *callback;

	if (iwf_adapter_load(env->st, env->opt, adapter_id, &a, &why)) {
		log_warn("iwf webhook %s: not unregistered: adapter %s is unusable", hook_id, adapter_id);
		free(why);
		return;
	}
	if (a.hook_style == IWF_HOOK_GRAPH && a.webhook_register && hook_remote) {
		/* A graph-style subscription goes with DELETE of its resource;
		 * under OAuth 2.0 with the adapter's own credential only (the
		 * user's sealed token may be gone with the request). */
		struct iwf_call call = { .env = env, .curl = t->curl, .a = &a };
		char *url = xasprintf("%s/%s", a.webhook_register, hook_remote);
		char *owner = xasprintf(IWF_ADAPTER_OWNER "%s", adapter_id);
		struct iwf_cred c;

		memset(&c, 0, sizeof(c));
		if (iwf_cred_load(env->st, env->key, owner, IWF_ADAPTER_SECRET, &c) != XDMS_ERR_OK)
			memset(&c, 0, sizeof(c));
		call.username = c.username;
		call.password = c.password;
		call.token = c.token;
		call.seal.owner = owner;
		call.seal.name = IWF_ADAPTER_SECRET;
		if (iwf_http_hook_graph(&call, "DELETE", url, NULL, NULL, NULL, 0, NULL, 0, NULL, &r))
			log_warn("iwf webhook %s: deleting its subscription at adapter %s failed: %s (it ends at its "
				 "expiry)", hook_id, adapter_id, r.reason);
		else
			log_info("iwf webhook %s: its subscription at adapter %s deleted", hook_id, adapter_id);
		memset(&c, 0, sizeof(c));
		free(owner);
		free(url);
	} else if (a.hook_style != IWF_HOOK_GRAPH && a.webhook_register && a.webhook_base) {
		struct iwf_call call = { .env = env, .curl = t->curl, .a = &a };

		callback = xasprintf("%s/iwf/hook/%s", a.webhook_base, hook_id);
		if (iwf_http_hook_register(&call, a.webhook_register, false, callback, hook_id, NULL, NULL, 0, &r))
			log_warn("iwf webhook %s: unregistering at adapter %s failed: %s", hook_id, adapter_id,
				 r.reason);
		else
			log_info("iwf webhook %s: unregistered at adapter %s", hook_id, adapter_id);
		free(callback);
	}
	iwf_adapter_cleanup(&a);
}

/* The subscription ends (SPEC §5.3 step 8): terminated, 410 (or @code). */
static void terminate_code(struct watch_thread *t, struct store_watch *w, unsigned code, const char *reason)
{
	const struct iwf_env *env = t->ws->env;

	if (respond(env, w, code, "terminated", reason, 0)) {
		w->state = STORE_WATCH_TERMINATED;
		w->code = code;
		snprintf(w->reason, sizeof(w->reason), "%s", reason);
		record_put(env, w);
		atomic_fetch_add(&t->ws->n_terminated, 1);
		log_info("iwf watch %s %s: terminated: %s", w->xui, w->request_id, reason);
	}
	/* The webhook and the SIP subscription end when the caller forgets
	 * the watch (entry_forget with is_unregister). */
}

static void terminate(struct watch_thread *t, struct store_watch *w, const char *reason)
{
	terminate_code(t, w, 410, reason);
}

static void failed(struct watch_thread *t, struct store_watch *w, const struct iwf_result *r)
{
	atomic_fetch_add(&t->ws->n_failures, 1);
	if (!w->failures)
		log_warn("iwf watch %s %s (adapter %s): poll failed %u: %s", w->xui, w->request_id, w->adapter, r->code,
			 r->reason);
	w->failures++;
	snprintf(w->reason, sizeof(w->reason), "%u %.150s", r->code, r->reason);
}

/* A changed profile in @body: import it, or hold it. */
/* A changed profile: @body as the 3rd party gave it, or @pcc (@pcc_len)
 * transformed already. True when the PCC holds it now (a sync state may
 * move on); false when it was held, failed or cancelled. */
static bool apply(struct watch_thread *t, struct store_watch *w, const struct iwf_adapter *a,
		  const struct iwf_prefs *prefs, const char *validator, const struct buf *body, const char *pcc,
		  size_t pcc_len)
{
	const struct iwf_env *env = t->ws->env;
	const void *pair[2] = { env, w };
	unsigned fields = IWF_FIELD_ALL;
	struct iwf_import in = { w->xui, a->id, w->merge_policy[0] ? w->merge_policy : NULL, prefs, 0, watch_wants,
				 pair };
	struct iwf_import_out io = { 0 };
	struct iwf_result r = { 0 };
	char *own = NULL, *why = NULL, reason[IWF_REASON_MAX];

	if (!prefs->is_auto_update) {
		/* Seen once, said once: the same held version is not reported again. */
		if (w->state == STORE_WATCH_HELD && !strcmp(w->held_validator, validator))
			return false;
		snprintf(w->held_validator, sizeof(w->held_validator), "%s", validator);
		w->state = STORE_WATCH_HELD;
		snprintf(reason, sizeof(reason),
			 "a change at %s is held: auto-update is off in subscription-prefs; nothing was imported",
			 a->id);
		if (respond(env, w, 200, NULL, reason, 0))
			atomic_fetch_add(&t->ws->n_held, 1);
		return false;
	}
	w->state = STORE_WATCH_ACTIVE;
	if (iwf_fields_parse(w->fields[0] ? w->fields : NULL, &fields, &why)) {
		iwf_result_set(&r, 400, false, "%s", why);
		free(why);
		failed(t, w, &r);
		return false;
	}
	in.fields = fields & prefs->import_fields;
	if (!pcc) {
		if (iwf_profile_from(env, a, w->xui, w->remote_user, body->data ? body->data : "", body->len, NULL,
				     &own, &pcc_len, &r)) {
			failed(t, w, &r);
			return false;
		}
		pcc = own;
	}
	iwf_import_store(env, &in, pcc, pcc_len, &io);
	free(own);
	if (io.is_cancelled)
		return false;
	if (io.r.code >= 300) {
		failed(t, w, &io.r);
		return false;
	}
	w->failures = 0;
	w->reason[0] = '\0';
	snprintf(w->validator, sizeof(w->validator), "%s", validator);
	if (!io.is_changed)
		return true; /* nothing new for the PCC (or applied before): no new response */
	snprintf(w->pcc_etag, sizeof(w->pcc_etag), "%s", io.pcc_etag);
	w->imported_count = io.count;
	w->code = io.r.code;
	w->last_update_ms = wall_ms();
	snprintf(reason, sizeof(reason), "update %u applied: profile imported from %s", w->seq, a->id);
	if (respond(env, w, io.r.code, NULL, reason, io.count)) {
		atomic_fetch_add(&t->ws->n_updates, 1);
		log_info("iwf watch %s %s: update applied (seq %u, pcc %s)", w->xui, w->request_id, w->seq,
			 w->pcc_etag);
	}
	return true;
}

/* ---- JSON APIs: delta polling --------------------------------------------------------------- */

/*
 * A watch of a format-json adapter reads the 3rd party page by page from
 * the user's stored sync token or delta link (adapter_http.c), so only
 * changes come back; OAuth 2.0 access tokens come from the request's
 * sealed refresh token. A delta with nothing for the user is no update; an
 * expired state (410) is one full sync; the state moves on once the PCC
 * holds what it gave. The validator is a hash of the transformed profile,
 * so that a change held (auto-update off) is reported once.
 */
static enum xdms_err poll_json(struct watch_thread *t, struct store_watch *w, const struct iwf_adapter *a,
			       const struct iwf_prefs *prefs, struct iwf_call *call, bool *is_changed,
			       struct iwf_result *r)
{
	const struct iwf_env *env = t->ws->env;
	struct iwf_sync sync = { 0 };
	struct buf body;
	char *pcc = NULL, validator[32];
	size_t pcc_len = 0;
	enum xdms_err err;

	*is_changed = false;
	err = iwf_sync_load(env->st, w->xui, a->id, &sync);
	if (err) {
		iwf_result_set(r, 500, true, "the sync state could not be read (%s)", xdms_err_str(err));
		return err;
	}
	call->sync = &sync;
	buf_init(&body, a->max_response);
	err = a->kind->fetch(call, &body, r);
	if (!err)
		err = iwf_profile_from(env, a, w->xui, w->remote_user[0] ? w->remote_user : NULL,
				       body.data ? body.data : "", body.len, &sync, &pcc, &pcc_len, r);
	call->sync = NULL;
	if (!err && !pcc) {
		/* Nothing for this user since the last state: no update. */
		if (iwf_sync_save(env->st, w->xui, a->id, &sync))
			log_warn("iwf watch %s %s: the sync state of adapter %s cannot be stored", w->xui,
				 w->request_id, a->id);
	} else if (!err) {
		*is_changed = true;
		atomic_fetch_add(&t->ws->n_changed, 1);
		snprintf(validator, sizeof(validator), "J:%016llx", (unsigned long long)fnv1a_add(fnv1a_str(""), pcc,
													       pcc_len));
		if (apply(t, w, a, prefs, validator, NULL, pcc, pcc_len) &&
		    iwf_sync_save(env->st, w->xui, a->id, &sync))
			log_warn("iwf watch %s %s: the sync state of adapter %s cannot be stored", w->xui,
				 w->request_id, a->id);
		if (sync.is_reset)
			log_info("iwf watch %s %s: the sync state at %s had expired; a full sync was made", w->xui,
				 w->request_id, a->id);
	}
	free(pcc);
	buf_cleanup(&body);
	iwf_sync_cleanup(&sync);
	return err;
}

/* ---- the address book (target address-book: a carddav or JSON http adapter) ------------------ */

/*
 * A watch of the address book polls by importing it again (book.c): the
 * book is listed from the sync-token the last import stored, and only the
 * cards that changed are read, so a poll with nothing new is one listing
 * and writes nothing. A change replaces the <response> (seq + 1) with the
 * contacts added, updated and removed as imported-count. The watch's
 * validator is the book's URL, found at subscribe time: polls make no
 * discovery; a poll that fails there finds the book again from the
 * adapter's URL. With auto-update off the book is not read: the stored
 * token keeps every change, and the first poll after auto-update is on
 * again imports them.
 */
static void book_poll(struct watch_thread *t, struct store_watch *w, const struct iwf_adapter *a,
		      const struct iwf_prefs *prefs, const struct iwf_cred *cred)
{
	const struct iwf_env *env = t->ws->env;
	const void *pair[2] = { env, w };
	struct iwf_book_job bq = { w->xui, w->remote_user[0] ? w->remote_user : NULL, IWF_FIELD_ALL,
				   prefs->is_auto_store, watch_wants, (void *)pair, w->validator };
	struct iwf_book_outcome bo = { 0 };
	struct iwf_result r = { 0 };
	struct store_job job;
	char reason[IWF_REASON_MAX], *why = NULL;
	uint64_t t0;

	if (!prefs->is_auto_update) {
		w->state = STORE_WATCH_HELD;
		return;
	}
	w->state = STORE_WATCH_ACTIVE;
	if (iwf_fields_parse(w->fields[0] ? w->fields : NULL, &bq.fields, &why)) {
		iwf_result_set(&r, 400, false, "%s", why);
		free(why);
		failed(t, w, &r);
		return;
	}
	bq.fields &= prefs->import_fields;
	/* book.c names the job in its log lines: the request's, as it set up the watch. */
	memset(&job, 0, sizeof(job));
	job.id = w->job_id;
	job.kind = STORE_JOB_SUBSCRIBE;
	snprintf(job.xui, sizeof(job.xui), "%s", w->xui);
	snprintf(job.request_id, sizeof(job.request_id), "%s", w->request_id);
	t0 = monotonic_ms();
	iwf_book_import(env, t->curl, &job, a, cred, &bq, &bo);
	if (bo.r.code >= 300 && w->validator[0] && !bo.is_cancelled) {
		/* The book may have moved: found again from the adapter's URL. */
		w->validator[0] = '\0';
		memset(&bo, 0, sizeof(bo));
		iwf_book_import(env, t->curl, &job, a, cred, &bq, &bo);
	}
	iwf_metrics_call(env->metrics, a->id, (double)(monotonic_ms() - t0) / 1000.0, bo.r.code >= 300);
	if (bo.is_cancelled)
		return;
	snprintf(w->validator, sizeof(w->validator), "%s", bo.book_url);
	if (bo.r.code >= 300) {
		atomic_fetch_add(&t->ws->n_poll_failed, 1);
		failed(t, w, &bo.r);
		return;
	}
	if (w->failures)
		log_info("iwf watch %s %s: the 3rd party answers again after %u failed poll(s)", w->xui, w->request_id,
			 w->failures);
	w->failures = 0;
	w->reason[0] = '\0';
	if (!bo.changed) {
		atomic_fetch_add(&t->ws->n_unchanged, 1);
		return; /* nothing new (or applied before): no new response */
	}
	atomic_fetch_add(&t->ws->n_changed, 1);
	w->imported_count = bo.changed;
	w->code = bo.r.code;
	w->last_update_ms = wall_ms();
	snprintf(reason, sizeof(reason), "update %u applied: %.400s", w->seq + 1, bo.r.reason);
	if (respond(env, w, bo.r.code, NULL, reason, bo.changed)) {
		atomic_fetch_add(&t->ws->n_updates, 1);
		log_info("iwf watch %s %s: address book update applied (seq %u, %u contacts changed)", w->xui,
			 w->request_id, w->seq, bo.changed);
	}
}

/* ---- SIP: xcap-diff subscriptions to a remote XDMS ------------------------------------------ */

/*
 * A watch of an xcap adapter with a sip-uri SUBSCRIBEs to the remote PCC
 * (sip/ subscriber module) instead of polling: each NOTIFY makes the watch
 * due at once, and the poll that follows is the usual conditional GET. The
 * callbacks run on the SIP loop thread and only move flags and bytes under
 * the lock; a watch thread stores dialogs and acts on the end. If the
 * remote side refuses or stops answering, the watch polls at the adapter's
 * interval and says so in its <response>; "rejected" or "noresource" from
 * the remote side ends it (410); "deactivated" or "timeout" subscribes
 * again (RFC 6665 §4.1.3).
 */

/* The entry of @l if it is still @l's subscription's (lock held). */
static struct entry *link_entry(const struct sip_link *l)
{
	struct smap_slot *slot = smap_get(&l->ws->by_key, l->key, false);
	struct entry *e = slot ? slot->val : NULL;

	return e && e->sip_gen == l->gen ? e : NULL;
}

/* Queues @e for a watch thread (lock held). */
static void attention(struct iwf_watches *ws, struct entry *e)
{
	struct pend *p;

	if (e->is_busy) {
		e->needs_attention = true;
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->key = xstrdup(e->key);
	p->next = ws->attention;
	ws->attention = p;
	pthread_cond_signal(&ws->wake);
}

#define DIALOG_ROUTES_MAX 8

/* The dialog as "k value" lines; 0 when it does not fit a record. */
static size_t dialog_encode(const struct sip_sub_dialog *d, unsigned char *out, size_t cap)
{
	struct buf b;
	size_t len = 0;
	enum xdms_err err;

	buf_init(&b, cap);
	err = buf_printf(&b, "c %s\nl %s\nr %s\ns %u\nt %s\nx %d\nd %s\ne %lld\n", d->call_id ? d->call_id : "",
			 d->local_tag ? d->local_tag : "", d->remote_tag ? d->remote_tag : "", (unsigned)d->cseq,
			 d->remote_target ? d->remote_target : "", (int)d->transport,
			 d->destination ? d->destination : "", (long long)d->expires_at);
	for (size_t i = 0; !err && i < d->route_count && i < DIALOG_ROUTES_MAX; i++)
		err = buf_printf(&b, "R %s\n", d->route_set[i]);
	if (!err && d->route_count <= DIALOG_ROUTES_MAX && b.len <= cap) {
		memcpy(out, b.data, b.len);
		len = b.len;
	}
	buf_cleanup(&b);
	return len;
}

struct dialog_copy {
	char text[STORE_WATCH_DIALOG_MAX + 1];
	const char *routes[DIALOG_ROUTES_MAX];
	struct sip_sub_dialog d;
};

/* Reads dialog_encode's lines back into @c (pointers into c->text). */
static bool dialog_decode(const unsigned char *in, size_t len, struct dialog_copy *c)
{
	char *line, *next;

	memset(c, 0, sizeof(*c));
	if (!len || len > STORE_WATCH_DIALOG_MAX)
		return false;
	memcpy(c->text, in, len);
	c->d.route_set = c->routes;
	for (line = c->text; *line; line = next) {
		char *v = line + 2;

		next = strchr(line, '\n');
		if (!next || next - line < 2 || line[1] != ' ')
			return false;
		*next++ = '\0';
		switch (line[0]) {
		case 'c': c->d.call_id = v; break;
		case 'l': c->d.local_tag = v; break;
		case 'r': c->d.remote_tag = *v ? v : NULL; break;
		case 's': c->d.cseq = (uint32_t)strtoul(v, NULL, 10); break;
		case 't': c->d.remote_target = *v ? v : NULL; break;
		case 'x': c->d.transport = atoi(v) == SIP_TRANSPORT_TCP ? SIP_TRANSPORT_TCP : SIP_TRANSPORT_UDP; break;
		case 'd': c->d.destination = v; break;
		case 'e': c->d.expires_at = strtoll(v, NULL, 10); break;
		case 'R':
			if (c->d.route_count < DIALOG_ROUTES_MAX)
				c->routes[c->d.route_count++] = v;
			break;
		default: return false;
		}
	}
	return c->d.call_id && c->d.call_id[0] && c->d.local_tag && c->d.destination;
}

static void on_sip_dialog(void *arg, const struct sip_sub_dialog *d)
{
	struct sip_link *l = arg;
	unsigned char blob[STORE_WATCH_DIALOG_MAX];
	size_t len = dialog_encode(d, blob, sizeof(blob));
	struct entry *e;

	pthread_mutex_lock(&l->ws->lock);
	e = link_entry(l);
	if (e && len) {
		free(e->dialog);
		e->dialog = xmalloc(len);
		memcpy(e->dialog, blob, len);
		e->dialog_len = len;
		attention(l->ws, e);
	}
	pthread_mutex_unlock(&l->ws->lock);
}

static void on_sip_notify(void *arg, const struct sip_sub_notify *n)
{
	struct sip_link *l = arg;
	struct entry *e;

	atomic_fetch_add(&l->ws->n_sip_notifies, 1);
	if (n->state && !strcmp(n->state, "terminated"))
		return; /* on_end follows with the reason */
	pthread_mutex_lock(&l->ws->lock);
	e = link_entry(l);
	if (e)
		entry_due(l->ws, e, wall_ms());
	pthread_mutex_unlock(&l->ws->lock);
}

static void on_sip_end(void *arg, const struct sip_sub_end *end)
{
	struct sip_link *l = arg;
	struct entry *e;

	pthread_mutex_lock(&l->ws->lock);
	e = link_entry(l);
	if (e) {
		e->has_sip_end = true;
		e->sip_end_status = end->status;
		snprintf(e->sip_end_reason, sizeof(e->sip_end_reason), "%s", end->reason ? end->reason : "");
		attention(l->ws, e);
	}
	pthread_mutex_unlock(&l->ws->lock);
	free(l->key);
	free(l);
}

static const struct sip_sub_callbacks sip_callbacks = { on_sip_dialog, on_sip_notify, on_sip_end };

/* Starts (or resumes from the stored dialog) @e's SIP subscription; false
 * when there is no SIP subscriber or the parameters are unusable. */
static bool sip_start(struct watch_thread *t, struct entry *e, const struct store_watch *w,
		      const struct iwf_adapter *a, const struct iwf_cred *c)
{
	struct iwf_watches *ws = t->ws;
	struct sip_subscriber *m;
	struct sip_link *l;
	struct sip_sub *sub = NULL;
	struct dialog_copy *dc = NULL;
	char *sel;
	const char *entries[1];
	uint64_t now = wall_ms(), left = w->expires_ms > now ? (w->expires_ms - now) / 1000u : 0;
	struct sip_sub_params p = { 0 };

	if (!w->remote_user[0] || left < 2)
		return false;
	pthread_mutex_lock(&ws->lock);
	m = ws->sip;
	if (m) {
		ws->sip_users++;
		e->sip_gen = ++ws->sip_gen_next;
	}
	pthread_mutex_unlock(&ws->lock);
	if (!m)
		return false;
	l = xcalloc(1, sizeof(*l));
	l->ws = ws;
	l->key = xstrdup(e->key);
	l->gen = e->sip_gen;
	sel = xasprintf("%s/users/%s/index", IWF_PCC_AUID, w->remote_user);
	entries[0] = sel;
	p.target = a->sip_uri;
	p.resource_uri = w->remote_user;
	p.local_uri = w->xui;
	p.entries = entries;
	p.entry_count = 1;
	p.username = c->username[0] ? c->username : NULL;
	p.password = c->username[0] ? c->password : NULL;
	p.expires = left < 3600 ? (unsigned)left : 3600u;
	if (w->dialog_len) {
		dc = xcalloc(1, sizeof(*dc));
		if (!dialog_decode(w->dialog, w->dialog_len, dc)) {
			free(dc);
			dc = NULL;
		}
	}
	sub = dc ? sip_sub_resume(m, &p, &dc->d, &sip_callbacks, l) : sip_sub_start(m, &p, &sip_callbacks, l);
	free(dc);
	free(sel);
	pthread_mutex_lock(&ws->lock);
	if (--ws->sip_users == 0)
		pthread_cond_broadcast(&ws->sip_idle);
	if (sub)
		e->sub = sub;
	pthread_mutex_unlock(&ws->lock);
	if (!sub) {
		free(l->key);
		free(l);
		log_warn("iwf watch %s %s: no SIP subscription to %s (unusable parameters); polled instead", w->xui,
			 w->request_id, a->sip_uri);
		return false;
	}
	log_info("iwf watch %s %s: %s the SIP xcap-diff subscription to %s", w->xui, w->request_id,
		 dc ? "resuming" : "starting", a->sip_uri);
	return true;
}

/*
 * A watch thread sees to @e's SIP events (busy for it): stores a new
 * dialog, acts on the end. *is_fallback when the watch polls from now on.
 * Returns false when the watch is over (the remote side ended it).
 */
static bool sip_events(struct watch_thread *t, struct entry *e, unsigned char *dialog, size_t dialog_len,
		       bool has_end, int status, const char *reason, bool *is_fallback)
{
	const struct iwf_env *env = t->ws->env;
	struct store_watch *w = &t->rec;
	struct store_read *rd = NULL;
	char note[IWF_REASON_MAX];
	enum xdms_err err;

	*is_fallback = false;
	err = store_read_begin(env->st, &rd);
	if (!err)
		err = store_watch_get(rd, e->xui, e->request_id, w);
	store_read_end(rd);
	if (err)
		return true; /* the poll that follows finds out */
	if (dialog_len) {
		memcpy(w->dialog, dialog, dialog_len);
		w->dialog_len = dialog_len;
	}
	if (has_end && strcmp(reason, "abandoned") != 0 && strcmp(reason, "unsubscribed") != 0) {
		w->dialog_len = 0; /* nothing left to resume */
		if (!strcmp(reason, "rejected") || !strcmp(reason, "noresource")) {
			snprintf(note, sizeof(note), "the remote XDMS ended the subscription (%s)", reason);
			terminate(t, w, note);
			return false;
		}
		if (strcmp(reason, "deactivated") != 0 && strcmp(reason, "timeout") != 0) {
			atomic_fetch_add(&t->ws->n_sip_fallbacks, 1);
			if (status)
				snprintf(note, sizeof(note),
					 "the SIP subscription to the remote XDMS failed (%s, SIP %d); watched by "
					 "polling instead",
					 reason, status);
			else
				snprintf(note, sizeof(note),
					 "the SIP subscription to the remote XDMS failed (%s); watched by polling instead",
					 reason);
			log_warn("iwf watch %s %s: %s", w->xui, w->request_id, note);
			(void)respond(env, w, w->code ? w->code : 200, NULL, note, 0);
			*is_fallback = true;
		}
	}
	if (watch_wants((const void *[2]){ env, w }))
		record_put(env, w);
	return true;
}

/* Renews @w's graph-style webhook subscription (busy entry @e); when that
 * fails the watch polls until the next try. */
static void renew_graph_hook(struct watch_thread *t, struct entry *e, struct store_watch *w, const struct iwf_call *call)
{
	struct iwf_watches *ws = t->ws;
	struct iwf_result r = { 0 };
	char old_id[STORE_WATCH_HOOK_MAX];

	memcpy(old_id, w->hook_id, sizeof(old_id));
	if (iwf_watch_hook_graph(ws->env, call, w, &r)) {
		log_warn("iwf watch %s %s: its webhook subscription could not be renewed: %s; polled meanwhile", w->xui,
			 w->request_id, r.reason);
		failed(t, w, &r);
		w->hook_renew_ms = wall_ms() + RETRY_MS;
		return;
	}
	log_info("iwf watch %s %s: webhook subscription %s renewed", w->xui, w->request_id, w->hook_remote);
	pthread_mutex_lock(&ws->lock);
	hook_set(ws, e, w->hook_id, w->hook_secret);
	free(e->hook_remote);
	e->hook_remote = xstrdup(w->hook_remote);
	pthread_mutex_unlock(&ws->lock);
	(void)old_id;
}

/*
 * Polls the watch of @e once. Returns the next due time, or 0 when the
 * watch is over (gone, changed into a newer version, terminated).
 */
static uint64_t poll_one(struct watch_thread *t, struct entry *e, bool *is_unregister)
{
	const struct iwf_env *env = t->ws->env;
	const char *xui = e->xui, *request_id = e->request_id;
	struct store_watch *w = &t->rec;
	struct store_read *rd = NULL;
	struct iwf_adapter a = { 0 };
	struct iwf_prefs prefs = { 0 };
	struct iwf_cred cred;
	struct iwf_seal seal;
	struct iwf_result r = { 0 };
	struct buf body;
	char validator[IWF_VALIDATOR_MAX], *url = NULL, *why = NULL, seal_name[STORE_WATCH_PARAM_MAX];
	char *seal_owner = NULL;
	uint64_t current = 0, now, next = 0, interval_ms = (uint64_t)IWF_POLL_DEFAULT_S * 1000u;
	bool is_changed = false, is_json_changed = false, is_sip = false, is_book = false;
	enum xdms_err err;

	*is_unregister = false;
	err = store_read_begin(env->st, &rd);
	if (!err)
		err = store_watch_get(rd, xui, request_id, w);
	if (!err && store_job_current(rd, xui, request_id, &current) == XDMS_ERR_NOTFOUND) {
		/* A record whose request went before the record was stored (a
		 * delete while its job ran): not watched, not kept. */
		store_read_end(rd);
		if (store_watch_del(env->st, xui, request_id) == XDMS_ERR_OK)
			log_info("iwf watch %s %s: its request is gone; forgotten", xui, request_id);
		err = XDMS_ERR_NOTFOUND;
	} else {
		store_read_end(rd);
		if (err == XDMS_ERR_NOTFOUND)
			log_info("iwf watch %s %s: its record is gone (the request was deleted, or the user moved to "
				 "another shard); stopped", xui, request_id);
	}
	if (err == XDMS_ERR_NOTFOUND) {
		/* The request went: its webhook and SIP subscription go too. */
		*is_unregister = true;
		return 0;
	}
	if (err) {
		log_warn("iwf watch %s %s: cannot be read: %s", xui, request_id, xdms_err_str(err));
		return wall_ms() + RETRY_MS;
	}
	if (current != w->job_id || w->state == STORE_WATCH_TERMINATED)
		return 0; /* a newer version of the request took over, or it is over */
	now = wall_ms();
	if (now >= w->expires_ms) {
		terminate(t, w, "the subscription expired");
		*is_unregister = true;
		return 0;
	}
	buf_init(&body, 1);
	atomic_fetch_add(&t->ws->n_polls, 1);
	w->last_poll_ms = now;
	err = iwf_adapter_load(env->st, env->opt, w->adapter, &a, &why);
	if (err) {
		iwf_result_set(&r, err == XDMS_ERR_NOTFOUND ? 404 : 500, false, "adapter %s: %s", w->adapter,
			       err == XDMS_ERR_NOTFOUND ? "not configured any more" : why ? why : xdms_err_str(err));
		failed(t, w, &r);
		goto done;
	}
	interval_ms = (uint64_t)a.poll_interval_s * 1000u;
	is_book = !strcmp(w->target, "address-book");
	if (is_book ? !a.kind->book : !a.kind->poll) {
		terminate(t, w, "the adapter's kind can no longer be watched");
		*is_unregister = true;
		goto out;
	}
	err = iwf_prefs_load(env->st, w->xui, &prefs);
	if (err) {
		iwf_result_set(&r, 500, true, "the user's preferences cannot be read (%s)", xdms_err_str(err));
		failed(t, w, &r);
		goto done;
	}
	err = iwf_url_expand(a.url, w->remote_user[0] ? w->remote_user : NULL, w->xui, &url, &why);
	if (err) {
		iwf_result_set(&r, 500, false, "%s", why);
		failed(t, w, &r);
		goto done;
	}
	watch_credentials(env, w, &cred, &seal, seal_name, &seal_owner);
	if (is_book) {
		book_poll(t, w, &a, &prefs, &cred);
		memset(&cred, 0, sizeof(cred));
		goto done;
	}
	if (a.kind == &iwf_kind_xcap && a.sip_uri && a.sip_uri[0]) {
		bool has_sub, is_fallback;

		pthread_mutex_lock(&t->ws->lock);
		e->has_sip = true;
		has_sub = e->sub != NULL;
		is_fallback = e->is_sip_fallback;
		pthread_mutex_unlock(&t->ws->lock);
		is_sip = !is_fallback && (has_sub || sip_start(t, e, w, &a, &cred));
	}
	{
		struct iwf_call call = { .env = env, .curl = t->curl, .a = &a, .url = url, .xui = w->xui,
					 .username = cred.username, .password = cred.password, .token = cred.token,
					 .seal = seal, .remote_user = w->remote_user[0] ? w->remote_user : NULL };
		uint64_t t0 = monotonic_ms();

		if (a.hook_style == IWF_HOOK_GRAPH && a.watch != IWF_WATCH_POLL && w->hook_remote[0] &&
		    w->hook_renew_ms && now >= w->hook_renew_ms)
			renew_graph_hook(t, e, w, &call);
		buf_cleanup(&body);
		buf_init(&body, a.max_response);
		if (a.format == IWF_FORMAT_JSON)
			err = poll_json(t, w, &a, &prefs, &call, &is_json_changed, &r);
		else
			err = a.kind->poll(&call,
					   w->state == STORE_WATCH_HELD && prefs.is_auto_update ? "" : w->validator,
					   validator, &is_changed, &body, &r);
		iwf_metrics_call(env->metrics, a.id, (double)(monotonic_ms() - t0) / 1000.0, err != XDMS_ERR_OK);
	}
	memset(&cred, 0, sizeof(cred));
	if (err && a.auth == IWF_AUTH_OAUTH2 && r.code == 401) {
		/* The grant was refused (or the 3rd party refuses every fresh
		 * token): only the user can authorize again, by a new request. */
		char note[IWF_REASON_MAX];

		atomic_fetch_add(&t->ws->n_poll_failed, 1);
		snprintf(note, sizeof(note), "%.300s; the subscription ended: PUT the request again with a new "
			 "refresh token", r.reason);
		terminate_code(t, w, 401, note);
		*is_unregister = true;
		goto out;
	}
	if (err) {
		atomic_fetch_add(&t->ws->n_poll_failed, 1);
		failed(t, w, &r);
	} else if (is_changed) {
		atomic_fetch_add(&t->ws->n_changed, 1);
		(void)apply(t, w, &a, &prefs, validator, &body, NULL, 0);
	} else if (is_json_changed) {
		/* poll_json imported it (or held it, or failed and said so). */
	} else {
		atomic_fetch_add(&t->ws->n_unchanged, 1);
		if (w->failures)
			log_info("iwf watch %s %s: the 3rd party answers again after %u failed poll(s)", w->xui,
				 w->request_id, w->failures);
		w->failures = 0;
		w->reason[0] = '\0';
	}
done:
	/* Told of changes (a webhook, SIP NOTIFYs): no polling but the expiry,
	 * unless the last fetch failed. */
	next = ((a.watch == IWF_WATCH_WEBHOOK && (a.hook_style != IWF_HOOK_GRAPH || w->hook_remote[0])) || is_sip) &&
			       !w->failures ?
		       w->expires_ms :
		       iwf_watch_next_slot(w->xui, w->request_id, interval_ms, wall_ms());
	/* A graph-style subscription is renewed by the watch thread in time. */
	if (a.hook_style == IWF_HOOK_GRAPH && w->hook_remote[0] && w->hook_renew_ms && w->hook_renew_ms < next)
		next = w->hook_renew_ms > wall_ms() ? w->hook_renew_ms : wall_ms() + RETRY_MS;
	if (next > w->expires_ms)
		next = w->expires_ms;
	w->next_poll_ms = next;
	/* The request may have gone during the poll: write nothing for it. */
	if (watch_wants((const void *[2]){ env, w }))
		record_put(env, w);
	else
		next = 0;
out:
	buf_cleanup(&body);
	iwf_prefs_cleanup(&prefs);
	iwf_adapter_cleanup(&a);
	free(seal_owner);
	free(url);
	free(why);
	return next;
}

/* ---- reconciling with the store -------------------------------------------------------- */

static int collect_key(void *arg, const struct store_watch *w)
{
	char *key = key_of(w->xui, w->request_id);

	smap_get(arg, key, true)->val = (void *)1;
	free(key);
	return 0;
}

/* Forgets every watch whose record is gone (its request was deleted). */
static void reconcile(struct iwf_watches *ws)
{
	struct smap present = { 0 };
	struct store_read *rd = NULL;
	enum xdms_err err = store_read_begin(ws->env->st, &rd);

	if (!err)
		err = store_watch_list(rd, collect_key, &present);
	store_read_end(rd);
	if (err) {
		smap_free(&present);
		return;
	}
	pthread_mutex_lock(&ws->lock);
	for (size_t b = 0; b < ws->by_key.nb; b++) {
		struct smap_slot *s = ws->by_key.b[b], *next;

		for (; s; s = next) {
			struct entry *e = s->val;

			next = s->next;
			if (smap_get(&present, s->key, false))
				continue;
			if (e->is_busy)
				e->is_gone = true;
			else
				entry_forget(ws, e, true);
		}
	}
	pthread_mutex_unlock(&ws->lock);
	smap_free(&present);
}

/* A thread is done with busy entry @e (lock held): forget it, or put it back
 * in the heap at @next (0: over, unless a job refreshed it meanwhile). */
static void entry_done(struct iwf_watches *ws, struct entry *e, uint64_t next, bool is_unregister)
{
	e->is_busy = false;
	if (e->is_gone || (!next && !e->is_refreshed)) {
		entry_forget(ws, e, is_unregister || e->is_gone);
		return;
	}
	/* A refresh during the poll (the request changed, its new job stored
	 * a new record): the poll's "over" was about the old one. */
	e->due_ms = e->is_again || !next ? wall_ms() : next;
	e->is_again = false;
	e->is_refreshed = false;
	heap_push(ws, e);
	if (e->needs_attention) {
		e->needs_attention = false;
		attention(ws, e);
	}
}

/* Sees to the SIP events of the entry of @p (lock held on entry and exit). */
static void attend(struct watch_thread *t, struct pend *p)
{
	struct iwf_watches *ws = t->ws;
	struct smap_slot *slot = smap_get(&ws->by_key, p->key, false);
	struct entry *e = slot ? slot->val : NULL;
	unsigned char *dialog;
	size_t dialog_len;
	bool has_end, is_fallback = false, is_live;
	int status;
	char reason[sizeof(e->sip_end_reason)];

	if (!e)
		return;
	if (e->is_busy) {
		e->needs_attention = true;
		return;
	}
	heap_remove(ws, e);
	e->is_busy = true;
	dialog = e->dialog;
	dialog_len = e->dialog_len;
	e->dialog = NULL;
	e->dialog_len = 0;
	has_end = e->has_sip_end;
	e->has_sip_end = false;
	status = e->sip_end_status;
	memcpy(reason, e->sip_end_reason, sizeof(reason));
	if (has_end && e->sub) {
		sip_sub_release(e->sub);
		e->sub = NULL;
	}
	pthread_mutex_unlock(&ws->lock);
	is_live = sip_events(t, e, dialog, dialog_len, has_end, status, reason, &is_fallback);
	free(dialog);
	pthread_mutex_lock(&ws->lock);
	if (is_fallback)
		e->is_sip_fallback = true;
	/* After an end that was not ours, poll now: a fallback polls, a
	 * "deactivated" subscribes again. */
	entry_done(ws, e,
		   !is_live ? 0 :
		   has_end && strcmp(reason, "abandoned") != 0 && strcmp(reason, "unsubscribed") != 0 ? wall_ms() :
												      e->due_ms,
		   !is_live);
}

static void *watch_main(void *arg)
{
	struct watch_thread *t = arg;
	struct iwf_watches *ws = t->ws;

	pthread_mutex_lock(&ws->lock);
	while (!ws->is_stopping) {
		struct entry *e;
		uint64_t now = wall_ms(), next;
		bool is_unregister;

		if (ws->unregs) {
			struct unreg *u = ws->unregs;

			ws->unregs = u->next;
			pthread_mutex_unlock(&ws->lock);
			unregister(t, u->adapter, u->hook_id, u->hook_remote);
			free(u->adapter);
			free(u->hook_remote);
			free(u);
			pthread_mutex_lock(&ws->lock);
			continue;
		}
		if (ws->attention) {
			struct pend *p = ws->attention;

			ws->attention = p->next;
			attend(t, p);
			free(p->key);
			free(p);
			continue;
		}
		if (ws->is_reconcile_due) {
			ws->is_reconcile_due = false;
			pthread_mutex_unlock(&ws->lock);
			reconcile(ws);
			pthread_mutex_lock(&ws->lock);
			continue;
		}
		e = ws->heap_len ? ws->heap[0] : NULL;
		if (!e || e->due_ms > now) {
			uint64_t until = e && e->due_ms < now + IDLE_WAIT_MS ? e->due_ms : now + IDLE_WAIT_MS;
			struct timespec ts = { (time_t)(until / 1000u), (long)(until % 1000u) * 1000000L };

			pthread_cond_timedwait(&ws->wake, &ws->lock, &ts);
			continue;
		}
		heap_remove(ws, e);
		e->is_busy = true;
		pthread_mutex_unlock(&ws->lock);
		next = poll_one(t, e, &is_unregister);
		pthread_mutex_lock(&ws->lock);
		entry_done(ws, e, next, is_unregister);
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

/* ---- the public side ------------------------------------------------------------------- */

struct load_ctx {
	struct iwf_watches *ws;
	uint64_t now;
	unsigned total;
};

static int load_one(void *arg, const struct store_watch *w)
{
	struct load_ctx *ctx = arg;
	struct entry *e;
	uint64_t due;

	if (w->state == STORE_WATCH_TERMINATED)
		return 0;
	/* Polled at once: a change made while the server was down is found
	 * now, not at the watch's next slot. The stored next poll keeps the
	 * order (those overdue first) inside the start-up round. */
	due = w->next_poll_ms < ctx->now ? w->next_poll_ms : ctx->now;
	e = entry_get(ctx->ws, w);
	e->due_ms = due;
	heap_push(ctx->ws, e);
	ctx->total++;
	return 0;
}

enum xdms_err iwf_watches_start(const struct iwf_env *env, unsigned threads, struct iwf_watches **out)
{
	struct iwf_watches *ws = xcalloc(1, sizeof(*ws));
	struct load_ctx ctx = { ws, wall_ms(), 0 };
	struct store_read *rd = NULL;
	sigset_t all, old;
	enum xdms_err err;

	*out = NULL;
	ws->env = env;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->wake, NULL);
	pthread_cond_init(&ws->sip_idle, NULL);
	ws->seen_gen = store_watch_generation(env->st);
	err = store_read_begin(env->st, &rd);
	if (!err)
		err = store_watch_list(rd, load_one, &ctx);
	store_read_end(rd);
	if (err) {
		iwf_watches_stop(ws);
		return err;
	}
	if (ctx.total)
		log_info("iwf: %u watch(es) restored; each is polled once now", ctx.total);
	ws->threads = xcalloc(threads ? threads : 1, sizeof(*ws->threads));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		struct watch_thread *t = &ws->threads[i];

		t->ws = ws;
		t->curl = curl_easy_init();
		if (!t->curl || pthread_create(&t->thread, NULL, watch_main, t)) {
			if (t->curl)
				curl_easy_cleanup(t->curl);
			break;
		}
		(void)pthread_setname_np(t->thread, "xdms-watch");
		ws->thread_count++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ws->thread_count) {
		iwf_watches_stop(ws);
		return XDMS_ERR_INVAL;
	}
	*out = ws;
	return XDMS_ERR_OK;
}

void iwf_watches_stop(struct iwf_watches *ws)
{
	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->is_stopping = true;
	pthread_cond_broadcast(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
	for (unsigned i = 0; i < ws->thread_count; i++) {
		pthread_join(ws->threads[i].thread, NULL);
		curl_easy_cleanup(ws->threads[i].curl);
	}
	while (ws->heap_len)
		entry_forget(ws, ws->heap[0], false);
	for (size_t b = 0; b < ws->by_key.nb; b++)
		while (ws->by_key.b && ws->by_key.b[b])
			entry_forget(ws, ws->by_key.b[b]->val, false);
	while (ws->unregs) {
		struct unreg *u = ws->unregs;

		ws->unregs = u->next;
		free(u->adapter);
		free(u->hook_remote);
		free(u);
	}
	while (ws->attention) {
		struct pend *p = ws->attention;

		ws->attention = p->next;
		free(p->key);
		free(p);
	}
	smap_free(&ws->by_key);
	smap_free(&ws->by_hook);
	smap_free(&ws->expected);
	free(ws->heap);
	free(ws->threads);
	pthread_cond_destroy(&ws->wake);
	pthread_cond_destroy(&ws->sip_idle);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}

void iwf_watches_add(struct iwf_watches *ws, const struct store_watch *w)
{
	struct entry *e;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	e = entry_get(ws, w);
	e->is_gone = false;
	if (e->is_busy)
		e->is_refreshed = true;
	entry_due(ws, e, w->next_poll_ms);
	pthread_mutex_unlock(&ws->lock);
}

void iwf_watches_sip_attach(struct iwf_watches *ws, struct sip_subscriber *m)
{
	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->sip = m;
	/* Watches polled before SIP was there subscribe now. */
	for (size_t b = 0; b < ws->by_key.nb; b++)
		for (struct smap_slot *s = ws->by_key.b[b]; s; s = s->next) {
			struct entry *e = s->val;

			if (e->has_sip && !e->sub && !e->is_sip_fallback)
				entry_due(ws, e, wall_ms());
		}
	pthread_mutex_unlock(&ws->lock);
}

void iwf_watches_sip_detach(struct iwf_watches *ws)
{
	struct sip_subscriber *m;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	m = ws->sip;
	ws->sip = NULL;
	while (ws->sip_users)
		pthread_cond_wait(&ws->sip_idle, &ws->lock);
	pthread_mutex_unlock(&ws->lock);
	/* Every subscription ends here ("abandoned": the remote dialogs stay,
	 * to be resumed from the stored dialogs at the next start). */
	sip_subscriber_destroy(m);
}

void iwf_watches_kick(struct iwf_watches *ws)
{
	uint64_t gen;

	if (!ws)
		return;
	gen = store_watch_generation(ws->env->st);
	pthread_mutex_lock(&ws->lock);
	if (gen != ws->seen_gen) {
		ws->seen_gen = gen;
		ws->is_reconcile_due = true;
		pthread_cond_signal(&ws->wake);
	}
	pthread_mutex_unlock(&ws->lock);
}

/* Constant time: a webhook's signature check must not tell how much matched. */
static bool same_text(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static bool is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c);
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The percent-decoded value of query parameter @name (heap), or NULL when
 * absent, undecodable, empty or longer than @cap. */
static char *query_param(const char *query, const char *name, size_t cap)
{
	size_t nl = strlen(name), n = 0;
	const char *p = query;
	char *out;

	while (p && *p) {
		if (!strncmp(p, name, nl) && p[nl] == '=')
			break;
		p = strchr(p, '&');
		p = p ? p + 1 : NULL;
	}
	if (!p || !*p)
		return NULL;
	p += nl + 1;
	out = xmalloc(cap + 1);
	for (; *p && *p != '&'; p++) {
		int c = (unsigned char)*p;

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);

			if (lo < 0)
				goto bad;
			c = hi * 16 + lo;
			p += 2;
		}
		if (n == cap || c < 0x20 || c == 0x7f)
			goto bad;
		out[n++] = (char)c;
	}
	if (!n)
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* A webhook call that passed its check: watch @e (if @hook_id still names
 * it) polls at once. */
static unsigned hook_accepted(struct iwf_watches *ws, struct entry *e, const char *hook_id, char **answer)
{
	struct smap_slot *slot;

	pthread_mutex_lock(&ws->lock);
	slot = smap_get(&ws->by_hook, hook_id, false);
	if (slot && slot->val == e)
		entry_due(ws, e, wall_ms());
	pthread_mutex_unlock(&ws->lock);
	atomic_fetch_add(&ws->n_hook_ok, 1);
	*answer = xstrdup("update scheduled\n");
	return 202;
}

/* A call of a graph-style webhook: the validation handshake (POST or GET
 * with ?validationToken=), or a notification whose every clientState must
 * be the watch's secret. */
static unsigned graph_hook(struct iwf_watches *ws, const char *hook_id, const char *query, const char *body,
			   size_t len, char **answer)
{
	struct smap_slot *slot;
	struct entry *e;
	char secret[STORE_WATCH_SECRET_MAX], *token;
	struct json_limits lim;
	struct json_doc *d = NULL;
	char *why = NULL;
	unsigned n = 0;
	bool is_known, ok = true;

	pthread_mutex_lock(&ws->lock);
	slot = smap_get(&ws->by_hook, hook_id, false);
	e = slot ? slot->val : NULL;
	if (e)
		memcpy(secret, e->hook_secret, sizeof(secret));
	is_known = e || smap_get(&ws->expected, hook_id, false);
	pthread_mutex_unlock(&ws->lock);
	if (!is_known) {
		atomic_fetch_add(&ws->n_hook_unknown, 1);
		*answer = xstrdup("no such webhook\n");
		return 404;
	}
	if (query && strstr(query, "validationToken=")) {
		if (e)
			memset(secret, 0, sizeof(secret));
		token = query_param(query, "validationToken", VALIDATION_MAX);
		if (!token) {
			*answer = xstrdup("the validationToken must be 1-1024 printable characters\n");
			return 400;
		}
		*answer = token;
		return 200;
	}
	if (!e) {
		*answer = xstrdup("the webhook is being set up; notify again\n");
		return 503;
	}
	json_limits_init(&lim);
	lim.max_size = len + 1;
	if (json_doc_parse(body, len, &lim, &d, &why)) {
		memset(secret, 0, sizeof(secret));
		atomic_fetch_add(&ws->n_hook_unauthorized, 1);
		*answer = xasprintf("the notification is not JSON: %s\n", why);
		free(why);
		return 400;
	}
	/* Each element of "value" is one notification; an element with
	 * neither a subscriptionId nor a clientState ends the list. */
	for (; n < NOTIFY_VALUES_MAX; n++) {
		char p_cs[48], p_id[48];
		const char *cs;

		snprintf(p_cs, sizeof(p_cs), "/value/%u/clientState", n);
		snprintf(p_id, sizeof(p_id), "/value/%u/subscriptionId", n);
		cs = json_doc_string(d, p_cs);
		if (!cs && !json_doc_string(d, p_id))
			break;
		if (!cs || !same_text(cs, secret))
			ok = false;
	}
	json_doc_free(d);
	memset(secret, 0, sizeof(secret));
	if (!n || !ok) {
		atomic_fetch_add(&ws->n_hook_forbidden, 1);
		*answer = xstrdup(n ? "wrong clientState\n" : "no notification in the body\n");
		return n ? 403 : 400;
	}
	return hook_accepted(ws, e, hook_id, answer);
}

unsigned iwf_watches_hook(struct iwf_watches *ws, bool is_post, const char *hook_id, const char *query,
			  const char *signature, const char *body, size_t len, char **answer)
{
	struct smap_slot *slot;
	struct entry *e;
	char secret[STORE_WATCH_SECRET_MAX];
	uint8_t mac[SHA256_DIGEST_SIZE];
	char expected[8 + 2 * SHA256_DIGEST_SIZE + 1];
	struct hmac_sha256_ctx ctx;

	*answer = NULL;
	if (hook_id[0] == IWF_HOOK_GRAPH_PREFIX)
		return graph_hook(ws, hook_id, query, body, len, answer);
	pthread_mutex_lock(&ws->lock);
	slot = smap_get(&ws->by_hook, hook_id, false);
	e = slot ? slot->val : NULL;
	if (e)
		memcpy(secret, e->hook_secret, sizeof(secret));
	pthread_mutex_unlock(&ws->lock);
	if (!e) {
		atomic_fetch_add(&ws->n_hook_unknown, 1);
		*answer = xstrdup("no such webhook\n");
		return 404;
	}
	if (!is_post) {
		/* The validation handshake: echo the challenge token. */
		const char *c = query ? strstr(query, "challenge=") : NULL;
		size_t n;

		if (!c || (c != query && c[-1] != '&')) {
			*answer = xstrdup("use POST, or GET with ?challenge=TOKEN\n");
			memset(secret, 0, sizeof(secret));
			return 400;
		}
		c += strlen("challenge=");
		for (n = 0; c[n] && c[n] != '&' && is_token_char(c[n]); n++)
			;
		memset(secret, 0, sizeof(secret));
		if (!n || n > CHALLENGE_MAX || (c[n] && c[n] != '&')) {
			*answer = xstrdup("the challenge must be 1-256 characters of A-Z a-z 0-9 - . _ ~\n");
			return 400;
		}
		*answer = xstrndup(c, n);
		return 200;
	}
	if (!signature || !signature[0]) {
		atomic_fetch_add(&ws->n_hook_unauthorized, 1);
		memset(secret, 0, sizeof(secret));
		*answer = xstrdup("missing X-Xdms-Signature\n");
		return 401;
	}
	hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
	hmac_sha256_update(&ctx, len, (const uint8_t *)body);
	hmac_sha256_digest(&ctx, sizeof(mac), mac);
	memset(secret, 0, sizeof(secret));
	memset(&ctx, 0, sizeof(ctx));
	memcpy(expected, "sha256=", 7);
	hex(mac, sizeof(mac), expected + 7);
	if (!same_text(signature, expected)) {
		atomic_fetch_add(&ws->n_hook_forbidden, 1);
		*answer = xstrdup("bad signature\n");
		return 403;
	}
	return hook_accepted(ws, e, hook_id, answer);
}

enum xdms_err iwf_watches_metrics(struct iwf_watches *ws, struct buf *out)
{
	size_t count;

	if (!ws)
		return XDMS_ERR_OK;
	pthread_mutex_lock(&ws->lock);
	count = ws->count;
	pthread_mutex_unlock(&ws->lock);
	return buf_printf(
		out,
		"# HELP xdms_iwf_watches Subscribe-profile watches being kept up to date.\n"
		"# TYPE xdms_iwf_watches gauge\nxdms_iwf_watches %zu\n"
		"# HELP xdms_iwf_watch_polls_total Polls of 3rd parties by watches, by result.\n"
		"# TYPE xdms_iwf_watch_polls_total counter\n"
		"xdms_iwf_watch_polls_total{result=\"unchanged\"} %llu\n"
		"xdms_iwf_watch_polls_total{result=\"changed\"} %llu\n"
		"xdms_iwf_watch_polls_total{result=\"failed\"} %llu\n"
		"# HELP xdms_iwf_watch_updates_total Changes imported by watches (a new <response> seq).\n"
		"# TYPE xdms_iwf_watch_updates_total counter\nxdms_iwf_watch_updates_total %llu\n"
		"# HELP xdms_iwf_watch_held_total Changes seen but held (auto-update off).\n"
		"# TYPE xdms_iwf_watch_held_total counter\nxdms_iwf_watch_held_total %llu\n"
		"# HELP xdms_iwf_watch_failures_total Watch polls or imports that failed.\n"
		"# TYPE xdms_iwf_watch_failures_total counter\nxdms_iwf_watch_failures_total %llu\n"
		"# HELP xdms_iwf_watch_terminated_total Watches ended with 410 (expired or ended by the 3rd party).\n"
		"# TYPE xdms_iwf_watch_terminated_total counter\nxdms_iwf_watch_terminated_total %llu\n"
		"# HELP xdms_iwf_webhook_calls_total Calls of the webhook endpoint, by outcome.\n"
		"# TYPE xdms_iwf_webhook_calls_total counter\n"
		"xdms_iwf_webhook_calls_total{outcome=\"accepted\"} %llu\n"
		"xdms_iwf_webhook_calls_total{outcome=\"unsigned\"} %llu\n"
		"xdms_iwf_webhook_calls_total{outcome=\"bad_signature\"} %llu\n"
		"xdms_iwf_webhook_calls_total{outcome=\"unknown\"} %llu\n"
		"# HELP xdms_iwf_watch_sip_notifies_total NOTIFYs received by watches' SIP subscriptions.\n"
		"# TYPE xdms_iwf_watch_sip_notifies_total counter\nxdms_iwf_watch_sip_notifies_total %llu\n"
		"# HELP xdms_iwf_watch_sip_fallbacks_total SIP subscriptions that failed; the watch polls instead.\n"
		"# TYPE xdms_iwf_watch_sip_fallbacks_total counter\nxdms_iwf_watch_sip_fallbacks_total %llu\n",
		count, (unsigned long long)atomic_load(&ws->n_unchanged), (unsigned long long)atomic_load(&ws->n_changed),
		(unsigned long long)atomic_load(&ws->n_poll_failed), (unsigned long long)atomic_load(&ws->n_updates),
		(unsigned long long)atomic_load(&ws->n_held), (unsigned long long)atomic_load(&ws->n_failures),
		(unsigned long long)atomic_load(&ws->n_terminated), (unsigned long long)atomic_load(&ws->n_hook_ok),
		(unsigned long long)atomic_load(&ws->n_hook_unauthorized),
		(unsigned long long)atomic_load(&ws->n_hook_forbidden),
		(unsigned long long)atomic_load(&ws->n_hook_unknown), (unsigned long long)atomic_load(&ws->n_sip_notifies),
		(unsigned long long)atomic_load(&ws->n_sip_fallbacks));
}
