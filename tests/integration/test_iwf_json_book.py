# SPDX-License-Identifier: MIT
"""Address books from JSON REST 3rd parties (SPEC section 4.3a with the http
kind, format json): a People-API-shaped connections list and a Graph-shaped
contacts collection on loopback (jsonapi.py), with the shipped worked
adapters (xslt/people-api-book-*.xsl, xslt/graph-book-*.xsl). One contact
per remote contact; a re-import uses the sync token or delta link and
changes only what changed; contacts the user made are never touched; export
creates, updates and deletes remote items; a contact that cannot be mapped
is named in a 206; bad JSON stores nothing; subscribers get the NOTIFY."""

import json
import time
import urllib.parse

import pytest
from lxml import etree

from iwflib import NS, add_adapter, expect_response, fh_doc, request_xml, response_of, text, wait_for, wait_response
from jsonapi import CLIENT_ID, CLIENT_SECRET, GRAPH_BOOK, PEOPLE_BOOK, ThirdParty
from sipua import Subscriber, rl_body
from xdmslib import ALICE, FH, doc_path, expect, sip_port

AB = "org.openmobilealliance.cab-address-book"
AB_NS = "urn:oma:xml:cab:address-book"
NS = dict(NS, ab=AB_NS)
FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
        "iwf.max_response": "65536", "log.level": "debug"}
REFRESH = "1//0gRt-alice-book-refresh-51d0"
PEOPLE_FIELDS = "names,emailAddresses,phoneNumbers,addresses,organizations,birthdays"


def people_person(given, family, email=None, phone=None, org=None, bday=None):
    p = {"names": [{"displayName": f"{given} {family}", "givenName": given, "familyName": family}]}
    if email:
        p["emailAddresses"] = [{"value": email, "type": "work"}]
    if phone:
        p["phoneNumbers"] = [{"value": phone, "type": "mobile"}]
    if org:
        p["organizations"] = [{"name": org, "title": "Engineer"}]
    if bday:
        y, m, d = bday
        p["birthdays"] = [{"date": {"year": y, "month": m, "day": d}}]
    return p


def graph_contact(given, surname, email=None, mobile=None, company=None, birthday=None):
    c = {"givenName": given, "surname": surname, "displayName": f"{given} {surname}",
         "emailAddresses": [{"address": email, "name": f"{given} {surname}"}] if email else [],
         "businessPhones": [], "homePhones": []}
    if mobile:
        c["mobilePhone"] = mobile
    if company:
        c["companyName"] = company
        c["jobTitle"] = "Engineer"
    if birthday:
        c["birthday"] = birthday + "T00:00:00Z"
    return c


@pytest.fixture
def tp():
    t = ThirdParty().start()
    t.add_refresh_token(REFRESH)
    yield t
    t.stop()


def people_book_adapter(srv, tp, aid="pbook", *extra):
    add_adapter(srv, aid, "http",
                tp.url(f"{PEOPLE_BOOK}/people/me/connections?personFields={PEOPLE_FIELDS},photos"
                       "&requestSyncToken=true"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-page-token", "/nextPageToken", "--page-token-param", "pageToken",
                "--sync-token", "/nextSyncToken", "--sync-token-param", "syncToken",
                "--import-xslt", "people-api-book-import.xsl", "--export-xslt", "people-api-book-export.xsl",
                "--book-create-url", tp.url(f"{PEOPLE_BOOK}/people:createContact"),
                "--book-item-url", tp.url(f"{PEOPLE_BOOK}/{{id}}:updateContact?updatePersonFields={PEOPLE_FIELDS}"),
                "--book-delete-url", tp.url(f"{PEOPLE_BOOK}/{{id}}:deleteContact"),
                "--book-id", "/resourceName", "--book-etag", "/etag", *extra, check=0)


def graph_book_adapter(srv, tp, aid="gbook", *extra):
    add_adapter(srv, aid, "http", tp.url(f"{GRAPH_BOOK}/delta"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-link", "/@odata.nextLink", "--delta-link", "/@odata.deltaLink",
                "--import-xslt", "graph-book-import.xsl", "--export-xslt", "graph-book-export.xsl",
                "--book-create-url", tp.url(GRAPH_BOOK), "--book-item-url", tp.url(f"{GRAPH_BOOK}/{{id}}"),
                "--book-id", "/id", "--book-etag", "/@odata.etag", "--book-if-match", "true", *extra, check=0)


@pytest.fixture
def srv(start_server, tp):
    s = start_server(name="jbook", settings=dict(FAST, **{"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"}))
    for aid in ("pbook", "gbook", "pbook-w", "gbook-w"):
        s.ctl("credential", "set", "--adapter", aid, "--client-secret", CLIENT_SECRET, check=0)
    people_book_adapter(s, tp)
    graph_book_adapter(s, tp)
    # The same, polled every second by subscribe-profile watches.
    people_book_adapter(s, tp, "pbook-w", "--poll-interval", "1")
    graph_book_adapter(s, tp, "gbook-w", "--poll-interval", "1")
    return s


def run(srv, kind, rid, adapter, **kw):
    alice = srv.client(ALICE)
    put = alice.put_doc(FH, ALICE, fh_doc(request_xml(kind, rid, adapter, token=REFRESH, target="address-book",
                                                      **kw)))
    assert put.status in (200, 201), put.describe()
    resp, body = wait_response(alice, ALICE, rid)
    assert b"<token" not in body, body
    return resp


def book(srv):
    r = srv.client(ALICE).get(doc_path(AB, ALICE))
    return (etree.fromstring(r.body), r.etag) if r.status == 200 else (None, None)


def contacts(srv, source=None):
    doc, _ = book(srv)
    if doc is None:
        return []
    cs = doc.xpath("ab:contact", namespaces=NS)
    if source is not None:
        cs = [c for c in cs if (c.findtext(f"{{{AB_NS}}}source") or "").strip() == source]
    return cs


def by_href(cs):
    return {c.find(f"{{{AB_NS}}}source").get("href"): c for c in cs}


def values(c, xpath):
    return c.xpath(xpath, namespaces=NS)


def put_book(srv, doc, etag):
    r = srv.client(ALICE).put(doc_path(AB, ALICE), etree.tostring(doc, xml_declaration=True, encoding="UTF-8"),
                              "application/vnd.oma.cab-address-book+xml", headers={"If-Match": etag})
    assert r.status in (200, 201), r.describe()


def add_own_contacts(srv):
    """A contact the user made (no <source>) and one of another source."""
    doc, etag = book(srv)
    for cid, source, name in (("mine-1", None, "Made Locally"), ("other-1", "somewhere-else", "Other Source")):
        c = etree.SubElement(doc, f"{{{AB_NS}}}contact", id=cid)
        if source:
            etree.SubElement(c, f"{{{AB_NS}}}source").text = source
        pd = etree.SubElement(c, "{urn:oma:xml:cab:pcc}person-details")
        ne = etree.SubElement(etree.SubElement(pd, "{urn:oma:xml:cab:pcc}name"), "{urn:oma:xml:cab:pcc}name-entry")
        etree.SubElement(ne, "{urn:oma:xml:cab:pcc}display-name").text = name
    put_book(srv, doc, etag)


def snapshot(c):
    return etree.tostring(c, method="c14n")


def test_people_import_then_only_changes(srv, tp):
    st = tp.people_book
    bob = st.put(None, people_person("Bob", "Builder", "bob@example.com", "+1 555 0100", "Example Corp",
                                     (1980, 2, 29)))
    carol = st.put(None, people_person("Carol", "Jones", "carol@example.com", "+15550101"))
    dave = st.put(None, people_person("Dave", "Lee", phone="+15550102"))

    resp = expect_response(run(srv, "import-profile", "p-1", "pbook"), "success", 200)
    assert "3 contacts added" in text(resp, "reason"), etree.tostring(resp)
    cs = by_href(contacts(srv, "pbook"))
    assert set(cs) == {f"people/{bob}", f"people/{carol}", f"people/{dave}"}
    b = cs[f"people/{bob}"]
    assert b.find(f"{{{AB_NS}}}source").get("etag") == st.etag(bob)
    assert values(b, ".//pcc:given/text()") == ["Bob"]
    assert values(b, ".//pcc:family/text()") == ["Builder"]
    assert values(b, ".//pcc:tel-string/text()") == ["tel:+15550100"]
    assert values(b, ".//pcc:tel/@tel-type") == ["Mobile"]
    assert values(b, ".//pcc:addr-uri/text()") == ["mailto:bob@example.com"]
    assert values(b, ".//pcc:employer/text()") == ["Example Corp"]
    assert values(b, ".//pcc:duty/text()") == ["Engineer"]
    assert values(b, ".//pcc:birth-date/pcc:date/text()") == ["1980-02-29"]
    # Three contacts at two a page: two pages, no sync token yet.
    got = [r[1] for r in st.requests]
    assert len(got) == 2 and "pageToken=2" in got[1] and "syncToken" not in got[0], got

    add_own_contacts(srv)
    own = {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in ("mine-1", "other-1")}
    before = {h: snapshot(c) for h, c in by_href(contacts(srv, "pbook")).items()}

    # Carol's number changes, Dave goes; the re-import asks for the changes only.
    st.put(carol, people_person("Carol", "Jones", "carol@example.com", "+15550199"))
    st.delete(dave)
    resp = expect_response(run(srv, "import-profile", "p-2", "pbook"), "success", 200)
    reason = text(resp, "reason")
    assert "0 contacts added, 1 updated, 1 removed" in reason and "sync-token" in reason, reason
    assert "syncToken=sync-3" in st.requests[2][1], st.requests
    cs = by_href(contacts(srv, "pbook"))
    assert set(cs) == {f"people/{bob}", f"people/{carol}"}
    assert values(cs[f"people/{carol}"], ".//pcc:tel-string/text()") == ["tel:+15550199"]
    assert snapshot(cs[f"people/{bob}"]) == before[f"people/{bob}"]
    assert {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in own} == own

    # Nothing changed since: nothing stored, the newest token used.
    _, etag = book(srv)
    resp = expect_response(run(srv, "import-profile", "p-3", "pbook"), "success", 200)
    assert "0 contacts added, 0 updated, 0 removed" in text(resp, "reason"), etree.tostring(resp)
    assert book(srv)[1] == etag
    assert "syncToken=sync-5" in st.requests[-1][1], st.requests


def test_graph_import_then_delta(srv, tp):
    st = tp.graph_book
    ids = [st.put(None, graph_contact("Erin", "Stone", "erin@example.org", "+44 20 7946 0001", "Contoso",
                                      "1990-07-01")),
           st.put(None, graph_contact("Frank", "Moss", "frank@example.org")),
           st.put(None, graph_contact("Gina", "Ray", mobile="+442079460003"))]

    resp = expect_response(run(srv, "import-profile", "g-1", "gbook"), "success", 200)
    assert "3 contacts added" in text(resp, "reason"), etree.tostring(resp)
    cs = by_href(contacts(srv, "gbook"))
    assert set(cs) == set(ids)
    e = cs[ids[0]]
    assert e.find(f"{{{AB_NS}}}source").get("etag") == st.etag(ids[0])
    assert values(e, ".//pcc:display-name/text()") == ["Erin Stone"]
    assert values(e, ".//pcc:tel-string/text()") == ["tel:+442079460001"]
    assert values(e, ".//pcc:addr-uri/text()") == ["mailto:erin@example.org"]
    assert values(e, ".//pcc:employer/text()") == ["Contoso"]
    assert values(e, ".//pcc:birth-date/pcc:date/text()") == ["1990-07-01"]
    got = [r[1] for r in st.requests]
    assert len(got) == 2 and "%24skiptoken=2" in got[1], got

    add_own_contacts(srv)
    own = {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in ("mine-1", "other-1")}
    frank = snapshot(cs[ids[1]])
    st.put(ids[0], graph_contact("Erin", "Stone-Hill", "erin@example.org"))
    st.delete(ids[2])
    resp = expect_response(run(srv, "import-profile", "g-2", "gbook"), "success", 200)
    reason = text(resp, "reason")
    assert "0 contacts added, 1 updated, 1 removed" in reason and "sync-token" in reason, reason
    assert "%24deltatoken=3" in st.requests[2][1], st.requests
    cs = by_href(contacts(srv, "gbook"))
    assert set(cs) == set(ids[:2])
    assert values(cs[ids[0]], ".//pcc:family/text()") == ["Stone-Hill"]
    assert snapshot(cs[ids[1]]) == frank
    assert {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in own} == own


def test_expired_sync_token_means_a_full_listing(srv, tp):
    st = tp.people_book
    st.put(None, people_person("Hal", "North", "hal@example.com"))
    expect_response(run(srv, "import-profile", "x-1", "pbook"), "success", 200)
    tp.expired_sync.add(f"sync-{st.seq}")
    st.put(None, people_person("Ida", "West", "ida@example.com"))
    resp = expect_response(run(srv, "import-profile", "x-2", "pbook"), "success", 200)
    assert "1 contacts added" in text(resp, "reason"), etree.tostring(resp)
    assert len(contacts(srv, "pbook")) == 2


def test_a_contact_without_a_name_is_named_in_a_206(srv, tp):
    st = tp.people_book
    good = st.put(None, people_person("Jo", "March", "jo@example.com"))
    bad = st.put(None, {"phoneNumbers": [{"value": "+15550111"}], "names": []})
    resp = expect_response(run(srv, "import-profile", "b-1", "pbook"), "partial-success", 206)
    reason = text(resp, "reason")
    assert "1 card refused" in reason and bad in reason and "no xCard" in reason, reason
    assert set(by_href(contacts(srv, "pbook"))) == {f"people/{good}"}


@pytest.mark.parametrize("page, code, what", [
    (b'{"connections": [{"resourceName": "people/c1", ', 502, "unusable JSON"),
    (b'{"connections": ' + b"[" * 200 + b"]" * 200 + b"}", 413, "nested deeper"),
    (b'{"connections": [{"resourceName": "people/\xff\xfe"}]}', 502, "unusable JSON"),
], ids=["truncated", "deep", "not-utf8"])
def test_bad_json_stores_nothing(srv, tp, page, code, what):
    tp.people_book.put(None, people_person("Kim", "Park", "kim@example.com"))
    tp.bad_page = page
    resp = expect_response(run(srv, "import-profile", "j-1", "pbook"), "failure", code)
    assert what in text(resp, "reason"), etree.tostring(resp)
    assert book(srv) == (None, None)
    # The next import, with good JSON, stores.
    expect_response(run(srv, "import-profile", "j-2", "pbook"), "success", 200)
    assert len(contacts(srv, "pbook")) == 1


def edit_tel(srv, href, tel):
    doc, etag = book(srv)
    c = by_href(doc.xpath("ab:contact[ab:source]", namespaces=NS))[href]
    values(c, ".//pcc:tel-string")[0].text = tel
    put_book(srv, doc, etag)


def delete_contact(srv, href):
    doc, etag = book(srv)
    c = by_href(doc.xpath("ab:contact[ab:source]", namespaces=NS))[href]
    doc.remove(c)
    put_book(srv, doc, etag)


def writes(tp, method):
    return [r for r in tp.received if r[0] == method]


def test_people_export_creates_updates_deletes(srv, tp):
    st = tp.people_book
    bob = st.put(None, people_person("Bob", "Builder", "bob@example.com", "+15550100"))
    carol = st.put(None, people_person("Carol", "Jones", "carol@example.com", "+15550101"))
    expect_response(run(srv, "import-profile", "e-0", "pbook"), "success", 200)
    add_own_contacts(srv)
    edit_tel(srv, f"people/{bob}", "tel:+15550177")

    resp = expect_response(run(srv, "export-profile", "e-1", "pbook"), "success", 200)
    assert "1 cards created, 2 updated, 0 deleted" in text(resp, "reason"), etree.tostring(resp)
    created = writes(tp, "POST")
    assert len(created) == 1 and created[0][1] == f"{PEOPLE_BOOK}/people:createContact"
    assert created[0][2] == "application/json"
    body = json.loads(created[0][3])
    assert body["names"][0]["displayName"] == "Made Locally" and "resourceName" not in body, body
    new = [cid for cid in st.items if cid not in (bob, carol)]
    assert len(new) == 1 and st.items[new[0]]["names"][0]["displayName"] == "Made Locally"
    # Bob's new number reached the 3rd party, with the etag People wants.
    patch = [r for r in writes(tp, "PATCH") if f"/people/{bob}:updateContact" in r[1]]
    assert patch and json.loads(patch[0][3])["etag"] == "%EgUBAj0001=", patch
    assert st.items[bob]["phoneNumbers"][0]["value"] == "+15550177"
    assert st.items[bob]["phoneNumbers"][0]["type"] == "mobile"
    # The user's contact now remembers its remote item; the other source's is not sent.
    mine = [c for c in contacts(srv) if c.get("id") == "mine-1"][0]
    src = mine.find(f"{{{AB_NS}}}source")
    assert src.text == "pbook" and src.get("href") == f"people/{new[0]}" and src.get("etag") == st.etag(new[0])
    assert not any(b"Other Source" in r[3] for r in tp.received)

    # A contact deleted here, unchanged there since the last import, is deleted there.
    expect_response(run(srv, "import-profile", "e-2", "pbook"), "success", 200)
    delete_contact(srv, f"people/{carol}")
    resp = expect_response(run(srv, "export-profile", "e-3", "pbook"), "success", 200)
    assert "0 cards created, 2 updated, 1 deleted" in text(resp, "reason"), etree.tostring(resp)
    assert [r[1] for r in writes(tp, "DELETE")] == [f"{PEOPLE_BOOK}/people/{carol}:deleteContact"]
    assert carol not in st.items and bob in st.items


def test_graph_export_with_if_match(srv, tp):
    st = tp.graph_book
    erin = st.put(None, graph_contact("Erin", "Stone", "erin@example.org", "+442079460001"))
    frank = st.put(None, graph_contact("Frank", "Moss", "frank@example.org"))
    expect_response(run(srv, "import-profile", "ge-0", "gbook"), "success", 200)
    add_own_contacts(srv)
    edit_tel(srv, erin, "tel:+442079469999")
    resp = expect_response(run(srv, "export-profile", "ge-1", "gbook"), "success", 200)
    assert "1 cards created, 2 updated, 0 deleted" in text(resp, "reason"), etree.tostring(resp)
    assert st.items[erin]["mobilePhone"] == "+442079469999"
    posted = json.loads(writes(tp, "POST")[0][3])
    assert posted["displayName"] == "Made Locally", posted
    assert any(c.get("displayName") == "Made Locally" for c in st.items.values())

    # Changed at the 3rd party since: the If-Match fails, re-read, written again.
    st.put(frank, graph_contact("Frank", "Moss", "frank@example.org", "+442079460002"))
    resp = expect_response(run(srv, "export-profile", "ge-2", "gbook"), "success", 200)
    assert "0 in conflict" in text(resp, "reason"), etree.tostring(resp)
    statuses = [r for r in writes(tp, "PATCH") if urllib.parse.unquote(r[1]).endswith(frank)]
    assert len(statuses) >= 3, statuses

    expect_response(run(srv, "import-profile", "ge-3", "gbook"), "success", 200)
    delete_contact(srv, frank)
    resp = expect_response(run(srv, "export-profile", "ge-4", "gbook"), "success", 200)
    assert "1 deleted" in text(resp, "reason"), etree.tostring(resp)
    assert frank not in st.items and erin in st.items


def test_subscriber_gets_the_notify(srv, tp):
    tp.people_book.put(None, people_person("Lou", "Reed", "lou@example.com"))
    srv.sip = sip_port(srv)
    sub = Subscriber(srv.sip, aor=ALICE)
    try:
        ab_sel = f"{AB}/users/{ALICE}/index"
        resp = sub.subscribe(rl_body(f"/xcap-root/{ab_sel}"))
        assert resp.status == 200, resp
        sub.notify()  # the initial state
        sub.inbox.clear()
        expect_response(run(srv, "import-profile", "n-1", "pbook"), "success", 200)
        n = sub.wait(lambda m: m.method == "NOTIFY" and any(d.get("sel") == ab_sel for d in m.documents()),
                     timeout=10, what="NOTIFY of the Address Book")
        assert n is not None
    finally:
        sub.close()


def test_xml_http_adapter_still_holds_no_address_books(srv, tp):
    add_adapter(srv, "plain", "http", tp.url("/raw/x"), "--import-xslt", "vendor-example-import.xsl",
                "--export-xslt", "vendor-example-export.xsl", check=0)
    resp = run(srv, "import-profile", "x-9", "plain")
    assert text(resp, "reason") and "holds no address books" in text(resp, "reason"), etree.tostring(resp)


def test_an_id_that_would_leave_the_item_path_is_refused(srv, tp):
    st = tp.graph_book
    ok = st.put(None, graph_contact("Max", "Ok", "max@example.org"))
    st.put("../../../oauth2/token", graph_contact("Eve", "Path", "eve@example.org"))
    expect_response(run(srv, "import-profile", "i-1", "gbook"), "success", 200)
    assert set(by_href(contacts(srv, "gbook"))) == {ok, "../../../oauth2/token"}
    resp = expect_response(run(srv, "export-profile", "i-2", "gbook"), "partial-success", 206)
    assert "1 updated" in text(resp, "reason") and "1 refused" in text(resp, "reason"), etree.tostring(resp)
    assert [urllib.parse.unquote(r[1]) for r in writes(tp, "PATCH")] == [f"{GRAPH_BOOK}/{ok}"]
    assert not tp.api_calls("/oauth2/token") and tp.grants == [REFRESH]


# ---- subscribe-profile: the address book kept up to date ---------------------------------------

def subscribe_book(srv, adapter, rid="w-1", expires=600):
    xml = request_xml("subscribe-profile", rid, adapter, token=REFRESH, target="address-book")
    xml = xml.replace("</subscribe-profile>", f"<expires>{expires}</expires></subscribe-profile>")
    expect(srv.client(ALICE).put_doc(FH, ALICE, fh_doc(xml)), 201)
    resp, body = wait_response(srv.client(ALICE), ALICE, rid)
    assert b"<token" not in body, "the refresh token is still in the document"
    return resp


def response_now(srv, rid="w-1"):
    return response_of(expect(srv.client(ALICE).get(doc_path(FH, ALICE)), 200).body, rid)


def wait_seq(srv, seq, rid="w-1"):
    def at_seq():
        r = response_now(srv, rid)
        return [r] if r is not None and int(r.get("seq", "0")) >= seq else None
    return wait_for(at_seq, f"<response> seq {seq}")[0]


def reads_with(st, needle):
    return [q for _, q in st.requests if needle in urllib.parse.unquote(q)]


@pytest.mark.parametrize("shape", ["people", "graph"])
def test_address_book_watch_imports_only_what_changed(srv, tp, shape):
    if shape == "people":
        st, adapter, token_of = tp.people_book, "pbook-w", (lambda: f"syncToken=sync-{st.seq}")
        a = st.put(None, people_person("Bob", "Builder", "bob@example.com", "+15550100"))
        b = st.put(None, people_person("Carol", "Jones", "carol@example.com", "+15550101"))
        href = lambda cid: f"people/{cid}"  # noqa: E731
    else:
        st, adapter, token_of = tp.graph_book, "gbook-w", (lambda: f"$deltatoken={st.seq}")
        a = st.put(None, graph_contact("Erin", "Stone", "erin@example.org", "+442079460001"))
        b = st.put(None, graph_contact("Frank", "Moss", "frank@example.org"))
        href = lambda cid: cid  # noqa: E731
    resp = expect_response(subscribe_book(srv, adapter), "success", 200)
    assert resp.get("seq") == "1" and "2 contacts added" in text(resp, "reason"), etree.tostring(resp)
    assert set(by_href(contacts(srv, adapter))) == {href(a), href(b)}
    add_own_contacts(srv)
    own = {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in ("mine-1", "other-1")}
    # Nothing changed: each poll is one delta read with the stored token, and
    # writes nothing.
    _, etag = book(srv)
    wait_for(lambda: len(reads_with(st, token_of())) >= 2, "two delta polls")
    assert response_now(srv).get("seq") == "1" and book(srv)[1] == etag
    # One contact changed and one deleted at the 3rd party: seq 2, two
    # contacts changed, the user's own contacts untouched.
    if shape == "people":
        st.put(b, people_person("Carol", "Jones", "carol@example.com", "+15550199"))
    else:
        st.put(b, graph_contact("Frank", "Moss-Hill", "frank@example.org"))
    st.delete(a)
    resp = wait_seq(srv, 2)
    expect_response(resp, "success", 200)
    assert text(resp, "imported-count") == "2", etree.tostring(resp)
    cs = by_href(contacts(srv, adapter))
    assert set(cs) == {href(b)}
    if shape == "people":
        assert values(cs[href(b)], ".//pcc:tel-string/text()") == ["tel:+15550199"]
    else:
        assert values(cs[href(b)], ".//pcc:family/text()") == ["Moss-Hill"]
    assert {c.get("id"): snapshot(c) for c in contacts(srv) if c.get("id") in own} == own
    # Quiet again: more polls from the newest token, no new seq; the access
    # token was granted once and reused by every poll.
    wait_for(lambda: len(reads_with(st, token_of())) >= 2, "two polls from the newest token")
    assert response_now(srv).get("seq") == "2"
    assert tp.grants == [REFRESH]
    log = srv.log_path.read_bytes()
    assert REFRESH.encode() not in log and b"ya29." not in log


def test_address_book_watch_ends_when_the_request_is_deleted(srv, tp):
    st = tp.people_book
    st.put(None, people_person("Hal", "North", "hal@example.com"))
    expect_response(subscribe_book(srv, "pbook-w"), "success", 200)
    wait_for(lambda: len(reads_with(st, "syncToken=")) >= 1, "a delta poll")
    expect(srv.client(ALICE).put_doc(FH, ALICE, fh_doc()), 200)
    time.sleep(1.5)  # let a poll that had started finish
    settled = len(st.requests)
    time.sleep(2.5)
    assert len(st.requests) == settled, st.requests[settled:]
