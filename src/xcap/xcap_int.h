/* SPDX-License-Identifier: MIT */
/* Private to src/xcap. */
#ifndef XDMS_XCAP_INT_H
#define XDMS_XCAP_INT_H

#include <stdint.h>

#include "xcap/xcap.h"

struct xml_scan; /* xml/xml.h */

/* Builds the xcap-caps document (RFC 4825 §12) for @reg into @out. */
enum xdms_err xcap_caps_build(const struct xcap_registry *reg, struct buf *out) XDMS_WUR;


/* ---- node selectors and node operations (RFC 4825 §6.3, §7, §8) -------------------------
 *
 * Pure functions over a document's bytes: no store, no I/O. The document is
 * well-formed UTF-8 XML (it passed xml_parse when it was stored). Results own
 * their memory; release them with xcap_node_result_cleanup().
 */

struct xcap_selector; /* a parsed node selector */

/* What the last step of a selector selects. */
enum xcap_node_kind {
	XCAP_NODE_ELEMENT = 0,
	XCAP_NODE_ATTRIBUTE,  /* ".../@name" */
	XCAP_NODE_NAMESPACES, /* ".../namespace::*" */
};

/*
 * Parses a percent-decoded node selector (the text after "/~~/") with the
 * namespace bindings of @query ("xmlns(p=urn:x)xmlns(q=\"urn:y\")", NULL for
 * none). Unprefixed element names belong to @default_ns (the AUID's default
 * namespace); unprefixed attribute names to no namespace. Returns PARSE for
 * anything outside the RFC 4825 §6.3 grammar, an unbound prefix, a position 0,
 * or a malformed binding; *why then gets a static phrase.
 */
enum xdms_err xcap_selector_parse(const char *node_selector, const char *query, const char *default_ns,
				  struct xcap_selector **out, const char **why) XDMS_WUR;
void xcap_selector_free(struct xcap_selector *sel);
enum xcap_node_kind xcap_selector_kind(const struct xcap_selector *sel);

struct xcap_node_result {
	unsigned status;          /* 200, 201, or the error status (400, 404, 409) */
	struct xcap_error error;  /* when status is 409 */
	/* reads */
	char *body;               /* GET: the selected bytes (owned) */
	size_t body_len;
	/* writes */
	char *new_doc;            /* PUT/DELETE: the whole new document (owned) */
	size_t new_len;
	struct xml_scan *new_scan; /* PUT/DELETE: a scan of new_doc (owned; borrows new_doc, so
				    * it must be freed before new_doc or moved with it) */
	char *ancestor;           /* 409 <no-parent>: node selector of the closest existing
				   * ancestor element, percent-encoded for a URI; "" when only
				   * the document exists (owned) */
	char *detail;             /* a one-line description of the change for the change feed,
				   * "put-element <sel>", "delete-attribute <sel>" ... (owned) */
};

void xcap_node_result_cleanup(struct xcap_node_result *r);

/* Evaluation of a parsed selector, used by the node operations (node.c). */
/* Number of element steps (the terminal @attr or namespace::* not counted). */
size_t xcap_selector_steps(const struct xcap_selector *sel);
/* Evaluates the first @nsteps element steps on @scan (RFC 4825 §6.3) and
 * returns how many elements they select; *match is that element when exactly
 * one, else XML_SCAN_NONE. *unique_steps (may be NULL) gets the largest k <=
 * @nsteps whose first k steps select exactly one element, 0 when none. O(scan). */
size_t xcap_selector_select(const struct xcap_selector *sel, const struct xml_scan *scan, size_t nsteps,
			    uint32_t *match, size_t *unique_steps);
/* Where a new element goes under @parent (RFC 4825 §8.2.3): sets *offset (a
 * byte offset in scan->data; @parent's end tag when it is the last child) and
 * returns true, or false with a phrase in @why when the last step's position
 * cannot be created. @body_ns/@body_local name the body's root element (used
 * for "*" without a position; @body_ns may be NULL when unbound). */
bool xcap_selector_insert_point(const struct xcap_selector *sel, const struct xml_scan *scan, uint32_t parent,
				const char *body_ns, const char *body_local, size_t body_local_len,
				size_t *offset, char *why, size_t why_len);
/* The terminal attribute: namespace ("" for none), local name, and the prefix
 * written in the selector (NULL when unprefixed). Borrowed from @sel. */
void xcap_selector_attr(const struct xcap_selector *sel, const char **ns, const char **local,
			const char **prefix);
/* The first @nsteps element steps as written, percent-encoded for a URI path
 * ("" for 0; the whole selector for more than there are steps). Heap string. */
char *xcap_selector_uri(const struct xcap_selector *sel, size_t nsteps);
/* The whole selector percent-encoded, then "?xmlns(p=uri)..." for the
 * prefixes it uses: one line, no spaces. Heap string. */
char *xcap_selector_describe(const struct xcap_selector *sel);


/* GET of an element (exact bytes), an attribute (its value as written between
 * the quotes) or the namespace bindings in scope (RFC 4825 §10 body). */
void xcap_node_get(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		   struct xcap_node_result *out);

/* PUT of an element or attribute body (RFC 4825 §8.2.1–8.2.4, §8.2.3 placement). */
void xcap_node_put(const char *doc, size_t doc_len, const struct xcap_selector *sel, const char *body,
		   size_t body_len, struct xcap_node_result *out);

/* DELETE of an element or attribute (RFC 4825 §8.4). */
void xcap_node_delete(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		      struct xcap_node_result *out);

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

struct xcap_hook {
	const char *name;
	xcap_check_fn check;   /* may be NULL */
	xcap_commit_fn commit; /* may be NULL */
	bool needs_old;        /* its check compares with the document being replaced */
};

/* The hook called @name, or NULL. */
const struct xcap_hook *xcap_hook_find(const char *name);

enum xdms_err xcap_check_resource_lists(const struct xcap_check *c, struct xcap_error *e);
enum xdms_err xcap_check_feature_handler(const struct xcap_check *c, struct xcap_error *e);
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
