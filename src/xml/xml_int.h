/* SPDX-License-Identifier: MIT */
/* Private to src/xml: the registry of schema files the entity loader serves. */
#ifndef XDMS_XML_INT_H
#define XDMS_XML_INT_H

#include <stddef.h>

/* The last path component of @name ("a/b/c.xsd" -> "c.xsd"). */
const char *xml_file_basename(const char *name);

struct xml_doc;

/* The libxml2 tree of @doc (an xmlDoc). Borrowed: @doc keeps owning it. */
struct _xmlDoc *xml_doc_tree(struct xml_doc *doc);

#endif
