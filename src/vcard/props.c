/* SPDX-License-Identifier: MIT */
/*
 * The vCard properties this module knows, with their shape and default value
 * type (RFC 6350 §6, RFC 6351 Appendix A, RFC 6474, RFC 6715), and the value
 * types of parameters. Read-only tables; any thread.
 *
 * A property missing here is still read and written: its raw value travels
 * in an <unknown> element (RFC 6351 §5), so nothing a 3rd party sends is
 * lost on the way through.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vcard/vcard_int.h"

static const char *const n_parts[] = { "surname", "given", "additional", "prefix", "suffix", NULL };
static const char *const adr_parts[] = { "pobox", "ext", "street", "locality", "region", "code", "country", NULL };
static const char *const gender_parts[] = { "sex", "identity", NULL };
static const char *const pidmap_parts[] = { "sourceid", "uri", NULL };

static const struct vcard_prop props[] = {
	/* RFC 6350 §6.1 general */
	{ "SOURCE", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "KIND", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "XML", "text", VCARD_SHAPE_SINGLE, NULL, false },
	/* §6.2 identification */
	{ "FN", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "N", "text", VCARD_SHAPE_STRUCT, n_parts, false },
	{ "NICKNAME", "text", VCARD_SHAPE_LIST, NULL, false },
	{ "PHOTO", "uri", VCARD_SHAPE_SINGLE, NULL, true },
	{ "BDAY", "date-and-or-time", VCARD_SHAPE_SINGLE, NULL, false },
	{ "ANNIVERSARY", "date-and-or-time", VCARD_SHAPE_SINGLE, NULL, false },
	{ "GENDER", "text", VCARD_SHAPE_STRUCT, gender_parts, false },
	/* §6.3 delivery addressing */
	{ "ADR", "text", VCARD_SHAPE_STRUCT, adr_parts, false },
	/* §6.4 communications */
	{ "TEL", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "EMAIL", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "IMPP", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "LANG", "language-tag", VCARD_SHAPE_SINGLE, NULL, false },
	/* §6.5 geographical */
	{ "TZ", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "GEO", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	/* §6.6 organizational */
	{ "TITLE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "ROLE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "LOGO", "uri", VCARD_SHAPE_SINGLE, NULL, true },
	{ "ORG", "text", VCARD_SHAPE_ORG, NULL, false },
	{ "MEMBER", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "RELATED", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	/* §6.7 explanatory */
	{ "CATEGORIES", "text", VCARD_SHAPE_LIST, NULL, false },
	{ "NOTE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "PRODID", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "REV", "timestamp", VCARD_SHAPE_SINGLE, NULL, false },
	{ "SOUND", "uri", VCARD_SHAPE_SINGLE, NULL, true },
	{ "UID", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "CLIENTPIDMAP", "text", VCARD_SHAPE_STRUCT, pidmap_parts, false },
	{ "URL", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	/* §6.8 security, §6.9 calendar */
	{ "KEY", "uri", VCARD_SHAPE_SINGLE, NULL, true },
	{ "FBURL", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "CALADRURI", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	{ "CALURI", "uri", VCARD_SHAPE_SINGLE, NULL, false },
	/* RFC 6474 */
	{ "BIRTHPLACE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "DEATHPLACE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "DEATHDATE", "date-and-or-time", VCARD_SHAPE_SINGLE, NULL, false },
	/* RFC 6715 (OMA CAB) */
	{ "EXPERTISE", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "HOBBY", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "INTEREST", "text", VCARD_SHAPE_SINGLE, NULL, false },
	{ "ORG-DIRECTORY", "uri", VCARD_SHAPE_SINGLE, NULL, false },
};

const struct vcard_prop *vcard_prop_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (strlen(props[i].name) == len && !strncasecmp(props[i].name, name, len))
			return &props[i];
	return NULL;
}

const char *vcard_param_type(const char *name)
{
	/* RFC 6351 Appendix A: the parameters whose values are not text. */
	if (!strcmp(name, "LANGUAGE"))
		return "language-tag";
	if (!strcmp(name, "PREF") || !strcmp(name, "INDEX"))
		return "integer";
	if (!strcmp(name, "GEO"))
		return "uri";
	return "text";
}
