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
/*
 * Like xml_parse, for an element body of an XCAP element PUT: its namespace
 * prefixes may be declared only in the document it goes into (RFC 4825
 * §8.2.3), so namespace errors are not refused here; the caller checks the
 * prefixes in the document's context.
 */
enum xdms_err xml_parse_fragment(const char *data, size_t len, unsigned max_depth, struct xml_doc **out,
				 struct xml_issue *issue) XDMS_WUR;
void xml_doc_free(struct xml_doc *doc);

/* The root element's namespace URI ("" for none) and local name. Borrowed from @doc. */
void xml_doc_root(const struct xml_doc *doc, const char **ns, const char **name);

/* ---- trees (src/xml/node.c) ------------------------------------------------------
 *
 * The elements of a parsed document, for the code that reads or edits one
 * (the IWF). A struct xml_node is borrowed from its struct xml_doc: valid
 * until the document is freed or the node (or an ancestor) is removed.
 * Iteration visits elements only; a namespace @ns of NULL matches any
 * element (with or without a namespace), a @name of NULL any local name.
 * One thread at a time per document.
 */
struct xml_node;

/* The root element of @doc (NULL for NULL). */
struct xml_node *xml_doc_root_elem(struct xml_doc *doc);

/* @n is an element (NULL: false) in namespace @ns with local name @name. */
bool xml_node_is(const struct xml_node *n, const char *ns, const char *name);

/* The first element child of @n (NULL-tolerant) that matches, or NULL. */
struct xml_node *xml_node_child(const struct xml_node *n, const char *ns, const char *name);

/* The next element sibling of @n (NULL-tolerant) that matches, or NULL. */
struct xml_node *xml_node_next(const struct xml_node *n, const char *ns, const char *name);

/* The local name of @n. Borrowed from its document. */
const char *xml_node_name(const struct xml_node *n);

/* The text content of @n (all descendant text, entities expanded); heap,
 * NULL for a NULL @n. */
char *xml_node_text(const struct xml_node *n);
/* Trims XML white space (space, tab, CR, LF) at both ends of @s, in place;
 * returns @s (NULL-tolerant), e.g. xml_trim(xml_node_text(n)). */
char *xml_trim(char *s);

/* The value of attribute @name of @n whatever its namespace (heap), or NULL
 * when @n has none (or @n is NULL). */
char *xml_node_attr(const struct xml_node *n, const char *name);

/* The namespace URI bound to @prefix (NULL: the default namespace) where @n
 * is, or NULL when none is. Borrowed from the document. */
const char *xml_node_ns_in_scope(const struct xml_node *n, const char *prefix);

/* Sets attribute @name of @n to @value (added when absent). */
void xml_node_set_attr(struct xml_node *n, const char *name, const char *value);

/* Unlinks @n from its document and frees it with its subtree. */
void xml_node_remove(struct xml_node *n);

/* Appends a deep copy of @n (of any document) as the last child of
 * @parent; the copy uses the namespace declarations in scope at its new
 * place where they say the same as its own. Returns the copy. */
struct xml_node *xml_node_append_copy(struct xml_node *parent, const struct xml_node *n);

/* Replaces @old (which is freed) by a deep copy of @n, as
 * xml_node_append_copy() places it. Returns the copy. */
struct xml_node *xml_node_replace_copy(struct xml_node *old, const struct xml_node *n);

/* @doc as UTF-8 bytes with an XML declaration (heap; its length in *len). */
char *xml_doc_serialize(struct xml_doc *doc, size_t *len);

/* ---- XSLT (src/xml/xslt.c) ------------------------------------------------------
 *
 * Stylesheets come from administrators (the IWF's adapters). They are
 * compiled with the restricted entity loader (no xsl:import or xsl:include
 * reaches a file or the network) and run with libxslt security preferences
 * that forbid reading and writing files, creating directories and any
 * network access (document(), xsl:document, extensions). A compiled
 * stylesheet is immutable: any thread may apply it, several at once.
 */
struct xml_xslt;

/*
 * Compiles the stylesheet in @data. One thread at a time (libxslt reports
 * compile errors through a process-wide function). PARSE with a sentence in *why (heap;
 * caller frees) when it is not well-formed XML or not a valid XSLT 1.0
 * stylesheet.
 */
enum xdms_err xml_xslt_compile(const char *data, size_t len, struct xml_xslt **out, char **why) XDMS_WUR;
void xml_xslt_free(struct xml_xslt *x);

/*
 * Applies @x to the document in @data (parsed safely, as xml_parse) with the
 * string parameters @params (name, value pairs, @param_count pairs; values
 * are passed as literal strings, never evaluated as XPath). The serialized
 * result goes to *out (heap; caller frees) and *out_len. PARSE with *why
 * when the input is not well-formed or the transform fails (xsl:message
 * terminate, a forbidden access); TOOBIG when the result exceeds @max_out.
 */
enum xdms_err xml_xslt_apply(const struct xml_xslt *x, const char *data, size_t len, const char *const *params,
			     size_t param_count, size_t max_out, char **out, size_t *out_len, char **why) XDMS_WUR;

/*
 * Compiles the schema registered under @name. On failure returns PARSE (or
 * NOTFOUND) and puts a sentence in *why (heap, caller frees).
 */
enum xdms_err xml_schema_load(const char *name, struct xml_schema **out, char **why) XDMS_WUR;
void xml_schema_free(struct xml_schema *schema);

/*
 * True when validity under @schema is local enough that a document known to
 * be valid stays valid after one element is replaced by an element of the
 * same name that is valid where it sits (in a document made of its
 * ancestors' start tags, the element and the end tags): the schema and every
 * file it imports or includes declare no identity constraint (xs:unique,
 * xs:key, xs:keyref), no ID, IDREF or ENTITY type, no element reference or
 * substitution group, no xs:redefine or xs:override, and every xs:any wildcard
 * is namespace="##other". Then an element's type depends only on its name
 * and its ancestors (XML Schema's Element Declarations Consistent rule), and
 * nothing outside an element depends on its content. False for NULL.
 */
bool xml_schema_is_local(const struct xml_schema *schema);

/*
 * Validates the document in @data (@len bytes) while parsing it, without
 * building a tree. For documents already known to be safe and well-formed
 * (a stored document with one node spliced in); same results as
 * xml_schema_validate, plus NOT_WELL_FORMED if the bytes do not parse.
 */
enum xdms_err xml_schema_validate_bytes(const struct xml_schema *schema, const char *data, size_t len,
					struct xml_issue *issue) XDMS_WUR;

/* Validates @doc. Returns OK, or PARSE with issue->fault = XML_FAULT_SCHEMA and
 * the first violation (with its line) in issue->phrase. */
enum xdms_err xml_schema_validate(const struct xml_schema *schema, struct xml_doc *doc,
				  struct xml_issue *issue) XDMS_WUR;

/* ==== byte-offset scanning (src/xml/scan.c) ===================================
 *
 * A second, much smaller reader for documents that are already known to be
 * well-formed (they passed xml_parse when they were stored). It records where
 * every element and attribute sits in the bytes, so that XCAP node operations
 * (RFC 4825 §8) can copy the document around the one node they touch and leave
 * every other byte as it was. It still checks enough structure to be safe on
 * any input: malformed input is refused with PARSE, never read out of bounds.
 * No DTDs, no entities other than the five predefined ones and character
 * references. A scan borrows the bytes it was built from; they must outlive it.
 * A scan is immutable once built and may be read from any thread.
 */
#include <stdint.h>

struct buf; /* base/buf.h */

#define XML_SCAN_NONE UINT32_MAX          /* "no element / attribute" */
#define XML_SCAN_MAX_ELEMENTS 200000u     /* more elements: TOOBIG */
#define XML_SCAN_MAX_DEPTH 256u           /* deeper nesting: TOOBIG */
#define XML_SCAN_MAX_ATTRS 1000000u       /* more attributes in a document: TOOBIG */
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

/* One attribute or namespace declaration, as it sits in its start tag. */
struct xml_scan_attr {
	size_t name_off;     /* qualified name */
	uint32_t name_len;
	uint32_t prefix_len; /* 0 when unprefixed; else the local name starts at name_off + prefix_len + 1 */
	size_t value_off;    /* the raw value between the quotes, references not decoded */
	size_t value_len;
	size_t end;          /* just past the closing quote */
	char quote;          /* '"' or '\'' */
	bool is_xmlns;       /* a namespace declaration (xmlns="..." or xmlns:p="...") */
	/* An attribute: its namespace URI, "" when unprefixed, NULL when its prefix
	 * is not bound. A declaration: the declared URI, decoded ("" undeclares the
	 * default namespace). Owned by the scan. */
	const char *ns;
};

/* One element. Offsets are byte offsets into the scanned data. */
struct xml_scan_elem {
	size_t start;        /* the '<' of the start tag */
	size_t start_end;    /* just past the '>' of the start tag */
	size_t end_start;    /* the '<' of the end tag; == start_end for an empty element */
	size_t end;          /* just past the element; == start_end for an empty element */
	size_t attrs_end;    /* just past the last attribute, or the name when it has none */
	size_t name_off;     /* qualified name */
	uint32_t name_len;
	uint32_t prefix_len; /* 0 when unprefixed */
	const char *ns;      /* namespace URI, "" for none, NULL for an unbound prefix; owned by the scan */
	uint32_t parent;     /* XML_SCAN_NONE for the root */
	uint32_t first_child;
	uint32_t next_sibling;
	uint32_t depth;      /* 0 for the root */
	uint32_t attr_first; /* index of its first entry in attrs[] */
	uint32_t attr_count; /* attributes and namespace declarations, in document order */
	bool is_empty;       /* written as <name .../> */
};

/* A scanned document. All fields are read-only for users. */
struct xml_scan {
	const char *data;             /* borrowed */
	size_t len;
	struct xml_scan_elem *elems;  /* in document order; elems[0] is the root element */
	uint32_t elem_count;
	struct xml_scan_attr *attrs;  /* grouped per element, in document order */
	uint32_t attr_count;
	char **strings;               /* private: decoded namespace URIs */
	size_t string_count;
	size_t string_cap;
};

/*
 * Scans @data (@len bytes, a complete document, optionally with a UTF-8 BOM
 * and an XML declaration). On success *out is owned by the caller
 * (xml_scan_free) and borrows @data. Returns PARSE for input that is not a
 * well-formed document (including DTDs, undefined entities, names with more
 * than one colon), TOOBIG past the XML_SCAN_MAX_* limits. Prefixes without a
 * binding are not an error: their ns is NULL. O(len).
 */
enum xdms_err xml_scan_build(const char *data, size_t len, struct xml_scan **out) XDMS_WUR;

/*
 * xml_scan_build for bytes read back from the store, which were parsed and
 * validated when they were written and are kept byte-exact: it skips the
 * checks that only malformed input can fail (character data, references and
 * control characters in attribute values, text outside the root element) and
 * is several times faster on large documents. For every input that
 * xml_scan_build accepts, it gives the same scan (xml_scan_same) and the same
 * result. For other input it may accept or refuse, but it stays within the
 * @len bytes, terminates and honours the XML_SCAN_MAX_* limits like
 * xml_scan_build. Never use it on bytes from a client.
 */
enum xdms_err xml_scan_build_stored(const char *data, size_t len, struct xml_scan **out) XDMS_WUR;
void xml_scan_free(struct xml_scan *scan);

/*
 * The scan of @data (@len bytes), which must be @old's document with the
 * bytes of element @old_elem (its whole subtree) replaced by those of element
 * @part_elem of @part, without scanning it: @old's records are copied, the
 * replaced subtree's records taken from @part, offsets and indexes moved.
 * @part must scan the new element where it sits: with the same ancestors, so
 * that its namespaces and depths are those it has in @data (for example a
 * document made of the ancestors' start tags, the element and the end tags).
 * On success *out is owned by the caller and borrows @data; it is equal
 * (xml_scan_same) to xml_scan_build(@data). INVAL when the lengths do not
 * add up, TOOBIG past the XML_SCAN_MAX_* limits. O(elements + attributes).
 */
enum xdms_err xml_scan_splice(const struct xml_scan *old, uint32_t old_elem, const struct xml_scan *part,
			      uint32_t part_elem, const char *data, size_t len, struct xml_scan **out) XDMS_WUR;

/* True when two scans describe the same bytes in the same way (every offset,
 * link and namespace equal). For tests and fuzzers. */
bool xml_scan_same(const struct xml_scan *a, const struct xml_scan *b);

/* The local name of element @e (borrowed from the data), its length in *len. */
const char *xml_scan_elem_local(const struct xml_scan *scan, uint32_t e, size_t *len);

/* The attribute of element @e (not a namespace declaration) whose namespace is
 * @ns ("" for none) and local name @local, or XML_SCAN_NONE. */
uint32_t xml_scan_attr_find(const struct xml_scan *scan, uint32_t e, const char *ns, const char *local,
			    size_t local_len);

/* The namespace URI bound to @prefix (length @prefix_len; 0 = the default
 * namespace) in scope at element @e: "xml" is always bound; "" when the
 * default namespace is not declared; NULL when the prefix is unbound. */
const char *xml_scan_prefix_ns(const struct xml_scan *scan, uint32_t e, const char *prefix,
			       size_t prefix_len);

/* Finds a non-empty prefix bound to @ns in scope at element @e, preferring
 * @preferred (may be NULL). On success points *prefix into the data (or at a
 * static "xml") with its length in *prefix_len. */
bool xml_scan_ns_prefix(const struct xml_scan *scan, uint32_t e, const char *ns, const char *preferred,
			const char **prefix, size_t *prefix_len);

/*
 * Decodes an attribute value as written between the quotes (XML 1.0 §3.3.3):
 * the five predefined entities and character references are replaced, and
 * literal tab, CR, LF and CR LF become one space each. Appends to @out.
 * Returns PARSE for a '<', a '&' that does not start a valid reference, a
 * character reference to a character XML does not allow, or a control
 * character; TOOBIG when @out is full.
 */
enum xdms_err xml_attvalue_decode(const char *raw, size_t len, struct buf *out) XDMS_WUR;

/* True when the raw attribute value @raw decodes (as xml_attvalue_decode) to
 * exactly the @dec_len bytes of @dec. False also for a malformed @raw. */
bool xml_attvalue_equal(const char *raw, size_t raw_len, const char *dec, size_t dec_len);

/* @s is an NCName within ASCII: a letter or "_", then letters, digits, "_",
 * "-" and ".". False for NULL. */
bool xml_is_ncname(const char *s);

/* @s may be declared as a namespace prefix: an ASCII NCName that does not
 * begin with "xml" in any case (Namespaces in XML 1.0 §3). */
bool xml_is_free_prefix(const char *s);

/* ==== end of byte-offset scanning ============================================== */

#endif
