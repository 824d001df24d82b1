/* SPDX-License-Identifier: MIT */
/*
 * notify/notify_int.h: the notifier's private types and the prototypes its
 * files share. No other folder includes it.
 *
 * Layers, each file calling only those above it in this list:
 *   state.c      a subscription's state and its transitions
 *   entry.c      resource-list entries: parsing, authorisation, matching
 *   change.c     change records (struct nchange) and the version cache
 *   sub.c        subscription records: indexes, persistence (pbatch), flush
 *   body.c       building xcap-diff bodies (full state pages, changes)
 *   send.c       sending NOTIFYs, answers, retries, the end of a subscription
 *   feed.c       reading the change feed, queueing, kicking, the feed floor
 *   subscribe.c  the SUBSCRIBE front
 *   notifier.c   create, start, quiesce, destroy, statistics
 * The xcap-diff documents and patches (diff.h) are below all of them.
 *
 * Threads: everything here runs on the SIP loop thread unless a prototype
 * says otherwise.
 */
#ifndef XDMS_NOTIFY_NOTIFY_INT_H
#define XDMS_NOTIFY_NOTIFY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/smap.h"
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

/* What a subscription owes its subscriber next (state.c has the table). */
enum sub_state { SUB_LIVE = 0, SUB_FULL, SUB_ENDING, SUB_ENDING_FULL, SUB_DEAD };

enum sub_event {
	SUB_EV_FULL_DUE,  /* (re)SUBSCRIBE accepted, or resumed without an acknowledged full state */
	SUB_EV_FULL_SENT, /* the last page of the full state was acknowledged */
	SUB_EV_END,       /* end with what is queued: expired, deactivated */
	SUB_EV_END_FULL,  /* end with the full state: unsubscribe, fetch */
	SUB_EV_GONE,      /* forgotten: at once, or when the NOTIFY in flight is answered */
};

/* What the NOTIFY in flight carries. */
enum sub_flight { FLIGHT_NONE = 0, FLIGHT_PAGE, FLIGHT_CHANGES };

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
	enum sub_state state;   /* changed by sub_transition() only */
	const char *end_reason; /* SUB_ENDING*: the reason of the final NOTIFY */
	enum sub_flight flight;
	bool inflight_final;    /* the NOTIFY in flight is the last one */
	bool block_wait;        /* a record write must be durable before the next NOTIFY */
	/* full state, page by page */
	bool is_full_acked;
	unsigned full_gen, inflight_full_gen; /* a restarted full state outdates the page in flight */
	size_t full_entry;
	char *full_after;
	bool inflight_full_done;
	size_t page_entry;  /* where the page in flight began, to resend it */
	char *page_after;
	bool is_transient, is_dirty;
	uint64_t touch_gen;
	unsigned retries;
	uint64_t mark;
	struct sip_timer *expiry_timer, *window_timer, *retry_timer;
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
	pthread_mutex_t wake_lock; /* feed_on_commit (writer thread) against the SIP server's end */
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

/* state.c */
enum sub_state sub_state_next(enum sub_state st, enum sub_event ev);
const char *sub_state_name(enum sub_state st);
/* Applies @ev to @s (@reason: the end reason of END and END_FULL, static). */
void sub_transition(struct sub *s, enum sub_event ev, const char *reason);
/* Ending or dead: no new changes are queued, a refresh is refused. */
bool sub_is_ending(const struct sub *s);
bool sub_is_full_due(const struct sub *s);

/* A copy of @s, or NULL for NULL or "" (empty ETags and tags mean none). */
static inline char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* entry.c */
char *key_to_sel(const char *key);
const char *auid_prefix(const struct notifier *n, const struct xcap_auid *a);
const struct xcap_auid *auid_of_key(const struct notifier *n, const char *key);
void entry_cleanup(struct entry *e);
int entry_parse(const struct notifier *n, const char *text, const char *identity, bool is_privileged,
		struct entry *e, const char **why);
int entries_from_body(const struct notifier *n, const char *body, size_t len, const char *identity,
		      bool is_privileged, struct entry **out, size_t *count, const char **why);
bool entry_matches(const struct entry *e, const char *key);

/* change.c */
void nchange_put(struct nchange *c);
bool has_secret(const char *text, size_t len, const char *secret);
void vcache_drop(struct notifier *n, const char *key);
const struct vent *vcache_get(struct notifier *n, const char *key);
void vcache_put(struct notifier *n, const char *key, const char *etag, const char *data, size_t len);
struct nchange *nchange_new(struct notifier *n, const struct store_change *c);
void nchange_patch(struct notifier *n, struct store_read *rd, struct nchange *nc,
		   const struct store_change *c, bool wants_agg);

/* sub.c */
void sub_index(struct notifier *n, struct sub *s, bool add);
struct sub *sub_find_dialog(struct notifier *n, const char *call_id, const char *remote_tag,
			    const char *local_tag);
size_t user_sub_count(struct notifier *n, const char *identity);
void sub_free(struct sub *s);
void sub_register(struct notifier *n, struct sub *s);
void sub_unregister(struct notifier *n, struct sub *s);
struct sub *sub_deserialize(const struct notifier *n, uint64_t id, const char *rec, size_t len,
			    const char **why);
void refresh_free(struct refresh *rf);
void pbatch_free(struct pbatch *b);
struct pbatch *pbatch_new(struct notifier *n);
void pbatch_add(struct pbatch *b, const struct sub *s, bool is_delete);
enum xdms_err pbatch_submit(struct notifier *n, struct pbatch *b);
void sub_mark_dirty(struct notifier *n, struct sub *s);
struct sub *sub_by_id(struct notifier *n, uint64_t id);
void sub_flush(struct notifier *n);

/* body.c */
void body_cleanup(struct body *b);
void body_build_full(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b);
size_t body_build_changes(struct notifier *n, struct sub *s, struct store_read *rd, struct body *b);

/* send.c */
void sub_send(struct notifier *n, struct sub *s);
void sub_end(struct notifier *n, struct sub *s, bool is_delete_record);
void sub_expiry_arm(struct notifier *n, struct sub *s);
void sub_kick(struct notifier *n, struct sub *s);

/* feed.c */
void feed_kicks_add(struct notifier *n, struct sub **subs, size_t count);
void feed_pump(struct notifier *n);
void feed_on_commit(void *arg, uint64_t last_seq);
void feed_floor_update(struct notifier *n);
void feed_poll_fire(void *arg);
void feed_flush_fire(void *arg);


/* ---- xcap-diff patches (diff*.c) ---- */

#define DIFF_NONE SIZE_MAX

enum child_kind { CHILD_ELEM, CHILD_TEXT, CHILD_COMMENT, CHILD_PI };

/* One XPath child node: a text node is a maximal run of character data and
 * CDATA sections (XPath 1.0 §5.7). */
struct child {
	enum child_kind kind;
	bool is_ws;    /* text made of plain white space only */
	uint32_t elem; /* CHILD_ELEM: its scan index */
	size_t start, end;
};

struct children {
	struct child *v;
	size_t n, cap;
};

/* A namespace declaration an operation element carries for its selector. */
struct decl {
	const char *prefix;
	size_t prefix_len;
	const char *uri;
};

/* A selector being built, and the declarations it needs. */
struct path {
	struct buf text;
	struct decl *decls;
	size_t decl_n, decl_cap;
};

struct gen_ns {
	const char *uri;
	char *prefix;
};

struct differ {
	const char *ns;       /* the usage's default namespace */
	const char *prefix;   /* written for it */
	struct buf *out;      /* the operations, capped at the new document's size */
	struct gen_ns *gen;   /* generated prefixes for other namespaces */
	size_t gen_n, gen_cap;
	size_t path_max;      /* the longest selector the two documents can need */
};

enum target_kind { TARGET_ELEM, TARGET_ATTR, TARGET_CHILD };

struct target {
	enum target_kind kind;
	uint32_t elem;   /* the element, or the parent of an attribute or child node */
	uint32_t attr;   /* TARGET_ATTR */
	struct child ch; /* TARGET_CHILD: a text, comment or PI node */
};

/* diff_scan.c */
void children_cleanup(struct children *c);
enum xdms_err children_collect(const struct xml_scan *s, uint32_t e, struct children *out);
bool misc_equal(const struct xml_scan *a, const struct xml_scan *b);
enum xdms_err append_standalone(struct buf *out, const struct xml_scan *s, uint32_t e, bool is_marked);
enum xdms_err append_unpatched(struct buf *out, const struct xml_scan *s, uint32_t e, const struct xml_scan *ctx,
			       uint32_t ctx_elem);
enum xdms_err append_value_text(struct buf *out, const char *raw, size_t len);
enum xdms_err value_from_text(const char *text, size_t len, struct buf *out);

/* diff_path.c */
/* A selector of at most @max bytes (struct differ's path_max). */
void path_init(struct path *p, size_t max);
void path_cleanup(struct path *p);
void path_copy(struct path *dst, const struct path *src);
void path_addf(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void differ_reset(struct differ *d);
enum xdms_err path_add_step(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e, size_t pos,
			    size_t total);
enum xdms_err path_of(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e);
void path_add_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a);
char *type_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a);
enum xdms_err op_open(struct differ *d, const char *name, const struct path *sel, const char *extra,
		      bool has_content);
enum xdms_err op_close(struct differ *d, const char *name);
enum xdms_err op_nodes(struct differ *d, const char *name, const struct path *sel, const char *extra,
		       const struct xml_scan *s, const struct children *ch, size_t from, size_t to);

/* diff_topdown.c */
enum xdms_err topdown_patch(struct differ *d, const struct xml_scan *o, const struct xml_scan *n);

#endif
