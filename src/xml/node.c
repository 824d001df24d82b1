/* SPDX-License-Identifier: MIT */
/*
 * Elements of a parsed document (xml.h, "trees"): the small API through
 * which the code outside src/xml reads and edits a document it parsed (the
 * IWF: adapter configurations, Feature Handler requests, preferences, the
 * PCC merge), so that libxml2's tree stays inside this folder.
 *
 * Design: a struct xml_node is a libxml2 element (xmlNode) under another
 * name; nothing is allocated to wrap it. Iteration visits elements only,
 * matched by namespace URI and local name. Copies between documents bind
 * the copy's namespaces to the declarations in scope at its new place and
 * drop the declarations the copy brought along that say the same, so that
 * a merged document does not pile up redundant xmlns attributes.
 *
 * Invariants: every node handed out is an element of a live document;
 * removed nodes are freed at once.
 *
 * Threads: a document and its nodes belong to one thread at a time.
 */
#include "config.h"

#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

static xmlNodePtr raw(const struct xml_node *n)
{
	return (xmlNodePtr)n;
}

static struct xml_node *node(xmlNodePtr n)
{
	return (struct xml_node *)n;
}

bool xml_node_is(const struct xml_node *n, const char *ns, const char *name)
{
	xmlNodePtr x = raw(n);

	return x && x->type == XML_ELEMENT_NODE &&
	       (!ns || (x->ns && x->ns->href && !strcmp((const char *)x->ns->href, ns))) &&
	       (!name || !strcmp((const char *)x->name, name));
}

struct xml_node *xml_doc_root_elem(struct xml_doc *doc)
{
	return doc ? node(xmlDocGetRootElement(xml_doc_tree(doc))) : NULL;
}

static struct xml_node *first_from(xmlNodePtr x, const char *ns, const char *name)
{
	for (; x; x = x->next)
		if (xml_node_is(node(x), ns, name))
			return node(x);
	return NULL;
}

struct xml_node *xml_node_child(const struct xml_node *n, const char *ns, const char *name)
{
	return n ? first_from(raw(n)->children, ns, name) : NULL;
}

struct xml_node *xml_node_next(const struct xml_node *n, const char *ns, const char *name)
{
	return n ? first_from(raw(n)->next, ns, name) : NULL;
}

const char *xml_node_name(const struct xml_node *n)
{
	return (const char *)raw(n)->name;
}

char *xml_node_text(const struct xml_node *n)
{
	xmlChar *t = n ? xmlNodeGetContent(raw(n)) : NULL;
	char *s = t ? xstrdup((const char *)t) : NULL;

	xmlFree(t);
	return s;
}

char *xml_trim(char *s)
{
	size_t n, lead;

	if (!s)
		return NULL;
	n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	lead = strspn(s, " \t\r\n");
	memmove(s, s + lead, n - lead + 1);
	return s;
}

char *xml_node_attr(const struct xml_node *n, const char *name)
{
	/* Whatever the attribute's namespace, as xmlGetProp() reads it. */
	xmlChar *t = n ? xmlGetProp(raw(n), (const xmlChar *)name) : NULL;
	char *s = t ? xstrdup((const char *)t) : NULL;

	xmlFree(t);
	return s;
}

const char *xml_node_ns_in_scope(const struct xml_node *n, const char *prefix)
{
	xmlNsPtr ns = n ? xmlSearchNs(raw(n)->doc, raw(n), (const xmlChar *)prefix) : NULL;

	return ns && ns->href ? (const char *)ns->href : NULL;
}

void xml_node_set_attr(struct xml_node *n, const char *name, const char *value)
{
	if (!xmlSetProp(raw(n), (const xmlChar *)name, (const xmlChar *)value))
		abort(); /* out of memory */
}

void xml_node_remove(struct xml_node *n)
{
	xmlUnlinkNode(raw(n));
	xmlFreeNode(raw(n));
}

/* Rebinds what uses namespace @from in @n and its following siblings to
 * @to. */
static void ns_remap(xmlNodePtr n, xmlNsPtr from, xmlNsPtr to)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (n->ns == from)
			n->ns = to;
		for (xmlAttrPtr a = n->properties; a; a = a->next)
			if (a->ns == from)
				a->ns = to;
		ns_remap(n->children, from, to);
	}
}

/* Binds the namespaces of @node (just placed in its new document) to the
 * declarations in scope there, dropping the ones the copy brought along
 * that say the same. */
static void ns_tidy(xmlNodePtr node)
{
	xmlNsPtr *pp = &node->nsDef;

	while (*pp) {
		xmlNsPtr d = *pp, outer = node->parent ? xmlSearchNs(node->doc, node->parent, d->prefix) : NULL;

		if (outer && xmlStrEqual(outer->href, d->href)) {
			xmlNodePtr next = node->next;

			/* Only @node's own subtree, not its new siblings. */
			node->next = NULL;
			ns_remap(node, d, outer);
			node->next = next;
			*pp = d->next;
			d->next = NULL;
			xmlFreeNs(d);
		} else {
			pp = &d->next;
		}
	}
	xmlReconciliateNs(node->doc, node);
}

static xmlNodePtr copy_for(xmlNodePtr place, const struct xml_node *n)
{
	xmlNodePtr copy = xmlDocCopyNode(raw(n), place->doc, 1);

	if (!copy)
		abort(); /* out of memory */
	return copy;
}

struct xml_node *xml_node_append_copy(struct xml_node *parent, const struct xml_node *n)
{
	xmlNodePtr copy = copy_for(raw(parent), n);

	xmlAddChild(raw(parent), copy);
	ns_tidy(copy);
	return node(copy);
}

struct xml_node *xml_node_replace_copy(struct xml_node *old, const struct xml_node *n)
{
	xmlNodePtr copy = copy_for(raw(old), n);

	xmlReplaceNode(raw(old), copy);
	xmlFreeNode(raw(old));
	ns_tidy(copy);
	return node(copy);
}

char *xml_doc_serialize(struct xml_doc *doc, size_t *len)
{
	xmlChar *mem = NULL;
	int n = 0;
	char *s;

	xmlDocDumpMemoryEnc(xml_doc_tree(doc), &mem, &n, "UTF-8");
	if (!mem || n < 0)
		abort(); /* out of memory */
	s = xstrndup((const char *)mem, (size_t)n);
	xmlFree(mem);
	*len = (size_t)n;
	return s;
}
