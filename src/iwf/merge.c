/* SPDX-License-Identifier: MIT */
/*
 * The PCC merge (SPEC §5.3 step 6) and the export selection (step 9). Pure:
 * documents in, a document out, no store and no I/O.
 *
 * A <person-details> holds at most one of each group (name, address,
 * comm-addr, birth, career, media-list; SPEC §4.2). The policies act on
 * groups:
 *   replace   every imported group replaces the local group of its name;
 *   add-only  an imported group is added only when the local one is absent;
 *   merge     an absent group is added whole; in a present one, entries
 *             (name-entry, address-entry, tel, uri-entry, media-entry) are
 *             added when no local entry has the same normalized value (tel:
 *             digits and '+'; URIs and addresses: lower case), and children
 *             of the single-valued groups (birth, career) fill only what is
 *             empty.
 * An added entry whose @pref is taken gets the next free number, because
 * @pref is unique among siblings of one kind (SPEC §4.2).
 *
 * The field list filters the imported data first: a group or entry whose
 * field is not asked for is left out, which makes the result partial.
 */
#include "config.h"

#include <ctype.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

static const struct {
	const char *token;
	unsigned mask;
} field_tokens[] = {
	{ "fn", IWF_FIELD_NAME },     { "n", IWF_FIELD_NAME },       { "nickname", IWF_FIELD_NAME },
	{ "tel", IWF_FIELD_TEL },     { "email", IWF_FIELD_EMAIL },  { "impp", IWF_FIELD_URI },
	{ "url", IWF_FIELD_URI },     { "adr", IWF_FIELD_ADDRESS },  { "org", IWF_FIELD_CAREER },
	{ "title", IWF_FIELD_CAREER }, { "bday", IWF_FIELD_BIRTH }, { "photo", IWF_FIELD_MEDIA },
	{ "note", 0 },
};

/* Adds the mask of the field token @p (@n bytes) to *mask; false when unknown. */
static bool token_mask(const char *p, size_t n, unsigned *mask)
{
	bool is_known = false;

	for (size_t i = 0; i < sizeof(field_tokens) / sizeof(field_tokens[0]); i++) {
		if (strlen(field_tokens[i].token) == n && !memcmp(field_tokens[i].token, p, n)) {
			*mask |= field_tokens[i].mask;
			is_known = true;
		}
	}
	return is_known;
}

/* Walks the tokens of @text; stops at the first unknown one when @is_strict
 * and returns it (NULL when none). */
static const char *fields_walk(const char *text, bool is_strict, unsigned *mask, size_t *bad_len)
{
	*mask = 0;
	for (const char *p = text ? text : ""; *p;) {
		size_t n;

		p += strspn(p, " \t\r\n");
		n = strcspn(p, " \t\r\n");
		if (n && !token_mask(p, n, mask) && is_strict) {
			*bad_len = n;
			return p;
		}
		p += n;
	}
	return NULL;
}

enum xdms_err iwf_fields_parse(const char *text, unsigned *mask, char **why)
{
	size_t n = 0;
	const char *bad = fields_walk(text, true, mask, &n);

	*why = NULL;
	if (bad) {
		*why = xasprintf("unknown field name '%.*s' in <fields>", (int)(n > 40 ? 40 : n), bad);
		return XDMS_ERR_INVAL;
	}
	if (!*mask && (!text || !text[strspn(text, " \t\r\n")]))
		*mask = IWF_FIELD_ALL;
	return XDMS_ERR_OK;
}

unsigned iwf_fields_mask_lenient(const char *text)
{
	unsigned mask;
	size_t n;

	(void)fields_walk(text, false, &mask, &n);
	return mask;
}

static bool is_pcc(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, IWF_PCC_NS) &&
	       (!name || !strcmp((const char *)n->name, name));
}

static xmlNodePtr first_child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
		if (is_pcc(c, name))
			return c;
	return NULL;
}

/* The field an entry (or a whole group) belongs to. */
static unsigned entry_field(xmlNodePtr group, xmlNodePtr entry)
{
	const char *g = (const char *)group->name;

	if (!strcmp(g, "name"))
		return IWF_FIELD_NAME;
	if (!strcmp(g, "address"))
		return IWF_FIELD_ADDRESS;
	if (!strcmp(g, "birth"))
		return IWF_FIELD_BIRTH;
	if (!strcmp(g, "career"))
		return IWF_FIELD_CAREER;
	if (!strcmp(g, "media-list"))
		return IWF_FIELD_MEDIA;
	if (!strcmp(g, "comm-addr") && entry) {
		xmlChar *t;
		unsigned f;

		if (is_pcc(entry, "tel"))
			return IWF_FIELD_TEL;
		t = xmlGetProp(entry, (const xmlChar *)"addr-uri-type");
		f = t && !strcmp((const char *)t, "Email") ? IWF_FIELD_EMAIL : IWF_FIELD_URI;
		xmlFree(t);
		return f;
	}
	if (!strcmp(g, "comm-addr"))
		return IWF_FIELD_TEL | IWF_FIELD_EMAIL | IWF_FIELD_URI;
	return 0;
}

/*
 * Removes from @pd (an imported person-details) what @fields does not ask
 * for, and anything that is not a PCC group. Returns the IWF_FIELD_* bits of
 * what went (IWF_FIELD_OTHER for parts no field names); 0 when nothing did.
 */
static unsigned filter_fields(xmlNodePtr pd, unsigned fields)
{
	unsigned dropped = 0;
	xmlNodePtr next;

	for (xmlNodePtr g = pd->children; g; g = next) {
		unsigned f;

		next = g->next;
		if (g->type != XML_ELEMENT_NODE)
			continue;
		f = is_pcc(g, NULL) ? entry_field(g, NULL) : 0;
		if (!(f & fields)) {
			unsigned held = 0;

			/* comm-addr stands for three fields: name the ones it held. */
			if (f && !strcmp((const char *)g->name, "comm-addr"))
				for (xmlNodePtr e = g->children; e; e = e->next)
					if (e->type == XML_ELEMENT_NODE)
						held |= entry_field(g, e);
			/* An empty comm-addr held nothing: nothing was lost. */
			dropped |= !f ? IWF_FIELD_OTHER : strcmp((const char *)g->name, "comm-addr") ? f : held;
			xmlUnlinkNode(g);
			xmlFreeNode(g);
			continue;
		}
		if (strcmp((const char *)g->name, "comm-addr") != 0)
			continue;
		for (xmlNodePtr e = g->children, enext; e; e = enext) {
			enext = e->next;
			if (e->type == XML_ELEMENT_NODE && !(entry_field(g, e) & fields)) {
				dropped |= entry_field(g, e);
				xmlUnlinkNode(e);
				xmlFreeNode(e);
			}
		}
		if (!first_child(g, NULL)) {
			xmlUnlinkNode(g);
			xmlFreeNode(g);
		}
	}
	return dropped;
}

void iwf_fields_describe(unsigned dropped, unsigned requested, unsigned allowed, char *out, size_t size)
{
	static const struct {
		unsigned mask;
		const char *name;
	} parts[] = {
		{ IWF_FIELD_NAME, "name (fn n nickname)" }, { IWF_FIELD_TEL, "tel" },
		{ IWF_FIELD_EMAIL, "email" },               { IWF_FIELD_URI, "url/impp" },
		{ IWF_FIELD_ADDRESS, "adr" },               { IWF_FIELD_CAREER, "org/title" },
		{ IWF_FIELD_BIRTH, "bday" },                { IWF_FIELD_MEDIA, "photo" },
	};
	size_t n = strlen(out);

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && n + 1 < size; i++) {
		if (!(dropped & parts[i].mask))
			continue;
		snprintf(out + n, size - n, "%s%s (%s)", n ? ", " : "", parts[i].name,
			 !(requested & parts[i].mask) ? "not in <fields>" :
			 !(allowed & parts[i].mask)   ? "not allowed by the user's preferences" :
							"left out");
		n = strlen(out);
	}
	if ((dropped & IWF_FIELD_OTHER) && n + 1 < size)
		snprintf(out + n, size - n, "%sparts the PCC mapping does not know", n ? ", " : "");
}

static void text_of(xmlNodePtr n, const char *child, struct buf *b)
{
	xmlNodePtr c = child ? first_child(n, child) : n;
	xmlChar *t = c ? xmlNodeGetContent(c) : NULL;

	if (t && buf_append_str(b, (const char *)t))
		abort();
	xmlFree(t);
}

/* The normalized value two entries are compared by (heap). */
static char *entry_key(xmlNodePtr e)
{
	struct buf raw, out;
	bool is_tel = is_pcc(e, "tel");

	buf_init(&raw, 1 << 20);
	buf_init(&out, 1 << 20);
	if (is_tel)
		text_of(e, "tel-nb", &raw);
	else if (is_pcc(e, "uri-entry"))
		text_of(e, "addr-uri", &raw);
	else if (is_pcc(e, "address-entry"))
		text_of(e, "address-data", &raw);
	else if (is_pcc(e, "media-entry"))
		text_of(e, "media", &raw);
	else
		text_of(e, NULL, &raw);
	if (buf_append_str(&out, (const char *)e->name))
		abort();
	for (size_t i = 0; raw.data && i < raw.len; i++) {
		unsigned char c = (unsigned char)raw.data[i];
		int rc = 0;

		if (is_tel) {
			if (isdigit(c) || (c == '+' && out.len == strlen((const char *)e->name)))
				rc = buf_append(&out, &c, 1);
		} else if (!isspace(c)) {
			c = (unsigned char)tolower(c);
			rc = buf_append(&out, &c, 1);
		}
		if (rc)
			abort();
	}
	buf_cleanup(&raw);
	return buf_take(&out, NULL);
}

static bool has_entry(xmlNodePtr group, xmlNodePtr entry)
{
	char *k = entry_key(entry);
	bool found = false;

	for (xmlNodePtr c = group->children; c && !found; c = c->next) {
		char *ck;

		if (!is_pcc(c, (const char *)entry->name))
			continue;
		ck = entry_key(c);
		found = !strcmp(k, ck);
		free(ck);
	}
	free(k);
	return found;
}

/* Gives @entry (just added to @group) a @pref no sibling of its kind has. */
static void pref_fix(xmlNodePtr group, xmlNodePtr entry)
{
	xmlChar *mine = xmlGetProp(entry, (const xmlChar *)"pref");
	unsigned long max = 0;
	bool is_taken = false;
	char v[24];

	if (!mine)
		return;
	for (xmlNodePtr c = group->children; c; c = c->next) {
		xmlChar *p;

		if (c == entry || !is_pcc(c, (const char *)entry->name))
			continue;
		p = xmlGetProp(c, (const xmlChar *)"pref");
		if (p) {
			unsigned long n = strtoul((const char *)p, NULL, 10);

			if (n > max)
				max = n;
			if (!strcmp((const char *)p, (const char *)mine))
				is_taken = true;
		}
		xmlFree(p);
	}
	if (is_taken) {
		snprintf(v, sizeof(v), "%lu", max + 1);
		xmlSetProp(entry, (const xmlChar *)"pref", (const xmlChar *)v);
	}
	xmlFree(mine);
}

static bool is_single_valued(xmlNodePtr group)
{
	return !strcmp((const char *)group->name, "birth") || !strcmp((const char *)group->name, "career");
}

/* Binds the namespaces of @node (just placed in its new document) to the
 * declarations in scope there, dropping the ones the copy brought along
 * that say the same. */
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

/* Appends a copy of @node to @parent in @doc. */
static xmlNodePtr add_copy(xmlDocPtr doc, xmlNodePtr parent, xmlNodePtr node)
{
	xmlNodePtr copy = xmlDocCopyNode(node, doc, 1);

	if (!copy)
		abort();
	xmlAddChild(parent, copy);
	ns_tidy(copy);
	return copy;
}

/*
 * The values of PCC group @g: the PCC elements directly inside it (one
 * <name-entry>, <tel>, <uri-entry>, <birth-date>, <employer>, ...). Imports
 * and exports count what they move in these units, the one meaning of
 * <imported-count> and <exported-count> (docs/client-developers.md).
 */
static unsigned group_values(xmlNodePtr g)
{
	unsigned n = 0;

	for (xmlNodePtr e = g->children; e; e = e->next)
		if (e->type == XML_ELEMENT_NODE && is_pcc(e, NULL))
			n++;
	return n;
}

/* Merges imported group @g into local person-details @pd; returns how many
 * values it added or replaced. */
static unsigned merge_group(xmlDocPtr doc, xmlNodePtr pd, xmlNodePtr g, enum iwf_merge_policy policy,
			    bool *is_changed)
{
	xmlNodePtr local = first_child(pd, (const char *)g->name);
	unsigned count = 0;

	if (!local) {
		add_copy(doc, pd, g);
		*is_changed = true;
		return group_values(g);
	}
	if (policy == IWF_ADD_ONLY)
		return 0;
	if (policy == IWF_REPLACE) {
		xmlNodePtr copy = xmlDocCopyNode(g, doc, 1);

		if (!copy)
			abort();
		xmlReplaceNode(local, copy);
		xmlFreeNode(local);
		ns_tidy(copy);
		*is_changed = true;
		return group_values(copy);
	}
	for (xmlNodePtr e = g->children; e; e = e->next) {
		if (e->type != XML_ELEMENT_NODE)
			continue;
		if (is_single_valued(g)) {
			if (!first_child(local, (const char *)e->name) && is_pcc(e, NULL)) {
				add_copy(doc, local, e);
				count++;
				*is_changed = true;
			}
		} else if (is_pcc(e, NULL) && !has_entry(local, e)) {
			pref_fix(local, add_copy(doc, local, e));
			count++;
			*is_changed = true;
		}
	}
	return count;
}

static enum xdms_err parse_tree(const char *data, size_t len, struct xml_doc **doc, char **why, const char *what)
{
	struct xml_issue issue;

	if (xml_parse(data, len, IWF_MAX_DEPTH, doc, &issue)) {
		*why = xasprintf("%s is not usable XML: %s", what, issue.phrase);
		return XDMS_ERR_PARSE;
	}
	return XDMS_ERR_OK;
}

static char *serialize(xmlDocPtr doc, size_t *len)
{
	xmlChar *mem = NULL;
	int n = 0;
	char *s;

	xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
	if (!mem || n < 0)
		abort();
	s = xstrndup((const char *)mem, (size_t)n);
	xmlFree(mem);
	*len = (size_t)n;
	return s;
}

static const char empty_pcc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				"<pcc xmlns=\"" IWF_PCC_NS "\"><person-details/></pcc>\n";

enum xdms_err iwf_merge(const char *local, size_t local_len, const char *imported, size_t imported_len,
			enum iwf_merge_policy policy, unsigned fields, struct iwf_merge_out *out, char **why)
{
	struct xml_doc *ldoc = NULL, *idoc = NULL;
	xmlNodePtr lroot, iroot, lpd, ipd;
	enum xdms_err err;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	err = parse_tree(imported, imported_len, &idoc, why, "the imported profile");
	if (!err)
		err = local ? parse_tree(local, local_len, &ldoc, why, "the stored PCC") :
			      parse_tree(empty_pcc, sizeof(empty_pcc) - 1, &ldoc, why, "the new PCC");
	if (err)
		goto out;
	iroot = xmlDocGetRootElement(xml_doc_tree(idoc));
	lroot = xmlDocGetRootElement(xml_doc_tree(ldoc));
	ipd = is_pcc(iroot, "pcc") ? first_child(iroot, "person-details") : NULL;
	lpd = is_pcc(lroot, "pcc") ? first_child(lroot, "person-details") : NULL;
	if (!ipd) {
		*why = xstrdup("the imported profile has no PCC person-details");
		err = XDMS_ERR_PARSE;
		goto out;
	}
	if (!lpd) {
		*why = xstrdup("the stored PCC has no person-details");
		err = XDMS_ERR_PARSE;
		goto out;
	}
	for (xmlNodePtr p = iroot->children; p; p = p->next)
		if (is_pcc(p, "person-details"))
			out->person_count++;
	out->dropped = filter_fields(ipd, fields);
	out->is_partial = out->dropped != 0;
	for (xmlNodePtr g = ipd->children; g; g = g->next)
		if (is_pcc(g, NULL))
			out->count += merge_group(xml_doc_tree(ldoc), lpd, g, policy, &out->is_changed);
	if (!local)
		out->is_changed = true;
	out->doc = serialize(xml_doc_tree(ldoc), &out->doc_len);
out:
	xml_doc_free(ldoc);
	xml_doc_free(idoc);
	return err;
}

enum xdms_err iwf_export_select(const char *pcc, size_t pcc_len, const char *sel, unsigned fields, char **out,
				size_t *out_len, unsigned *count, unsigned *dropped, char **why)
{
	struct xcap_selector *s = NULL;
	struct xcap_node_result nr = { 0 };
	struct xml_doc *doc = NULL;
	struct buf b;
	const char *swhy = NULL;
	xmlNodePtr root, pd;
	enum xdms_err err;

	*out = NULL;
	*count = 0;
	*dropped = 0;
	*why = NULL;
	if (xcap_selector_parse(sel && sel[0] ? sel : "pcc/person-details[1]", NULL, IWF_PCC_NS, &s, &swhy)) {
		*why = xasprintf("<source-sel> is not a node selector: %s", swhy ? swhy : "bad syntax");
		return XDMS_ERR_INVAL;
	}
	xcap_node_get(pcc, pcc_len, s, &nr);
	xcap_selector_free(s);
	if (nr.status != 200 || !nr.body) {
		xcap_node_result_cleanup(&nr);
		*why = xstrdup("<source-sel> selects nothing in the PCC");
		return XDMS_ERR_NOTFOUND;
	}
	/* The selected element, in a PCC of its own: the default namespace is
	 * the PCC's, as in every stored PCC (prefixed names keep theirs only
	 * when declared on the element itself). */
	buf_init(&b, nr.body_len + 256);
	if (buf_append_str(&b, "<pcc xmlns=\"" IWF_PCC_NS "\">") || buf_append(&b, nr.body, nr.body_len) ||
	    buf_append_str(&b, "</pcc>"))
		abort();
	xcap_node_result_cleanup(&nr);
	err = parse_tree(b.data, b.len, &doc, why, "the selected PCC part");
	buf_cleanup(&b);
	if (err)
		return err;
	root = xmlDocGetRootElement(xml_doc_tree(doc));
	pd = first_child(root, "person-details");
	if (!pd) {
		*why = xstrdup("<source-sel> must select a person-details element");
		xml_doc_free(doc);
		return XDMS_ERR_INVAL;
	}
	*dropped = filter_fields(pd, fields);
	for (xmlNodePtr g = pd->children; g; g = g->next)
		if (is_pcc(g, NULL))
			*count += group_values(g);
	*out = serialize(xml_doc_tree(doc), out_len);
	xml_doc_free(doc);
	return XDMS_ERR_OK;
}
