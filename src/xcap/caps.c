/* SPDX-License-Identifier: MIT */
/*
 * The xcap-caps document (RFC 4825 §12): every AUID the registry serves and
 * every default namespace, in registry order, built once at start-up. The
 * schema makes <extensions> optional, but clients exist that read it as
 * required, so it is always there (empty: xdmsd implements no extensions).
 */
#include "config.h"

#include <string.h>

#include "xcap/xcap_int.h"

enum xdms_err xcap_caps_build(const struct xcap_registry *reg, struct buf *out)
{
	size_t n = xcap_registry_count(reg);
	enum xdms_err err;

	err = buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				  "<xcap-caps xmlns=\"urn:ietf:params:xml:ns:xcap-caps\">\n  <auids>\n");
	for (size_t i = 0; !err && i < n; i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);

		err = buf_append_str(out, "    <auid>");
		if (!err)
			err = buf_append_xml_escaped(out, a->name, strlen(a->name));
		if (!err)
			err = buf_append_str(out, "</auid>\n");
	}
	if (!err)
		err = buf_append_str(out, "  </auids>\n  <extensions/>\n  <namespaces>\n");
	for (size_t i = 0; !err && i < n; i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);
		bool is_dup = false;

		/* Two usages may share a namespace; list each once. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(xcap_registry_at(reg, j)->ns, a->ns) == 0)
				is_dup = true;
		if (is_dup)
			continue;
		err = buf_append_str(out, "    <namespace>");
		if (!err)
			err = buf_append_xml_escaped(out, a->ns, strlen(a->ns));
		if (!err)
			err = buf_append_str(out, "</namespace>\n");
	}
	if (!err)
		err = buf_append_str(out, "  </namespaces>\n</xcap-caps>\n");
	return err;
}
