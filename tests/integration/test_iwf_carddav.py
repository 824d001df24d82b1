# SPDX-License-Identifier: MIT
"""The IWF against a real CardDAV server: Radicale on loopback with htpasswd
authentication, holding generated books (vCard 3.0 and 4.0, folded lines,
non-ASCII names, grouped properties, an inline photo, a card with an error).

One Radicale serves the whole module; each test uses its own Radicale
account and book, so the tests do not see each other's changes. The xdmsd
adapter points at the server root, so every job finds its book by RFC 6764
discovery (well-known URI, principal, address-book home)."""


import base64
import re
import time

import pytest
from lxml import etree

from davlib import Radicale, card, generated_book, generated_card, radicale_available
from iwflib import add_adapter, expect_response, fh_doc, request_xml, text, wait_response
from sipua import Subscriber, rl_body
from xdmslib import ALICE, BOB, FH, PCC, doc_path, expect, sip_port

pytestmark = pytest.mark.skipif(not radicale_available(), reason="radicale is not installed")

AB = "org.openmobilealliance.cab-address-book"
AB_NS = "urn:oma:xml:cab:address-book"
AB_TYPE = "application/vnd.oma.cab-address-book+xml"
PCC_NS = "urn:oma:xml:cab:pcc"
NS = {"ab": AB_NS, "pcc": PCC_NS}
FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "10"}

USERS = {"books": "pw-books", "own": "pw-own", "exp": "pw-exp", "notif": "pw-notif", "two": "pw-two",
         "dup": "pw-dup", "pho": "pw-pho", "caps": "pw-caps", "many": "pw-many", "race": "pw-race"}

# The card with an error: a charset no vCard reader has to know (RFC 2426
# allows only what the reader supports; the rest is refused, naming the line).
BAD = "card-0049.vcf"


def bad_card():
    return card(["BEGIN:VCARD", "VERSION:3.0", "UID:card-0049", "FN:Broken Charset", "N:Charset;Broken;;;",
                 "NOTE;CHARSET=SHIFT_JIS:\u3042", "END:VCARD"])


def race_card(note):
    return card(["BEGIN:VCARD", "VERSION:3.0", "UID:race", "FN:Rae Racer", "N:Racer;Rae;;;",
                 "TEL;TYPE=cell:+15555550199", f"NOTE:{note}", "END:VCARD"])


def big_photo_card():
    # A photo over what a contact holds inline (IWF_PHOTO_INLINE_MAX): it stays at the 3rd party.
    # vCard 3.0's ENCODING=b: Radicale's reader cuts a long 4.0 data: URI at its comma.
    photo = base64.b64encode(bytes(range(256)) * 30).decode()
    return card(["BEGIN:VCARD", "VERSION:3.0", "UID:big", "FN:Big Photo", "N:Photo;Big;;;",
                 f"PHOTO;ENCODING=b;TYPE=PNG:{photo}", "END:VCARD"])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    r = Radicale(tmp_path_factory.mktemp("radicale"), USERS)
    book = generated_book(49)
    book[BAD] = bad_card()
    r.add_book("books", "contacts", book, displayname="Contacts")
    own = generated_book(5)
    own["own.vcf"] = card(["BEGIN:VCARD", "VERSION:3.0", "UID:own", "FN:Owen Owner", "N:Owner;Owen;;;",
                           "TEL;TYPE=cell:+15555550177", "EMAIL:owen@example.net", "END:VCARD"])
    r.add_book("own", "book", own)
    r.add_book("exp", "book", {})
    r.add_book("notif", "book", generated_book(3))
    r.add_book("dup", "book", {})
    pho = generated_book(8)  # card-0007 has a small inline photo
    pho["big.vcf"] = big_photo_card()
    r.add_book("pho", "book", pho)
    caps = generated_book(3)
    caps["long-note.vcf"] = card(["BEGIN:VCARD", "VERSION:3.0", "UID:long-note", "FN:Long Note", "N:Note;Long;;;",
                                  "NOTE:" + "x" * (300 * 1024), "END:VCARD"])
    caps["huge-photo.vcf"] = card(["BEGIN:VCARD", "VERSION:3.0", "UID:huge-photo", "FN:Huge Photo",
                                   "N:Photo;Huge;;;", "PHOTO;ENCODING=b;TYPE=PNG:"
                                   + base64.b64encode(bytes(range(256)) * 1000).decode(), "END:VCARD"])
    r.add_book("caps", "book", caps)
    r.add_book("many", "book", generated_book(1000))
    r.add_book("race", "book", {"race.vcf": race_card("as it was")})
    r.add_book("two", "work", generated_book(2), displayname="Work")
    r.add_book("two", "home", {"h.vcf": generated_card(30)}, displayname="Family")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def srv(start_server, radicale):
    s = start_server(settings=dict(FAST, **{"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"}))
    add_adapter(s, "dav", "carddav", radicale.url("/"), "--plain-http-loopback", "true")
    return s


def run(srv, kind, rid, account, password=None, xui=ALICE, **kw):
    submit(srv, kind, rid, account, password, xui, **kw)
    resp, _ = wait_response(srv.client(xui), xui, rid, timeout=60)
    return resp


def submit(srv, kind, rid, account, password=None, xui=ALICE, **kw):
    client = srv.client(xui)
    r = client.get(doc_path(FH, xui))
    req = request_xml(kind, rid, "dav", remote_user=kw.pop("remote_user", account), username=account,
                      password=password if password is not None else USERS[account], **kw)
    if r.status == 200:
        body = r.body.replace(b"</cab-feature-handler>", req.encode() + b"</cab-feature-handler>")
        expect(client.put_doc(FH, xui, body, headers={"If-Match": r.header("ETag")}), 200)
    else:
        expect(client.put_doc(FH, xui, fh_doc(req)), 201)


def contacts(srv, xui=ALICE):
    r = expect(srv.client(xui).get(doc_path(AB, xui)), 200)
    return etree.fromstring(r.body).xpath("/ab:address-book/ab:contact", namespaces=NS)


def by_uid(cs):
    out = {}
    for c in cs:
        src = c.find(f"{{{AB_NS}}}source")
        if src is not None and src.text == "dav" and src.get("uid"):
            out[src.get("uid")] = c
    return out


def display_names(c):
    return c.xpath(".//pcc:display-name/text()", namespaces=NS)


LOCAL_AB = (f'<?xml version="1.0" encoding="UTF-8"?>\n<address-book xmlns="{AB_NS}">'
            '<contact id="mine-1"><person-details xmlns="urn:oma:xml:cab:pcc"><name><name-entry pref="1">'
            '<display-name>Made By Alice</display-name></name-entry></name></person-details></contact>'
            '<contact id="other-1"><source uid="x-1">other-source</source>'
            '<person-details xmlns="urn:oma:xml:cab:pcc"><name><name-entry pref="1">'
            '<display-name>From Elsewhere</display-name></name-entry></name></person-details></contact>'
            '</address-book>\n').encode()


def test_several_books_need_a_name(srv):
    # Two books and no name among them: 400, naming both.
    resp = run(srv, "import-profile", "t-1", "two", target="address-book")
    expect_response(resp, "failure", 400)
    assert "home" in text(resp, "reason") and "work" in text(resp, "reason"), text(resp, "reason")
    # <remote-user> names one, by its display name.
    resp = run(srv, "import-profile", "t-2", "two", remote_user="Family", target="address-book")
    expect_response(resp, "success", 200)
    assert list(by_uid(contacts(srv))) == ["card-0030"]


def test_wrong_password_is_401(srv):
    resp = run(srv, "import-profile", "w-1", "books", password="not-it", target="address-book")
    expect_response(resp, "failure", 401)


def test_stopped_server_is_503_after_retries(start_server, tmp_path):
    r = Radicale(tmp_path / "down", {"books": "pw-books"})
    r.start()
    url = r.url("/")
    r.stop()
    s = start_server(settings=FAST)
    add_adapter(s, "dav", "carddav", url, "--plain-http-loopback", "true")
    resp = run(s, "import-profile", "d-1", "books", target="address-book")
    expect_response(resp, "failure", 503)


def test_basic_over_plain_http_needs_the_loopback_option(start_server, radicale):
    s = start_server(settings=FAST)
    add_adapter(s, "dav", "carddav", radicale.url("/"))
    resp = run(s, "import-profile", "p-1", "books", target="address-book")
    expect_response(resp, "failure", 500)
    assert "plain HTTP" in text(resp, "reason")


def test_address_book_import_then_only_changes(srv, radicale):
    expect(srv.client(ALICE).put(doc_path(AB, ALICE), LOCAL_AB, AB_TYPE), 201)
    resp = run(srv, "import-profile", "ab-1", "books", target="address-book")
    # 50 cards: 49 generated and the broken one, which is named and left out.
    expect_response(resp, "partial-success", 206)
    reason = text(resp, "reason")
    assert BAD in reason and "1 card refused" in reason, reason
    assert text(resp, "imported-count") == "49", etree.tostring(resp)
    cs = contacts(srv)
    mine = by_uid(cs)
    assert len(mine) == 49 and "card-0049" not in mine, sorted(mine)
    assert display_names(mine["card-0001"]) == ["Björn Müller 1"]
    assert display_names(mine["card-0042"]) == ["Chloé Łukasiewicz 42"]
    ids = {c.get("id") for c in cs}
    assert {"mine-1", "other-1"} <= ids and len(ids) == 51
    before = {u: etree.tostring(c) for u, c in mine.items()}
    first_id = mine["card-0003"].get("id")

    # A phone changes one card and deletes another, over CardDAV.
    st, _, _ = radicale.put_card("/books/contacts/card-0003.vcf",
                                 generated_card(3).replace("FN:Dmitri Müller 3", "FN:Dmitri Renamed"))
    assert st in (200, 201, 204), st
    st, _, _ = radicale.delete("/books/contacts/card-0004.vcf")
    assert st in (200, 204), st
    n_before = len(radicale.requests())

    resp = run(srv, "import-profile", "ab-2", "books", target="address-book")
    expect_response(resp, "success", 200)
    reason = text(resp, "reason")
    assert "changes since the stored sync-token" in reason, reason
    assert "1 cards read, 0 contacts added, 1 updated, 1 removed" in reason, reason
    assert text(resp, "imported-count") == "1"
    # The sync went through one sync-collection REPORT and one multiget of
    # the changed card: the book itself was not listed with PROPFIND.
    asked = radicale.requests()[n_before:]
    book_calls = [(m, p) for m, p in asked if p.startswith("/books/contacts")]
    assert book_calls == [("REPORT", "/books/contacts/"), ("REPORT", "/books/contacts/")], asked

    cs = contacts(srv)
    mine = by_uid(cs)
    assert "card-0004" not in mine and len(mine) == 48
    assert display_names(mine["card-0003"]) == ["Dmitri Renamed"]
    assert mine["card-0003"].get("id") == first_id, "a contact keeps its id"
    for uid, c in mine.items():
        if uid != "card-0003":
            assert etree.tostring(c) == before[uid], uid
    assert {c.get("id") for c in cs} >= {"mine-1", "other-1"}
    # The grouped ADR and the inline photo came through.
    assert mine["card-0007"].xpath(".//pcc:media-url/text()", namespaces=NS)[0].startswith("data:image/png")
    assert "Long Street Name" in "".join(mine["card-0005"].xpath(".//pcc:addr-string/text()", namespaces=NS))

    # Radicale forgets its sync-tokens: the stored one is refused (403
    # valid-sync-token) and the book is listed once in full; only the card
    # that changed meanwhile is read again.
    for f in radicale.storage.rglob(".Radicale.cache"):
        for tokdir in f.rglob("sync-token"):
            for t in tokdir.iterdir():
                t.unlink()
    st, _, _ = radicale.put_card("/books/contacts/card-0010.vcf",
                                 generated_card(10).replace("FN:Anna Østergaard 10", "FN:Anna Again"))
    assert st in (200, 201, 204), st
    resp = run(srv, "import-profile", "ab-3", "books", target="address-book")
    expect_response(resp, "partial-success", 206)  # the card with an error is read, and refused, again
    reason = text(resp, "reason")
    assert "the stored sync-token was refused: full listing" in reason, reason
    assert "cards read, 0 contacts added, 1 updated, 0 removed" in reason, reason
    assert display_names(by_uid(contacts(srv))["card-0010"]) == ["Anna Again"]


def test_pcc_import_and_export_of_the_own_card(srv, radicale):
    resp = run(srv, "import-profile", "pcc-1", "own", xui=BOB)
    expect_response(resp, "success", 200)
    pcc = etree.fromstring(expect(srv.client(BOB).get(doc_path(PCC, BOB)), 200).body)
    assert pcc.xpath("//pcc:display-name/text()", namespaces=NS) == ["Owen Owner"]
    assert "tel:+15555550177" in "".join(pcc.xpath("//pcc:tel-string/text()", namespaces=NS))

    # Changed locally, then exported back to the same card.
    body = etree.tostring(pcc).replace(b"Owen Owner", b"Owen Exported")
    expect(srv.client(BOB).put_doc(PCC, BOB, body), 200)
    resp = run(srv, "export-profile", "pcc-2", "own", xui=BOB)
    expect_response(resp, "success", 200)
    st, _, vcf = radicale.request("GET", "/own/book/own.vcf", user="own")
    assert st == 200
    vcf = vcf.decode()
    assert "FN:Owen Exported" in vcf and "VERSION:3.0" in vcf and "UID:own" in vcf, vcf
    # Radicale's own storage holds the card as written; the other cards are as they were.
    stored = (radicale.storage / "collection-root" / "own" / "book" / "own.vcf").read_text()
    assert "FN:Owen Exported" in stored and "TEL" in stored, stored
    assert (radicale.storage / "collection-root" / "own" / "book" / "card-0001.vcf").read_bytes() == \
        generated_card(1).encode()
    # A <remote-user> with no card yet: created (If-None-Match: *) under that name, as vCard 4.0.
    resp = run(srv, "export-profile", "pcc-3", "own", xui=BOB, remote_user="newcomer")
    expect_response(resp, "success", 200)
    st, _, vcf = radicale.request("GET", "/own/book/newcomer.vcf", user="own")
    # RFC 6350 §6.7.6: a UID that is not a URI is text, said with VALUE=text.
    assert st == 200 and "UID;VALUE=text:newcomer" in vcf.decode() and "VERSION:4.0" in vcf.decode(), vcf


def test_address_book_export_creates_and_remembers(srv, radicale):
    # The book is empty; an import leaves the state an export needs.
    expect_response(run(srv, "import-profile", "e-0", "exp", target="address-book"), "success", 200)
    r = srv.client(ALICE).put(doc_path(AB, ALICE), LOCAL_AB, AB_TYPE)
    assert r.status in (200, 201), r.describe()
    resp = run(srv, "export-profile", "e-1", "exp", target="address-book")
    expect_response(resp, "success", 200)
    assert "1 cards created" in text(resp, "reason"), text(resp, "reason")
    cs = {c.get("id"): c for c in contacts(srv)}
    src = cs["mine-1"].find(f"{{{AB_NS}}}source")
    assert src is not None and src.text == "dav" and src.get("href") and src.get("etag"), etree.tostring(cs["mine-1"])
    st, _, vcf = radicale.request("GET", src.get("href"), user="exp")
    assert st == 200 and "Made By Alice" in vcf.decode(), vcf
    # The other source's contact was not sent.
    st, _, listing = radicale.request("PROPFIND", "/exp/book/", user="exp", headers={"Depth": "1"})
    assert listing.count(b".vcf") == 1, listing

    # An import finds the card again: no second contact for it.
    expect_response(run(srv, "import-profile", "e-2", "exp", target="address-book"), "success", 200)
    assert len(by_uid(contacts(srv))) == 1
    # The user deletes the contact; the next export deletes its card.
    client = srv.client(ALICE)
    r = expect(client.get(doc_path(AB, ALICE)), 200)
    root = etree.fromstring(r.body)
    for c in root.xpath("/ab:address-book/ab:contact[@id='mine-1']", namespaces=NS):
        root.remove(c)
    expect(client.put(doc_path(AB, ALICE), etree.tostring(root, xml_declaration=True, encoding="UTF-8"), AB_TYPE,
                      headers={"If-Match": r.header("ETag")}), 200)
    resp = run(srv, "export-profile", "e-3", "exp", target="address-book")
    expect_response(resp, "success", 200)
    assert "1 deleted" in text(resp, "reason"), text(resp, "reason")
    st, _, _ = radicale.request("GET", src.get("href"), user="exp")
    assert st == 404, st


def test_subscribers_get_notifies_of_both_imports(srv, radicale):
    srv.sip = sip_port(srv)
    sub = Subscriber(srv.sip, aor=ALICE)
    try:
        pcc_sel = f"{PCC}/users/{ALICE}/index"
        ab_sel = f"{AB}/users/{ALICE}/index"
        resp = sub.subscribe(rl_body(f"/xcap-root/{pcc_sel}", f"/xcap-root/{ab_sel}"))
        assert resp.status == 200, resp
        sub.notify()  # the initial state
        sub.inbox.clear()
        expect_response(run(srv, "import-profile", "n-1", "notif", target="address-book"), "success", 200)
        n = sub.wait(lambda m: m.method == "NOTIFY" and any(d.get("sel") == ab_sel for d in m.documents()),
                     timeout=10, what="NOTIFY of the Address Book")
        assert n is not None
        expect_response(run(srv, "import-profile", "n-2", "notif", remote_user="card-0001"), "success", 200)
        sub.wait(lambda m: m.method == "NOTIFY" and any(d.get("sel") == pcc_sel for d in m.documents()),
                 timeout=10, what="NOTIFY of the PCC")
    finally:
        sub.close()


def put_ab(srv, body):
    client = srv.client(ALICE)
    r = client.get(doc_path(AB, ALICE))
    h = {"If-Match": r.header("ETag")} if r.status == 200 else {}
    r = client.put(doc_path(AB, ALICE), body, AB_TYPE, headers=h)
    assert r.status in (200, 201), r.describe()


def test_address_book_export_finds_a_card_its_contact_forgot(srv, radicale):
    expect_response(run(srv, "import-profile", "u-0", "dup", target="address-book"), "success", 200)
    put_ab(srv, LOCAL_AB)
    resp = run(srv, "export-profile", "u-1", "dup", target="address-book")
    expect_response(resp, "success", 200)
    assert "1 cards created" in text(resp, "reason"), text(resp, "reason")
    href = {c.get("id"): c for c in contacts(srv)}["mine-1"].find(f"{{{AB_NS}}}source").get("href")
    # The state an export leaves when its last Address Book write fails:
    # the card exists, the contact does not know it.
    put_ab(srv, LOCAL_AB)
    resp = run(srv, "export-profile", "u-2", "dup", target="address-book")
    expect_response(resp, "success", 200)
    src = {c.get("id"): c for c in contacts(srv)}["mine-1"].find(f"{{{AB_NS}}}source")
    assert src is not None and src.get("href") == href, etree.tostring(src)
    st, _, listing = radicale.request("PROPFIND", "/dup/book/", user="dup", headers={"Depth": "1"})
    assert st == 207 and listing.count(b".vcf") == 1, listing
    st, _, vcf = radicale.request("GET", href, user="dup")
    assert st == 200 and vcf.count(b"BEGIN:VCARD") == 1 and b"Made By Alice" in vcf, vcf


def test_a_photo_removed_from_a_contact_is_removed_from_its_card(srv, radicale):
    expect_response(run(srv, "import-profile", "ph-1", "pho", target="address-book"), "success", 200)
    client = srv.client(ALICE)
    r = expect(client.get(doc_path(AB, ALICE)), 200)
    root = etree.fromstring(r.body)
    mine = by_uid(root.xpath("/ab:address-book/ab:contact", namespaces=NS))
    assert mine["card-0007"].xpath(".//pcc:media-url/text()", namespaces=NS)[0].startswith("data:image/png")
    assert not mine["big"].xpath(".//pcc:media-url", namespaces=NS), "a large photo stays at the 3rd party"
    for ml in mine["card-0007"].xpath(".//pcc:media-list", namespaces=NS):
        ml.getparent().remove(ml)
    expect(client.put(doc_path(AB, ALICE), etree.tostring(root, xml_declaration=True, encoding="UTF-8"), AB_TYPE,
                      headers={"If-Match": r.header("ETag")}), 200)
    resp = run(srv, "export-profile", "ph-2", "pho", target="address-book")
    expect_response(resp, "success", 200)
    st, _, vcf = radicale.request("GET", "/pho/book/card-0007.vcf", user="pho")
    assert st == 200 and b"FN:Hana M" in vcf and b"PHOTO" not in vcf, vcf
    # The photo the contact never held is kept.
    st, _, vcf = radicale.request("GET", "/pho/book/big.vcf", user="pho")
    assert st == 200 and b"PHOTO" in vcf and b"FN:Big Photo" in vcf, vcf


def test_cards_over_the_caps_are_named_and_the_rest_stored(srv):
    # One card over the card cap (256 KiB), one whose photo alone is over it.
    resp = run(srv, "import-profile", "c-1", "caps", target="address-book")
    expect_response(resp, "partial-success", 206)
    reason = text(resp, "reason")
    assert "2 cards refused" in reason and "long-note" in reason and "huge-photo" in reason, reason
    assert "over the limit" in reason, reason
    assert sorted(by_uid(contacts(srv))) == ["card-0000", "card-0001", "card-0002"]


def test_a_book_of_1000_cards(start_server, radicale):
    # Radicale reads every card of a book it has not seen yet before it
    # answers the first sync (seconds on a busy machine): a longer timeout.
    srv = start_server(settings=dict(FAST, **{"iwf.timeout": "120"}))
    add_adapter(srv, "dav", "carddav", radicale.url("/"), "--plain-http-loopback", "true")
    resp = run(srv, "import-profile", "m-1", "many", target="address-book")
    expect_response(resp, "success", 200)
    assert text(resp, "imported-count") == "1000", etree.tostring(resp)
    mine = by_uid(contacts(srv))
    assert len(mine) == 1000 and len({c.get("id") for c in mine.values()}) == 1000
    # Discovery, one sync-collection, and multigets of 50 cards each.
    asked = int(re.search(r"(\d+) requests", text(resp, "reason")).group(1))
    assert asked <= 5 + 1000 // 50, text(resp, "reason")
    assert display_names(mine["card-0999"]) == ["José Dubois 999"]


PAUSE_ENV = "XDMSD_TEST_PAUSE_BEFORE_CARD_PUT_MS"


def wait_pause(srv, attempt, seen):
    """Waits until xdmsd pauses before its PUT of @attempt for the
    (@seen + 1)th time, as its log says."""
    mark = f"before writing the card, attempt {attempt} "
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if srv.log_path.read_text(errors="replace").count(mark) > seen:
            return
        time.sleep(0.02)
    raise AssertionError(f"xdmsd did not pause before attempt {attempt}")


def test_pcc_export_meets_a_card_changed_meanwhile(start_server, radicale):
    srv = start_server(settings=FAST, env={PAUSE_ENV: "2500"})
    add_adapter(srv, "dav", "carddav", radicale.url("/"), "--plain-http-loopback", "true")
    expect_response(run(srv, "import-profile", "r-1", "race", xui=BOB), "success", 200)
    pcc = expect(srv.client(BOB).get(doc_path(PCC, BOB)), 200).body
    expect(srv.client(BOB).put_doc(PCC, BOB, pcc.replace(b"Rae Racer", b"Rae Exported")), 200)

    # A phone changes the card between xdmsd's read and its PUT: 412, read
    # again, merged (the phone's NOTE, our name), written.
    submit(srv, "export-profile", "r-2", "race", xui=BOB)
    wait_pause(srv, 1, 0)
    st, _, _ = radicale.request("PUT", "/race/book/race.vcf", race_card("changed by the phone").encode(), user="race",
                                headers={"Content-Type": "text/vcard; charset=utf-8"})
    assert st in (200, 201, 204), st
    resp, _ = wait_response(srv.client(BOB), BOB, "r-2", timeout=60)
    expect_response(resp, "success", 200)
    wait_pause(srv, 2, 0)  # the second attempt ran
    st, _, vcf = radicale.request("GET", "/race/book/race.vcf", user="race")
    assert st == 200 and b"FN:Rae Exported" in vcf and b"NOTE:changed by the phone" in vcf, vcf

    # Changed again before the second PUT too: 409, and the phone's card stays.
    submit(srv, "export-profile", "r-3", "race", xui=BOB)
    for attempt, note in ((1, "first change"), (2, "second change")):
        wait_pause(srv, attempt, 1)
        st, _, _ = radicale.request("PUT", "/race/book/race.vcf", race_card(note).encode(), user="race",
                                    headers={"Content-Type": "text/vcard; charset=utf-8"})
        assert st in (200, 201, 204), st
    resp, _ = wait_response(srv.client(BOB), BOB, "r-3", timeout=60)
    expect_response(resp, "failure", 409)
    assert "kept changing" in text(resp, "reason"), text(resp, "reason")
    st, _, vcf = radicale.request("GET", "/race/book/race.vcf", user="race")
    assert st == 200 and b"NOTE:second change" in vcf and b"FN:Rae Racer" in vcf, vcf
