/* SPDX-License-Identifier: MIT */
/*
 * A small command-line bridge to src/vcard and the built-in transforms, for
 * the tests that check them against independent readers (python3-vobject,
 * lxml's schema validator):
 *
 *   vcardconv read            vCard on stdin -> xCard on stdout
 *   vcardconv write 3|4       xCard on stdin -> vCard on stdout
 *   vcardconv xslt NAME [P V]...  applies the built-in transform NAME
 *                             (e.g. xcard2pcc.xsl) with string parameters
 *   vcardconv split           a multi-card body on stdin -> one xCard per
 *                             card, one per line
 *
 * Exit status 0 on success; 1 with the reason on stderr when the input is
 * refused; 2 on bad usage.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "vcard/vcard.h"
#include "xml/xml.h"

static int read_all(struct buf *in)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(in, chunk, n))
			return -1;
	return ferror(stdin) ? -1 : 0;
}

static int refuse(enum xdms_err err, char *why)
{
	fprintf(stderr, "%s: %s\n", xdms_err_name(err), why ? why : "-");
	free(why);
	return 1;
}

static int on_card(void *arg, const char *card, size_t len)
{
	struct buf out;
	unsigned version;
	char *why = NULL;
	enum xdms_err err;

	(void)arg;
	buf_init(&out, 16u << 20);
	err = vcard_read(card, len, NULL, &out, &version, &why);
	if (err) {
		printf("ERROR %s\n", why ? why : "-");
		free(why);
	} else {
		printf("%s\n", out.data);
	}
	buf_cleanup(&out);
	return 0;
}

int main(int argc, char **argv)
{
	struct buf in, out;
	char *why = NULL;
	int rc = 0;
	enum xdms_err err;

	if (argc < 2)
		return 2;
	xml_init();
	buf_init(&in, 64u << 20);
	buf_init(&out, 64u << 20);
	if (read_all(&in)) {
		fprintf(stderr, "cannot read stdin\n");
		return 2;
	}
	if (!strcmp(argv[1], "read")) {
		unsigned version;

		err = vcard_read(in.data ? in.data : "", in.len, NULL, &out, &version, &why);
		rc = err ? refuse(err, why) : 0;
	} else if (!strcmp(argv[1], "write") && argc == 3) {
		err = vcard_write(in.data ? in.data : "", in.len, (unsigned)atoi(argv[2]), &out, &why);
		rc = err ? refuse(err, why) : 0;
	} else if (!strcmp(argv[1], "split")) {
		err = vcard_split(in.data ? in.data : "", in.len, 100000, on_card, NULL, &why);
		rc = err ? refuse(err, why) : 0;
	} else if (!strcmp(argv[1], "xslt") && argc >= 3 && argc % 2 == 1) {
		const char *data;
		size_t len, res_len;
		struct xml_xslt *x = NULL;
		char *res = NULL;

		if (!xml_file_find(argv[2], &data, &len)) {
			fprintf(stderr, "no built-in file %s\n", argv[2]);
			rc = 2;
		} else if ((err = xml_xslt_compile(data, len, &x, &why))) {
			rc = refuse(err, why);
		} else if ((err = xml_xslt_apply(x, in.data ? in.data : "", in.len, (const char *const *)argv + 3,
						 (size_t)(argc - 3) / 2, 64u << 20, &res, &res_len, &why))) {
			rc = refuse(err, why);
		} else {
			fwrite(res, 1, res_len, stdout);
		}
		free(res);
		xml_xslt_free(x);
	} else {
		rc = 2;
	}
	if (!rc && out.len)
		fwrite(out.data, 1, out.len, stdout);
	buf_cleanup(&in);
	buf_cleanup(&out);
	xml_shutdown();
	return rc;
}
