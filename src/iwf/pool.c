/* SPDX-License-Identifier: MIT */
/*
 * The worker pool. N threads each loop: claim the next ready job from the
 * store (store_job_claim: queued and due, or leased by a worker that died),
 * carry it out (job.c), repeat; with nothing ready, sleep until the earliest
 * due job or until woken. The store's commit listener wakes the workers when
 * a committed write queued jobs (the store's job generation moved), so a new
 * request starts at once without polling; retries and expired leases are met
 * by the sleep's deadline.
 *
 * Per-adapter slots bound how many workers call one 3rd party at once. A job
 * holds its slot for its calls only, not for its transform and its store
 * writes (an import gives it back as soon as the 3rd party has answered). A
 * job that finds them all busy waits a little for one (SLOT_WAIT_MS in
 * job.c), then goes back to the queue instead of holding a worker, so a slow
 * 3rd party ties up at most its own slots and a short wait. Each adapter in
 * use has its own condition variable and a slot given back wakes one of its
 * waiters, not every waiting worker.
 *
 * Workers spend a job waiting, for the 3rd party and for the store's flushes
 * (which they share through group commit), not computing, so the default
 * pool is sized for waiting: WORKERS_PER_CPU per online CPU, at most
 * WORKERS_DEFAULT_MAX; a worker that waits costs a thread's stack and one
 * libcurl handle, no CPU.
 *
 * Each worker owns one libcurl easy handle for its life (connection reuse).
 * Stopping aborts the 3rd-party calls in flight (they count as transient
 * failures, so their jobs are queued again), then joins the workers.
 *
 * Threads: iwf_start/iwf_stop on the main thread; the listener on the store's
 * writer thread (it only signals a condition variable); the rest on workers.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define IDLE_WAIT_MS 5000u /* the longest sleep without a known due time */
#define PRUNE_EVERY_MS 60000u /* how often worker 0 prunes ended jobs */
#define SLOTS_MAX 256      /* adapters with calls in flight at one time */

#define WORKERS_PER_CPU 8      /* default pool: workers per online CPU (they mostly wait) */
#define WORKERS_DEFAULT_MAX 64 /* ... and at most this many */

/* An adapter with calls in flight, or workers waiting for one of its slots.
 * The entry is kept while either count is above 0. */
struct slot {
	char *adapter_id;
	unsigned busy;         /* calls in flight */
	unsigned waiting;      /* workers waiting for one of them */
	pthread_cond_t freed;  /* signalled once for each call that ends */
};

struct iwf {
	struct iwf_options opt;
	char *identity;
	char *root_path;
	char *ca_file;
	struct iwf_env env;
	uint8_t key[IWF_KEY_LEN];
	struct iwf_worker *workers;
	unsigned worker_count;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool is_stopping;
	atomic_bool stop_calls; /* aborts 3rd-party calls in flight (env.stopping) */
	uint64_t wake_gen; /* bumped by the listener; workers compare */

	pthread_mutex_t slot_lock;
	bool is_stopping_slots;      /* under slot_lock: waiters give up */
	struct slot slots[SLOTS_MAX];
};

void iwf_options_init(struct iwf_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->lease_s = 60;
	opt->max_attempts = 4;
	opt->retry_delay_ms = 1000;
	opt->timeout_s = 30;
	opt->max_response = 1048576;
	opt->concurrency = 4;
	opt->identity = "xdmsd-iwf";
	opt->root_path = "/xcap-root";
	opt->ca_file = "";
}

/* The entry of @adapter_id, made when @is_new allows (NULL when the table is
 * full or it has none); slot_lock held. */
static struct slot *slot_find(struct iwf *iwf, const char *adapter_id, bool is_new)
{
	struct slot *free_slot = NULL;

	for (size_t i = 0; i < SLOTS_MAX; i++) {
		struct slot *s = &iwf->slots[i];

		if (s->adapter_id && !strcmp(s->adapter_id, adapter_id))
			return s;
		if (!s->adapter_id && !free_slot)
			free_slot = s;
	}
	if (!free_slot || !is_new)
		return NULL;
	free_slot->adapter_id = xstrdup(adapter_id);
	free_slot->busy = free_slot->waiting = 0;
	return free_slot;
}

/* Forgets @s once nobody uses or waits for it; slot_lock held. */
static void slot_forget_idle(struct slot *s)
{
	if (s->busy || s->waiting)
		return;
	free(s->adapter_id);
	s->adapter_id = NULL;
}

bool iwf_slot_take(struct iwf_worker *w, const char *adapter_id, unsigned limit, unsigned wait_ms)
{
	struct iwf *iwf = w->iwf;
	struct timespec until;
	uint64_t deadline = wall_ms() + wait_ms; /* pthread_cond_timedwait counts CLOCK_REALTIME */
	struct slot *s;
	bool ok = false, is_late = false;

	iwf_slot_give(w);
	if (!limit)
		return false;
	until.tv_sec = (time_t)(deadline / 1000u);
	until.tv_nsec = (long)(deadline % 1000u) * 1000000L;
	pthread_mutex_lock(&iwf->slot_lock);
	s = slot_find(iwf, adapter_id, true);
	while (s && !iwf->is_stopping_slots) {
		if (s->busy < limit) {
			s->busy++;
			ok = true;
			break;
		}
		/* Tried once more after the deadline: a timed-out wait may
		 * have taken the wake-up meant for a slot just given back. */
		if (is_late)
			break;
		s->waiting++;
		is_late = pthread_cond_timedwait(&s->freed, &iwf->slot_lock, &until) == ETIMEDOUT;
		s->waiting--;
	}
	if (s && !ok)
		slot_forget_idle(s);
	pthread_mutex_unlock(&iwf->slot_lock);
	if (ok)
		w->slot_adapter = xstrdup(adapter_id);
	return ok;
}

void iwf_slot_give(struct iwf_worker *w)
{
	struct iwf *iwf = w->iwf;
	struct slot *s;

	if (!w->slot_adapter)
		return;
	pthread_mutex_lock(&iwf->slot_lock);
	s = slot_find(iwf, w->slot_adapter, false);
	if (s) {
		s->busy--;
		if (s->waiting)
			pthread_cond_signal(&s->freed);
		slot_forget_idle(s);
	}
	pthread_mutex_unlock(&iwf->slot_lock);
	free(w->slot_adapter);
	w->slot_adapter = NULL;
}

/* The store's commit listener: wake a sleeping worker for each job a commit
 * queued (the generation counts them), not every worker for any job: a
 * worker that wakes for nothing costs a claim through the writer. */
static void on_commit(void *arg, uint64_t last_seq)
{
	struct iwf *iwf = arg;
	uint64_t gen = store_job_generation(iwf->env.st);

	(void)last_seq;
	iwf_watches_kick(iwf->env.watches);
	pthread_mutex_lock(&iwf->lock);
	if (gen != iwf->wake_gen) {
		uint64_t queued = gen - iwf->wake_gen;

		iwf->wake_gen = gen;
		if (queued >= iwf->opt.workers)
			pthread_cond_broadcast(&iwf->wake);
		else
			while (queued--)
				pthread_cond_signal(&iwf->wake);
	}
	pthread_mutex_unlock(&iwf->lock);
}

static void *worker_main(void *arg)
{
	struct iwf_worker *w = arg;
	struct iwf *iwf = w->iwf;
	uint64_t seen_gen = 0, next_prune = 0;

	for (;;) {
		struct store_job job;
		uint64_t next_due = UINT64_MAX, now;
		enum xdms_err err;
		struct timespec until;

		pthread_mutex_lock(&iwf->lock);
		if (iwf->is_stopping) {
			pthread_mutex_unlock(&iwf->lock);
			break;
		}
		seen_gen = iwf->wake_gen;
		pthread_mutex_unlock(&iwf->lock);

		now = wall_ms();
		if (w->index == 0 && iwf->opt.job_retention_s && now >= next_prune) {
			uint64_t keep = (uint64_t)iwf->opt.job_retention_s * 1000u;
			unsigned pruned = 0;

			/* A short retention (tests, small lab stores) is kept to the second. */
			next_prune = now + (keep < PRUNE_EVERY_MS ? keep : PRUNE_EVERY_MS);
			log_debug("iwf: pruning jobs ended before %llu", (unsigned long long)(now - keep));
			if (now > keep && store_job_prune(iwf->env.st, now - keep, &pruned))
				log_warn("iwf: pruning ended jobs failed");
			else if (pruned)
				log_info("iwf: pruned %u job(s) ended more than %u s ago", pruned,
					 iwf->opt.job_retention_s);
		}
		err = store_job_claim(iwf->env.st, now, (uint64_t)iwf->opt.lease_s * 1000u, &job, &next_due);
		if (!err) {
			log_debug("iwf job %llu (%s %s): claimed by worker %u, attempt %u", (unsigned long long)job.id,
				  job.xui, job.request_id, w->index, job.attempts);
			iwf_metrics_running(iwf->env.metrics, 1);
			iwf_job_run(&iwf->env, w, &job);
			iwf_metrics_running(iwf->env.metrics, -1);
			continue;
		}
		if (err != XDMS_ERR_NOTFOUND) {
			log_error("iwf: claiming a job failed: %s", xdms_err_str(err));
			next_due = now + 1000;
		}
		if (next_due > now + IDLE_WAIT_MS)
			next_due = now + IDLE_WAIT_MS;
		until.tv_sec = (time_t)(next_due / 1000u);
		until.tv_nsec = (long)(next_due % 1000u) * 1000000L;
		pthread_mutex_lock(&iwf->lock);
		while (!iwf->is_stopping && iwf->wake_gen == seen_gen)
			if (pthread_cond_timedwait(&iwf->wake, &iwf->lock, &until) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&iwf->lock);
	}
	return NULL;
}

static void env_init(struct iwf_env *env, const struct iwf_options *opt, struct store *st, struct xcap *x)
{
	env->opt = opt;
	env->st = st;
	env->x = x;
	env->xslt = iwf_xslt_cache_create();
	env->pcc_schema = NULL;
	env->stopping = NULL;
	env->metrics = NULL;
	env->oauth = NULL;
	env->watches = NULL;
}

enum xdms_err iwf_start(const struct iwf_options *opt, struct store *st, struct xcap *x, struct iwf **out)
{
	struct iwf *iwf;
	const struct xcap_auid *pcc;
	unsigned released = 0;
	char *why = NULL;
	sigset_t all, old;
	enum xdms_err err;

	*out = NULL;
	if (!opt || !st || !x || !opt->lease_s || !opt->max_attempts || !opt->timeout_s || !opt->concurrency ||
	    !opt->identity || !opt->root_path || !opt->key_file || !opt->key_file[0])
		return XDMS_ERR_INVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return XDMS_ERR_INVAL;
	iwf = xcalloc(1, sizeof(*iwf));
	iwf->opt = *opt;
	iwf->identity = xstrdup(opt->identity);
	iwf->root_path = xstrdup(opt->root_path);
	iwf->ca_file = xstrdup(opt->ca_file ? opt->ca_file : "");
	iwf->opt.identity = iwf->identity;
	iwf->opt.root_path = iwf->root_path;
	iwf->opt.ca_file = iwf->ca_file;
	if (!iwf->opt.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		iwf->opt.workers = (n > 0 ? (unsigned)n : 1) * WORKERS_PER_CPU;
		if (iwf->opt.workers > WORKERS_DEFAULT_MAX)
			iwf->opt.workers = WORKERS_DEFAULT_MAX;
	}
	env_init(&iwf->env, &iwf->opt, st, x);
	iwf->env.key = iwf->key;
	atomic_init(&iwf->stop_calls, false);
	iwf->env.stopping = &iwf->stop_calls;
	iwf->env.metrics = iwf_metrics_create();
	iwf->env.oauth = iwf_oauth_cache_create();
	pcc = xcap_registry_find(xcap_registry_get(x), IWF_PCC_AUID);
	iwf->env.pcc_schema = pcc ? pcc->schema : NULL;
	pthread_mutex_init(&iwf->lock, NULL);
	pthread_cond_init(&iwf->wake, NULL);
	pthread_mutex_init(&iwf->slot_lock, NULL);
	for (size_t i = 0; i < SLOTS_MAX; i++)
		pthread_cond_init(&iwf->slots[i].freed, NULL);
	iwf->wake_gen = store_job_generation(st);
	err = iwf_key_load(opt->key_file, iwf->key, &why);
	if (err) {
		log_error("iwf: %s", why);
		free(why);
		iwf_stop(iwf);
		return err;
	}
	/* One xdmsd carries out the jobs of a data directory: leases held by a
	 * previous run belong to workers that no longer exist. */
	err = store_job_release_all(st, &released);
	if (err) {
		iwf_stop(iwf);
		return err;
	}
	if (released)
		log_info("iwf: %u job(s) left running by the previous run will run again", released);
	err = store_add_commit_listener(st, on_commit, iwf);
	if (err) {
		iwf_stop(iwf);
		return err;
	}
	/* Subscribe-profile watches, before the workers that add to them:
	 * as many threads as workers (watch.c). */
	err = iwf_watches_start(&iwf->env, iwf->opt.workers, &iwf->env.watches);
	if (err) {
		log_error("iwf: the watches cannot be loaded: %s", xdms_err_str(err));
		iwf_stop(iwf);
		return err;
	}
	iwf->workers = xcalloc(iwf->opt.workers, sizeof(*iwf->workers));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < iwf->opt.workers; i++) {
		struct iwf_worker *w = &iwf->workers[i];

		w->iwf = iwf;
		w->index = i;
		w->curl = curl_easy_init();
		if (!w->curl || pthread_create(&w->thread, NULL, worker_main, w)) {
			if (w->curl)
				curl_easy_cleanup(w->curl);
			w->curl = NULL;
			break;
		}
		(void)pthread_setname_np(w->thread, "xdms-iwf");
		iwf->worker_count++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (iwf->worker_count != iwf->opt.workers) {
		iwf_stop(iwf);
		return XDMS_ERR_INVAL;
	}
	log_info("iwf: %u workers", iwf->worker_count);
	*out = iwf;
	return XDMS_ERR_OK;
}

void iwf_stop(struct iwf *iwf)
{
	if (!iwf)
		return;
	pthread_mutex_lock(&iwf->lock);
	iwf->is_stopping = true;
	pthread_cond_broadcast(&iwf->wake);
	pthread_mutex_unlock(&iwf->lock);
	/* A call in flight is cut short: its job goes back to the queue (a
	 * transient failure) and runs again after the restart. */
	atomic_store(&iwf->stop_calls, true);
	pthread_mutex_lock(&iwf->slot_lock);
	iwf->is_stopping_slots = true;
	for (size_t i = 0; i < SLOTS_MAX; i++)
		pthread_cond_broadcast(&iwf->slots[i].freed);
	pthread_mutex_unlock(&iwf->slot_lock);
	for (unsigned i = 0; i < iwf->worker_count; i++) {
		pthread_join(iwf->workers[i].thread, NULL);
		curl_easy_cleanup(iwf->workers[i].curl);
		iwf_adapter_cleanup(&iwf->workers[i].adapter.a);
	}

	/* The store outlives the IWF and may still commit (its queue drains
	 * at close): the listener must not fire into freed memory. */
	store_remove_commit_listener(iwf->env.st, on_commit, iwf);
	/* After the workers (none adds a watch any more) and the listener
	 * (none kicks them). */
	iwf_watches_stop(iwf->env.watches);
	iwf->env.watches = NULL;
	free(iwf->workers);
	iwf_xslt_cache_destroy(iwf->env.xslt);
	iwf_metrics_destroy(iwf->env.metrics);
	iwf_oauth_cache_destroy(iwf->env.oauth);
	for (size_t i = 0; i < SLOTS_MAX; i++) {
		free(iwf->slots[i].adapter_id);
		pthread_cond_destroy(&iwf->slots[i].freed);
	}
	pthread_mutex_destroy(&iwf->slot_lock);
	pthread_cond_destroy(&iwf->wake);
	pthread_mutex_destroy(&iwf->lock);
	free(iwf->identity);
	free(iwf->root_path);
	free(iwf->ca_file);
	memset(iwf->key, 0, sizeof(iwf->key));
	curl_global_cleanup();
	free(iwf);
}

enum xdms_err iwf_metrics(void *arg, struct buf *out)
{
	struct iwf *iwf = arg;
	enum xdms_err err = iwf_metrics_render(iwf->env.metrics, iwf->env.st, out);

	return err ? err : iwf_watches_metrics(iwf->env.watches, out);
}

void iwf_sip_attach(struct iwf *iwf, struct sip_subscriber *m)
{
	if (iwf)
		iwf_watches_sip_attach(iwf->env.watches, m);
}

void iwf_sip_detach(struct iwf *iwf)
{
	if (iwf)
		iwf_watches_sip_detach(iwf->env.watches);
}

unsigned iwf_webhook(void *arg, bool is_post, const char *hook_id, const char *query, const char *signature,
		     const char *body, size_t len, char **answer)
{
	struct iwf *iwf = arg;

	if (!iwf->env.watches) {
		*answer = xstrdup("the IWF is not running\n");
		return 503;
	}
	return iwf_watches_hook(iwf->env.watches, is_post, hook_id, query, signature, body, len, answer);
}

enum xdms_err iwf_dry_import(const struct iwf_options *opt, struct store *st, const char *adapter_id,
			     const char *xui, const char *remote_user, const char *username,
			     const char *password, char **pcc, unsigned *code, char **why)
{
	struct iwf_env env;
	struct iwf_adapter a;
	struct iwf_result r = { 0 };
	struct xml_schema *schema = NULL;
	char *awhy = NULL, *swhy = NULL;
	size_t len = 0;
	void *curl;
	enum xdms_err err;

	*pcc = NULL;
	*code = 0;
	*why = NULL;
	env_init(&env, opt, st, NULL);
	env.key = NULL; /* a dry run uses only the credentials it is given */
	if (xml_schema_load("cab-pcc.xsd", &schema, &swhy) == XDMS_ERR_OK)
		env.pcc_schema = schema;
	free(swhy);
	err = iwf_adapter_load(st, opt, adapter_id, &a, &awhy);
	if (err) {
		*code = err == XDMS_ERR_NOTFOUND ? 404 : 500;
		*why = err == XDMS_ERR_NOTFOUND ? xasprintf("no adapter '%s' is configured", adapter_id) :
						  xasprintf("%s", awhy ? awhy : xdms_err_str(err));
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	err = curl ? iwf_fetch_profile(&env, curl, &a, xui, remote_user, username, password, password, pcc, &len,
				       &r, NULL, NULL) :
		     XDMS_ERR_INVAL;
	if (err) {
		*code = r.code ? r.code : 500;
		*why = xstrdup(r.reason[0] ? r.reason : xdms_err_str(err));
	}
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	iwf_adapter_cleanup(&a);
out:
	free(awhy);
	xml_schema_free(schema);
	iwf_xslt_cache_destroy(env.xslt);
	return err;
}
