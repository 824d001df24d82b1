/* SPDX-License-Identifier: MIT */
/* Private to src/xcap. */
#ifndef XDMS_XCAP_INT_H
#define XDMS_XCAP_INT_H

#include <stdint.h>

#include "xcap/xcap.h"

struct xml_scan; /* xml/xml.h */

/* ---- the service and what its reads (read.c) and writes (write.c) share (ops.c) -------- */

#define ALLOW_DOCUMENT "GET, HEAD, PUT, DELETE"
#define ALLOW_READ_ONLY "GET, HEAD"
#define XCAP_EL_TYPE "application/xcap-el+xml"
#define XCAP_ATT_TYPE "application/xcap-att+xml"
#define XCAP_NS_TYPE "application/xcap-ns+xml"

struct xcap {
	struct store *st;
	const struct xcap_registry *reg;
	char *root_path;
	char *root_uri;
	unsigned max_depth;
	size_t max_binary; /* embedded binary content limit (pres-content) */
	bool is_type_lenient; /* xcap_options.is_type_lenient */
	bool is_incremental;  /* xcap_options.is_incremental */
	struct xcap_cache *cache; /* xcap_options.scan_cache; NULL when 0 */
	char *caps;      /* the xcap-caps document */
	size_t caps_len;
	char caps_etag[STORE_ETAG_MAX];
};

/* ---- the scan cache (cache.c) ----------------------------------------------------------
 *
 * Stored document versions, named by selector and ETag, with their scans.
 * A view is immutable and shared; whoever got one from get or put holds a
 * reference until xcap_cache_release(). Any thread. A NULL cache (size 0)
 * keeps nothing: get misses, put hands back an unshared view.
 */
struct xcap_cache;
struct xcap_view;

/* NULL when @max_bytes is 0. */
struct xcap_cache *xcap_cache_create(size_t max_bytes);
void xcap_cache_destroy(struct xcap_cache *c);
/* The cached version @etag of @selector, or NULL. */
const struct xcap_view *xcap_cache_get(struct xcap_cache *c, const char *selector, const char *etag);
/* Makes a view of @data (@len bytes, taken) and @scan (taken; it borrows
 * @data), keeps it when it fits, and returns it. */
const struct xcap_view *xcap_cache_put(struct xcap_cache *c, const char *selector, const char *etag, char *data,
				       size_t len, struct xml_scan *scan);
void xcap_cache_release(struct xcap_cache *c, const struct xcap_view *v);
/* The cached view of version @etag of @selector, else a new one made from a
 * copy of @data (and kept when it fits); NULL without a cache or when the
 * document does not scan. Release it with xcap_cache_release(x->cache, v). */
const struct xcap_view *xcap_view_of(struct xcap *x, const char *selector, const char *etag, const char *data,
				     size_t len);
/* The document's bytes and its scan, valid while the view is held. */
const char *xcap_view_data(const struct xcap_view *v, size_t *len);
const struct xml_scan *xcap_view_scan(const struct xcap_view *v);

/* A short plain-text answer (@outcome and one sentence) for outcomes that
 * have no XCAP body. */
void xcap_answer(struct xcap_response *r, enum xcap_outcome outcome, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A CONFLICT answer with the <xcap-error> document of @e. */
void xcap_answer_conflict(struct xcap_response *r, const struct xcap_error *e);

/*
 * The checks every method shares: the AUID exists and serves this tree, the
 * identity may touch it, and the resource kind is one this server supports.
 * Returns the usage, or NULL with @resp filled.
 */
const struct xcap_auid *xcap_resolve(struct xcap *x, const struct xcap_request *req, bool is_write,
				     struct xcap_response *resp);

/* The absolute HTTP URI of the resource with selector @sel (the configured
 * XCAP root URI, or @base_url with the root path, then @sel percent-encoded).
 * Heap string. */
char *xcap_resource_uri(const struct xcap *x, const char *base_url, const char *sel);
/* The absolute HTTP URI of the request's document. Heap string. */
char *xcap_document_uri(const struct xcap *x, const struct xcap_request *req);

/* Builds the xcap-caps document (RFC 4825 §12) for @reg into @out. */
enum xdms_err xcap_caps_build(const struct xcap_registry *reg, struct buf *out) XDMS_WUR;


/* ---- application-usage hooks (one file per usage with semantics) ----------------------
 *
 * A usage's descriptor may name a C hook (`hook = NAME`). Its check runs on
 * the store's writer thread inside the write transaction, after the schema,
 * with the document as it is at that instant and the document the write
 * would leave, so rules that compare old and new (the Feature Handler's
 * ownership rule) and rules about the whole document (uniqueness) see
 * exactly what will be committed. It is pure: no I/O, no store access.
 */
struct xcap_check {
	const struct xcap_auid *auid;
	const struct xcap_identity *who;
	const char *selector;          /* the document selector */
	const struct xml_scan *old_scan; /* NULL when the document is being created, or when
					  * the hook does not need it (needs_old false) */
	const struct xml_scan *new_scan; /* NULL when the document is being deleted */
	size_t max_binary;             /* limit for embedded binary content (pres-content) */
};

/*
 * Returns OK; CONFLICT with *e filled (answered 409 with that error); DENIED
 * with e->phrase set (answered 403: the identity may not make this change).
 */
typedef enum xdms_err (*xcap_check_fn)(const struct xcap_check *c, struct xcap_error *e);

/*
 * Store-wide effects of a write (indexes over all documents), run inside
 * the write's transaction after the document is stored; a non-OK return rolls
 * the whole write back. Same results as xcap_check_fn.
 */
typedef enum xdms_err (*xcap_commit_fn)(const struct xcap_check *c, struct store_txn *txn, struct xcap_error *e);

/*
 * The check of one replaced element (xcap_node_replace_local): @c->new_scan is
 * the whole new document, @edited the new element in it; the document was
 * accepted by the check before the change. OK when the rules hold for the
 * whole new document, CONFLICT when they may not (the caller then runs the
 * full check, which words the refusal).
 */
typedef enum xdms_err (*xcap_check_edit_fn)(const struct xcap_check *c, uint32_t edited, struct xcap_error *e);

struct xcap_hook {
	const char *name;
	xcap_check_fn check;   /* may be NULL */
	xcap_check_edit_fn check_edit; /* may be NULL: check runs on the whole new document */
	xcap_commit_fn commit; /* may be NULL */
	bool needs_old;        /* its check compares with the document being replaced */
	const char *secret;    /* local name of an element whose content must never leave the
				* server in a change notification (NULL: none) */
};

/* The hook called @name, or NULL. */
const struct xcap_hook *xcap_hook_find(const char *name);

enum xdms_err xcap_check_resource_lists(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_check_resource_lists_edit(const struct xcap_check *c, uint32_t edited, struct xcap_error *e);
enum xdms_err xcap_check_feature_handler(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_commit_feature_handler(const struct xcap_check *c, struct store_txn *txn,
					  struct xcap_error *e);
enum xdms_err xcap_check_pcc(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_check_pres_content(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_check_rls_services(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_commit_rls_services(const struct xcap_check *c, struct store_txn *txn, struct xcap_error *e);

/*
 * The node selector of element @e of @scan with 1-based positions among
 * same-named siblings ("resource-lists/list[1]/entry[2]"), using local names
 * (every step in the document's default namespace), appended to @out.
 */
enum xdms_err xcap_scan_path(const struct xml_scan *scan, uint32_t e, struct buf *out) XDMS_WUR;

/*
 * RFC 4826 §3.4 uniqueness inside one <list> (or <resource-lists>) element
 * @parent and, recursively, its nested lists. CONFLICT with *e set.
 */
enum xdms_err xcap_lists_check(const struct xml_scan *scan, uint32_t parent, struct xcap_error *e);

/* True when element @e is @local in namespace @ns. */
bool xcap_scan_is(const struct xml_scan *scan, uint32_t e, const char *ns, const char *local);
/* The first child of @e (XML_SCAN_NONE for the first of the document's root
 * when @e is XML_SCAN_NONE) at or after @from that is @local in @ns, or
 * XML_SCAN_NONE. Iterate with from = the previous match's next_sibling. */
uint32_t xcap_scan_next(const struct xml_scan *scan, uint32_t from, const char *ns, const char *local);
/* The decoded value of the unprefixed attribute @local of @e, as a new string,
 * or NULL when it is absent or malformed. */
char *xcap_scan_attr(const struct xml_scan *scan, uint32_t e, const char *local);

#endif
