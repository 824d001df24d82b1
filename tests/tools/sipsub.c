/* SPDX-License-Identifier: MIT */
/*
 * sipsub: the SIP subscriber module (sip.h, struct sip_subscriber) in a
 * process of its own, for the integration tests: it listens on a SIP
 * address, takes commands on stdin and prints what the module reports on
 * stdout, one line each, flushed at once.
 *
 *   sipsub [--listen ADDR:PORT] [--margin S] [--max-body N] [--max-subs N]
 *          [--resume-spread S] [--set KEY=VALUE]...
 *
 * Commands (values percent-encoded where they hold spaces):
 *   start ID target=URI uri=URI from=URI entry=SEL... [user=U pass=P]
 *         [expires=S] [diff=MODE]
 *   resume ID (the start keys) call_id=.. local_tag=.. [remote_tag=..]
 *         cseq=N [remote_target=..] [route=..]... expires_at=N
 *   unsub ID | abandon ID | release ID | mem | quit
 * Output:
 *   LISTEN udp|tcp ADDR:PORT
 *   STARTED ID | REFUSED ID
 *   DIALOG ID call_id=.. local_tag=.. remote_tag=.. cseq=N remote_target=..
 *          route=..(each) transport=udp|tcp dest=.. expires_at=N
 *   NOTIFY ID state=.. expires=N reason=.. retry_after=N ctype=.. dropped=0|1
 *          body=HEX
 *   END ID status=N reason=.. retry_after=N
 *   MEM - heap_in_use=BYTES (after malloc_trim)
 *   BYE -
 * Callbacks print from the SIP loop thread; a lock keeps lines whole.
 */
#include "config.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "conf/conf.h"
#include "sip/sip.h"

#define MAX_SUBS 20000 /* bench/sip-subscriber runs thousands */
#define MAX_ITEMS 32

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

struct slot {
	char id[32];
	struct sip_sub *sub;
};

static struct slot slots[MAX_SUBS];

/* Writes @v percent-encoded where it holds a space, '%', '=' or a control. */
static void put_value(const char *v)
{
	if (!v) {
		fputs("-", stdout);
		return;
	}
	if (!*v) {
		fputs("%00", stdout); /* the empty string, told apart from absent */
		return;
	}
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c <= ' ' || c == '%' || c == '=' || c >= 0x7f)
			printf("%%%02X", c);
		else
			putchar(c);
	}
}

static void on_dialog(void *arg, const struct sip_sub_dialog *d)
{
	const struct slot *sl = arg;

	pthread_mutex_lock(&out_lock);
	printf("DIALOG %s call_id=", sl->id);
	put_value(d->call_id);
	fputs(" local_tag=", stdout);
	put_value(d->local_tag);
	fputs(" remote_tag=", stdout);
	put_value(d->remote_tag);
	printf(" cseq=%u remote_target=", (unsigned)d->cseq);
	put_value(d->remote_target);
	for (size_t i = 0; i < d->route_count; i++) {
		fputs(" route=", stdout);
		put_value(d->route_set[i]);
	}
	printf(" transport=%s dest=", d->transport == SIP_TRANSPORT_TCP ? "tcp" : "udp");
	put_value(d->destination);
	printf(" expires_at=%" PRId64 "\n", d->expires_at);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void on_notify(void *arg, const struct sip_sub_notify *n)
{
	const struct slot *sl = arg;

	pthread_mutex_lock(&out_lock);
	printf("NOTIFY %s state=", sl->id);
	put_value(n->state);
	printf(" expires=%ld reason=", n->expires);
	put_value(n->reason);
	printf(" retry_after=%ld ctype=", n->retry_after);
	put_value(n->content_type);
	printf(" dropped=%d body=", n->is_body_dropped ? 1 : 0);
	for (size_t i = 0; i < n->body_len; i++)
		printf("%02x", (unsigned char)n->body[i]);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void on_end(void *arg, const struct sip_sub_end *e)
{
	const struct slot *sl = arg;

	pthread_mutex_lock(&out_lock);
	printf("END %s status=%d reason=", sl->id, e->status);
	put_value(e->reason);
	printf(" retry_after=%ld\n", e->retry_after);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void say(const char *word, const char *id)
{
	pthread_mutex_lock(&out_lock);
	printf("%s %s\n", word, id);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Undoes %XX in place ("%00" alone is the empty string). */
static void unescape(char *v)
{
	char *o = v;

	for (char *p = v; *p; p++) {
		if (p[0] == '%' && p[1] && p[2]) {
			char hex[3] = { p[1], p[2], 0 };
			long c = strtol(hex, NULL, 16);

			if (c)
				*o++ = (char)c;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static struct slot *slot_for(const char *id, bool is_new)
{
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (slots[i].id[0] && !strcmp(slots[i].id, id))
			return &slots[i];
	if (!is_new)
		return NULL;
	for (size_t i = 0; i < MAX_SUBS; i++) {
		if (!slots[i].id[0]) {
			snprintf(slots[i].id, sizeof(slots[i].id), "%s", id);
			return &slots[i];
		}
	}
	return NULL;
}

static void command_start(struct sip_subscriber *m, char *id, char *rest, bool is_resume)
{
	static const struct sip_sub_callbacks cb = { on_dialog, on_notify, on_end };
	struct sip_sub_params p = { 0 };
	struct sip_sub_dialog d = { 0 };
	const char *entries[MAX_ITEMS], *routes[MAX_ITEMS];
	size_t ne = 0, nr = 0;
	struct slot *sl = slot_for(id, true);
	char *save = NULL;

	if (!sl) {
		say("REFUSED", id);
		return;
	}
	for (char *kv = strtok_r(rest, " \t\n", &save); kv; kv = strtok_r(NULL, " \t\n", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			continue;
		*v++ = '\0';
		unescape(v);
		if (!strcmp(kv, "target"))
			p.target = v;
		else if (!strcmp(kv, "uri"))
			p.resource_uri = v;
		else if (!strcmp(kv, "from"))
			p.local_uri = v;
		else if (!strcmp(kv, "entry") && ne < MAX_ITEMS)
			entries[ne++] = v;
		else if (!strcmp(kv, "user"))
			p.username = v;
		else if (!strcmp(kv, "pass"))
			p.password = v;
		else if (!strcmp(kv, "expires"))
			p.expires = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(kv, "diff"))
			p.diff_processing = v;
		else if (!strcmp(kv, "call_id"))
			d.call_id = v;
		else if (!strcmp(kv, "local_tag"))
			d.local_tag = v;
		else if (!strcmp(kv, "remote_tag"))
			d.remote_tag = v;
		else if (!strcmp(kv, "cseq"))
			d.cseq = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(kv, "remote_target"))
			d.remote_target = v;
		else if (!strcmp(kv, "route") && nr < MAX_ITEMS)
			routes[nr++] = v;
		else if (!strcmp(kv, "expires_at"))
			d.expires_at = strtoll(v, NULL, 10);
	}
	p.entries = entries;
	p.entry_count = ne;
	d.route_set = routes;
	d.route_count = nr;
	if (is_resume)
		sl->sub = sip_sub_resume(m, &p, &d, &cb, sl);
	else
		sl->sub = sip_sub_start(m, &p, &cb, sl);
	say(sl->sub ? "STARTED" : "REFUSED", id);
}

int main(int argc, char **argv)
{
	struct conf c;
	struct sip_subscriber_conf sc = { 0 };
	struct sip_server *s = NULL;
	struct sip_subscriber *m = NULL;
	const char *listen = "127.0.0.1:0";
	char *why = NULL, line[16384];

	conf_init(&c);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--set")) {
			char *eq = strchr(argv[i + 1], '=');

			if (!eq)
				return 2;
			*eq = '\0';
			if (conf_set(&c, argv[i + 1], eq + 1, &why)) {
				fprintf(stderr, "sipsub: %s\n", why ? why : "bad --set");
				return 2;
			}
		} else if (!strcmp(argv[i], "--listen"))
			listen = argv[i + 1];
		else if (!strcmp(argv[i], "--margin"))
			sc.refresh_margin = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--max-body"))
			sc.max_notify_body = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--resume-spread"))
			sc.resume_spread = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--max-subs"))
			sc.max_subscriptions = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	log_current_level = getenv("SIPSUB_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	if (conf_set(&c, "sip.listen", listen, &why) || sip_server_start(&c, NULL, NULL, &s, &why)) {
		fprintf(stderr, "sipsub: %s\n", why ? why : "cannot start");
		return 1;
	}
	if (sip_subscriber_create(s, &sc, &m)) {
		fprintf(stderr, "sipsub: cannot create the subscriber\n");
		sip_server_stop(s);
		return 1;
	}
	pthread_mutex_lock(&out_lock);
	printf("LISTEN udp %s\nLISTEN tcp %s\n", sip_server_udp_address(s), sip_server_tcp_address(s));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	while (fgets(line, sizeof(line), stdin)) {
		char *save = NULL, *cmd = strtok_r(line, " \t\n", &save), *id, *rest;
		struct slot *sl;

		if (!cmd)
			continue;
		if (!strcmp(cmd, "quit"))
			break;
		if (!strcmp(cmd, "mem")) {
			/* The heap in use, and the resident size once freed memory
			 * is given back: what bench/sip-subscriber reports. */
			struct mallinfo2 mi;

			malloc_trim(0);
			mi = mallinfo2();
			pthread_mutex_lock(&out_lock);
			printf("MEM - heap_in_use=%zu\n", mi.uordblks);
			fflush(stdout);
			pthread_mutex_unlock(&out_lock);
			continue;
		}
		id = strtok_r(NULL, " \t\n", &save);
		if (!id)
			continue;
		rest = save ? save : (char *)"";
		if (!strcmp(cmd, "start") || !strcmp(cmd, "resume")) {
			command_start(m, id, rest, !strcmp(cmd, "resume"));
			continue;
		}
		sl = slot_for(id, false);
		if (!sl || !sl->sub)
			continue;
		if (!strcmp(cmd, "unsub")) {
			sip_sub_unsubscribe(sl->sub);
		} else if (!strcmp(cmd, "abandon")) {
			sip_sub_abandon(sl->sub);
		} else if (!strcmp(cmd, "release")) {
			sip_sub_release(sl->sub);
			sl->sub = NULL;
		}
	}
	sip_subscriber_destroy(m);
	for (size_t i = 0; i < MAX_SUBS; i++)
		sip_sub_release(slots[i].sub);
	sip_server_stop(s);
	conf_cleanup(&c);
	say("BYE", "-");
	return 0;
}
