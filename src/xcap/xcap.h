/* SPDX-License-Identifier: MIT */
/*
 * xcap: RFC 4825 without HTTP. URI parsing, preconditions, the registry of
 * application usages (AUIDs), validation, <xcap-error> bodies and the
 * document operations. This module includes no libmicrohttpd, osip or curl
 * header and never logs: callers (http/, xdmsctl) turn its results into
 * responses and log lines.
 *
 * Threads: a registry is built once at start-up and is read-only afterwards.
 * xcap_read() runs on any thread. A write is prepared on the calling thread
 * (parsing and schema validation happen there, in parallel with other
 * requests) and applied by the store's writer thread, which re-checks the
 * preconditions against the document as it is inside the write transaction.
 */
#ifndef XDMS_XCAP_H
#define XDMS_XCAP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/store.h"

/* ---- URIs (RFC 4825 §6) ------------------------------------------------------ */

/* A parsed XCAP request URI. Every string is percent-decoded and owned. */
struct xcap_uri {
	char *auid;
	bool is_global;      /* "global" tree; otherwise "users" */
	char *xui;           /* the user (NULL for global) */
	char *doc_path;      /* the path below users/XUI/ or global/, e.g. "index" */
	char *doc_selector;  /* canonical store key: "AUID/users/XUI/path" or "AUID/global/path" */
	char *node_selector; /* the text after "/~~/", NULL when absent */
	char *query;         /* the raw query (namespace bindings), NULL when absent */
};

/*
 * Parses @path (the raw, still percent-encoded request path) below
 * @root_path ("/xcap-root"). Segments are split on "/" first and decoded one
 * by one, so an encoded "/" inside a XUI stays part of it.
 * Returns NOTFOUND when the path is not below the root or lacks an AUID, a
 * tree, a XUI or a document; PARSE for a malformed percent-encoding or a
 * decoded NUL; TOOBIG when the selector is longer than STORE_SELECTOR_MAX.
 * On error @out is left empty (safe to clean up).
 */
enum xdms_err xcap_uri_parse(const char *root_path, const char *path, const char *query,
			     struct xcap_uri *out) XDMS_WUR;
void xcap_uri_cleanup(struct xcap_uri *uri);

/*
 * Splits a XUI into its user part ("alice" of sip:alice@example.com, the
 * number of tel:+15555550101) and, for sip:/sips:, its host ("" for tel:).
 * False when @xui is not a sip:, sips: or tel: URI, a part is empty, a buffer
 * is too small, or the host has characters a host cannot have.
 */
bool xcap_xui_split(const char *xui, char *user, size_t user_len, char *host, size_t host_len);

/* The Digest realm for a request on @uri: the host part of a sip:/sips: XUI,
 * else @default_realm. Borrowed from @uri or @default_realm. */
const char *xcap_uri_realm(const struct xcap_uri *uri, const char *default_realm, char *buf,
			   size_t buf_len);

/* Decodes %XX escapes of @in (length @len) into a new string. PARSE on a bad
 * escape or a decoded NUL byte. */
enum xdms_err xcap_percent_decode(const char *in, size_t len, char **out) XDMS_WUR;

/* Appends @len bytes of @in to @out for an XCAP URI path: "/" and every RFC
 * 3986 pchar (unreserved, sub-delims including "(" and ")", ":", "@") as
 * they are, every other byte as %XX (upper-case hex). TOOBIG when @out is
 * full (it then holds a prefix of the result). */
enum xdms_err xcap_percent_encode(struct buf *out, const char *in, size_t len) XDMS_WUR;

/* ---- preconditions (RFC 7232 as RFC 4825 §8.5 uses them) ------------------------ */

enum xcap_precond {
	XCAP_PRECOND_OK = 0,
	XCAP_PRECOND_NOT_MODIFIED, /* 304: If-None-Match matched on a read */
	XCAP_PRECOND_FAILED,       /* 412 */
};

/*
 * Evaluates If-Match and If-None-Match (each NULL when absent) against the
 * current ETag (NULL when the document does not exist). ETags in the headers
 * may be quoted or not, in comma-separated lists, or "*". If-Match compares
 * strongly (a W/ tag never matches); If-None-Match compares weakly.
 */
enum xcap_precond xcap_precond_eval(const char *if_match, const char *if_none_match,
				    const char *cur_etag, bool is_read);

/* ---- errors (RFC 4825 §11) -------------------------------------------------------- */

#define XCAP_ERROR_MAP(X)                                        \
	X(NOT_WELL_FORMED, "not-well-formed")                    \
	X(NOT_XML_FRAG, "not-xml-frag")                          \
	X(NOT_XML_ATT_VALUE, "not-xml-att-value")                \
	X(NOT_UTF8, "not-utf-8")                                 \
	X(NO_PARENT, "no-parent")                                \
	X(CANNOT_INSERT, "cannot-insert")                        \
	X(CANNOT_DELETE, "cannot-delete")                        \
	X(UNIQUENESS_FAILURE, "uniqueness-failure")              \
	X(CONSTRAINT_FAILURE, "constraint-failure")              \
	X(SCHEMA_VALIDATION_ERROR, "schema-validation-error")

enum xcap_error_kind {
#define XCAP_ERROR_ENUM(name, element) XCAP_ERROR_##name,
	XCAP_ERROR_MAP(XCAP_ERROR_ENUM)
#undef XCAP_ERROR_ENUM
	XCAP_ERROR__COUNT
};

#define XCAP_PHRASE_MAX 512

/* One 409 conflict, carried as data from where it is found to where it is sent. */
struct xcap_error {
	enum xcap_error_kind kind;
	char phrase[XCAP_PHRASE_MAX]; /* "" for none */
	char *ancestor;   /* no-parent: closest existing ancestor's URI; owned, may be NULL */
	char *field;      /* uniqueness-failure: <exists field>; owned, may be NULL */
	char *alt_value;  /* uniqueness-failure: one <alt-value>; owned, may be NULL */
};

/* The element name of @kind ("not-well-formed"). */
const char *xcap_error_element(enum xcap_error_kind kind);
/* Sets kind and a printf-formatted phrase; frees nothing. */
void xcap_error_set(struct xcap_error *e, enum xcap_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void xcap_error_cleanup(struct xcap_error *e);
/* Appends the application/xcap-error+xml document for @e to @out. */
enum xdms_err xcap_error_render(const struct xcap_error *e, struct buf *out) XDMS_WUR;

/* ---- application usages ---------------------------------------------------------------- */

struct xcap_hook; /* xcap_int.h */

enum xcap_scope { XCAP_SCOPE_USERS = 1, XCAP_SCOPE_GLOBAL = 2, XCAP_SCOPE_BOTH = 3 };

/* One application usage, from a descriptor file (schemas/auids/<name>.auid). */
struct xcap_auid {
	char *name;             /* "org.openmobilealliance.cab-pcc" */
	char *ns;               /* default document namespace */
	char *mime;             /* MIME type of its documents */
	char *default_document; /* "index" */
	char *root;             /* root element's local name */
	char *etag_prefix;      /* short name used in ETags */
	char *schema_name;      /* file name of the XSD; NULL = well-formedness only */
	enum xcap_scope scope;
	bool is_generated;      /* server-generated, read-only (xcap-caps) */
	size_t max_document;    /* bytes */
	struct xml_schema *schema; /* compiled; NULL when schema_name is NULL */
	const struct xcap_hook *hook; /* semantic rules in C (descriptor key `hook`); NULL for none */
	bool is_admin_only;     /* only administrators write it, in every tree */
};

struct xcap_registry;

struct xcap_registry_options {
	const char *descriptor_dir; /* extra *.auid and *.xsd; NULL or "" = none */
	size_t max_document;        /* default for descriptors that set none */
};

/*
 * Loads the built-in descriptors, then those in opt->descriptor_dir (which may
 * replace a built-in one of the same name), and compiles every schema. Any
 * broken descriptor or schema fails the whole load with a sentence in *why
 * naming the file (heap; caller frees), so a server never starts half-configured.
 */
enum xdms_err xcap_registry_create(const struct xcap_registry_options *opt, struct xcap_registry **out,
				   char **why) XDMS_WUR;
void xcap_registry_destroy(struct xcap_registry *reg);
/* The local name of the element of @a's documents whose content is secret
 * (a Feature Handler request's <credentials>): change notifications never
 * carry it. NULL for none. */
const char *xcap_auid_secret(const struct xcap_auid *a);
/* NULL when unknown. Borrowed for the registry's lifetime. */
const struct xcap_auid *xcap_registry_find(const struct xcap_registry *reg, const char *name);
size_t xcap_registry_count(const struct xcap_registry *reg);
const struct xcap_auid *xcap_registry_at(const struct xcap_registry *reg, size_t i);

/* ---- identities and access (RFC 4825 §5.7, SPEC §3.5) ---------------------------------- */

enum xcap_role {
	XCAP_ROLE_USER = 0, /* may use users/<own XUI>/ and read global documents */
	XCAP_ROLE_SERVER,   /* trusted server: every user's documents, global read */
	XCAP_ROLE_ADMIN,    /* everything, including writing global documents */
};

struct conf;

/* The role of @identity under configuration @c: ADMIN when it is one of
 * auth.admin_identities, else SERVER when one of auth.server_identities,
 * else USER. The one place this is decided (XCAP requests, SUBSCRIBEs).
 * Any thread. */
enum xcap_role xcap_role_of(const struct conf *c, const char *identity);

struct xcap_identity {
	const char *id; /* the authenticated or asserted identity, e.g. "sip:alice@example.com" */
	enum xcap_role role;
};

/* True when @who may read (or, with @is_write, change) the resource at @uri. */
bool xcap_access_allowed(const struct xcap_uri *uri, const struct xcap_identity *who, bool is_write);

/* ---- the service ---------------------------------------------------------------------------- */

struct xcap;

struct xcap_options {
	const char *root_path; /* "/xcap-root" */
	const char *root_uri;  /* absolute XCAP root for bodies ("" = build from the request's base) */
	unsigned max_depth;    /* XML nesting limit */
	size_t max_binary;     /* largest embedded image (pres-content), bytes; 0 = no limit */
	/* Accept a whole-document PUT without Content-Type or with a generic one
	 * (application/xml, text/xml, application/x-www-form-urlencoded) when
	 * its body is the usage's document; false = 415 (RFC 4825 §8.2.1). */
	bool is_type_lenient;
	/* Check an element PUT that replaces an element by one of the same name
	 * where it happens (the element in context, the uniqueness rules it
	 * touches) instead of over the whole document; false = always check the
	 * whole new document (the reference the local checks are tested against). */
	bool is_incremental;
	/* Bytes of stored documents kept with their scans for element reads and
	 * writes (xcap/cache.c); 0 = none. */
	size_t scan_cache;
};

/* Creates the service over @st and @reg (both borrowed; they must outlive it).
 * Builds the xcap-caps document. */
enum xdms_err xcap_create(struct store *st, const struct xcap_registry *reg, const struct xcap_options *opt,
			  struct xcap **out) XDMS_WUR;
void xcap_destroy(struct xcap *x);
const struct xcap_registry *xcap_registry_get(const struct xcap *x);

enum xcap_method { XCAP_METHOD_GET, XCAP_METHOD_HEAD, XCAP_METHOD_PUT, XCAP_METHOD_DELETE, XCAP_METHOD_OTHER };

struct xcap_request {
	enum xcap_method method;
	const struct xcap_uri *uri;
	const char *content_type;  /* NULL when absent */
	const char *if_match;      /* NULL when absent */
	const char *if_none_match; /* NULL when absent */
	const char *body;          /* must stay valid until the write is finished */
	size_t body_len;
	const struct xcap_identity *who;
	const char *base_url;      /* "http://host:port", for absolute URIs in bodies */
	/* Moving a user between shards (xdmsctl user import/purge); NULL/false otherwise: */
	const char *keep_etag;     /* a whole-document PUT stores this ETag, not a fresh one */
	bool is_move;              /* the write passes the user's move freeze (store.h) */
	bool is_commit_ack;        /* told at its commit, not its flush (store.h): a durable
				      write of the caller's follows */
};

/* ---- outcomes ------------------------------------------------------------------------------
 *
 * What an XCAP operation decided, as a kind: xcap never writes an HTTP
 * status. http/ maps each kind to its status and reason phrase in one table
 * (http_status_of(), src/http/status.c); the programs that run xcap without
 * HTTP (xdmsctl, the IWF) use the same table for their messages.
 */
#define XCAP_OUTCOME_MAP(X)                                                       \
	X(OK, "done (a read, a replace or a delete)")                             \
	X(CREATED, "a document, element or attribute was created")                \
	X(NOT_MODIFIED, "If-None-Match matched on a read")                        \
	X(BAD_REQUEST, "malformed node selector")                                 \
	X(FORBIDDEN, "the identity may not access or make this change")           \
	X(NOT_FOUND, "no such usage, tree, document or node")                     \
	X(NOT_ALLOWED, "the method is not allowed on this resource")              \
	X(CONFLICT, "refused with an <xcap-error> document (RFC 4825 §11)")       \
	X(PRECONDITION_FAILED, "If-Match or If-None-Match failed")                \
	X(TOO_LARGE, "the answer would be too large")                             \
	X(URI_TOO_LONG, "the document selector is too long to store")             \
	X(UNSUPPORTED_TYPE, "the body's Content-Type does not fit the resource")  \
	X(INTERNAL, "a storage failure or a stored document that cannot be read") \
	X(UNAVAILABLE, "shutting down, or the user is moving to another shard")   \
	X(STORE_FULL, "the store is full; nothing was written")

enum xcap_outcome {
#define XCAP_OUTCOME_ENUM(name, text) XCAP_OUTCOME_##name,
	XCAP_OUTCOME_MAP(XCAP_OUTCOME_ENUM)
#undef XCAP_OUTCOME_ENUM
	XCAP_OUTCOME__COUNT
};

/* The symbolic name ("NOT_FOUND") of @o. Never NULL. */
const char *xcap_outcome_name(enum xcap_outcome o);

/* OK or CREATED. */
static inline bool xcap_outcome_is_success(enum xcap_outcome o)
{
	return o == XCAP_OUTCOME_OK || o == XCAP_OUTCOME_CREATED;
}

struct xcap_response {
	enum xcap_outcome outcome;
	const char *content_type; /* static or registry-owned; NULL for no body type */
	struct buf body;          /* owned; initialize with xcap_response_init */
	char etag[STORE_ETAG_MAX]; /* "" when the response carries no ETag */
	const char *allow;        /* for NOT_ALLOWED: the Allow header value */
};

void xcap_response_init(struct xcap_response *r);
void xcap_response_cleanup(struct xcap_response *r);

/*
 * Answers GET and HEAD (HEAD gets the same headers and body; the HTTP layer
 * drops the body). The caller has authenticated the request already; access
 * control, preconditions and every error outcome are decided here.
 */
void xcap_read(struct xcap *x, const struct xcap_request *req, struct xcap_response *resp);

struct xcap_write; /* a prepared PUT or DELETE */

/*
 * Prepares a PUT or DELETE: access, method, Content-Type, size, UTF-8,
 * well-formedness, schema and application-usage checks, and a first
 * precondition check against the committed document. Returns NULL when the
 * request is already answered (@resp holds the error); otherwise a write for
 * xcap_write_submit(), owned by the caller until xcap_write_finish().
 */
struct xcap_write *xcap_write_prepare(struct xcap *x, const struct xcap_request *req,
				      struct xcap_response *resp);

/*
 * Queues a prepared write on the store's writer thread. @done(@arg) runs on
 * that thread once the outcome is known; it must not block. Returns BUSY when
 * the store is closing (then @done is not called, and xcap_write_finish()
 * answers UNAVAILABLE).
 */
enum xdms_err xcap_write_submit(struct xcap *x, struct xcap_write *w, void (*done)(void *arg),
				void *arg) XDMS_WUR;

/* Runs a prepared write synchronously (not from the writer thread). */
void xcap_write_run(struct xcap *x, struct xcap_write *w);

/* Turns the outcome into @resp and frees @w. Call after done ran (or after
 * xcap_write_run). */
void xcap_write_finish(struct xcap_write *w, struct xcap_response *resp);

struct xml_scan; /* xml/xml.h */

/* ---- node selectors and node operations (RFC 4825 §6.3, §7, §8) -------------------------
 *
 * Pure functions over a document's bytes: no store, no I/O. Public because
 * the notifier (src/notify) evaluates selectors to build xcap-diff patches. The document is
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
	enum xcap_outcome outcome; /* OK, CREATED, or NOT_FOUND, NOT_ALLOWED, CONFLICT, INTERNAL */
	struct xcap_error error;  /* when the outcome is CONFLICT */
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
	/* xcap_node_replace_local() only */
	uint32_t edited;          /* the new element's index in new_scan */
	char *context;            /* the new element where it sits: its ancestors' start
				   * tags, the element, their end tags (owned) */
	size_t context_len;
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
/* True when element @e of @scan passes the last element step's name and
 * attribute tests (its position is not looked at). */
bool xcap_selector_last_matches(const struct xcap_selector *sel, const struct xml_scan *scan, uint32_t e);
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


/* The node operations below take a stored document as @doc: bytes that were
 * parsed and checked when they were written. They scan it with
 * xml_scan_build_stored, which trusts those checks (other bytes give a wrong
 * answer or INTERNAL, never an out-of-bounds read); a client's body is
 * always scanned with the checks. */

/* GET of an element (exact bytes), an attribute (its value as written between
 * the quotes) or the namespace bindings in scope (RFC 4825 §10 body). */
void xcap_node_get(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		   struct xcap_node_result *out);

/* PUT of an element or attribute body (RFC 4825 §8.2.1–8.2.4, §8.2.3 placement). */
void xcap_node_put(const char *doc, size_t doc_len, const struct xcap_selector *sel, const char *body,
		   size_t body_len, struct xcap_node_result *out);

/*
 * The common element PUT, checked where it happens instead of over the whole
 * document: the selector selects one element, not the root, and the body is
 * one element with the same expanded name that the selector still selects.
 * @scan is a scan of @doc (borrowed; NULL: scanned here). Returns true with
 * the result xcap_node_put would give (outcome OK, new_doc, new_scan,
 * detail), plus edited and context for the caller's checks of the new
 * element (its usage's rules and its schema type in context: see
 * xml_schema_is_local). Returns false, with @out empty, whenever any of this
 * does not hold or anything would be refused: the caller then runs
 * xcap_node_put, which decides and words the refusal. O(elements) with no
 * parsing of the document; the body is parsed on its own.
 */
bool xcap_node_replace_local(const char *doc, size_t doc_len, const struct xml_scan *scan,
			     const struct xcap_selector *sel, const char *body, size_t body_len,
			     struct xcap_node_result *out);

/* xcap_node_get on a scan of @doc made earlier (borrowed). */
void xcap_node_get_scanned(const char *doc, size_t doc_len, const struct xml_scan *scan,
			   const struct xcap_selector *sel, struct xcap_node_result *out);

/* DELETE of an element or attribute (RFC 4825 §8.4). */
void xcap_node_delete(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		      struct xcap_node_result *out);

#endif
