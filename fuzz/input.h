/* SPDX-License-Identifier: MIT */
/*
 * The input layout the node fuzz targets share: "SELECTOR\0QUERY\0BODY\0DOC",
 * the last part taking the rest of the input (it may hold NULs of its own).
 */
#ifndef XDMS_FUZZ_INPUT_H
#define XDMS_FUZZ_INPUT_H

#include <stddef.h>
#include <string.h>

struct fuzz_node_input {
	const char *sel, *query; /* NUL-terminated */
	const char *body, *doc;
	size_t body_len, doc_len;
};

/* Splits @data; 0 when it lacks one of the three NULs. */
static inline int fuzz_node_input_split(const char *data, size_t size, struct fuzz_node_input *in)
{
	const char *end = data + size, *nul;

	in->sel = data;
	nul = memchr(data, '\0', size);
	if (!nul)
		return 0;
	in->query = nul + 1;
	nul = memchr(in->query, '\0', (size_t)(end - in->query));
	if (!nul)
		return 0;
	in->body = nul + 1;
	nul = memchr(in->body, '\0', (size_t)(end - in->body));
	if (!nul)
		return 0;
	in->body_len = (size_t)(nul - in->body);
	in->doc = nul + 1;
	in->doc_len = (size_t)(end - in->doc);
	return 1;
}

#endif
