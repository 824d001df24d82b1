/* SPDX-License-Identifier: MIT */
/*
 * bench/store-fill: fills a data directory for bench/large-store quickly,
 * through the store's own API (the same code the server runs), with
 * store.sync=false: users, their documents, and optionally SIP
 * subscription records for the notifier to restore at start-up.
 *
 *   store-fill --dir DIR --users N [--subs N] --rl FILE --pcc FILE --fh FILE
 *
 * User i is sip:user<i>@example.com with the Digest credentials of the
 * password pw<i> in realm example.com (so Digest works for every one of
 * them). Each gets three documents, stored byte for byte from the files:
 * resource-lists/users/XUI/index, the CAB PCC and the Feature Handler
 * document (files that the usages accept, so later PUTs of them pass).
 * With --subs N, users 0..N-1 each get one xcap-diff subscription record to
 * their resource-lists document, acknowledged up to the last change, over
 * UDP to 127.0.0.1:9 (discard), expiring in a day. Prints what it made and
 * how long it took.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/md5.h>
#include <nettle/sha2.h>

#include "base/clock.h"
#include "base/file.h"
#include "base/mem.h"
#include "store/store.h"

#define REALM "example.com"
#define IN_FLIGHT 4096 /* document writes queued at once */

struct doc_write {
	struct store_write sw;
	char selector[128];
	const char *data;
	size_t len;
};

static atomic_uint done_count, failed_count;

static enum xdms_err apply_doc(struct store_write *w, const struct store_doc *cur)
{
	struct doc_write *d = w->arg;

	(void)cur;
	w->new_data = d->data;
	w->new_len = d->len;
	return XDMS_ERR_OK;
}

static void doc_done(struct store_write *w)
{
	if (w->result)
		atomic_fetch_add(&failed_count, 1);
	atomic_fetch_add(&done_count, 1);
}

static void ha1_md5(const char *user, const char *pw, uint8_t out[16])
{
	struct md5_ctx c;
	char s[256];

	snprintf(s, sizeof(s), "%s:%s:%s", user, REALM, pw);
	md5_init(&c);
	md5_update(&c, strlen(s), (const uint8_t *)s);
	md5_digest(&c, 16, out);
}

static void ha1_sha256(const char *user, const char *pw, uint8_t out[32])
{
	struct sha256_ctx c;
	char s[256];

	snprintf(s, sizeof(s), "%s:%s:%s", user, REALM, pw);
	sha256_init(&c);
	sha256_update(&c, strlen(s), (const uint8_t *)s);
	sha256_digest(&c, 32, out);
}

static char *load(const char *path, size_t *len)
{
	char *data = NULL, *why = NULL;

	if (file_read(path, 4u << 20, &data, len, &why)) {
		fprintf(stderr, "store-fill: %s\n", why ? why : path);
		exit(2);
	}
	return data;
}

struct sub_op {
	unsigned from, count;
	uint64_t acked;
	int64_t expires_ms;
};

static enum xdms_err subs_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
			       const struct store_doc *n)
{
	struct sub_op *op = w->arg;
	enum xdms_err err = XDMS_ERR_OK;

	(void)o;
	(void)n;
	for (unsigned i = op->from; i < op->from + op->count && !err; i++) {
		char rec[1024];
		int len = snprintf(rec, sizeof(rec),
				   "v 1\ncall bench-%u@127.0.0.1\nluri sip:user%u@" REALM "\nltag s%u\n"
				   "ruri sip:user%u@" REALM "\nrtag c%u\ntarget sip:user%u@127.0.0.1:9\n"
				   "tp udp\ndest 127.0.0.1:9\nwho sip:user%u@" REALM "\npriv 0\nmode 0\n"
				   "exp %" PRId64 "\ncseq 1000\nacked %" PRIu64 "\nfull 1\n"
				   "e resource-lists/users/sip:user%u@" REALM "/index\n",
				   i, i, i, i, i, i, i, op->expires_ms, op->acked, i);

		err = store_sub_put(txn, (uint64_t)i + 1, rec, (size_t)len);
	}
	return err;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *rl_path = NULL, *pcc_path = NULL, *fh_path = NULL;
	unsigned users = 0, subs = 0;
	struct store_options so = { .map_size = (size_t)1 << 32, .is_sync = false };
	struct store *st = NULL;
	struct doc_write *ring;
	const char *datas[3], *auids[3] = { "resource-lists", "org.openmobilealliance.cab-pcc",
					     "org.openmobilealliance.cab-feature-handler" };
	const char *prefixes[3] = { "rl", "pcc", "fh" };
	size_t lens[3];
	uint64_t t0 = monotonic_ms(), t_users, t_docs, submitted = 0;
	struct store_read *rd = NULL;
	uint64_t last_seq = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--users"))
			users = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--subs"))
			subs = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--rl"))
			rl_path = argv[i + 1];
		else if (!strcmp(argv[i], "--pcc"))
			pcc_path = argv[i + 1];
		else if (!strcmp(argv[i], "--fh"))
			fh_path = argv[i + 1];
	}
	if (!dir || !users || !rl_path || !pcc_path || !fh_path || subs > users) {
		fprintf(stderr, "usage: store-fill --dir DIR --users N [--subs N<=users] --rl F --pcc F --fh F\n");
		return 2;
	}
	datas[0] = load(rl_path, &lens[0]);
	datas[1] = load(pcc_path, &lens[1]);
	datas[2] = load(fh_path, &lens[2]);
	so.path = dir;
	if (store_open(&so, &st)) {
		fprintf(stderr, "store-fill: cannot open a store in %s\n", dir);
		return 1;
	}
	for (unsigned i = 0; i < users; i++) {
		struct store_user u;
		char pw[32];

		memset(&u, 0, sizeof(u));
		snprintf(u.xui, sizeof(u.xui), "sip:user%u@" REALM, i);
		snprintf(u.username, sizeof(u.username), "user%u", i);
		snprintf(pw, sizeof(pw), "pw%u", i);
		u.created_ms = wall_ms();
		u.realm_count = 1;
		snprintf(u.realms[0].realm, sizeof(u.realms[0].realm), "%s", REALM);
		ha1_md5(u.username, pw, u.realms[0].ha1_md5_user);
		ha1_sha256(u.username, pw, u.realms[0].ha1_sha256_user);
		ha1_md5(u.xui, pw, u.realms[0].ha1_md5_xui);
		ha1_sha256(u.xui, pw, u.realms[0].ha1_sha256_xui);
		if (store_user_put_realm(st, &u, true, i == 0 ? REALM : NULL, NULL)) {
			fprintf(stderr, "store-fill: cannot add %s\n", u.xui);
			return 1;
		}
	}
	t_users = monotonic_ms();
	/* Documents through the writer's group commit, many in flight. */
	ring = xcalloc(IN_FLIGHT, sizeof(*ring));
	for (unsigned i = 0; i < users; i++) {
		for (unsigned k = 0; k < 3; k++) {
			struct doc_write *d = &ring[submitted % IN_FLIGHT];

			while (submitted - atomic_load(&done_count) >= IN_FLIGHT) {
				struct timespec ts = { 0, 200000 };

				nanosleep(&ts, NULL);
			}
			memset(d, 0, sizeof(*d));
			snprintf(d->selector, sizeof(d->selector), "%s/users/sip:user%u@" REALM "/index", auids[k], i);
			d->data = datas[k];
			d->len = lens[k];
			d->sw.selector = d->selector;
			d->sw.etag_prefix = prefixes[k];
			d->sw.apply = apply_doc;
			d->sw.done = doc_done;
			d->sw.arg = d;
			if (store_write_submit(st, &d->sw)) {
				fprintf(stderr, "store-fill: cannot queue a write\n");
				return 1;
			}
			submitted++;
		}
	}
	while (atomic_load(&done_count) < submitted) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	t_docs = monotonic_ms();
	if (store_read_begin(st, &rd) == XDMS_ERR_OK) {
		if (store_changes_last(rd, &last_seq))
			last_seq = 0;
		store_read_end(rd);
	}
	for (unsigned from = 0; from < subs; from += 1000) {
		struct sub_op op = { from, subs - from < 1000 ? subs - from : 1000, last_seq,
				     (int64_t)wall_ms() + 86400000 };
		struct store_write w = { 0 };

		w.hook = subs_hook;
		w.arg = &op;
		if (store_write_run(st, &w)) {
			fprintf(stderr, "store-fill: cannot write subscription records\n");
			return 1;
		}
	}
	store_close(st);
	printf("users=%u docs=%" PRIu64 " failed=%u subs=%u users_ms=%" PRIu64 " docs_ms=%" PRIu64
	       " total_ms=%" PRIu64 "\n",
	       users, submitted, atomic_load(&failed_count), subs, t_users - t0, t_docs - t_users,
	       monotonic_ms() - t0);
	free(ring);
	return atomic_load(&failed_count) ? 1 : 0;
}
