/* SPDX-License-Identifier: MIT */
/*
 * The head gate: xdmsd accepts HTTP connections itself and hands each one
 * to a libmicrohttpd daemon (through the server's hand_over, which queues it
 * for the daemon's loop) only once it is worth a place there.
 *
 * Why. libmicrohttpd 0.9.75 answers nothing to some broken request lines
 * ("GARBAGE", a line starting with a bare CR): it closes the connection
 * without a status, and nothing is logged or counted. And its only clock is
 * an idle timeout, so a client that sends its head one byte at a time keeps
 * a connection slot for as long as it likes; a few hundred of them lock
 * everybody else out.
 *
 * What. One thread owns the listening socket and an epoll set. A new
 * connection is counted (in total and per client address) and refused with
 * 503 when http.max_connections or http.max_per_address would be exceeded
 * (the addresses in auth.trusted_peers, the proxies in front of us, are
 * exempt from the per-address cap). Over plain HTTP the gate then peeks
 * (MSG_PEEK, nothing is consumed) at what the client sent until the request
 * head is complete: a malformed request line or head gets 400 (505 for
 * another HTTP major version) and a closed connection, a head not complete
 * within http.head_timeout gets 408; a complete head goes to the next
 * daemon, which reads the same bytes again. When the cap is reached while
 * heads are still waiting here, the oldest waiting one makes room (408).
 * Over TLS the bytes are encrypted, so the connection is handed over at once
 * and only the counting applies; framing.c checks every head, including
 * those of later requests on a kept-alive connection.
 *
 * Threads: the gate thread does everything above. The counts are shared
 * with the daemons' threads, which release a connection when
 * libmicrohttpd closes it (http_gate_release), under `lock`.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/wake.h"
#include "http/http_int.h"

#define GATE_BUCKETS 4096u
#define GATE_EVENTS 64
#define GATE_ACCEPT_BURST 64

/* One client address and how many of its connections are open. */
struct gate_addr {
	unsigned char key[16];
	unsigned count;
	struct gate_addr *next;
};

/* A connection whose request head is still awaited. */
struct gate_conn {
	int fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char ip[INET6_ADDRSTRLEN];
	uint64_t deadline_ms;
	struct gate_conn *prev, *next;
};

struct http_gate {
	struct http_gate_options o;
	int epfd;
	int stopfd;
	pthread_t thread;
	bool is_running;
	char *scratch; /* o.max_head bytes: the peeked head */
	/* Pending heads, oldest first (deadlines grow in accept order). */
	struct gate_conn *first, *last;
	/* Ended during this round of events, freed after it: a later event of
	 * the same round may still point at them. */
	struct gate_conn *retired;
	unsigned pending_count;
	/* Shared with the daemons' threads. */
	pthread_mutex_t lock;
	unsigned open_count;
	struct gate_addr *buckets[GATE_BUCKETS];
	/* Refusals since the last warning, and when that was. */
	unsigned refused_since_warn;
	uint64_t last_warn_ms;
	atomic_uint_fast64_t refused[GATE_REFUSAL__COUNT];
};

/* ---- per-address counts ----------------------------------------------------------------- */

/* IPv4 addresses as v4-mapped IPv6, so one key type fits both. */
static void addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	}
}

static unsigned addr_bucket(const unsigned char key[16])
{
	return (unsigned)(fnv1a(key, 16) % GATE_BUCKETS);
}

static struct gate_addr **addr_find(struct http_gate *g, const unsigned char key[16])
{
	struct gate_addr **p = &g->buckets[addr_bucket(key)];

	while (*p && memcmp((*p)->key, key, 16) != 0)
		p = &(*p)->next;
	return p;
}

static bool is_exempt(const struct http_gate *g, const char *ip)
{
	return g->o.exempt && conf_list_has(g->o.exempt, ip);
}

/* Counts a new connection; false (nothing counted) when a cap forbids it. */
static bool admit(struct http_gate *g, const struct sockaddr *sa, const char *ip, enum gate_refusal *why)
{
	unsigned char key[16];
	struct gate_addr **p, *a;
	bool ok = false;

	addr_key(sa, key);
	pthread_mutex_lock(&g->lock);
	if (g->o.max_connections && g->open_count >= g->o.max_connections) {
		*why = GATE_REFUSED_CAPACITY;
		goto out;
	}
	p = addr_find(g, key);
	a = *p;
	if (g->o.max_per_address && a && a->count >= g->o.max_per_address && !is_exempt(g, ip)) {
		*why = GATE_REFUSED_PER_ADDRESS;
		goto out;
	}
	if (!a) {
		a = xcalloc(1, sizeof(*a));
		memcpy(a->key, key, 16);
		*p = a;
	}
	a->count++;
	g->open_count++;
	ok = true;
out:
	pthread_mutex_unlock(&g->lock);
	return ok;
}

void http_gate_release(struct http_gate *g, const struct sockaddr *sa)
{
	unsigned char key[16];
	struct gate_addr **p, *a;

	if (!g || !sa)
		return;
	addr_key(sa, key);
	pthread_mutex_lock(&g->lock);
	p = addr_find(g, key);
	a = *p;
	if (a && a->count && --a->count == 0) {
		*p = a->next;
		free(a);
	}
	if (g->open_count)
		g->open_count--;
	pthread_mutex_unlock(&g->lock);
}

unsigned http_gate_open_count(struct http_gate *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->open_count;
	pthread_mutex_unlock(&g->lock);
	return n;
}

uint64_t http_gate_refused(struct http_gate *g, enum gate_refusal why)
{
	return atomic_load_explicit(&g->refused[why], memory_order_relaxed);
}

/* ---- the request head (RFC 9112 §2, §3, §5) ---------------------------------------------- */

enum { HEAD_MORE = 0, HEAD_OK = 1 };

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Judges the first @n bytes a client sent: HEAD_MORE while they are a valid
 * beginning of a request head, HEAD_OK once the head is complete, else the
 * status to refuse with (400, 505) and a static reason in *why.
 */
static unsigned head_check(const unsigned char *b, size_t n, const char **why)
{
	static const char version[] = "HTTP/";
	size_t i = 0, start;
	unsigned char major;

	*why = "malformed request line";
	/* RFC 9112 §2.2: empty lines before the request-line are ignored. */
	while (i < n && (b[i] == '\r' || b[i] == '\n')) {
		if (b[i] == '\r' && i + 1 < n && b[i + 1] != '\n')
			return 400;
		i++;
	}
	/* method SP */
	for (start = i; i < n && b[i] != ' '; i++)
		if (!is_tchar(b[i]))
			return 400;
	if (i == n)
		return HEAD_MORE;
	if (i == start)
		return 400;
	/* request-target SP: visible ASCII only (RFC 3986; no NUL, no CTL) */
	for (start = ++i; i < n && b[i] != ' '; i++)
		if (b[i] <= 0x20 || b[i] >= 0x7f)
			return 400;
	if (i == n)
		return HEAD_MORE;
	if (i == start)
		return 400;
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF (or a bare LF) */
	i++;
	for (size_t k = 0; k < 5; k++, i++) {
		if (i == n)
			return HEAD_MORE;
		if (b[i] != (unsigned char)version[k])
			return 400;
	}
	major = i < n ? b[i] : 0;
	for (size_t k = 0; k < 3; k++, i++) {
		if (i == n)
			return HEAD_MORE;
		if (k == 1 ? b[i] != '.' : !(b[i] >= '0' && b[i] <= '9'))
			return 400;
	}
	if (i < n && b[i] == '\r')
		i++;
	if (i == n)
		return HEAD_MORE;
	if (b[i++] != '\n')
		return 400;
	if (major != '1') {
		*why = "unsupported HTTP version";
		return 505;
	}
	/* field lines, up to the empty line */
	*why = "malformed header field";
	for (;;) {
		if (i == n)
			return HEAD_MORE;
		if (b[i] == '\n')
			return HEAD_OK;
		if (b[i] == '\r') {
			if (i + 1 == n)
				return HEAD_MORE;
			return b[i + 1] == '\n' ? HEAD_OK : 400;
		}
		if (b[i] == ' ' || b[i] == '\t') {
			*why = "obs-fold line folding in a header field"; /* RFC 9112 §5.2 */
			return 400;
		}
		for (start = i; i < n && b[i] != ':'; i++)
			if (!is_tchar(b[i]))
				return 400; /* RFC 9112 §5.1: no whitespace before the colon */
		if (i == n)
			return HEAD_MORE;
		for (i++; i < n && b[i] != '\n'; i++) {
			if (b[i] == '\0') {
				*why = "NUL byte in a header field value";
				return 400;
			}
			if (b[i] == '\r' && i + 1 < n && b[i + 1] != '\n') {
				*why = "CR inside a header field value";
				return 400;
			}
		}
		if (i == n)
			return HEAD_MORE;
		i++;
	}
}

/* ---- answering and handing over ---------------------------------------------------------- */

static const char *reason_of(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 505: return "HTTP Version Not Supported";
	default: return "Service Unavailable";
	}
}

void http_raw_answer(int fd, unsigned status, const char *why)
{
	char head[512], when[64];
	time_t t = time(NULL);
	struct tm tm;
	int len;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	len = snprintf(head, sizeof(head),
		       "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n%s"
		       "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s\n",
		       status, reason_of(status), when, status == 503 ? "Retry-After: 1\r\n" : "",
		       strlen(why) + 1, why);
	if (len > 0 && (size_t)len < sizeof(head))
		(void)send(fd, head, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Answers @status and closes @fd. What the client sent is read first (up to
 * a bound) so that the close does not reset the connection before the
 * client has read the answer.
 */
static void answer_and_close(int fd, unsigned status, const char *why)
{
	char drain[4096];

	for (int i = 0; i < 16 && recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0; i++)
		;
	http_raw_answer(fd, status, why);
	(void)shutdown(fd, SHUT_WR);
	close(fd);
}

static void note_refusal(struct http_gate *g, const char *ip, unsigned status, enum gate_refusal kind,
			 const char *why)
{
	uint64_t now = monotonic_ms();

	atomic_fetch_add_explicit(&g->refused[kind], 1, memory_order_relaxed);
	if (g->o.on_refused)
		g->o.on_refused(g->o.arg, ip, status, why);
	/* One warning a second at most: a flood must not flood the log too. */
	g->refused_since_warn++;
	if (now - g->last_warn_ms >= 1000) {
		log_warn("http: refused %u connection(s) in the last %llu ms; the latest from %s: %u %s",
			 g->refused_since_warn, (unsigned long long)(g->last_warn_ms ? now - g->last_warn_ms : 0),
			 ip, status, why);
		g->refused_since_warn = 0;
		g->last_warn_ms = now;
	}
}

/* Marks @c ended (fd -1); it is freed after the current round of events. */
static void conn_retire(struct http_gate *g, struct gate_conn *c)
{
	c->fd = -1;
	c->next = g->retired;
	g->retired = c;
}

static void retired_free(struct http_gate *g)
{
	while (g->retired) {
		struct gate_conn *c = g->retired;

		g->retired = c->next;
		free(c);
	}
}

static void pending_unlink(struct http_gate *g, struct gate_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		g->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->last = c->prev;
	c->prev = c->next = NULL;
	g->pending_count--;
	(void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Ends a pending connection that is refused: answer, close, uncount. */
static void pending_refuse(struct http_gate *g, struct gate_conn *c, unsigned status, enum gate_refusal kind,
			   const char *why)
{
	pending_unlink(g, c);
	answer_and_close(c->fd, status, why);
	note_refusal(g, c->ip, status, kind, why);
	http_gate_release(g, (struct sockaddr *)&c->addr);
	conn_retire(g, c);
}

static void hand_over(struct http_gate *g, int fd, struct sockaddr_storage *addr, socklen_t addr_len)
{
	/* The server owns (and on failure closes) the socket from here; the
	 * daemon's connection-closed notification releases the count. */
	if (!g->o.hand_over(g->o.arg, fd, (struct sockaddr *)addr, addr_len))
		http_gate_release(g, (struct sockaddr *)addr);
}

static void pending_inspect(struct http_gate *g, struct gate_conn *c)
{
	ssize_t n;
	const char *why = NULL;
	unsigned verdict;

	if (c->fd < 0)
		return; /* ended earlier in this round */
	n = recv(c->fd, g->scratch, g->o.max_head, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* Gone before sending a request: nothing to answer. */
		pending_unlink(g, c);
		close(c->fd);
		http_gate_release(g, (struct sockaddr *)&c->addr);
		conn_retire(g, c);
		return;
	}
	verdict = head_check((const unsigned char *)g->scratch, (size_t)n, &why);
	if (verdict == HEAD_MORE && (size_t)n < g->o.max_head)
		return;
	if (verdict >= 400) {
		pending_refuse(g, c, verdict, GATE_REFUSED_BAD_HEAD, why);
		return;
	}
	/* Complete, or as large as a head may be (libmicrohttpd answers that). */
	pending_unlink(g, c);
	hand_over(g, c->fd, &c->addr, c->addr_len);
	conn_retire(g, c);
}

static void accept_some(struct http_gate *g)
{
	for (int k = 0; k < GATE_ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";
		enum gate_refusal why = GATE_REFUSED_CAPACITY;
		struct gate_conn *c;
		struct epoll_event ev;
		bool ok;
		int fd = accept4(g->o.listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("http: accept: %s", strerror(errno));
			return;
		}
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
		ok = admit(g, (struct sockaddr *)&ss, ip, &why);
		if (!ok && why == GATE_REFUSED_CAPACITY && g->first) {
			/* Full, while some heads are still being waited for: the
			 * oldest of them gives its place to the newcomer. */
			pending_refuse(g, g->first, 408, GATE_REFUSED_HEAD_TIMEOUT,
				       "request head not complete (its place went to a new connection)");
			ok = admit(g, (struct sockaddr *)&ss, ip, &why);
		}
		if (!ok) {
			const char *text = why == GATE_REFUSED_PER_ADDRESS ? "too many connections from this address"
									   : "too many connections";

			answer_and_close(fd, 503, text);
			note_refusal(g, ip, 503, why, text);
			continue;
		}
		if (g->o.is_tls) {
			hand_over(g, fd, &ss, len);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->addr = ss;
		c->addr_len = len;
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
		c->deadline_ms = monotonic_ms() + (uint64_t)g->o.head_timeout_s * 1000;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			log_warn("http: epoll: %s", strerror(errno));
			close(fd);
			http_gate_release(g, (struct sockaddr *)&ss);
			free(c);
			continue;
		}
		c->prev = g->last;
		if (g->last)
			g->last->next = c;
		else
			g->first = c;
		g->last = c;
		g->pending_count++;
		/* The head may be there already (it usually is). */
		pending_inspect(g, c);
	}
}

static void *gate_main(void *arg)
{
	struct http_gate *g = arg;
	struct epoll_event evs[GATE_EVENTS];

	for (;;) {
		int timeout = -1, n;
		uint64_t now = monotonic_ms();

		while (g->first && g->first->deadline_ms <= now)
			pending_refuse(g, g->first, 408, GATE_REFUSED_HEAD_TIMEOUT, "request head not complete in time");
		retired_free(g);
		if (g->first)
			timeout = (int)(g->first->deadline_ms - now) + 1;
		n = epoll_wait(g->epfd, evs, GATE_EVENTS, timeout);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &g->stopfd)
				return NULL;
			if (p == &g->o.listen_fd)
				accept_some(g);
			else
				pending_inspect(g, p);
		}
		retired_free(g);
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------- */

enum xdms_err http_gate_start(const struct http_gate_options *o, struct http_gate **out)
{
	struct http_gate *g = xcalloc(1, sizeof(*g));
	struct epoll_event ev;
	int fl;

	*out = NULL;
	g->o = *o;
	g->is_running = false;
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	g->stopfd = wake_open();
	pthread_mutex_init(&g->lock, NULL);
	g->scratch = xmalloc(o->max_head ? o->max_head : 1);
	if (!g->o.max_head)
		g->o.max_head = 1;
	if (!g->o.head_timeout_s)
		g->o.head_timeout_s = 1;
	fl = fcntl(o->listen_fd, F_GETFL);
	if (g->epfd < 0 || g->stopfd < 0 || fl < 0 || fcntl(o->listen_fd, F_SETFL, fl | O_NONBLOCK))
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &g->o.listen_fd;
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, o->listen_fd, &ev))
		goto fail;
	ev.data.ptr = &g->stopfd;
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->stopfd, &ev))
		goto fail;
	if (pthread_create(&g->thread, NULL, gate_main, g))
		goto fail;
	g->is_running = true;
	*out = g;
	return XDMS_ERR_OK;
fail:
	http_gate_destroy(g);
	return XDMS_ERR_IO;
}

void http_gate_stop(struct http_gate *g)
{
	if (!g || !g->is_running)
		return;
	wake_signal(g->stopfd, "http: the accepting thread");
	pthread_join(g->thread, NULL);
	g->is_running = false;
	/* Heads still awaited are dropped: the server is going away. */
	while (g->first) {
		struct gate_conn *c = g->first;

		pending_unlink(g, c);
		close(c->fd);
		free(c);
	}
	retired_free(g);
}

void http_gate_destroy(struct http_gate *g)
{
	if (!g)
		return;
	http_gate_stop(g);
	if (g->epfd >= 0)
		close(g->epfd);
	if (g->stopfd >= 0)
		close(g->stopfd);
	for (unsigned i = 0; i < GATE_BUCKETS; i++) {
		while (g->buckets[i]) {
			struct gate_addr *a = g->buckets[i];

			g->buckets[i] = a->next;
			free(a);
		}
	}
	pthread_mutex_destroy(&g->lock);
	free(g->scratch);
	free(g);
}

/* ---- who holds a port ------------------------------------------------------------------- */

/* The inode of the listening TCP socket on @port in /proc/net/@table, or 0. */
static unsigned long listener_inode(const char *table, unsigned port)
{
	char path[64], line[512];
	unsigned long inode = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/net/%s", table);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!inode && fgets(line, sizeof(line), f)) {
		char local[64], remote[64], state[8];
		unsigned long ino;
		const char *colon;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*s %63s %63s %7s %*s %*s %*s %*s %*s %lu", local, remote, state, &ino) != 4)
			continue;
		colon = strrchr(local, ':');
		if (colon && strcmp(state, "0A") == 0 && strtoul(colon + 1, NULL, 16) == port)
			inode = ino;
	}
	fclose(f);
	return inode;
}

void http_port_holder(const struct sockaddr_storage *ss, char *out, size_t len)
{
	unsigned port = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
						       : ((const struct sockaddr_in *)ss)->sin_port);
	unsigned long inode = listener_inode("tcp", port);
	char want[64];
	DIR *proc;
	struct dirent *pe;

	out[0] = '\0';
	if (!inode)
		inode = listener_inode("tcp6", port);
	if (!inode)
		return;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	proc = opendir("/proc");
	if (!proc)
		return;
	while (!out[0] && (pe = readdir(proc)) != NULL) {
		char dir[64], link[64], comm[64] = "?";
		DIR *fds;
		struct dirent *fe;
		FILE *f;
		char *end;
		long pid = strtol(pe->d_name, &end, 10);

		if (pid <= 0 || *end)
			continue;
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
		fds = opendir(dir);
		if (!fds)
			continue;
		while ((fe = readdir(fds)) != NULL) {
			char fd_path[128];
			ssize_t n;
			long fd = strtol(fe->d_name, &end, 10);

			if (fd < 0 || *end || end == fe->d_name)
				continue;
			snprintf(fd_path, sizeof(fd_path), "%s/%ld", dir, fd);
			n = readlink(fd_path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) != 0)
				continue;
			snprintf(fd_path, sizeof(fd_path), "/proc/%ld/comm", pid);
			f = fopen(fd_path, "r");
			if (f) {
				if (fgets(comm, sizeof(comm), f))
					comm[strcspn(comm, "\n")] = '\0';
				fclose(f);
			}
			snprintf(out, len, " (held by pid %ld, %s)", pid, comm);
			break;
		}
		closedir(fds);
	}
	closedir(proc);
}
