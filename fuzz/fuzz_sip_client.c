/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the header values the SIP subscriber reads from a
 * remote notifier (src/sip/auth.c): a WWW-Authenticate challenge, answered
 * when it parses, and a NOTIFY's Subscription-State. The input is one header
 * value (a C string by the time it is read). Invariants: no crash, no leak,
 * no read past the input; a parsed challenge has a realm and a nonce that
 * end inside their buffers and a known algorithm, and its answer either fits
 * its limit and holds no CR or LF (it becomes a header line) or is refused
 * as too big; a parsed Subscription-State has token strings that end inside
 * their buffers.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sip/sip_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENDS_INSIDE(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size);
	struct sip_challenge ch;
	struct sip_sub_state st;

	memset(&ch, 0xa5, sizeof(ch));
	if (sip_challenge_parse(in, &ch)) {
		struct buf b;
		enum xdms_err err;

		if (!ENDS_INSIDE(ch.realm) || !ENDS_INSIDE(ch.nonce) || !ENDS_INSIDE(ch.opaque) || !ch.realm[0] ||
		    !ch.nonce[0] || (ch.algo != DIGEST_ALGO_MD5 && ch.algo != DIGEST_ALGO_SHA256))
			abort();
		buf_init(&b, 4096);
		err = sip_authorization_make(&ch, "alice", "secret", "SUBSCRIBE", "sip:alice@example.com", 1, "c1",
					     &b);
		if (err != XDMS_ERR_OK && err != XDMS_ERR_TOOBIG)
			abort();
		if (!err && (b.len > 4096 || memchr(b.data, '\r', b.len) || memchr(b.data, '\n', b.len)))
			abort();
		buf_cleanup(&b);
	}
	memset(&st, 0xa5, sizeof(st));
	if (sip_sub_state_parse(in, &st)) {
		if (!ENDS_INSIDE(st.state) || !ENDS_INSIDE(st.reason) || !st.state[0] || st.expires < -1 ||
		    st.retry_after < -1)
			abort();
	}
	free(in);
	return 0;
}
