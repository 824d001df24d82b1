/* SPDX-License-Identifier: MIT */
/*
 * Who an authenticated identity is to the server (xcap.h): an admin, a
 * trusted server (IWF, CAB server) or a user, from the configured lists.
 * The HTTP front and the SUBSCRIBE front both ask here, so that a change
 * to the rule (a domain of servers, say) is made once. Pure; any thread.
 */
#include "config.h"

#include "conf/conf.h"
#include "xcap/xcap.h"

enum xcap_role xcap_role_of(const struct conf *c, const char *identity)
{
	if (conf_list_has(&c->auth_admin_identities, identity))
		return XCAP_ROLE_ADMIN;
	if (conf_list_has(&c->auth_server_identities, identity))
		return XCAP_ROLE_SERVER;
	return XCAP_ROLE_USER;
}
