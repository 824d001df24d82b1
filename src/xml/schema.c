/* SPDX-License-Identifier: MIT */
/*
 * XSD compilation and validation. A compiled xmlSchema is read-only once
 * built and shared by all threads; each thread validates with its own
 * validation contexts, kept for reuse. The first violation is kept as the phrase of the
 * <schema-validation-error>, prefixed with its line so a person can find it.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlschemas.h>

#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

/* A compiled schema with an id that is never reused, so that per-thread
 * caches keyed by it can never confuse a freed schema with a new one at the
 * same address. */
struct xml_schema {
	xmlSchemaPtr xs;
	uint64_t id;
	bool is_local; /* see xml_schema_is_local() */
};

static atomic_uint_fast64_t schema_ids;

struct first_error {
	char text[XML_PHRASE_MAX];
	bool is_set;
};

static void keep_first_error(void *arg, xmlErrorPtr e)
{
	struct first_error *fe = arg;
	size_t n;

	if (fe->is_set || !e || !e->message)
		return;
	if (e->line > 0)
		snprintf(fe->text, sizeof(fe->text), "line %d: %s", e->line, e->message);
	else
		snprintf(fe->text, sizeof(fe->text), "%s", e->message);
	n = strlen(fe->text);
	while (n && (fe->text[n - 1] == '\n' || fe->text[n - 1] == ' '))
		fe->text[--n] = '\0';
	fe->is_set = true;
}

#define XSD_NS "http://www.w3.org/2001/XMLSchema"
#define LOCAL_MAX_FILES 32

static bool is_xsd(xmlNodePtr n, const char *local)
{
	return n->type == XML_ELEMENT_NODE && n->ns && xmlStrEqual(n->ns->href, BAD_CAST XSD_NS) &&
	       xmlStrEqual(n->name, BAD_CAST local);
}

/* The local part of a QName-valued attribute of @n is one of the ID types. */
static bool names_id_type(xmlNodePtr n, const char *attr)
{
	static const char *const ids[] = { "ID", "IDREF", "IDREFS", "ENTITY", "ENTITIES" };
	xmlChar *v = xmlGetProp(n, BAD_CAST attr);
	const char *local;
	bool found = false;

	if (!v)
		return false;
	/* memberTypes is a list: look at every QName in it. */
	for (char *tok = strtok((char *)v, " \t\r\n"); tok && !found; tok = strtok(NULL, " \t\r\n")) {
		local = strchr(tok, ':') ? strchr(tok, ':') + 1 : tok;
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]) && !found; i++)
			found = strcmp(local, ids[i]) == 0;
	}
	xmlFree(v);
	return found;
}

static bool file_is_local(const char *name, char **seen, size_t *seen_count);

/* Walks the schema document below @n (iteratively: schema files are trusted,
 * but a stack bound costs nothing). */
static bool tree_is_local(xmlNodePtr root, char **seen, size_t *seen_count)
{
	for (xmlNodePtr n = root; n;) {
		if (n->type == XML_ELEMENT_NODE) {
			xmlChar *v;
			bool is_ok = true;

			if (is_xsd(n, "unique") || is_xsd(n, "key") || is_xsd(n, "keyref") || is_xsd(n, "redefine") ||
			    is_xsd(n, "override"))
				return false;
			if (is_xsd(n, "element") && (xmlHasProp(n, BAD_CAST "ref") || xmlHasProp(n, BAD_CAST "substitutionGroup")))
				return false;
			if (is_xsd(n, "any")) {
				v = xmlGetProp(n, BAD_CAST "namespace");
				is_ok = v && xmlStrEqual(v, BAD_CAST "##other");
				xmlFree(v);
				if (!is_ok)
					return false;
			}
			if (names_id_type(n, "type") || names_id_type(n, "base") || names_id_type(n, "itemType") ||
			    names_id_type(n, "memberTypes"))
				return false;
			if (is_xsd(n, "import") || is_xsd(n, "include")) {
				v = xmlGetProp(n, BAD_CAST "schemaLocation");
				if (v) {
					const char *base = strrchr((const char *)v, '/');

					is_ok = file_is_local(base ? base + 1 : (const char *)v, seen, seen_count);
				}
				xmlFree(v);
				if (!is_ok)
					return false;
			}
			if (n->children) {
				n = n->children;
				continue;
			}
		}
		while (n && !n->next && n != root)
			n = n->parent;
		if (!n || n == root)
			break;
		n = n->next;
	}
	return true;
}

/* @seen holds copies (heap) of the names read so far: @name may be freed
 * by the caller once this returns. */
static bool file_is_local(const char *name, char **seen, size_t *seen_count)
{
	const char *data;
	size_t len;
	xmlDocPtr doc;
	bool is_local;

	for (size_t i = 0; i < *seen_count; i++)
		if (strcmp(seen[i], name) == 0)
			return true;
	if (*seen_count == LOCAL_MAX_FILES || !xml_file_find(name, &data, &len) || len > INT32_MAX)
		return false;
	seen[(*seen_count)++] = xstrdup(name);
	doc = xmlReadMemory(data, (int)len, name, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return false;
	is_local = tree_is_local(xmlDocGetRootElement(doc), seen, seen_count);
	xmlFreeDoc(doc);
	return is_local;
}

bool xml_schema_is_local(const struct xml_schema *schema)
{
	return schema && schema->is_local;
}

enum xdms_err xml_schema_load(const char *name, struct xml_schema **out, char **why)
{
	const char *data;
	size_t len;
	xmlSchemaParserCtxtPtr pctxt = NULL;
	xmlSchemaPtr schema = NULL;
	struct first_error fe = { .is_set = false };
	enum xdms_err err = XDMS_ERR_PARSE;

	*out = NULL;
	if (!xml_file_find(name, &data, &len)) {
		if (why)
			*why = xasprintf("schema '%s' is neither built in nor in the descriptor directory", name);
		return XDMS_ERR_NOTFOUND;
	}
	pctxt = xmlSchemaNewMemParserCtxt(data, (int)len);
	if (!pctxt)
		goto out;
	xmlSchemaSetParserStructuredErrors(pctxt, keep_first_error, &fe);
	schema = xmlSchemaParse(pctxt);
	if (!schema) {
		if (why)
			*why = xasprintf("schema '%s' does not compile: %s", name,
					 fe.is_set ? fe.text : "unknown error");
		goto out;
	}
	*out = xmalloc(sizeof(**out));
	(*out)->xs = schema;
	(*out)->id = atomic_fetch_add(&schema_ids, 1) + 1;
	{
		char *seen[LOCAL_MAX_FILES];
		size_t seen_count = 0;
		const char *base = strrchr(name, '/');

		(*out)->is_local = file_is_local(base ? base + 1 : name, seen, &seen_count);
		for (size_t i = 0; i < seen_count; i++)
			free(seen[i]);
	}
	err = XDMS_ERR_OK;
out:
	xmlSchemaFreeParserCtxt(pctxt);
	return err;
}

void xml_schema_free(struct xml_schema *schema)
{
	if (!schema)
		return;
	xmlSchemaFree(schema->xs);
	free(schema);
}

/*
 * Validation contexts are reused per thread and schema: creating one costs
 * about as much as validating a small document. A thread keeps at most
 * VCTXT_SLOTS of them; they are freed when the thread exits.
 */
#define VCTXT_SLOTS 16

struct vctxt_cache {
	uint64_t schema_id[VCTXT_SLOTS];
	xmlSchemaValidCtxtPtr vctxt[VCTXT_SLOTS];
	unsigned next; /* slot to evict when all are taken */
};

static pthread_key_t vctxt_key;
static pthread_once_t vctxt_once = PTHREAD_ONCE_INIT;

static void vctxt_cache_destroy(void *p)
{
	struct vctxt_cache *c = p;

	for (unsigned i = 0; i < VCTXT_SLOTS; i++)
		xmlSchemaFreeValidCtxt(c->vctxt[i]);
	free(c);
}

static void vctxt_key_init(void)
{
	if (pthread_key_create(&vctxt_key, vctxt_cache_destroy) != 0)
		abort();
}

static xmlSchemaValidCtxtPtr vctxt_get(const struct xml_schema *schema)
{
	struct vctxt_cache *c;
	unsigned i;

	pthread_once(&vctxt_once, vctxt_key_init);
	c = pthread_getspecific(vctxt_key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		pthread_setspecific(vctxt_key, c);
	}
	for (i = 0; i < VCTXT_SLOTS; i++)
		if (c->schema_id[i] == schema->id && c->vctxt[i])
			return c->vctxt[i];
	for (i = 0; i < VCTXT_SLOTS && c->vctxt[i]; i++)
		;
	if (i == VCTXT_SLOTS) {
		i = c->next++ % VCTXT_SLOTS;
		xmlSchemaFreeValidCtxt(c->vctxt[i]);
	}
	c->schema_id[i] = schema->id;
	c->vctxt[i] = xmlSchemaNewValidCtxt(schema->xs);
	return c->vctxt[i];
}

enum xdms_err xml_schema_validate(const struct xml_schema *schema, struct xml_doc *doc,
				  struct xml_issue *issue)
{
	xmlSchemaValidCtxtPtr vctxt;
	struct first_error fe = { .is_set = false };
	int rc;

	vctxt = vctxt_get(schema);
	if (!vctxt)
		return XDMS_ERR_INVAL;
	xmlSchemaSetValidStructuredErrors(vctxt, keep_first_error, &fe);
	rc = xmlSchemaValidateDoc(vctxt, (xmlDocPtr)doc);
	/* Do not leave a pointer to this stack frame behind in the cached context. */
	xmlSchemaSetValidStructuredErrors(vctxt, NULL, NULL);
	if (rc == 0)
		return XDMS_ERR_OK;
	issue->fault = XML_FAULT_SCHEMA;
	snprintf(issue->phrase, sizeof(issue->phrase), "%s",
		 fe.is_set ? fe.text : "the document does not match the application usage's schema");
	return XDMS_ERR_PARSE;
}

enum xdms_err xml_schema_validate_bytes(const struct xml_schema *schema, const char *data, size_t len,
					struct xml_issue *issue)
{
	xmlSchemaValidCtxtPtr vctxt;
	xmlParserInputBufferPtr in;
	struct first_error fe = { .is_set = false };
	int rc;

	if (len > (size_t)INT32_MAX)
		return XDMS_ERR_TOOBIG;
	vctxt = vctxt_get(schema);
	if (!vctxt)
		return XDMS_ERR_INVAL;
	/* A copying buffer: libxml2 2.9.14 misreads larger static ones. The
	 * stream parser takes ownership of it. */
	in = xmlParserInputBufferCreateMem(data, (int)len, XML_CHAR_ENCODING_UTF8);
	if (!in)
		return XDMS_ERR_INVAL;
	xmlSchemaSetValidStructuredErrors(vctxt, keep_first_error, &fe);
	rc = xmlSchemaValidateStream(vctxt, in, XML_CHAR_ENCODING_UTF8, NULL, NULL);
	xmlSchemaSetValidStructuredErrors(vctxt, NULL, NULL);
	if (rc == 0)
		return XDMS_ERR_OK;
	issue->fault = rc < 0 ? XML_FAULT_NOT_WELL_FORMED : XML_FAULT_SCHEMA;
	snprintf(issue->phrase, sizeof(issue->phrase), "%s",
		 fe.is_set ? fe.text : "the document does not match the application usage's schema");
	return XDMS_ERR_PARSE;
}
