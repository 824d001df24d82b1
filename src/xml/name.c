/* SPDX-License-Identifier: MIT */
/*
 * XML names (xml.h): the NCName check and the namespace-prefix check, within
 * ASCII (the names we generate and accept from configuration are ASCII).
 *
 * Two copies of the check disagreed on names that begin with "xml": one
 * refused them in any case, the other accepted them and left it to its
 * callers, which then refused only lower case. Namespaces in XML 1.0 §3
 * reserves prefixes beginning with "xml" in any case combination, but an
 * NCName may begin with it (element names do): so xml_is_ncname() accepts
 * them, and xml_is_free_prefix(), for prefixes we declare, refuses them in
 * any case. Pure; any thread.
 */
#include "config.h"

#include <strings.h>

#include "xml/xml.h"

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool xml_is_ncname(const char *s)
{
	if (!s || !(is_letter(s[0]) || s[0] == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!(is_letter(*p) || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

bool xml_is_free_prefix(const char *s)
{
	return xml_is_ncname(s) && strncasecmp(s, "xml", 3) != 0;
}
