/* SPDX-License-Identifier: MIT */
/*
 * Shared inside src/vcard only: the property table both directions use, so
 * that the reader and the writer agree on every property's shape and
 * default value type.
 */
#ifndef XDMS_VCARD_INT_H
#define XDMS_VCARD_INT_H

#include <stdbool.h>
#include <stddef.h>

/* How a property's value is laid out (RFC 6350 §3.3, §4). */
enum vcard_shape {
	VCARD_SHAPE_SINGLE, /* one value */
	VCARD_SHAPE_LIST,   /* values separated by ',' (NICKNAME, CATEGORIES) */
	VCARD_SHAPE_STRUCT, /* named components separated by ';', each a ','-list (N, ADR) */
	VCARD_SHAPE_ORG,    /* unnamed text components separated by ';' (ORG) */
};

struct vcard_prop {
	const char *name;         /* upper case, as written in a vCard */
	const char *type;         /* default xCard value element: "text", "uri", ... */
	enum vcard_shape shape;
	const char *const *parts; /* VCARD_SHAPE_STRUCT: component element names, NULL-terminated */
	bool is_binary;           /* PHOTO, LOGO, SOUND, KEY: vCard 3.0 carries them with ENCODING=b */
};

/* The entry for property @name (@len bytes, any case), or NULL when unknown. */
const struct vcard_prop *vcard_prop_find(const char *name, size_t len);

/* The xCard value type (element name) of parameter @name (upper case). */
const char *vcard_param_type(const char *name);

/* Caps that do not depend on struct vcard_limits: they bound one line's
 * structure, whatever its length. */
#define VCARD_MAX_PARAMS 32u       /* parameters on one content line */
#define VCARD_MAX_PARAM_VALUES 64u /* values of one parameter */
#define VCARD_MAX_XML_DEPTH 32u    /* nesting of an xCard handed to the writer */

#endif
