/* SPDX-License-Identifier: MIT */
/*
 * The `xcap` adapter kind: another XDMS, natively (XDM-3i). The import is
 * an XCAP GET of the user's PCC there and the export an XCAP PUT of it, with
 * Digest, so the kind needs no transform of its own: the identity-like
 * xslt/pcc-identity.xsl keeps the PCC elements. XCAP is HTTP, so the calls
 * are the `http` kind's (adapter_http.c) with these defaults. A watch
 * (subscribe-profile) polls the remote PCC with a conditional GET
 * (If-None-Match on the remote ETag, a 304 being no change); a SIP xcap-diff
 * subscription (SIC-1) will be this kind's `subscribe`.
 *
 * Threads: any worker.
 */
#include "config.h"

#include "iwf/iwf_int.h"

const struct iwf_kind iwf_kind_xcap = {
	.name = "xcap",
	.content_type = "application/vnd.oma.cab-pcc+xml",
	.import_method = "GET",
	.export_method = "PUT",
	.import_xslt = "pcc-identity.xsl",
	.export_xslt = "pcc-identity.xsl",
	.auth = IWF_AUTH_DIGEST,
	.fetch = iwf_http_fetch,
	.send = iwf_http_send,
	.poll = iwf_http_poll,
};
