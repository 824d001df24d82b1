/* SPDX-License-Identifier: MIT */
/*
 * XSLT (xml.h): administrators' stylesheets, compiled once and applied under
 * a security policy.
 *
 * Compiling parses the stylesheet with xml_parse (no DTD, no entities, no
 * network); xsl:import and xsl:include go through the entity loader xml_init()
 * installed, which serves only the project's registered files. Applying runs
 * with security preferences that forbid every file and network access, so
 * document('file:///etc/passwd') or xsl:document fail the transform instead
 * of reading or writing anything. The recursion and variable limits of
 * libxslt bound a runaway stylesheet's depth; its output is checked against
 * the caller's cap before it is handed over.
 *
 * Threads: the shared security preferences are created once (pthread_once);
 * a compiled stylesheet is read-only and applied from any thread; each apply
 * has its own transform context.
 */
#include "config.h"

#include <libxml/tree.h>
#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/xsltutils.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

#define XSLT_MAX_DEPTH 64 /* XML nesting of stylesheets and inputs */
#define XSLT_MAX_TEMPLATE_DEPTH 500
#define XSLT_MAX_PARAMS 8

struct xml_xslt {
	xsltStylesheetPtr sheet;
};

static pthread_once_t prefs_once = PTHREAD_ONCE_INIT;
static xsltSecurityPrefsPtr prefs;

static void prefs_init(void)
{
	static const xsltSecurityOption forbidden[] = {
		XSLT_SECPREF_READ_FILE,     XSLT_SECPREF_WRITE_FILE,    XSLT_SECPREF_CREATE_DIRECTORY,
		XSLT_SECPREF_READ_NETWORK, XSLT_SECPREF_WRITE_NETWORK,
	};

	prefs = xsltNewSecurityPrefs();
	if (!prefs)
		abort();
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (xsltSetSecurityPrefs(prefs, forbidden[i], xsltSecurityForbid))
			abort();
	/* Compilation (xsl:import) uses the defaults, not a context's. */
	xsltSetDefaultSecurityPrefs(prefs);
	xsltMaxDepth = XSLT_MAX_TEMPLATE_DEPTH;
}

/* libxslt reports through a generic error function; keep the first line. */
struct err_sink {
	char text[256];
};

static void err_collect(void *ctx, const char *fmt, ...)
{
	struct err_sink *s = ctx;
	size_t used = strlen(s->text);
	va_list ap;

	if (used >= sizeof(s->text) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(s->text + used, sizeof(s->text) - used, fmt, ap);
	va_end(ap);
}

static char *err_sentence(const struct err_sink *s, const char *what)
{
	char line[256];
	size_t n;

	snprintf(line, sizeof(line), "%s", s->text);
	n = strcspn(line, "\n");
	line[n] = '\0';
	return line[0] ? xasprintf("%s: %s", what, line) : xstrdup(what);
}

enum xdms_err xml_xslt_compile(const char *data, size_t len, struct xml_xslt **out, char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct err_sink sink = { "" };
	xsltStylesheetPtr sheet;
	xmlDocPtr tree;

	*out = NULL;
	*why = NULL;
	pthread_once(&prefs_once, prefs_init);
	if (xml_parse(data, len, XSLT_MAX_DEPTH, &doc, &issue)) {
		*why = xasprintf("the stylesheet is not usable XML: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	tree = xml_doc_tree(doc);
	xsltSetGenericErrorFunc(&sink, err_collect);
	/* On success the stylesheet owns the tree. */
	sheet = xsltParseStylesheetDoc(tree);
	xsltSetGenericErrorFunc(NULL, NULL);
	if (!sheet || sheet->errors) {
		if (sheet)
			xsltFreeStylesheet(sheet);
		else
			xml_doc_free(doc);
		*why = err_sentence(&sink, "not a valid XSLT 1.0 stylesheet");
		return XDMS_ERR_PARSE;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->sheet = sheet;
	return XDMS_ERR_OK;
}

void xml_xslt_free(struct xml_xslt *x)
{
	if (!x)
		return;
	xsltFreeStylesheet(x->sheet);
	free(x);
}

/* An XPath string literal for @v: quoted with ' or ", or concat() when it has both. */
static char *xpath_literal(const char *v)
{
	struct buf b;

	if (!strchr(v, '\''))
		return xasprintf("'%s'", v);
	if (!strchr(v, '"'))
		return xasprintf("\"%s\"", v);
	buf_init(&b, strlen(v) * 8 + 16);
	if (buf_append_str(&b, "concat(''"))
		abort();
	for (const char *p = v; *p; p++) {
		int rc = *p == '\'' ? buf_append_str(&b, ", \"'\"") : buf_printf(&b, ", '%c'", *p);

		if (rc)
			abort();
	}
	if (buf_append_str(&b, ")"))
		abort();
	return buf_take(&b, NULL);
}

enum xdms_err xml_xslt_apply(const struct xml_xslt *x, const char *data, size_t len, const char *const *params,
			     size_t param_count, size_t max_out, char **out, size_t *out_len, char **why)
{
	const char *argv[2 * XSLT_MAX_PARAMS + 1];
	char *literals[XSLT_MAX_PARAMS] = { 0 };
	struct xml_doc *in = NULL;
	struct xml_issue issue;
	struct err_sink sink = { "" };
	xsltTransformContextPtr ctxt = NULL;
	xmlDocPtr res = NULL;
	xmlChar *text = NULL;
	int text_len = 0;
	enum xdms_err err = XDMS_ERR_PARSE;

	*out = NULL;
	*out_len = 0;
	*why = NULL;
	pthread_once(&prefs_once, prefs_init);
	if (param_count > XSLT_MAX_PARAMS)
		return XDMS_ERR_INVAL;
	if (xml_parse(data, len, XSLT_MAX_DEPTH, &in, &issue)) {
		*why = xasprintf("the input is not usable XML: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	for (size_t i = 0; i < param_count; i++) {
		literals[i] = xpath_literal(params[2 * i + 1]);
		argv[2 * i] = params[2 * i];
		argv[2 * i + 1] = literals[i];
	}
	argv[2 * param_count] = NULL;
	ctxt = xsltNewTransformContext(x->sheet, xml_doc_tree(in));
	if (!ctxt || xsltSetCtxtSecurityPrefs(prefs, ctxt)) {
		*why = xstrdup("the transform could not be set up");
		err = XDMS_ERR_INVAL;
		goto out;
	}
	xsltSetTransformErrorFunc(ctxt, &sink, err_collect);
	res = xsltApplyStylesheetUser(x->sheet, xml_doc_tree(in), argv, NULL, NULL, ctxt);
	if (!res || ctxt->state == XSLT_STATE_ERROR || ctxt->state == XSLT_STATE_STOPPED) {
		*why = err_sentence(&sink, "the transform failed");
		goto out;
	}
	if (xsltSaveResultToString(&text, &text_len, res, x->sheet) || !text || text_len <= 0) {
		*why = xstrdup("the transform produced no output");
		goto out;
	}
	if ((size_t)text_len > max_out) {
		*why = xasprintf("the transform's output (%d bytes) is larger than the limit of %zu bytes",
				 text_len, max_out);
		err = XDMS_ERR_TOOBIG;
		goto out;
	}
	*out = xstrndup((const char *)text, (size_t)text_len);
	*out_len = (size_t)text_len;
	err = XDMS_ERR_OK;
out:
	xmlFree(text);
	if (res)
		xmlFreeDoc(res);
	if (ctxt)
		xsltFreeTransformContext(ctxt);
	xml_doc_free(in);
	for (size_t i = 0; i < param_count; i++)
		free(literals[i]);
	return err;
}
