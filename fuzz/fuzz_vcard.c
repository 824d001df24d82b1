/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the vCard reader and writer (src/vcard): cards come
 * from 3rd-party address books, so every byte is untrusted. The input is one
 * card; the reader runs with small caps so that the fuzzer reaches them.
 * Invariants:
 *   - on refusal, *why is set and nothing was appended to the output;
 *   - on success, the version is 3 or 4 and the xCard is well-formed XML
 *     whose root is <vcard> in the xCard namespace;
 *   - the writer accepts that xCard in both versions, its lines end in CRLF
 *     and are at most 75 octets, and the reader reads its output again
 *     (a round trip never turns a card the server took into one it refuses).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "vcard/vcard.h"
#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xml_init();
	return 0;
}

static void check_lines(const char *v, size_t len)
{
	const char *p = v, *end = v + len;

	while (p < end) {
		const char *crlf = memchr(p, '\r', (size_t)(end - p));

		if (!crlf || crlf + 1 >= end || crlf[1] != '\n' || crlf - p > 75)
			abort();
		p = crlf + 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcard_limits lim = { .max_card = 16384, .max_photo = 1024, .max_lines = 200 };
	struct vcard_limits big = { .max_card = 1 << 20, .max_photo = 1 << 20, .max_lines = 100000 };
	struct buf x, v, x2;
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	const char *ns, *root;
	unsigned version = 0, version2 = 0;
	char *why = NULL;
	enum xdms_err err;

	buf_init(&x, 1 << 20);
	err = vcard_read((const char *)data, size, &lim, &x, &version, &why);
	if (err) {
		if (!why || x.len)
			abort();
		free(why);
		buf_cleanup(&x);
		return 0;
	}
	if (why || (version != 3 && version != 4))
		abort();
	if (xml_parse(x.data, x.len, 64, &doc, &issue))
		abort();
	xml_doc_root(doc, &ns, &root);
	if (strcmp(ns, VCARD_NS) || strcmp(root, "vcard"))
		abort();
	xml_doc_free(doc);

	for (unsigned out_version = 3; out_version <= 4; out_version++) {
		buf_init(&v, 4 << 20);
		buf_init(&x2, 4 << 20);
		if (vcard_write(x.data, x.len, out_version, &v, &why)) {
			fprintf(stderr, "writer refused the reader's xCard: %s\n%s\n", why ? why : "-", x.data);
			abort();
		}
		check_lines(v.data, v.len);
		if (vcard_read(v.data, v.len, &big, &x2, &version2, &why) || version2 != out_version) {
			fprintf(stderr, "reader refused the writer's vCard: %s\n%s\n", why ? why : "-", v.data);
			abort();
		}
		buf_cleanup(&v);
		buf_cleanup(&x2);
	}
	buf_cleanup(&x);
	return 0;
}
