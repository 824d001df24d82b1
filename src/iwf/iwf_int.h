/* SPDX-License-Identifier: MIT */
/* Private to src/iwf. */
#ifndef XDMS_IWF_INT_H
#define XDMS_IWF_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "iwf/iwf.h"

#define IWF_PCC_AUID "org.openmobilealliance.cab-pcc"
#define IWF_PCC_NS "urn:oma:xml:cab:pcc"
#define IWF_FH_AUID "org.openmobilealliance.cab-feature-handler"
#define IWF_FH_NS "urn:oma:xml:cab:feature-handler"
#define IWF_AB_AUID "org.openmobilealliance.cab-address-book"
#define IWF_AB_NS "urn:oma:xml:cab:address-book"
#define IWF_XCARD_NS "urn:ietf:params:xml:ns:vcard-4.0"
#define IWF_ADAPTER_AUID "org.xdmsd.iwf-adapter"
#define IWF_ADAPTER_NS "urn:xdmsd:xml:iwf-adapter"
#define IWF_XSLT_AUID "org.xdmsd.iwf-xslt"
#define IWF_MAX_DEPTH 64
#define IWF_REASON_MAX 480
#define IWF_MAX_PAGES_DEFAULT 50
#define IWF_VALIDATOR_MAX 512 /* = STORE_WATCH_VALIDATOR_MAX */

/* ---- outcomes ---------------------------------------------------------------- */

/* What a step of a job came to: a SPEC §4.3 code, whether trying again later
 * may help, and a reason a person can act on (never a credential). */
struct iwf_result {
	unsigned code;
	bool is_transient;
	char reason[IWF_REASON_MAX];
};

void iwf_result_set(struct iwf_result *r, unsigned code, bool is_transient, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- adapters (adapter.c) ---------------------------------------------------------- */

enum iwf_auth { IWF_AUTH_NONE = 0, IWF_AUTH_BASIC, IWF_AUTH_BEARER, IWF_AUTH_DIGEST, IWF_AUTH_OAUTH2 };

/* What an `http` adapter's 3rd party speaks: XML as is, or JSON turned into
 * (and back from) its XPath 3.1 XML representation (src/json). */
enum iwf_format { IWF_FORMAT_XML = 0, IWF_FORMAT_JSON };

/* Where a call's credential is sealed (cred.c's owner and name), so that a
 * rotated OAuth refresh token replaces it. NULL members: nowhere. */
struct iwf_seal {
	const char *owner;
	const char *name;
};

/*
 * The paging state of one user at one adapter (adapter_http.c): a sync
 * token or a delta link the 3rd party gave at the end of the last import,
 * kept in the store's secrets as (XUI, "sync:" + adapter id). A fetch reads
 * it into @used and puts the 3rd party's new one in @next; the caller
 * stores @next (iwf_sync_save) only once what was fetched is stored.
 */
struct iwf_sync {
	char *used;     /* heap; NULL = a full sync */
	char *next;     /* heap; NULL = the 3rd party gave none */
	bool is_delta;  /* the data fetched is changes since @used */
	bool is_reset;  /* @used had expired (HTTP 410): a full sync was made */
	unsigned pages; /* pages read */
};

struct iwf_adapter;
struct iwf_env;

/* One call of an adapter to its 3rd party: who calls, through which
 * adapter, where (the adapter's URL, expanded) and with which credentials
 * (the request's, or the adapter's own). All borrowed. */
struct iwf_call {
	const struct iwf_env *env;
	void *curl;                  /* the worker's handle */
	const struct iwf_adapter *a;
	const char *url;
	const char *username, *password, *token;
	/* Added for OAuth 2.0 and paging; zero = unused. */
	const char *xui;             /* the user the call is for */
	struct iwf_seal seal;        /* where the request's credential is sealed */
	struct iwf_sync *sync;       /* paging state to start from and update; NULL = none */
	const char *remote_user; /* the request's <remote-user>; NULL when none */
};

/*
 * One adapter kind, as curl's backends: the defaults its documents start
 * from, and the functions that reach the 3rd party. A new kind is a file
 * adapter_<kind>.c that defines its struct iwf_kind, and a row in
 * adapter.c's table. The functions run on a worker; they fill @r (SPEC
 * §4.3 codes) when they fail.
 */
struct iwf_kind {
	const char *name;
	const char *content_type;  /* of what is sent on export */
	const char *import_method;
	const char *export_method;
	const char *import_xslt;   /* default transforms (embedded xslt/ files); NULL = required */
	const char *export_xslt;
	enum iwf_auth auth;
	/* Import: the user's external profile as the 3rd party gives it, in
	 * @body (created with the adapter's cap). */
	enum xdms_err (*fetch)(const struct iwf_call *c, struct buf *body, struct iwf_result *r);
	/* Export: sends @data (the transformed PCC part); *status is the 3rd
	 * party's HTTP status, its answer goes to @body. */
	enum xdms_err (*send)(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			      struct iwf_result *r);
	/* Subscribe profile (room for a later kind; NULL: not supported):
	 * subscribe to changes of the external profile. */
	enum xdms_err (*subscribe)(const struct iwf_call *c, struct iwf_result *r);
	/* Subscribe profile, watched by polling (NULL: the kind cannot be
	 * watched): the external profile, only if it changed since @validator
	 * (what the kind gave last time: an ETag, a Last-Modified date, a sync
	 * token; "" = fetch whatever there is). On a change, *is_changed is
	 * true, @body holds the profile as fetch() gives it and @new_validator
	 * what to send next time ("" when the 3rd party gives none). */
	enum xdms_err (*poll)(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			      bool *is_changed, struct buf *body, struct iwf_result *r);
	/* Kinds whose 3rd party holds address books (carddav): card-level
	 * calls for the address-book target (book.c). NULL otherwise. */
	const struct iwf_book_ops *book;
};

/* ---- address books at a 3rd party (adapter_carddav.c) ----------------------------------- */

#define IWF_CARD_ETAG_MAX 256
#define IWF_BOOK_MAX_CARDS 20000   /* members of one book we read */
#define IWF_CARD_MAX (256 * 1024)  /* bytes of one vCard */
#define IWF_PHOTO_INLINE_MAX 8192  /* characters of a data: URI photo kept in a contact (book.c) */

/* One member of a book as a listing gives it: gone when etag is NULL. */
struct iwf_book_entry {
	char *href;
	char *etag;
};

struct iwf_book_list {
	struct iwf_book_entry *entries;
	size_t count;
	char *token;    /* the book's new sync-token (heap), NULL when it has none */
	bool is_full;   /* every member is listed: a member not listed is gone */
	bool is_sync;   /* the answer came from sync-collection (RFC 6578) */
	bool was_reset; /* the stored token was refused (403 valid-sync-token): full resync */
	unsigned calls; /* HTTP requests made */
};
void iwf_book_list_cleanup(struct iwf_book_list *l);

/* A card read: @href and @etag as the 3rd party gave them, @data the vCard
 * (NULL for a card over IWF_CARD_MAX, not read; @len is then its size). */
typedef enum xdms_err (*iwf_card_fn)(void *arg, const char *href, const char *etag, const char *data,
				     size_t len);

struct iwf_book_ops {
	/* The URL of the user's address book (heap): the adapter's URL when
	 * it is one; else found from it (RFC 6764 well-known URI, principal,
	 * addressbook-home-set), choosing the book named @remote_user or the
	 * only one. */
	enum xdms_err (*locate)(const struct iwf_call *c, const char *remote_user, char **book_url,
				unsigned *calls, struct iwf_result *r);
	/* Members changed since @token (NULL = all, then is_full). */
	enum xdms_err (*list)(const struct iwf_call *c, const char *book_url, const char *token,
			      struct iwf_book_list *out, struct iwf_result *r);
	/* Reads the cards at @hrefs in bounded batches; @fn for each one found. */
	enum xdms_err (*fetch)(const struct iwf_call *c, const char *book_url, const char *const *hrefs,
			       size_t count, iwf_card_fn fn, void *arg, unsigned *calls, struct iwf_result *r);
	/* Writes a card: If-Match @if_match (update) or If-None-Match: *
	 * (@if_match NULL: create). *status is the 3rd party's (412: changed
	 * since); the new ETag goes to @etag ("" when the answer had none). */
	enum xdms_err (*put)(const struct iwf_call *c, const char *book_url, const char *href, const char *if_match,
			     const char *data, size_t len, char etag[IWF_CARD_ETAG_MAX], long *status,
			     struct iwf_result *r);
	/* Deletes a card with If-Match @if_match. */
	enum xdms_err (*del)(const struct iwf_call *c, const char *book_url, const char *href, const char *if_match,
			     long *status, struct iwf_result *r);
	/* Added for JSON APIs (book_json.c); zero = unused. */
	/* The cards the calls above give and take are xCard (a <vcards>
	 * document holding one <vcard>), not vCard text; they become contacts
	 * by xcard2pcc.xsl and are written from pcc2xcard.xsl. */
	bool is_xcard;
	/* A listing that carries the cards themselves: as list, with @fn
	 * called for each member present (its data as fetch gives it). */
	enum xdms_err (*list_cards)(const struct iwf_call *c, const char *book_url, const char *token,
				    struct iwf_book_list *out, iwf_card_fn fn, void *arg, struct iwf_result *r);
	/* A 3rd party that names new cards itself: creates one, its href in
	 * *href (heap). NULL: put without If-Match at an href of our own. */
	enum xdms_err (*create)(const struct iwf_call *c, const char *book_url, const char *data, size_t len,
				char **href, char etag[IWF_CARD_ETAG_MAX], long *status, struct iwf_result *r);
};

/* One JSON write of a JSON adapter (adapter_http.c): @method on @url with
 * the adapter's authentication, @data (NULL: no body) as application/json,
 * If-Match @if_match (NULL: none); the answer's ETag header to @etag. */
enum xdms_err iwf_http_write(const struct iwf_call *c, const char *method, const char *url, const char *if_match,
			     const char *data, size_t len, struct buf *body, char etag[IWF_CARD_ETAG_MAX], long *status,
			     struct iwf_result *r) XDMS_WUR;

/* The address books of the http kind with format json (book_json.c). */
extern const struct iwf_book_ops iwf_json_book;
/* The import transform's output @xml (a <book> of <entry id etag removed>
 * in urn:xdmsd:xml:iwf-book, each holding an xCard <vcard>) as entries of
 * @out (zeroed by the caller), @fn (NULL: none) for each present one with
 * its card as a <vcards> document ("" when it has none). An entry without
 * an id, or more than IWF_BOOK_MAX_CARDS, fails the whole listing: PARSE
 * or TOOBIG with @r set; @out then holds what was read. */
enum xdms_err iwf_json_book_read(const char *adapter_id, const char *xml, size_t len, struct iwf_book_list *out,
				 iwf_card_fn fn, void *arg, struct iwf_result *r) XDMS_WUR;
/* @tmpl with its first {id} replaced by @id, percent-encoded but for
 * A-Z a-z 0-9 - . _ ~ / (heap); @tmpl as it is when it has no {id} or @id
 * is NULL; NULL when @id is empty or has a "." or ".." segment. */
char *iwf_json_book_item_path(const char *tmpl, const char *id);

/* The URL of @href (a path or an absolute URL) on the 3rd party of
 * @book_url (heap); NULL when it names another host. */
char *iwf_dav_url(const char *book_url, const char *href);

/* The kinds (adapter_xcap.c, adapter_http.c). */
extern const struct iwf_kind iwf_kind_xcap;
extern const struct iwf_kind iwf_kind_http;
extern const struct iwf_kind iwf_kind_carddav;

/* The plain HTTP calls of adapter_http.c, which other kinds that talk HTTP
 * use as they are: the adapter's import (export) method on its URL, with
 * its content type, timeouts, cap and authentication. */
enum xdms_err iwf_http_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r) XDMS_WUR;
enum xdms_err iwf_http_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			    struct iwf_result *r) XDMS_WUR;
/* The conditional GET of a watch (adapter_http.c): If-None-Match or
 * If-Modified-Since from @validator ("E:" + ETag, "M:" + HTTP date), a 304
 * is no change; the new validator is the answer's ETag, else its
 * Last-Modified. */
enum xdms_err iwf_http_poll(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			    bool *is_changed, struct buf *body, struct iwf_result *r) XDMS_WUR;
/* One call of the webhook registration contract (docs/operations.md):
 * POST (@is_register) or DELETE of the adapter's webhook-register URL. */
enum xdms_err iwf_http_hook_register(const struct iwf_call *c, const char *register_url, bool is_register,
				     const char *callback_url, const char *hook_id, const char *secret,
				     const char *remote_user, uint64_t expires_ms, struct iwf_result *r) XDMS_WUR;
/* One call of a Graph-shaped subscription resource (adapter_http.c): POST
 * @url to create (with @callback, @resource, @secret as clientState and
 * @expires_ms), PATCH @url to renew (the expiry only), DELETE @url. For POST
 * and PATCH, the subscription's id (into @remote_id, @remote_cap bytes) and
 * the expiry the 3rd party granted (*granted_ms) come from the answer. */
enum xdms_err iwf_http_hook_graph(const struct iwf_call *c, const char *method, const char *url,
				  const char *callback, const char *resource, const char *secret, uint64_t expires_ms,
				  char *remote_id, size_t remote_cap, uint64_t *granted_ms,
				  struct iwf_result *r) XDMS_WUR;

#define IWF_POLL_DEFAULT_S 300 /* an adapter's poll-interval when it has none */
#define IWF_POLL_FLOOR_S 1      /* the shortest poll-interval taken */

enum iwf_watch_via { IWF_WATCH_POLL = 0, IWF_WATCH_WEBHOOK, IWF_WATCH_BOTH };
/* How webhooks are registered and called: xdmsd's own contract (an XML
 * registration, HMAC-signed calls), or the subscription resources of
 * Graph-shaped APIs (a JSON registration with clientState and an expiry,
 * the validationToken handshake, renewal by PATCH). */
enum iwf_hook_style { IWF_HOOK_XDMSD = 0, IWF_HOOK_GRAPH };
/* A graph-style webhook's id starts with this, so that a call is checked
 * by its style without reading the adapter. */
#define IWF_HOOK_GRAPH_PREFIX 'g'

struct iwf_adapter {
	char *id;
	const struct iwf_kind *kind;
	char *url;            /* template */
	char *import_method;
	char *export_method;
	char *content_type;
	enum iwf_auth auth;
	unsigned timeout_s;
	unsigned connect_timeout_s;
	unsigned max_attempts;
	size_t max_response;
	unsigned concurrency;
	char *import_xslt;    /* document names */
	char *export_xslt;
	enum iwf_format format;
	/* OAuth 2.0 (auth oauth2): the token endpoint, the client id, an
	 * optional scope; the client secret is sealed as the adapter's secret
	 * IWF_OAUTH_CLIENT_SECRET. */
	char *token_url;
	char *client_id;
	char *scope;
	/* Paging (format json): RFC 6901 pointers into each page, and the
	 * query parameters the values go back in. NULL = not used. */
	char *next_page_token;  /* e.g. /nextPageToken */
	char *page_token_param; /* e.g. pageToken */
	char *next_link;        /* e.g. /@odata.nextLink */
	char *sync_token;       /* e.g. /nextSyncToken */
	char *sync_token_param; /* e.g. syncToken */
	char *delta_link;       /* e.g. /@odata.deltaLink */
	unsigned max_pages;
	/* Address books (kind http, format json): URL templates of a new
	 * item (default: the adapter's URL) and of one item ({id}: its id),
	 * the method of an update, JSON Pointers to the id and ETag in an
	 * answer, and whether writes carry If-Match. NULL = not given. */
	char *book_create_url;
	char *book_item_url;
	char *book_delete_url;
	char *book_update_method;
	char *book_id;
	char *book_etag;
	bool is_book_if_match;
	bool is_plain_loopback; /* <plain-http-loopback>: Basic over http:// to a loopback host */
	unsigned poll_interval_s;  /* watches: seconds between polls (floor IWF_POLL_FLOOR_S) */
	enum iwf_watch_via watch;  /* watches: polling, a webhook, or both */
	char *webhook_base;        /* the URL prefix under which the 3rd party reaches xdmsd */
	char *webhook_register;    /* where callbacks are registered; NULL = no webhook */
	enum iwf_hook_style hook_style; /* <webhook-style> */
	char *sip_uri;             /* kind xcap: where a watch SUBSCRIBEs (sip:IP:PORT[;transport=tcp]); NULL = poll */
};

/* @url with the query parameter @name=@value appended, percent-encoded
 * (heap). */
char *iwf_url_with_param(const char *url, const char *name, const char *value);

/* ---- paging state (adapter_http.c) ----------------------------------------------------- */

/* Reads the stored state of (@xui, @adapter_id) into s->used (NULL when
 * none). STORE when the store cannot be read. */
enum xdms_err iwf_sync_load(struct store *st, const char *xui, const char *adapter_id, struct iwf_sync *s) XDMS_WUR;
/* Stores s->next as the new state (nothing when NULL), in the writer's
 * group commit. */
enum xdms_err iwf_sync_save(struct store *st, const char *xui, const char *adapter_id,
			    const struct iwf_sync *s) XDMS_WUR;
/* Frees both states; NULL-tolerant. */
void iwf_sync_cleanup(struct iwf_sync *s);

/*
 * The import of a JSON adapter: every page from the adapter's URL (or from
 * where s->used says), followed by next-page token or link up to the
 * adapter's max-pages, as one XML document: an <array> in the XPath 3.1
 * JSON namespace whose members are the pages' <map>s, in order. A sync
 * token that expired (HTTP 410) gives one full sync. This is also the
 * delta poll a subscription can run: called with the stored state, it
 * returns only what changed. @out is created with its cap by the caller.
 */
enum xdms_err iwf_http_fetch_pages(const struct iwf_call *c, struct buf *out, struct iwf_result *r) XDMS_WUR;

/* ---- OAuth 2.0 (oauth.c) ------------------------------------------------------------------ */

/* Access tokens in memory, per adapter and user, under a mutex (any
 * thread); created with the pool, destroyed after its workers stopped.
 * Destroy wipes the tokens; NULL-tolerant. */
struct iwf_oauth_cache;
struct iwf_oauth_cache *iwf_oauth_cache_create(void);
void iwf_oauth_cache_destroy(struct iwf_oauth_cache *c);

/*
 * An access token for @c's user at @c's adapter (auth oauth2), copied into
 * @out (@size bytes): the cached one unless @is_stale, else one obtained
 * with the refresh-token grant (RFC 6749 §6) from the refresh token c->token
 * and the adapter's client credentials, cached until it expires. A refresh
 * token the endpoint rotates is sealed where c->seal says. Fills @r and
 * returns non-OK when no token can be had: 401 when the grant is refused,
 * 500 when the adapter's client secret is missing, the 3rd party's codes
 * otherwise. No token ever goes into @r.
 */
enum xdms_err iwf_oauth_token(const struct iwf_call *c, bool is_stale, char *out, size_t size,
			      struct iwf_result *r) XDMS_WUR;
#define IWF_ACCESS_TOKEN_MAX 8192

/* Reads adapter @id from the store. NOTFOUND when there is none; PARSE with
 * *why (heap) when its document is unusable. Defaults come from @opt. */
enum xdms_err iwf_adapter_load(struct store *st, const struct iwf_options *opt, const char *id,
			       struct iwf_adapter *out, char **why) XDMS_WUR;
void iwf_adapter_cleanup(struct iwf_adapter *a);

/* The adapter a worker parsed last, and the ETag of its document then. */
struct iwf_adapter_memo {
	char etag[STORE_ETAG_MAX];
	struct iwf_adapter a; /* a.id NULL when empty; iwf_adapter_cleanup() frees it */
};

/* Adapter @id as iwf_adapter_load() reads it, parsed again only when its
 * document's ETag is not the one in @memo. *out points into @memo and is
 * valid until the next call with @memo (the caller's thread owns @memo). */
enum xdms_err iwf_adapter_get(struct store *st, const struct iwf_options *opt, const char *id,
			      struct iwf_adapter_memo *memo, const struct iwf_adapter **out, char **why) XDMS_WUR;
/* The adapter's URL for a call for @xui (heap, in *url): iwf_url_expand of
 * its template. On failure @r says why: 400 when the request lacks the
 * <remote-user> the URL needs, else 500. */
enum xdms_err iwf_adapter_url(const struct iwf_adapter *a, const char *remote_user, const char *xui, char **url,
			      struct iwf_result *r) XDMS_WUR;
/* The kind called @name, or NULL. */
const struct iwf_kind *iwf_kind_find(const char *name);
/* ---- XSLT cache (adapter.c) ----------------------------------------------------------- */

struct iwf_xslt_cache;
struct xml_xslt;

struct iwf_xslt_cache *iwf_xslt_cache_create(void);
void iwf_xslt_cache_destroy(struct iwf_xslt_cache *c);
/* The compiled stylesheet @name: the org.xdmsd.iwf-xslt global document of
 * that name, else the embedded xslt/ file. Compiled once per ETag; borrowed
 * until the cache is destroyed. NOTFOUND or PARSE with *why (heap). */
enum xdms_err iwf_xslt_get(struct iwf_xslt_cache *c, struct store *st, const char *name,
			   const struct xml_xslt **out, char **why) XDMS_WUR;

/* ---- HTTP to 3rd parties (http.c) ----------------------------------------------------- */

struct iwf_http_call {
	const char *method;
	const char *url;
	enum iwf_auth auth;
	const char *username; /* basic, digest */
	const char *password;
	const char *token;    /* bearer */
	const char *content_type; /* of @body; NULL when none */
	const char *accept;
	const char *body;
	size_t body_len;
	unsigned timeout_s;
	unsigned connect_timeout_s;
	size_t max_response;
	const char *ca_file;  /* "" or NULL = system store */
	const atomic_bool *cancel; /* the call stops when this becomes true; NULL = never */
	/* WebDAV (adapter_carddav.c) and conditional GETs (watches); NULL = header not sent */
	const char *depth;         /* Depth: "0", "1" */
	const char *if_match;      /* If-Match: an ETag as the 3rd party gave it */
	const char *if_none_match; /* If-None-Match: "*" or an ETag; with it or the next, a 304
				    * answer is OK with *status 304 and no body */
	const char *if_modified_since;
	char *etag_out;            /* when set: the response's ETag header ("" when none) */
	size_t etag_out_len;       /* bytes at etag_out, NUL included */
	char *location_out;        /* when set: the response's Location header ("" when none) */
	size_t location_out_len;
	char *got_etag;            /* IWF_VALIDATOR_MAX bytes for the answer's ETag, or NULL */
	char *got_last_modified;   /* the same for its Last-Modified */
};

/*
 * Makes one call with @curl (a worker's handle; connections are reused
 * between calls). On a 2xx puts the body in @body (created with the cap) and
 * returns OK; otherwise fills @r with the code (401, 403, 404, 413, 502, 503,
 * 504) and whether a retry may help.
 */
enum xdms_err iwf_http_do(void *curl, const struct iwf_http_call *call, struct buf *body, long *status,
			  struct iwf_result *r) XDMS_WUR;

/* "host:port" of @url for messages: no path, query or user info. */
void iwf_url_host(const char *url, char *out, size_t out_len);
/* ---- WebDAV and CardDAV bodies (dav.c) ------------------------------------------------- */

#define IWF_DAV_NS "DAV:"
#define IWF_CARDDAV_NS "urn:ietf:params:xml:ns:carddav"

/* One <response> of a multistatus; every string is heap (NULL when absent). */
struct iwf_dav_item {
	char *href;          /* as the 3rd party wrote it, without scheme and host */
	unsigned status;     /* the propstat's that held properties, else the response's own */
	char *etag;          /* getetag, opaque */
	char *data;          /* address-data (a vCard) */
	size_t data_len;
	bool is_collection;
	bool is_addressbook; /* resourcetype has CARDDAV:addressbook */
	bool has_sync;       /* supported-report-set lists DAV:sync-collection */
	char *principal;     /* current-user-principal/href */
	char *home;          /* addressbook-home-set/href (the first) */
	char *displayname;
};

struct iwf_dav_multistatus {
	struct iwf_dav_item *items;
	size_t count;
	char *sync_token; /* RFC 6578 §6.2, opaque; NULL when absent */
};

/*
 * Parses a DAV:multistatus of @len bytes, keeping at most @max_items
 * responses and @max_data bytes of one address-data (a longer one is not
 * kept: its item has status 413, no data, and data_len its size). PARSE (not XML, not a
 * multistatus, a response without href) or TOOBIG (over a cap) with *why
 * (heap). On OK *out is released with iwf_dav_multistatus_cleanup().
 */
enum xdms_err iwf_dav_parse(const char *data, size_t len, size_t max_items, size_t max_data,
			    struct iwf_dav_multistatus *out, char **why) XDMS_WUR;
void iwf_dav_multistatus_cleanup(struct iwf_dav_multistatus *m);
/* True when @data is a DAV:error body naming the precondition @ns:@name
 * (RFC 4918 §16), e.g. DAV:valid-sync-token. */
bool iwf_dav_error_has(const char *data, size_t len, const char *ns, const char *name);

enum iwf_dav_propfind { IWF_DAV_FIND_ENTRY, IWF_DAV_FIND_BOOKS, IWF_DAV_FIND_ETAGS };
/* Request bodies (heap): a PROPFIND for discovery, the books of a home, or
 * the members' ETags; a sync-collection from @token (NULL or "" = initial);
 * a multiget of @count hrefs (NULL when over @max_len bytes). */
char *iwf_dav_propfind_body(enum iwf_dav_propfind what);
char *iwf_dav_sync_body(const char *token);
char *iwf_dav_multiget_body(const char *const *hrefs, size_t count, size_t max_len);

/* ---- the PCC merge (merge.c) ------------------------------------------------------------ */

enum iwf_merge_policy { IWF_MERGE = 0, IWF_REPLACE, IWF_ADD_ONLY };

/* Field groups a request's <fields> may name (SPEC §5.2). */
#define IWF_FIELD_NAME 0x001    /* fn n nickname */
#define IWF_FIELD_TEL 0x002     /* tel */
#define IWF_FIELD_EMAIL 0x004   /* email */
#define IWF_FIELD_URI 0x008     /* impp url */
#define IWF_FIELD_ADDRESS 0x010 /* adr */
#define IWF_FIELD_CAREER 0x020  /* org title */
#define IWF_FIELD_BIRTH 0x040   /* bday */
#define IWF_FIELD_MEDIA 0x080   /* photo */
#define IWF_FIELD_ALL 0x0ff
#define IWF_FIELD_OTHER 0x100   /* a part the PCC mapping does not know (in "dropped" masks only) */

/* Parses a <fields> token list ("fn tel email"); NULL or "" = all.
 * INVAL with the unknown token in *why (heap). */
enum xdms_err iwf_fields_parse(const char *text, unsigned *mask, char **why) XDMS_WUR;

/* The same, for lists from a user's preferences: unknown names are ignored. */
unsigned iwf_fields_mask_lenient(const char *text);

/* ---- user preferences (prefs.c) ------------------------------------------------------- */

struct iwf_prefs {
	bool is_auto_store;               /* import-prefs/auto-store */
	bool has_conflict_policy;
	enum iwf_merge_policy conflict_policy; /* from import-prefs/conflict-policy */
	unsigned import_fields;           /* import-prefs/allowed-fields (all when absent) */
	unsigned export_fields;           /* export-prefs/allowed-fields */
	char **third_parties;             /* export-prefs/allowed-third-party; none = any */
	size_t third_party_count;
	bool is_auto_update;              /* subscription-prefs/auto-update (default true) */
	bool has_max_expires;
	unsigned max_expires;             /* subscription-prefs/max-expires, seconds */
};

/* Reads the user's preferences; defaults when the user has none. CORRUPT
 * when the stored document does not parse. */
enum xdms_err iwf_prefs_load(struct store *st, const char *xui, struct iwf_prefs *p) XDMS_WUR;
void iwf_prefs_cleanup(struct iwf_prefs *p);
/* True when the preferences allow exporting to 3rd party @id. */
bool iwf_prefs_third_party_ok(const struct iwf_prefs *p, const char *id);

struct iwf_merge_out {
	char *doc;       /* the new PCC document (heap) */
	size_t doc_len;
	unsigned count;  /* values added or replaced (see group_values() in merge.c) */
	bool is_partial; /* something was left out because of the field list */
	unsigned dropped; /* IWF_FIELD_* of what was left out (0 = nothing) */
	unsigned person_count; /* <person-details> in the imported profile; only the first is merged */
	bool is_changed; /* doc differs in content from the local PCC */
};

/*
 * Merges the first <person-details> of @imported (a valid PCC document) into
 * the first <person-details> of @local (NULL = no PCC yet) under @policy,
 * keeping only the groups in @fields. PARSE with *why when @imported has no
 * person-details or a document does not parse.
 */
enum xdms_err iwf_merge(const char *local, size_t local_len, const char *imported, size_t imported_len,
			enum iwf_merge_policy policy, unsigned fields, struct iwf_merge_out *out,
			char **why) XDMS_WUR;

/*
 * The PCC document to export: @pcc with only the element @sel selects (a
 * <person-details>, default the first) and only the groups in @fields.
 * *count = the values of the groups kept, *dropped = IWF_FIELD_* of what was
 * left out (0 = nothing). NOTFOUND when the selector selects nothing.
 */
enum xdms_err iwf_export_select(const char *pcc, size_t pcc_len, const char *sel, unsigned fields, char **out,
				size_t *out_len, unsigned *count, unsigned *dropped, char **why) XDMS_WUR;

/* Appends to @out (@size bytes, NUL-terminated) which parts of @dropped were
 * left out and why: not in the request's @requested fields, or not in the
 * preferences' @allowed ones; e.g. "tel (not in <fields>)". */
void iwf_fields_describe(unsigned dropped, unsigned requested, unsigned allowed, char *out, size_t size);

/* ---- carrying a job out (job.c) ---------------------------------------------------------------- */

struct iwf_worker {
	struct iwf *iwf;
	void *curl;
	pthread_t thread;
	unsigned index;
	char *slot_adapter; /* the adapter whose slot the worker holds (heap), or NULL */
	struct iwf_adapter_memo adapter; /* the adapter of its last job */
};

/* The shared state of the pool that job.c needs. */
struct iwf_env {
	const struct iwf_options *opt;
	struct store *st;
	struct xcap *x;
	struct iwf_xslt_cache *xslt;
	const struct xml_schema *pcc_schema; /* the PCC's XSD, for transform output */
	const uint8_t *key;                  /* IWF_KEY_LEN bytes: the credential key */
	const atomic_bool *stopping;         /* set when the IWF stops; NULL = never */
	struct iwf_metrics *metrics;         /* NULL = not counted (dry runs) */
	struct iwf_oauth_cache *oauth;       /* access tokens; NULL = none kept (dry runs) */
	struct iwf_watches *watches;         /* NULL until started (and in dry runs) */
};

/*
 * The adapter-side half of an import: fetch, transform, validate. On OK
 * *pcc (heap) is a valid PCC document, or NULL when @sync's delta held
 * nothing for the user (nothing changed). Used by jobs and by the dry run.
 * @seal (NULL = none) says where the credential is sealed; @sync (NULL =
 * none) the paging state to start from, updated with the new one.
 */
enum xdms_err iwf_fetch_profile(const struct iwf_env *env, void *curl, const struct iwf_adapter *a,
				const char *xui, const char *remote_user, const char *username,
				const char *password, const char *token, char **pcc, size_t *pcc_len,
				struct iwf_result *r, const struct iwf_seal *seal, struct iwf_sync *sync) XDMS_WUR;

/* The transform-and-check half of iwf_fetch_profile: @data as the adapter's
 * fetch (or poll) gave it, transformed into a PCC document (heap) and
 * validated. With @sync a delta (sync->is_delta) that holds no person is OK
 * with *pcc NULL: nothing changed for this user. */
enum xdms_err iwf_profile_from(const struct iwf_env *env, const struct iwf_adapter *a, const char *xui,
			       const char *remote_user, const char *data, size_t len, const struct iwf_sync *sync,
			       char **pcc, size_t *pcc_len, struct iwf_result *r) XDMS_WUR;

/* Storing an imported profile into the user's PCC (SPEC §5.3 steps 5-6),
 * shared by import-profile jobs and watches. */
struct iwf_import {
	const char *xui;
	const char *third_party;      /* for reasons */
	const char *merge_policy;     /* the request's, or NULL */
	const struct iwf_prefs *prefs;
	unsigned fields;              /* IWF_FIELD_* to keep */
	bool (*is_wanted)(void *arg); /* false once the request went away: nothing more is stored */
	void *arg;
	bool is_commit_ack;           /* the PCC write is told at its commit (store.h): a durable
					 write of the caller's follows in every case */
};

struct iwf_import_out {
	struct iwf_result r;
	bool is_cancelled;   /* is_wanted() said no: nothing stored */
	bool is_changed;     /* the PCC was written */
	bool has_import;     /* the PCC holds the import: written now, or had it all already */
	unsigned count;
	bool is_partial;
	unsigned dropped;
	unsigned extra_persons;
	char pcc_etag[STORE_ETAG_MAX];
};

/* Merges @imported into the PCC under the request's policy and the user's
 * preferences and stores it, again on a lost race (SPEC §5.3 step 6). */
void iwf_import_store(const struct iwf_env *env, const struct iwf_import *in, const char *imported,
		      size_t imported_len, struct iwf_import_out *o);

/* A <response> element (heap): @status NULL = the word for @code; @seq 0
 * = none; @expires_ms 0 = no <subscription-expires>. */
char *iwf_response_body(enum store_job_kind kind, unsigned code, const char *status, const char *reason,
			unsigned count, const char *pcc_etag, unsigned seq, uint64_t expires_ms);

/* Writes @body as the <response> of watched request @w, with If-Match on
 * the Feature Handler document, if the request is still there and still the
 * version @w was set up for (its current job is w->job_id). False with
 * *is_gone when it is not. */
bool iwf_watch_response_write(const struct iwf_env *env, const struct store_watch *w, const char *body,
			      bool *is_gone);

/* -- metrics.c: the IWF's figures for /metrics. Every recorder is
 * NULL-tolerant (dry runs count nothing) and may run on any thread. -- */
struct iwf_metrics;
struct iwf_metrics *iwf_metrics_create(void);
void iwf_metrics_destroy(struct iwf_metrics *m);
/* A job answered with a final <response> of @code. */
void iwf_metrics_job_ended(struct iwf_metrics *m, enum store_job_kind kind, unsigned code);
/* An attempt that failed transiently and went back to the queue. */
void iwf_metrics_retry(struct iwf_metrics *m);
/* A worker starts (+1) or stops (-1) carrying out a job. */
void iwf_metrics_running(struct iwf_metrics *m, int delta);
/* One call to adapter @adapter's 3rd party, and whether it failed. */
void iwf_metrics_call(struct iwf_metrics *m, const char *adapter, double seconds, bool is_failure);
/* Appends every figure in the Prometheus text format; jobs by state are read
 * from @st. STORE when the jobs cannot be read, TOOBIG when @out is full. */
enum xdms_err iwf_metrics_render(struct iwf_metrics *m, struct store *st, struct buf *out) XDMS_WUR;

/* For the address-book flows (book.c), job.c's own steps: whether @job is
 * still its request's and this worker's; one XCAP write as the IWF to the
 * user's document "index" of @auid (the HTTP status a client would get);
 * the stylesheet @name on @data (@r set on failure). */
bool iwf_job_is_ours(const struct iwf_env *env, const struct store_job *job);
/* The user's document "index" of @auid (heap) and its ETag; NOTFOUND when
 * there is none. */
enum xdms_err iwf_doc_read(const struct iwf_env *env, const char *auid, const char *xui, char **data, size_t *len,
			   char etag[STORE_ETAG_MAX]) XDMS_WUR;
unsigned iwf_job_write(const struct iwf_env *env, enum xcap_method m, const char *auid, const char *xui,
		       const char *ctype, const char *body, size_t len, const char *if_match,
		       const char *if_none_match, char etag[STORE_ETAG_MAX], char *why, size_t why_len);
enum xdms_err iwf_job_transform(const struct iwf_env *env, const char *name, const char *data, size_t len,
				const char *xui, const char *remote_user, size_t max_out, char **out, size_t *out_len,
				struct iwf_result *r) XDMS_WUR;

/* ---- address books (book.c) ----------------------------------------------------------------- */

/* What an address-book job needs of its request. */
struct iwf_book_job {
	const char *xui;
	const char *remote_user;
	unsigned fields;     /* IWF_FIELD_* a contact keeps */
	bool is_auto_store;  /* import-prefs/auto-store */
	/* Whether the import is still wanted (a watch's poll); NULL: the
	 * job is still its request's and this worker's claim. */
	bool (*wants)(void *arg);
	void *wants_arg;
	/* The book's URL as an earlier import found it (a watch's); NULL or
	 * "": located from the adapter's URL. Used only on the same server. */
	const char *book_url;
};

struct iwf_book_outcome {
	struct iwf_result r;
	bool is_cancelled;           /* the request went away: nothing stored, no response */
	unsigned count;              /* contacts added or updated (import), cards written (export) */
	unsigned changed;            /* import: contacts added, updated or removed */
	char book_url[IWF_VALIDATOR_MAX]; /* import: the book read ("" when longer) */
	char etag[STORE_ETAG_MAX];   /* the Address Book's after the job */
};

/* SPEC §4.3a: <target>address-book</target> with an address-book kind. */
void iwf_book_import(const struct iwf_env *env, void *curl, const struct store_job *job,
		     const struct iwf_adapter *a, const struct iwf_cred *cred, const struct iwf_book_job *q,
		     struct iwf_book_outcome *o);
void iwf_book_export(const struct iwf_env *env, void *curl, const struct store_job *job,
		     const struct iwf_adapter *a, const struct iwf_cred *cred, const struct iwf_book_job *q,
		     struct iwf_book_outcome *o);

/* The PCC with an address-book kind: the kind's fetch (the user's own card
 * as xCard <vcards>) and send (@data, the export transform's xCard, written
 * as the user's own card). */
enum xdms_err iwf_book_pcc_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r) XDMS_WUR;
/* The kind's poll of the PCC (struct iwf_kind): the user's own card only
 * if it changed since @validator ("ETag\nURL" of the card, "" = none). */
enum xdms_err iwf_book_pcc_poll(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
				bool *is_changed, struct buf *body, struct iwf_result *r) XDMS_WUR;
enum xdms_err iwf_book_pcc_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body,
				long *status, struct iwf_result *r) XDMS_WUR;

/* One vCard as an xCard <vcard> element appended to @xcard, its version
 * (3 or 4) in *version; the xCard of one <vcard> as vCard @version; the UID
 * of an xCard <vcard> (heap, NULL when it has none); one vCard as a PCC
 * (*pcc, cut down to @fields, with the adapter's import transform). PARSE
 * or TOOBIG with *why (heap). */
enum xdms_err iwf_card_to_xcard(const char *data, size_t len, struct buf *xcard, unsigned *version,
				char **why) XDMS_WUR;
enum xdms_err iwf_xcard_to_card(const char *xcard, size_t len, unsigned version, struct buf *out,
				char **why) XDMS_WUR;
char *iwf_xcard_uid(const char *xcard, size_t len);
struct xml_doc;
enum xdms_err iwf_card_to_pcc(const struct iwf_env *env, const struct iwf_adapter *a, const char *xui,
			      const char *remote_user, unsigned fields, const char *data, size_t len,
			      struct xml_doc **pcc, char **uid, char **why) XDMS_WUR;
/* ---- watches (watch.c): subscribe-profile kept up to date ---------------------------- */

struct iwf_watches;
/* Starts @threads watch threads over @env (borrowed; outlives them) and
 * loads every watch from the store into the schedule: watches whose poll
 * fell due while the server was down are polled at once. */
enum xdms_err iwf_watches_start(const struct iwf_env *env, unsigned threads, struct iwf_watches **out) XDMS_WUR;
/* Stops and joins the threads; a poll in flight finishes its step. NULL-tolerant. */
void iwf_watches_stop(struct iwf_watches *ws);
/* (Re)schedules watch @w after a job stored it (a new or refreshed
 * subscription). Any thread. */
void iwf_watches_add(struct iwf_watches *ws, const struct store_watch *w);
/* The store's commit listener calls this: a commit hook dropped watches
 * (store_watch_generation moved); the threads forget them. Never blocks long. */
void iwf_watches_kick(struct iwf_watches *ws);
/* A call of webhook @hook_id (iwf_webhook in iwf.h): the status to answer
 * and a text body in *answer (heap). Any thread; never blocks on a poll. */
unsigned iwf_watches_hook(struct iwf_watches *ws, bool is_post, const char *hook_id, const char *query,
			  const char *signature, const char *body, size_t len, char **answer);
/* Appends the watches' figures to @out (Prometheus text). */
enum xdms_err iwf_watches_metrics(struct iwf_watches *ws, struct buf *out) XDMS_WUR;
/* The next poll time (Unix ms) after @now_ms of a watch keyed @key polled
 * every @interval_ms: the watch's own phase in the interval (a hash of its
 * key), so that many watches poll evenly spread, each at a steady rhythm. */
uint64_t iwf_watch_next_slot(const char *xui, const char *request_id, uint64_t interval_ms, uint64_t now_ms);
/* The SIP subscriber watches of xcap adapters with a sip-uri use (NULL =
 * none: they poll). Attach after iwf_watches_start; detach before the SIP
 * server stops: it destroys @m, waiting for every use and callback to end. */
struct sip_subscriber;
void iwf_watches_sip_attach(struct iwf_watches *ws, struct sip_subscriber *m);
void iwf_watches_sip_detach(struct iwf_watches *ws);
/* A new webhook id and secret (random, hex). */
void iwf_watch_hook_new(char id[STORE_WATCH_HOOK_MAX], char secret[STORE_WATCH_SECRET_MAX]);
/* Registers (or renews, when w->hook_remote names one) @w's graph-style
 * webhook at the adapter's webhook-register URL, answering the validation
 * handshake that comes meanwhile; fills w->hook_remote and w->hook_renew_ms.
 * A new w->hook_id and secret are made when it has none. */
enum xdms_err iwf_watch_hook_graph(const struct iwf_env *env, const struct iwf_call *call, struct store_watch *w,
				   struct iwf_result *r) XDMS_WUR;

/* Runs claimed job @job to its end, a retry, or a cancellation. */
void iwf_job_run(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job);

/* Takes one of the adapter's @limit slots for worker @w, waiting up to
 * @wait_ms for one to be given back; false when none was (or the IWF stops)
 * (pool.c). A worker holds at most one slot. */
bool iwf_slot_take(struct iwf_worker *w, const char *adapter_id, unsigned limit, unsigned wait_ms);
/* Gives back the slot @w holds, if any: as soon as its calls are over. */
void iwf_slot_give(struct iwf_worker *w);

#endif
