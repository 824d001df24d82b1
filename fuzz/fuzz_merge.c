/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the IWF's PCC merge (src/iwf/merge.c): the stored PCC
 * is the user's and the imported one is a 3rd party's, after a transform an
 * administrator wrote, so neither is trusted. Input layout:
 *
 *   control byte, local PCC NUL imported PCC
 *
 * The control byte picks the policy (low 2 bits; 3 = no local PCC) and the
 * field mask (the other 6 bits, shifted; 0 = all fields). Invariants:
 *   - on OK, the result parses (xml_parse) and has a PCC root;
 *   - merging the same import into the result again changes nothing under
 *     merge and add-only (a job that runs twice adds nothing twice);
 *   - on failure, *why is set and no document is returned.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1, *nul;
	enum iwf_merge_policy policy;
	struct iwf_merge_out m, again;
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	const char *local, *imported, *ns, *root;
	size_t local_len, imported_len;
	unsigned fields;
	char *why = NULL;

	if (size < 2)
		return 0;
	nul = memchr(in, '\0', size - 1);
	if (!nul)
		return 0;
	policy = (enum iwf_merge_policy)(data[0] & 3);
	fields = (unsigned)(data[0] >> 2) << 2;
	fields = fields ? fields & IWF_FIELD_ALL : IWF_FIELD_ALL;
	local = policy == 3 ? NULL : in;
	local_len = local ? (size_t)(nul - in) : 0;
	if (policy == 3)
		policy = IWF_MERGE;
	imported = nul + 1;
	imported_len = size - 1 - (size_t)(imported - in);
	if (iwf_merge(local, local_len, imported, imported_len, policy, fields, &m, &why)) {
		if (!why || m.doc)
			abort();
		free(why);
		return 0;
	}
	if (!m.doc || xml_parse(m.doc, m.doc_len, IWF_MAX_DEPTH + 8, &doc, &issue))
		abort();
	xml_doc_root(doc, &ns, &root);
	if (strcmp(ns, IWF_PCC_NS) != 0 || strcmp(root, "pcc") != 0)
		abort();
	xml_doc_free(doc);
	if (policy != IWF_REPLACE) {
		if (iwf_merge(m.doc, m.doc_len, imported, imported_len, policy, fields, &again, &why))
			abort();
		if (again.count != 0)
			abort();
		free(again.doc);
	}
	free(m.doc);
	return 0;
}
