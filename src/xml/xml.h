/* SPDX-License-Identifier: MIT */
/*
 * xml: the only place that talks to libxml2's parser and schema validator.
 *
 * Parsing is safe by construction: no network (XML_PARSE_NONET), no entity
 * substitution, no DTD loading, any document type declaration refused before
 * its subset is read, nesting depth capped, input checked as UTF-8 first.
 * Schemas are loaded only from the project's own files (compiled into the
 * binary or read from the admin's descriptor directory at start-up): the
 * external-entity loader installed by xml_init() serves those by file name and
 * refuses everything else, so no schema import ever reaches a disk path or the
 * network.
 *
 * Threads: xml_init() and xml_file_register() run once at start-up before other
 * threads exist. After that every function is safe from any thread; a loaded
 * schema is immutable and shared.
 */
#ifndef XDMS_XML_H
#define XDMS_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* A file compiled into the binary (see scripts/embed-files). */
struct xml_embedded_file {
	const char *name; /* path relative to the source tree, e.g. "schemas/cab-pcc.xsd" */
	const char *data;
	size_t len;
};
/* Terminated by an entry whose name is NULL. */
extern const struct xml_embedded_file xml_embedded_files[];

/* Why a body was refused. Each maps to one <xcap-error> child. */
enum xml_fault {
	XML_FAULT_NONE = 0,
	XML_FAULT_NOT_UTF8,        /* <not-utf-8> */
	XML_FAULT_NOT_WELL_FORMED, /* <not-well-formed> */
	XML_FAULT_FORBIDDEN,       /* <constraint-failure>: DTD, or nesting too deep */
	XML_FAULT_SCHEMA,          /* <schema-validation-error> */
};

#define XML_PHRASE_MAX 512

/* A refusal: the fault and a sentence a person can act on. */
struct xml_issue {
	enum xml_fault fault;
	char phrase[XML_PHRASE_MAX];
};

struct xml_doc;    /* opaque parsed document */
struct xml_schema; /* opaque compiled XSD */

/* Initializes libxml2 and installs the restricted entity loader. Once, first. */
void xml_init(void);
/* Frees what xml_init and xml_file_register allocated. At exit. */
void xml_shutdown(void);

/*
 * Makes @data (copied) available to schema imports and xml_schema_load under
 * @name; the lookup uses the last path component, so "schemas/xml.xsd",
 * "xml.xsd" and "http://www.w3.org/2001/xml.xsd" all find a file registered as
 * "xml.xsd". Start-up only. A later registration of the same name wins.
 */
void xml_file_register(const char *name, const char *data, size_t len);
/* Finds a registered or embedded file by the last component of @name. Borrowed. */
bool xml_file_find(const char *name, const char **data, size_t *len);

/*
 * True when @data is valid UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF). On false, *bad_offset (if not NULL) is the offset
 * of the first bad byte.
 */
bool xml_utf8_valid(const char *data, size_t len, size_t *bad_offset);

/*
 * Parses a complete document. On success *out is owned by the caller
 * (xml_doc_free). On refusal returns XDMS_ERR_PARSE and fills *issue with
 * NOT_UTF8, NOT_WELL_FORMED or FORBIDDEN.
 */
enum xdms_err xml_parse(const char *data, size_t len, unsigned max_depth,
			struct xml_doc **out, struct xml_issue *issue) XDMS_WUR;
void xml_doc_free(struct xml_doc *doc);

/* The root element's namespace URI ("" for none) and local name. Borrowed from @doc. */
void xml_doc_root(const struct xml_doc *doc, const char **ns, const char **name);

/*
 * Compiles the schema registered under @name. On failure returns PARSE (or
 * NOTFOUND) and puts a sentence in *why (heap, caller frees).
 */
enum xdms_err xml_schema_load(const char *name, struct xml_schema **out, char **why) XDMS_WUR;
void xml_schema_free(struct xml_schema *schema);

/* Validates @doc. Returns OK, or PARSE with issue->fault = XML_FAULT_SCHEMA and
 * the first violation (with its line) in issue->phrase. */
enum xdms_err xml_schema_validate(const struct xml_schema *schema, struct xml_doc *doc,
				  struct xml_issue *issue) XDMS_WUR;

#endif
