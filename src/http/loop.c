/* SPDX-License-Identifier: MIT */
/*
 * The event loop of one libmicrohttpd daemon: our thread, libmicrohttpd's
 * epoll set, and libmicrohttpd run without blocking.
 *
 * Why not libmicrohttpd's own thread. Its epoll loop (0.9.75, MHD_epoll)
 * computes its timeout once and then calls epoll_wait() with it until a call
 * returns fewer than 128 events. The connections of the first 128 events are
 * only marked ready, to be served after that loop; when 128 (or 256 ...)
 * connections were ready at once, the next epoll_wait() blocks with the full
 * timeout while they wait. If nothing else happens on that daemon, for
 * example because its 128 clients all wait for their answers, nothing is
 * served until a client gives up: 256 keep-alive clients on two daemons
 * (128 each) hung that way, over TLS and over plain HTTP alike. Here the
 * loop waits itself, with libmicrohttpd's own timeout (0 while it holds
 * connections marked ready), and MHD_run() only ever polls with a zero
 * timeout.
 *
 * Idle passes. Over TLS, libmicrohttpd keeps a connection marked ready while
 * its handshake waits for the client's next flight (GnuTLS reads the socket
 * itself, and libmicrohttpd only clears the mark when a record read fails),
 * so its timeout stays 0 and a daemon with one handshake waiting on a slow
 * client would spin on a core. A pass that no event started and that moved
 * no bytes and ran no request (http_loop_note_work) is idle: the next one
 * waits up to LOOP_IDLE_MS for an event instead. Nothing but an event, a
 * resume or a new connection (both wake the loop) can give such a pass work.
 * Plain HTTP has no such wait (libmicrohttpd reads the socket itself and
 * clears the mark when it is drained), and its reads are not counted, so
 * its passes are never taken for idle ones.
 *
 * Threads. The loop thread is the only one that runs the daemon: it adds the
 * connections the gate hands over (queued under `lock`, with a wake-up on
 * `wakefd`), and it resumes suspended connections when woken. Any thread may
 * queue a connection or resume one.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/wake.h"
#include "http/http_int.h"

#define LOOP_IDLE_MS 10

struct loop_conn {
	struct loop_conn *next;
	int fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct http_loop {
	struct http_loop_options o;
	int mhd_epfd;  /* libmicrohttpd's epoll set (borrowed) */
	int wakefd;    /* eventfd: new connections, resumes, stop */
	pthread_t thread;
	bool is_running;
	pthread_mutex_t lock;
	struct loop_conn *first, *last; /* queued for MHD_add_connection, under lock */
	bool is_stopping;               /* under lock */
};

/* Bumped on the loop thread by anything that shows a pass did work. */
static _Thread_local unsigned long work_count;

void http_loop_note_work(void)
{
	work_count++;
}

static void wake(struct http_loop *l)
{
	wake_signal(l->wakefd, "http: a daemon's loop");
}

/* On the loop thread: adds the queued connections. False when stopping. */
static bool take_queued(struct http_loop *l)
{
	struct loop_conn *c;
	bool is_stopping;

	wake_drain(l->wakefd, "http: a daemon's loop");
	pthread_mutex_lock(&l->lock);
	c = l->first;
	l->first = l->last = NULL;
	is_stopping = l->is_stopping;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct loop_conn *next = c->next;

		/* libmicrohttpd owns the socket from here, and closes it when
		 * it fails; its close notification releases the count. */
		if (MHD_add_connection(l->o.daemon, c->fd, (struct sockaddr *)&c->addr, c->addr_len) != MHD_YES) {
			log_warn("http: libmicrohttpd did not take a connection: %s", strerror(errno));
			l->o.on_lost(l->o.arg, (struct sockaddr *)&c->addr);
		}
		free(c);
		c = next;
	}
	return !is_stopping;
}

static void *loop_main(void *arg)
{
	struct http_loop *l = arg;
	struct pollfd pfd[2];
	bool was_idle = false;

	pfd[0].fd = l->mhd_epfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = l->wakefd;
	pfd[1].events = POLLIN;
	for (;;) {
		MHD_UNSIGNED_LONG_LONG t;
		int timeout = -1, n;
		unsigned long before;

		if (MHD_get_timeout(l->o.daemon, &t) == MHD_YES)
			timeout = t > INT_MAX ? INT_MAX : (int)t;
		if (timeout == 0 && was_idle)
			timeout = LOOP_IDLE_MS;
		n = poll(pfd, 2, timeout);
		if (n < 0) {
			if (errno != EINTR)
				log_error("http: poll: %s", strerror(errno));
			continue;
		}
		if ((pfd[1].revents & POLLIN) && !take_queued(l))
			break;
		before = work_count;
		MHD_run(l->o.daemon);
		was_idle = l->o.is_tls && n == 0 && work_count == before;
	}
	return NULL;
}

enum xdms_err http_loop_start(const struct http_loop_options *o, struct http_loop **out)
{
	struct http_loop *l = xcalloc(1, sizeof(*l));
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_EPOLL_FD);

	*out = NULL;
	l->o = *o;
	l->mhd_epfd = di ? di->epoll_fd : -1;
	l->wakefd = wake_open();
	pthread_mutex_init(&l->lock, NULL);
	if (l->mhd_epfd < 0 || l->wakefd < 0 || pthread_create(&l->thread, NULL, loop_main, l))
		goto fail;
	pthread_setname_np(l->thread, "xdms-http");
	l->is_running = true;
	*out = l;
	return XDMS_ERR_OK;
fail:
	http_loop_destroy(l);
	return XDMS_ERR_IO;
}

bool http_loop_add(struct http_loop *l, int fd, const struct sockaddr *sa, socklen_t sa_len)
{
	struct loop_conn *c;

	if (sa_len > sizeof(c->addr)) {
		close(fd);
		return false;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	memcpy(&c->addr, sa, sa_len);
	c->addr_len = sa_len;
	pthread_mutex_lock(&l->lock);
	if (l->is_stopping) {
		pthread_mutex_unlock(&l->lock);
		close(fd);
		free(c);
		return false;
	}
	if (l->last)
		l->last->next = c;
	else
		l->first = c;
	l->last = c;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return true;
}

void http_loop_resume(struct http_loop *l, struct MHD_Connection *conn)
{
	/* libmicrohttpd only marks the connection; the loop resumes it on its
	 * next pass, which the wake-up starts. */
	MHD_resume_connection(conn);
	wake(l);
}

void http_loop_stop(struct http_loop *l)
{
	if (!l || !l->is_running)
		return;
	pthread_mutex_lock(&l->lock);
	l->is_stopping = true;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	pthread_join(l->thread, NULL);
	l->is_running = false;
}

void http_loop_destroy(struct http_loop *l)
{
	if (!l)
		return;
	http_loop_stop(l);
	/* Connections queued after the last pass never reached the daemon. */
	while (l->first) {
		struct loop_conn *c = l->first;

		l->first = c->next;
		close(c->fd);
		l->o.on_lost(l->o.arg, (struct sockaddr *)&c->addr);
		free(c);
	}
	if (l->wakefd >= 0)
		close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
