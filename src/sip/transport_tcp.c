/* SPDX-License-Identifier: MIT */
/*
 * The TCP transport: a listener on the UDP socket's address and port, at
 * most SIP_TCP_MAX_CONNECTIONS connections (accepted or opened for a
 * request we send), each closed after SIP_TCP_IDLE_TIMEOUT_MS without
 * traffic.
 *
 * Framing (RFC 3261 §18.3): a message is its header block up to the first
 * empty line plus Content-Length body bytes; Content-Length is mandatory on
 * a stream. The input buffer may hold several messages or part of one; each
 * complete message is handed to sip_inbound and consumed. A message above
 * sip.max_message is answered 513 when its header block is readable and the
 * connection is closed, since the rest of the stream cannot be framed; so is
 * a header block without a usable Content-Length (400). CRLF CRLF between
 * messages is an RFC 5626 keep-alive ping and is answered with CRLF.
 *
 * Writes never block: what the socket does not take is queued (bounded) and
 * flushed on EPOLLOUT. A closed connection stays in the list, marked dead,
 * until the end of the loop pass, because epoll events already fetched may
 * still point at it.
 *
 * Threads: the loop thread only.
 */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/net.h"
#include "base/log.h"
#include "base/mem.h"
#include "sip/sip_int.h"

#define READ_CHUNK 16384
#define READS_PER_EVENT 4

static size_t out_max(const struct sip_server *s)
{
	return 8 * s->max_message + 65536;
}

enum xdms_err sip_tcp_listen(struct sip_server *s, const struct sockaddr_storage *addr, socklen_t len,
			     char **why)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	char text[SIP_ADDR_LEN];

	net_addr_format(addr, text, sizeof(text), NULL, 0);
	if (fd < 0) {
		*why = xasprintf("tcp socket: %s", strerror(errno));
		return XDMS_ERR_IO;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
		int e = errno;

		*why = xasprintf("cannot bind tcp %s: %s", text, strerror(e));
		close(fd);
		return e == EADDRINUSE ? XDMS_ERR_EXISTS : XDMS_ERR_IO;
	}
	if (listen(fd, 128) != 0) {
		*why = xasprintf("listen tcp %s: %s", text, strerror(errno));
		close(fd);
		return XDMS_ERR_IO;
	}
	s->listen.fd = fd;
	return XDMS_ERR_OK;
}

static struct sip_conn *conn_new(struct sip_server *s, int fd, const struct sockaddr_storage *peer,
				 socklen_t peer_len)
{
	struct sip_conn *c = xcalloc(1, sizeof(*c));
	int one = 1;

	c->w.kind = SIP_WATCH_CONN;
	c->w.fd = fd;
	c->id = s->next_conn_id++;
	c->peer = *peer;
	c->peer_len = peer_len;
	/* One message plus one read of the next. */
	buf_init(&c->in, s->max_message + READ_CHUNK);
	c->last_ms = sip_now_ms();
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	return c;
}

static void conn_close(struct sip_server *s, struct sip_conn *c, const char *why)
{
	char text[SIP_ADDR_LEN];

	if (c->is_dead)
		return;
	net_addr_format(&c->peer, text, sizeof(text), NULL, 0);
	log_debug("sip: tcp connection %llu with %s closed: %s", (unsigned long long)c->id, text, why);
	sip_watch_del(s, &c->w);
	close(c->w.fd);
	c->w.fd = -1;
	c->is_dead = true;
	s->conn_count--;
}

static void conn_free(struct sip_conn *c)
{
	buf_cleanup(&c->in);
	free(c->out);
	free(c);
}

static bool has_live_conn(struct sip_server *s, const struct sockaddr_storage *peer)
{
	for (struct sip_conn *c = s->conns; c; c = c->next)
		if (!c->is_dead && sip_addr_equal(&c->peer, peer))
			return true;
	return false;
}

void sip_tcp_reap(struct sip_server *s)
{
	struct sip_conn *c = s->conns;
	struct sockaddr_storage *lost = NULL;
	size_t lost_count = 0;

	while (c) {
		struct sip_conn *next = c->next;

		if (c->is_dead) {
			/* RFC 3261 §17.1.4: a request whose connection failed (refused,
			 * reset, timed out) gets no answer; its sender hears it now
			 * rather than at Timer F, unless another connection to the
			 * same peer may carry it. */
			if (!has_live_conn(s, &c->peer)) {
				lost = xrealloc(lost, (lost_count + 1) * sizeof(*lost));
				lost[lost_count++] = c->peer;
			}
			if (c->prev)
				c->prev->next = next;
			else
				s->conns = next;
			if (next)
				next->prev = c->prev;
			conn_free(c);
		}
		c = next;
	}
	/* After the list is settled: a sender may send again at once. */
	for (size_t i = 0; i < lost_count; i++)
		sip_clients_transport_failed(s, &lost[i]);
	free(lost);
}

void sip_tcp_close_all(struct sip_server *s)
{
	for (struct sip_conn *c = s->conns; c; c = c->next)
		conn_close(s, c, "server stopping");
	sip_tcp_reap(s);
}

void sip_tcp_idle_scan(struct sip_server *s, uint64_t now)
{
	for (struct sip_conn *c = s->conns; c; c = c->next) {
		if (c->is_dead)
			continue;
		if (c->is_connecting && now - c->last_ms > SIP_TCP_CONNECT_TIMEOUT_MS)
			conn_close(s, c, "connect timed out");
		else if (now - c->last_ms > SIP_TCP_IDLE_TIMEOUT_MS)
			conn_close(s, c, "idle");
	}
}

static uint32_t conn_events(const struct sip_conn *c)
{
	uint32_t ev = 0;

	if (!c->is_closing && !c->is_connecting)
		ev |= EPOLLIN;
	if (c->is_connecting || c->out_off < c->out_len)
		ev |= EPOLLOUT;
	return ev;
}

/* Writes what the socket takes; returns false when the connection died. */
static bool conn_flush(struct sip_server *s, struct sip_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(s, c, strerror(errno));
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->is_closing) {
			conn_close(s, c, "answered a framing error");
			return false;
		}
	}
	sip_watch_mod(s, &c->w, conn_events(c));
	return true;
}

static enum xdms_err conn_write(struct sip_server *s, struct sip_conn *c, const char *data, size_t len)
{
	size_t pending = c->out_len - c->out_off;

	if (c->is_dead)
		return XDMS_ERR_IO;
	if (pending + len > out_max(s)) {
		conn_close(s, c, "output queue full");
		return XDMS_ERR_TOOBIG;
	}
	if (c->out_off > 0 && pending > 0) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_off = 0;
		c->out_len = pending;
	}
	if (c->out_len + len > c->out_cap) {
		c->out_cap = c->out_len + len;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	c->last_ms = sip_now_ms();
	if (c->is_connecting)
		return XDMS_ERR_OK;
	return conn_flush(s, c) ? XDMS_ERR_OK : XDMS_ERR_IO;
}

void sip_tcp_acceptable(struct sip_server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int fd = accept4(s->listen.fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct sip_conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("sip: tcp accept: %s", strerror(errno));
			return;
		}
		if (s->conn_count >= SIP_TCP_MAX_CONNECTIONS) {
			log_warn("sip: %u tcp connections open; refusing another", s->conn_count);
			close(fd);
			continue;
		}
		c = conn_new(s, fd, &peer, peer_len);
		if (sip_watch_add(s, &c->w, EPOLLIN)) {
			conn_close(s, c, "epoll_ctl failed");
			continue;
		}
	}
}

/* The Content-Length of a header block: >= 0, -1 when absent, -2 when bad. */
static long content_length(const char *d, size_t len)
{
	const char *p = d, *end = d + len;
	long found = -1;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *colon;
		size_t nlen;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && p[0] != ' ' && p[0] != '\t') {
			nlen = (size_t)(colon - p);
			while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
				nlen--;
			if ((nlen == 14 && !strncasecmp(p, "Content-Length", 14)) ||
			    (nlen == 1 && (p[0] == 'l' || p[0] == 'L'))) {
				const char *v = colon + 1;
				long n = 0;
				bool has_digit = false;

				while (v < eol && (*v == ' ' || *v == '\t'))
					v++;
				while (v < eol && *v >= '0' && *v <= '9') {
					if (n > 100000000L)
						return -2;
					n = n * 10 + (*v - '0');
					has_digit = true;
					v++;
				}
				while (v < eol && (*v == ' ' || *v == '\t' || *v == '\r'))
					v++;
				if (!has_digit || v != eol || (found >= 0 && found != n))
					return -2;
				found = n;
			}
		}
		p = eol + 1;
	}
	return found;
}

/* Answers a framing error when possible, then closes after the flush. */
static void conn_refuse(struct sip_server *s, struct sip_conn *c, size_t header_len, int status,
			const char *reason)
{
	struct buf out;

	buf_init(&out, 16384);
	if (header_len > 0 && sip_raw_reply(s, c->in.data, header_len, status, reason, NULL, &out)) {
		c->is_closing = true;
		buf_reset(&c->in);
		(void)conn_write(s, c, out.data, out.len);
	} else {
		conn_close(s, c, reason);
	}
	buf_cleanup(&out);
}

static void conn_frame(struct sip_server *s, struct sip_conn *c)
{
	struct sip_peer from = { .transport = SIP_TRANSPORT_TCP };

	from.addr = c->peer;
	from.addr_len = c->peer_len;
	from.conn_id = c->id;
	while (!c->is_dead && !c->is_closing && c->in.len > 0) {
		char *d = c->in.data;
		size_t len = c->in.len, hlen, total;
		const char *end;
		long cl;

		if (d[0] == '\r' || d[0] == '\n') {
			/* RFC 5626 §3.5.1: CRLF CRLF is a ping, answered by CRLF;
			 * a lone CRLF before a start line is ignored (§7.5). */
			if (len >= 4 && !memcmp(d, "\r\n\r\n", 4)) {
				if (conn_write(s, c, "\r\n", 2))
					return;
				total = 4;
			} else if (len < 4 && strspn(d, "\r\n") == len) {
				return;
			} else {
				total = d[0] == '\r' && len >= 2 && d[1] == '\n' ? 2 : 1;
			}
		} else {
			end = memmem(d, len, "\r\n\r\n", 4);
			if (!end) {
				if (len > s->max_message)
					conn_refuse(s, c, 0, 513, "header block above sip.max_message");
				return;
			}
			hlen = (size_t)(end - d) + 4;
			if (hlen > s->max_message) {
				conn_refuse(s, c, hlen, 513, "Message Too Large");
				return;
			}
			cl = content_length(d, hlen);
			if (cl < 0) {
				conn_refuse(s, c, hlen, 400,
					    cl == -1 ? "Missing Content-Length" : "Bad Content-Length");
				return;
			}
			total = hlen + (size_t)cl;
			if (total > s->max_message) {
				conn_refuse(s, c, hlen, 513, "Message Too Large");
				return;
			}
			if (len < total)
				return;
			sip_inbound(s, d, total, &from);
			if (c->is_dead)
				return;
		}
		memmove(c->in.data, c->in.data + total, c->in.len - total);
		c->in.len -= total;
		c->in.data[c->in.len] = '\0';
	}
}

static void conn_read(struct sip_server *s, struct sip_conn *c)
{
	char chunk[READ_CHUNK];

	for (int i = 0; i < READS_PER_EVENT && !c->is_dead && !c->is_closing; i++) {
		ssize_t n = recv(c->w.fd, chunk, sizeof(chunk), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(s, c, strerror(errno));
			return;
		}
		if (n == 0) {
			conn_close(s, c, "closed by the peer");
			return;
		}
		c->last_ms = sip_now_ms();
		if (buf_append(&c->in, chunk, (size_t)n)) {
			/* Cannot happen while framing consumes each message, but the
			 * bound is what keeps memory in check. */
			conn_refuse(s, c, 0, 513, "input above sip.max_message");
			return;
		}
		conn_frame(s, c);
		if ((size_t)n < sizeof(chunk))
			return;
	}
}

void sip_tcp_event(struct sip_server *s, struct sip_conn *c, uint32_t events)
{
	if (c->is_dead)
		return;
	if (c->is_connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->w.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			conn_close(s, c, strerror(err));
			return;
		}
		c->is_connecting = false;
		c->last_ms = sip_now_ms();
		(void)conn_flush(s, c);
		return;
	}
	if (events & EPOLLIN)
		conn_read(s, c);
	if (!c->is_dead && (events & EPOLLOUT))
		(void)conn_flush(s, c);
	if (!c->is_dead && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		conn_close(s, c, "socket error");
}

static struct sip_conn *conn_connect(struct sip_server *s, const struct sip_peer *to)
{
	int fd;
	struct sip_conn *c;

	if (s->conn_count >= SIP_TCP_MAX_CONNECTIONS) {
		log_warn("sip: %u tcp connections open; not opening another", s->conn_count);
		return NULL;
	}
	fd = socket(to->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)&to->addr, to->addr_len) != 0 && errno != EINPROGRESS) {
		char text[SIP_ADDR_LEN];

		net_addr_format(&to->addr, text, sizeof(text), NULL, 0);
		log_info("sip: tcp connect to %s: %s", text, strerror(errno));
		close(fd);
		return NULL;
	}
	c = conn_new(s, fd, &to->addr, to->addr_len);
	c->is_connecting = true;
	if (sip_watch_add(s, &c->w, EPOLLOUT)) {
		conn_close(s, c, "epoll_ctl failed");
		return NULL;
	}
	return c;
}

static enum xdms_err tcp_send(struct sip_server *s, const struct sip_peer *to, const char *data, size_t len,
			      bool may_connect)
{
	struct sip_conn *c = NULL;

	for (struct sip_conn *x = s->conns; x && to->conn_id; x = x->next) {
		if (x->id == to->conn_id && !x->is_dead && !x->is_closing) {
			c = x;
			break;
		}
	}
	/* RFC 3261 §18.2.2 / RFC 5923-style reuse: any live connection with
	 * the same remote address and port will do. */
	for (struct sip_conn *x = s->conns; x && !c; x = x->next) {
		if (!x->is_dead && !x->is_closing && sip_addr_equal(&x->peer, &to->addr))
			c = x;
	}
	if (!c && may_connect)
		c = conn_connect(s, to);
	if (!c)
		return XDMS_ERR_IO;
	return conn_write(s, c, data, len);
}

const struct sip_transport_ops sip_transport_tcp_ops = {
	.name = "TCP",
	.send = tcp_send,
};
