/* SPDX-License-Identifier: MIT */
/*
 * The SIP event loop: one thread, one epoll set holding an eventfd (wake-ups
 * from other threads), the UDP socket, the TCP listener and every TCP
 * connection. Each pass waits until the earliest of: a socket event, a
 * queued call, the next timer of ours, the next libosip2 timer, or one
 * second (idle-connection scan); then it handles the sockets (which feed
 * libosip2), runs queued calls and due timers, and finally lets libosip2
 * execute its timers and events, which is where transactions send and
 * retransmit and where requests are dispatched.
 *
 * Threads: the loop thread owns everything in struct sip_server except the
 * call queue and is_stopping, which are under s->lock. sip_server_start and
 * sip_server_stop run on the caller's thread before the loop starts and
 * after it has been joined.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/net.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/wake.h"
#include "sip/sip_int.h"

#define BIND_ATTEMPTS 32
#define MAX_EVENTS 64

uint64_t sip_now_ms(void)
{
	return monotonic_ms(); /* timers and idle times: never the wall clock */
}

enum xdms_err sip_watch_add(struct sip_server *s, struct sip_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0)
		return xdms_err_from_errno(errno);
	return XDMS_ERR_OK;
}

void sip_watch_mod(struct sip_server *s, struct sip_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	(void)epoll_ctl(s->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void sip_watch_del(struct sip_server *s, struct sip_watch *w)
{
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

bool sip_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

void sip_local_host(struct sip_server *s, const struct sockaddr_storage *to, char *out, size_t len)
{
	struct sockaddr_storage local = s->bound;
	socklen_t local_len = sizeof(local);
	char ip[INET6_ADDRSTRLEN] = "127.0.0.1";

	if (s->is_wildcard && to) {
		/* A connected UDP socket reveals the source address the kernel
		 * would route from, without sending anything. */
		int fd = socket(to->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd >= 0) {
			socklen_t to_len = to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								     : sizeof(struct sockaddr_in);

			if (connect(fd, (const struct sockaddr *)to, to_len) != 0 ||
			    getsockname(fd, (struct sockaddr *)&local, &local_len) != 0)
				local = s->bound;
			close(fd);
		}
	}
	if (local.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]", ip);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s", ip);
	}
}

void sip_token(struct sip_server *s, char *out, size_t len)
{
	snprintf(out, len, "%s%llx", s->instance, (unsigned long long)++s->counter);
}

/* -- calls and timers ----------------------------------------------------- */

enum xdms_err sip_server_call(struct sip_server *s, sip_run_fn fn, void *arg)
{
	struct sip_call *call;

	pthread_mutex_lock(&s->lock);
	if (s->is_stopping) {
		pthread_mutex_unlock(&s->lock);
		return XDMS_ERR_BUSY;
	}
	call = xcalloc(1, sizeof(*call));
	call->fn = fn;
	call->arg = arg;
	if (s->calls_tail)
		s->calls_tail->next = call;
	else
		s->calls_head = call;
	s->calls_tail = call;
	pthread_mutex_unlock(&s->lock);
	wake_signal(s->wake.fd, "sip: the loop");
	return XDMS_ERR_OK;
}

/* Runs the queued calls; returns true when the server is stopping. */
static bool run_calls(struct sip_server *s)
{
	struct sip_call *call;
	bool is_stopping;

	wake_drain(s->wake.fd, "sip: the loop");
	pthread_mutex_lock(&s->lock);
	call = s->calls_head;
	s->calls_head = s->calls_tail = NULL;
	is_stopping = s->is_stopping;
	pthread_mutex_unlock(&s->lock);
	while (call) {
		struct sip_call *next = call->next;

		call->fn(call->arg);
		free(call);
		call = next;
	}
	return is_stopping;
}

static bool timer_before(const struct sip_timer *a, const struct sip_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void timer_place(struct sip_server *s, struct sip_timer *t, size_t slot)
{
	s->timers[slot] = t;
	t->slot = slot;
}

/* Moves the timer at slot towards the root while it is earlier than its parent. */
static void timer_sift_up(struct sip_server *s, size_t slot)
{
	struct sip_timer *t = s->timers[slot];

	while (slot > 0) {
		size_t parent = (slot - 1) / 2;

		if (!timer_before(t, s->timers[parent]))
			break;
		timer_place(s, s->timers[parent], slot);
		slot = parent;
	}
	timer_place(s, t, slot);
}

/* Moves the timer at slot towards the leaves while a child is earlier. */
static void timer_sift_down(struct sip_server *s, size_t slot)
{
	struct sip_timer *t = s->timers[slot];

	for (;;) {
		size_t child = 2 * slot + 1;

		if (child >= s->timer_count)
			break;
		if (child + 1 < s->timer_count && timer_before(s->timers[child + 1], s->timers[child]))
			child++;
		if (!timer_before(s->timers[child], t))
			break;
		timer_place(s, s->timers[child], slot);
		slot = child;
	}
	timer_place(s, t, slot);
}

/* Takes the timer out of the heap (it stays allocated). */
static void timer_remove(struct sip_server *s, struct sip_timer *t)
{
	size_t slot = t->slot;
	struct sip_timer *last = s->timers[--s->timer_count];

	if (last == t)
		return;
	timer_place(s, last, slot);
	if (slot > 0 && timer_before(last, s->timers[(slot - 1) / 2]))
		timer_sift_up(s, slot);
	else
		timer_sift_down(s, slot);
}

struct sip_timer *sip_timer_start(struct sip_server *s, unsigned delay_ms, sip_run_fn fn, void *arg)
{
	struct sip_timer *t = xcalloc(1, sizeof(*t));

	t->due_ms = sip_now_ms() + delay_ms;
	t->order = s->timer_order++;
	t->fn = fn;
	t->arg = arg;
	if (s->timer_count == s->timer_cap) {
		s->timer_cap = s->timer_cap ? 2 * s->timer_cap : 64;
		s->timers = xrealloc(s->timers, s->timer_cap * sizeof(*s->timers));
	}
	s->timer_count++;
	timer_place(s, t, s->timer_count - 1);
	timer_sift_up(s, t->slot);
	return t;
}

void sip_timer_cancel(struct sip_server *s, struct sip_timer *t)
{
	if (!t)
		return;
	timer_remove(s, t);
	free(t);
}

static void run_timers(struct sip_server *s)
{
	uint64_t now = sip_now_ms();
	uint64_t started_before = s->timer_order;

	/* A timer started while this pass runs (a callback re-arming itself
	 * with delay 0) waits for the next pass, so it cannot starve the loop. */
	while (s->timer_count) {
		struct sip_timer *t = s->timers[0];

		if (t->due_ms > now || t->order >= started_before)
			break;
		timer_remove(s, t);
		t->fn(t->arg);
		free(t);
	}
}

/* -- the loop ------------------------------------------------------------- */

static int next_timeout_ms(struct sip_server *s, uint64_t now)
{
	int ms = 1000;
	int osip_ms = sip_osip_timeout_ms(s);

	if (osip_ms < ms)
		ms = osip_ms;
	if (s->timer_count) {
		uint64_t due = s->timers[0]->due_ms;
		int t = due <= now ? 0 : (due - now > 1000 ? 1000 : (int)(due - now));

		if (t < ms)
			ms = t;
	}
	return ms < 0 ? 0 : ms;
}

static void *loop_main(void *arg)
{
	struct sip_server *s = arg;
	struct epoll_event events[MAX_EVENTS];
	bool is_stopping = false;

	while (!is_stopping) {
		uint64_t now = sip_now_ms();
		int n = epoll_wait(s->epfd, events, MAX_EVENTS, next_timeout_ms(s, now));

		if (n < 0 && errno != EINTR) {
			log_error("sip: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct sip_watch *w = events[i].data.ptr;

			switch (w->kind) {
			case SIP_WATCH_WAKE:
				is_stopping = run_calls(s);
				break;
			case SIP_WATCH_UDP:
				sip_udp_readable(s);
				break;
			case SIP_WATCH_LISTEN:
				sip_tcp_acceptable(s);
				break;
			case SIP_WATCH_CONN:
				sip_tcp_event(s, (struct sip_conn *)w, events[i].events);
				break;
			}
		}
		run_timers(s);
		sip_osip_run(s);
		now = sip_now_ms();
		if (now >= s->next_idle_scan_ms) {
			sip_tcp_idle_scan(s, now);
			s->next_idle_scan_ms = now + 1000;
		}
		sip_tcp_reap(s);
	}
	return NULL;
}

/* -- start and stop ------------------------------------------------------- */

static void osip_trace_to_log(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap)
{
	char line[512];
	size_t n;

	if (log_current_level < LOG_LEVEL_DEBUG)
		return;
	vsnprintf(line, sizeof(line), chfr, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("sip: osip %s:%d: %s", fi, li, line);
}

static enum xdms_err bind_both(struct sip_server *s, char **why)
{
	struct sockaddr_storage want;
	socklen_t want_len;
	bool is_ephemeral;
	enum xdms_err err = XDMS_ERR_IO;

	if (!net_addr_parse(s->c->sip_listen, &want, &want_len)) {
		*why = xasprintf("sip.listen: '%s' is not ADDRESS:PORT", s->c->sip_listen);
		return XDMS_ERR_INVAL;
	}
	is_ephemeral = (want.ss_family == AF_INET ? ((struct sockaddr_in *)&want)->sin_port
						  : ((struct sockaddr_in6 *)&want)->sin6_port) == 0;
	if (want.ss_family == AF_INET)
		s->is_wildcard = ((struct sockaddr_in *)&want)->sin_addr.s_addr == htonl(INADDR_ANY);
	else
		s->is_wildcard = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&want)->sin6_addr);
	for (int attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
		free(*why);
		*why = NULL;
		err = sip_udp_open(s, &want, want_len, why);
		if (err)
			return err;
		/* TCP takes the port UDP got; with port 0 another process may
		 * hold it for TCP, so both are retried on a fresh port. */
		err = sip_tcp_listen(s, &s->bound, s->bound_len, why);
		if (!err)
			break;
		close(s->udp.fd);
		s->udp.fd = -1;
		if (!is_ephemeral || err != XDMS_ERR_EXISTS)
			return err;
	}
	if (err)
		return err;
	net_addr_format(&s->bound, s->udp_address, sizeof(s->udp_address), NULL, 0);
	net_addr_format(&s->bound, s->tcp_address, sizeof(s->tcp_address), NULL, 0);
	return XDMS_ERR_OK;
}

static void server_free(struct sip_server *s)
{
	struct sip_call *call;

	if (!s)
		return;
	sip_osip_shutdown(s);
	sip_tcp_close_all(s);
	while (s->timer_count)
		free(s->timers[--s->timer_count]);
	free(s->timers);
	s->timers = NULL;
	s->timer_cap = 0;
	call = s->calls_head;
	while (call) {
		struct sip_call *next = call->next;

		free(call);
		call = next;
	}
	if (s->udp.fd >= 0)
		close(s->udp.fd);
	if (s->listen.fd >= 0)
		close(s->listen.fd);
	if (s->wake.fd >= 0)
		close(s->wake.fd);
	if (s->epfd >= 0)
		close(s->epfd);
	pthread_mutex_destroy(&s->lock);
	free(s->dead);
	free(s->rbuf);
	free(s);
}

enum xdms_err sip_server_start(const struct conf *c, sip_subscribe_fn on_subscribe, void *arg,
			       struct sip_server **out, char **why)
{
	struct sip_server *s = xcalloc(1, sizeof(*s));
	unsigned char rnd[4] = { 0 };
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	s->c = c;
	s->max_message = c->sip_max_message;
	s->udp_buffer = c->sip_udp_buffer;
	if (s->max_message > SIP_UDP_DATAGRAM_MAX)
		s->max_message = SIP_UDP_DATAGRAM_MAX;
	s->on_subscribe = on_subscribe;
	s->on_subscribe_arg = arg;
	s->epfd = s->wake.fd = s->udp.fd = s->listen.fd = -1;
	s->wake.kind = SIP_WATCH_WAKE;
	s->udp.kind = SIP_WATCH_UDP;
	s->listen.kind = SIP_WATCH_LISTEN;
	s->next_conn_id = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->rbuf = xmalloc(SIP_UDP_DATAGRAM_MAX + 1);
	snprintf(s->server_header, sizeof(s->server_header), "xdmsd/%s", PACKAGE_VERSION);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd[0] = (unsigned char)getpid();
	snprintf(s->instance, sizeof(s->instance), "%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2], rnd[3]);

	osip_trace_initialize_func(OSIP_INFO4, osip_trace_to_log);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake.fd = wake_open();
	if (s->epfd < 0 || s->wake.fd < 0) {
		err = xdms_err_from_errno(errno);
		*why = xasprintf("epoll/eventfd: %s", strerror(errno));
		goto out;
	}
	err = bind_both(s, why);
	if (err)
		goto out;
	err = sip_osip_init(s);
	if (err) {
		*why = xasprintf("libosip2 initialisation failed");
		goto out;
	}
	if ((err = sip_watch_add(s, &s->wake, EPOLLIN)) || (err = sip_watch_add(s, &s->udp, EPOLLIN)) ||
	    (err = sip_watch_add(s, &s->listen, EPOLLIN))) {
		*why = xasprintf("epoll_ctl: %s", strerror(errno));
		goto out;
	}
	if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
		err = XDMS_ERR_IO;
		*why = xasprintf("cannot start the loop thread");
		goto out;
	}
	s->has_thread = true;
	log_info("sip: listening on udp %s and tcp %s", s->udp_address, s->tcp_address);
	*out = s;
	s = NULL;
out:
	server_free(s);
	return err;
}

const char *sip_server_udp_address(const struct sip_server *s)
{
	return s->udp_address;
}

const char *sip_server_tcp_address(const struct sip_server *s)
{
	return s->tcp_address;
}

void sip_server_stop(struct sip_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->is_stopping = true;
	pthread_mutex_unlock(&s->lock);
	if (s->has_thread) {
		wake_signal(s->wake.fd, "sip: the loop");
		pthread_join(s->thread, NULL);
	}
	server_free(s);
}
