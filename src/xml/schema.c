/* SPDX-License-Identifier: MIT */
/*
 * XSD compilation and validation. A compiled xmlSchema is read-only once
 * built and shared by all threads; each validation creates its own small
 * validation context. The first violation is kept as the phrase of the
 * <schema-validation-error>, prefixed with its line so a person can find it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlschemas.h>

#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

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
	*out = (struct xml_schema *)schema;
	err = XDMS_ERR_OK;
out:
	xmlSchemaFreeParserCtxt(pctxt);
	return err;
}

void xml_schema_free(struct xml_schema *schema)
{
	if (schema)
		xmlSchemaFree((xmlSchemaPtr)schema);
}

enum xdms_err xml_schema_validate(const struct xml_schema *schema, struct xml_doc *doc,
				  struct xml_issue *issue)
{
	xmlSchemaValidCtxtPtr vctxt;
	struct first_error fe = { .is_set = false };
	int rc;

	vctxt = xmlSchemaNewValidCtxt((xmlSchemaPtr)schema);
	if (!vctxt)
		return XDMS_ERR_INVAL;
	xmlSchemaSetValidStructuredErrors(vctxt, keep_first_error, &fe);
	rc = xmlSchemaValidateDoc(vctxt, (xmlDocPtr)doc);
	xmlSchemaFreeValidCtxt(vctxt);
	if (rc == 0)
		return XDMS_ERR_OK;
	issue->fault = XML_FAULT_SCHEMA;
	snprintf(issue->phrase, sizeof(issue->phrase), "%s",
		 fe.is_set ? fe.text : "the document does not match the application usage's schema");
	return XDMS_ERR_PARSE;
}
