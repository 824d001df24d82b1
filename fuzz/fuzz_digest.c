/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for digest_parse (RFC 7616 Authorization: Digest), the
 * parser every unauthenticated HTTP and SIP request reaches. The input is
 * "REQUEST-TARGET\nHEADER": the target is what the request line carried (the
 * parser takes a uri parameter verbatim when it holds exactly the target,
 * raw quotes and all). Invariants: no crash, no leak, no read past the input;
 * on success every string ends inside its buffer and the algorithm is one
 * xdmsd knows. (Empty fields parse; they cannot match any user.)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/digest.h"
#include "base/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENDS_INSIDE(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size); /* header values are C strings by then */
	char *header = strchr(in, '\n');
	struct digest_credentials cr;
	const char *target = NULL;

	if (header) {
		*header++ = '\0';
		target = in;
	} else {
		header = in;
	}
	memset(&cr, 0xa5, sizeof(cr));
	if (digest_parse(header, target, &cr) == XDMS_ERR_OK) {
		if (!ENDS_INSIDE(cr.username) || !ENDS_INSIDE(cr.realm) || !ENDS_INSIDE(cr.nonce) ||
		    !ENDS_INSIDE(cr.uri) || !ENDS_INSIDE(cr.response) || !ENDS_INSIDE(cr.cnonce) ||
		    !ENDS_INSIDE(cr.opaque) || !ENDS_INSIDE(cr.qop))
			abort();
		if (cr.algo != DIGEST_ALGO_MD5 && cr.algo != DIGEST_ALGO_SHA256)
			abort();
	}
	free(in);
	return 0;
}
