/* SPDX-License-Identifier: MIT */
/*
 * ctl/admin.c: xdmsctl's writes through the XCAP write path, as an
 * administrator (ctl.h). Every command that stores or deletes a document
 * (`doc put|del`, adapters and their transforms, a user's import and purge)
 * goes through ctl_admin_write(), so it gets the same validation, commit
 * hooks, ETags and change record as an XCAP PUT or DELETE by an admin.
 *
 * Threads: xdmsctl's main thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "xml/xml.h"

int ctl_writer_open(const struct conf *c, struct store *st, struct ctl_writer *wr)
{
	struct xcap_registry_options ro = { .descriptor_dir = c->xcap_descriptor_dir,
					    .max_document = c->xcap_max_document };
	struct xcap_options xo = { .root_path = "", .root_uri = "", .max_depth = c->xcap_max_depth,
				   .max_binary = c->xcap_max_icon };
	char *why = NULL;

	memset(wr, 0, sizeof(*wr));
	xml_init();
	if (xcap_registry_create(&ro, &wr->reg, &why)) {
		fprintf(stderr, "xdmsctl: application usages: %s\n", why);
		free(why);
		return CTL_EXIT_FAIL;
	}
	if (st && xcap_create(st, wr->reg, &xo, &wr->x)) {
		fprintf(stderr, "xdmsctl: cannot set up the XCAP write path\n");
		return CTL_EXIT_FAIL;
	}
	return 0;
}

void ctl_writer_close(struct ctl_writer *wr)
{
	xcap_destroy(wr->x);
	xcap_registry_destroy(wr->reg);
	memset(wr, 0, sizeof(*wr));
}

void ctl_admin_write(struct ctl_writer *wr, const struct xcap_uri *uri, const char *body, size_t len,
		     const char *keep_etag, bool is_move, struct xcap_response *resp)
{
	struct xcap_identity who = { .id = "xdmsctl", .role = XCAP_ROLE_ADMIN };
	struct xcap_request req;
	struct xcap_write *w;

	memset(&req, 0, sizeof(req));
	req.method = body ? XCAP_METHOD_PUT : XCAP_METHOD_DELETE;
	req.uri = uri;
	req.body = body;
	req.body_len = len;
	req.who = &who;
	req.base_url = "";
	req.keep_etag = body ? keep_etag : NULL;
	req.is_move = is_move;
	if (body) {
		const struct xcap_auid *a = xcap_registry_find(wr->reg, uri->auid);

		req.content_type = a ? a->mime : NULL;
	}
	w = xcap_write_prepare(wr->x, &req, resp);
	if (w) {
		xcap_write_run(wr->x, w);
		xcap_write_finish(w, resp);
	}
}
