/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for xcap_selector_parse (RFC 4825 §6.3, §6.4): the input is
 * a node selector, optionally followed by a newline and the query with the
 * namespace bindings. A parsed selector is also evaluated (GET) on a small
 * fixed document. Invariants: no crash, no leak; a refusal comes with a
 * reason and no selector; a GET answers 200 or 404 and a 200 has a body.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "http/http.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char doc[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:p=\"urn:p\">\n"
	" <list name=\"friends\">\n"
	"  <entry uri=\"sip:a@example.com\" p:x=\"1\"><display-name>A &amp; B</display-name></entry>\n"
	"  <entry uri='sip:b@example.com'><display-name>B</display-name></entry>\n"
	"  <p:ext p:y=\"&quot;q&quot;\"/><!-- c -->\n"
	" </list>\n"
	" <list name=\"x&amp;y\"/>\n"
	"</resource-lists>\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xml_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size);
	char *query = strchr(in, '\n');
	struct xcap_selector *sel = (struct xcap_selector *)1;
	const char *why = NULL;
	enum xdms_err err;

	if (query)
		*query++ = '\0';
	err = xcap_selector_parse(in, query, "urn:ietf:params:xml:ns:resource-lists", &sel, &why);
	if (err) {
		if (err != XDMS_ERR_PARSE || sel || !why || !why[0])
			abort();
	} else {
		struct xcap_node_result r;
		enum xcap_node_kind kind = xcap_selector_kind(sel);

		if (kind != XCAP_NODE_ELEMENT && kind != XCAP_NODE_ATTRIBUTE && kind != XCAP_NODE_NAMESPACES)
			abort();
		xcap_node_get(doc, sizeof(doc) - 1, sel, &r);
		if (http_status_of(r.outcome) != 200 && http_status_of(r.outcome) != 404)
			abort();
		if ((http_status_of(r.outcome) == 200) != (r.body != NULL) || r.new_doc)
			abort();
		xcap_node_result_cleanup(&r);
		xcap_selector_free(sel);
	}
	free(in);
	return 0;
}
