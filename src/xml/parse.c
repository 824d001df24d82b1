/* SPDX-License-Identifier: MIT */
/*
 * Safe parsing of client XML (see xml.h for the policy).
 *
 * Order of checks, cheapest and most specific first: UTF-8 validity of the
 * raw bytes, the encoding named by the XML declaration, then libxml2 with a
 * SAX handler that stops at any DOCTYPE and at the depth limit. libxml2 runs
 * with NOERROR/NOWARNING so nothing is printed; its last error becomes the
 * phrase.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/dict.h>
#include <libxml/tree.h>

#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

bool xml_utf8_valid(const char *data, size_t len, size_t *bad_offset)
{
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp;

		if (c < 0x80) {
			uint64_t word;

			/* Documents are mostly ASCII: skip it eight bytes at a time. */
			while (len - i >= 8) {
				memcpy(&word, s + i, 8);
				if (word & 0x8080808080808080ULL)
					break;
				i += 8;
			}
			if (i < len && s[i] < 0x80)
				i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong three- and four-byte forms, UTF-16 surrogates, beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		i += n + 1;
	}
	return true;
bad:
	if (bad_offset)
		*bad_offset = i;
	return false;
}

/*
 * Finds encoding="..." in a leading XML declaration. Returns false when the
 * declaration names an encoding other than UTF-8, and copies it to @name.
 */
static bool declared_encoding_ok(const char *data, size_t len, char *name, size_t name_len)
{
	const char *end, *p;
	size_t skip = 0;

	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		skip = 3;
	if (len - skip < 5 || memcmp(data + skip, "<?xml", 5) != 0)
		return true;
	end = memmem(data + skip, len - skip, "?>", 2);
	if (!end)
		return true; /* the parser reports the broken declaration */
	p = memmem(data + skip, (size_t)(end - data - skip), "encoding", 8);
	if (!p)
		return true;
	p += 8;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '='))
		p++;
	if (p < end && (*p == '"' || *p == '\'')) {
		char q = *p++;
		const char *e = memchr(p, q, (size_t)(end - p));
		size_t n;

		if (!e)
			return true;
		n = (size_t)(e - p);
		if ((n == 5 && strncasecmp(p, "UTF-8", 5) == 0) || (n == 4 && strncasecmp(p, "UTF8", 4) == 0))
			return true;
		if (n >= name_len)
			n = name_len - 1;
		memcpy(name, p, n);
		name[n] = '\0';
		return false;
	}
	return true;
}

/*
 * Each thread keeps one parser context and reuses it (xmlCtxtReset), which
 * saves most of the allocations of a small parse. The context's dictionary
 * interns every name it has seen, so a context that has seen too many is
 * replaced rather than allowed to grow with what clients send.
 */
#define CTXT_DICT_MAX 4096

static pthread_key_t ctxt_key;
static pthread_once_t ctxt_once = PTHREAD_ONCE_INIT;

static void ctxt_destroy(void *p)
{
	xmlFreeParserCtxt(p);
}

static void ctxt_key_init(void)
{
	if (pthread_key_create(&ctxt_key, ctxt_destroy) != 0)
		abort();
}

/* The calling thread's parser context, reset, or NULL. */
static xmlParserCtxtPtr ctxt_get(void)
{
	xmlParserCtxtPtr ctxt;

	pthread_once(&ctxt_once, ctxt_key_init);
	ctxt = pthread_getspecific(ctxt_key);
	if (ctxt && ctxt->dict && xmlDictSize(ctxt->dict) > CTXT_DICT_MAX) {
		xmlFreeParserCtxt(ctxt);
		ctxt = NULL;
	}
	if (ctxt) {
		xmlCtxtReset(ctxt);
		return ctxt;
	}
	ctxt = xmlNewParserCtxt();
	if (ctxt)
		pthread_setspecific(ctxt_key, ctxt);
	return ctxt;
}

struct parse_guard {
	unsigned depth;
	unsigned max_depth;
	enum xml_fault fault;
	const char *why;
	startElementNsSAX2Func start;
	endElementNsSAX2Func end;
};

static void guard_internal_subset(void *vctxt, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxtPtr ctxt = vctxt;
	struct parse_guard *g = ctxt->_private;

	g->fault = XML_FAULT_FORBIDDEN;
	g->why = "document type declarations (DTDs) are not allowed";
	xmlStopParser(ctxt);
}

static void guard_start(void *vctxt, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
			int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
			const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = vctxt;
	struct parse_guard *g = ctxt->_private;

	if (++g->depth > g->max_depth) {
		g->fault = XML_FAULT_FORBIDDEN;
		g->why = "elements are nested too deeply";
		xmlStopParser(ctxt);
		return;
	}
	g->start(vctxt, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
		 attributes);
}

static void guard_end(void *vctxt, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	xmlParserCtxtPtr ctxt = vctxt;
	struct parse_guard *g = ctxt->_private;

	g->depth--;
	g->end(vctxt, localname, prefix, uri);
}

static void issue_set(struct xml_issue *issue, enum xml_fault fault, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void issue_set(struct xml_issue *issue, enum xml_fault fault, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	issue->fault = fault;
	va_start(ap, fmt);
	vsnprintf(issue->phrase, sizeof(issue->phrase), fmt, ap);
	va_end(ap);
	/* libxml2 messages end with a newline; a phrase is one line. */
	for (char *p = issue->phrase; (p = strchr(p, '\n')) != NULL;)
		*p = ' ';
	n = strlen(issue->phrase);
	while (n && (issue->phrase[n - 1] == '\n' || issue->phrase[n - 1] == ' '))
		issue->phrase[--n] = '\0';
}

static enum xdms_err parse(const char *data, size_t len, unsigned max_depth, bool is_fragment,
			   struct xml_doc **out, struct xml_issue *issue)
{
	xmlParserCtxtPtr ctxt = NULL;
	xmlDocPtr doc = NULL;
	struct parse_guard g = { 0 };
	char enc[64];
	size_t bad;
	enum xdms_err err = XDMS_ERR_PARSE;

	*out = NULL;
	issue->fault = XML_FAULT_NONE;
	issue->phrase[0] = '\0';
	if (!xml_utf8_valid(data, len, &bad)) {
		snprintf(issue->phrase, sizeof(issue->phrase), "the body is not valid UTF-8 (byte offset %zu)",
			 bad);
		issue->fault = XML_FAULT_NOT_UTF8;
		goto out;
	}
	/* NUL is no XML character, and libxml2 would stop reading at it,
	 * accepting whatever garbage follows. */
	if (memchr(data, '\0', len)) {
		issue_set(issue, XML_FAULT_NOT_WELL_FORMED, "not well-formed XML: a NUL byte at offset %zu",
			  (size_t)((const char *)memchr(data, '\0', len) - data));
		goto out;
	}
	if (!declared_encoding_ok(data, len, enc, sizeof(enc))) {
		issue_set(issue, XML_FAULT_NOT_UTF8,
			  "the XML declaration names encoding '%s'; documents must be UTF-8", enc);
		goto out;
	}
	if (len > (size_t)INT32_MAX) {
		issue_set(issue, XML_FAULT_FORBIDDEN, "the document is too large");
		goto out;
	}
	ctxt = ctxt_get();
	if (!ctxt) {
		err = XDMS_ERR_INVAL;
		goto out;
	}
	g.max_depth = max_depth ? max_depth : 64;
	/* The guards wrap libxml2's own tree-building handlers. */
	g.start = xmlSAX2StartElementNs;
	g.end = xmlSAX2EndElementNs;
	ctxt->sax->startElementNs = guard_start;
	ctxt->sax->endElementNs = guard_end;
	ctxt->sax->internalSubset = guard_internal_subset;
	ctxt->_private = &g;
	doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, "UTF-8",
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (g.fault) {
		issue_set(issue, g.fault, "%s", g.why);
		goto out;
	}
	/* Namespaces in XML 1.0: an unbound prefix or a name with two colons is
	 * only a namespace error to libxml2, but no XCAP document may have one. */
	if (doc && ctxt->wellFormed && !ctxt->nsWellFormed && !is_fragment) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);

		issue_set(issue, XML_FAULT_NOT_WELL_FORMED, "namespace error: %s (line %d)",
			  e && e->message ? e->message : "an undeclared prefix", e ? e->line : 0);
		goto out;
	}
	if (!doc || !ctxt->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);

		if (e && e->message)
			issue_set(issue, XML_FAULT_NOT_WELL_FORMED, "not well-formed XML: %s (line %d, column %d)",
				  e->message, e->line, e->int2);
		else
			issue_set(issue, XML_FAULT_NOT_WELL_FORMED, "not well-formed XML");
		goto out;
	}
	if (!xmlDocGetRootElement(doc)) {
		issue_set(issue, XML_FAULT_NOT_WELL_FORMED, "the document has no root element");
		goto out;
	}
	*out = (struct xml_doc *)doc;
	doc = NULL;
	err = XDMS_ERR_OK;
out:
	if (doc)
		xmlFreeDoc(doc);
	if (ctxt) {
		/* A stopped parser may still own a partial document. */
		if (ctxt->myDoc && ctxt->myDoc != (xmlDocPtr)*out)
			xmlFreeDoc(ctxt->myDoc);
		ctxt->myDoc = NULL;
		ctxt->_private = NULL;
	}
	return err;
}

enum xdms_err xml_parse(const char *data, size_t len, unsigned max_depth, struct xml_doc **out,
			struct xml_issue *issue)
{
	return parse(data, len, max_depth, false, out, issue);
}

enum xdms_err xml_parse_fragment(const char *data, size_t len, unsigned max_depth, struct xml_doc **out,
				 struct xml_issue *issue)
{
	return parse(data, len, max_depth, true, out, issue);
}

void xml_doc_free(struct xml_doc *doc)
{
	if (doc)
		xmlFreeDoc((xmlDocPtr)doc);
}

void xml_doc_root(const struct xml_doc *doc, const char **ns, const char **name)
{
	xmlNodePtr root = xmlDocGetRootElement((xmlDocPtr)doc);

	*ns = root && root->ns && root->ns->href ? (const char *)root->ns->href : "";
	*name = root ? (const char *)root->name : "";
}

struct _xmlDoc *xml_doc_tree(struct xml_doc *doc)
{
	return (xmlDocPtr)doc;
}
