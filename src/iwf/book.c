/* SPDX-License-Identifier: MIT */
/*
 * Address books at 3rd parties (SPEC §4.3a): the user's contacts moved
 * between the CAB Address Book document and an address-book kind
 * (adapter_carddav.c), and the user's own card (the PCC) read from or
 * written to such a book.
 *
 * Import of the address book, in two halves. The remote half runs once: the
 * book is located, listed from the stored sync-token (or in full), and only
 * the cards whose ETag differs from the one their contact remembers are
 * read; each becomes xCard (src/vcard), then a PCC by the adapter's import
 * transform (xcard2pcc.xsl by default), which must be a valid PCC and is
 * cut down to the request's fields. A card refused at any step is named in
 * the 206's <reason>; the others are stored. The local half may run again:
 * it applies the result to the Address Book as it is now (one <contact> per
 * card, found again by its <source uid>, its id chosen from the source and
 * uid so that it stays the same), and stores it with If-Match; a 412 runs
 * it again on the new document, up to STORE_RETRIES times. Contacts the user
 * made, and contacts of other sources, are never touched; a card removed
 * at the 3rd party removes only its own contact.
 *
 * State. Each contact's <source> keeps the card's uid, href and etag, so the
 * Address Book itself says what is in sync. The book's sync-token is a
 * server-private secret (owner = the XUI, name "carddav:<adapter>:<hash of
 * the book's URL>") written after the Address Book: a crash in between
 * leaves the old token, and the next import lists again from it and finds
 * the cards it already has by their ETags: the state is the old or the new,
 * and an import is never lost. Besides the token the secret holds the
 * number of contacts of this source the import left; when the Address Book
 * holds another number (the user removed or edited contacts of this
 * source), the next import lists the whole book instead of the changes.
 *
 * Export of the address book writes the contacts of this source (If-Match
 * on the remembered ETag) and the user's own contacts (new cards, If-None-
 * Match: *, and the contact then remembers its card; the card's UID and
 * href follow from the contact's id, so that a card whose contact could not
 * remember it is found again, not made twice), and deletes the cards
 * whose contacts the user deleted: a card listed at the 3rd party, imported
 * from it (its href was in the listing the token came with) and not
 * changed there since, whose contact is gone. A 412 re-reads the card and
 * tries once more; then the card is counted as a conflict (409).
 *
 * Threads: runs on a worker, inside its job; holds no store snapshot while
 * it writes. An address-book import converts cards on threads of its own
 * while the worker reads (fetch_and_convert()).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "vcard/vcard.h"
#include "xml/xml.h"

#define STORE_RETRIES 3
#define REFUSED_NAMED 5       /* refused cards named in a <reason> */
#define TOKEN_MAX 2048        /* longer sync-tokens are not kept (a full listing each time) */

/* ---- cards to xCard and back (src/vcard) ------------------------------------------------------ */

/* Kinds whose cards are xCard already (JSON APIs, book_json.c): they map
 * with xcard2pcc.xsl and pcc2xcard.xsl, the adapter's own transforms being
 * those of the JSON side. */
static bool is_xcard_kind(const struct iwf_adapter *a)
{
	return a->kind->book && a->kind->book->is_xcard;
}

enum xdms_err iwf_card_to_xcard(const char *data, size_t len, struct buf *xcard, unsigned *version, char **why)
{
	struct vcard_limits lim;

	/* A photo is bounded by the card's own cap here; what a contact keeps
	 * of it is photos_strip()'s decision, so a large photo does not cost
	 * the whole card. */
	vcard_limits_default(&lim);
	lim.max_card = IWF_CARD_MAX;
	lim.max_photo = IWF_CARD_MAX;
	*why = NULL;
	if (!data) {
		/* Not read: over the cap (a photo too, as it is inside the card). */
		*why = xasprintf("the card is %zu bytes, over the limit of %u", len, (unsigned)IWF_CARD_MAX);
		return XDMS_ERR_TOOBIG;
	}
	return vcard_read(data, len, &lim, xcard, version, why);
}

enum xdms_err iwf_xcard_to_card(const char *xcard, size_t len, unsigned version, struct buf *out, char **why)
{
	*why = NULL;
	return vcard_write(xcard, len, version == 3 ? 3 : 4, out, why);
}

char *iwf_xcard_uid(const char *xcard, size_t len)
{
	return vcard_uid_of_xcard(xcard, len);
}

/* ---- per-book state ---------------------------------------------------------------------------- */

#define REFUSED_KEPT 100 /* refused cards the state remembers; more: "*" */

struct book_state {
	bool has;
	unsigned count;          /* contacts of this source the last import left */
	char refused[REFUSED_KEPT * 17 + 2]; /* hrefs refused then, as FNV-1a hex, comma-separated; "*" = too many */
	char token[TOKEN_MAX + 1];
};

static void state_name(const struct iwf_adapter *a, const char *book_url, char *out, size_t cap)
{
	snprintf(out, cap, "carddav:%s:%016llx", a->id, (unsigned long long)fnv1a_str(book_url));
}

static void state_load(const struct iwf_env *env, const char *xui, const char *name, struct book_state *s)
{
	char data[TOKEN_MAX + REFUSED_KEPT * 17 + 64];
	struct store_read *rd = NULL;
	size_t len = 0;
	char *nl;

	memset(s, 0, sizeof(*s));
	if (store_read_begin(env->st, &rd))
		return;
	/* "count \n refused \n token" */
	if (!store_secret_get(rd, xui, name, data, sizeof(data) - 1, &len)) {
		char *nl2;

		data[len] = '\0';
		nl = strchr(data, '\n');
		nl2 = nl ? strchr(nl + 1, '\n') : NULL;
		if (nl2) {
			s->count = (unsigned)strtoul(data, NULL, 10);
			snprintf(s->refused, sizeof(s->refused), "%.*s", (int)(nl2 - nl - 1), nl + 1);
			snprintf(s->token, sizeof(s->token), "%s", nl2 + 1);
			s->has = true;
		}
	}
	store_read_end(rd);
}

static enum xdms_err state_save(const struct iwf_env *env, const char *xui, const char *name, const char *token,
				unsigned count, const char *refused)
{
	char *data;
	enum xdms_err err;

	if (token && strlen(token) > TOKEN_MAX)
		token = NULL; /* kept as no token: the next import lists the whole book */
	data = xasprintf("%u\n%s\n%s", count, refused, token ? token : "");
	/* In the writer's group commit: durable when it returns, without a
	 * flush of its own. */
	err = store_secret_put(env->st, xui, name, data, strlen(data), false);
	free(data);
	return err;
}

/* ---- the Address Book document ------------------------------------------------------------------ */

/* The user's Address Book (heap) and its ETag; NOTFOUND when there is none. */
static enum xdms_err ab_read(const struct iwf_env *env, const char *xui, char **data, size_t *len,
			     char etag[STORE_ETAG_MAX])
{
	return iwf_doc_read(env, IWF_AB_AUID, xui, data, len, etag);
}

/* One contact of this adapter's source in the Address Book. */
struct ab_contact {
	struct xml_node *node;
	struct xml_node *source;
	char *uid, *href, *etag;
	bool is_touched; /* updated or matched by this import */
};

struct ab {
	struct xml_doc *doc;
	struct ab_contact *mine; /* contacts whose <source> is this adapter */
	size_t mine_count;
	char **ids;              /* every contact's id, sorted (heap), for new ids */
	size_t id_count, id_cap;
};

static void ab_cleanup(struct ab *ab)
{
	for (size_t i = 0; i < ab->mine_count; i++) {
		free(ab->mine[i].uid);
		free(ab->mine[i].href);
		free(ab->mine[i].etag);
	}
	free(ab->mine);
	for (size_t i = 0; i < ab->id_count; i++)
		free(ab->ids[i]);
	free(ab->ids);
	xml_doc_free(ab->doc);
	memset(ab, 0, sizeof(*ab));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds @id (taken) to the sorted ids. */
static void ab_id_add(struct ab *ab, char *id)
{
	size_t lo = 0, hi = ab->id_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (strcmp(ab->ids[mid], id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ab->id_count == ab->id_cap) {
		ab->id_cap = ab->id_cap ? ab->id_cap * 2 : 64;
		ab->ids = xrealloc(ab->ids, ab->id_cap * sizeof(*ab->ids));
	}
	memmove(ab->ids + lo + 1, ab->ids + lo, (ab->id_count - lo) * sizeof(*ab->ids));
	ab->ids[lo] = id;
	ab->id_count++;
}

/* Parses @data (NULL: an empty Address Book) and finds this adapter's contacts. */
static enum xdms_err ab_open(const char *data, size_t len, const char *adapter, struct ab *ab, char **why)
{
	static const char empty[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<address-book xmlns=\"" IWF_AB_NS
				    "\"/>\n";
	struct xml_issue issue;
	size_t cap = 0;

	memset(ab, 0, sizeof(*ab));
	if (!data) {
		data = empty;
		len = sizeof(empty) - 1;
	}
	if (xml_parse(data, len, IWF_MAX_DEPTH, &ab->doc, &issue)) {
		*why = xasprintf("the Address Book does not parse: %s", issue.phrase);
		return XDMS_ERR_CORRUPT;
	}
	for (struct xml_node *c = xml_node_child(xml_doc_root_elem(ab->doc), IWF_AB_NS, "contact"); c;
	     c = xml_node_next(c, IWF_AB_NS, "contact")) {
		struct xml_node *src = xml_node_child(c, IWF_AB_NS, "source");
		char *id = xml_trim(xml_node_text(src)), *cid = xml_node_attr(c, "id");
		bool is_mine = id && !strcmp(id, adapter);

		free(id);
		if (cid) {
			if (ab->id_count == ab->id_cap) {
				ab->id_cap = ab->id_cap ? ab->id_cap * 2 : 64;
				ab->ids = xrealloc(ab->ids, ab->id_cap * sizeof(*ab->ids));
			}
			ab->ids[ab->id_count++] = cid;
		}
		if (!is_mine)
			continue;
		if (ab->mine_count == cap) {
			cap = cap ? cap * 2 : 64;
			ab->mine = xrealloc(ab->mine, cap * sizeof(*ab->mine));
		}
		ab->mine[ab->mine_count++] = (struct ab_contact){ c, src, xml_node_attr(src, "uid"),
								  xml_node_attr(src, "href"), xml_node_attr(src, "etag"),
								  false };
	}
	if (ab->id_count)
		qsort(ab->ids, ab->id_count, sizeof(*ab->ids), cmp_str);
	return XDMS_ERR_OK;
}

static struct ab_contact *ab_by_href(struct ab *ab, const char *href)
{
	for (size_t i = 0; i < ab->mine_count; i++)
		if (ab->mine[i].node && ab->mine[i].href && !strcmp(ab->mine[i].href, href))
			return &ab->mine[i];
	return NULL;
}

static struct ab_contact *ab_by_uid(struct ab *ab, const char *uid)
{
	for (size_t i = 0; i < ab->mine_count; i++)
		if (ab->mine[i].node && ab->mine[i].uid && !strcmp(ab->mine[i].uid, uid))
			return &ab->mine[i];
	return NULL;
}

/* True when some contact of the Address Book has @id. */
static bool ab_id_taken(struct ab *ab, const char *id)
{
	return ab->id_count && bsearch(&id, ab->ids, ab->id_count, sizeof(*ab->ids), cmp_str) != NULL;
}

/* The id of a new contact for (@adapter, @uid): the same whenever the same
 * card is imported again; a suffix only if another contact has it. */
static char *contact_id(struct ab *ab, const char *adapter, const char *uid)
{
	char *id = xasprintf("%s-%016llx", adapter, (unsigned long long)fnv1a_str(uid));

	for (unsigned n = 2; ab_id_taken(ab, id); n++) {
		free(id);
		id = xasprintf("%s-%016llx-%u", adapter, (unsigned long long)fnv1a_str(uid), n);
	}
	ab_id_add(ab, xstrdup(id));
	return id;
}

static void source_set(struct xml_node *src, const char *uid, const char *href, const char *etag)
{
	xml_node_set_attr(src, "uid", uid);
	xml_node_set_attr(src, "href", href);
	xml_node_set_attr(src, "etag", etag);
}

/* Puts @pd as the person-details of contact @c (replacing its own). */
static void contact_set_details(struct xml_node *c, const struct xml_node *pd)
{
	struct xml_node *old = xml_node_child(c, IWF_PCC_NS, "person-details");

	if (old)
		xml_node_replace_copy(old, pd);
	else
		xml_node_append_copy(c, pd);
}

/* Appends a new contact for a card; returns it. */
static struct xml_node *contact_add(struct ab *ab, const char *adapter, const char *uid, const char *href,
				    const char *etag, const struct xml_node *pd)
{
	char *id = contact_id(ab, adapter, uid);
	struct buf b;
	struct xml_doc *tmp = NULL;
	struct xml_issue issue;
	struct xml_node *c = NULL;

	buf_init(&b, 16384);
	if (buf_printf(&b, "<contact xmlns=\"%s\" id=\"", IWF_AB_NS) || buf_append_xml_escaped(&b, id, strlen(id)) ||
	    buf_append_str(&b, "\"><source>") || buf_append_xml_escaped(&b, adapter, strlen(adapter)) ||
	    buf_append_str(&b, "</source></contact>"))
		abort();
	if (!xml_parse(b.data, b.len, IWF_MAX_DEPTH, &tmp, &issue)) {
		c = xml_node_append_copy(xml_doc_root_elem(ab->doc), xml_doc_root_elem(tmp));
		source_set(xml_node_child(c, IWF_AB_NS, "source"), uid, href, etag);
		if (pd)
			xml_node_append_copy(c, pd);
	}
	xml_doc_free(tmp);
	buf_cleanup(&b);
	free(id);
	return c;
}

/* ---- the remote half of an import ------------------------------------------------------------- */

/*
 * Photos in contacts: inline (a data: URI in media-url) up to
 * IWF_PHOTO_INLINE_MAX characters, about 6 KiB of image: a thumbnail. A
 * larger photo stays at the 3rd party (the contact's <source href> names its
 * card) and is left out of the contact, so that 1,000 contacts with photos
 * fit the Address Book's limit (schemas/auids/cab-address-book.auid, see
 * docs/application-usages.md). Photos by URL are kept as they are.
 */
static unsigned photos_strip(struct xml_doc *pcc)
{
	struct xml_node *pd = xml_node_child(xml_doc_root_elem(pcc), IWF_PCC_NS, "person-details");
	struct xml_node *ml = xml_node_child(pd, IWF_PCC_NS, "media-list"), *e, *next;
	unsigned stripped = 0;

	for (e = xml_node_child(ml, IWF_PCC_NS, "media-entry"); e; e = next) {
		struct xml_node *m = xml_node_child(e, IWF_PCC_NS, "media");
		char *url = xml_node_text(xml_node_child(m, IWF_PCC_NS, "media-url"));

		next = xml_node_next(e, IWF_PCC_NS, "media-entry");
		if (url && !strncmp(url, "data:", 5) && strlen(url) > IWF_PHOTO_INLINE_MAX) {
			xml_node_remove(e);
			stripped++;
		}
		free(url);
	}
	if (ml && !xml_node_child(ml, IWF_PCC_NS, "media-entry"))
		xml_node_remove(ml);
	return stripped;
}

struct card {
	char *href, *etag, *uid, *name; /* name: how a <reason> calls it */
	struct xml_doc *pcc;            /* the card as a PCC; NULL when refused */
	char *why;                      /* why it was refused */
};

struct remote {
	const struct iwf_env *env;
	const struct iwf_adapter *a;
	const struct iwf_book_job *q;
	char *book_url;
	struct iwf_book_list list;
	struct card *cards;
	size_t count, cap;
	size_t refused;
	unsigned calls;
	bool used_token;
};

static void remote_cleanup(struct remote *rm)
{
	for (size_t i = 0; i < rm->count; i++) {
		free(rm->cards[i].href);
		free(rm->cards[i].etag);
		free(rm->cards[i].uid);
		free(rm->cards[i].name);
		free(rm->cards[i].why);
		xml_doc_free(rm->cards[i].pcc);
	}
	free(rm->cards);
	free(rm->book_url);
	iwf_book_list_cleanup(&rm->list);
	memset(rm, 0, sizeof(*rm));
}

/* The last segment of @href, for messages. */
static char *href_name(const char *href)
{
	const char *s = strrchr(href, '/');

	return xstrdup(s && s[1] ? s + 1 : href);
}

enum xdms_err iwf_card_to_pcc(const struct iwf_env *env, const struct iwf_adapter *a, const char *xui,
			      const char *remote_user, unsigned fields, const char *data, size_t len,
			      struct xml_doc **pcc, char **uid, char **why)
{
	struct buf xcard, wrapped;
	struct iwf_result r;
	struct xml_issue issue;
	char *out = NULL, *sel = NULL, *swhy = NULL;
	size_t out_len = 0, sel_len = 0;
	unsigned version, count, dropped;
	enum xdms_err err;

	*pcc = NULL;
	*uid = NULL;
	*why = NULL;
	buf_init(&xcard, (size_t)IWF_CARD_MAX * 4);
	buf_init(&wrapped, (size_t)IWF_CARD_MAX * 4 + 128);
	if (is_xcard_kind(a)) {
		/* Already xCard (a <vcards> document): no vCard text between. */
		if (!len) {
			*why = xstrdup("the entry has no xCard <vcard>");
			err = XDMS_ERR_PARSE;
			goto out;
		}
		if (len > (size_t)IWF_CARD_MAX * 4) {
			*why = xstrdup("the card is too large as xCard");
			err = XDMS_ERR_TOOBIG;
			goto out;
		}
		*uid = iwf_xcard_uid(data, len);
		err = iwf_job_transform(env, "xcard2pcc.xsl", data, len, xui, remote_user, env->opt->max_response, &out,
					&out_len, &r);
		if (err) {
			*why = xstrdup(r.reason);
			goto out;
		}
		goto transformed;
	}
	err = iwf_card_to_xcard(data, len, &xcard, &version, why);
	if (err)
		goto out;
	*uid = iwf_xcard_uid(xcard.data, xcard.len);
	/* RFC 6351 §4: the document element is <vcards>. */
	if (buf_append_str(&wrapped, "<vcards xmlns=\"" IWF_XCARD_NS "\">") ||
	    buf_append(&wrapped, xcard.data, xcard.len) || buf_append_str(&wrapped, "</vcards>")) {
		*why = xstrdup("the card is too large as xCard");
		err = XDMS_ERR_TOOBIG;
		goto out;
	}
	err = iwf_job_transform(env, a->import_xslt, wrapped.data, wrapped.len, xui, remote_user,
				env->opt->max_response, &out, &out_len, &r);
	if (err) {
		*why = xstrdup(r.reason);
		goto out;
	}
transformed:
	if (xml_parse(out, out_len, IWF_MAX_DEPTH, pcc, &issue) ||
	    (env->pcc_schema && xml_schema_validate(env->pcc_schema, *pcc, &issue))) {
		*why = xasprintf("not a valid PCC once transformed: %s", issue.phrase);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	if (photos_strip(*pcc) && fields != IWF_FIELD_ALL) {
		free(out);
		out = xml_doc_serialize(*pcc, &out_len);
	}
	/* Only the request's (and the preferences') fields; all of them is
	 * the common case, and costs nothing more. */
	if (fields != IWF_FIELD_ALL) {
		err = iwf_export_select(out, out_len, NULL, fields, &sel, &sel_len, &count, &dropped, &swhy);
		xml_doc_free(*pcc);
		*pcc = NULL;
		if (!err && xml_parse(sel, sel_len, IWF_MAX_DEPTH, pcc, &issue))
			err = XDMS_ERR_PARSE;
	} else if (!xml_node_child(xml_doc_root_elem(*pcc), IWF_PCC_NS, "person-details")) {
		err = XDMS_ERR_PARSE;
	}
	if (err)
		*why = xasprintf("the transformed card has no person-details: %s", swhy ? swhy : "");
out:
	if (err) {
		xml_doc_free(*pcc);
		*pcc = NULL;
		free(*uid);
		*uid = NULL;
	}
	free(swhy);
	free(sel);
	free(out);
	buf_cleanup(&xcard);
	buf_cleanup(&wrapped);
	return err;
}

/*
 * Cards are turned into contacts on threads of the import's own while the
 * worker reads the next batch from the 3rd party: the transforms' time
 * hides behind the 3rd party's. The worker queues the cards it read (at
 * most QUEUE_MAX waiting, so memory stays bounded by batches, not by the
 * book) and joins the threads before it looks at the result; until then
 * the threads add to rm->cards under out_lock, in the order they finish
 * (the order does not matter: contacts are found by uid and href).
 */
#define QUEUE_MAX 200
/* Converter threads. One: a second did not make a 1,000-card import faster
 * on two cores that the 3rd party and the worker also use (bench/iwf
 * --carddav), and every import would take one more core from other jobs. */
#define CONVERTERS 1

struct pending {
	char *href, *etag, *data;
	size_t len;
	struct pending *next;
};

struct convq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pending *head, *tail;
	size_t count;
	bool is_done;
	struct remote *rm;
	pthread_mutex_t out_lock; /* rm->cards, rm->count, rm->refused */
};

static void convert_one(struct remote *rm, pthread_mutex_t *lock, const char *href, const char *etag,
			const char *data, size_t len);
static enum xdms_err on_card_inline(void *arg, const char *href, const char *etag, const char *data, size_t len);

static void *converter(void *arg)
{
	struct convq *cq = arg;

	for (;;) {
		struct pending *p;

		pthread_mutex_lock(&cq->lock);
		while (!cq->head && !cq->is_done)
			pthread_cond_wait(&cq->cond, &cq->lock);
		p = cq->head;
		if (p) {
			cq->head = p->next;
			if (!cq->head)
				cq->tail = NULL;
			cq->count--;
			pthread_cond_broadcast(&cq->cond);
		}
		pthread_mutex_unlock(&cq->lock);
		if (!p)
			break;
		convert_one(cq->rm, &cq->out_lock, p->href, p->etag, p->data, p->len);
		free(p->href);
		free(p->etag);
		free(p->data);
		free(p);
	}
	return NULL;
}

static enum xdms_err on_card(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct convq *cq = arg;
	struct pending *p = xcalloc(1, sizeof(*p));

	p->href = xstrdup(href);
	p->etag = xstrdup(etag);
	p->data = data ? xstrndup(data, len) : NULL;
	p->len = len;
	pthread_mutex_lock(&cq->lock);
	while (cq->count >= QUEUE_MAX)
		pthread_cond_wait(&cq->cond, &cq->lock);
	if (cq->tail)
		cq->tail->next = p;
	else
		cq->head = p;
	cq->tail = p;
	cq->count++;
	pthread_cond_broadcast(&cq->cond);
	pthread_mutex_unlock(&cq->lock);
	return XDMS_ERR_OK;
}

/* Reads @need with the kind's fetch, converting on the converter thread
 * (or on this one when no thread can be started). */
static enum xdms_err fetch_and_convert(const struct iwf_call *call, struct remote *rm, const char *const *need,
				       size_t need_count, struct iwf_result *r)
{
	struct convq cq = { .rm = rm };
	pthread_t t[CONVERTERS];
	unsigned threads = 0;
	enum xdms_err err;

	pthread_mutex_init(&cq.lock, NULL);
	pthread_mutex_init(&cq.out_lock, NULL);
	pthread_cond_init(&cq.cond, NULL);
	while (need_count > 1 && threads < CONVERTERS && pthread_create(&t[threads], NULL, converter, &cq) == 0)
		threads++;
	err = call->a->kind->book->fetch(call, rm->book_url, need, need_count, threads ? on_card : on_card_inline,
					 threads ? (void *)&cq : (void *)rm, &rm->calls, r);
	pthread_mutex_lock(&cq.lock);
	cq.is_done = true;
	pthread_cond_broadcast(&cq.cond);
	pthread_mutex_unlock(&cq.lock);
	while (threads)
		pthread_join(t[--threads], NULL);
	pthread_cond_destroy(&cq.cond);
	pthread_mutex_destroy(&cq.out_lock);
	pthread_mutex_destroy(&cq.lock);
	return err;
}

static void convert_one(struct remote *rm, pthread_mutex_t *lock, const char *href, const char *etag,
			const char *data, size_t len)
{
	struct card c = { 0 };
	bool is_refused;

	c.href = xstrdup(href);
	c.etag = xstrdup(etag);
	is_refused = iwf_card_to_pcc(rm->env, rm->a, rm->q->xui, rm->q->remote_user, rm->q->fields, data, len,
				     &c.pcc, &c.uid, &c.why) != XDMS_ERR_OK;
	if (is_refused && !c.why)
		c.why = xstrdup("refused");
	/* A card without a UID is known by its href. */
	if (!c.uid)
		c.uid = xstrdup(href);
	c.name = href_name(href);
	if (lock)
		pthread_mutex_lock(lock);
	if (rm->count == rm->cap) {
		rm->cap = rm->cap ? rm->cap * 2 : 64;
		rm->cards = xrealloc(rm->cards, rm->cap * sizeof(*rm->cards));
	}
	rm->cards[rm->count++] = c;
	rm->refused += is_refused;
	if (lock)
		pthread_mutex_unlock(lock);
}

static enum xdms_err on_card_inline(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	convert_one(arg, NULL, href, etag, data, len);
	return XDMS_ERR_OK;
}

/* A listing that carries its cards (ops->list_cards): they are kept while
 * it runs, and those whose ETag differs from what their contact remembers
 * are converted once it ends. */
struct listed {
	struct pending *head, *tail;
};

static enum xdms_err on_listed(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct listed *l = arg;
	struct pending *p = xcalloc(1, sizeof(*p));

	p->href = xstrdup(href);
	p->etag = xstrdup(etag);
	p->data = xstrndup(data, len);
	p->len = len;
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	return XDMS_ERR_OK;
}

static enum xdms_err list_and_convert(const struct iwf_call *call, struct remote *rm, struct ab *ab, const char *token,
				      struct iwf_result *r)
{
	struct listed l = { 0 };
	enum xdms_err err = call->a->kind->book->list_cards(call, rm->book_url, token, &rm->list, on_listed, &l, r);

	rm->calls += rm->list.calls;
	while (l.head) {
		struct pending *p = l.head;
		struct ab_contact *c = ab_by_href(ab, p->href);

		l.head = p->next;
		if (!err && (!c || !c->etag || strcmp(c->etag, p->etag)))
			convert_one(rm, NULL, p->href, p->etag, p->data, p->len);
		free(p->href);
		free(p->etag);
		free(p->data);
		free(p);
	}
	return err;
}

/*
 * Locates and lists the book, and reads the cards that changed since what
 * the Address Book (@local, may be NULL) remembers; the Address Book stays
 * parsed in @ab (released by the caller, also on failure).
 */
static enum xdms_err remote_read(const struct iwf_call *call, const struct iwf_book_job *q, const char *local,
				 size_t local_len, struct remote *rm, struct ab *ab_out, struct iwf_result *r)
{
	const struct iwf_book_ops *ops = call->a->kind->book;
	char name[STORE_JOB_ID_MAX + 64], *why = NULL;
	struct book_state st;
	struct ab *ab = ab_out;
	const char **need = NULL;
	size_t need_count = 0;
	enum xdms_err err;

	if (q->book_url && q->book_url[0] && (rm->book_url = iwf_dav_url(call->url, q->book_url)))
		err = XDMS_ERR_OK; /* found before, at the adapter's server: no discovery */
	else
		err = ops->locate(call, q->remote_user, &rm->book_url, &rm->calls, r);
	if (err)
		return err;
	if (ab_open(local, local_len, call->a->id, ab, &why)) {
		iwf_result_set(r, 500, false, "%s", why);
		free(why);
		return XDMS_ERR_CORRUPT;
	}
	state_name(call->a, rm->book_url, name, sizeof(name));
	state_load(rm->env, q->xui, name, &st);
	/* The token stands for what the Address Book holds only while it
	 * holds what the last import left. */
	rm->used_token = st.has && st.token[0] && st.count == ab->mine_count;
	if (ops->list_cards) {
		err = list_and_convert(call, rm, ab, rm->used_token ? st.token : NULL, r);
		goto out;
	}
	err = ops->list(call, rm->book_url, rm->used_token ? st.token : NULL, &rm->list, r);
	rm->calls += rm->list.calls;
	if (err)
		goto out;
	need = xcalloc(rm->list.count + 1, sizeof(*need));
	for (size_t i = 0; i < rm->list.count; i++) {
		const struct iwf_book_entry *e = &rm->list.entries[i];
		struct ab_contact *c;

		if (!e->etag)
			continue;
		c = ab_by_href(ab, e->href);
		if (!c || !c->etag || strcmp(c->etag, e->etag))
			need[need_count++] = e->href;
	}
	err = fetch_and_convert(call, rm, need, need_count, r);
out:
	free(need);
	return err;
}

/* ---- the local half ------------------------------------------------------------------------------ */

struct tally {
	unsigned added, updated, removed, unchanged;
	unsigned mine_after;
};

/* Applies @rm to the Address Book @ab. */
static void apply(struct ab *ab, const struct remote *rm, const char *adapter, struct tally *t)
{
	memset(t, 0, sizeof(*t));
	/* Cards gone at the 3rd party take their contacts with them; after a
	 * full listing, so do contacts whose card was not listed. */
	for (size_t i = 0; i < rm->list.count; i++) {
		struct ab_contact *c;

		if (rm->list.entries[i].etag) {
			if ((c = ab_by_href(ab, rm->list.entries[i].href)) != NULL)
				c->is_touched = true;
			continue;
		}
		while ((c = ab_by_href(ab, rm->list.entries[i].href)) != NULL) {
			xml_node_remove(c->node);
			c->node = NULL;
			t->removed++;
		}
	}
	for (size_t i = 0; i < rm->count; i++) {
		const struct card *cd = &rm->cards[i];
		struct ab_contact *c;
		struct xml_node *pd;

		if (!cd->pcc)
			continue;
		pd = xml_node_child(xml_doc_root_elem(cd->pcc), IWF_PCC_NS, "person-details");
		c = ab_by_uid(ab, cd->uid);
		if (!c)
			c = ab_by_href(ab, cd->href);
		if (c) {
			source_set(c->source, cd->uid, cd->href, cd->etag);
			if (pd)
				contact_set_details(c->node, pd);
			c->is_touched = true;
			t->updated++;
		} else if (contact_add(ab, adapter, cd->uid, cd->href, cd->etag, pd)) {
			t->added++;
		}
	}
	if (rm->list.is_full) {
		for (size_t i = 0; i < ab->mine_count; i++) {
			struct ab_contact *c = &ab->mine[i];

			if (c->node && !c->is_touched) {
				xml_node_remove(c->node);
				c->node = NULL;
				t->removed++;
			}
		}
	}
	for (size_t i = 0; i < ab->mine_count; i++)
		if (ab->mine[i].node)
			t->mine_after++;
	t->mine_after += t->added;
}

/* Appends "; N cards refused: a (why), b (why)" to @r's reason. */
static bool refused_has(const char *list, const char *href)
{
	char h[20];
	const char *p = list;
	size_t n;

	if (!strcmp(list, "*"))
		return true;
	snprintf(h, sizeof(h), "%016llx", (unsigned long long)fnv1a_str(href));
	n = strlen(h);
	while ((p = strstr(p, h)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static void hash_add(char *out, size_t cap, const char *h, size_t *n)
{
	if ((*n)++ < REFUSED_KEPT)
		snprintf(out + strlen(out), cap - strlen(out), "%s%.16s", out[0] ? "," : "", h);
}

/* The hrefs refused now, and those refused before that this import did not
 * read again and did not see go (unchanged since): "*" when too many. */
static void refused_list(const struct remote *rm, const struct book_state *old, char *out, size_t cap)
{
	char h[20];
	size_t n = 0;

	out[0] = '\0';
	if (old->has && !strcmp(old->refused, "*") && !rm->list.is_full) {
		snprintf(out, cap, "*");
		return;
	}
	for (size_t i = 0; i < rm->count; i++)
		if (!rm->cards[i].pcc) {
			snprintf(h, sizeof(h), "%016llx", (unsigned long long)fnv1a_str(rm->cards[i].href));
			hash_add(out, cap, h, &n);
		}
	for (const char *p = old->has && strcmp(old->refused, "*") ? old->refused : ""; *p;) {
		size_t len = strcspn(p, ",");
		bool is_seen = false, is_listed = false;

		for (size_t k = 0; k < rm->count && !is_seen; k++) {
			snprintf(h, sizeof(h), "%016llx", (unsigned long long)fnv1a_str(rm->cards[k].href));
			is_seen = len == 16 && !strncmp(p, h, 16);
		}
		for (size_t k = 0; k < rm->list.count && !is_seen; k++) {
			snprintf(h, sizeof(h), "%016llx", (unsigned long long)fnv1a_str(rm->list.entries[k].href));
			if (len == 16 && !strncmp(p, h, 16)) {
				is_listed = true;
				is_seen = !rm->list.entries[k].etag; /* gone */
			}
		}
		if (!is_seen && len == 16 && (!rm->list.is_full || is_listed))
			hash_add(out, cap, p, &n);
		p += len;
		p += *p == ',';
	}
	if (n > REFUSED_KEPT)
		snprintf(out, cap, "*");
}

static void name_refused(struct iwf_result *r, const struct remote *rm)
{
	size_t n = strlen(r->reason), named = 0;

	if (!rm->refused)
		return;
	snprintf(r->reason + n, sizeof(r->reason) - n, "; %zu card%s refused:", rm->refused,
		 rm->refused == 1 ? "" : "s");
	for (size_t i = 0; i < rm->count && named < REFUSED_NAMED; i++) {
		if (rm->cards[i].pcc)
			continue;
		n = strlen(r->reason);
		snprintf(r->reason + n, sizeof(r->reason) - n, "%s %s (%.80s)", named ? "," : "", rm->cards[i].name,
			 rm->cards[i].why);
		named++;
	}
	if (rm->refused > named) {
		n = strlen(r->reason);
		snprintf(r->reason + n, sizeof(r->reason) - n, " and %zu more", rm->refused - named);
	}
}

void iwf_book_import(const struct iwf_env *env, void *curl, const struct store_job *job,
		     const struct iwf_adapter *a, const struct iwf_cred *cred, const struct iwf_book_job *q,
		     struct iwf_book_outcome *o)
{
	struct iwf_call call = { .env = env, .curl = curl, .a = a, .xui = q->xui, .username = cred->username,
				 .password = cred->password, .token = cred->token,
				 .remote_user = q->remote_user };
	struct remote rm = { 0 };
	char *local = NULL, *url = NULL, *why = NULL, *doc = NULL;
	size_t local_len = 0, doc_len = 0;
	char etag[STORE_ETAG_MAX], quoted[STORE_ETAG_MAX + 2], msg[256], name[STORE_JOB_ID_MAX + 64];
	char refused[sizeof(((struct book_state *)0)->refused)];
	struct book_state st_old;
	struct ab first = { 0 }; /* the Address Book as remote_read() parsed it */
	struct tally t = { 0 };
	enum xdms_err err;

	if (!a->kind->book) {
		iwf_result_set(&o->r, 501, false, "the adapter %s (kind %s) holds no address books", a->id,
			       a->kind->name);
		return;
	}
	if (iwf_adapter_url(a, q->remote_user, q->xui, &url, &o->r))
		goto out;
	call.url = url;
	rm.env = env;
	rm.a = a;
	rm.q = q;
	err = ab_read(env, q->xui, &local, &local_len, etag);
	if (err && err != XDMS_ERR_NOTFOUND) {
		iwf_result_set(&o->r, 500, true, "the Address Book could not be read (%s)", xdms_err_str(err));
		goto out;
	}
	if (remote_read(&call, q, local, local_len, &rm, &first, &o->r))
		goto out;
	state_name(a, rm.book_url, name, sizeof(name));
	state_load(env, q->xui, name, &st_old);
	if (rm.count && rm.refused == rm.count) {
		iwf_result_set(&o->r, 502, false, "no card of the address book could be read");
		name_refused(&o->r, &rm);
		goto out;
	}
	if (!q->is_auto_store) {
		iwf_result_set(&o->r, 200, false, "not stored per preferences (auto-store is off)");
		goto out;
	}
	for (unsigned i = 0; i <= STORE_RETRIES; i++) {
		struct ab ab;
		unsigned status;

		if (q->wants ? !q->wants(q->wants_arg) : !iwf_job_is_ours(env, job)) {
			o->is_cancelled = true;
			goto out;
		}
		if (i) {
			free(local);
			err = ab_read(env, q->xui, &local, &local_len, etag);
			if (err && err != XDMS_ERR_NOTFOUND) {
				iwf_result_set(&o->r, 500, true, "the Address Book could not be read (%s)",
					       xdms_err_str(err));
				goto out;
			}
		}
		if (i == 0) {
			ab = first; /* the same bytes: parsed once */
			memset(&first, 0, sizeof(first));
		} else if (ab_open(local, local_len, a->id, &ab, &why)) {
			iwf_result_set(&o->r, 500, false, "%s", why);
			goto out;
		}
		apply(&ab, &rm, a->id, &t);
		if (!t.added && !t.updated && !t.removed) {
			ab_cleanup(&ab);
			snprintf(o->etag, sizeof(o->etag), "%s", etag);
			break;
		}
		free(doc);
		doc = xml_doc_serialize(ab.doc, &doc_len);
		ab_cleanup(&ab);
		snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
		status = iwf_job_write(env, XCAP_METHOD_PUT, IWF_AB_AUID, q->xui, "application/vnd.oma.cab-address-book+xml",
				       doc, doc_len, local ? quoted : NULL, local ? NULL : "*", o->etag, msg,
				       sizeof(msg));
		if (status == 200 || status == 201)
			break;
		if (status == 412 && i < STORE_RETRIES)
			continue;
		if (status == 412)
			iwf_result_set(&o->r, 409, false, "the Address Book kept changing while the import was stored");
		else if (status == 409 && strstr(msg, "too large"))
			iwf_result_set(&o->r, 413, false, "the imported contacts do not fit the Address Book: %s", msg);
		else if (status == 409)
			iwf_result_set(&o->r, 502, false, "the imported contacts do not fit the Address Book: %s", msg);
		else
			iwf_result_set(&o->r, status >= 500 ? 500 : status, status >= 500,
				       "the Address Book could not be stored (HTTP %u)", status);
		goto out;
	}
	/* After the Address Book: see the opening comment on a crash between.
	 * The refused cards are remembered so that an export does not take
	 * them for cards whose contacts the user deleted. */
	refused_list(&rm, &st_old, refused, sizeof(refused));
	if (state_save(env, q->xui, name, rm.list.token, t.mine_after, refused))
		log_warn("iwf job %llu (%s %s): the sync-token of %s could not be stored; the next import lists "
			 "from the previous one",
			 (unsigned long long)job->id, job->xui, job->request_id, a->id);
	o->count = t.added + t.updated;
	o->changed = t.added + t.updated + t.removed;
	if (strlen(rm.book_url) < sizeof(o->book_url))
		memcpy(o->book_url, rm.book_url, strlen(rm.book_url) + 1);
	iwf_result_set(&o->r, rm.refused ? 206 : 200, false,
		       "address book imported from %s: %zu cards read, %u contacts added, %u updated, %u removed "
		       "(%s; %u requests)",
		       a->id, rm.count, t.added, t.updated, t.removed,
		       rm.used_token ? (rm.list.was_reset ? "the stored sync-token was refused: full listing" :
							  "changes since the stored sync-token") :
				       is_xcard_kind(a) ? "full listing" :
				       rm.list.is_sync ? "full sync-collection" : "full PROPFIND listing",
		       rm.calls);
	name_refused(&o->r, &rm);
out:
	ab_cleanup(&first);
	free(doc);
	free(local);
	free(url);
	free(why);
	remote_cleanup(&rm);
}

/* ---- the user's own card (the PCC through the kind's fetch and send) ----------------------------- */

/* The user's own card in the book: the card whose file name (without
 * ".vcf") or UID is the request's <remote-user>, or the book's only card. */
struct own {
	char *href, *etag, *uid;
	struct buf xcard; /* the card as one xCard <vcard> */
	unsigned version;
	bool is_found;
};

struct own_search {
	const struct iwf_call *c;
	struct own *own;
	size_t cards;
	char *why;        /* the first card that could not be read */
};

static void own_cleanup(struct own *o)
{
	free(o->href);
	free(o->etag);
	free(o->uid);
	buf_cleanup(&o->xcard);
	memset(o, 0, sizeof(*o));
}

static bool href_is(const char *href, const char *who)
{
	const char *s = strrchr(href, '/');
	size_t n = strlen(who);

	s = s ? s + 1 : href;
	return who[0] && !strncmp(s, who, n) && (!s[n] || !strcmp(s + n, ".vcf"));
}

static enum xdms_err on_own_card(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct own_search *s = arg;
	const char *who = s->c->remote_user ? s->c->remote_user : "";
	struct buf xcard;
	unsigned version = 0;
	char *uid, *why = NULL;

	s->cards++;
	buf_init(&xcard, (size_t)IWF_CARD_MAX * 4);
	if (iwf_card_to_xcard(data, len, &xcard, &version, &why)) {
		if (!s->why)
			s->why = xasprintf("%s: %s", href, why);
		free(why);
		buf_cleanup(&xcard);
		return XDMS_ERR_OK;
	}
	uid = iwf_xcard_uid(xcard.data, xcard.len);
	if (!s->own->is_found || href_is(href, who) || (uid && !strcmp(uid, who))) {
		bool is_match = href_is(href, who) || (uid && !strcmp(uid, who));

		own_cleanup(s->own);
		s->own->href = xstrdup(href);
		s->own->etag = xstrdup(etag);
		s->own->uid = uid;
		s->own->xcard = xcard;
		s->own->version = version;
		s->own->is_found = is_match;
		return XDMS_ERR_OK;
	}
	free(uid);
	buf_cleanup(&xcard);
	return XDMS_ERR_OK;
}

/* Finds the user's own card in the book at *book_url (located here when NULL). */
static enum xdms_err own_find(const struct iwf_call *c, char **book_url, struct own *own, struct iwf_result *r)
{
	const struct iwf_book_ops *ops = c->a->kind->book;
	struct iwf_book_list list = { 0 };
	struct own_search s = { c, own, 0, NULL };
	const char **hrefs = NULL;
	const char *who = c->remote_user ? c->remote_user : "";
	size_t n = 0, members = 0;
	unsigned calls = 0;
	enum xdms_err err = XDMS_ERR_OK;

	memset(own, 0, sizeof(*own));
	if (!*book_url)
		err = ops->locate(c, who, book_url, &calls, r);
	if (!err)
		err = ops->list(c, *book_url, NULL, &list, r);
	if (err)
		goto out;
	hrefs = xcalloc(list.count + 1, sizeof(*hrefs));
	/* A card named after the user is read alone. */
	for (size_t i = 0; i < list.count; i++)
		if (list.entries[i].etag) {
			members++;
			if (href_is(list.entries[i].href, who))
				hrefs[n++] = list.entries[i].href;
		}
	if (!n)
		for (size_t i = 0; i < list.count; i++)
			if (list.entries[i].etag)
				hrefs[n++] = list.entries[i].href;
	err = ops->fetch(c, *book_url, hrefs, n, on_own_card, &s, &calls, r);
	if (err)
		goto out;
	if (!own->is_found && !(members == 1 && own->href)) {
		own_cleanup(own);
		if (s.why && members == 1)
			iwf_result_set(r, 502, false, "the card at %.200s", s.why);
		else
			iwf_result_set(r, 404, false, "the address book has no card for '%.80s' (by file name or UID)%s",
				       who, members == 1 ? "" : " and more than one card");
		err = XDMS_ERR_NOTFOUND;
	}
	own->is_found = own->href != NULL;
out:
	free(s.why);
	free(hrefs);
	iwf_book_list_cleanup(&list);
	return err;
}

enum xdms_err iwf_book_pcc_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r)
{
	struct own own;
	char *book_url = NULL;
	enum xdms_err err = own_find(c, &book_url, &own, r);

	if (!err && (buf_append_str(body, "<vcards xmlns=\"" IWF_XCARD_NS "\">") ||
		     buf_append(body, own.xcard.data, own.xcard.len) || buf_append_str(body, "</vcards>"))) {
		iwf_result_set(r, 413, false, "the card is larger than the adapter's max-response");
		err = XDMS_ERR_TOOBIG;
	}
	own_cleanup(&own);
	free(book_url);
	return err;
}

/* ---- the user's own card, watched (the kind's poll) ------------------------------------------------ */

/*
 * A subscribe-profile of the PCC polls the user's own card. The validator
 * is "ETag\nURL" of the card last imported: a poll is then one conditional
 * GET of that URL (304, or the same ETag: unchanged). A card gone from
 * there (404, 410), or no validator yet, means finding the card again as
 * an import does (own_find); it is a change when its ETag or URL differs.
 */

/* "@etag\n@url" into @out; "" when it does not fit (the next poll looks
 * for the card again). */
static void validator_join(const char *etag, const char *url, char out[IWF_VALIDATOR_MAX])
{
	size_t le = strlen(etag), lu = strlen(url);

	out[0] = '\0';
	if (le + lu + 2 > IWF_VALIDATOR_MAX)
		return;
	memcpy(out, etag, le);
	out[le] = '\n';
	memcpy(out + le + 1, url, lu + 1);
}

static void own_validator(const char *book_url, const struct own *own, char out[IWF_VALIDATOR_MAX])
{
	char *url = iwf_dav_url(book_url, own->href);

	out[0] = '\0';
	if (url && own->etag && own->etag[0])
		validator_join(own->etag, url, out);
	free(url);
}

static enum xdms_err vcards_put(struct buf *body, const char *xcard, size_t len, struct iwf_result *r)
{
	if (buf_append_str(body, "<vcards xmlns=\"" IWF_XCARD_NS "\">") || buf_append(body, xcard, len) ||
	    buf_append_str(body, "</vcards>")) {
		iwf_result_set(r, 413, false, "the card is larger than the adapter's max-response");
		return XDMS_ERR_TOOBIG;
	}
	return XDMS_ERR_OK;
}

/* The conditional GET of the card named by @validator: *is_known when its
 * answer settles the poll, not when the card is not there any more. */
static enum xdms_err own_get(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			     bool *is_known, bool *is_changed, struct buf *body, struct iwf_result *r)
{
	const struct iwf_adapter *a = c->a;
	const char *nl = strchr(validator, '\n'), *url = nl + 1;
	char old_etag[IWF_VALIDATOR_MAX], etag[IWF_VALIDATOR_MAX] = "", *why = NULL;
	struct iwf_http_call call;
	struct buf card, xcard;
	unsigned version = 0;
	long status = 0;
	enum xdms_err err;

	snprintf(old_etag, sizeof(old_etag), "%.*s", (int)(nl - validator), validator);
	memset(&call, 0, sizeof(call));
	call.method = "GET";
	call.url = url;
	call.accept = "text/vcard";
	call.timeout_s = a->timeout_s;
	call.connect_timeout_s = a->connect_timeout_s;
	call.max_response = IWF_CARD_MAX;
	call.ca_file = c->env->opt->ca_file;
	call.cancel = c->env->stopping;
	call.auth = a->auth;
	call.username = c->username;
	call.password = c->password;
	call.token = c->token;
	call.if_none_match = old_etag;
	call.etag_out = etag;
	call.etag_out_len = sizeof(etag);
	buf_init(&card, IWF_CARD_MAX);
	buf_init(&xcard, (size_t)IWF_CARD_MAX * 4);
	err = iwf_http_do(c->curl, &call, &card, &status, r);
	if (err && (status == 404 || status == 410)) {
		err = XDMS_ERR_OK; /* moved or deleted: looked for again */
		goto out;
	}
	if (err)
		goto out;
	*is_known = true;
	if (status == 304 || (etag[0] && !strcmp(etag, old_etag))) {
		snprintf(new_validator, IWF_VALIDATOR_MAX, "%s", validator);
		goto out;
	}
	err = iwf_card_to_xcard(card.data ? card.data : "", card.len, &xcard, &version, &why);
	if (err) {
		iwf_result_set(r, 502, false, "the card at %.200s: %s", url, why);
		goto out;
	}
	err = vcards_put(body, xcard.data, xcard.len, r);
	if (err)
		goto out;
	*is_changed = true;
	if (etag[0])
		validator_join(etag, url, new_validator);
out:
	free(why);
	buf_cleanup(&card);
	buf_cleanup(&xcard);
	return err;
}

enum xdms_err iwf_book_pcc_poll(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
				bool *is_changed, struct buf *body, struct iwf_result *r)
{
	const char *nl = strchr(validator, '\n');
	char *same = nl ? iwf_dav_url(c->url, nl + 1) : NULL, *book_url = NULL;
	bool is_known = false;
	struct own own;
	enum xdms_err err;

	*is_changed = false;
	new_validator[0] = '\0';
	/* Only a URL at the adapter's own server gets its credentials (the
	 * adapter's URL may have changed since the validator was stored). */
	if (same) {
		free(same);
		err = own_get(c, validator, new_validator, &is_known, is_changed, body, r);
		if (err || is_known)
			return err;
	}
	err = own_find(c, &book_url, &own, r);
	if (!err) {
		own_validator(book_url, &own, new_validator);
		*is_changed = !new_validator[0] || strcmp(new_validator, validator) != 0;
		if (*is_changed)
			err = vcards_put(body, own.xcard.data, own.xcard.len, r);
	}
	own_cleanup(&own);
	free(book_url);
	return err;
}

/* The xCard properties the PCC mapping writes (SPEC §5.2): an export
 * decides them. Every other property of the card it replaces is kept. */
static bool is_mapped(const char *name)
{
	static const char *const mapped[] = { "fn",  "n",   "nickname", "tel",   "email", "impp", "url",
					      "adr", "org", "title",    "bday",  "photo", "uid",  "group" };

	for (size_t i = 0; i < sizeof(mapped) / sizeof(mapped[0]); i++)
		if (!strcmp(name, mapped[i]))
			return true;
	return false;
}

/* The <vcard> of an xCard document (a <vcard>, or <vcards> holding one). */
static struct xml_node *vcard_of(struct xml_doc *doc)
{
	struct xml_node *v = xml_doc_root_elem(doc);

	if (xml_node_is(v, IWF_XCARD_NS, "vcards"))
		v = xml_node_child(v, IWF_XCARD_NS, "vcard");
	return xml_node_is(v, IWF_XCARD_NS, "vcard") ? v : NULL;
}

/* True for an xCard <photo> that an import leaves out of the contact (a
 * data: URI over IWF_PHOTO_INLINE_MAX, see photos_strip()): the contact
 * cannot say whether it is still wanted, so the card keeps it. Any other
 * photo was in the contact; when the contact no longer has it, the user
 * removed it, and so does the card. */
static bool is_kept_photo(const struct xml_node *photo)
{
	char *uri = xml_node_text(xml_node_child(photo, IWF_XCARD_NS, "uri"));
	bool is_kept = uri && !strncmp(uri, "data:", 5) && strlen(uri) > IWF_PHOTO_INLINE_MAX;

	free(uri);
	return is_kept;
}

/* Keeps in @v what the card @old (xCard, may be NULL) has and the PCC
 * cannot say: its unmapped properties (NOTE, CATEGORIES, extensions...)
 * and, when the new card has none, a photo too large for a contact (it
 * stays at the 3rd party, see photos_strip()). */
static void keep_unmapped(struct xml_node *v, const char *old, size_t old_len)
{
	struct xml_doc *od = NULL;
	struct xml_issue issue;
	struct xml_node *ov;
	bool has_photo = xml_node_child(v, IWF_XCARD_NS, "photo") != NULL;

	if (!old || !old_len || xml_parse(old, old_len, IWF_MAX_DEPTH, &od, &issue))
		return;
	ov = vcard_of(od);
	for (struct xml_node *p = xml_node_child(ov, NULL, NULL); p; p = xml_node_next(p, NULL, NULL)) {
		const char *name = xml_node_name(p);

		if (!xml_node_is(p, IWF_XCARD_NS, name))
			continue;
		if (!is_mapped(name) || (!strcmp(name, "photo") && !has_photo && is_kept_photo(p)))
			xml_node_append_copy(v, p);
	}
	xml_doc_free(od);
}

/* @xcard (the export transform's <vcard>, or <vcards> holding one) with
 * <uid> set to @uid, merged with the card it replaces (@old, xCard, or
 * NULL), as vCard @version. */
static enum xdms_err card_for(const char *xcard, size_t len, const char *old, size_t old_len, const char *uid,
			      unsigned version, struct buf *out, struct iwf_result *r)
{
	struct xml_doc *doc = NULL, *tmp = NULL;
	struct xml_issue issue;
	struct xml_node *v, *old_uid;
	char *text = NULL, *why = NULL, *u = NULL;
	size_t text_len = 0;
	struct buf b;
	enum xdms_err err = XDMS_ERR_PARSE;

	if (xml_parse(xcard, len, IWF_MAX_DEPTH, &doc, &issue)) {
		iwf_result_set(r, 502, false, "the export transform's output is not XML: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	v = vcard_of(doc);
	if (!v) {
		iwf_result_set(r, 502, false, "the export transform's output has no xCard <vcard>");
		goto out;
	}
	buf_init(&b, 4096);
	if (buf_append_str(&b, "<uid xmlns=\"" IWF_XCARD_NS "\"><text>") ||
	    buf_append_xml_escaped(&b, uid, strlen(uid)) || buf_append_str(&b, "</text></uid>"))
		abort();
	u = buf_take(&b, NULL);
	if (xml_parse(u, strlen(u), IWF_MAX_DEPTH, &tmp, &issue))
		goto out;
	old_uid = xml_node_child(v, IWF_XCARD_NS, "uid");
	if (old_uid)
		xml_node_replace_copy(old_uid, xml_doc_root_elem(tmp));
	else
		xml_node_append_copy(v, xml_doc_root_elem(tmp));
	keep_unmapped(v, old, old_len);
	text = xml_doc_serialize(doc, &text_len);
	if (version == 0) {
		/* An xCard kind: the card as it is. */
		err = buf_append(out, text, text_len);
		if (err)
			iwf_result_set(r, 413, false, "the exported card is too large");
		goto out;
	}
	err = iwf_xcard_to_card(text, text_len, version, out, &why);
	if (err)
		iwf_result_set(r, 502, false, "the exported card cannot be written as vCard: %s", why);
out:
	free(why);
	free(text);
	free(u);
	xml_doc_free(tmp);
	xml_doc_free(doc);
	return err;
}

/* A file name for a new card: its UID, percent-encoded. */
static char *new_href(const char *uid)
{
	struct buf b;

	buf_init(&b, 4096);
	for (const unsigned char *p = (const unsigned char *)uid; *p; p++) {
		bool is_plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
				strchr("-._~", *p);

		if (is_plain ? buf_append(&b, p, 1) : buf_printf(&b, "%%%02X", *p))
			break;
	}
	if (buf_append_str(&b, ".vcf"))
		abort();
	return buf_take(&b, NULL);
}

/*
 * A test-only pause between reading the user's own card and writing it
 * back (a PCC export), so that a test can change the card at the 3rd party
 * exactly there and see the 412 path. Inert unless the environment
 * variable XDMSD_TEST_PAUSE_BEFORE_CARD_PUT_MS is set (a number of
 * milliseconds, capped at 60000); no setting turns it on.
 */
#define TEST_PAUSE_ENV "XDMSD_TEST_PAUSE_BEFORE_CARD_PUT_MS"
#define TEST_PAUSE_MAX_MS 60000ul

static void test_pause_before_put(const struct iwf_call *c, unsigned attempt)
{
	const char *v = getenv(TEST_PAUSE_ENV);
	unsigned long ms;
	char *end;
	struct timespec ts;

	if (!v || !*v)
		return;
	ms = strtoul(v, &end, 10);
	if (*end || !ms)
		return;
	if (ms > TEST_PAUSE_MAX_MS)
		ms = TEST_PAUSE_MAX_MS;
	log_warn("iwf: %s: pausing %lu ms before writing the card, attempt %u (%s is set)", c->xui, ms, attempt + 1,
		 TEST_PAUSE_ENV);
	ts.tv_sec = (time_t)(ms / 1000u);
	ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

enum xdms_err iwf_book_pcc_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body,
				long *status, struct iwf_result *r)
{
	const struct iwf_book_ops *ops = c->a->kind->book;
	struct own own = { 0 };
	struct buf card;
	char *book_url = NULL, *href = NULL, etag[IWF_CARD_ETAG_MAX];
	const char *who = c->remote_user && c->remote_user[0] ? c->remote_user : NULL;
	enum xdms_err err = XDMS_ERR_OK;

	(void)body;
	*status = 0;
	buf_init(&card, (size_t)IWF_CARD_MAX);
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		buf_reset(&card);
		own_cleanup(&own);
		err = own_find(c, &book_url, &own, r);
		if (err == XDMS_ERR_NOTFOUND && who && book_url) {
			err = XDMS_ERR_OK; /* no card yet: created under the user's name */
		} else if (err == XDMS_ERR_NOTFOUND) {
			iwf_result_set(r, 400, false, "name the card to write in <remote-user> (its UID)");
			break;
		}
		if (err)
			break;
		err = card_for(data, len, own.is_found ? own.xcard.data : NULL, own.is_found ? own.xcard.len : 0,
			       own.is_found ? (own.uid ? own.uid : who ? who : "") : who, own.is_found ? own.version : 4,
			       &card, r);
		if (err)
			break;
		free(href);
		href = own.is_found ? xstrdup(own.href) : new_href(who);
		test_pause_before_put(c, attempt);
		/* RFC 6352 §9.3 / RFC 7232: update only what we read, create only
		 * what is not there. */
		err = ops->put(c, book_url, href, own.is_found ? own.etag : NULL, card.data, card.len, etag, status, r);
		if (!err || *status != 412)
			break;
	}
	if (err && *status == 412)
		iwf_result_set(r, 409, false, "the card at the 3rd party kept changing while it was written");
	own_cleanup(&own);
	buf_cleanup(&card);
	free(href);
	free(book_url);
	return err;
}

/* ---- export of the address book --------------------------------------------------------------- */

/* A card written for a contact: the contact remembers it. */
struct written {
	char *id, *uid, *href, *etag;
};

/* A card as it is at the 3rd party, read before it is replaced. */
struct old_card {
	char *href;
	char *xcard;
	size_t xcard_len;
};

struct export_run {
	struct old_card *old;
	size_t old_count, old_cap;
	const struct iwf_call *call;
	const struct iwf_book_job *q;
	const char *book_url;
	unsigned version;          /* the book's vCard version */
	struct written *w;
	size_t w_count, w_cap;
	unsigned created, updated, deleted, conflicts, refused;
	char refused_names[160];
};

/* A card read before the export: its version is the book's, its xCard is
 * merged into the card that replaces it. */
static enum xdms_err on_old_card(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct export_run *x = arg;
	struct buf xcard;
	char *why = NULL;
	unsigned v = 0;

	(void)etag;
	buf_init(&xcard, (size_t)IWF_CARD_MAX * 4);
	/* An xCard kind's card is kept as it is (x->version stays 0). */
	if (x->version == 0 ? len && !buf_append(&xcard, data, len) :
			      !iwf_card_to_xcard(data, len, &xcard, &v, &why) && v) {
		if (v)
			x->version = v;
		if (x->old_count == x->old_cap) {
			x->old_cap = x->old_cap ? x->old_cap * 2 : 64;
			x->old = xrealloc(x->old, x->old_cap * sizeof(*x->old));
		}
		x->old[x->old_count].href = xstrdup(href);
		x->old[x->old_count].xcard_len = xcard.len;
		x->old[x->old_count++].xcard = buf_take(&xcard, NULL);
	}
	free(why);
	buf_cleanup(&xcard);
	return XDMS_ERR_OK;
}

static const struct old_card *old_card_of(const struct export_run *x, const char *href)
{
	for (size_t i = 0; href && i < x->old_count; i++)
		if (!strcmp(x->old[i].href, href))
			return &x->old[i];
	return NULL;
}

static enum xdms_err on_etag(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	char *out = arg;

	(void)href;
	(void)data;
	(void)len;
	snprintf(out, IWF_CARD_ETAG_MAX, "%s", etag);
	return XDMS_ERR_OK;
}

/*
 * The UID of the card first written for the user's contact @id: the same
 * for the same user, adapter, book and contact, so that an export whose
 * final Address Book write failed (the contact did not remember its card)
 * finds the card again at the same href on the next export (If-None-Match:
 * * answers 412, and the card is adopted) instead of creating another.
 * Hashed, so that nothing of the contact id shows; RFC 9562 §5.8 (version
 * 8, a UUID of the application's own making).
 */
static char *new_uid(const struct export_run *x, const char *id)
{
	uint64_t h[2];
	unsigned char r[16];

	for (unsigned k = 0; k < 2; k++) {
		h[k] = fnv1a_add(fnv1a(k ? "xdmsd-card-uid-2" : "xdmsd-card-uid-1", 16), x->q->xui, strlen(x->q->xui) + 1);
		h[k] = fnv1a_add(h[k], x->call->a->id, strlen(x->call->a->id) + 1);
		h[k] = fnv1a_add(h[k], x->book_url, strlen(x->book_url) + 1);
		h[k] = fnv1a_add(h[k], id, strlen(id));
		for (unsigned b = 0; b < 8; b++)
			r[k * 8 + b] = (unsigned char)(h[k] >> (56 - 8 * b));
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x80); /* version 8 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* the RFC's variant */
	return xasprintf("urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
			 r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* The person-details @pd as a PCC document of its own (heap). */
static char *pcc_of(const struct xml_node *pd, size_t *len)
{
	static const char shell[] = "<pcc xmlns=\"" IWF_PCC_NS "\"/>";
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	char *out;

	if (xml_parse(shell, sizeof(shell) - 1, IWF_MAX_DEPTH, &doc, &issue))
		abort();
	xml_node_append_copy(xml_doc_root_elem(doc), pd);
	out = xml_doc_serialize(doc, len);
	xml_doc_free(doc);
	return out;
}

/* Writes one contact's card. false with @r set when the export must stop
 * (the 3rd party unavailable, the credentials refused). */
static bool export_contact(struct export_run *x, const struct iwf_env *env, struct xml_node *c,
			   const struct ab_contact *mine, struct iwf_result *r)
{
	const struct iwf_call *call = x->call;
	const struct iwf_book_ops *ops = call->a->kind->book;
	struct xml_node *pd = xml_node_child(c, IWF_PCC_NS, "person-details");
	char *pcc = NULL, *sel = NULL, *xc = NULL, *why = NULL, *uid = NULL, *href = NULL, *id;
	char etag[IWF_CARD_ETAG_MAX], cur[IWF_CARD_ETAG_MAX];
	size_t pcc_len = 0, sel_len = 0, xc_len = 0;
	unsigned count, dropped;
	struct iwf_result cr;
	struct buf card;
	long status = 0;
	bool go_on = true, is_done = false;

	if (!pd)
		return true;
	id = xml_node_attr(c, "id");
	buf_init(&card, (size_t)IWF_CARD_MAX);
	pcc = pcc_of(pd, &pcc_len);
	if (iwf_export_select(pcc, pcc_len, NULL, x->q->fields, &sel, &sel_len, &count, &dropped, &why) ||
	    iwf_job_transform(env, is_xcard_kind(call->a) ? "pcc2xcard.xsl" : call->a->export_xslt, sel, sel_len,
			      x->q->xui, x->q->remote_user,
			      (size_t)IWF_CARD_MAX * 4, &xc, &xc_len, &cr)) {
		x->refused++;
		goto out;
	}
	uid = mine && mine->uid ? xstrdup(mine->uid) : new_uid(x, id ? id : "");
	if (mine && mine->href) {
		href = xstrdup(mine->href);
	} else {
		/* The path, as the 3rd party's listings give hrefs. */
		char *name = new_href(uid + (strncmp(uid, "urn:uuid:", 9) ? 0 : 9));
		const char *path = strstr(x->book_url, "://");

		path = path ? path + 3 + strcspn(path + 3, "/") : x->book_url;
		href = xasprintf("%s%s%s", path, path[0] && path[strlen(path) - 1] == '/' ? "" : "/", name);
		free(name);
	}
	if (card_for(xc, xc_len, old_card_of(x, href) ? old_card_of(x, href)->xcard : NULL,
		     old_card_of(x, href) ? old_card_of(x, href)->xcard_len : 0, uid, x->version, &card, &cr)) {
		x->refused++;
		goto out;
	}
	snprintf(cur, sizeof(cur), "%s", mine && mine->etag ? mine->etag : "");
	if (!mine && ops->create) {
		/* The 3rd party names the new card. */
		char *named = NULL;

		if (!ops->create(call, x->book_url, card.data, card.len, &named, etag, &status, &cr)) {
			free(href);
			href = named;
			is_done = true;
		}
	}
	for (unsigned attempt = 0; attempt < 2 && !is_done && (mine || !ops->create); attempt++) {
		/* Known ETag: If-Match. None: a new card (If-None-Match: *; a
		 * 412 then adopts the card below), or, where the 3rd party names
		 * new items (create), an update without a precondition. */
		const char *im = cur[0] ? cur : mine && ops->create ? "" : NULL;

		if (!ops->put(call, x->book_url, href, im, card.data, card.len, etag, &status, &cr)) {
			is_done = true;
		} else if (status == 412 && attempt == 0) {
			/* Changed at the 3rd party since, or (a new contact) there
			 * already, written by an export that could not record it:
			 * read its ETag and write once more over it (the contact
			 * wins for what it holds). */
			const char *one[] = { href };
			unsigned calls = 0;

			cur[0] = '\0';
			if (ops->fetch(call, x->book_url, one, 1, on_etag, cur, &calls, &cr) || !cur[0])
				break;
		} else {
			break;
		}
	}
	if (is_done) {
		struct written *w;

		if (x->w_count == x->w_cap) {
			x->w_cap = x->w_cap ? x->w_cap * 2 : 64;
			x->w = xrealloc(x->w, x->w_cap * sizeof(*x->w));
		}
		w = &x->w[x->w_count++];
		w->id = xstrdup(id ? id : "");
		w->uid = xstrdup(uid);
		w->href = xstrdup(href);
		w->etag = xstrdup(etag);
		if (mine)
			x->updated++;
		else
			x->created++;
	} else if (status == 412 || status == 404) {
		x->conflicts++;
	} else if (cr.is_transient || cr.code == 401 || cr.code == 403) {
		*r = cr;
		go_on = false;
	} else {
		x->refused++;
		if (strlen(x->refused_names) + strlen(id ? id : "") + 3 < sizeof(x->refused_names))
			snprintf(x->refused_names + strlen(x->refused_names),
				 sizeof(x->refused_names) - strlen(x->refused_names), "%s%s",
				 x->refused_names[0] ? ", " : "", id ? id : "");
	}
out:
	free(id);
	free(pcc);
	free(sel);
	free(xc);
	free(why);
	free(uid);
	free(href);
	buf_cleanup(&card);
	return go_on;
}

/* The contacts the export wrote remember their cards (uid, href, etag). */
static void remember(struct ab *ab, const struct export_run *x, const char *adapter)
{
	for (size_t i = 0; i < x->w_count; i++) {
		const struct written *w = &x->w[i];

		for (struct xml_node *c = xml_node_child(xml_doc_root_elem(ab->doc), IWF_AB_NS, "contact"); c;
		     c = xml_node_next(c, IWF_AB_NS, "contact")) {
			char *id = xml_node_attr(c, "id");
			bool is_it = id && !strcmp(id, w->id);
			struct xml_node *src, *pd;

			free(id);
			if (!is_it)
				continue;
			src = xml_node_child(c, IWF_AB_NS, "source");
			if (!src) {
				/* <source> goes before person-details (the schema's order). */
				struct xml_doc *tmp = NULL;
				struct xml_issue issue;
				struct buf b;

				buf_init(&b, 4096);
				if (buf_append_str(&b, "<source xmlns=\"" IWF_AB_NS "\">") ||
				    buf_append_xml_escaped(&b, adapter, strlen(adapter)) || buf_append_str(&b, "</source>"))
					abort();
				if (!xml_parse(b.data, b.len, IWF_MAX_DEPTH, &tmp, &issue)) {
					pd = xml_node_child(c, IWF_PCC_NS, "person-details");
					src = xml_node_append_copy(c, xml_doc_root_elem(tmp));
					if (pd) {
						xml_node_append_copy(c, pd);
						xml_node_remove(pd);
					}
				}
				xml_doc_free(tmp);
				buf_cleanup(&b);
			}
			if (src)
				source_set(src, w->uid, w->href, w->etag);
			break;
		}
	}
}

void iwf_book_export(const struct iwf_env *env, void *curl, const struct store_job *job,
		     const struct iwf_adapter *a, const struct iwf_cred *cred, const struct iwf_book_job *q,
		     struct iwf_book_outcome *o)
{
	struct iwf_call call = { .env = env, .curl = curl, .a = a, .xui = q->xui, .username = cred->username,
				 .password = cred->password, .token = cred->token,
				 .remote_user = q->remote_user };
	const struct iwf_book_ops *ops = a->kind->book;
	struct export_run x = { 0 };
	struct iwf_book_list all = { 0 }, changed = { 0 };
	struct book_state st;
	struct ab ab = { 0 };
	char *url = NULL, *why = NULL, *book_url = NULL, *local = NULL, *doc = NULL;
	char etag[STORE_ETAG_MAX], quoted[STORE_ETAG_MAX + 2], msg[256], name[STORE_JOB_ID_MAX + 64];
	size_t local_len = 0, doc_len = 0;
	unsigned calls = 0;
	bool has_changes = false;
	enum xdms_err err;

	if (!ops) {
		iwf_result_set(&o->r, 501, false, "the adapter %s (kind %s) holds no address books", a->id,
			       a->kind->name);
		return;
	}
	if (iwf_adapter_url(a, q->remote_user, q->xui, &url, &o->r))
		goto out;
	call.url = url;
	err = ab_read(env, q->xui, &local, &local_len, etag);
	if (err) {
		iwf_result_set(&o->r, err == XDMS_ERR_NOTFOUND ? 404 : 500, err != XDMS_ERR_NOTFOUND,
			       err == XDMS_ERR_NOTFOUND ? "there is no Address Book to export" :
							  "the Address Book could not be read");
		goto out;
	}
	if (ab_open(local, local_len, a->id, &ab, &why)) {
		iwf_result_set(&o->r, 500, false, "%s", why);
		goto out;
	}
	if (ops->locate(&call, q->remote_user, &book_url, &calls, &o->r))
		goto out;
	x.call = &call;
	x.q = q;
	x.book_url = book_url;
	x.version = is_xcard_kind(a) ? 0 : 4; /* 0: xCard as it is */
	/* The cards this export replaces, read first (their version is the
	 * book's; what the PCC cannot say is kept); in an empty-handed case,
	 * one card for the book's version. A listing that carries its cards
	 * gives them all at once. */
	if (ops->list_cards) {
		if (ops->list_cards(&call, book_url, NULL, &all, on_old_card, &x, &o->r))
			goto out;
	} else if (ops->list(&call, book_url, NULL, &all, &o->r)) {
		goto out;
	} else {
		const char **hrefs = xcalloc(all.count + 1, sizeof(*hrefs));
		size_t n = 0;

		for (size_t i = 0; i < all.count; i++)
			if (all.entries[i].etag && ab_by_href(&ab, all.entries[i].href))
				hrefs[n++] = all.entries[i].href;
		for (size_t i = 0; !n && i < all.count; i++)
			if (all.entries[i].etag)
				hrefs[n++] = all.entries[i].href;
		err = ops->fetch(&call, book_url, hrefs, n, on_old_card, &x, &calls, &o->r);
		free(hrefs);
		if (err)
			goto out;
	}
	/* What changed at the 3rd party since the last import is not deleted. */
	state_name(a, book_url, name, sizeof(name));
	state_load(env, q->xui, name, &st);
	if (st.has && st.token[0] && !ops->list(&call, book_url, st.token, &changed, &o->r) && !changed.was_reset)
		has_changes = true;
	for (struct xml_node *c = xml_node_child(xml_doc_root_elem(ab.doc), IWF_AB_NS, "contact"); c;
	     c = xml_node_next(c, IWF_AB_NS, "contact")) {
		struct xml_node *src = xml_node_child(c, IWF_AB_NS, "source");
		const struct ab_contact *mine = NULL;

		for (size_t i = 0; i < ab.mine_count && !mine; i++)
			if (ab.mine[i].node == c)
				mine = &ab.mine[i];
		if (src && !mine)
			continue; /* another source's */
		if (!iwf_job_is_ours(env, job)) {
			o->is_cancelled = true;
			goto out;
		}
		if (!export_contact(&x, env, c, mine, &o->r))
			goto out;
	}
	for (size_t i = 0; has_changes && i < all.count; i++) {
		const struct iwf_book_entry *e = &all.entries[i];
		bool is_changed = false;
		long status;
		struct iwf_result dr;

		if (!e->etag || ab_by_href(&ab, e->href) || refused_has(st.refused, e->href))
			continue;
		for (size_t k = 0; k < changed.count && !is_changed; k++)
			is_changed = !strcmp(changed.entries[k].href, e->href);
		if (is_changed)
			continue;
		/* Imported, unchanged there since, and its contact is gone. */
		if (!ops->del(&call, book_url, e->href, e->etag, &status, &dr))
			x.deleted++;
		else if (status == 412 || status == 404)
			x.conflicts++;
		else {
			o->r = dr;
			goto out;
		}
	}
	/* The contacts remember their cards, so that the next import and
	 * export find them again. */
	for (unsigned i = 0; x.w_count && i <= STORE_RETRIES; i++) {
		struct ab now;
		unsigned status;

		if (i) {
			free(local);
			if (ab_read(env, q->xui, &local, &local_len, etag))
				break;
		}
		if (ab_open(local, local_len, a->id, &now, &why))
			break;
		remember(&now, &x, a->id);
		free(doc);
		doc = xml_doc_serialize(now.doc, &doc_len);
		ab_cleanup(&now);
		snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
		status = iwf_job_write(env, XCAP_METHOD_PUT, IWF_AB_AUID, q->xui, "application/vnd.oma.cab-address-book+xml",
				       doc, doc_len, quoted, NULL, o->etag, msg, sizeof(msg));
		if (status != 412)
			break;
	}
	o->count = x.created + x.updated + x.deleted;
	iwf_result_set(&o->r, x.refused || x.conflicts ? (o->count ? 206 : 409) : 200, false,
		       "address book exported to %s: %u cards created, %u updated, %u deleted; %u in conflict (changed "
		       "at the 3rd party), %u refused%s%s",
		       a->id, x.created, x.updated, x.deleted, x.conflicts, x.refused, x.refused_names[0] ? ": " : "",
		       x.refused_names);
out:
	for (size_t i = 0; i < x.w_count; i++) {
		free(x.w[i].id);
		free(x.w[i].uid);
		free(x.w[i].href);
		free(x.w[i].etag);
	}
	free(x.w);
	for (size_t i = 0; i < x.old_count; i++) {
		free(x.old[i].href);
		free(x.old[i].xcard);
	}
	free(x.old);
	iwf_book_list_cleanup(&all);
	iwf_book_list_cleanup(&changed);
	ab_cleanup(&ab);
	free(doc);
	free(local);
	free(book_url);
	free(url);
	free(why);
}
