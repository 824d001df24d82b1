# SPDX-License-Identifier: MIT
"""subscribe-profile with a carddav adapter (SPEC §5.3 step 8, §4.3a): the
IWF polls Radicale on loopback every second and keeps the PCC (the user's
own card, by conditional GET) or the Address Book (from the stored
sync-token) up to date. Cards are changed at Radicale over CardDAV (PUT and
DELETE, as a phone would); every wait polls with a deadline.

One Radicale serves the module; each test has its own account and book."""

import time

import pytest
from lxml import etree

from davlib import Radicale, card, generated_book, radicale_available
from iwflib import add_adapter, expect_response, fh_doc, request_xml, response_of, text, wait_for, wait_response
from sipua import Subscriber, rl_body
from xdmslib import ALICE, FH, PCC, doc_path, expect, metric_sum, parse_metrics, sip_port

pytestmark = pytest.mark.skipif(not radicale_available(), reason="radicale is not installed")

AB = "org.openmobilealliance.cab-address-book"
AB_NS = "urn:oma:xml:cab:address-book"
PCC_NS = "urn:oma:xml:cab:pcc"
NS = {"ab": AB_NS, "pcc": PCC_NS}
FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "10",
        "sip.listen": "127.0.0.1:0", "sip.trust_from": "true"}
USERS = {"pcc": "pw-pcc", "book": "pw-book", "down": "pw-down", "end": "pw-end", "move": "pw-move"}
MKCOL_BOOK = (b'<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" '
              b'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/>'
              b'<C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>')


def own_card(tel="+15555550100", name="Owen Owner"):
    return card(["BEGIN:VCARD", "VERSION:3.0", "UID:own", f"FN:{name}", "N:Owner;Owen;;;",
                 f"TEL;TYPE=cell:{tel}", "END:VCARD"])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    r = Radicale(tmp_path_factory.mktemp("radicale"), USERS)
    r.add_book("pcc", "book", {"own.vcf": own_card(), **generated_book(2)})
    r.add_book("book", "book", generated_book(3))
    r.add_book("down", "book", generated_book(2))
    r.add_book("end", "book", {"own.vcf": own_card()})
    r.add_book("move", "old", generated_book(2))
    r.start()
    yield r
    r.stop()


def start(start_server, radicale, interval="1", **kw):
    s = start_server(settings=FAST, **kw)
    add_adapter(s, "dav", "carddav", radicale.url("/"), "--plain-http-loopback", "true", "--poll-interval",
                interval, check=0)
    return s


def subscribe(srv, account, rid="sub-1", expires=3600, **kw):
    req = request_xml("subscribe-profile", rid, "dav", username=account, password=USERS[account], **kw)
    req = req.replace("</subscribe-profile>", f"<expires>{expires}</expires></subscribe-profile>")
    client = srv.client(ALICE)
    expect(client.put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, _ = wait_response(client, ALICE, rid, timeout=60)
    return resp


def response(srv, rid="sub-1"):
    return response_of(expect(srv.client(ALICE).get(doc_path(FH, ALICE)), 200).body, rid)


def wait_seq(srv, seq, rid="sub-1", timeout=20.0):
    return wait_for(lambda: (lambda r: [r] if r is not None and int(r.get("seq", "0")) >= seq else None)(
        response(srv, rid)), f"<response> seq {seq}", timeout)[0]


def tels(srv):
    body = expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 200).body
    return etree.fromstring(body).xpath("//pcc:tel-string/text()", namespaces=NS)


def contacts(srv):
    """uid -> display names of the contacts that came from the adapter."""
    r = expect(srv.client(ALICE).get(doc_path(AB, ALICE)), 200)
    out = {}
    for c in etree.fromstring(r.body).xpath("/ab:address-book/ab:contact", namespaces=NS):
        src = c.find(f"{{{AB_NS}}}source")
        if src is not None and src.text == "dav":
            out[src.get("uid")] = c.xpath(".//pcc:display-name/text()", namespaces=NS)
    return out


def put(radicale, account, path, text):
    h = {"Content-Type": "text/vcard; charset=utf-8"}
    return radicale.request("PUT", path, text.encode("utf-8"), user=account, headers=h)[0]


def count(radicale, method, path):
    return sum(1 for m, p in radicale.requests() if m == method and p == path)


def test_pcc_watch_imports_changes_and_stops_when_deleted(start_server, radicale):
    srv = start(start_server, radicale)
    resp = subscribe(srv, "pcc", remote_user="own")
    expect_response(resp, "success", 200)
    assert resp.get("seq") == "1" and "polling every 1 s" in text(resp, "reason"), etree.tostring(resp)
    assert any("15555550100" in t for t in tels(srv))
    pcc_sel = f"{PCC}/users/{ALICE}/index"
    sub = Subscriber(sip_port(srv), aor=ALICE)
    try:
        assert sub.subscribe(rl_body(f"/xcap-root/{pcc_sel}")).status == 200
        sub.notify()
        sub.inbox.clear()
        # Each poll is one conditional GET of the card.
        wait_for(lambda: count(radicale, "GET", "/pcc/book/own.vcf") >= 2, "two conditional GETs of the card")
        assert response(srv).get("seq") == "1"
        # A change at Radicale reaches the PCC within the poll interval, and the PCC's subscriber.
        st = put(radicale, "pcc", "/pcc/book/own.vcf", own_card(tel="+15555550177"))
        assert st in (201, 204), st
        resp = wait_seq(srv, 2, timeout=10)
        expect_response(resp, "success", 200)
        assert any("15555550177" in t for t in tels(srv)), tels(srv)
        assert int(text(resp, "imported-count")) >= 1, etree.tostring(resp)
        sub.wait(lambda m: m.method == "NOTIFY" and any(d.get("sel") == pcc_sel for d in m.documents()),
                 timeout=10, what="a NOTIFY of the PCC")
    finally:
        sub.close()
    # Nothing changed since: more polls, no new seq.
    before = count(radicale, "GET", "/pcc/book/own.vcf")
    wait_for(lambda: count(radicale, "GET", "/pcc/book/own.vcf") >= before + 2, "two more polls")
    assert response(srv).get("seq") == "2"
    m = parse_metrics(expect(srv.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_watch_updates_total") == 1
    assert metric_sum(m, "xdms_iwf_watch_polls_total", result="unchanged") >= 2
    # The request deleted: at most a poll in flight, then no more requests.
    expect(srv.client(ALICE).put_doc(FH, ALICE, fh_doc()), 200)
    time.sleep(1.5)
    settled = len(radicale.requests())
    time.sleep(2.5)
    assert len(radicale.requests()) == settled, radicale.requests()[settled:]


def test_address_book_watch_adds_updates_and_removes(start_server, radicale):
    srv = start(start_server, radicale)
    resp = subscribe(srv, "book", remote_user="book", target="address-book")
    expect_response(resp, "success", 200)
    assert resp.get("seq") == "1", etree.tostring(resp)
    assert sorted(contacts(srv)) == ["card-0000", "card-0001", "card-0002"]
    ab_sel = f"{AB}/users/{ALICE}/index"
    sub = Subscriber(sip_port(srv), aor=ALICE)
    try:
        assert sub.subscribe(rl_body(f"/xcap-root/{ab_sel}")).status == 200
        sub.notify()
        sub.inbox.clear()
        # Nothing changed: each poll is a sync-collection REPORT, and writes nothing.
        wait_for(lambda: count(radicale, "REPORT", "/book/book/") >= 2, "two polls of the book")
        assert response(srv).get("seq") == "1"
        # One card changed: seq 2, one contact updated, a NOTIFY of the Address Book.
        changed = card(["BEGIN:VCARD", "VERSION:4.0", "UID:card-0001", "FN:Renamed Remotely",
                        "N:Remotely;Renamed;;;", "END:VCARD"])
        assert put(radicale, "book", "/book/book/card-0001.vcf", changed) in (201, 204)
        resp = wait_seq(srv, 2, timeout=10)
        expect_response(resp, "success", 200)
        assert text(resp, "imported-count") == "1", etree.tostring(resp)
        assert contacts(srv)["card-0001"] == ["Renamed Remotely"]
        sub.wait(lambda m: m.method == "NOTIFY" and any(d.get("sel") == ab_sel for d in m.documents()),
                 timeout=10, what="a NOTIFY of the Address Book")
    finally:
        sub.close()
    # A card deleted at Radicale: its contact goes (seq 3), the others stay.
    assert radicale.request("DELETE", "/book/book/card-0002.vcf", user="book")[0] in (200, 204)
    resp = wait_seq(srv, 3, timeout=10)
    assert text(resp, "imported-count") == "1", etree.tostring(resp)
    assert sorted(contacts(srv)) == ["card-0000", "card-0001"]
    # And nothing new after that: each poll is one sync-collection REPORT of
    # the book found at subscribe time (no discovery), and no new seq.
    reqs = len(radicale.requests())
    before = count(radicale, "REPORT", "/book/book/")
    wait_for(lambda: count(radicale, "REPORT", "/book/book/") >= before + 2, "two more polls")
    assert response(srv).get("seq") == "3"
    assert {m for m, _ in radicale.requests()[reqs:]} == {"REPORT"}, radicale.requests()[reqs:]


def test_change_made_while_killed_is_imported_after_start(start_server, radicale):
    # An hour between polls: only the start-up poll can find the change.
    srv = start(start_server, radicale, interval="3600")
    expect_response(subscribe(srv, "down", remote_user="down", target="address-book"), "success", 200)
    srv.kill9()
    added = card(["BEGIN:VCARD", "VERSION:3.0", "UID:while-down", "FN:Added While Down", "N:Down;Added;;;",
                  "END:VCARD"])
    assert put(radicale, "down", "/down/book/while-down.vcf", added) == 201
    srv.start()
    resp = wait_seq(srv, 2, timeout=30)
    expect_response(resp, "success", 200)
    assert contacts(srv)["while-down"] == ["Added While Down"]


def test_expiry_terminates_with_410_and_polling_stops(start_server, radicale):
    srv = start(start_server, radicale)
    expect_response(subscribe(srv, "end", remote_user="own", expires=2), "success", 200)
    resp = wait_for(lambda: (lambda r: [r] if r is not None and r.get("status") == "terminated" else None)(
        response(srv)), "a terminated <response>", timeout=15)[0]
    expect_response(resp, "terminated", 410)
    assert "expired" in text(resp, "reason"), etree.tostring(resp)
    before = count(radicale, "GET", "/end/book/own.vcf")
    time.sleep(2.5)
    assert count(radicale, "GET", "/end/book/own.vcf") == before


def test_address_book_of_a_kind_without_books_is_501(start_server, radicale):
    srv = start_server(settings=FAST)
    add_adapter(srv, "web", "xcap", radicale.url("/pcc/book/own.vcf"), check=0)
    req = request_xml("subscribe-profile", "sub-1", "web", remote_user="own", target="address-book")
    expect(srv.client(ALICE).put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, _ = wait_response(srv.client(ALICE), ALICE, "sub-1", timeout=30)
    expect_response(resp, "failure", 501)
    assert "holds no address books" in text(resp, "reason"), etree.tostring(resp)
    assert not [s for s in srv.ctl("subscriptions", check=0).stdout.decode().splitlines() if s]


def test_a_moved_book_is_found_again(start_server, radicale):
    srv = start(start_server, radicale)
    expect_response(subscribe(srv, "move", remote_user="move", target="address-book"), "success", 200)
    assert sorted(contacts(srv)) == ["card-0000", "card-0001"]
    # The book goes and another takes its place: the poll at the old URL
    # fails, the book is found again, and its cards replace the old ones.
    assert radicale.request("DELETE", "/move/old/", user="move")[0] in (200, 204)
    assert radicale.request("MKCOL", "/move/new/", MKCOL_BOOK, user="move",
                            headers={"Content-Type": "application/xml"})[0] == 201
    moved = card(["BEGIN:VCARD", "VERSION:3.0", "UID:moved", "FN:In The New Book", "N:Book;New;;;", "END:VCARD"])
    assert put(radicale, "move", "/move/new/moved.vcf", moved) == 201
    resp = wait_seq(srv, 2, timeout=15)
    expect_response(resp, "success", 200)
    assert contacts(srv) == {"moved": ["In The New Book"]}
    assert text(resp, "imported-count") == "3", etree.tostring(resp)
