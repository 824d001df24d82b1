/* SPDX-License-Identifier: MIT */
/*
 * The UDP transport: one non-blocking socket bound to sip.listen. Each
 * datagram is one message (RFC 3261 §18.3); datagrams above sip.max_message
 * are dropped before parsing. Sends never block: a full socket buffer drops
 * the datagram, and the transaction layer's retransmissions make up for it,
 * as for any loss on the wire.
 *
 * Threads: the loop thread only (the socket is opened by sip_server_start
 * before the loop exists).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/net.h"
#include "base/log.h"
#include "base/mem.h"
#include "sip/sip_int.h"

/* At most this many datagrams per readiness event, so TCP gets its turn. */
#define UDP_BATCH 64

enum xdms_err sip_udp_open(struct sip_server *s, const struct sockaddr_storage *addr, socklen_t len,
			   char **why)
{
	int fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	char text[SIP_ADDR_LEN];

	net_addr_format(addr, text, sizeof(text), NULL, 0);
	if (fd < 0) {
		*why = xasprintf("udp socket: %s", strerror(errno));
		return XDMS_ERR_IO;
	}
	if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
		*why = xasprintf("cannot bind udp %s: %s", text, strerror(errno));
		close(fd);
		return XDMS_ERR_IO;
	}
	/* A fan-out sends a thousand NOTIFYs at once and their 200s come back
	 * together: the kernel's default buffers drop most of them. FORCE lifts
	 * net.core.[rw]mem_max when we may (CAP_NET_ADMIN); else the plain
	 * option gives what the system allows. */
	if (s->udp_buffer) {
		int size = s->udp_buffer > INT_MAX / 2 ? INT_MAX / 2 : (int)s->udp_buffer;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	s->bound_len = sizeof(s->bound);
	if (getsockname(fd, (struct sockaddr *)&s->bound, &s->bound_len) != 0) {
		*why = xasprintf("getsockname: %s", strerror(errno));
		close(fd);
		return XDMS_ERR_IO;
	}
	s->udp.fd = fd;
	return XDMS_ERR_OK;
}

void sip_udp_readable(struct sip_server *s)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sip_peer from = { .transport = SIP_TRANSPORT_UDP };
		ssize_t n;

		from.addr_len = sizeof(from.addr);
		n = recvfrom(s->udp.fd, s->rbuf, SIP_UDP_DATAGRAM_MAX, MSG_TRUNC,
			     (struct sockaddr *)&from.addr, &from.addr_len);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("sip: udp recvfrom: %s", strerror(errno));
			return;
		}
		if ((size_t)n > s->max_message) {
			char text[SIP_ADDR_LEN];

			net_addr_format(&from.addr, text, sizeof(text), NULL, 0);
			log_info("sip: dropped a %zd-byte datagram from %s (sip.max_message is %zu)", n, text,
				 s->max_message);
			continue;
		}
		s->rbuf[n] = '\0';
		/* Keep-alives (RFC 5626 §3.5.1 uses CRLF pairs on streams; some
		 * UAs send them over UDP too) carry no message. */
		if (n <= 4 && strspn(s->rbuf, "\r\n") >= (size_t)n)
			continue;
		sip_inbound(s, s->rbuf, (size_t)n, &from);
	}
}

static enum xdms_err udp_send(struct sip_server *s, const struct sip_peer *to, const char *data, size_t len,
			      bool may_connect)
{
	ssize_t n = sendto(s->udp.fd, data, len, 0, (const struct sockaddr *)&to->addr, to->addr_len);

	if (n < 0) {
		char text[SIP_ADDR_LEN];

		net_addr_format(&to->addr, text, sizeof(text), NULL, 0);
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			log_debug("sip: udp socket full, dropped %zu bytes to %s", len, text);
			return XDMS_ERR_OK;
		}
		log_warn("sip: udp sendto %s: %s", text, strerror(errno));
		return XDMS_ERR_IO;
	}
	return XDMS_ERR_OK;
}

const struct sip_transport_ops sip_transport_udp_ops = {
	.name = "UDP",
	.send = udp_send,
};
