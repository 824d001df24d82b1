/* SPDX-License-Identifier: MIT */
/*
 * notify/diff: xcap-diff documents (RFC 5874) and the RFC 5261 XML patch
 * operations they carry, as pure functions over bytes: no sockets, no SIP, no
 * store, no logging. The SIP notifier (RFC 5875) builds NOTIFY bodies with
 * diff_render(), the patches for xcap-patching and aggregate modes with
 * diff_patch(), and element/attribute reports with diff_node_content().
 *
 * Patch conventions (SPEC §2.2, §2.3):
 *   - every "sel" is an RFC 5261 location path from the root element, one
 *     step per element, each step prefixed: the document's namespace uses the
 *     caller's prefix (declared by the caller on <xcap-diff>, see
 *     diff_render's @prefixes); another namespace gets a generated prefix
 *     "<prefix>1", "<prefix>2"... declared on the operation element itself;
 *     an element in no namespace is "*" (RFC 5261 §4.2.1 reads unprefixed
 *     names in the patch's default namespace, which is xcap-diff's);
 *   - a step carries "[n]" (1-based, among siblings of the same expanded name,
 *     or among all element siblings for "*") only when such siblings exist;
 *   - text(), comment() and processing-instruction() steps count XPath nodes
 *     (adjacent character data and CDATA sections are one text node);
 *   - an element copied into an operation carries the namespace declarations
 *     it needs to stand alone, appended after its own attributes
 *     (xmlns="..." when it relies on an inherited default namespace,
 *     xmlns="" when it relies on there being none) and preceded by one extra
 *     space, e.g. <tel pref="3"  xmlns="urn:oma:xml:cab:pcc">: white space
 *     inside a tag means nothing to an XML reader, and it tells
 *     diff_patch_apply() which declarations the patch added;
 *   - each operation is written on its own line, indented by four spaces,
 *     ending with "\n", so the operations of consecutive changes can be
 *     concatenated (RFC 5261 applies them in order) and diff_render() places
 *     them inside <document> as in fixtures/xcap-diff-patch.xml.
 *
 * Threads: pure functions; any thread.
 */
#ifndef XDMS_NOTIFY_DIFF_H
#define XDMS_NOTIFY_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define DIFF_NS "urn:ietf:params:xml:ns:xcap-diff"
#define DIFF_MIME "application/xcap-diff+xml"

/* One <document> entry of an xcap-diff document (RFC 5874). All strings
 * are borrowed for the duration of the call. */
struct diff_document {
	const char *sel;          /* document selector relative to the XCAP root (already a URI path) */
	const char *prev_etag;    /* NULL: created / full state */
	const char *new_etag;     /* NULL: deleted */
	const char *ops;          /* operations from diff_patch() (children of <document>), or NULL */
	size_t ops_len;
	bool is_body_not_changed; /* <body-not-changed/>: only the ETag changed; excludes ops */
};

/* One <element> or <attribute> report, for element/attribute subscriptions. */
struct diff_node {
	const char *sel;      /* document selector "/~~/" node selector, relative to the XCAP root */
	bool is_attribute;
	bool exists;          /* false: exists="0" and no content */
	/* When exists: an element as diff_node_content() gives it (standalone
	 * XML, copied verbatim); an attribute's value as written between its
	 * quotes (an XCAP GET body), turned into character data here. May be
	 * NULL for an empty attribute value. */
	const char *content;
	size_t content_len;
};

/*
 * Appends a complete application/xcap-diff+xml document to @out:
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" [xmlns:P="URI"...] xcap-root="ROOT">
 *     <document [previous-etag="X"] [new-etag="Y"] sel="S"/>      (one line per entry)
 *     <element sel="S" exists="0"/> ...
 *   </xcap-diff>
 *
 * @docs come first, then @nodes, each in the given order (RFC 5874 lets
 * several <document> entries for one sel follow each other, ETags chained).
 * @prefixes is NULL or a NULL-terminated list of pairs "p", "urn:...", ...
 * declared on the root: every prefix the operations' "sel" attributes use.
 * Attribute values are escaped here; @ops and element content are copied.
 * Returns INVAL for a document with both ops and is_body_not_changed, a NULL
 * sel or root, an odd or malformed prefix list; TOOBIG when @out is full (its
 * content is then unspecified).
 */
enum xdms_err diff_render(const char *xcap_root, const struct diff_document *docs, size_t doc_count,
			  const struct diff_node *nodes, size_t node_count, const char *const *prefixes,
			  struct buf *out) XDMS_WUR;

/*
 * The RFC 5261 operations that turn @old_doc into @new_doc (both complete
 * stored documents, which passed xml_parse), appended to @ops.
 *
 * With a @detail from the change feed ("put-element insert SEL",
 * "put-element replace SEL", "put-attribute insert|replace SEL",
 * "delete-element SEL", "delete-attribute SEL", as src/xcap/node.c writes
 * them) the change maps 1:1 to one <add>, <replace> or <remove> at the node
 * the selector names, located by position (SPEC §2.3): an element insert
 * becomes <add pos="after"> on the preceding sibling element, <add
 * pos="before"> on the following one, or a plain <add> (append) on the
 * parent, whichever reproduces the exact place. The function first checks
 * that @new_doc is @old_doc with exactly that one node spliced; when the
 * detail does not describe the two documents (unknown verb, selector that
 * does not match, changes coalesced), it falls back to the top-down diff.
 *
 * Without a detail (NULL: a whole-document PUT, or several changes
 * aggregated) the documents are diffed top-down: attributes are compared by
 * expanded name and value; children (elements, text, comments, PIs) are
 * compared in order: the common head and tail are skipped, the rest is
 * anchored on the longest common subsequence of children with the same
 * name (identical children preferred, then those with the same start tag;
 * when that table would exceed a million cells, first on the children that
 * are unique and identical on both sides), and what lies between anchors
 * is paired in order. A pair of
 * elements with the same name and namespace declarations is diffed
 * recursively, any other pair is replaced, surplus children are removed
 * (the white space before an element with ws="before") or added. Identical
 * documents give no operations (sending <body-not-changed/> is the caller's
 * choice).
 *
 * @ns is the application usage's default namespace (it interprets the
 * unprefixed names of the detail's selector, and the patch writes it as
 * @prefix, an NCName). Sets *is_too_big, appends nothing and returns OK when
 * the operations would be larger than @new_len bytes, or when the change
 * cannot be written as a patch (root element renamed or its namespace
 * declarations changed, comments or PIs outside the root changed, a prefix
 * bound nowhere): the caller then sends the <document> with both ETags and
 * no patch ("client must GET" in RFC 5874's table). Returns INVAL for NULL
 * documents or a bad prefix, PARSE when a document cannot be scanned
 * (xml_scan_build), TOOBIG when @ops is full. On any error @ops is unchanged
 * and the caller sends no patch.
 */
enum xdms_err diff_patch(const char *old_doc, size_t old_len, const char *new_doc, size_t new_len,
			 const char *detail, const char *ns, const char *prefix, struct buf *ops,
			 bool *is_too_big) XDMS_WUR;

/*
 * Applies operations (the subset diff_patch() writes, in the same form) to
 * @doc, for tests and the fuzzer. @prefix is bound to @ns and the default
 * namespace to xcap-diff's, as on the <xcap-diff> root. On success *out is a
 * heap string (the caller frees it) of *out_len bytes.
 *
 * Exactness: for a detail-based patch the result is @new_doc byte for byte,
 * with two documented exceptions where the patch cannot carry the bytes:
 *   - an element whose own last attributes are namespace declarations that
 *     repeat a binding in scope, written after two spaces, looks exactly like
 *     declarations the patch added and comes back without them;
 *   - an attribute value written with a literal tab, CR or LF, or with
 *     "]]>", is sent as its normalized value and comes back as such.
 * Both give the same infoset. For a top-down diff the result is equal to
 * @new_doc as an XML infoset (canonical XML); inside the root element it is
 * usually the same bytes, except where attributes were added (at the end of
 * the start tag) or a tag was written differently (<r></r> for <r/>).
 *
 * Returns PARSE for operations that do not scan or a document that does not
 * scan before or after an operation, NOTFOUND when a selector selects no
 * node (or not exactly one without a position), UNSUPPORTED for XPath or
 * operations outside the subset, INVAL for an operation that does not fit
 * its target (removing the root, adding an existing attribute).
 */
enum xdms_err diff_patch_apply(const char *doc, size_t len, const char *ops, size_t ops_len, const char *prefix,
			       const char *ns, char **out, size_t *out_len) XDMS_WUR;

/*
 * The content of an <element> or <attribute> report (RFC 5874) for the
 * node that @node_selector (percent-decoded, as after "/~~/") selects in
 * @doc, with the xmlns() bindings of @query (still percent-encoded, NULL for
 * none) and @ns for unprefixed element names. Sets *is_attribute from the
 * selector and *exists to whether it selects exactly one node; when it does,
 * appends to @content the element with the namespace declarations it needs
 * to stand alone, or the attribute's value as written between its quotes.
 * Returns PARSE for a selector outside RFC 4825 §6.3 or a document that does
 * not scan, UNSUPPORTED for namespace::*, TOOBIG when @content is full.
 */
enum xdms_err diff_node_content(const char *doc, size_t doc_len, const char *node_selector, const char *query,
				const char *ns, struct buf *content, bool *is_attribute, bool *exists) XDMS_WUR;

#endif
