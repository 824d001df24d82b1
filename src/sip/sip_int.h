/* SPDX-License-Identifier: MIT */
/*
 * Shared inside src/sip/ only. Everything here belongs to the loop thread
 * except the fields marked "under lock".
 */
#ifndef XDMS_SIP_INT_H
#define XDMS_SIP_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <osip2/osip.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "sip/sip.h"

#define SIP_TCP_MAX_CONNECTIONS 1024
#define SIP_TCP_IDLE_TIMEOUT_MS (15 * 60 * 1000)
#define SIP_TCP_CONNECT_TIMEOUT_MS 5000
#define SIP_MAX_CLIENT_TRANSACTIONS 65536
#define SIP_UDP_DATAGRAM_MAX 65535
#define SIP_ADDR_LEN (INET6_ADDRSTRLEN + 8)
#define SIP_SOURCE_BUCKETS 1024  /* server transactions in flight by source address */
#define SIP_TRIM_PEAK 256        /* a flood: this many server transactions at once */
#define SIP_RETRY_AFTER 5        /* seconds, in the 503 of a refused request */

/* The methods we accept; RFC 3261 §20.5 Allow lists what this UA supports.
 * NOTIFY is accepted once a handler takes it (the subscriber module). */
#define SIP_ALLOW "OPTIONS, SUBSCRIBE"
#define SIP_ALLOW_NOTIFY "OPTIONS, SUBSCRIBE, NOTIFY"
#define SIP_ALLOW_EVENTS "xcap-diff"
#define SIP_ACCEPT "application/resource-lists+xml"

/* A remote end: transport, address and, for TCP, the connection. */
struct sip_peer {
	enum sip_transport transport;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t conn_id; /* TCP: the connection (0 = any to @addr); UDP: 0 */
};

/* What an epoll event points at. */
enum sip_watch_kind { SIP_WATCH_WAKE, SIP_WATCH_UDP, SIP_WATCH_LISTEN, SIP_WATCH_CONN };
struct sip_watch {
	enum sip_watch_kind kind;
	int fd;
};

struct sip_conn {
	struct sip_watch w; /* first: epoll data points here */
	uint64_t id;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct buf in;      /* unframed bytes received */
	char *out;          /* bytes waiting to be written */
	size_t out_len, out_off, out_cap;
	bool is_connecting; /* outgoing connect() in progress */
	bool is_closing;    /* close once @out is flushed */
	bool is_dead;       /* closed; freed at the end of the loop pass */
	uint64_t last_ms;   /* last activity, monotonic */
	struct sip_conn *prev, *next;
};

struct sip_call {
	sip_run_fn fn;
	void *arg;
	struct sip_call *next;
};

struct sip_timer {
	uint64_t due_ms;
	uint64_t order; /* creation order: equal deadlines run oldest first */
	size_t slot;    /* index in the server's timer heap */
	sip_run_fn fn;
	void *arg;
};

/* Header values of a message as text, built on first use (message.c). */
struct sip_views {
	char **hnames, **hvalues;
	size_t hcount;
	bool has_headers;
};

/* A final response handed to a sip_response_fn: borrowed for the call. */
struct sip_response {
	osip_message_t *msg;
	struct sip_views views;
	char *contact_uri;
};

/* The context of a server transaction (NIST or IST); osip's your_instance.
 * Public as struct sip_request. */
struct sip_request {
	struct sip_server *s;
	osip_transaction_t *tr;
	osip_message_t *msg;     /* tr->orig_request once the FSM saw it; borrowed */
	struct sip_peer peer;
	char source[SIP_ADDR_LEN];
	char source_ip[INET6_ADDRSTRLEN];
	char local_tag[48];
	bool is_answered;
	bool is_handed_out;      /* given to the SUBSCRIBE handler */
	bool is_counted;         /* in s->server_count and its source's count */
	bool is_short;           /* ends once answered, whatever the status */
	/* Lazily built views (owned). */
	char *uri_text;
	char *call_id_text; /* "number@host", built on first use */
	char *from_uri, *to_uri, *contact_uri, *event, *content_type;
	struct sip_views views;
	struct sip_request *prev, *next; /* s->requests, while handed out */
};

/* A source address with server transactions in flight. */
struct sip_source {
	char ip[INET6_ADDRSTRLEN];
	unsigned count;
	struct sip_source *next;
};

/* The context of a client transaction (NICT). */
struct sip_client {
	struct sip_server *s;
	osip_transaction_t *tr;
	struct sip_peer peer;
	sip_sent_fn done;           /* one of these two */
	sip_response_fn on_response;
	void *arg;
	bool is_reported;
	struct sip_client *prev, *next;
	char branch[64];             /* of its Via: the key of s->client_index */
	struct sip_client *hnext;    /* in its client_index bucket */
};

#define SIP_CLIENT_BUCKETS 4096 /* client transactions by Via branch */

/* The client transaction a response's top Via branch names, or NULL (then
 * libosip2's own search decides). */
struct sip_client *sip_client_by_branch(struct sip_server *s, const char *branch);

struct sip_transport_ops {
	const char *name; /* as in Via: "UDP", "TCP" */
	/* Sends one message. A client send may open a connection. */
	enum xdms_err (*send)(struct sip_server *s, const struct sip_peer *to, const char *data,
			      size_t len, bool may_connect);
};
extern const struct sip_transport_ops sip_transport_udp_ops;
extern const struct sip_transport_ops sip_transport_tcp_ops;

struct sip_server {
	const struct conf *c;
	size_t max_message;
	size_t udp_buffer; /* SO_RCVBUF/SO_SNDBUF of the UDP socket (0 = the kernel's) */
	sip_subscribe_fn on_subscribe;
	void *on_subscribe_arg;
	sip_notify_fn on_notify;     /* NULL: NOTIFY is answered 405 */
	void *on_notify_arg;

	int epfd;
	struct sip_watch wake;   /* eventfd */
	struct sip_watch udp;
	struct sip_watch listen;
	struct sockaddr_storage bound;
	socklen_t bound_len;
	bool is_wildcard;
	char udp_address[SIP_ADDR_LEN];
	char tcp_address[SIP_ADDR_LEN];
	char server_header[64];

	pthread_t thread;
	bool has_thread;
	pthread_mutex_t lock;
	struct sip_call *calls_head, *calls_tail; /* under lock */
	bool is_stopping;                          /* under lock */

	osip_t *osip;
	osip_transaction_t **dead; /* killed, freed after the osip pass */
	size_t dead_count, dead_cap;
	/* Answered with a final non-2xx status: ended once that answer is
	 * sent, without waiting for Timer J (see transaction.c). */
	osip_transaction_t **ended;
	size_t ended_count, ended_cap;

	/* Server transactions alive, in total and per source address. The
	 * total and the refusals are read by /metrics on other threads. */
	atomic_uint server_count;
	unsigned server_peak;    /* the most alive since memory was last given back */
	uint64_t next_trim_ms;
	struct sip_source *sources[SIP_SOURCE_BUCKETS];
	atomic_uint_fast64_t refused_count; /* requests answered 503 by the caps */
	unsigned refused_since_warn;
	uint64_t last_refusal_warn_ms;

	struct sip_conn *conns;
	unsigned conn_count;
	uint64_t next_conn_id;
	uint64_t next_idle_scan_ms;

	/* Pending timers: a binary min-heap on (due_ms, order), so starting,
	 * cancelling and running one costs O(log n) with 100,000 subscriptions
	 * each holding an expiry timer. */
	struct sip_timer **timers;
	size_t timer_count, timer_cap;
	uint64_t timer_order;
	struct sip_request *requests;
	struct sip_client *clients;
	/* The same clients by branch: a fan-out has a thousand in flight, and
	 * libosip2 matches a response against each of them in turn. */
	struct sip_client *client_index[SIP_CLIENT_BUCKETS];
	unsigned client_count;

	char instance[12];        /* random, prefixes tags and branches */
	uint64_t counter;
	char *rbuf;               /* SIP_UDP_DATAGRAM_MAX + 1 */
};

/* loop.c */
uint64_t sip_now_ms(void);
enum xdms_err sip_watch_add(struct sip_server *s, struct sip_watch *w, uint32_t events);
void sip_watch_mod(struct sip_server *s, struct sip_watch *w, uint32_t events);
void sip_watch_del(struct sip_server *s, struct sip_watch *w);
/* Parses "IP:PORT" / "[IP6]:PORT" (no names). */
bool sip_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* The local IP text to put in Via/Contact when talking to @to. */
void sip_local_host(struct sip_server *s, const struct sockaddr_storage *to, char *out, size_t len);
/* A fresh token (for tags and branches), NUL-terminated in @out. */
void sip_token(struct sip_server *s, char *out, size_t len);

/* transport_udp.c */
enum xdms_err sip_udp_open(struct sip_server *s, const struct sockaddr_storage *addr, socklen_t len,
			   char **why);
void sip_udp_readable(struct sip_server *s);

/* transport_tcp.c */
enum xdms_err sip_tcp_listen(struct sip_server *s, const struct sockaddr_storage *addr, socklen_t len,
			     char **why);
void sip_tcp_acceptable(struct sip_server *s);
void sip_tcp_event(struct sip_server *s, struct sip_conn *conn, uint32_t events);
void sip_tcp_idle_scan(struct sip_server *s, uint64_t now);
void sip_tcp_reap(struct sip_server *s);
void sip_tcp_close_all(struct sip_server *s);

/* message.c */
/* One complete message from a transport (size already checked for TCP). */
void sip_inbound(struct sip_server *s, const char *data, size_t len, const struct sip_peer *from);
/*
 * A stateless answer built from the raw header lines of a request that
 * libosip2 could not use, or that is refused before it gets a transaction.
 * @extra is NULL or more header lines, each ending in CRLF. Returns false
 * when @data is not recognisably a request with Via, From, To, Call-ID and
 * CSeq.
 */
bool sip_raw_reply(struct sip_server *s, const char *data, size_t len, int status, const char *reason,
		   const char *extra, struct buf *out);
/* The dispatch of a new server transaction (osip message callback). */
void sip_dispatch(struct sip_server *s, struct sip_request *r);
void sip_request_free(struct sip_request *r);
/* Header @name's @index-th value as text (see sip_request_header). */
const char *sip_views_header(struct sip_views *v, osip_message_t *m, const char *name, size_t index);
void sip_views_cleanup(struct sip_views *v);
void sip_response_cleanup(struct sip_response *resp);
/* A delta-seconds value (Expires, Min-Expires, Retry-After): -1 when
 * absent, not a number or above 999999999. */
long sip_seconds_parse(const char *v);

/* auth.c: Digest as a client */
#define SIP_CHALLENGE_FIELD 256
struct sip_challenge {
	char realm[SIP_CHALLENGE_FIELD];
	char nonce[SIP_CHALLENGE_FIELD];
	char opaque[SIP_CHALLENGE_FIELD];
	enum digest_algo algo;
	bool has_opaque;
	bool has_qop;      /* a qop list was offered */
	bool has_qop_auth; /* ... and it holds "auth" */
	bool is_stale;
};
/* Parses one WWW-Authenticate/Proxy-Authenticate value. False when it is
 * not Digest, names an algorithm other than MD5 or SHA-256, offers only
 * qop=auth-int, lacks realm or nonce, or has a field longer than
 * SIP_CHALLENGE_FIELD - 1 bytes. */
bool sip_challenge_parse(const char *value, struct sip_challenge *out);
/* Appends the Authorization value answering @ch for @method on @uri (the
 * Request-URI as sent) to @out. INVAL for CR/LF in @username or @uri,
 * TOOBIG when @out's limit is reached. */
enum xdms_err sip_authorization_make(const struct sip_challenge *ch, const char *username, const char *password,
				     const char *method, const char *uri, uint32_t nc, const char *cnonce,
				     struct buf *out) XDMS_WUR;

/* A NOTIFY's Subscription-State: "active;expires=600",
 * "terminated;reason=timeout;retry-after=5" (auth.c). */
struct sip_sub_state {
	char state[32];
	char reason[32];   /* "" when absent or too long */
	long expires;      /* -1 when absent or not a number */
	long retry_after;  /* -1 when absent or not a number */
};
/* False when the state token is empty or longer than 31 bytes. */
bool sip_sub_state_parse(const char *v, struct sip_sub_state *out);

/* transaction.c */
enum xdms_err sip_osip_init(struct sip_server *s);
/* Runs libosip2's timers and queued events, then frees killed transactions. */
void sip_osip_run(struct sip_server *s);
/* Frees every transaction and reports pending client requests with status 0. */
void sip_osip_shutdown(struct sip_server *s);
/* The milliseconds until libosip2 next needs to run (capped by the caller). */
int sip_osip_timeout_ms(struct sip_server *s);
/* True when a new request from @ip may have a server transaction; else
 * *why names the cap (sip.max_transactions, sip.max_per_source). */
bool sip_server_admits(struct sip_server *s, const char *ip, const char **why);
/* Reports 503 to every client transaction over TCP to @peer that has no
 * outcome yet (its connection is gone); Timer F later finds it reported. */
void sip_clients_transport_failed(struct sip_server *s, const struct sockaddr_storage *peer);
/* Hands a new request to a fresh server transaction. Takes @evt. */
void sip_osip_new_server_transaction(struct sip_server *s, osip_event_t *evt, const struct sip_peer *from);
/* Queues a response on @r's transaction. Takes @resp. */
void sip_osip_send_response(struct sip_request *r, osip_message_t *resp);

#endif
