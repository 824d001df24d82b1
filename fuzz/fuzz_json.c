/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/json, both directions: a 3rd party's JSON into
 * its XML representation, and an administrator's export transform output
 * (that representation) into JSON. Input layout: a control byte, then the
 * text. Control byte even: the text is JSON; odd: the text is XML.
 * Invariants:
 *   - JSON accepted converts to XML that json_from_xml accepts, and the JSON
 *     it gives converts to the very same XML again (a stable round trip);
 *   - XML accepted gives JSON that json_to_xml accepts, and that XML gives
 *     the same JSON again;
 *   - a refusal always comes with a reason, and never with output.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define OUT_MAX (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xml_init();
	return 0;
}

static enum xdms_err convert(bool is_json, const char *in, size_t len, const struct json_limits *lim,
			     struct buf *out)
{
	char *why = NULL;
	enum xdms_err err = is_json ? json_to_xml(in, len, lim, out, &why) : json_from_xml(in, len, lim, out, &why);

	if (err && !why)
		abort();
	if (!err && why)
		abort();
	free(why);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_limits lim;
	struct buf first, second, third;
	bool is_json;

	if (size < 1)
		return 0;
	is_json = (data[0] & 1) == 0;
	json_limits_init(&lim);
	lim.max_depth = 32;
	lim.max_members = 1000;
	lim.max_string = 4096;
	buf_init(&first, OUT_MAX);
	buf_init(&second, OUT_MAX);
	buf_init(&third, OUT_MAX);
	if (convert(is_json, (const char *)data + 1, size - 1, &lim, &first) == XDMS_ERR_OK) {
		/* Escaping grows text; only a cap may stop the way back. */
		enum xdms_err err = convert(!is_json, first.data, first.len, &lim, &second);

		if (err && err != XDMS_ERR_TOOBIG)
			abort();
		if (!err) {
			err = convert(is_json, second.data, second.len, &lim, &third);
			if (err && err != XDMS_ERR_TOOBIG)
				abort();
			if (!err && (third.len != first.len || memcmp(third.data, first.data, first.len) != 0))
				abort();
		}
	}
	buf_cleanup(&first);
	buf_cleanup(&second);
	buf_cleanup(&third);
	return 0;
}
