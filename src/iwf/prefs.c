/* SPDX-License-Identifier: MIT */
/*
 * The user's CAB preferences (SPEC §4.4, §5.3 step 5), read from the user's
 * org.openmobilealliance.cab-user-prefs document before every import and
 * export. No document, or no element, means the schema's defaults: store
 * imports, merge, every field, every 3rd party.
 *
 * Threads: any worker; reads one snapshot.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define PREFS_AUID "org.openmobilealliance.cab-user-prefs"
#define PREFS_NS "urn:oma:xml:cab:user-prefs"

static struct xml_node *child(const struct xml_node *parent, const char *name)
{
	return xml_node_child(parent, PREFS_NS, name);
}

static char *content(const struct xml_node *n)
{
	return xml_node_text(n);
}

/* A field list from the preferences; names this server does not know are
 * ignored (the schema allows any token). */
static unsigned fields_of(const struct xml_node *n)
{
	char *t = content(n);
	unsigned mask = IWF_FIELD_ALL;

	if (t)
		mask = iwf_fields_mask_lenient(t);
	free(t);
	return mask;
}

void iwf_prefs_cleanup(struct iwf_prefs *p)
{
	for (size_t i = 0; i < p->third_party_count; i++)
		free(p->third_parties[i]);
	free(p->third_parties);
	memset(p, 0, sizeof(*p));
}

enum xdms_err iwf_prefs_load(struct store *st, const char *xui, struct iwf_prefs *p)
{
	char *sel = xasprintf("%s/users/%s/index", PREFS_AUID, xui), *data = NULL, *t;
	struct store_read *rd = NULL;
	struct store_doc d;
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *root, *imp, *exp, *sub;
	size_t len = 0;
	enum xdms_err err;

	memset(p, 0, sizeof(*p));
	p->is_auto_store = true;
	p->is_auto_update = true;
	p->import_fields = p->export_fields = IWF_FIELD_ALL;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_doc_get(rd, sel, &d);
	if (!err) {
		data = xstrndup(d.data, d.data_len);
		len = d.data_len;
	}
	store_read_end(rd);
	free(sel);
	if (err == XDMS_ERR_NOTFOUND)
		return XDMS_ERR_OK;
	if (err)
		return err;
	err = xml_parse(data, len, IWF_MAX_DEPTH, &doc, &issue) ? XDMS_ERR_CORRUPT : XDMS_ERR_OK;
	free(data);
	if (err)
		return err;
	root = xml_doc_root_elem(doc);
	imp = child(root, "import-prefs");
	exp = child(root, "export-prefs");
	t = content(child(imp, "auto-store"));
	if (t && (!strcmp(t, "false") || !strcmp(t, "0")))
		p->is_auto_store = false;
	free(t);
	t = content(child(imp, "conflict-policy"));
	if (t) {
		p->has_conflict_policy = true;
		p->conflict_policy = !strcmp(t, "keep-existing") ? IWF_ADD_ONLY :
				     !strcmp(t, "overwrite")	  ? IWF_REPLACE :
								    IWF_MERGE;
	}
	free(t);
	sub = child(root, "subscription-prefs");
	t = content(child(sub, "auto-update"));
	if (t && (!strcmp(t, "false") || !strcmp(t, "0")))
		p->is_auto_update = false;
	free(t);
	t = content(child(sub, "max-expires"));
	if (t) {
		p->has_max_expires = true;
		p->max_expires = (unsigned)strtoul(t, NULL, 10);
	}
	free(t);
	if (child(imp, "allowed-fields"))
		p->import_fields = fields_of(child(imp, "allowed-fields"));
	if (child(exp, "allowed-fields"))
		p->export_fields = fields_of(child(exp, "allowed-fields"));
	for (struct xml_node *c = child(exp, "allowed-third-party"); c;
	     c = xml_node_next(c, PREFS_NS, "allowed-third-party")) {
		p->third_parties = xrealloc(p->third_parties, (p->third_party_count + 1) * sizeof(char *));
		p->third_parties[p->third_party_count++] = content(c);
	}
	xml_doc_free(doc);
	return XDMS_ERR_OK;
}

bool iwf_prefs_third_party_ok(const struct iwf_prefs *p, const char *id)
{
	if (!p->third_party_count)
		return true;
	for (size_t i = 0; i < p->third_party_count; i++) {
		const char *s = p->third_parties[i];
		size_t n = strlen(s);

		/* xs:token: no leading or trailing blanks in a valid document. */
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t'))
			n--;
		s += strspn(s, " \n\t");
		if (strlen(id) == (size_t)(n - (size_t)(s - p->third_parties[i])) && !strncmp(s, id, strlen(id)))
			return true;
	}
	return false;
}
