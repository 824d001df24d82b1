/* SPDX-License-Identifier: MIT */
/*
 * The server's TLS credentials, handed to libmicrohttpd through its
 * certificate callback instead of as PEM text, so that every handshake
 * passes through here and gets one hook.
 *
 * Why the hook. A TLS 1.3 client sends its Finished and then, at once, its
 * request. When the client leaves Nagle's algorithm on (many do), the request
 * waits until the Finished is acknowledged; the server, having just sent its
 * own flight, delays that acknowledgement (40 ms on Linux) and sends nothing
 * else, because GnuTLS sends its session tickets only with the first
 * response. Every new connection then costs 40 ms, and a server that serves
 * phones reconnecting over TLS serves a fraction of what it could. So when
 * the client's Finished has been received, the hook asks the kernel to
 * acknowledge now (TCP_QUICKACK), which releases the request. nginx does not
 * need this because OpenSSL sends its tickets right after the handshake, and
 * they carry the acknowledgement.
 *
 * The hook also gives the session our own socket reads and writes (the
 * system's calls, as GnuTLS's would be), which tell the daemon's loop that a
 * pass moved bytes (http_loop_note_work; loop.c says why it asks).
 *
 * Resumption. Phones reconnect often, and a full handshake costs both ends
 * an ECDHE, a signature and its verification. With http.tls_session_tickets
 * (the default) the server issues session tickets (RFC 8446 4.6.1, and RFC
 * 5077 for TLS 1.2), so a reconnecting client resumes: an ECDHE only, no
 * certificate, no signature. The tickets are sealed with a master key:
 * made at start-up and held only in memory, so that a restart makes every
 * ticket void and each client makes one full handshake; or read from
 * http.tls_ticket_key_file (made there on first use), so that tickets
 * outlive restarts and instances that share the file accept each other's.
 * GnuTLS derives the key that seals them from the master key, rotated every
 * ticket lifetime (GnuTLS's default, 6 hours). Hooks and transport are set as libmicrohttpd reports the
 * connection (http_tls_connection_started), before the first byte is read:
 * a resumed handshake never asks for the certificate, so the certificate
 * callback is too late for them.
 *
 * Read-ahead. GnuTLS reads a record in two calls, its 5-byte header and
 * then its body, and each was a recv() of its own. The pull function reads
 * what the socket has (up to TLS_AHEAD_MAX) in one call and keeps what
 * GnuTLS did not ask for yet, per socket, for its next call: one recv() per
 * request record instead of two. Bytes kept here are, to libmicrohttpd,
 * the same as bytes still in the socket: it reads until a read says
 * EAGAIN, and the pull function says EAGAIN only with nothing kept. What a
 * connection kept is freed when libmicrohttpd reports it closed, before it
 * closes the socket, so a later connection on the same descriptor starts
 * empty. The table is indexed by descriptor and sized at start-up from
 * RLIMIT_NOFILE; a descriptor beyond it is read without read-ahead.
 *
 * Threads: the credentials and the ticket key are made before the daemons
 * start and are only read afterwards, by the loop threads that run
 * handshakes. libmicrohttpd's certificate callback has no argument of its
 * own, so the credentials are reached through one process-wide pointer: one
 * HTTPS server per process.
 */
#include "config.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "http/http_int.h"

#define TLS_CHAIN_MAX 16 /* certificates in the chain file */
#define TLS_UNCORK_WAIT_MS 1000
#define TLS_AHEAD_MAX 4096  /* bytes one read-ahead asks the socket for */
#define TLS_SOCK_MAX 1048576u /* most descriptors with a struct sock_state */

struct http_tls {
	gnutls_pcert_st pcerts[TLS_CHAIN_MAX];
	unsigned pcert_count;
	gnutls_privkey_t key;
	gnutls_datum_t ticket_key; /* empty: no tickets */
};

static const struct http_tls *current;

/* Per socket: what its last read brought beyond what GnuTLS asked for (see
 * the file comment), and whether its cork is off for good (see "Corking").
 * Touched only by the thread that owns the connection. */
struct sock_state {
	unsigned char *buf; /* malloc'd, NULL when nothing is kept */
	size_t off, len;
	bool is_uncorked;
};
static struct sock_state *socks; /* indexed by descriptor */
static size_t sock_count;

/* After the peer's Finished: acknowledge it now (see the file comment). */
static int finished_hook(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
			 const gnutls_datum_t *msg)
{
	int fd = gnutls_transport_get_int(session), one = 1;

	(void)when;
	(void)msg;
	if (incoming && htype == GNUTLS_HANDSHAKE_FINISHED && fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	return 0;
}

static struct sock_state *sock_of(int fd)
{
	return fd >= 0 && (size_t)fd < sock_count ? &socks[fd] : NULL;
}

static void ahead_drop(struct sock_state *st)
{
	free(st->buf);
	st->buf = NULL;
	st->off = st->len = 0;
}

/* A connection starts or ends on @fd. */
static void sock_reset(int fd)
{
	struct sock_state *st = sock_of(fd);

	if (st) {
		ahead_drop(st);
		st->is_uncorked = false;
	}
}

/* GnuTLS's socket read, with read-ahead; noted as work when bytes came. */
static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	static _Thread_local unsigned char scratch[TLS_AHEAD_MAX];
	int fd = (int)(intptr_t)ptr;
	struct sock_state *a = sock_of(fd);
	ssize_t n;

	if (a && a->buf) {
		size_t take = a->len - a->off < len ? a->len - a->off : len;

		memcpy(data, a->buf + a->off, take);
		a->off += take;
		if (a->off == a->len)
			ahead_drop(a);
		http_loop_note_work();
		return (ssize_t)take;
	}
	if (!a || len >= sizeof(scratch)) {
		n = recv(fd, data, len, 0);
	} else {
		n = recv(fd, scratch, sizeof(scratch), 0);
		if (n > (ssize_t)len) {
			a->buf = xmalloc((size_t)n - len);
			memcpy(a->buf, scratch + len, (size_t)n - len);
			a->off = 0;
			a->len = (size_t)n - len;
			n = (ssize_t)len;
		}
		if (n > 0)
			memcpy(data, scratch, (size_t)n);
	}
	if (n > 0)
		http_loop_note_work();
	return n;
}

/* GnuTLS's socket write (records gathered in one call), noted likewise. */
static ssize_t vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iov_count)
{
	struct msghdr m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)iov; /* giovec_t has struct iovec's layout */
	m.msg_iovlen = (size_t)iov_count;
	n = sendmsg((int)(intptr_t)ptr, &m, MSG_NOSIGNAL);
	if (n > 0)
		http_loop_note_work();
	return n;
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	ssize_t n = send((int)(intptr_t)ptr, data, len, MSG_NOSIGNAL);

	if (n > 0)
		http_loop_note_work();
	return n;
}

/* gnutls_certificate_retrieve_function2, called once per full handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
		    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	const struct http_tls *t = current;

	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!t)
		return -1;
	/* GnuTLS only reads these; they live as long as the server. */
	*pcert = (gnutls_pcert_st *)t->pcerts;
	*pcert_length = t->pcert_count;
	*privkey = t->key;
	return 0;
}

static gnutls_session_t session_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

void http_tls_connection_started(struct MHD_Connection *conn)
{
	const struct http_tls *t = current;
	gnutls_session_t session = session_of(conn);
	int rc;

	if (!t || !session)
		return;
	sock_reset(gnutls_transport_get_int(session));
	gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST, finished_hook);
	/* The transport pointer stays the socket libmicrohttpd set. Setting the
	 * push function clears the vectored one, so it comes second. */
	gnutls_transport_set_pull_function(session, pull);
	gnutls_transport_set_push_function(session, push);
	gnutls_transport_set_vec_push_function(session, vec_push);
	/* GnuTLS copies the key into the session. Should it refuse, the client
	 * gets no ticket and makes full handshakes: slower, nothing worse. */
	if (t->ticket_key.size && (rc = gnutls_session_ticket_enable_server(session, &t->ticket_key)) < 0)
		log_warn("http: TLS session tickets: %s", gnutls_strerror(rc));
}

void http_tls_connection_closed(struct MHD_Connection *conn)
{
	gnutls_session_t session = session_of(conn);

	if (session)
		sock_reset(gnutls_transport_get_int(session));
}

/*
 * Corking. libmicrohttpd (0.9.75) writes an answer's head and its body with
 * two gnutls_record_send calls: two records, two writes, and twice the
 * wake-ups of the client. Corked, GnuTLS keeps both and uncorking sends them
 * as one record in one write. The answer is only corked when it cannot meet
 * a full socket: nothing waits in the socket's send queue and the answer is
 * small (HTTP_TLS_CORK_MAX), far below the smallest TCP send buffer, so the
 * uncork's write takes it all. Should it not (it would be a kernel's
 * surprise), the uncork waits for the socket, a bounded time.
 *
 * libmicrohttpd corks the socket itself (TCP_CORK) with the first answer it
 * sends on a connection it did not accept, whose cork state it does not
 * know; over TLS it then pushes each answer with TCP_NODELAY and never
 * uncorks. Its pushes come before the uncork's write, which would wait in
 * the corked socket for the kernel's cork timeout (200 ms). So the first
 * uncork on a connection takes the cork off (which pushes the write);
 * libmicrohttpd, believing the socket corked, never corks it again, and
 * later writes leave at once with no call of ours.
 */
bool http_tls_cork(struct MHD_Connection *conn)
{
	gnutls_session_t s = session_of(conn);
	int queued = -1;

	if (!s || ioctl(gnutls_transport_get_int(s), SIOCOUTQ, &queued) || queued)
		return false;
	gnutls_record_cork(s);
	return true;
}

void http_tls_uncork(struct MHD_Connection *conn)
{
	gnutls_session_t s = session_of(conn);
	struct sock_state *st;
	int rc, fd, waited = 0, one = 1, zero = 0;

	if (!s)
		return;
	fd = gnutls_transport_get_int(s);
	while ((rc = gnutls_record_uncork(s, 0)) == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (waited >= TLS_UNCORK_WAIT_MS) {
			log_warn("http: a TLS answer could not be sent within %d ms", TLS_UNCORK_WAIT_MS);
			return;
		}
		(void)poll(&p, 1, 100);
		waited += 100;
	}
	st = sock_of(fd);
	if (st && st->is_uncorked)
		return;
	if (st && !setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)))
		st->is_uncorked = true;
	else /* at least push this write */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void *http_tls_callback(void)
{
	return (void *)retrieve;
}

enum xdms_err http_tls_create(const char *cert_pem, const char *key_pem, bool tickets, const char *ticket_key_file,
			      struct http_tls **out, char **why)
{
	struct http_tls *t = xcalloc(1, sizeof(*t));
	gnutls_datum_t cert = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t key = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	int rc;

	*out = NULL;
	t->pcert_count = TLS_CHAIN_MAX;
	rc = gnutls_pcert_list_import_x509_raw(t->pcerts, &t->pcert_count, &cert, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || !t->pcert_count) {
		*why = xasprintf("http.tls_cert: %s", rc < 0 ? gnutls_strerror(rc) : "no certificate");
		t->pcert_count = 0;
		goto fail;
	}
	rc = gnutls_privkey_init(&t->key);
	if (rc >= 0)
		rc = gnutls_privkey_import_x509_raw(t->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		*why = xasprintf("http.tls_key: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (!socks) {
		struct rlimit rl;

		sock_count = getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur > TLS_SOCK_MAX ? TLS_SOCK_MAX
											: (size_t)rl.rlim_cur;
		socks = xcalloc(sock_count, sizeof(*socks));
	}
	/* GnuTLS makes a key of the size it wants; a key file overwrites it
	 * with its own bytes, which must be as many. */
	if (tickets && (rc = gnutls_session_ticket_key_generate(&t->ticket_key)) < 0) {
		*why = xasprintf("http.tls_session_tickets: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (tickets && ticket_key_file && ticket_key_file[0]) {
		char *kwhy = NULL;

		if (file_key_load(ticket_key_file, t->ticket_key.data, t->ticket_key.size, "TLS ticket key", &kwhy)) {
			*why = xasprintf("http.tls_ticket_key_file: %s", kwhy);
			free(kwhy);
			goto fail;
		}
	}
	current = t;
	*out = t;
	return XDMS_ERR_OK;
fail:
	http_tls_destroy(t);
	return XDMS_ERR_PARSE;
}

void http_tls_destroy(struct http_tls *t)
{
	if (!t)
		return;
	if (current == t)
		current = NULL;
	for (unsigned i = 0; i < t->pcert_count; i++)
		gnutls_pcert_deinit(&t->pcerts[i]);
	if (t->key)
		gnutls_privkey_deinit(t->key);
	if (t->ticket_key.data) {
		gnutls_memset(t->ticket_key.data, 0, t->ticket_key.size);
		gnutls_free(t->ticket_key.data);
	}
	/* The daemons are stopped: no connection is left to read ahead. */
	for (size_t i = 0; i < sock_count; i++)
		free(socks[i].buf);
	free(socks);
	socks = NULL;
	sock_count = 0;
	free(t);
}
