/* SPDX-License-Identifier: MIT */
/*
 * vcard: vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) text to and from its XML
 * form, xCard (RFC 6351). The rest of the server sees only xCard, so that the
 * mapping to and from the PCC is an XSLT an administrator can read
 * (xslt/xcard2pcc.xsl, xslt/pcc2xcard.xsl).
 *
 * The reader takes untrusted bytes from 3rd parties: every size it allocates
 * from input is capped by struct vcard_limits or by the output buffer's own
 * maximum, and every refusal carries a sentence that names the line.
 *
 * Pure: no I/O, no logging, no global state. Every function may be called
 * from any thread at once; xml_init() must have run before vcard_write() and
 * vcard_uid_of_xcard() (they parse XML).
 */
#ifndef XDMS_VCARD_H
#define XDMS_VCARD_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* The xCard namespace (RFC 6351 §3). */
#define VCARD_NS "urn:ietf:params:xml:ns:vcard-4.0"

/* Default caps (vcard_limits_default). */
#define VCARD_DEFAULT_MAX_CARD (256u * 1024u)
#define VCARD_DEFAULT_MAX_PHOTO (64u * 1024u)
#define VCARD_DEFAULT_MAX_LINES 2000u

struct vcard_limits {
	size_t max_card;  /* bytes of one card, after unfolding (default 256 KiB) */
	size_t max_photo; /* decoded bytes of one PHOTO/LOGO/SOUND/KEY value (default 64 KiB) */
	size_t max_lines; /* content lines per card, BEGIN and END included (default 2000) */
};

/* Fills @l with the defaults above. */
void vcard_limits_default(struct vcard_limits *l);

/*
 * Reads exactly one vCard (BEGIN:VCARD ... END:VCARD; CRLF or LF line ends;
 * folded lines; VERSION 3.0 or 4.0) from @text (@len bytes, not necessarily
 * NUL-terminated) and appends its xCard form, one
 * <vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0"> element, to @out.
 * A leading UTF-8 byte order mark and blanks after BEGIN:VCARD and
 * END:VCARD are tolerated. The VERSION property is not written: the
 * namespace carries it.
 * *version gets 3 or 4.
 *
 * What it reads: groups (item1.EMAIL becomes <group name="item1">),
 * parameters (quoted, several values, RFC 6868 ^-escapes), escaped values,
 * structured values (N, ADR, GENDER, ORG, CLIENTPIDMAP) and lists
 * (NICKNAME, CATEGORIES), value types per property and VALUE=, vCard 3.0's
 * ENCODING=b for PHOTO/LOGO/SOUND/KEY (becomes a data: URI), TYPE=PREF
 * (becomes PREF=1), GEO and TZ forms, ENCODING=QUOTED-PRINTABLE and
 * CHARSET=UTF-8/US-ASCII/ISO-8859-1 (other charsets are refused). A property
 * it does not know (x- names included) keeps its raw value in <unknown>.
 *
 * @lim may be NULL for the defaults. @why may be NULL. On success *why is
 * NULL. On failure nothing is appended to @out, and *why gets a sentence
 * (heap, the caller frees it) naming the line and the problem; the error is
 * INVAL (bad arguments), TOOBIG (a cap of @lim, or @out's maximum) or PARSE
 * (not a vCard: syntax, no END, bad UTF-8, an unsupported VERSION or
 * CHARSET, bad base64).
 */
enum xdms_err vcard_read(const char *text, size_t len, const struct vcard_limits *lim, struct buf *out,
			 unsigned *version, char **why) XDMS_WUR;

/*
 * Splits a text/vcard body that holds several cards (an address-book
 * export, a multiget's concatenated data) and calls @fn for each card's
 * bytes, from its BEGIN:VCARD line to the end of its END:VCARD line. The
 * bytes are borrowed from @text for the call only. A leading UTF-8 byte
 * order mark and blank lines between cards are skipped; other text outside
 * a card is PARSE. More than
 * @max_cards cards is TOOBIG, found before @fn sees any card. A card with
 * no END is PARSE. A non-zero return of @fn (an enum xdms_err) stops the
 * split and is returned as it is, with *why left NULL. @why may be NULL;
 * on failure of the split itself it gets a sentence (heap).
 */
enum xdms_err vcard_split(const char *text, size_t len, size_t max_cards,
			  int (*fn)(void *arg, const char *card, size_t card_len), void *arg, char **why) XDMS_WUR;

/*
 * Writes an xCard <vcard> element, or a <vcards> document holding exactly
 * one, as a vCard of @version (3 or 4) to @out: BEGIN, VERSION, the
 * properties in document order, END; CRLF line ends; lines folded at 75
 * octets without splitting a UTF-8 sequence; values and parameters escaped
 * (RFC 6350 §3.4, RFC 6868). For 3.0: a data: URI in PHOTO/LOGO/SOUND/KEY
 * becomes ENCODING=b;TYPE=<subtype>, PREF becomes TYPE=pref, a tel: URI in
 * TEL becomes the number, a geo: URI in GEO becomes "lat;lon".
 * Elements in other namespaces (RFC 6351 §5.1 extensions) are left out.
 *
 * PARSE when @xcard is not well-formed XML; INVAL (with *why) when it is not
 * an xCard <vcard> (or <vcards> with one) or @version is not 3 or 4; TOOBIG
 * past @out's maximum. On failure nothing is appended to @out. @why may be
 * NULL; it is set as for vcard_read.
 */
enum xdms_err vcard_write(const char *xcard, size_t len, unsigned version, struct buf *out,
			  char **why) XDMS_WUR;

/*
 * The UID of the xCard in @xcard (a <vcard>, or <vcards> whose first <vcard>
 * is used), whether a text or a URI value; heap (caller frees). NULL when
 * there is none or @xcard is not an xCard.
 */
char *vcard_uid_of_xcard(const char *xcard, size_t len);

#endif
