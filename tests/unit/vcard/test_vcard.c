/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/vcard/vcard.h: the reader (unfolding, parameters,
 * escapes, structured values, groups, 3.0 forms, photos, caps, refusals),
 * the writer (folding, escaping, 3.0 forms), round trips through xCard in
 * both versions, the splitter and the UID lookup.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "vcard/vcard.h"
#include "xml/xml.h"
#include "unit.h"

#define XC "<vcard xmlns=\"urn:ietf:params:xml:ns:vcard-4.0\">"

/* Reads @card (must succeed) and returns its xCard (heap). */
static char *read_ok(const char *card, unsigned expect_version)
{
	struct buf out;
	unsigned version = 0;
	char *why = NULL;
	enum xdms_err err;

	buf_init(&out, 1 << 20);
	err = vcard_read(card, strlen(card), NULL, &out, &version, &why);
	ck_assert_msg(err == XDMS_ERR_OK, "vcard_read refused (%s): %s\n%s", xdms_err_name(err), why ? why : "-", card);
	ck_assert_ptr_null(why);
	ck_assert_uint_eq(version, expect_version);
	return buf_take(&out, NULL);
}

/* Reads @card (must fail with @expect) and returns the reason (heap). */
static char *read_fails(const char *card, const struct vcard_limits *lim, enum xdms_err expect)
{
	struct buf out;
	unsigned version = 0;
	char *why = NULL;
	enum xdms_err err;

	buf_init(&out, 1 << 20);
	ck_assert(!buf_append_str(&out, "before"));
	err = vcard_read(card, strlen(card), lim, &out, &version, &why);
	ck_assert_msg(err == expect, "expected %s, got %s (%s) for\n%s", xdms_err_name(expect), xdms_err_name(err),
		      why ? why : "-", card);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(out.data, "before"); /* nothing appended */
	buf_cleanup(&out);
	return why;
}

static char *write_ok(const char *xcard, unsigned version)
{
	struct buf out;
	char *why = NULL;
	enum xdms_err err;

	buf_init(&out, 1 << 20);
	err = vcard_write(xcard, strlen(xcard), version, &out, &why);
	ck_assert_msg(err == XDMS_ERR_OK, "vcard_write refused (%s): %s\n%s", xdms_err_name(err), why ? why : "-",
		      xcard);
	return buf_take(&out, NULL);
}

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, "expected\n  %s\nin\n  %s", (needle), (hay))
#define HAS_NOT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, "did not expect\n  %s\nin\n  %s", (needle), (hay))

START_TEST(read_v4_properties)
{
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Alice Example\r\n"
			  "N:Example;Alice;M.;Dr.;\r\n"
			  "TEL;VALUE=uri;TYPE=cell:tel:+15555550101\r\n"
			  "TEL;TYPE=home:+1 555 555 0150\r\n"
			  "EMAIL;PREF=1:alice@example.com\r\n"
			  "ADR;TYPE=work:;;1 Main St;Springfield;IL;62701;USA\r\n"
			  "ORG:Example Corp;R&D\r\n"
			  "TITLE:Engineer\r\n"
			  "BDAY:19850412\r\n"
			  "ANNIVERSARY:--0412\r\n"
			  "REV:20240501T100000Z\r\n"
			  "NICKNAME:Al,Ally\r\n"
			  "UID:urn:uuid:0f6b2c4e-1111-2222-3333-444455556666\r\n"
			  "GENDER:F;she\r\n"
			  "LANG;PREF=1:en\r\n"
			  "END:VCARD\r\n",
			  4);

	ck_assert_msg(!strncmp(x, XC, strlen(XC)), "%s", x);
	HAS(x, "<fn><text>Alice Example</text></fn>");
	HAS(x, "<n><surname>Example</surname><given>Alice</given><additional>M.</additional><prefix>Dr.</prefix>"
	       "<suffix/></n>");
	HAS(x, "<tel><parameters><type><text>cell</text></type></parameters><uri>tel:+15555550101</uri></tel>");
	HAS(x, "<tel><parameters><type><text>home</text></type></parameters><text>+1 555 555 0150</text></tel>");
	HAS(x, "<email><parameters><pref><integer>1</integer></pref></parameters><text>alice@example.com</text></email>");
	HAS(x, "<adr><parameters><type><text>work</text></type></parameters><pobox/><ext/><street>1 Main St</street>"
	       "<locality>Springfield</locality><region>IL</region><code>62701</code><country>USA</country></adr>");
	HAS(x, "<org><text>Example Corp</text><text>R&amp;D</text></org>");
	HAS(x, "<bday><date>19850412</date></bday>");
	HAS(x, "<anniversary><date>--0412</date></anniversary>");
	HAS(x, "<rev><timestamp>20240501T100000Z</timestamp></rev>");
	HAS(x, "<nickname><text>Al</text><text>Ally</text></nickname>");
	HAS(x, "<uid><uri>urn:uuid:0f6b2c4e-1111-2222-3333-444455556666</uri></uid>");
	HAS(x, "<gender><sex>F</sex><identity>she</identity></gender>");
	HAS(x, "<lang><parameters><pref><integer>1</integer></pref></parameters><language-tag>en</language-tag></lang>");
	HAS_NOT(x, "version");
	ck_assert_msg(!strcmp(x + strlen(x) - 8, "</vcard>"), "%s", x);
	free(x);
}
END_TEST

START_TEST(read_folding)
{
	/* Folds inside the BEGIN line, a parameter name, a parameter value, an
	 * escape, a UTF-8 sequence (ë is C3 AB), with a tab, and LF-only lines. */
	char *x = read_ok("BEG\r\n IN:VCARD\nVERSION:4.0\r\n"
			  "TEL;TY\r\n PE=ce\r\n\tll:+1\r\n  555\r\n"
			  "NOTE:a\\\r\n ,b\r\n"
			  "FN:Zo\xc3\r\n \xab Ex\n ample\r\n"
			  "END:VCARD",
			  4);

	HAS(x, "<tel><parameters><type><text>cell</text></type></parameters><text>+1 555</text></tel>");
	HAS(x, "<note><text>a,b</text></note>");
	HAS(x, "<fn><text>Zo\xc3\xab Example</text></fn>");
	free(x);
	/* A fold right after '=' is no quoted-printable soft break unless the
	 * line has ENCODING=QUOTED-PRINTABLE (here the word is a TYPE value). */
	x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;TYPE=QUOTED-PRINTABLE;PREF=\r\n 1:+1\r\nEND:VCARD\r\n", 4);
	HAS(x, "<type><text>quoted-printable</text></type><pref><integer>1</integer></pref>");
	free(x);
	/* A byte order mark and blanks after BEGIN and END. */
	x = read_ok("\xef\xbb\xbf" "BEGIN:VCARD \r\nVERSION:4.0\r\nFN:b\r\nEND:VCARD\t\r\n", 4);
	HAS(x, "<fn><text>b</text></fn>");
	free(x);
}
END_TEST

START_TEST(read_escapes)
{
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\n"
			  "NOTE:comma\\, semi\\; back\\\\slash\\nnew\\Nline \\x kept\r\n"
			  "N:Doe\\;Jr;John\\,Paul;Paul,Peter;;\r\n"
			  "CATEGORIES:a\\,b,c\r\n"
			  "FN:R&D <team> \"q\" 'a'\r\n"
			  "END:VCARD\r\n",
			  4);

	HAS(x, "<note><text>comma, semi; back\\slash\nnew\nline \\x kept</text></note>");
	HAS(x, "<n><surname>Doe;Jr</surname><given>John,Paul</given><additional>Paul</additional>"
	       "<additional>Peter</additional><prefix/><suffix/></n>");
	HAS(x, "<categories><text>a,b</text><text>c</text></categories>");
	HAS(x, "<fn><text>R&amp;D &lt;team&gt; &quot;q&quot; &apos;a&apos;</text></fn>");
	free(x);
}
END_TEST

START_TEST(read_parameters)
{
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\n"
			  "TEL;TYPE=\"voice,home\";PREF=2:+1\r\n"
			  "TEL;TYPE=work;TYPE=fax:+2\r\n"
			  "ADR;LABEL=\"Mr. John ^'J^' Doe^n1 Main St; Town: 5, ^^up\":;;1 Main St;;;;\r\n"
			  "FN;LANGUAGE=en;ALTID=1;X-CUSTOM=a,b:John\r\n"
			  "END:VCARD\r\n",
			  4);

	HAS(x, "<tel><parameters><type><text>voice</text><text>home</text></type><pref><integer>2</integer></pref>"
	       "</parameters><text>+1</text></tel>");
	HAS(x, "<type><text>work</text><text>fax</text></type>");
	HAS(x, "<label><text>Mr. John &quot;J&quot; Doe\n1 Main St; Town: 5, ^up</text></label>");
	HAS(x, "<fn><parameters><language><language-tag>en</language-tag></language><altid><text>1</text></altid>"
	       "<x-custom><text>a</text><text>b</text></x-custom></parameters><text>John</text></fn>");
	free(x);
	/* Decoded once: ^^n is a caret and an n, not a newline. */
	x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;TYPE=\"a^^n,b\":+1\r\nEND:VCARD\r\n", 4);
	HAS(x, "<type><text>a^n</text><text>b</text></type>");
	free(x);
}
END_TEST

START_TEST(read_groups_and_unknown)
{
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:G\r\n"
			  "item1.EMAIL;TYPE=INTERNET:a@example.com\r\n"
			  "item2.URL:https://example.com/\r\n"
			  "ITEM1.X-ABLabel:_$!<Work>!$_\r\n"
			  "X-FOO;X-P=1:a\\,b;c\r\n"
			  "END:VCARD\r\n",
			  3);

	HAS(x, "<fn><text>G</text></fn><group name=\"item1\"><email><parameters><type><text>internet</text></type>"
	       "</parameters><text>a@example.com</text></email><x-ablabel><unknown>_$!&lt;Work&gt;!$_</unknown>"
	       "</x-ablabel></group><group name=\"item2\"><url><uri>https://example.com/</uri></url></group>");
	HAS(x, "<x-foo><parameters><x-p><text>1</text></x-p></parameters><unknown>a\\,b;c</unknown></x-foo>");
	free(x);
}
END_TEST

START_TEST(read_v3_specifics)
{
	/* "hello" is aGVsbG8=; folded base64 as 3.0 writers send it. */
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Three\r\n"
			  "N:Three;;;;\r\n"
			  "PHOTO;ENCODING=b;TYPE=JPEG:aGVs\r\n bG8=\r\n"
			  "LOGO;ENCODING=BASE64;TYPE=image/png:aGVsbG8\r\n"
			  "TEL;TYPE=CELL,PREF:+15555550101\r\n"
			  "TEL;WORK;VOICE:+15555550199\r\n"
			  "GEO:37.386013;-122.082932\r\n"
			  "TZ:-05:00\r\n"
			  "BDAY:1985-04-12\r\n"
			  "REV:1995-10-31T22:27:10Z\r\n"
			  "UID:19950401-080045-40000F192713-0052\r\n"
			  "PHOTO;VALUE=uri:http://example.com/p.jpg\r\n"
			  "END:VCARD\r\n",
			  3);

	HAS(x, "<photo><uri>data:image/jpeg;base64,aGVsbG8=</uri></photo>");
	HAS(x, "<logo><uri>data:image/png;base64,aGVsbG8=</uri></logo>");
	HAS(x, "<tel><parameters><type><text>cell</text></type><pref><integer>1</integer></pref></parameters>"
	       "<text>+15555550101</text></tel>");
	HAS(x, "<tel><parameters><type><text>work</text><text>voice</text></type></parameters>");
	HAS(x, "<geo><uri>geo:37.386013,-122.082932</uri></geo>");
	HAS(x, "<tz><utc-offset>-0500</utc-offset></tz>");
	HAS(x, "<bday><date>19850412</date></bday>");
	HAS(x, "<rev><timestamp>19951031T222710Z</timestamp></rev>");
	HAS(x, "<uid><text>19950401-080045-40000F192713-0052</text></uid>");
	HAS(x, "<photo><uri>http://example.com/p.jpg</uri></photo>");
	free(x);
}
END_TEST

START_TEST(read_charsets)
{
	/* Quoted-printable with a soft line break, a latin-1 byte, an encoded CRLF. */
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:C\r\n"
			  "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Zo=C3=AB=0D=0Asecond =\r\nline\r\n"
			  "TITLE;CHARSET=ISO-8859-1:Caf\xe9\r\n"
			  "END:VCARD\r\n",
			  3);
	char *why;

	HAS(x, "<note><text>Zo\xc3\xab\nsecond line</text></note>");
	HAS(x, "<title><text>Caf\xc3\xa9</text></title>");
	free(x);
	why = read_fails("BEGIN:VCARD\r\nVERSION:3.0\r\nFN;CHARSET=Shift_JIS:x\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "line 3");
	HAS(why, "CHARSET=Shift_JIS");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE;ENCODING=QUOTED-PRINTABLE:a=G1\r\nEND:VCARD\r\n", NULL,
			 XDMS_ERR_PARSE);
	HAS(why, "quoted-printable");
	free(why);
}
END_TEST

START_TEST(read_bad_utf8)
{
	char *why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:ok\r\nNOTE:Caf\xe9 au lait\r\nEND:VCARD\r\n", NULL,
			       XDMS_ERR_PARSE);

	HAS(why, "line 4");
	HAS(why, "UTF-8");
	free(why);
	/* An overlong form, and a truncated sequence at the end of the value. */
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:\xc0\xaf\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE));
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\xe2\x82\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE));
	/* Bad bytes in a parameter value; a control character XML cannot carry. */
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN;X-A=\xff:a\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE));
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\x01z\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "control character");
	free(why);
}
END_TEST

START_TEST(read_refusals)
{
	char *why;

	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:no end\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "no END:VCARD");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nFN:no version\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "no VERSION");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:old\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "VERSION 2.1");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN no colon\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "line 3");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN;X=\"open:a\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "closing quote");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\nFN:after\r\n", NULL, XDMS_ERR_PARSE);
	HAS(why, "after END:VCARD");
	free(why);
	free(read_fails("FN:x\r\n", NULL, XDMS_ERR_PARSE));
	free(read_fails("", NULL, XDMS_ERR_PARSE));
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\n1FN:x\r\nEND:VCARD\r\n", NULL, XDMS_ERR_PARSE));
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nBEGIN:VCARD\r\nEND:VCARD\r\nEND:VCARD\r\n", NULL,
			XDMS_ERR_PARSE));
	free(read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nNOTE;ENCODING=b:aGVsbG8=\r\nEND:VCARD\r\n", NULL,
			XDMS_ERR_PARSE));
	free(read_fails("BEGIN:VCARD\r\nVERSION:3.0\r\nPHOTO;ENCODING=b;TYPE=JPEG:aGV*bG8=\r\nEND:VCARD\r\n", NULL,
			XDMS_ERR_PARSE));
}
END_TEST

START_TEST(read_caps)
{
	struct vcard_limits lim;
	struct buf big, out;
	unsigned version;
	char *why;

	vcard_limits_default(&lim);
	ck_assert_uint_eq(lim.max_card, 256 * 1024);
	ck_assert_uint_eq(lim.max_photo, 64 * 1024);
	ck_assert_uint_eq(lim.max_lines, 2000);

	/* Photo: 12 base64 characters are 9 bytes; a cap of 8 refuses them, 9 takes them. */
	lim.max_photo = 8;
	why = read_fails("BEGIN:VCARD\r\nVERSION:3.0\r\nPHOTO;ENCODING=b;TYPE=GIF:aGVsbG8gd29y\r\nEND:VCARD\r\n", &lim,
			 XDMS_ERR_TOOBIG);
	HAS(why, "PHOTO");
	free(why);
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nPHOTO:data:image/gif;base64,aGVsbG8gd29y\r\nEND:VCARD\r\n",
			 &lim, XDMS_ERR_TOOBIG);
	free(why);
	lim.max_photo = 9;
	buf_init(&out, 4096);
	{
		const char *ok = "BEGIN:VCARD\r\nVERSION:4.0\r\nPHOTO:data:image/gif;base64,aGVsbG8gd29y\r\nEND:VCARD\r\n";

		ck_assert(!vcard_read(ok, strlen(ok), &lim, &out, &version, &why));
	}
	buf_cleanup(&out);

	/* Lines. */
	vcard_limits_default(&lim);
	lim.max_lines = 4;
	why = read_fails("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\r\nNOTE:b\r\nEND:VCARD\r\n", &lim, XDMS_ERR_TOOBIG);
	HAS(why, "more than 4 content lines");
	free(why);

	/* Card size, after unfolding: a 300 KiB NOTE. */
	vcard_limits_default(&lim);
	buf_init(&big, 1 << 20);
	ck_assert(!buf_append_str(&big, "BEGIN:VCARD\r\nVERSION:4.0\r\nNOTE:"));
	for (int i = 0; i < 300 * 1024 / 64; i++)
		ck_assert(!buf_append_str(&big, "0123456789012345678901234567890123456789012345678901234567890123\r\n "));
	ck_assert(!buf_append_str(&big, "x\r\nEND:VCARD\r\n"));
	why = read_fails(big.data, &lim, XDMS_ERR_TOOBIG);
	HAS(why, "larger than 262144 bytes");
	free(why);
	buf_cleanup(&big);

	/* The output buffer's own maximum; nothing appended on refusal. */
	buf_init(&out, 40);
	ck_assert(!buf_append_str(&out, "x"));
	{
		const char *c = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a long enough name\r\nEND:VCARD\r\n";

		ck_assert_int_eq(vcard_read(c, strlen(c), NULL, &out, &version, &why), XDMS_ERR_TOOBIG);
	}
	ck_assert_str_eq(out.data, "x");
	free(why);
	buf_cleanup(&out);

	/* Too many parameters on one line. */
	buf_init(&big, 4096);
	ck_assert(!buf_append_str(&big, "BEGIN:VCARD\r\nVERSION:4.0\r\nFN"));
	for (int i = 0; i < 40; i++)
		ck_assert(!buf_printf(&big, ";X-P%d=1", i));
	ck_assert(!buf_append_str(&big, ":a\r\nEND:VCARD\r\n"));
	free(read_fails(big.data, NULL, XDMS_ERR_TOOBIG));
	buf_cleanup(&big);
	/* why may be NULL. */
	buf_init(&out, 4096);
	ck_assert_int_eq(vcard_read("nothing", 7, NULL, &out, &version, NULL), XDMS_ERR_PARSE);
	buf_cleanup(&out);
}
END_TEST

START_TEST(read_non_ascii_names)
{
	char *x = read_ok("BEGIN:VCARD\r\nVERSION:4.0\r\n"
			  "FN:Zoë Ñúñez 李小龍 Ωμέγα\r\n"
			  "N:Ñúñez;Zoë;;;\r\n"
			  "END:VCARD\r\n",
			  4);

	HAS(x, "<fn><text>Zoë Ñúñez 李小龍 Ωμέγα</text></fn>");
	HAS(x, "<surname>Ñúñez</surname><given>Zoë</given>");
	free(x);
}
END_TEST

/* Every physical line ends in CRLF, is at most 75 octets and does not start
 * inside a UTF-8 sequence. */
static void check_lines(const char *v)
{
	const char *p = v;

	while (*p) {
		const char *crlf = strstr(p, "\r\n");

		ck_assert_msg(crlf != NULL, "a line without CRLF: %s", p);
		ck_assert_msg(crlf - p <= 75, "a line of %d octets: %.*s", (int)(crlf - p), (int)(crlf - p), p);
		ck_assert_msg(((unsigned char)p[0] & 0xc0) != 0x80, "a line starts inside a UTF-8 sequence");
		if (p != v && (p[0] == ' '))
			ck_assert_msg(((unsigned char)p[1] & 0xc0) != 0x80, "a fold splits a UTF-8 sequence");
		p = crlf + 2;
	}
}

START_TEST(write_folds_and_escapes)
{
	const char *xcard = XC "<fn><text>ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé</text></fn>"
			       "<note><text>a,b;c\\d\ne</text></note>"
			       "<adr><parameters><label><text>1 \"Main\"; St\n^x</text></label><type><text>home</text></type>"
			       "</parameters><pobox/><ext/><street>1 Main; St</street><locality>Town, Big</locality>"
			       "<region/><code/><country>X</country></adr>"
			       "<n><surname>Doe</surname><given>J</given><additional>A</additional><additional>B</additional>"
			       "<prefix/><suffix/></n>"
			       "</vcard>";
	char *v = write_ok(xcard, 4);

	check_lines(v);
	ck_assert_msg(!strncmp(v, "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:", strlen("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:")), "%s", v);
	HAS(v, "NOTE:a\\,b\\;c\\\\d\\ne\r\n");
	HAS(v, "ADR;LABEL=\"1 ^'Main^'; St^n^^x\";TYPE=home:;;1 Main\\; St;Town\\, Big;;;X\r\n");
	HAS(v, "N:Doe;J;A,B;;\r\n");
	ck_assert_msg(!strcmp(v + strlen(v) - 11, "END:VCARD\r\n"), "%s", v);
	free(v);
}
END_TEST

START_TEST(write_v3_forms)
{
	const char *xcard = "<vcards xmlns=\"urn:ietf:params:xml:ns:vcard-4.0\">" XC
			    "<fn><text>T</text></fn>"
			    "<photo><parameters><mediatype><text>image/jpeg</text></mediatype></parameters>"
			    "<uri>data:image/jpeg;base64,aGVsbG8=</uri></photo>"
			    "<logo><uri>http://example.com/l.png</uri></logo>"
			    "<tel><parameters><type><text>cell</text></type><pref><integer>1</integer></pref></parameters>"
			    "<uri>tel:+15555550101</uri></tel>"
			    "<email><parameters><pref><integer>1</integer></pref></parameters><text>a@b.c</text></email>"
			    "<geo><uri>geo:37.38,-122.08</uri></geo>"
			    "<uid><uri>urn:uuid:abc</uri></uid>"
			    "<bday><date-time>19850412T100000</date-time></bday>"
			    "<version><text>4.0</text></version>"
			    "<group name=\"item1\"><email><text>g@b.c</text></email></group>"
			    "</vcard></vcards>";
	char *v3 = write_ok(xcard, 3), *v4 = write_ok(xcard, 4);

	check_lines(v3);
	HAS(v3, "VERSION:3.0\r\n");
	HAS(v3, "PHOTO;ENCODING=b;TYPE=JPEG:aGVsbG8=\r\n");
	HAS(v3, "LOGO;VALUE=uri:http://example.com/l.png\r\n");
	HAS(v3, "TEL;TYPE=cell,pref:+15555550101\r\n");
	HAS(v3, "EMAIL;TYPE=pref:a@b.c\r\n");
	HAS(v3, "GEO:37.38;-122.08\r\n");
	HAS(v3, "UID:urn:uuid:abc\r\n");
	HAS(v3, "BDAY;VALUE=date-time:19850412T100000\r\n");
	HAS(v3, "item1.EMAIL:g@b.c\r\n");
	HAS_NOT(v3, "VERSION:4.0");
	HAS_NOT(v3, "MEDIATYPE");

	HAS(v4, "VERSION:4.0\r\n");
	HAS(v4, "PHOTO;MEDIATYPE=image/jpeg:data:image/jpeg;base64,aGVsbG8=\r\n");
	HAS(v4, "TEL;VALUE=uri;TYPE=cell;PREF=1:tel:+15555550101\r\n");
	HAS(v4, "GEO:geo:37.38,-122.08\r\n");
	HAS(v4, "BDAY:19850412T100000\r\n");
	HAS_NOT(v4, "VERSION:3.0");
	free(v3);
	free(v4);
}
END_TEST

START_TEST(write_refusals)
{
	struct buf out;
	char *why = NULL;

	buf_init(&out, 4096);
	ck_assert_int_eq(vcard_write("<vcard", 6, 4, &out, &why), XDMS_ERR_PARSE);
	ck_assert_ptr_nonnull(why);
	free(why);
	ck_assert_int_eq(vcard_write("<x/>", 4, 4, &out, &why), XDMS_ERR_INVAL);
	HAS(why, "not an xCard");
	free(why);
	{
		const char *two = "<vcards xmlns=\"" VCARD_NS "\"><vcard/><vcard/></vcards>";

		ck_assert_int_eq(vcard_write(two, strlen(two), 4, &out, &why), XDMS_ERR_INVAL);
	}
	HAS(why, "more than one");
	free(why);
	ck_assert_int_eq(vcard_write(XC "</vcard>", strlen(XC "</vcard>"), 5, &out, &why), XDMS_ERR_INVAL);
	free(why);
	ck_assert_int_eq(vcard_write(XC "<group name=\"a b\"><fn><text>x</text></fn></group></vcard>",
				     strlen(XC "<group name=\"a b\"><fn><text>x</text></fn></group></vcard>"), 4, &out, &why),
			 XDMS_ERR_INVAL);
	free(why);
	ck_assert_uint_eq(out.len, 0);
	buf_cleanup(&out);
	buf_init(&out, 20);
	ck_assert_int_eq(vcard_write(XC "<fn><text>a</text></fn></vcard>", strlen(XC "<fn><text>a</text></fn></vcard>"),
				     4, &out, &why),
			 XDMS_ERR_TOOBIG);
	ck_assert_uint_eq(out.len, 0);
	free(why);
	buf_cleanup(&out);
}
END_TEST

/* A card full of what the reader handles, in each version. */
static const char card3[] =
	"BEGIN:VCARD\r\nVERSION:3.0\r\n"
	"FN:Zoë Ñúñez\r\nN:Ñúñez;Zoë;Ann,Marie;Dr.;Jr.\r\nNICKNAME:Zo\\,e,Z\r\n"
	"PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////"
	"////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=\r\n"
	"TEL;TYPE=CELL,PREF:+1 555 555 0101\r\nTEL;TYPE=WORK,FAX:+1 555 555 0199\r\n"
	"item1.EMAIL;TYPE=INTERNET:zoe@example.com\r\nitem1.X-ABLabel:private\r\n"
	"ADR;TYPE=HOME:;Apt 2;1 Main St\\, Back;Springfield;IL;62701;USA\r\n"
	"ORG:Example\\; Corp;R&D\r\nTITLE:Engineer\r\nBDAY:1985-04-12\r\n"
	"NOTE:line one\\nline two\\, with comma\\; and semi \\\\ done\r\n"
	"URL:https://example.com/zoe?a=1&b=2\r\nGEO:37.38;-122.08\r\nTZ:-05:00\r\n"
	"UID:card-0001\r\nCATEGORIES:friends,work\r\nX-CUSTOM;X-P=\"a:b\":raw\\,value\r\n"
	"END:VCARD\r\n";

static const char card4[] =
	"BEGIN:VCARD\r\nVERSION:4.0\r\n"
	"FN;LANGUAGE=fr:Zoë Ñúñez 李小龍\r\nN:Ñúñez;Zoë;;;\r\n"
	"PHOTO;MEDIATYPE=image/gif:data:image/gif;base64,R0lGODlhAQABAAAAACw=\r\n"
	"TEL;VALUE=uri;TYPE=\"cell,voice\";PREF=1:tel:+15555550101\r\n"
	"EMAIL;TYPE=work:zoe@example.com\r\n"
	"IMPP;PREF=1:xmpp:zoe@example.com\r\n"
	"ADR;LABEL=\"1 Main St^nSpringfield\";TYPE=home:;;1 Main St;Springfield;;;\r\n"
	"ORG:Example;Lab\r\nBDAY:--0412\r\nANNIVERSARY:20100601T1200Z\r\n"
	"GENDER:F\r\nKIND:individual\r\nREV:20240501T100000Z\r\n"
	"UID:urn:uuid:0f6b2c4e-1111-2222-3333-444455556666\r\n"
	"grp.NOTE:a\\nb\r\nEXPERTISE;LEVEL=expert;INDEX=1:chemistry\r\n"
	"X-ABC:keep;this\\,raw\r\n"
	"END:VCARD\r\n";

/* vcard -> xcard -> vcard (@out_version) -> xcard: both xCards must be the same. */
static void round_trip(const char *card, unsigned in_version, unsigned out_version)
{
	char *x1 = read_ok(card, in_version);
	char *v = write_ok(x1, out_version);
	char *x2;

	check_lines(v);
	x2 = read_ok(v, out_version);
	ck_assert_msg(!strcmp(x1, x2), "round trip %u -> %u changed the card:\n%s\n%s\nvia\n%s", in_version, out_version,
		      x1, x2, v);
	free(x1);
	free(x2);
	free(v);
}

START_TEST(round_trips)
{
	round_trip(card3, 3, 3);
	round_trip(card4, 4, 4);
	round_trip(card3, 3, 4);
}
END_TEST

struct split_seen {
	int count;
	char cards[4][64];
	int stop_at;
};

static int on_card(void *arg, const char *card, size_t len)
{
	struct split_seen *s = arg;

	if (s->count < 4)
		snprintf(s->cards[s->count], sizeof(s->cards[0]), "%.*s", (int)len, card);
	s->count++;
	return s->count == s->stop_at ? XDMS_ERR_BUSY : 0;
}

START_TEST(split_cards)
{
	const char *body = "\r\nBEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\n\r\nbegin:vcard\nFN:b\nend:vcard\n"
			   "BEGIN:VCARD\r\nFN:c\r\nEND:VCARD";
	struct split_seen s = { 0 };
	char *why = NULL;

	ck_assert_int_eq(vcard_split(body, strlen(body), 3, on_card, &s, &why), XDMS_ERR_OK);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(s.count, 3);
	ck_assert_str_eq(s.cards[0], "BEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\n");
	ck_assert_str_eq(s.cards[1], "begin:vcard\nFN:b\nend:vcard\n");
	ck_assert_str_eq(s.cards[2], "BEGIN:VCARD\r\nFN:c\r\nEND:VCARD");

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(vcard_split(body, strlen(body), 2, on_card, &s, &why), XDMS_ERR_TOOBIG);
	ck_assert_int_eq(s.count, 0); /* refused before any card is handed over */
	HAS(why, "3 cards");
	free(why);

	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	ck_assert_int_eq(vcard_split(body, strlen(body), 10, on_card, &s, &why), XDMS_ERR_BUSY);
	ck_assert_int_eq(s.count, 2);
	ck_assert_ptr_null(why);

	ck_assert_int_eq(vcard_split("junk\r\n", 6, 10, on_card, &s, &why), XDMS_ERR_PARSE);
	HAS(why, "line 1");
	free(why);
	ck_assert_int_eq(vcard_split("BEGIN:VCARD\r\nFN:a\r\n", 19, 10, on_card, &s, &why), XDMS_ERR_PARSE);
	HAS(why, "no END:VCARD");
	free(why);
	ck_assert_int_eq(vcard_split("BEGIN:VCARD\r\nBEGIN:VCARD\r\nEND:VCARD\r\n", 37, 10, on_card, &s, &why),
			 XDMS_ERR_PARSE);
	free(why);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(vcard_split("\xef\xbb\xbf" "BEGIN:VCARD\r\nEND:VCARD\r\n", 27, 10, on_card, &s, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(s.count, 1);
	ck_assert_str_eq(s.cards[0], "BEGIN:VCARD\r\nEND:VCARD\r\n");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(vcard_split("", 0, 10, on_card, &s, NULL), XDMS_ERR_OK);
	ck_assert_int_eq(s.count, 0);
}
END_TEST

START_TEST(uid_lookup)
{
	const char *a = XC "<fn><text>a</text></fn><uid><uri>urn:uuid:1</uri></uid></vcard>";
	const char *b = "<vcards xmlns=\"" VCARD_NS "\">" XC "<uid><text>plain-2</text></uid></vcard></vcards>";
	const char *c = XC "<group name=\"g\"><uid><text>in-group</text></uid></group></vcard>";
	const char *d = XC "<fn><text>none</text></fn></vcard>";
	const char *e = "<vcard xmlns=\"urn:other\"><uid><text>x</text></uid></vcard>";
	char *s;

	s = vcard_uid_of_xcard(a, strlen(a));
	ck_assert_str_eq(s, "urn:uuid:1");
	free(s);
	s = vcard_uid_of_xcard(b, strlen(b));
	ck_assert_str_eq(s, "plain-2");
	free(s);
	s = vcard_uid_of_xcard(c, strlen(c));
	ck_assert_str_eq(s, "in-group");
	free(s);
	ck_assert_ptr_null(vcard_uid_of_xcard(d, strlen(d)));
	ck_assert_ptr_null(vcard_uid_of_xcard(e, strlen(e)));
	ck_assert_ptr_null(vcard_uid_of_xcard("<broken", 7));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vcard");
	TCase *tc = tcase_create("core");
	int failed;

	xml_init();
	tcase_add_test(tc, read_v4_properties);
	tcase_add_test(tc, read_folding);
	tcase_add_test(tc, read_escapes);
	tcase_add_test(tc, read_parameters);
	tcase_add_test(tc, read_groups_and_unknown);
	tcase_add_test(tc, read_v3_specifics);
	tcase_add_test(tc, read_charsets);
	tcase_add_test(tc, read_bad_utf8);
	tcase_add_test(tc, read_refusals);
	tcase_add_test(tc, read_caps);
	tcase_add_test(tc, read_non_ascii_names);
	tcase_add_test(tc, write_folds_and_escapes);
	tcase_add_test(tc, write_v3_forms);
	tcase_add_test(tc, write_refusals);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, split_cards);
	tcase_add_test(tc, uid_lookup);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	xml_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
