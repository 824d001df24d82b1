/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the public SIP API as the notifier will use it: a SUBSCRIBE
 * handler reads the request, answers 200 and sends a NOTIFY in the dialog
 * with sip_send_request; the test plays the subscriber on raw sockets over
 * UDP and TCP, and checks the NICT's retransmissions (Timer E), the result
 * callback, sip_server_call and timers. And as the subscriber uses it: a
 * request sent with sip_send_request_full, whose final response's headers
 * are read, and NOTIFYs routed to a handler.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "conf/conf.h"
#include "sip/sip.h"
#include "unit.h"

struct state {
	pthread_mutex_t lock;
	int notify_status; /* -1 until the NOTIFY's result comes */
	int calls, timers;
	char local_tag[64], event[32], from_uri[128], contact[128], rr1[128], body[64];
	long expires;
	struct sip_server *s;
};

static struct state st;

static void on_sent(void *arg, int status)
{
	pthread_mutex_lock(&st.lock);
	st.notify_status = status;
	pthread_mutex_unlock(&st.lock);
}

static void on_subscribe(void *arg, struct sip_request *req)
{
	static const struct sip_header expires[] = { { "Expires", "600" } };
	const struct sip_header nh[] = { { "Event", "xcap-diff" }, { "Subscription-State", "active;expires=600" } };
	const char *rr = sip_request_header(req, "Record-Route", 1);
	const char *routes[1] = { rr };
	struct sip_dialog_out d = { 0 };
	size_t blen;
	const char *body = sip_request_body(req, &blen);
	char from_tag[64], local_tag[64], call_id[128], from_uri[128], to_uri[128], target[128], source[64];

	pthread_mutex_lock(&st.lock);
	snprintf(st.local_tag, sizeof(st.local_tag), "%s", sip_request_local_tag(req));
	snprintf(st.event, sizeof(st.event), "%s", sip_request_event(req));
	snprintf(st.from_uri, sizeof(st.from_uri), "%s", sip_request_from_uri(req));
	snprintf(st.contact, sizeof(st.contact), "%s", sip_request_contact_uri(req));
	snprintf(st.rr1, sizeof(st.rr1), "%s", rr ? rr : "");
	snprintf(st.body, sizeof(st.body), "%.*s", (int)blen, body ? body : "");
	st.expires = sip_request_expires(req);
	pthread_mutex_unlock(&st.lock);

	snprintf(from_tag, sizeof(from_tag), "%s", sip_request_from_tag(req));
	snprintf(local_tag, sizeof(local_tag), "%s", sip_request_local_tag(req));
	snprintf(call_id, sizeof(call_id), "%s", sip_request_call_id(req));
	snprintf(from_uri, sizeof(from_uri), "%s", sip_request_from_uri(req));
	snprintf(to_uri, sizeof(to_uri), "%s", sip_request_to_uri(req));
	snprintf(target, sizeof(target), "%s", sip_request_contact_uri(req));
	snprintf(source, sizeof(source), "%s", sip_request_source(req));
	d.transport = sip_request_transport(req);
	ck_assert_int_eq(sip_request_respond(req, 200, NULL, expires, 1, NULL, NULL, 0), XDMS_ERR_OK);

	d.call_id = call_id;
	d.local_uri = to_uri;
	d.local_tag = local_tag;
	d.remote_uri = from_uri;
	d.remote_tag = from_tag;
	d.remote_target = target;
	d.route_set = rr ? routes : NULL; /* the reverse of Record-Route: here only the last one */
	d.route_count = 0;
	d.cseq = 1;
	d.destination = source;
	ck_assert_int_eq(sip_send_request(st.s, "NOTIFY", &d, nh, 2, "application/xcap-diff+xml", "<x/>", 4,
					  on_sent, NULL),
			 XDMS_ERR_OK);
}

static struct sip_server *start(struct conf *c)
{
	struct sip_server *s = NULL;
	char *why = NULL;

	conf_init(c);
	ck_assert_int_eq(conf_set(c, "sip.listen", "127.0.0.1:0", &why), XDMS_ERR_OK);
	ck_assert_int_eq(sip_server_start(c, on_subscribe, NULL, &s, &why), XDMS_ERR_OK);
	pthread_mutex_init(&st.lock, NULL);
	st.notify_status = -1;
	st.s = s;
	return s;
}

static int port_of(const char *addr)
{
	return atoi(strrchr(addr, ':') + 1);
}

static int status_now(void)
{
	int v;

	pthread_mutex_lock(&st.lock);
	v = st.notify_status;
	pthread_mutex_unlock(&st.lock);
	return v;
}

static const char *subscribe(const char *transport, int lport)
{
	static char msg[2048];

	snprintf(msg, sizeof(msg),
		 "SUBSCRIBE sip:alice@example.com SIP/2.0\r\n"
		 "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-sub-%s;rport\r\n"
		 "Max-Forwards: 70\r\n"
		 "Record-Route: <sip:p2.example.com;lr>, <sip:127.0.0.1:%d;lr>\r\n"
		 "From: <sip:alice@example.com>;tag=ue-1\r\n"
		 "To: <sip:alice@example.com>\r\n"
		 "Call-ID: sub-%s@127.0.0.1\r\n"
		 "CSeq: 7 SUBSCRIBE\r\n"
		 "Contact: <sip:alice@127.0.0.1:%d>\r\n"
		 "o: xcap-diff;diff-processing=xcap-patching\r\n"
		 "Expires: 3600\r\n"
		 "Content-Type: application/resource-lists+xml\r\n"
		 "Content-Length: 5\r\n\r\nhello",
		 transport, lport, transport, lport, transport, lport);
	return msg;
}

/* Receives one message into @buf (NUL-terminated); 0 on timeout. */
static ssize_t recv_msg(int fd, char *buf, size_t len, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, len - 1, 0);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return n;
}

/* Copies the @name line of @msg into a response line set. */
static void copy_line(const char *msg, const char *name, char *out, size_t len)
{
	const char *p = strstr(msg, name), *e = p ? strstr(p, "\r\n") : NULL;

	ck_assert_msg(p && e, "no %s in %s", name, msg);
	snprintf(out + strlen(out), len - strlen(out), "%.*s\r\n", (int)(e - p), p);
}

START_TEST(subscribe_answer_and_notify_over_udp)
{
	struct conf c;
	struct sip_server *s = start(&c);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET }, srv = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char buf[8192], ok[4096] = "SIP/2.0 200 OK\r\n", tagline[128];
	const char *msg;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.sin_port = htons((uint16_t)port_of(sip_server_udp_address(s)));
	msg = subscribe("UDP", ntohs(a.sin_port));
	ck_assert_int_ge(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&srv, sizeof(srv)), 1);

	ck_assert_int_gt(recv_msg(fd, buf, sizeof(buf), 3000), 0);
	ck_assert_msg(!strncmp(buf, "SIP/2.0 200 OK\r\n", 16), "%s", buf);
	snprintf(tagline, sizeof(tagline), "To: <sip:alice@example.com>;tag=%s\r\n", st.local_tag);
	ck_assert_msg(strstr(buf, tagline), "%s", buf);
	ck_assert_msg(strstr(buf, "Record-Route: <sip:p2.example.com;lr>\r\n"), "%s", buf);
	ck_assert_msg(strstr(buf, "Contact: <sip:127.0.0.1:"), "%s", buf);
	ck_assert_msg(strstr(buf, "Expires: 600\r\n"), "%s", buf);
	ck_assert_str_eq(st.event, "xcap-diff");
	ck_assert_str_eq(st.from_uri, "sip:alice@example.com");
	ck_assert_str_eq(st.body, "hello");
	ck_assert_int_eq(st.expires, 3600);
	ck_assert_msg(strstr(st.rr1, "127.0.0.1"), "%s", st.rr1);

	/* The NOTIFY, then its retransmission (Timer E, T1 = 500 ms). */
	ck_assert_int_gt(recv_msg(fd, buf, sizeof(buf), 3000), 0);
	ck_assert_msg(!strncmp(buf, "NOTIFY sip:alice@127.0.0.1:", 27), "%s", buf);
	ck_assert_msg(strstr(buf, "CSeq: 1 NOTIFY\r\n") && strstr(buf, "Event: xcap-diff\r\n") &&
			      strstr(buf, "Subscription-State: active;expires=600\r\n") &&
			      strstr(buf, "To: <sip:alice@example.com>;tag=ue-1\r\n") && strstr(buf, "\r\n\r\n<x/>"),
		      "%s", buf);
	snprintf(tagline, sizeof(tagline), "From: <sip:alice@example.com>;tag=%s\r\n", st.local_tag);
	ck_assert_msg(strstr(buf, tagline), "%s", buf);
	ck_assert_int_gt(recv_msg(fd, buf, sizeof(buf), 1500), 0);
	ck_assert_msg(!strncmp(buf, "NOTIFY ", 7), "expected a retransmitted NOTIFY: %s", buf);
	ck_assert_int_eq(status_now(), -1);

	copy_line(buf, "Via: ", ok, sizeof(ok));
	copy_line(buf, "From: ", ok, sizeof(ok));
	copy_line(buf, "To: ", ok, sizeof(ok));
	copy_line(buf, "Call-ID: ", ok, sizeof(ok));
	copy_line(buf, "CSeq: ", ok, sizeof(ok));
	strcat(ok, "Content-Length: 0\r\n\r\n");
	ck_assert_int_ge(sendto(fd, ok, strlen(ok), 0, (struct sockaddr *)&srv, sizeof(srv)), 1);
	for (int i = 0; i < 100 && status_now() == -1; i++)
		usleep(20000);
	ck_assert_int_eq(status_now(), 200);

	close(fd);
	sip_server_stop(s);
	conf_cleanup(&c);
}
END_TEST

START_TEST(notify_on_the_subscribers_tcp_connection)
{
	struct conf c;
	struct sip_server *s = start(&c);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in srv = { .sin_family = AF_INET }, a;
	socklen_t alen = sizeof(a);
	char buf[16384] = "";
	size_t got = 0;
	const char *msg;

	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.sin_port = htons((uint16_t)port_of(sip_server_tcp_address(s)));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&srv, sizeof(srv)), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	msg = subscribe("TCP", ntohs(a.sin_port));
	ck_assert_int_ge(send(fd, msg, strlen(msg), 0), 1);
	/* Both the 200 and the NOTIFY arrive on this connection. */
	for (int i = 0; i < 20 && !strstr(buf, "NOTIFY sip:"); i++) {
		got += (size_t)recv_msg(fd, buf + got, sizeof(buf) - got, 250);
	}
	ck_assert_msg(!strncmp(buf, "SIP/2.0 200 OK\r\n", 16), "%s", buf);
	ck_assert_msg(strstr(buf, "NOTIFY sip:alice@127.0.0.1:") && strstr(buf, "Via: SIP/2.0/TCP "), "%s", buf);
	close(fd);
	/* The unanswered NOTIFY is reported once: 503 when the loop sees the
	 * connection go first (no other connection could carry it), else 0 at
	 * the stop. */
	sip_server_stop(s);
	ck_assert_msg(status_now() == 0 || status_now() == 503, "status %d", status_now());
	conf_cleanup(&c);
}
END_TEST

static void count_call(void *arg)
{
	pthread_mutex_lock(&st.lock);
	st.calls++;
	pthread_mutex_unlock(&st.lock);
}

static void timer_fired(void *arg)
{
	st.timers++; /* loop thread only */
	if (arg)
		sip_timer_cancel(st.s, arg);
}

static void arm_timers(void *arg)
{
	struct sip_timer *late = sip_timer_start(st.s, 5000, timer_fired, NULL);

	sip_timer_start(st.s, 10, timer_fired, late); /* fires and cancels the late one */
	sip_timer_start(st.s, 20, timer_fired, NULL);
	sip_timer_start(st.s, 60000, timer_fired, NULL); /* freed at stop */
}

START_TEST(calls_and_timers_run_on_the_loop)
{
	struct conf c;
	struct sip_server *s = start(&c);

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sip_server_call(s, count_call, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(sip_server_call(s, arm_timers, NULL), XDMS_ERR_OK);
	usleep(300000);
	ck_assert_int_eq(sip_server_call(s, count_call, NULL), XDMS_ERR_OK);
	sip_server_stop(s);
	ck_assert_int_eq(st.calls, 11);
	ck_assert_int_eq(st.timers, 2);
	conf_cleanup(&c);
}
END_TEST

/*
 * Many timers, a third of them cancelled (some by other timers as they
 * fire): the rest fire once each, never early, in the order of their
 * deadlines and, for equal deadlines, of their creation.
 */
#define MANY_TIMERS 3000

struct many {
	struct sip_timer *t;
	uint64_t due_ms;  /* at least this */
	bool is_exact;    /* the clock did not move while it was started: due_ms is its deadline */
	unsigned idx;
	bool is_cancelled;
	int fired;
	uint64_t fired_ms;
	struct many *victim; /* cancelled by this one as it fires */
};

static struct many many[MANY_TIMERS];
static unsigned many_order[MANY_TIMERS], many_fired_count;

static void many_fire(void *arg)
{
	struct many *m = arg;

	m->fired++;
	m->fired_ms = monotonic_ms();
	many_order[many_fired_count++] = m->idx;
	if (m->victim && !m->victim->is_cancelled && !m->victim->fired) {
		m->victim->is_cancelled = true;
		sip_timer_cancel(st.s, m->victim->t);
	}
}

static void arm_many(void *arg)
{
	uint64_t x = 88172645463325252ull; /* xorshift64: a fixed, patternless sequence */

	for (unsigned i = 0; i < MANY_TIMERS; i++) {
		unsigned delay;
		uint64_t before;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		delay = (unsigned)(x % 150);
		many[i].idx = i;
		before = monotonic_ms();
		many[i].t = sip_timer_start(st.s, delay, many_fire, &many[i]);
		many[i].due_ms = before + delay;
		many[i].is_exact = monotonic_ms() == before;
		if (i && x % 7 == 0)
			many[i].victim = &many[x % i];
	}
	for (unsigned i = 0; i < MANY_TIMERS; i += 3) {
		if (!many[i].fired && !many[i].is_cancelled) {
			many[i].is_cancelled = true;
			sip_timer_cancel(st.s, many[i].t);
		}
	}
}

START_TEST(many_timers_fire_in_deadline_order)
{
	struct conf c;
	struct sip_server *s = start(&c);
	unsigned expected = 0;

	ck_assert_int_eq(sip_server_call(s, arm_many, NULL), XDMS_ERR_OK);
	usleep(600000);
	sip_server_stop(s);
	for (unsigned i = 0; i < MANY_TIMERS; i++) {
		ck_assert_int_eq(many[i].fired, many[i].is_cancelled ? 0 : 1);
		if (many[i].fired)
			ck_assert_uint_ge(many[i].fired_ms, many[i].due_ms);
		expected += !many[i].is_cancelled;
	}
	ck_assert_uint_eq(many_fired_count, expected);
	ck_assert_uint_gt(many_fired_count, MANY_TIMERS / 2);
	for (unsigned k = 1; k < many_fired_count; k++) {
		const struct many *a = &many[many_order[k - 1]], *b = &many[many_order[k]];

		if (!a->is_exact || !b->is_exact)
			continue;
		ck_assert_msg(a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->idx < b->idx),
			      "timer %u (due %llu) fired before timer %u (due %llu)", a->idx,
			      (unsigned long long)a->due_ms, b->idx, (unsigned long long)b->due_ms);
	}
	conf_cleanup(&c);
}
END_TEST

/* ---- as a user agent client: final responses and NOTIFY ---------------------------------- */

struct uac {
	pthread_mutex_t lock;
	int status;                 /* -1 until the outcome */
	bool has_resp;
	char to_tag[64], contact[128], www0[256], www1[256], rr0[64], rr1[64], min[16], retry[16];
	long expires;
	char dest[64];
	enum sip_transport transport;
	int notify_status;          /* what the NOTIFY handler answers */
	char notify_event[32], notify_state[64];
};

static struct uac uac = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void copy_or_empty(char *out, size_t len, const char *v)
{
	snprintf(out, len, "%s", v ? v : "");
}

static void on_final(void *arg, int status, const struct sip_response *resp)
{
	pthread_mutex_lock(&uac.lock);
	uac.status = status;
	uac.has_resp = resp != NULL;
	if (resp) {
		ck_assert_int_eq(sip_response_status(resp), status);
		copy_or_empty(uac.to_tag, sizeof(uac.to_tag), sip_response_to_tag(resp));
		copy_or_empty(uac.contact, sizeof(uac.contact), sip_response_contact_uri(resp));
		copy_or_empty(uac.www0, sizeof(uac.www0), sip_response_header(resp, "WWW-Authenticate", 0));
		copy_or_empty(uac.www1, sizeof(uac.www1), sip_response_header(resp, "www-authenticate", 1));
		copy_or_empty(uac.rr0, sizeof(uac.rr0), sip_response_header(resp, "Record-Route", 0));
		copy_or_empty(uac.rr1, sizeof(uac.rr1), sip_response_header(resp, "Record-Route", 1));
		copy_or_empty(uac.min, sizeof(uac.min), sip_response_header(resp, "Min-Expires", 0));
		copy_or_empty(uac.retry, sizeof(uac.retry), sip_response_header(resp, "Retry-After", 0));
		uac.expires = sip_response_expires(resp);
	}
	pthread_mutex_unlock(&uac.lock);
}

static void send_subscribe_full(void *arg)
{
	static const struct sip_header h[] = { { "Event", "xcap-diff" }, { "Expires", "60" } };
	struct sip_dialog_out d = {
		.call_id = "uac-1@test", .local_uri = "sip:carol@example.com", .local_tag = "c-1",
		.remote_uri = "sip:bob@example.com", .remote_tag = NULL, .remote_target = "sip:bob@example.com",
		.cseq = 1, .transport = uac.transport, .destination = uac.dest,
	};

	ck_assert_int_eq(sip_send_request_full(st.s, "SUBSCRIBE", &d, h, 2, NULL, NULL, 0, on_final, NULL),
			 XDMS_ERR_OK);
}

static void on_test_notify(void *arg, struct sip_request *req)
{
	pthread_mutex_lock(&uac.lock);
	copy_or_empty(uac.notify_event, sizeof(uac.notify_event), sip_request_event(req));
	copy_or_empty(uac.notify_state, sizeof(uac.notify_state), sip_request_header(req, "Subscription-State", 0));
	pthread_mutex_unlock(&uac.lock);
	sip_request_end_on_answer(req);
	ck_assert_int_eq(sip_request_respond(req, uac.notify_status, NULL, NULL, 0, NULL, NULL, 0), XDMS_ERR_OK);
}

static void set_notify_handler(void *arg)
{
	sip_server_on_notify(st.s, arg ? on_test_notify : NULL, NULL);
}

static int uac_status(void)
{
	int v;

	pthread_mutex_lock(&uac.lock);
	v = uac.status;
	pthread_mutex_unlock(&uac.lock);
	return v;
}

START_TEST(final_response_headers_reach_the_sender)
{
	struct conf c;
	struct sip_server *s = start(&c);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET }, from;
	socklen_t alen = sizeof(a), flen = sizeof(from);
	char buf[8192], resp[4096] = "SIP/2.0 401 Unauthorized\r\n";
	ssize_t n;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	uac.status = -1;
	uac.transport = SIP_TRANSPORT_UDP;
	snprintf(uac.dest, sizeof(uac.dest), "127.0.0.1:%d", ntohs(a.sin_port));
	ck_assert_int_eq(sip_server_call(s, send_subscribe_full, NULL), XDMS_ERR_OK);

	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(!strncmp(buf, "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n", 39), "%s", buf);
	ck_assert_msg(strstr(buf, "To: <sip:bob@example.com>\r\n") && strstr(buf, "Event: xcap-diff\r\n"), "%s", buf);
	copy_line(buf, "Via: ", resp, sizeof(resp));
	copy_line(buf, "From: ", resp, sizeof(resp));
	strcat(resp, "To: <sip:bob@example.com>;tag=b-9\r\n");
	copy_line(buf, "Call-ID: ", resp, sizeof(resp));
	copy_line(buf, "CSeq: ", resp, sizeof(resp));
	strcat(resp, "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\n"
		     "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n"
		     "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
		     "Contact: <sip:bob@192.0.2.7:5070>\r\nMin-Expires: 120\r\nRetry-After: 30\r\nExpires: 60\r\n"
		     "Content-Length: 0\r\n\r\n");
	ck_assert_int_ge(sendto(fd, resp, strlen(resp), 0, (struct sockaddr *)&from, flen), 1);
	for (int i = 0; i < 150 && uac_status() == -1; i++)
		usleep(20000);
	pthread_mutex_lock(&uac.lock);
	ck_assert_int_eq(uac.status, 401);
	ck_assert(uac.has_resp);
	ck_assert_str_eq(uac.to_tag, "b-9");
	ck_assert_str_eq(uac.contact, "sip:bob@192.0.2.7:5070");
	ck_assert_msg(strstr(uac.www0, "algorithm=SHA-256") && strstr(uac.www0, "nonce=\"n1\""), "%s", uac.www0);
	ck_assert_msg(strstr(uac.www1, "algorithm=MD5"), "%s", uac.www1);
	ck_assert_str_eq(uac.rr0, "<sip:p1.example.com;lr>");
	ck_assert_str_eq(uac.rr1, "<sip:p2.example.com;lr>");
	ck_assert_str_eq(uac.min, "120");
	ck_assert_str_eq(uac.retry, "30");
	ck_assert_int_eq(uac.expires, 60);
	pthread_mutex_unlock(&uac.lock);

	/* A TCP destination that refuses the connection: 503 and no response. */
	uac.status = -1;
	uac.transport = SIP_TRANSPORT_TCP;
	snprintf(uac.dest, sizeof(uac.dest), "127.0.0.1:1");
	ck_assert_int_eq(sip_server_call(s, send_subscribe_full, NULL), XDMS_ERR_OK);
	for (int i = 0; i < 300 && uac_status() == -1; i++)
		usleep(20000);
	ck_assert_int_eq(uac_status(), 503);
	ck_assert(!uac.has_resp);
	close(fd);
	sip_server_stop(s);
	conf_cleanup(&c);
}
END_TEST

/* Sends a NOTIFY from @fd and returns the status of the answer. */
static int notify_once(int fd, int port, const char *branch)
{
	struct sockaddr_in srv = { .sin_family = AF_INET };
	char msg[1024], buf[4096];

	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.sin_port = htons((uint16_t)port);
	snprintf(msg, sizeof(msg),
		 "NOTIFY sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=%s;rport\r\n"
		 "Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b-1\r\nTo: <sip:carol@example.com>;tag=c-1\r\n"
		 "Call-ID: n-1@test\r\nCSeq: 1 NOTIFY\r\nEvent: xcap-diff\r\n"
		 "Subscription-State: active;expires=60\r\nContent-Length: 0\r\n\r\n",
		 port, branch);
	ck_assert_int_ge(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&srv, sizeof(srv)), 1);
	ck_assert_int_gt(recv_msg(fd, buf, sizeof(buf), 3000), 0);
	ck_assert_msg(!strncmp(buf, "SIP/2.0 ", 8), "%s", buf);
	if (atoi(buf + 8) == 405)
		ck_assert_msg(strstr(buf, "Allow: OPTIONS, SUBSCRIBE\r\n"), "%s", buf);
	return atoi(buf + 8);
}

START_TEST(notify_goes_to_its_handler)
{
	struct conf c;
	struct sip_server *s = start(&c);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port = port_of(sip_server_udp_address(s));
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(notify_once(fd, port, "z9hG4bK-n1"), 405);
	uac.notify_status = 200;
	ck_assert_int_eq(sip_server_call(s, set_notify_handler, (void *)1), XDMS_ERR_OK);
	ck_assert_int_eq(notify_once(fd, port, "z9hG4bK-n2"), 200);
	pthread_mutex_lock(&uac.lock);
	ck_assert_str_eq(uac.notify_event, "xcap-diff");
	ck_assert_str_eq(uac.notify_state, "active;expires=60");
	uac.notify_event[0] = '\0';
	pthread_mutex_unlock(&uac.lock);
	/* Ended on its answer: the same request again reaches the handler again. */
	uac.notify_status = 202;
	ck_assert_int_eq(notify_once(fd, port, "z9hG4bK-n2"), 202);
	pthread_mutex_lock(&uac.lock);
	ck_assert_str_eq(uac.notify_event, "xcap-diff");
	pthread_mutex_unlock(&uac.lock);
	ck_assert_int_eq(sip_server_call(s, set_notify_handler, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(notify_once(fd, port, "z9hG4bK-n3"), 405);
	close(fd);
	sip_server_stop(s);
	conf_cleanup(&c);
}
END_TEST

START_TEST(bad_listen_address_is_refused)
{
	struct conf c;
	struct sip_server *s = NULL;
	char *why = NULL;

	conf_init(&c);
	ck_assert_int_eq(conf_set(&c, "sip.listen", "localhost:5060", &why), XDMS_ERR_OK);
	ck_assert_int_eq(sip_server_start(&c, NULL, NULL, &s, &why), XDMS_ERR_INVAL);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(why);
	free(why);
	conf_cleanup(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sip");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, subscribe_answer_and_notify_over_udp);
	tcase_add_test(tc, notify_on_the_subscribers_tcp_connection);
	tcase_add_test(tc, calls_and_timers_run_on_the_loop);
	tcase_add_test(tc, many_timers_fire_in_deadline_order);
	tcase_add_test(tc, bad_listen_address_is_refused);
	tcase_add_test(tc, final_response_headers_reach_the_sender);
	tcase_add_test(tc, notify_goes_to_its_handler);
	suite_add_tcase(s, tc);
	return unit_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
