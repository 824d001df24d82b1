/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for xcap_uri_parse (RFC 4825 §6): the input is a request
 * path, optionally followed by '?' and a query. Invariants: no crash, no leak;
 * on success every field a URI must have is set and the node selector, when
 * present, contains no NUL (it is a C string by construction) and the
 * document selector is not longer than the store allows; on failure the
 * output is empty.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xcap/xcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size); /* stops at an embedded NUL, as a request line would */
	char *q = strchr(in, '?');
	struct xcap_uri u;
	enum xdms_err err;

	if (q)
		*q++ = '\0';
	err = xcap_uri_parse("/xcap-root", in, q, &u);
	if (err == XDMS_ERR_OK) {
		if (!u.auid || !u.doc_path || !u.doc_selector || !u.auid[0] || !u.doc_path[0])
			abort();
		if (!u.is_global && (!u.xui || !u.xui[0]))
			abort();
		if (strlen(u.doc_selector) > STORE_SELECTOR_MAX)
			abort();
		if (u.node_selector && !u.node_selector[0])
			abort();
	} else if (u.auid || u.xui || u.doc_path || u.doc_selector || u.node_selector || u.query) {
		abort();
	}
	xcap_uri_cleanup(&u);
	free(in);
	return 0;
}
