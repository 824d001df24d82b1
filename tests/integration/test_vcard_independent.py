# SPDX-License-Identifier: MIT
"""The vCard reader and writer (src/vcard) and the built-in transforms
xcard2pcc.xsl and pcc2xcard.xsl, checked against readers and writers that
are not ours: python3-vobject reads what vcard_write writes and writes what
vcard_read reads; lxml validates the PCCs that xcard2pcc.xsl makes from
many generated cards against schemas/cab-pcc.xsd. The C code runs through
the vcardconv bridge built with the unit tests; the transforms run in
xdmsd's own XSLT engine (built-in copies, security policy on)."""

import base64
import os
import random
import re
import subprocess
from pathlib import Path

import pytest
import vobject
from lxml import etree

from xdmslib import DATA, REPO

VC = "urn:ietf:params:xml:ns:vcard-4.0"
PCC_NS = "urn:oma:xml:cab:pcc"
NS = {"v": VC, "p": PCC_NS}
TOOL = Path(os.environ.get("XDMS_BUILDDIR", REPO)) / "tests" / "unit" / "vcard" / "vcardconv"


def run(*args, data):
    r = subprocess.run([str(TOOL), *args], input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, f"vcardconv {' '.join(args)} failed: {r.stderr.decode(errors='replace')}"
    return r.stdout


def read(card):
    return run("read", data=card.encode() if isinstance(card, str) else card)


def write(xcard, version):
    return run("write", str(version), data=xcard).decode()


def xcard2pcc(xcard):
    return run("xslt", "xcard2pcc.xsl", data=xcard)


def pcc2xcard(pcc, uid=""):
    return run("xslt", "pcc2xcard.xsl", "uid", uid, data=pcc)


def fold(line):
    """RFC 6350 §3.2 folding at 60 octets, on purpose not where ours folds,
    and splitting UTF-8 sequences (readers must rejoin octets)."""
    b = line.encode()
    out = [b[:60]]
    b = b[60:]
    while b:
        out.append(b" " + b[:40])
        b = b[40:]
    return b"\r\n".join(out)


def escape(s):
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


GIVEN = ["Zoë", "Ñúñez", "李", "Ωμέγα", "O'Brien", "Anne-Marie", "Jürgen", "Đorđe", "Søren", "José"]
FAMILY = ["Example", "Müller", "王", "Smith, Jr.", "Łukasz", "d'Arc", "Nguyễn", "Ødegård", "Khan", "Ivanov"]
NOTE = "a note, with; all\\ the escapes\nline two"
TEL_TYPES = ["cell", "work", "home", "fax", "pager", "voice", "cell,voice"]


def make_card(i, version):
    """One varied card: (the vCard bytes, what it holds)."""
    rnd = random.Random(i)
    given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
    fn = f"{given} {family} {i}"
    tels = [f"+1 555 {rnd.randrange(1000):03d} {rnd.randrange(10000):04d}" for _ in range(rnd.randrange(0, 4))]
    emails = [f"user{i}.{k}@example.com" for k in range(rnd.randrange(0, 3))]
    photo = bytes(rnd.randrange(256) for _ in range(rnd.randrange(20, 300)))
    lines = ["BEGIN:VCARD", f"VERSION:{version}.0"]
    if i % 17 != 5:  # a few cards carry N only (3.0 allows it)
        lines.append(f"FN:{escape(fn)}")
    lines.append(f"N:{escape(family)};{escape(given)};;Dr.;")
    for k, t in enumerate(tels):
        ty = rnd.choice(TEL_TYPES)
        if version == 3:
            pref = ",PREF" if k == 0 else ""
            lines.append(f"TEL;TYPE={ty.upper()}{pref}:{t}")
        else:
            # Duplicate PREF values on purpose: the transform must still
            # give unique @pref.
            lines.append(f'TEL;VALUE=uri;TYPE="{ty}";PREF=1:tel:{t.replace(" ", "-")}')
    for k, e in enumerate(emails):
        lines.append(f"item{k + 1}.EMAIL;TYPE=INTERNET,{rnd.choice(['HOME', 'WORK'])}:{e}")
        lines.append(f"item{k + 1}.X-ABLabel:label {k}")
    if i % 3 == 0:
        lines.append(f"IMPP:{rnd.choice(['sip', 'xmpp'])}:u{i}@example.net")
        lines.append(f"URL:https://example.org/people/{i}?a=1&b=2")
    if i % 2 == 0:
        lines.append(f"ADR;TYPE={'HOME' if i % 4 else 'WORK'}:;;{i} Main St\\, Apt {i};Springfield;IL;62701;USA")
    if i % 5 != 0:
        lines.append(f"ORG:{escape('Org ' + family)};Unit {i}")
        lines.append(f"TITLE:{escape('Title; ' + given)}")
    if i % 4 == 1:
        lines.append("BDAY:1985-04-12" if version == 3 else "BDAY:19850412")
    elif i % 4 == 2:
        lines.append("BDAY:--0412" if version == 4 else "BDAY:1990-12-31T10:00:00Z")
    elif i % 8 == 7:
        lines.append("BDAY:19850230")  # no such day: kept as text, not refused by the schema
    if i % 3 != 2:
        b64 = base64.b64encode(photo).decode()
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{b64}" if version == 3 else
                     f"PHOTO;MEDIATYPE=image/png:data:image/png;base64,{b64}")
    lines.append(f"NICKNAME:{escape(given)},N{i}")
    lines.append("NOTE:" + escape(NOTE))
    lines.append(f"UID:urn:uuid:00000000-0000-0000-0000-{i:012d}")
    lines.append(f"X-CUSTOM;X-P=\"a:b\":{i}\\,raw")
    lines.append("END:VCARD")
    card = b"".join(fold(line) + (b"\r\n" if version == 4 or i % 2 else b"\n") for line in lines)
    return card, {"fn": fn if i % 17 != 5 else None, "given": given, "family": family, "tels": tels,
                  "emails": emails, "photo": photo if i % 3 != 2 else None, "version": version,
                  "org": i % 5 != 0}


CARDS = [make_card(i, 3 if i % 2 else 4) for i in range(120)]
CARDS_INDEX = {id(want): i for i, (_, want) in enumerate(CARDS)}


def pcc_schema():
    return etree.XMLSchema(etree.parse(str(REPO / "schemas" / "cab-pcc.xsd")))


def check_pcc_rules(pcc):
    """The PCC rules the schema cannot say (src/xcap/usage_pcc.c)."""
    for parent, kind in (("name", "name-entry"), ("address", "address-entry"), ("comm-addr", "tel"),
                         ("comm-addr", "uri-entry"), ("media-list", "media-entry")):
        for group in pcc.iterfind(f".//p:{parent}", NS):
            prefs = [e.get("pref") for e in group.iterfind(f"p:{kind}", NS) if e.get("pref")]
            assert len(prefs) == len(set(prefs)), f"@pref not unique among <{kind}>: {prefs}"
    for g in ("name", "address", "comm-addr", "birth", "career", "media-list"):
        assert len(pcc.findall(f"p:person-details/p:{g}", NS)) <= 1, f"two <{g}> groups"
    for t in pcc.iterfind(".//p:tel-string", NS):
        assert t.text.startswith("tel:"), t.text


def test_xcard2pcc_output_of_many_cards_validates():
    schema = pcc_schema()
    for card, want in CARDS:
        pcc = etree.fromstring(xcard2pcc(read(card)))
        assert schema.validate(pcc), f"{schema.error_log}\n{etree.tostring(pcc).decode()}"
        check_pcc_rules(pcc)
        names = [e.text for e in pcc.iterfind(".//p:name-entry/p:display-name", NS)]
        if want["fn"]:
            assert names[0] == want["fn"], (names, want["fn"])
        assert pcc.find(".//p:name-entry/p:given", NS).text == want["given"]
        assert pcc.find(".//p:name-entry/p:family", NS).text == want["family"]
        tels = [e.text for e in pcc.iterfind(".//p:tel-string", NS)]
        assert [re.sub(r"[^0-9+]", "", t) for t in tels] == [re.sub(r"[^0-9+]", "", t) for t in want["tels"]]
        emails = [e.text for e in pcc.iterfind(".//p:uri-entry[@addr-uri-type='Email']/p:addr-uri", NS)]
        assert emails == ["mailto:" + e for e in want["emails"]]
        urls = [e.text for e in pcc.iterfind(".//p:media-url", NS)]
        if want["photo"]:
            assert len(urls) == 1 and urls[0].startswith("data:image/")
            assert base64.b64decode(urls[0].split(",", 1)[1]) == want["photo"]
        else:
            assert urls == []


def vobject_values(text):
    c = vobject.readOne(text)
    return c, {
        "tels": [t.value for t in c.contents.get("tel", [])],
        "emails": [e.value for e in c.contents.get("email", [])],
    }


@pytest.mark.parametrize("version", [3, 4])
def test_vobject_reads_what_vcard_write_writes(version):
    for card, want in CARDS:
        text = write(read(card), version)
        for line in text.split("\r\n")[:-1]:
            assert len(line.encode()) <= 75, f"a line longer than 75 octets: {line!r}"
        assert text.endswith("END:VCARD\r\n") and "\n" not in text.replace("\r\n", "")
        c, got = vobject_values(text)
        assert c.version.value == f"{version}.0"
        assert c.n.value.family == want["family"] and c.n.value.given == want["given"]
        if want["fn"]:
            assert c.fn.value == want["fn"]
        assert c.note.value == NOTE
        if want["org"]:
            assert c.org.value == ["Org " + want["family"], f"Unit {CARDS_INDEX[id(want)]}"]
            assert c.title.value == "Title; " + want["given"]
        assert [e for e in got["emails"]] == want["emails"]
        digits = [re.sub(r"[^0-9+]", "", t) for t in got["tels"]]
        assert digits == [re.sub(r"[^0-9+]", "", t) for t in want["tels"]]
        if version == 3:
            # 3.0 carries the photo inline (ENCODING=b), which vobject decodes.
            if want["photo"]:
                assert c.photo.value == want["photo"]
                assert c.photo.params["ENCODING"] == ["b"]
            assert all(t.params.get("TYPE") for t in c.contents.get("tel", []))
        elif want["photo"]:
            raw = re.search(r"\r\nPHOTO[^:]*:(.*?)\r\n(?! )", text, re.S).group(1).replace("\r\n ", "")
            assert base64.b64decode(raw.split(",", 1)[1]) == want["photo"]
        assert [g.group for g in c.contents["email"]] == [f"item{k + 1}" for k in range(len(want["emails"]))] \
            if want["emails"] else True


def test_vcard_read_reads_what_vobject_writes():
    c = vobject.vCard()
    c.add("n").value = vobject.vcard.Name(family="Ñúñez, Jr.", given="Zoë", additional=["Ann", "Marie"])
    c.add("fn").value = "Zoë Ñúñez; the 2nd " + "λ" * 60
    tel = c.add("tel")
    tel.value = "+1 555 555 0101"
    tel.type_param = "CELL"
    c.add("email").value = "zoe@example.com"
    c.add("note").value = "line one\nline two, with comma; and semi \\ done"
    c.add("adr").value = vobject.vcard.Address(street="1 Main St, Apt 2", city="Springfield", code="62701",
                                               country="USA")
    photo = c.add("photo")
    photo.encoding_param = "b"
    photo.type_param = "PNG"
    photo.value = bytes(range(256)) * 3
    text = c.serialize()
    x = etree.fromstring(read(text))
    assert x.find("v:fn/v:text", NS).text == "Zoë Ñúñez; the 2nd " + "λ" * 60
    assert [e.text for e in x.find("v:n", NS)] == ["Ñúñez, Jr.", "Zoë", "Ann", "Marie", None, None]
    assert x.find("v:tel/v:text", NS).text == "+1 555 555 0101"
    assert x.find("v:tel/v:parameters/v:type/v:text", NS).text == "cell"
    assert x.find("v:note/v:text", NS).text == "line one\nline two, with comma; and semi \\ done"
    assert x.find("v:adr/v:street", NS).text == "1 Main St, Apt 2"
    assert x.find("v:adr/v:locality", NS).text == "Springfield"
    uri = x.find("v:photo/v:uri", NS).text
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == bytes(range(256)) * 3


# A PCC that uses every value the mapping carries, with text that needs
# escaping in vCard (commas, semicolons, backslashes, newlines) and
# attributes vCard has no place for (they travel in x-cab-* parameters).
RICH_PCC = """<?xml version="1.0" encoding="UTF-8"?>
<pcc xmlns="urn:oma:xml:cab:pcc" pcc-type="individual">
  <person-details>
    <name>
      <name-entry pref="1" name-type="LegalName" xml:lang="fr">
        <display-name>Zoë Ñúñez; \\ the 2nd, "Z"</display-name><given>Zoë</given><given>Anne</given><middle>M.</middle><family>Ñúñez, Jr.</family>
      </name-entry>
      <name-entry pref="2" name-type="Alias"><display-name>Zozo</display-name></name-entry>
      <name-entry pref="3" name-type="Alias"><display-name>李小龍</display-name></name-entry>
    </name>
    <comm-addr>
      <tel pref="1" tel-type="Mobile" xui-type="CAB"><tel-nb><tel-string>tel:+15555550101</tel-string></tel-nb><label>mobile, main</label></tel>
      <tel pref="2" tel-type="Work"><tel-nb><tel-string>tel:+15555550199;ext=12</tel-string></tel-nb></tel>
      <tel pref="3" tel-type="Home"><tel-nb><tel-string>tel:+15555550150</tel-string></tel-nb></tel>
      <tel pref="4" tel-type="Fax"><tel-nb><tel-string>tel:+15555550151</tel-string></tel-nb></tel>
      <tel pref="5" tel-type="Fixed"><tel-nb><tel-string>tel:+15555550152</tel-string></tel-nb></tel>
      <tel pref="6" tel-type="Other" xui-type="Other"><tel-nb><tel-string>tel:+15555550153</tel-string></tel-nb></tel>
      <uri-entry pref="1" addr-uri-type="Email"><addr-uri>mailto:zoe@example.com</addr-uri><label>personal</label></uri-entry>
      <uri-entry pref="2" addr-uri-type="SIP-URI"><addr-uri>sip:zoe@example.com</addr-uri></uri-entry>
      <uri-entry pref="3" addr-uri-type="IM"><addr-uri>xmpp:zoe@example.net</addr-uri></uri-entry>
      <uri-entry pref="4" addr-uri-type="Other"><addr-uri>https://example.org/zoe?a=1&amp;b=2</addr-uri><label>url</label></uri-entry>
      <uri-entry pref="5" addr-uri-type="Video"><addr-uri>sip:video.zoe@example.com</addr-uri></uri-entry>
      <uri-entry pref="6" addr-uri-type="Email"><addr-uri>mailto:zoe@work.example</addr-uri></uri-entry>
    </comm-addr>
    <address>
      <address-entry pref="1" address-type="Home" xml:lang="en"><address-data><addr-string>1 Main Street, Springfield, IL 62701, USA</addr-string></address-data><label>Home; the old one</label></address-entry>
      <address-entry pref="2" address-type="Business"><address-data><addr-string>2 Rue de la Paix; 75002 Paris\\France</addr-string></address-data></address-entry>
    </address>
    <birth><birth-date><date>1985-04-12</date></birth-date><place>Springfield, IL</place></birth>
    <career><employer>Example; Corp</employer><duty>Engineer, senior</duty></career>
    <media-list>
      <media-entry pref="1"><media><media-url>http://media.example.com/zoe/photo.jpg</media-url></media><media-type>image/jpeg</media-type><label>photo</label></media-entry>
      <media-entry pref="2"><media><media-url>data:image/png;base64,iVBORw0KGgo=</media-url></media><media-type>image/png</media-type><label>logo</label></media-entry>
      <media-entry pref="3"><media><media-url>http://media.example.com/zoe/avatar.gif</media-url></media><media-type>image/gif</media-type><label>avatar</label></media-entry>
    </media-list>
  </person-details>
</pcc>
"""

LUNAR_PCC = """<pcc xmlns="urn:oma:xml:cab:pcc"><person-details>
<name><name-entry pref="1"><display-name>Lunar</display-name></name-entry></name>
<birth><birth-date><non-greg-date cal-type="Chinese">Year of the Ox, month 3, day 5</non-greg-date></birth-date></birth>
</person-details></pcc>"""


def leaves(pcc):
    """Every value of a PCC: (path with attributes, text) for each element
    with text, and each element's attributes, in a sorted list."""
    out = []

    def walk(e, path):
        # The language of the whole comm-addr group has no place in vCard
        # (each TEL or EMAIL has its own LANGUAGE); xcard2pcc.xsl says so.
        items = [(k, v) for k, v in sorted(e.attrib.items())
                 if not (etree.QName(e).localname == "comm-addr" and etree.QName(k).localname == "lang")]
        attrs = ",".join(f"{etree.QName(k).localname}={v}" for k, v in items)
        name = etree.QName(e).localname
        here = f"{path}/{'given' if name == 'first' else name}[{attrs}]"  # SPEC §5.2: first is given
        kids = list(e)
        if not kids:
            text = (e.text or "").strip()
            if etree.QName(e).localname == "tel-string" and not text.startswith("tel:"):
                text = "tel:" + text  # the same number, as a tel: URI (SPEC §5.2)
            out.append((here, text))
        for k in kids:
            walk(k, here)

    for pd in pcc.iterfind("p:person-details", NS):
        walk(pd, "")
    return sorted(out)


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("name", ["rich", "alice", "mediatek", "lunar"])
def test_pcc_round_trip_through_vcard_keeps_every_value(version, name):
    source = {"rich": RICH_PCC.encode(), "alice": (DATA / "pcc-alice.xml").read_bytes(),
              "mediatek": (DATA / "pcc-mediatek-style.xml").read_bytes(), "lunar": LUNAR_PCC.encode()}[name]
    original = etree.fromstring(source)
    xcard = pcc2xcard(source, uid="urn:uuid:6f0d5d2c-0000-4000-8000-000000000001")
    text = write(xcard, version)
    back = etree.fromstring(xcard2pcc(read(text)))
    assert pcc_schema().validate(back), pcc_schema().error_log
    check_pcc_rules(back)
    before, after = leaves(original), leaves(back)
    # What the way back may add: a label or media-type it can derive, an
    # FN made of the name parts, "tel:" in front of an E.164 number, a
    # pref where the PCC had none. Nothing may go missing or change.
    missing = [v for v in before if v not in after]
    assert not missing, f"lost on the way through vCard {version}.0:\n" + "\n".join(map(str, missing)) + \
        f"\nvia\n{text}"
    assert b"UID:urn:uuid:6f0d5d2c-0000-4000-8000-000000000001" in text.encode()
