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

static bool is_pcc(const struct xml_node *n, const char *name)
{
	return xml_node_is(n, IWF_PCC_NS, name);
}

static struct xml_node *first_child(const struct xml_node *parent, const char *name)
{
	return xml_node_child(parent, IWF_PCC_NS, name);
}

/* The field an entry (or a whole group) belongs to. */
static unsigned entry_field(const struct xml_node *group, const struct xml_node *entry)
{
	const char *g = xml_node_name(group);

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
		char *t;
		unsigned f;

		if (is_pcc(entry, "tel"))
			return IWF_FIELD_TEL;
		t = xml_node_attr(entry, "addr-uri-type");
		f = t && !strcmp(t, "Email") ? IWF_FIELD_EMAIL : IWF_FIELD_URI;
		free(t);
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
static unsigned filter_fields(struct xml_node *pd, unsigned fields)
{
	unsigned dropped = 0;
	struct xml_node *next;

	for (struct xml_node *g = xml_node_child(pd, NULL, NULL); g; g = next) {
		unsigned f;

		next = xml_node_next(g, NULL, NULL);
		f = is_pcc(g, NULL) ? entry_field(g, NULL) : 0;
		if (!(f & fields)) {
			unsigned held = 0;

			/* comm-addr stands for three fields: name the ones it held
			 * (an empty one held nothing: nothing was lost). */
			if (f && !strcmp(xml_node_name(g), "comm-addr"))
				for (struct xml_node *e = xml_node_child(g, NULL, NULL); e; e = xml_node_next(e, NULL, NULL))
					held |= entry_field(g, e);
			dropped |= !f ? IWF_FIELD_OTHER : strcmp(xml_node_name(g), "comm-addr") ? f : held;
			xml_node_remove(g);
			continue;
		}
		if (strcmp(xml_node_name(g), "comm-addr") != 0)
			continue;
		for (struct xml_node *e = xml_node_child(g, NULL, NULL), *enext; e; e = enext) {
			enext = xml_node_next(e, NULL, NULL);
			if (!(entry_field(g, e) & fields)) {
				dropped |= entry_field(g, e);
				xml_node_remove(e);
			}
		}
		if (!first_child(g, NULL))
			xml_node_remove(g);
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

static void text_of(const struct xml_node *n, const char *child, struct buf *b)
{
	const struct xml_node *c = child ? first_child(n, child) : n;
	char *t = c ? xml_node_text(c) : NULL;

	if (t && buf_append_str(b, t))
		abort();
	free(t);
}

/* The normalized value two entries are compared by (heap). */
static char *entry_key(const struct xml_node *e)
{
	struct buf raw, out;
	bool is_tel = is_pcc(e, "tel");
	const char *name = xml_node_name(e);

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
	if (buf_append_str(&out, name))
		abort();
	for (size_t i = 0; raw.data && i < raw.len; i++) {
		unsigned char c = (unsigned char)raw.data[i];
		int rc = 0;

		if (is_tel) {
			if (isdigit(c) || (c == '+' && out.len == strlen(name)))
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

static bool has_entry(const struct xml_node *group, const struct xml_node *entry)
{
	const char *name = xml_node_name(entry);
	char *k = entry_key(entry);
	bool found = false;

	for (struct xml_node *c = first_child(group, name); c && !found; c = xml_node_next(c, IWF_PCC_NS, name)) {
		char *ck = entry_key(c);

		found = !strcmp(k, ck);
		free(ck);
	}
	free(k);
	return found;
}

/* Gives @entry (just added to @group) a @pref no sibling of its kind has. */
static void pref_fix(const struct xml_node *group, struct xml_node *entry)
{
	const char *name = xml_node_name(entry);
	char *mine = xml_node_attr(entry, "pref");
	unsigned long max = 0;
	bool is_taken = false;
	char v[24];

	if (!mine)
		return;
	for (struct xml_node *c = first_child(group, name); c; c = xml_node_next(c, IWF_PCC_NS, name)) {
		char *p;

		if (c == entry)
			continue;
		p = xml_node_attr(c, "pref");
		if (p) {
			unsigned long n = strtoul(p, NULL, 10);

			if (n > max)
				max = n;
			if (!strcmp(p, mine))
				is_taken = true;
		}
		free(p);
	}
	if (is_taken) {
		snprintf(v, sizeof(v), "%lu", max + 1);
		xml_node_set_attr(entry, "pref", v);
	}
	free(mine);
}

static bool is_single_valued(const struct xml_node *group)
{
	return !strcmp(xml_node_name(group), "birth") || !strcmp(xml_node_name(group), "career");
}

/*
 * The values of PCC group @g: the PCC elements directly inside it (one
 * <name-entry>, <tel>, <uri-entry>, <birth-date>, <employer>, ...). Imports
 * and exports count what they move in these units, the one meaning of
 * <imported-count> and <exported-count> (docs/client-developers.md).
 */
static unsigned group_values(const struct xml_node *g)
{
	unsigned n = 0;

	for (struct xml_node *e = xml_node_child(g, NULL, NULL); e; e = xml_node_next(e, NULL, NULL))
		if (is_pcc(e, NULL))
			n++;
	return n;
}

/* Merges imported group @g into local person-details @pd; returns how many
 * values it added or replaced, and sets *is_changed when it changed @pd. */
static unsigned merge_group(struct xml_node *pd, const struct xml_node *g, enum iwf_merge_policy policy,
			    bool *is_changed)
{
	struct xml_node *local = first_child(pd, xml_node_name(g));
	unsigned count = 0;

	if (!local) {
		xml_node_append_copy(pd, g);
		*is_changed = true;
		return group_values(g);
	}
	if (policy == IWF_ADD_ONLY)
		return 0;
	if (policy == IWF_REPLACE) {
		xml_node_replace_copy(local, g);
		*is_changed = true;
		return group_values(g);
	}
	for (struct xml_node *e = xml_node_child(g, NULL, NULL); e; e = xml_node_next(e, NULL, NULL)) {
		if (is_single_valued(g)) {
			if (!first_child(local, xml_node_name(e)) && is_pcc(e, NULL)) {
				xml_node_append_copy(local, e);
				count++;
				*is_changed = true;
			}
		} else if (is_pcc(e, NULL) && !has_entry(local, e)) {
			pref_fix(local, xml_node_append_copy(local, e));
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

static const char empty_pcc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				"<pcc xmlns=\"" IWF_PCC_NS "\"><person-details/></pcc>\n";

enum xdms_err iwf_merge(const char *local, size_t local_len, const char *imported, size_t imported_len,
			enum iwf_merge_policy policy, unsigned fields, struct iwf_merge_out *out, char **why)
{
	struct xml_doc *ldoc = NULL, *idoc = NULL;
	struct xml_node *lroot, *iroot, *lpd, *ipd;
	enum xdms_err err;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	err = parse_tree(imported, imported_len, &idoc, why, "the imported profile");
	if (!err)
		err = local ? parse_tree(local, local_len, &ldoc, why, "the stored PCC") :
			      parse_tree(empty_pcc, sizeof(empty_pcc) - 1, &ldoc, why, "the new PCC");
	if (err)
		goto out;
	iroot = xml_doc_root_elem(idoc);
	lroot = xml_doc_root_elem(ldoc);
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
	for (struct xml_node *p = first_child(iroot, "person-details"); p; p = xml_node_next(p, IWF_PCC_NS, "person-details"))
		out->person_count++;
	out->dropped = filter_fields(ipd, fields);
	out->is_partial = out->dropped != 0;
	for (struct xml_node *g = first_child(ipd, NULL); g; g = xml_node_next(g, IWF_PCC_NS, NULL))
		out->count += merge_group(lpd, g, policy, &out->is_changed);
	if (!local)
		out->is_changed = true;
	out->doc = xml_doc_serialize(ldoc, &out->doc_len);
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
	struct xml_node *root, *pd;
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
	if (nr.outcome != XCAP_OUTCOME_OK || !nr.body) {
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
	root = xml_doc_root_elem(doc);
	pd = first_child(root, "person-details");
	if (!pd) {
		*why = xstrdup("<source-sel> must select a person-details element");
		xml_doc_free(doc);
		return XDMS_ERR_INVAL;
	}
	*dropped = filter_fields(pd, fields);
	for (struct xml_node *g = first_child(pd, NULL); g; g = xml_node_next(g, IWF_PCC_NS, NULL))
		*count += group_values(g);
	*out = xml_doc_serialize(doc, out_len);
	xml_doc_free(doc);
	return XDMS_ERR_OK;
}
