/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the reader of a JSON address book's listing
 * (src/iwf/book_json.c): the import transform's <book> of entries, whose
 * text comes from the 3rd party, and the step that puts an item id from
 * the 3rd party into a URL. Invariants: no crash, no leak; on OK at most
 * IWF_BOOK_MAX_CARDS entries, each with a non-empty href, and a card for
 * each present one that parses as XML; an id made into a path never
 * leaves the template's path ("." and ".." segments refused) and adds no
 * query, fragment or brace of its own.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iwf/iwf_int.h"
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

static enum xdms_err on_card(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;

	(void)arg;
	if (!href[0] || !etag[0] || strlen(data) != len)
		abort();
	if (len && xml_parse(data, len, IWF_MAX_DEPTH, &doc, &issue))
		abort();
	xml_doc_free(doc);
	return XDMS_ERR_OK;
}

static void check_path(const char *id)
{
	static const char tmpl[] = "https://api.example.com/v1/{id}:update?f=1";
	char *path = iwf_json_book_item_path(tmpl, id);
	size_t n;

	if (!path)
		return;
	n = strlen(path);
	if (strncmp(path, "https://api.example.com/v1/", 27) || n < 38 || strcmp(path + n - 11, ":update?f=1") ||
	    memchr(path + 27, '?', n - 38) || memchr(path + 27, '#', n - 38) || memchr(path + 27, '{', n - 38) ||
	    strstr(path, "/../") || strstr(path, "/./"))
		abort();
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iwf_book_list l;
	struct iwf_result r;
	char *id;

	memset(&l, 0, sizeof(l));
	if (iwf_json_book_read("fuzz", (const char *)data, size, &l, on_card, NULL, &r) == XDMS_ERR_OK) {
		if (l.count > IWF_BOOK_MAX_CARDS)
			abort();
		for (size_t i = 0; i < l.count; i++)
			if (!l.entries[i].href || !l.entries[i].href[0])
				abort();
	}
	iwf_book_list_cleanup(&l);
	id = malloc(size + 1);
	if (!id)
		return 0;
	memcpy(id, data, size);
	id[size] = '\0';
	check_path(id);
	free(id);
	return 0;
}
