/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the WebDAV multistatus reader (src/iwf/dav.c): the
 * answers of a CardDAV server to PROPFIND, sync-collection and
 * addressbook-multiget, untrusted. Invariants: no crash, no leak; on OK at
 * most the item cap of responses, each with an href that is a path (no
 * scheme and host left), and no address-data over the byte cap; on failure
 * *why is set and the result is empty. The DAV:error probe must not crash
 * on the same bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define MAX_ITEMS 64
#define MAX_DATA 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xml_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iwf_dav_multistatus ms;
	char *why = NULL;
	enum xdms_err err = iwf_dav_parse((const char *)data, size, MAX_ITEMS, MAX_DATA, &ms, &why);

	if (err == XDMS_ERR_OK) {
		if (why || ms.count > MAX_ITEMS)
			abort();
		for (size_t i = 0; i < ms.count; i++) {
			const struct iwf_dav_item *it = &ms.items[i];

			if (!it->href || !it->href[0] || !strncmp(it->href, "http://", 7) ||
			    !strncmp(it->href, "https://", 8))
				abort();
			if (it->data && (it->data_len > MAX_DATA || strlen(it->data) != it->data_len))
				abort();
		}
	} else if (!why || ms.items || ms.count || ms.sync_token) {
		abort();
	}
	iwf_dav_multistatus_cleanup(&ms);
	free(why);
	(void)iwf_dav_error_has((const char *)data, size, IWF_DAV_NS, "valid-sync-token");
	return 0;
}
