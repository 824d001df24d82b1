/* SPDX-License-Identifier: MIT */
/*
 * The xcap-diff notifier (notifier.h). Everything here runs on the SIP loop
 * thread except create/destroy/quiesce (main thread) and the store writer's
 * done callbacks, which only hand their result back to the loop.
 *
 * Data:
 *   struct sub      one subscription: its dialog, subscriber, resource list,
 *                   diff mode, lifetime, CSeq, and its place in the feed:
 *                   acked_seq (everything up to it was acknowledged by the
 *                   subscriber; persisted), queued_seq (everything up to it
 *                   is in pend[] or was sent), pend[] (changes to send).
 *   struct nchange  one change of the feed, shared by every subscription it
 *                   concerns, with its RFC 5261 patch computed once.
 *   indexes         document selector -> subscriptions (document and node
 *                   entries), collection prefix -> subscriptions, Call-ID ->
 *                   subscriptions (in-dialog SUBSCRIBE), identity ->
 *                   subscriptions (per-user cap), id -> subscription.
 *   vcache          the last document version seen for watched documents,
 *                   so the next change can be diffed (xcap-patching).
 *
 * Persistence: records are written through the store's writer (record
 * writes share the group commit). A new or refreshed subscription is durable
 * before its 200; progress (acked_seq, CSeq block) is flushed in batches
 * every FLUSH_MS and at shutdown.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "notify/diff.h"
#include "notify/notifier.h"
#include "xml/xml.h"

#define RL_NS "urn:ietf:params:xml:ns:resource-lists"
#define RL_MIME "application/resource-lists+xml"
#define FLUSH_MS 50
#define POLL_MS 1000
#define CSEQ_BLOCK 1000u
#define PUMP_MAX 20000      /* feed records read per turn of the loop */
#define NOTIFY_RETRIES 3
#define KICK_BATCH 64       /* NOTIFYs sent per turn of the loop in a fan-out */
#define ENTRY_MAX 2048      /* bytes of one resource selector */

enum mode { MODE_NO_PATCHING = 0, MODE_XCAP_PATCHING, MODE_AGGREGATE };
static const char *const mode_names[] = { "no-patching", "xcap-patching", "aggregate" };

enum entry_kind { ENTRY_DOC = 0, ENTRY_COLL, ENTRY_NODE };

struct entry {
	enum entry_kind kind;
	char *text;     /* as subscribed, relative to the XCAP root (persisted) */
	char *key;      /* store key (DOC, NODE) or key prefix ending in "/" (COLL) */
	char *sel;      /* DOC/NODE: the selector for reports, without the query */
	char *node_sel; /* NODE: decoded node selector */
	char *query;    /* NODE: raw namespace bindings, or NULL */
	const struct xcap_auid *auid;
	uint64_t last_hash; /* NODE: hash of the last report */
	bool has_reported;
};

struct nchange {
	unsigned refs;
	uint64_t seq;
	char *key;       /* store key */
	char *sel;       /* percent-encoded, relative to the XCAP root */
	char *prev_etag; /* NULL: created */
	char *new_etag;  /* NULL: deleted */
	char *ops;       /* RFC 5261 operations, or NULL */
	size_t ops_len;
	/* When versions between were never seen (several commits read at once):
	 * the operations from the version agg_from to this change's new one,
	 * for an aggregated chain that starts there. */
	char *agg_from, *agg_ops;
	size_t agg_ops_len;
	bool has_agg_patch;
	size_t new_len;  /* size of the new document when known (0 otherwise) */
	bool has_patch;  /* ops computed (NULL ops then: the body did not change) */
	const struct xcap_auid *auid;
	const char *prefix; /* the AUID's prefix in sel attributes */
};

struct sub {
	struct notifier *n;
	uint64_t id;
	/* dialog (RFC 3261 §12), as the notifier sends */
	char *call_id, *local_uri, *local_tag, *remote_uri, *remote_tag, *target, *dest;
	char **routes;
	size_t route_count;
	enum sip_transport transport;
	char *identity;
	bool is_privileged;
	enum mode mode;
	int64_t expires_ms;  /* wall clock */
	uint32_t cseq;       /* last used */
	uint32_t cseq_block; /* persisted: CSeqs up to it may be used */
	uint64_t acked_seq, queued_seq, inflight_seq, fs_seq;
	struct entry *entries;
	size_t entry_count;
	struct nchange **pend;
	size_t pend_count, pend_cap, inflight_count;
	/* full state, page by page */
	bool full_pending, is_full_acked, inflight_full;
	unsigned full_gen, inflight_full_gen; /* a restarted full state outdates the page in flight */
	size_t full_entry;
	char *full_after;
	bool inflight_full_done;
	/* state */
	size_t page_entry;  /* where the page in flight began, to resend it */
	char *page_after;
	bool in_flight, is_dead, is_transient, is_dirty, block_wait;
	uint64_t touch_gen;
	const char *terminating; /* reason of the final NOTIFY, or NULL */
	bool inflight_final;
	unsigned retries;
	uint64_t mark;
	struct sip_timer *expiry_timer, *window_timer, *retry_timer;
};

struct slot {
	char *key;
	void **items;
	size_t n, cap;
	void *val;
	struct slot *next;
};

struct smap {
	struct slot **b;
	size_t nb, count;
};

struct vent {
	char *key, *etag, *data;
	size_t len;
	struct vent *newer;
};

struct auid_prefix {
	const struct xcap_auid *auid;
	char prefix[24];
};

struct notifier {
	const struct conf *c;
	struct store *st;
	const struct xcap_registry *reg;
	struct sip_server *sip;
	struct digest_policy *digest;
	char *root_uri, *root_path;
	struct auid_prefix *prefixes;
	size_t prefix_count;

	struct smap by_doc, by_coll, by_call, by_user, by_id;
	size_t sub_count;
	uint64_t next_id;
	uint64_t feed_seq;
	atomic_bool wake_queued;
	pthread_mutex_t wake_lock; /* on_commit (writer thread) against the SIP server's end */
	bool can_wake;
	bool is_started;
	atomic_bool is_stopping; /* set on the loop, read by notifier_quiesce */
	struct sip_timer *flush_timer, *poll_timer;
	uint64_t *dirty;
	size_t dirty_count, dirty_cap;
	uint64_t *kicks; /* subscriptions with something to send, by id, in order */
	size_t kick_head, kick_count, kick_cap;
	struct sip_timer *kick_timer;
	uint64_t gen;
	uint64_t floor_rounds;

	struct smap vcache;
	struct vent *v_oldest, *v_newest;
	size_t v_bytes;

	atomic_uint_fast64_t inflight, persisting;
	atomic_uint_fast64_t n_sent, n_failed, n_subs;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* ---- string map -------------------------------------------------------------------------- */

static struct slot *smap_get(struct smap *m, const char *key, bool create)
{
	uint64_t h = hash_bytes(key, strlen(key));
	struct slot *s;

	if (m->nb) {
		for (s = m->b[h & (m->nb - 1)]; s; s = s->next)
			if (strcmp(s->key, key) == 0)
				return s;
	}
	if (!create)
		return NULL;
	if (m->count >= m->nb * 2) {
		size_t nb = m->nb ? m->nb * 4 : 256;
		struct slot **b = xcalloc(nb, sizeof(*b));

		for (size_t i = 0; i < m->nb; i++) {
			while (m->b[i]) {
				struct slot *x = m->b[i];
				uint64_t xh = hash_bytes(x->key, strlen(x->key));

				m->b[i] = x->next;
				x->next = b[xh & (nb - 1)];
				b[xh & (nb - 1)] = x;
			}
		}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	s = xcalloc(1, sizeof(*s));
	s->key = xstrdup(key);
	s->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = s;
	m->count++;
	return s;
}

static void smap_drop(struct smap *m, struct slot *dead)
{
	uint64_t h = hash_bytes(dead->key, strlen(dead->key));

	for (struct slot **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == dead) {
			*pp = dead->next;
			m->count--;
			free(dead->key);
			free(dead->items);
			free(dead);
			return;
		}
	}
}

static void smap_add(struct smap *m, const char *key, void *item)
{
	struct slot *s = smap_get(m, key, true);

	for (size_t i = 0; i < s->n; i++)
		if (s->items[i] == item)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
	}
	s->items[s->n++] = item;
}

static void smap_remove(struct smap *m, const char *key, void *item)
{
	struct slot *s = smap_get(m, key, false);

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->items[i] == item) {
			s->items[i] = s->items[--s->n];
			break;
		}
	}
	if (!s->n && !s->val)
		smap_drop(m, s);
}

static void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct slot *x = m->b[i];

			m->b[i] = x->next;
			free(x->key);
			free(x->items);
			free(x);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

static void id_key(uint64_t id, char *out)
{
	snprintf(out, 17, "%016" PRIx64, id);
}

/* ---- selectors ----------------------------------------------------------------------------- */

/* A store key as a URI path relative to the XCAP root: each byte that is not
 * a pchar (RFC 3986) is percent-encoded; "/" separates segments. */
static char *key_to_sel(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b, 3 * strlen(key) + 1);
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		char one[3] = { (char)*p, 0, 0 };
		size_t len = 1;

		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("-._~!$&'()*+,;=:@/", *p))) {
			one[0] = '%';
			one[1] = hex[*p >> 4];
			one[2] = hex[*p & 15];
			len = 3;
		}
		if (buf_append(&b, one, len))
			break; /* unbounded buffer: cannot happen */
	}
	return buf_take(&b, NULL);
}

static const char *auid_prefix(const struct notifier *n, const struct xcap_auid *a)
{
	for (size_t i = 0; i < n->prefix_count; i++)
		if (n->prefixes[i].auid == a)
			return n->prefixes[i].prefix;
	return "d";
}

static const struct xcap_auid *auid_of_key(const struct notifier *n, const char *key)
{
	const char *slash = strchr(key, '/');
	char name[256];

	if (!slash || (size_t)(slash - key) >= sizeof(name))
		return NULL;
	memcpy(name, key, (size_t)(slash - key));
	name[slash - key] = '\0';
	return xcap_registry_find(n->reg, name);
}

static void entry_cleanup(struct entry *e)
{
	free(e->text);
	free(e->key);
	free(e->sel);
	free(e->node_sel);
	free(e->query);
	memset(e, 0, sizeof(*e));
}

/*
 * Reads one resource selector (relative to the XCAP root, or an absolute
 * http(s) URI below it) into @e and checks that @identity may watch it.
 * Returns 0, or the SIP status to refuse with (*why says why).
 */
static int entry_parse(const struct notifier *n, const char *text, const char *identity, bool is_privileged,
		       struct entry *e, const char **why)
{
	const char *rel = text, *q;
	char *path = NULL, *query = NULL;
	size_t rp = strlen(n->root_path);
	struct xcap_uri uri = { 0 };
	enum xdms_err err;
	int status = 400;

	memset(e, 0, sizeof(*e));
	if (strlen(text) > ENTRY_MAX || strpbrk(text, "\r\n\t ")) {
		*why = "malformed resource selector";
		return 400;
	}
	if (strncmp(rel, "http://", 7) == 0 || strncmp(rel, "https://", 8) == 0) {
		rel = strchr(strstr(rel, "//") + 2, '/');
		if (!rel) {
			*why = "resource selector outside the XCAP root";
			return 403;
		}
	}
	if (*rel == '/') {
		if (rp && strncmp(rel, n->root_path, rp) == 0 && rel[rp] == '/')
			rel += rp;
		else if (rp) {
			*why = "resource selector outside the XCAP root";
			return 403;
		}
		rel++;
	}
	q = strchr(rel, '?');
	path = xasprintf("%s/%.*s", n->root_path, (int)(q ? (size_t)(q - rel) : strlen(rel)), rel);
	query = q ? xstrdup(q + 1) : NULL;
	e->text = xstrdup(rel);
	if (!q && rel[0] && rel[strlen(rel) - 1] == '/') {
		/* A collection: AUID/, AUID/users/, AUID/users/XUI/..., AUID/global/... */
		struct buf b;
		const char *p = rel;

		e->kind = ENTRY_COLL;
		buf_init(&b, STORE_SELECTOR_MAX);
		while (*p) {
			const char *slash = strchr(p, '/');
			char *seg = NULL;

			if (slash == p || xcap_percent_decode(p, (size_t)(slash - p), &seg) || strchr(seg, '/') ||
			    buf_append_str(&b, seg) || buf_append(&b, "/", 1)) {
				free(seg);
				buf_cleanup(&b);
				*why = "malformed collection selector";
				goto out;
			}
			free(seg);
			p = slash + 1;
		}
		e->key = buf_take(&b, NULL);
		e->auid = auid_of_key(n, e->key);
		if (!e->auid) {
			*why = "unknown application usage";
			goto out;
		}
	} else {
		err = xcap_uri_parse(n->root_path, path, query, &uri);
		if (err) {
			*why = err == XDMS_ERR_TOOBIG ? "resource selector too long" : "malformed resource selector";
			goto out;
		}
		e->auid = xcap_registry_find(n->reg, uri.auid);
		if (!e->auid) {
			*why = "unknown application usage";
			goto out;
		}
		e->key = xstrdup(uri.doc_selector);
		if (uri.node_selector) {
			struct xcap_selector *sel = NULL;
			const char *swhy = NULL;
			const char *tilde = strstr(rel, "/~~/");

			if (xcap_selector_parse(uri.node_selector, uri.query, e->auid->ns, &sel, &swhy)) {
				*why = "malformed node selector";
				goto out;
			}
			xcap_selector_free(sel);
			e->kind = ENTRY_NODE;
			e->node_sel = xstrdup(uri.node_selector);
			e->query = uri.query ? xstrdup(uri.query) : NULL;
			e->sel = tilde ? xstrndup(rel, (size_t)((q ? q : rel + strlen(rel)) - rel)) : xstrdup(rel);
		} else {
			e->kind = ENTRY_DOC;
			e->sel = key_to_sel(e->key);
		}
	}
	/* Who may watch what: a user only below users/<own XUI>/ (SPEC §2.3). */
	if (!is_privileged) {
		const char *after_auid = strchr(e->key, '/');
		size_t il = strlen(identity);

		if (!after_auid || strncmp(after_auid + 1, "users/", 6) != 0 ||
		    strncmp(after_auid + 7, identity, il) != 0 || after_auid[7 + il] != '/') {
			*why = "a user may only watch its own documents";
			status = 403;
			goto out;
		}
	}
	status = 0;
out:
	xcap_uri_cleanup(&uri);
	free(path);
	free(query);
	if (status)
		entry_cleanup(e);
	return status;
}

/* Reads the <entry uri> values of a resource-lists document. 0 or a status. */
static int entries_from_body(const struct notifier *n, const char *body, size_t len, const char *identity,
			     bool is_privileged, struct entry **out, size_t *count, const char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_scan *scan = NULL;
	struct xml_issue issue;
	struct entry *es = NULL;
	size_t ne = 0;
	int status = 400;

	*why = "malformed resource list";
	if (xml_parse(body, len, 32, &doc, &issue) || xml_scan_build(body, len, &scan))
		goto out;
	if (!scan->elems[0].ns || strcmp(scan->elems[0].ns, RL_NS) != 0) {
		*why = "body is not a resource-lists document";
		goto out;
	}
	for (uint32_t i = 0; i < scan->elem_count; i++) {
		const struct xml_scan_elem *el = &scan->elems[i];
		size_t ll;
		const char *local = xml_scan_elem_local(scan, i, &ll);
		uint32_t a;
		struct buf v;

		if (!el->ns || strcmp(el->ns, RL_NS) != 0 || ll != 5 || memcmp(local, "entry", 5) != 0)
			continue;
		a = xml_scan_attr_find(scan, i, "", "uri", 3);
		if (a == XML_SCAN_NONE) {
			*why = "entry without uri";
			goto out;
		}
		if (ne >= n->c->notify_max_entries) {
			*why = "too many resource selectors";
			status = 413;
			goto out;
		}
		buf_init(&v, ENTRY_MAX + 1);
		if (xml_attvalue_decode(body + scan->attrs[a].value_off, scan->attrs[a].value_len, &v) ||
		    buf_append(&v, "", 1)) {
			buf_cleanup(&v);
			*why = "malformed entry uri";
			goto out;
		}
		es = xrealloc(es, (ne + 1) * sizeof(*es));
		status = entry_parse(n, v.data, identity, is_privileged, &es[ne], why);
		buf_cleanup(&v);
		if (status)
			goto out;
		ne++;
		status = 400;
	}
	if (!ne) {
		*why = "empty resource list";
		goto out;
	}
	status = 0;
out:
	if (status) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		es = NULL;
		ne = 0;
	}
	xml_scan_free(scan);
	xml_doc_free(doc);
	*out = es;
	*count = ne;
	return status;
}

/* ---- indexes ------------------------------------------------------------------------------ */

static void sub_index(struct notifier *n, struct sub *s, bool add)
{
	for (size_t i = 0; i < s->entry_count; i++) {
		struct smap *m = s->entries[i].kind == ENTRY_COLL ? &n->by_coll : &n->by_doc;

		if (add)
			smap_add(m, s->entries[i].key, s);
		else
			smap_remove(m, s->entries[i].key, s);
	}
}

static struct sub *sub_find_dialog(struct notifier *n, const char *call_id, const char *remote_tag,
				   const char *local_tag)
{
	struct slot *sl = smap_get(&n->by_call, call_id, false);

	for (size_t i = 0; sl && i < sl->n; i++) {
		struct sub *s = sl->items[i];

		if (!s->is_dead && s->remote_tag && remote_tag && strcmp(s->remote_tag, remote_tag) == 0 &&
		    strcmp(s->local_tag, local_tag) == 0)
			return s;
	}
	return NULL;
}

static size_t user_sub_count(struct notifier *n, const char *identity)
{
	struct slot *sl = smap_get(&n->by_user, identity, false);

	return sl ? sl->n : 0;
}

static void nchange_put(struct nchange *c)
{
	if (!c || --c->refs)
		return;
	free(c->key);
	free(c->sel);
	free(c->prev_etag);
	free(c->new_etag);
	free(c->ops);
	free(c->agg_from);
	free(c->agg_ops);
	free(c);
}

static void sub_free(struct sub *s)
{
	free(s->call_id);
	free(s->local_uri);
	free(s->local_tag);
	free(s->remote_uri);
	free(s->remote_tag);
	free(s->target);
	free(s->dest);
	for (size_t i = 0; i < s->route_count; i++)
		free(s->routes[i]);
	free(s->routes);
	free(s->identity);
	for (size_t i = 0; i < s->entry_count; i++)
		entry_cleanup(&s->entries[i]);
	free(s->entries);
	for (size_t i = 0; i < s->pend_count; i++)
		nchange_put(s->pend[i]);
	free(s->pend);
	free(s->full_after);
	free(s->page_after);
	free(s);
}

static void sub_register(struct notifier *n, struct sub *s)
{
	char k[17];

	id_key(s->id, k);
	smap_add(&n->by_id, k, s);
	smap_add(&n->by_call, s->call_id, s);
	smap_add(&n->by_user, s->identity, s);
	sub_index(n, s, true);
	n->sub_count++;
	atomic_store(&n->n_subs, n->sub_count);
}

static void sub_unregister(struct notifier *n, struct sub *s)
{
	char k[17];

	id_key(s->id, k);
	smap_remove(&n->by_id, k, s);
	smap_remove(&n->by_call, s->call_id, s);
	smap_remove(&n->by_user, s->identity, s);
	sub_index(n, s, false);
	n->sub_count--;
	atomic_store(&n->n_subs, n->sub_count);
}

/* ---- records ------------------------------------------------------------------------------- */

static char *sub_serialize(const struct sub *s, size_t *len)
{
	struct buf b;
	enum xdms_err err;

	buf_init(&b, (size_t)1 << 24);
	err = buf_printf(&b, "v 1\ncall %s\nluri %s\nltag %s\nruri %s\nrtag %s\ntarget %s\n", s->call_id,
			 s->local_uri, s->local_tag, s->remote_uri, s->remote_tag ? s->remote_tag : "",
			 s->target);
	for (size_t i = 0; !err && i < s->route_count; i++)
		err = buf_printf(&b, "route %s\n", s->routes[i]);
	if (!err)
		err = buf_printf(&b,
				 "tp %s\ndest %s\nwho %s\npriv %d\nmode %d\nexp %" PRId64 "\ncseq %u\n"
				 "acked %" PRIu64 "\nfull %d\n",
				 s->transport == SIP_TRANSPORT_TCP ? "tcp" : "udp", s->dest ? s->dest : "",
				 s->identity, s->is_privileged, (int)s->mode, s->expires_ms, s->cseq_block,
				 s->acked_seq, s->is_full_acked);
	for (size_t i = 0; !err && i < s->entry_count; i++)
		err = buf_printf(&b, "e %s\n", s->entries[i].text);
	return buf_take(&b, len);
}

static struct sub *sub_deserialize(const struct notifier *n, uint64_t id, const char *rec, size_t len,
				   const char **why)
{
	struct sub *s = xcalloc(1, sizeof(*s));
	char *copy = xstrndup(rec, len), *line, *save = NULL;
	bool ok = true;

	s->id = id;
	for (line = strtok_r(copy, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');

		if (!v) {
			ok = false;
			break;
		}
		*v++ = '\0';
		if (!strcmp(line, "v"))
			ok = !strcmp(v, "1");
		else if (!strcmp(line, "call"))
			s->call_id = xstrdup(v);
		else if (!strcmp(line, "luri"))
			s->local_uri = xstrdup(v);
		else if (!strcmp(line, "ltag"))
			s->local_tag = xstrdup(v);
		else if (!strcmp(line, "ruri"))
			s->remote_uri = xstrdup(v);
		else if (!strcmp(line, "rtag"))
			s->remote_tag = dup_or_null(v);
		else if (!strcmp(line, "target"))
			s->target = xstrdup(v);
		else if (!strcmp(line, "route")) {
			s->routes = xrealloc(s->routes, (s->route_count + 1) * sizeof(*s->routes));
			s->routes[s->route_count++] = xstrdup(v);
		} else if (!strcmp(line, "tp"))
			s->transport = !strcmp(v, "tcp") ? SIP_TRANSPORT_TCP : SIP_TRANSPORT_UDP;
		else if (!strcmp(line, "dest"))
			s->dest = dup_or_null(v);
		else if (!strcmp(line, "who"))
			s->identity = xstrdup(v);
		else if (!strcmp(line, "priv"))
			s->is_privileged = atoi(v) != 0;
		else if (!strcmp(line, "mode"))
			s->mode = (enum mode)(atoi(v) % 3);
		else if (!strcmp(line, "exp"))
			s->expires_ms = strtoll(v, NULL, 10);
		else if (!strcmp(line, "cseq"))
			s->cseq_block = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "acked"))
			s->acked_seq = strtoull(v, NULL, 10);
		else if (!strcmp(line, "full"))
			s->is_full_acked = atoi(v) != 0;
		else if (!strcmp(line, "e")) {
			const char *ewhy;

			s->entries = xrealloc(s->entries, (s->entry_count + 1) * sizeof(*s->entries));
			if (entry_parse(n, v, s->identity ? s->identity : "", true, &s->entries[s->entry_count],
					&ewhy)) {
				*why = ewhy;
				ok = false;
			} else {
				s->entry_count++;
			}
		}
	}
	free(copy);
	if (ok && (!s->call_id || !s->local_uri || !s->local_tag || !s->remote_uri || !s->target ||
		   !s->identity || !s->entry_count)) {
		*why = "incomplete subscription record";
		ok = false;
	}
	if (!ok) {
		if (!*why)
			*why = "malformed subscription record";
		sub_free(s);
		return NULL;
	}
	return s;
}

/* One batch of record writes through the store's writer. */
struct pop {
	uint64_t id;
	char *rec; /* NULL: delete */
	size_t len;
};

struct pbatch {
	struct store_write w;
	struct notifier *n;
	struct pop *ops;
	size_t n_ops;
	/* what to do on the loop once durable */
	void (*then)(struct notifier *n, struct pbatch *b);
	struct sip_request *req;
	uint64_t sub_id;
	unsigned granted;
	uint32_t old_cseq_block; /* a CSeq block write: what is durable if it fails */
	struct refresh *refresh; /* a refresh: the state it brings, applied once durable */
};

/* What a refresh (a re-SUBSCRIBE in the dialog) changes. SUBSCRIBE is a
 * target refresh request (RFC 6665 §4.1.2.1): the subscriber may have moved. */
struct refresh {
	struct entry *es; /* NULL: the list stays */
	size_t ne;
	int64_t expires_ms;
	enum mode mode;
	char *target, *dest;
	enum sip_transport transport;
};

static void refresh_free(struct refresh *rf)
{
	if (!rf)
		return;
	for (size_t i = 0; i < rf->ne; i++)
		entry_cleanup(&rf->es[i]);
	free(rf->es);
	free(rf->target);
	free(rf->dest);
	free(rf);
}

static enum xdms_err pbatch_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
				 const struct store_doc *nd)
{
	struct pbatch *b = w->arg;
	enum xdms_err err;

	(void)o;
	(void)nd;
	for (size_t i = 0; i < b->n_ops; i++) {
		if (b->ops[i].rec)
			err = store_sub_put(txn, b->ops[i].id, b->ops[i].rec, b->ops[i].len);
		else
			err = store_sub_del(txn, b->ops[i].id);
		if (err && err != XDMS_ERR_NOTFOUND)
			return err;
	}
	return XDMS_ERR_OK;
}

static void refresh_free(struct refresh *rf);

static void pbatch_free(struct pbatch *b)
{
	refresh_free(b->refresh);
	for (size_t i = 0; i < b->n_ops; i++)
		free(b->ops[i].rec);
	free(b->ops);
	free(b);
}

static void pbatch_finish(void *arg)
{
	struct pbatch *b = arg;
	struct notifier *n = b->n;

	if (b->w.result)
		log_error("notify: subscription store write failed: %s", xdms_err_str(b->w.result));
	if (b->then)
		b->then(n, b);
	atomic_fetch_sub(&n->persisting, 1);
	pbatch_free(b);
}

static void pbatch_done(struct store_write *w)
{
	struct pbatch *b = w->arg;
	struct notifier *n = b->n;
	bool is_handed = false;

	/* Under wake_lock: once quiesce has closed it, the SIP server may be gone. */
	pthread_mutex_lock(&n->wake_lock);
	if (n->can_wake)
		is_handed = !sip_server_call(n->sip, pbatch_finish, b);
	if (!is_handed) {
		/* Stopping: the write is done; a request waiting for it is dropped
		 * with the SIP server. */
		atomic_fetch_sub(&n->persisting, 1);
		pbatch_free(b);
	}
	pthread_mutex_unlock(&n->wake_lock);
}

static struct pbatch *pbatch_new(struct notifier *n)
{
	struct pbatch *b = xcalloc(1, sizeof(*b));

	b->n = n;
	b->w.hook = pbatch_hook;
	b->w.arg = b;
	b->w.done = pbatch_done;
	return b;
}

static void pbatch_add(struct pbatch *b, const struct sub *s, bool is_delete)
{
	b->ops = xrealloc(b->ops, (b->n_ops + 1) * sizeof(*b->ops));
	b->ops[b->n_ops].id = s->id;
	b->ops[b->n_ops].rec = is_delete ? NULL : sub_serialize(s, &b->ops[b->n_ops].len);
	if (is_delete)
		b->ops[b->n_ops].len = 0;
	b->n_ops++;
}

/* Queues @b; on failure to queue runs nothing and returns the error. */
static enum xdms_err pbatch_submit(struct notifier *n, struct pbatch *b)
{
	enum xdms_err err;

	atomic_fetch_add(&n->persisting, 1);
	err = store_write_submit(n->st, &b->w);
	if (err) {
		atomic_fetch_sub(&n->persisting, 1);
		pbatch_free(b);
	}
	return err;
}

/* ---- secrets ---------------------------------------------------------------------------------- */

/* True when @text (operations, an element, or a node selector) names the
 * element @secret anywhere: as a tag ("<credentials", "<f:credentials") or
 * as a step of a path ("/credentials", ":credentials"). What touches it must
 * not go out in a NOTIFY. */
static bool has_secret(const char *text, size_t len, const char *secret)
{
	size_t sl;

	if (!secret || !text)
		return false;
	sl = strlen(secret);
	for (size_t i = 1; i + sl <= len; i++) {
		char before = text[i - 1], after = i + sl < len ? text[i + sl] : '\0';

		if ((before == '<' || before == ':' || before == '/') && !memcmp(text + i, secret, sl) &&
		    (after == '\0' || strchr(" \t\r\n/>[\"'", after)))
			return true;
	}
	return false;
}

/* ---- the version cache (for patches) ------------------------------------------------------ */

static void vcache_drop(struct notifier *n, const char *key)
{
	struct slot *sl = smap_get(&n->vcache, key, false);
	struct vent *v;

	if (!sl || !sl->val)
		return;
	v = sl->val;
	sl->val = NULL;
	smap_drop(&n->vcache, sl);
	/* unlink from the age list */
	if (n->v_oldest == v) {
		n->v_oldest = v->newer;
	} else {
		for (struct vent *p = n->v_oldest; p; p = p->newer) {
			if (p->newer == v) {
				p->newer = v->newer;
				if (n->v_newest == v)
					n->v_newest = p;
				break;
			}
		}
	}
	if (n->v_newest == v)
		n->v_newest = NULL;
	n->v_bytes -= v->len;
	free(v->key);
	free(v->etag);
	free(v->data);
	free(v);
}

static const struct vent *vcache_get(struct notifier *n, const char *key)
{
	struct slot *sl = smap_get(&n->vcache, key, false);

	return sl ? sl->val : NULL;
}

static void vcache_put(struct notifier *n, const char *key, const char *etag, const char *data, size_t len)
{
	struct vent *v;
	struct slot *sl;

	vcache_drop(n, key);
	if (len > n->c->notify_patch_cache / 4)
		return;
	while (n->v_oldest && n->v_bytes + len > n->c->notify_patch_cache)
		vcache_drop(n, n->v_oldest->key);
	v = xcalloc(1, sizeof(*v));
	v->key = xstrdup(key);
	v->etag = xstrdup(etag);
	v->data = xmalloc(len ? len : 1);
	memcpy(v->data, data, len);
	v->len = len;
	sl = smap_get(&n->vcache, key, true);
	sl->val = v;
	if (n->v_newest)
		n->v_newest->newer = v;
	else
		n->v_oldest = v;
	n->v_newest = v;
	n->v_bytes += len;
}

/* ---- building xcap-diff bodies -------------------------------------------------------------- */

struct body {
	struct diff_document *docs;
	const struct nchange **origin; /* the last change each document entry reports */
	size_t nd, cd;
	struct diff_node *nodes;
	size_t nn, cn;
	char **owned;
	size_t no, co;
	const char *prefixes[2 * 32 + 1];
	size_t np;
	size_t estimate;
};

static char *body_keep(struct body *b, char *s)
{
	if (b->no == b->co) {
		b->co = b->co ? b->co * 2 : 16;
		b->owned = xrealloc(b->owned, b->co * sizeof(*b->owned));
	}
	b->owned[b->no++] = s;
	return s;
}

static struct diff_document *body_doc(struct body *b)
{
	if (b->nd == b->cd) {
		b->cd = b->cd ? b->cd * 2 : 16;
		b->docs = xrealloc(b->docs, b->cd * sizeof(*b->docs));
		b->origin = xrealloc(b->origin, b->cd * sizeof(*b->origin));
	}
	memset(&b->docs[b->nd], 0, sizeof(b->docs[0]));
	b->origin[b->nd] = NULL;
	return &b->docs[b->nd++];
}

static void body_prefix(struct body *b, const char *prefix, const char *ns)
{
	for (size_t i = 0; i < b->np; i += 2)
		if (!strcmp(b->prefixes[i], prefix))
			return;
	if (b->np + 2 >= sizeof(b->prefixes) / sizeof(b->prefixes[0]))
		return;
	b->prefixes[b->np++] = prefix;
	b->prefixes[b->np++] = ns;
	b->prefixes[b->np] = NULL;
}

static void body_cleanup(struct body *b)
{
	for (size_t i = 0; i < b->no; i++)
		free(b->owned[i]);
	free(b->owned);
	free(b->docs);
	free(b->origin);
	free(b->nodes);
	memset(b, 0, sizeof(*b));
}

/* Adds the report of node entry @e against the current document (NULL: gone),
 * unless it is the same as the last one and @only_changed. */
static void body_node(struct body *b, struct entry *e, const struct store_doc *doc, bool only_changed)
{
	struct diff_node *dn;
	struct buf content;
	bool is_attr = false, exists = false;
	uint64_t h;

	buf_init(&content, e->auid ? e->auid->max_document + 1024 : (size_t)1 << 24);
	if (doc && diff_node_content(doc->data, doc->data_len, e->node_sel, e->query, e->auid->ns, &content,
				     &is_attr, &exists))
		exists = false;
	if (!doc) {
		size_t l = strlen(e->node_sel);
		/* the last step decides: an attribute step starts with "@" */
		const char *last = strrchr(e->node_sel, '/');

		is_attr = (last ? last[1] : e->node_sel[0]) == '@' && l;
	}
	if (exists && (has_secret(e->node_sel, strlen(e->node_sel), xcap_auid_secret(e->auid)) ||
		       has_secret(content.data, content.len, xcap_auid_secret(e->auid))))
		buf_reset(&content); /* reported as existing, without its content: GET it */
	h = exists ? hash_bytes(content.data ? content.data : "", content.len) ^ 1 : 0;
	if (only_changed && e->has_reported && e->last_hash == h) {
		buf_cleanup(&content);
		return;
	}
	e->has_reported = true;
	e->last_hash = h;
	if (b->nn == b->cn) {
		b->cn = b->cn ? b->cn * 2 : 8;
		b->nodes = xrealloc(b->nodes, b->cn * sizeof(*b->nodes));
	}
	dn = &b->nodes[b->nn++];
	memset(dn, 0, sizeof(*dn));
	dn->sel = e->sel;
	dn->is_attribute = is_attr;
	dn->exists = exists;
	if (exists) {
		dn->content_len = content.len;
		dn->content = content.len ? body_keep(b, buf_take(&content, NULL)) : NULL;
	}
	b->estimate += strlen(e->sel) + content.len + 64;
	buf_cleanup(&content);
}

struct fs_walk {
	struct notifier *n;
	struct sub *s;
	struct body *b;
	bool is_full;       /* the page is full: stop */
	bool wants_version; /* keep versions for patches */
};

static void full_add_doc(struct fs_walk *fw, const char *key, const struct store_doc *doc)
{
	struct diff_document *d = body_doc(fw->b);

	d->sel = body_keep(fw->b, key_to_sel(key));
	d->new_etag = body_keep(fw->b, xstrdup(doc->etag));
	fw->b->estimate += strlen(d->sel) + strlen(doc->etag) + 40;
	if (fw->wants_version)
		vcache_put(fw->n, key, doc->etag, doc->data, doc->data_len);
}

static int full_visit(void *arg, const char *key, const struct store_doc *doc)
{
	struct fs_walk *fw = arg;

	if (fw->b->estimate + strlen(key) * 2 + 100 > fw->n->c->notify_max_body && fw->b->nd) {
		fw->is_full = true;
		return 1;
	}
	full_add_doc(fw, key, doc);
	free(fw->s->full_after);
	fw->s->full_after = xstrdup(key);
	return 0;
}

/* One page of full state into @b. Sets s->inflight_full_done when it is the last. */
static void build_full(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b)
{
	struct fs_walk fw = { .n = n, .s = s, .b = b, .wants_version = s->mode != MODE_NO_PATCHING };

	for (; s->full_entry < s->entry_count; s->full_entry++) {
		struct entry *e = &s->entries[s->full_entry];
		struct store_doc doc;
		bool has_doc;

		if (e->kind == ENTRY_COLL) {
			if (store_doc_list_after(rd, e->key, s->full_after, full_visit, &fw))
				log_warn("notify: listing %s failed", e->key);
			if (fw.is_full) {
				s->inflight_full_done = false;
				return;
			}
			free(s->full_after);
			s->full_after = NULL;
			continue;
		}
		if (b->nd + b->nn && b->estimate + 512 > n->c->notify_max_body) {
			s->inflight_full_done = false;
			return;
		}
		has_doc = store_doc_get(rd, e->key, &doc) == XDMS_ERR_OK;
		if (e->kind == ENTRY_DOC) {
			if (has_doc)
				full_add_doc(&fw, e->key, &doc);
		} else {
			body_node(b, e, has_doc ? &doc : NULL, false);
		}
	}
	s->inflight_full_done = true;
}

static bool entry_matches(const struct entry *e, const char *key)
{
	if (e->kind == ENTRY_COLL)
		return strncmp(key, e->key, strlen(e->key)) == 0;
	return strcmp(key, e->key) == 0;
}

/* Changes pend[0..k) into @b. Returns k. */
static size_t build_changes(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b)
{
	size_t k = 0;
	bool *node_touched = xcalloc(s->entry_count ? s->entry_count : 1, sizeof(bool));

	for (; k < s->pend_count; k++) {
		struct nchange *c = s->pend[k];
		bool has_doc_entry = false;
		size_t est = strlen(c->sel) + 120 + (s->mode != MODE_NO_PATCHING ? c->ops_len : 0);

		if (k && b->estimate + est > n->c->notify_max_body)
			break;
		for (size_t i = 0; i < s->entry_count; i++) {
			if (!entry_matches(&s->entries[i], c->key))
				continue;
			if (s->entries[i].kind == ENTRY_NODE)
				node_touched[i] = true;
			else
				has_doc_entry = true;
		}
		if (!has_doc_entry)
			continue;
		if (s->mode == MODE_AGGREGATE) {
			/* Join the chain of the same document already in the body. */
			struct diff_document *d = NULL;
			size_t dj = 0;

			for (size_t j = b->nd; j-- > 0;) {
				if (!strcmp(b->docs[j].sel, c->sel)) {
					d = &b->docs[j];
					dj = j;
					break;
				}
			}
			if (d && d->new_etag && c->prev_etag && !strcmp(d->new_etag, c->prev_etag)) {
				bool had_patch = d->ops || d->is_body_not_changed;

				d->new_etag = c->new_etag;
				d->is_body_not_changed = false;
				if (had_patch && c->has_patch && c->new_etag) {
					size_t len = d->ops_len + c->ops_len;

					if (len && (!c->new_len || len <= c->new_len)) {
						char *joined = xmalloc(len + 1);

						memcpy(joined, d->ops ? d->ops : "", d->ops_len);
						memcpy(joined + d->ops_len, c->ops ? c->ops : "", c->ops_len);
						joined[len] = '\0';
						d->ops = body_keep(b, joined);
						d->ops_len = len;
					} else {
						d->ops = NULL;
						d->ops_len = 0;
						d->is_body_not_changed = !len;
					}
				} else {
					d->ops = NULL;
					d->ops_len = 0;
				}
				/* Steps without patches, but one patch for the whole chain. */
				if (!d->ops && !d->is_body_not_changed && c->has_agg_patch && d->prev_etag &&
				    !strcmp(c->agg_from, d->prev_etag)) {
					d->ops = c->agg_ops;
					d->ops_len = c->agg_ops_len;
					d->is_body_not_changed = !c->agg_ops;
				}
				b->origin[dj] = c;
				b->estimate += c->ops_len + c->agg_ops_len + 20;
				continue;
			}
		}
		{
			struct diff_document *d = body_doc(b);

			b->origin[b->nd - 1] = c;
			d->sel = c->sel;
			d->prev_etag = c->prev_etag;
			d->new_etag = c->new_etag;
			if (s->mode != MODE_NO_PATCHING && c->has_patch) {
				d->ops = c->ops;
				d->ops_len = c->ops_len;
				d->is_body_not_changed = !c->ops;
			}
			b->estimate += est;
		}
	}
	/* Aggregated chains that began with a creation and ended deleted say nothing;
	 * the prefixes of the patches that stay are declared on the root. */
	for (size_t j = 0; j < b->nd; j++) {
		if (!b->docs[j].prev_etag && !b->docs[j].new_etag) {
			memmove(&b->docs[j], &b->docs[j + 1], (b->nd - j - 1) * sizeof(b->docs[0]));
			b->nd--;
			j--;
		}
	}
	for (size_t j = 0; j < b->nd; j++)
		if (b->docs[j].ops && b->origin[j] && b->origin[j]->auid)
			body_prefix(b, b->origin[j]->prefix, b->origin[j]->auid->ns);
	for (size_t i = 0; i < s->entry_count; i++) {
		struct store_doc doc;

		if (!node_touched[i])
			continue;
		body_node(b, &s->entries[i], store_doc_get(rd, s->entries[i].key, &doc) ? NULL : &doc, true);
	}
	free(node_touched);
	return k;
}

/* ---- sending -------------------------------------------------------------------------------- */

/* The subscription's progress must be recorded at the next flush. */
static void mark_dirty(struct notifier *n, struct sub *s)
{
	if (s->is_dirty || s->is_transient)
		return;
	s->is_dirty = true;
	if (n->dirty_count == n->dirty_cap) {
		n->dirty_cap = n->dirty_cap ? n->dirty_cap * 2 : 64;
		n->dirty = xrealloc(n->dirty, n->dirty_cap * sizeof(*n->dirty));
	}
	n->dirty[n->dirty_count++] = s->id;
}

static struct sub *sub_by_id(struct notifier *n, uint64_t id)
{
	char k[17];
	struct slot *sl;

	id_key(id, k);
	sl = smap_get(&n->by_id, k, false);
	return sl && sl->n ? sl->items[0] : NULL;
}

static void sub_send(struct notifier *n, struct sub *s);
static void retry_fire(void *arg);
static void pend_drop(struct sub *s, size_t k);
static void sub_end(struct notifier *n, struct sub *s, bool is_delete_record);

static void sub_persist_then_send(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);

	if (!s)
		return;
	s->block_wait = false;
	if (b->w.result) {
		/* The new block is not durable: using it could make CSeqs go back
		 * after a restart. Try again in a second. */
		s->cseq_block = b->old_cseq_block;
		if (!s->retry_timer)
			s->retry_timer = sip_timer_start(n->sip, 1000, retry_fire, s);
		return;
	}
	sub_send(n, s);
}

static void notify_done(void *arg, int status);

static void retry_fire(void *arg)
{
	struct sub *s = arg;

	s->retry_timer = NULL;
	sub_send(s->n, s);
}

static const char *sub_state(const struct sub *s, char *buf, size_t len)
{
	int64_t left = (s->expires_ms - now_ms() + 999) / 1000;

	if (s->inflight_final)
		snprintf(buf, len, "terminated;reason=%s", s->terminating);
	else
		snprintf(buf, len, "active;expires=%" PRId64, left > 0 ? left : 0);
	return buf;
}

static void sub_send(struct notifier *n, struct sub *s)
{
	struct store_read *rd = NULL;
	struct body b = { 0 };
	struct buf out;
	struct sip_header hdrs[2];
	struct sip_dialog_out d;
	char state[64];
	enum xdms_err err;

	if (s->in_flight || s->is_dead || s->block_wait || s->window_timer || s->retry_timer)
		return;
	if (n->is_stopping && !s->terminating)
		return;
	if (!s->full_pending && !s->pend_count && !s->terminating)
		return;
	if (s->cseq + 1 > s->cseq_block) {
		/* Make the next block of CSeqs durable before using it. */
		struct pbatch *pb = pbatch_new(n);
		uint32_t old_block = s->cseq_block;

		pb->old_cseq_block = old_block;
		s->cseq_block = s->cseq + CSEQ_BLOCK;
		pbatch_add(pb, s, false);
		pb->then = sub_persist_then_send;
		pb->sub_id = s->id;
		s->block_wait = true;
		if (pbatch_submit(n, pb)) {
			s->block_wait = false;
			s->cseq_block = old_block;
			log_error("notify: cannot record the CSeq of subscription %016" PRIx64, s->id);
		}
		return;
	}
	if (store_read_begin(n->st, &rd)) {
		log_error("notify: cannot read the store");
		return;
	}
	for (;;) {
		s->inflight_full = false;
		s->inflight_count = 0;
		if (s->full_pending) {
			if (!s->full_entry && !s->full_after) {
				uint64_t last = 0;

				if (store_changes_last(rd, &last) || last < n->feed_seq)
					last = n->feed_seq; /* an empty (pruned) feed reads 0 */
				s->fs_seq = last;
			}
			free(s->page_after);
			s->page_entry = s->full_entry;
			s->page_after = s->full_after ? xstrdup(s->full_after) : NULL;
			build_full(n, s, rd, &b);
			s->inflight_full = true;
			s->inflight_full_gen = s->full_gen;
			s->inflight_seq = s->fs_seq;
		} else if (s->pend_count) {
			s->inflight_count = build_changes(n, s, rd, &b);
			s->inflight_seq = s->pend[s->inflight_count - 1]->seq;
			if (!b.nd && !b.nn && !s->terminating) {
				/* Nothing this subscriber watches changed visibly: done. */
				pend_drop(s, s->inflight_count);
				s->acked_seq = s->inflight_seq;
				mark_dirty(n, s);
				body_cleanup(&b);
				if (s->pend_count)
					continue;
				store_read_end(rd);
				return;
			}
		}
		break;
	}
	store_read_end(rd);
	buf_init(&out, n->c->notify_max_body + 65536);
	err = diff_render(n->root_uri, b.docs, b.nd, b.nodes, b.nn, b.np ? b.prefixes : NULL, &out);
	if (err == XDMS_ERR_TOOBIG && b.nd) {
		/* Patches made it too large: send the transitions without them. */
		for (size_t i = 0; i < b.nd; i++)
			b.docs[i].ops = NULL, b.docs[i].ops_len = 0;
		buf_reset(&out);
		err = diff_render(n->root_uri, b.docs, b.nd, b.nodes, b.nn, NULL, &out);
	}
	body_cleanup(&b);
	if (err) {
		log_error("notify: cannot build the NOTIFY body for %016" PRIx64 ": %s", s->id, xdms_err_str(err));
		buf_cleanup(&out);
		s->is_dead = true;
		sub_end(n, s, true);
		return;
	}
	/* The last NOTIFY of a subscription is the one that carries everything left. */
	s->inflight_final = s->terminating &&
			    (s->inflight_full ? s->inflight_full_done &&
							(!s->pend_count || s->pend[s->pend_count - 1]->seq <= s->fs_seq)
					      : s->inflight_count == s->pend_count);
	hdrs[0].name = "Event";
	hdrs[0].value = "xcap-diff";
	hdrs[1].name = "Subscription-State";
	hdrs[1].value = sub_state(s, state, sizeof(state));
	memset(&d, 0, sizeof(d));
	d.call_id = s->call_id;
	d.local_uri = s->local_uri;
	d.local_tag = s->local_tag;
	d.remote_uri = s->remote_uri;
	d.remote_tag = s->remote_tag;
	d.remote_target = s->target;
	d.route_set = (const char *const *)s->routes;
	d.route_count = s->route_count;
	d.cseq = s->cseq + 1;
	d.transport = s->transport;
	d.destination = s->dest;
	err = sip_send_request(n->sip, "NOTIFY", &d, hdrs, 2, DIFF_MIME, out.data, out.len, notify_done, s);
	buf_cleanup(&out);
	if (err) {
		log_warn("notify: cannot send NOTIFY for %016" PRIx64 ": %s", s->id, xdms_err_str(err));
		if (err == XDMS_ERR_BUSY) {
			s->retry_timer = sip_timer_start(n->sip, 100, retry_fire, s);
			return;
		}
		sub_end(n, s, true);
		return;
	}
	s->cseq++;
	s->in_flight = true;
	atomic_fetch_add(&n->inflight, 1);
	atomic_fetch_add(&n->n_sent, 1);
}

/* Drops pend[0..k) (sent and acknowledged, or superseded). */
static void pend_drop(struct sub *s, size_t k)
{
	if (k > s->pend_count)
		k = s->pend_count;
	if (!k)
		return;
	for (size_t i = 0; i < k; i++)
		nchange_put(s->pend[i]);
	memmove(s->pend, s->pend + k, (s->pend_count - k) * sizeof(*s->pend));
	s->pend_count -= k;
}

/* Ends a subscription: forgets it, and deletes its record when asked. */
static void sub_end(struct notifier *n, struct sub *s, bool is_delete_record)
{
	if (s->in_flight) {
		s->is_dead = true; /* notify_done finishes the job */
		return;
	}
	sip_timer_cancel(n->sip, s->expiry_timer);
	sip_timer_cancel(n->sip, s->window_timer);
	sip_timer_cancel(n->sip, s->retry_timer);
	sub_unregister(n, s);
	if (is_delete_record && !s->is_transient) {
		struct pbatch *pb = pbatch_new(n);

		pbatch_add(pb, s, true);
		if (pbatch_submit(n, pb))
			log_error("notify: cannot delete subscription %016" PRIx64, s->id);
	}
	log_info("notify: subscription %016" PRIx64 " of %s ended%s%s", s->id, s->identity,
		 s->terminating ? ": " : "", s->terminating ? s->terminating : "");
	sub_free(s);
}

static void notify_done(void *arg, int status)
{
	struct sub *s = arg;
	struct notifier *n = s->n;

	atomic_fetch_sub(&n->inflight, 1);
	s->in_flight = false;
	if (status == 0)
		return; /* the SIP stack stopped: progress stays where it was */
	if (s->is_dead) {
		sub_end(n, s, true);
		return;
	}
	if (status >= 200 && status < 300) {
		s->retries = 0;
		if (s->inflight_full && s->inflight_full_gen != s->full_gen) {
			/* a refresh restarted the full state meanwhile: this page is outdated */
		} else if (s->inflight_full) {
			if (s->inflight_full_done) {
				size_t k = 0;

				s->full_pending = false;
				s->full_entry = 0;
				free(s->full_after);
				s->full_after = NULL;
				s->is_full_acked = true;
				while (k < s->pend_count && s->pend[k]->seq <= s->fs_seq)
					k++;
				pend_drop(s, k);
				if (s->acked_seq < s->fs_seq)
					s->acked_seq = s->fs_seq;
				if (s->queued_seq < s->fs_seq)
					s->queued_seq = s->fs_seq;
			}
			mark_dirty(n, s);
		} else if (s->inflight_count) {
			pend_drop(s, s->inflight_count);
			s->acked_seq = s->inflight_seq;
			mark_dirty(n, s);
		}
		s->inflight_count = 0;
		if (s->inflight_final) {
			sub_end(n, s, true);
			return;
		}
		sub_send(n, s);
		return;
	}
	atomic_fetch_add(&n->n_failed, 1);
	s->inflight_count = 0;
	/* The page (or the changes) in flight go out again on a retry. */
	if (s->inflight_full && s->inflight_full_gen == s->full_gen) {
		s->full_entry = s->page_entry;
		free(s->full_after);
		s->full_after = s->page_after;
		s->page_after = NULL;
	}
	for (size_t i = 0; i < s->entry_count; i++)
		s->entries[i].has_reported = false;
	if (status == 481 || status == 408 || s->inflight_final || ++s->retries > NOTIFY_RETRIES) {
		log_info("notify: NOTIFY for %016" PRIx64 " answered %d: subscription ended", s->id, status);
		sub_end(n, s, true);
		return;
	}
	s->retry_timer = sip_timer_start(n->sip, 1000u << (s->retries - 1), retry_fire, s);
}

static void expiry_fire(void *arg)
{
	struct sub *s = arg;

	s->expiry_timer = NULL;
	s->terminating = "timeout";
	s->full_pending = false;
	sub_send(s->n, s);
}

static void window_fire(void *arg)
{
	struct sub *s = arg;

	s->window_timer = NULL;
	sub_send(s->n, s);
}

static void expiry_arm(struct notifier *n, struct sub *s)
{
	int64_t left = s->expires_ms - now_ms();

	sip_timer_cancel(n->sip, s->expiry_timer);
	s->expiry_timer = sip_timer_start(n->sip, left <= 0 ? 0 : left > UINT32_MAX ? UINT32_MAX : (unsigned)left,
					  expiry_fire, s);
}

/* Sends what is due now, or after the aggregation window. */
static void sub_kick(struct notifier *n, struct sub *s)
{
	if (s->mode == MODE_AGGREGATE && n->c->notify_aggregate_window && !s->full_pending && !s->terminating &&
	    !s->in_flight && !s->window_timer && s->pend_count) {
		s->window_timer = sip_timer_start(n->sip, n->c->notify_aggregate_window, window_fire, s);
		return;
	}
	sub_send(n, s);
}

/* ---- reading the change feed --------------------------------------------------------------- */

struct pump {
	struct notifier *n;
	struct store_read *rd;
	struct sub **touched;
	size_t nt, ct;
	size_t count;
	bool more;
};

static struct nchange *nchange_new(struct notifier *n, const struct store_change *c)
{
	struct nchange *nc = xcalloc(1, sizeof(*nc));

	nc->refs = 1;
	nc->seq = c->seq;
	nc->key = xstrdup(c->selector);
	nc->sel = key_to_sel(c->selector);
	nc->prev_etag = dup_or_null(c->prev_etag);
	nc->new_etag = dup_or_null(c->new_etag);
	nc->auid = auid_of_key(n, c->selector);
	nc->prefix = auid_prefix(n, nc->auid);
	return nc;
}

/* The RFC 5261 patch of a change, from the version kept in the cache to the
 * stored document, when the store still holds the change's new version. */
static void nchange_patch(struct notifier *n, struct store_read *rd, struct nchange *nc,
			  const struct store_change *c, bool wants_agg)
{
	struct store_doc cur;
	const struct vent *v;

	if (!nc->new_etag || store_doc_get(rd, c->selector, &cur)) {
		vcache_drop(n, c->selector); /* deleted */
		return;
	}
	if (strcmp(cur.etag, nc->new_etag) != 0)
		return; /* moved on already: the cached version may still start a chain */
	nc->new_len = cur.data_len;
	v = vcache_get(n, c->selector);
	if (v && nc->prev_etag && nc->auid && (wants_agg || !strcmp(v->etag, nc->prev_etag))) {
		bool is_step = !strcmp(v->etag, nc->prev_etag);
		char *detail = is_step && c->detail ? xstrndup(c->detail, c->detail_len) : NULL;
		bool is_too_big = false;
		struct buf ops;

		buf_init(&ops, cur.data_len + 1);
		if (!diff_patch(v->data, v->len, cur.data, cur.data_len, detail, nc->auid->ns, nc->prefix, &ops,
				&is_too_big) &&
		    !is_too_big) {
			if (has_secret(ops.data, ops.len, xcap_auid_secret(nc->auid))) {
				/* no patch: the ETags tell the subscriber to GET */
			} else if (is_step) {
				nc->has_patch = true;
				if (ops.len)
					nc->ops = buf_take(&ops, &nc->ops_len);
			} else {
				nc->has_agg_patch = true;
				nc->agg_from = xstrdup(v->etag);
				if (ops.len)
					nc->agg_ops = buf_take(&ops, &nc->agg_ops_len);
			}
		}
		buf_cleanup(&ops);
		free(detail);
	}
	vcache_put(n, c->selector, cur.etag, cur.data, cur.data_len);
}

static void sub_enqueue(struct notifier *n, struct sub *s, struct nchange *nc)
{
	if (s->pend_count >= n->c->notify_max_pending) {
		/* A subscriber this far behind gets a fresh start (RFC 6665 §4.2.2).
		 * What a NOTIFY in flight carries stays until it is answered. */
		size_t keep = s->in_flight ? s->inflight_count : 0;

		for (size_t i = keep; i < s->pend_count; i++)
			nchange_put(s->pend[i]);
		s->pend_count = keep;
		s->terminating = "deactivated";
		s->full_pending = false;
		return;
	}
	if (s->pend_count == s->pend_cap) {
		s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 8;
		s->pend = xrealloc(s->pend, s->pend_cap * sizeof(*s->pend));
	}
	nc->refs++;
	s->pend[s->pend_count++] = nc;
	s->queued_seq = nc->seq;
}

static void pump_consider(struct pump *p, struct slot *sl, const struct store_change *c, struct nchange **nc,
			  bool *wants_patch, bool *wants_agg)
{
	for (size_t i = 0; sl && i < sl->n; i++) {
		struct sub *s = sl->items[i];

		if (s->is_dead || s->terminating || c->seq <= s->queued_seq || s->mark == c->seq)
			continue;
		s->mark = c->seq;
		if (!*nc)
			*nc = nchange_new(p->n, c);
		sub_enqueue(p->n, s, *nc);
		if (s->mode != MODE_NO_PATCHING)
			*wants_patch = true;
		if (s->mode == MODE_AGGREGATE)
			*wants_agg = true;
		if (s->touch_gen != p->n->gen) {
			s->touch_gen = p->n->gen;
			if (p->nt == p->ct) {
				p->ct = p->ct ? p->ct * 2 : 64;
				p->touched = xrealloc(p->touched, p->ct * sizeof(*p->touched));
			}
			p->touched[p->nt++] = s;
		}
	}
}

static int pump_visit(void *arg, const struct store_change *c)
{
	struct pump *p = arg;
	struct notifier *n = p->n;
	struct nchange *nc = NULL;
	bool wants_patch = false, wants_agg = false;
	char prefix[STORE_SELECTOR_MAX + 2];

	if (++p->count > PUMP_MAX) {
		p->more = true;
		return 1;
	}
	n->feed_seq = c->seq;
	pump_consider(p, smap_get(&n->by_doc, c->selector, false), c, &nc, &wants_patch, &wants_agg);
	for (const char *q = strchr(c->selector, '/'); q; q = strchr(q + 1, '/')) {
		size_t len = (size_t)(q - c->selector) + 1;

		if (len >= sizeof(prefix))
			break;
		memcpy(prefix, c->selector, len);
		prefix[len] = '\0';
		pump_consider(p, smap_get(&n->by_coll, prefix, false), c, &nc, &wants_patch, &wants_agg);
	}
	if (nc && wants_patch)
		nchange_patch(n, p->rd, nc, c, wants_agg);
	else if (vcache_get(n, c->selector))
		vcache_drop(n, c->selector);
	nchange_put(nc);
	return 0;
}

static void pump_fn(void *arg);

/*
 * A fan-out sends KICK_BATCH NOTIFYs per turn of the loop, so the loop reads
 * the 200s (and new requests) between batches instead of letting a
 * thousand answers pile up in the socket behind a thousand sends.
 */
static void kick_fire(void *arg)
{
	struct notifier *n = arg;
	size_t end = n->kick_head + (n->kick_count - n->kick_head < KICK_BATCH ? n->kick_count - n->kick_head
									       : KICK_BATCH);

	n->kick_timer = NULL;
	for (; n->kick_head < end; n->kick_head++) {
		struct sub *s = sub_by_id(n, n->kicks[n->kick_head]);

		if (s)
			sub_kick(n, s);
	}
	if (n->kick_head < n->kick_count) {
		if (n->kick_head >= 4096) {
			/* keep the queue from growing under steady fan-outs */
			memmove(n->kicks, n->kicks + n->kick_head, (n->kick_count - n->kick_head) * sizeof(*n->kicks));
			n->kick_count -= n->kick_head;
			n->kick_head = 0;
		}
		n->kick_timer = sip_timer_start(n->sip, 0, kick_fire, n);
		return;
	}
	n->kick_head = n->kick_count = 0;
}

static void kicks_add(struct notifier *n, struct sub **subs, size_t count)
{
	if (!count)
		return;
	if (n->kick_count + count > n->kick_cap) {
		n->kick_cap = (n->kick_count + count) * 2;
		n->kicks = xrealloc(n->kicks, n->kick_cap * sizeof(*n->kicks));
	}
	for (size_t i = 0; i < count; i++)
		n->kicks[n->kick_count++] = subs[i]->id;
	if (!n->kick_timer)
		kick_fire(n); /* the first batch now: a lone subscriber waits for nothing */
}

static void pump(struct notifier *n)
{
	struct pump p = { .n = n };

	if (!n->is_started)
		return;
	if (store_read_begin(n->st, &p.rd)) {
		log_error("notify: cannot read the change feed");
		return;
	}
	n->gen++;
	if (store_changes_scan(p.rd, n->feed_seq + 1, pump_visit, &p))
		log_error("notify: change feed scan failed");
	store_read_end(p.rd);
	kicks_add(n, p.touched, p.nt);
	free(p.touched);
	if (p.more && sip_server_call(n->sip, pump_fn, n))
		log_warn("notify: cannot continue reading the change feed");
}

static void pump_fn(void *arg)
{
	struct notifier *n = arg;

	atomic_store(&n->wake_queued, false);
	pump(n);
}

/* Writer thread: a batch committed. Wake the loop once, however many commits. */
static void on_commit(void *arg, uint64_t last_seq)
{
	struct notifier *n = arg;

	(void)last_seq;
	pthread_mutex_lock(&n->wake_lock);
	if (n->can_wake && !atomic_exchange(&n->wake_queued, true) && sip_server_call(n->sip, pump_fn, n))
		atomic_store(&n->wake_queued, false);
	pthread_mutex_unlock(&n->wake_lock);
}

/*
 * The first feed sequence a subscriber may still need: the store may prune
 * below it. A subscription with nothing pending or in flight has had every
 * change up to feed_seq (those it watches were sent and acknowledged), so it
 * holds nothing back; once a minute its acknowledged position moves up to
 * feed_seq and is recorded, so that after a restart it does not look as if
 * pruned changes were missing.
 */
static void feed_floor_update(struct notifier *n)
{
	uint64_t floor = n->feed_seq + 1;
	bool is_record_round = ++n->floor_rounds % 60 == 0;

	for (size_t i = 0; i < n->by_id.nb; i++)
		for (struct slot *sl = n->by_id.b[i]; sl; sl = sl->next)
			for (size_t j = 0; j < sl->n; j++) {
				struct sub *s = sl->items[j];
				bool is_idle = !s->pend_count && !s->in_flight && !s->full_pending && !s->block_wait &&
					       !s->is_dead;

				if (s->is_transient)
					continue;
				if (is_idle && s->acked_seq < n->feed_seq && is_record_round) {
					s->acked_seq = s->queued_seq = n->feed_seq;
					mark_dirty(n, s);
				}
				if (!is_idle && s->acked_seq + 1 < floor)
					floor = s->acked_seq + 1;
			}
	store_set_feed_floor(n->st, floor);
}

static void poll_fire(void *arg)
{
	struct notifier *n = arg;

	n->poll_timer = sip_timer_start(n->sip, POLL_MS, poll_fire, n);
	pump(n); /* writes by other processes (xdmsctl) reach the feed without a wake-up */
	feed_floor_update(n);
}

static void flush(struct notifier *n)
{
	struct pbatch *pb = NULL;

	for (size_t i = 0; i < n->dirty_count; i++) {
		struct sub *s = sub_by_id(n, n->dirty[i]);

		if (!s || s->is_dead || !s->is_dirty)
			continue;
		s->is_dirty = false;
		if (!pb)
			pb = pbatch_new(n);
		pbatch_add(pb, s, false);
	}
	n->dirty_count = 0;
	if (pb && pbatch_submit(n, pb))
		log_error("notify: cannot record subscription progress");
}

static void flush_fire(void *arg)
{
	struct notifier *n = arg;

	n->flush_timer = sip_timer_start(n->sip, FLUSH_MS, flush_fire, n);
	flush(n);
}

/* ---- SUBSCRIBE ------------------------------------------------------------------------------ */

static void respond(struct sip_request *req, int status, const char *reason, const struct sip_header *h,
		    size_t nh)
{
	if (sip_request_respond(req, status, reason, h, nh, NULL, NULL, 0))
		log_warn("notify: could not answer SUBSCRIBE with %d", status);
}

static void respond_why(struct sip_request *req, int status, const char *why)
{
	struct sip_header h = { "Warning", NULL };
	char warning[300];

	/* RFC 3261 §20.43: 399 is "miscellaneous warning"; the text tells a person why. */
	snprintf(warning, sizeof(warning), "399 xdmsd \"%s\"", why);
	h.value = warning;
	respond(req, status, NULL, &h, 1);
}

static bool is_privileged(const struct notifier *n, const char *identity)
{
	return conf_list_has(&n->c->auth_admin_identities, identity) ||
	       conf_list_has(&n->c->auth_server_identities, identity);
}

/*
 * Who is subscribing. Returns true with @identity set, or false after
 * answering the request (401 challenge or 403).
 */
static bool subscriber(struct notifier *n, struct sip_request *req, char *identity)
{
	const char *h, *why = "no credentials";
	const char *from = sip_request_from_uri(req);
	char realm[STORE_REALM_MAX];
	struct sip_header ch[2];
	char challenges[2][600];
	bool is_stale = false;
	const char *at;

	if (conf_list_has(&n->c->sip_trusted_peers, sip_request_source_ip(req))) {
		for (size_t i = 0; (h = sip_request_header(req, "P-Asserted-Identity", i)); i++) {
			if (auth_identity_uri(h, identity, STORE_XUI_MAX) &&
			    (!strncmp(identity, "sip:", 4) || !strncmp(identity, "sips:", 5) ||
			     !strncmp(identity, "tel:", 4)))
				return true;
		}
	}
	if (n->c->sip_trust_from && from && strlen(from) < STORE_XUI_MAX) {
		snprintf(identity, STORE_XUI_MAX, "%s", from);
		return true;
	}
	/* The realm of the subscriber's domain, as for its XCAP documents. */
	at = from && (!strncmp(from, "sip:", 4) || !strncmp(from, "sips:", 5)) ? strchr(from, '@') : NULL;
	if (at && strlen(at + 1) < sizeof(realm)) {
		snprintf(realm, sizeof(realm), "%s", at + 1);
		realm[strcspn(realm, ";:>")] = '\0';
	} else {
		digest_default_realm(n->st, n->c, realm, sizeof(realm));
	}
	h = sip_request_header(req, "Authorization", 0);
	if (h && !strncasecmp(h, "Digest ", 7)) {
		switch (digest_verify(n->digest, n->st, h, "SUBSCRIBE", sip_request_uri(req), realm, identity,
				      &why)) {
		case DIGEST_VERDICT_OK:
			return true;
		case DIGEST_VERDICT_STALE:
			is_stale = true;
			break;
		case DIGEST_VERDICT_CHALLENGE:
			break;
		}
	}
	log_info("notify: SUBSCRIBE from %s (%s) challenged: %s", from ? from : "?", sip_request_source(req), why);
	for (size_t i = 0; i < n->digest->algo_count; i++) {
		digest_challenge(n->digest, n->digest->algos[i], realm, is_stale, challenges[i],
				 sizeof(challenges[i]));
		ch[i].name = "WWW-Authenticate";
		ch[i].value = challenges[i];
	}
	respond(req, 401, NULL, ch, n->digest->algo_count);
	return false;
}

static enum mode event_mode(struct sip_request *req)
{
	const char *ev = sip_request_header(req, "Event", 0);
	const char *p = ev ? strcasestr(ev, "diff-processing") : NULL;

	if (!p)
		return MODE_NO_PATCHING;
	p += strlen("diff-processing");
	while (*p == ' ')
		p++;
	if (*p++ != '=')
		return MODE_NO_PATCHING;
	while (*p == ' ' || *p == '"')
		p++;
	for (int m = MODE_AGGREGATE; m > 0; m--) {
		size_t l = strlen(mode_names[m]);

		if (!strncasecmp(p, mode_names[m], l) && strchr(" ;\",", p[l]))
			return (enum mode)m;
	}
	return MODE_NO_PATCHING; /* absent or unknown (SPEC §2.3) */
}

static bool accepts_xcap_diff(struct sip_request *req)
{
	const char *h;
	size_t i;

	for (i = 0; (h = sip_request_header(req, "Accept", i)); i++) {
		while (*h == ' ')
			h++;
		if (!strncasecmp(h, DIFF_MIME, strlen(DIFF_MIME)) || !strncmp(h, "*/*", 3) ||
		    !strncasecmp(h, "application/*", 13))
			return true;
	}
	return i == 0; /* no Accept: the package's default type (RFC 6665 §8.2) */
}

static void full_restart(struct sub *s)
{
	s->full_gen++;
	s->full_pending = true;
	s->full_entry = 0;
	free(s->full_after);
	s->full_after = NULL;
}

/* The subscription record is durable: answer 200 and send the full state. */
static void subscribe_ready(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);
	struct sip_header h = { "Expires", NULL };
	char expires[16];

	if (b->w.result || !s) {
		respond_why(b->req, 500, "the subscription could not be stored");
		if (s)
			sub_end(n, s, false);
		return;
	}
	snprintf(expires, sizeof(expires), "%u", b->granted);
	h.value = expires;
	respond(b->req, 200, NULL, &h, 1);
	s->block_wait = false;
	full_restart(s);
	expiry_arm(n, s);
	sub_send(n, s);
}

static void subscribe_persist(struct notifier *n, struct sub *s, struct sip_request *req, unsigned granted)
{
	struct pbatch *pb = pbatch_new(n);

	s->block_wait = true;
	s->is_dirty = false;
	pbatch_add(pb, s, false);
	pb->then = subscribe_ready;
	pb->req = req;
	pb->sub_id = s->id;
	pb->granted = granted;
	if (pbatch_submit(n, pb)) {
		respond_why(req, 500, "the subscription could not be stored");
		s->block_wait = false;
		sub_end(n, s, false);
	}
}

/* Exchanges the refreshable state of @s with @rf (twice restores both). */
static void refresh_swap(struct notifier *n, struct sub *s, struct refresh *rf)
{
	struct entry *es = s->entries;
	size_t ne = s->entry_count;
	int64_t expires_ms = s->expires_ms;
	enum mode mode = s->mode;
	char *target = s->target, *dest = s->dest;
	enum sip_transport transport = s->transport;

	if (rf->es) {
		if (n)
			sub_index(n, s, false);
		s->entries = rf->es;
		s->entry_count = rf->ne;
		rf->es = es;
		rf->ne = ne;
		if (n)
			sub_index(n, s, true);
	}
	s->expires_ms = rf->expires_ms;
	rf->expires_ms = expires_ms;
	s->mode = rf->mode;
	rf->mode = mode;
	if (rf->target) {
		s->target = rf->target;
		rf->target = target;
	}
	s->dest = rf->dest;
	rf->dest = dest;
	s->transport = rf->transport;
	rf->transport = transport;
}

/* The refresh is durable: it takes effect, 200, and a full state follows. */
static void refresh_ready(struct notifier *n, struct pbatch *b)
{
	struct sub *s = sub_by_id(n, b->sub_id);
	struct sip_header h = { "Expires", NULL };
	char expires[16];

	if (!s || s->terminating) {
		respond_why(b->req, 481, "no such subscription");
		return;
	}
	s->block_wait = false;
	if (b->w.result) {
		/* RFC 6665 §4.1.2.2: a failed refresh leaves the subscription as it was. */
		respond_why(b->req, 500, "the refresh could not be stored; the subscription is unchanged");
		sub_send(n, s);
		return;
	}
	refresh_swap(n, s, b->refresh); /* b->refresh now holds the old state, freed with b */
	snprintf(expires, sizeof(expires), "%u", b->granted);
	h.value = expires;
	respond(b->req, 200, NULL, &h, 1);
	full_restart(s);
	expiry_arm(n, s);
	sub_send(n, s);
}

static void on_refresh(struct notifier *n, struct sip_request *req, const char *identity, long expires,
		       struct entry *es, size_t ne)
{
	struct sub *s = sub_find_dialog(n, sip_request_call_id(req), sip_request_from_tag(req),
					sip_request_to_tag(req));
	struct sip_header h = { "Expires", "0" };
	struct refresh *rf;
	struct pbatch *pb;

	if (!s || s->terminating) {
		respond_why(req, 481, "no such subscription");
		goto drop;
	}
	if (strcmp(s->identity, identity) != 0) {
		respond_why(req, 403, "the subscription belongs to someone else");
		goto drop;
	}
	rf = xcalloc(1, sizeof(*rf));
	rf->es = es;
	rf->ne = ne;
	rf->expires_ms = expires ? now_ms() + expires * 1000 : s->expires_ms;
	rf->mode = expires ? event_mode(req) : s->mode;
	rf->target = sip_request_contact_uri(req) ? xstrdup(sip_request_contact_uri(req)) : NULL;
	rf->dest = xstrdup(sip_request_source(req));
	rf->transport = sip_request_transport(req);
	if (expires == 0) {
		/* Unsubscribe: nothing to store; the final NOTIFY goes where the
		 * subscriber is now, with the state of the list it asked for. */
		refresh_swap(n, s, rf);
		refresh_free(rf);
		respond(req, 200, NULL, &h, 1);
		sip_timer_cancel(n->sip, s->expiry_timer);
		s->expiry_timer = NULL;
		s->terminating = "timeout";
		full_restart(s);
		sub_send(n, s);
		return;
	}
	/* The record written is the refreshed state; memory changes once it is durable. */
	pb = pbatch_new(n);
	refresh_swap(NULL, s, rf);
	pbatch_add(pb, s, false);
	refresh_swap(NULL, s, rf);
	pb->refresh = rf;
	pb->then = refresh_ready;
	pb->req = req;
	pb->sub_id = s->id;
	pb->granted = (unsigned)expires;
	s->block_wait = true;
	if (pbatch_submit(n, pb)) {
		s->block_wait = false;
		respond_why(req, 500, "the refresh could not be stored; the subscription is unchanged");
	}
	return;
drop:
	for (size_t i = 0; i < ne; i++)
		entry_cleanup(&es[i]);
	free(es);
}

void notifier_on_subscribe(void *arg, struct sip_request *req)
{
	struct notifier *n = arg;
	char identity[STORE_XUI_MAX], expires_hdr[16], retry[16];
	struct sip_header h;
	long expires = sip_request_expires(req);
	const char *ctype, *body, *why = NULL, *rr;
	struct entry *es = NULL;
	size_t ne = 0, body_len = 0;
	struct sub *s;
	bool is_priv;
	int status;

	if (!n->is_started || n->is_stopping) {
		snprintf(retry, sizeof(retry), "%u", 5u);
		h.name = "Retry-After";
		h.value = retry;
		respond(req, 503, NULL, &h, 1);
		return;
	}
	if (expires < 0)
		expires = n->c->notify_default_expires;
	if (expires > 0 && (unsigned long)expires < n->c->notify_min_expires) {
		snprintf(expires_hdr, sizeof(expires_hdr), "%u", n->c->notify_min_expires);
		h.name = "Min-Expires";
		h.value = expires_hdr;
		respond(req, 423, NULL, &h, 1);
		return;
	}
	if ((unsigned long)expires > n->c->notify_max_expires)
		expires = n->c->notify_max_expires;
	if (!accepts_xcap_diff(req)) {
		respond_why(req, 406, "the subscriber does not accept application/xcap-diff+xml");
		return;
	}
	body = sip_request_body(req, &body_len);
	ctype = sip_request_content_type(req);
	if (body_len && (!ctype || strcasecmp(ctype, RL_MIME) != 0)) {
		h.name = "Accept";
		h.value = RL_MIME;
		respond(req, 415, NULL, &h, 1);
		return;
	}
	if (!subscriber(n, req, identity))
		return;
	is_priv = is_privileged(n, identity);
	if (body_len) {
		status = entries_from_body(n, body, body_len, identity, is_priv, &es, &ne, &why);
		if (status) {
			log_info("notify: SUBSCRIBE from %s refused %d: %s", identity, status, why);
			respond_why(req, status, why);
			return;
		}
	}
	if (sip_request_to_tag(req)) {
		on_refresh(n, req, identity, expires, es, ne);
		return;
	}
	if (!es) {
		respond_why(req, 400, "a new subscription needs a resource list");
		return;
	}
	if (n->sub_count >= n->c->notify_max_subscriptions ||
	    (!is_priv && user_sub_count(n, identity) >= n->c->notify_max_per_user)) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		snprintf(retry, sizeof(retry), "%u", n->c->notify_retry_after);
		h.name = "Retry-After";
		h.value = retry;
		log_warn("notify: SUBSCRIBE from %s refused: too many subscriptions", identity);
		respond(req, 503, NULL, &h, 1);
		return;
	}
	if (!sip_request_contact_uri(req)) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		respond_why(req, 400, "missing Contact");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->n = n;
	s->id = n->next_id++;
	s->call_id = xstrdup(sip_request_call_id(req));
	s->local_uri = xstrdup(sip_request_to_uri(req));
	s->local_tag = xstrdup(sip_request_local_tag(req));
	s->remote_uri = xstrdup(sip_request_from_uri(req));
	s->remote_tag = dup_or_null(sip_request_from_tag(req));
	s->target = xstrdup(sip_request_contact_uri(req));
	/* RFC 3261 §12.1.1: the UAS takes the Record-Route set in order. */
	for (size_t i = 0; (rr = sip_request_header(req, "Record-Route", i)); i++) {
		s->routes = xrealloc(s->routes, (s->route_count + 1) * sizeof(*s->routes));
		s->routes[s->route_count++] = xstrdup(rr);
	}
	s->transport = sip_request_transport(req);
	s->dest = xstrdup(sip_request_source(req));
	s->identity = xstrdup(identity);
	s->is_privileged = is_priv;
	s->mode = event_mode(req);
	s->expires_ms = now_ms() + expires * 1000;
	s->cseq_block = CSEQ_BLOCK;
	s->acked_seq = s->queued_seq = n->feed_seq;
	s->entries = es;
	s->entry_count = ne;
	sub_register(n, s);
	log_info("notify: %s subscribes (%s, %zu resources, %s, %lds) from %s", identity, mode_names[s->mode], ne,
		 s->transport == SIP_TRANSPORT_TCP ? "tcp" : "udp", expires, s->dest);
	if (expires == 0) {
		/* A fetch (RFC 6665 §4.4.3): the state once, then the end. */
		h.name = "Expires";
		h.value = "0";
		s->is_transient = true;
		respond(req, 200, NULL, &h, 1);
		s->terminating = "timeout";
		full_restart(s);
		sub_send(n, s);
		return;
	}
	subscribe_persist(n, s, req, (unsigned)expires);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

struct load {
	struct notifier *n;
	const char *why;
	uint64_t bad_id;
};

static int load_visit(void *arg, uint64_t id, const void *rec, size_t len)
{
	struct load *l = arg;
	struct sub *s = sub_deserialize(l->n, id, rec, len, &l->why);

	if (!s) {
		l->bad_id = id;
		return 1;
	}
	s->n = l->n;
	if (s->transport == SIP_TRANSPORT_TCP) {
		/* The connection died with the old process: reach the Contact. */
		free(s->dest);
		s->dest = NULL;
	}
	sub_register(l->n, s);
	if (id >= l->n->next_id)
		l->n->next_id = id + 1;
	return 0;
}

static bool is_ncname(const char *s)
{
	if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') ||
	    !strncasecmp(s, "xml", 3))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("-_.", *s)))
			return false;
	return true;
}

enum xdms_err notifier_create(const struct conf *c, struct store *st, const struct xcap_registry *reg,
			      const char *xcap_root_uri, const char *root_path, struct notifier **out,
			      char **why)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	struct store_read *rd;
	struct load l = { .n = n };
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	n->c = c;
	n->st = st;
	n->reg = reg;
	n->root_uri = xstrdup(xcap_root_uri);
	n->root_path = xstrdup(root_path);
	n->next_id = 1;
	pthread_mutex_init(&n->wake_lock, NULL);
	n->digest = digest_policy_create(c);
	n->prefix_count = xcap_registry_count(reg);
	n->prefixes = xcalloc(n->prefix_count ? n->prefix_count : 1, sizeof(*n->prefixes));
	for (size_t i = 0; i < n->prefix_count; i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);

		n->prefixes[i].auid = a;
		if (a->etag_prefix && is_ncname(a->etag_prefix) && strlen(a->etag_prefix) < 20)
			snprintf(n->prefixes[i].prefix, sizeof(n->prefixes[i].prefix), "%s", a->etag_prefix);
		else
			snprintf(n->prefixes[i].prefix, sizeof(n->prefixes[i].prefix), "d%zu", i);
	}
	err = store_read_begin(st, &rd);
	if (!err) {
		err = store_sub_list(rd, load_visit, &l);
		if (!err && l.why)
			err = XDMS_ERR_CORRUPT;
		if (!err)
			err = store_changes_last(rd, &n->feed_seq);
		store_read_end(rd);
	}
	if (err) {
		*why = l.why ? xasprintf("subscription %016" PRIx64 ": %s", l.bad_id, l.why)
			     : xasprintf("reading subscriptions: %s", xdms_err_str(err));
		notifier_destroy(n);
		return err;
	}
	*out = n;
	return XDMS_ERR_OK;
}

struct resume {
	struct sub **subs;
	size_t n, cap;
};

static void collect(struct notifier *n, struct resume *r)
{
	for (size_t i = 0; i < n->by_id.nb; i++) {
		for (struct slot *sl = n->by_id.b[i]; sl; sl = sl->next) {
			for (size_t j = 0; j < sl->n; j++) {
				if (r->n == r->cap) {
					r->cap = r->cap ? r->cap * 2 : 64;
					r->subs = xrealloc(r->subs, r->cap * sizeof(*r->subs));
				}
				r->subs[r->n++] = sl->items[j];
			}
		}
	}
}

static void start_fn(void *arg)
{
	struct notifier *n = arg;
	struct resume r = { 0 };
	int64_t now = now_ms();

	struct store_read *rd;
	struct store_stats stats = { 0 };
	uint64_t first = 0;

	collect(n, &r);
	if (!store_read_begin(n->st, &rd)) {
		if (store_changes_first(rd, &first))
			first = 0;
		store_read_end(rd);
	}
	if (store_stats_get(n->st, &stats))
		stats.last_seq = 0;
	if (!first)
		first = stats.last_seq + 1; /* an empty feed: everything was pruned */
	for (size_t i = 0; i < r.n; i++) {
		struct sub *s = r.subs[i];

		/* Changes this subscriber had not seen were pruned (the server ran
		 * without SIP for longer than store.feed_retention): start over. */
		if (s->acked_seq + 1 < first && s->acked_seq < stats.last_seq) {
			log_warn("notify: changes for subscription %016" PRIx64 " were pruned; sending full state",
				 s->id);
			s->is_full_acked = false;
			s->acked_seq = first - 1;
		}
		s->cseq = s->cseq_block; /* the next NOTIFY records a new block first */
		s->queued_seq = s->acked_seq;
		if (s->acked_seq < n->feed_seq)
			n->feed_seq = s->acked_seq;
		if (!s->is_full_acked)
			full_restart(s);
		if (s->expires_ms <= now) {
			s->terminating = "timeout";
			s->full_pending = false;
		} else {
			expiry_arm(n, s);
		}
	}
	n->is_started = true;
	feed_floor_update(n);
	if (r.n)
		log_info("notify: resumed %zu subscriptions from feed sequence %" PRIu64, r.n, n->feed_seq);
	n->flush_timer = sip_timer_start(n->sip, FLUSH_MS, flush_fire, n);
	n->poll_timer = sip_timer_start(n->sip, POLL_MS, poll_fire, n);
	pump(n);
	kicks_add(n, r.subs, r.n);
	free(r.subs);
}

enum xdms_err notifier_start(struct notifier *n, struct sip_server *sip)
{
	n->sip = sip;
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = true;
	pthread_mutex_unlock(&n->wake_lock);
	if (store_add_commit_listener(n->st, on_commit, n))
		return XDMS_ERR_FULL;
	return sip_server_call(sip, start_fn, n);
}

static void quiesce_fn(void *arg)
{
	struct notifier *n = arg;

	n->is_stopping = true;
	flush(n);
}

void notifier_quiesce(struct notifier *n, unsigned grace_ms)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	if (!n || !n->sip)
		return;
	if (!sip_server_call(n->sip, quiesce_fn, n)) {
		for (unsigned waited = 0; waited < grace_ms; waited += 10) {
			if (!atomic_load(&n->inflight) && !atomic_load(&n->persisting) && n->is_stopping)
				break;
			nanosleep(&pause, NULL);
		}
	}
	/* From here on the SIP server may go away: commits must not reach it. */
	store_remove_commit_listener(n->st, on_commit, n);
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = false;
	pthread_mutex_unlock(&n->wake_lock);
}

void notifier_destroy(struct notifier *n)
{
	struct resume r = { 0 };
	struct pbatch *pb = NULL;

	if (!n)
		return;
	store_remove_commit_listener(n->st, on_commit, n);
	pthread_mutex_lock(&n->wake_lock);
	n->can_wake = false;
	pthread_mutex_unlock(&n->wake_lock);
	collect(n, &r);
	/* The loop is gone: record what the subscribers acknowledged since the
	 * last flush. The write also is a barrier: the writer acknowledges in
	 * order, so every record write queued before it has finished its done
	 * callback (which found can_wake false) when it returns. */
	pb = pbatch_new(n);
	pb->w.done = NULL;
	for (size_t i = 0; i < r.n; i++) {
		struct sub *s = r.subs[i];

		if (s->is_dirty && !s->is_dead && !s->is_transient)
			pbatch_add(pb, s, false);
	}
	if (store_write_run(n->st, &pb->w) && pb->n_ops)
		log_error("notify: could not record subscription progress at shutdown");
	pbatch_free(pb);
	for (size_t i = 0; i < r.n; i++)
		sub_free(r.subs[i]);
	free(r.subs);
	while (n->v_oldest)
		vcache_drop(n, n->v_oldest->key);
	smap_free(&n->by_doc);
	smap_free(&n->by_coll);
	smap_free(&n->by_call);
	smap_free(&n->by_user);
	smap_free(&n->by_id);
	smap_free(&n->vcache);
	digest_policy_destroy(n->digest);
	free(n->prefixes);
	free(n->dirty);
	free(n->kicks);
	free(n->root_uri);
	free(n->root_path);
	pthread_mutex_destroy(&n->wake_lock);
	free(n);
}

void notifier_stats_get(const struct notifier *n, struct notifier_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	out->subscriptions = atomic_load(&((struct notifier *)n)->n_subs);
	out->notifies_sent = atomic_load(&((struct notifier *)n)->n_sent);
	out->notifies_failed = atomic_load(&((struct notifier *)n)->n_failed);
}

enum xdms_err notifier_metrics(void *notifier, struct buf *out)
{
	struct notifier_stats st;

	notifier_stats_get(notifier, &st);
	return buf_printf(out,
			  "# HELP xdms_sip_subscriptions xcap-diff subscriptions held.\n"
			  "# TYPE xdms_sip_subscriptions gauge\n"
			  "xdms_sip_subscriptions %" PRIu64 "\n"
			  "# HELP xdms_sip_notifies_total NOTIFY requests sent since start.\n"
			  "# TYPE xdms_sip_notifies_total counter\n"
			  "xdms_sip_notifies_total %" PRIu64 "\n"
			  "# HELP xdms_sip_notify_failures_total NOTIFYs answered with a failure or not answered.\n"
			  "# TYPE xdms_sip_notify_failures_total counter\n"
			  "xdms_sip_notify_failures_total %" PRIu64 "\n",
			  st.subscriptions, st.notifies_sent, st.notifies_failed);
}
