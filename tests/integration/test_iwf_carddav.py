# SPDX-License-Identifier: MIT
"""The IWF against a real CardDAV server: Radicale on loopback with htpasswd
authentication, holding generated books (vCard 3.0 and 4.0, folded lines,
non-ASCII names, grouped properties, an inline photo, a card with an error).

One Radicale serves the whole module; each test uses its own Radicale
account and book, so the tests do not see each other's changes. The xdmsd
adapter points at the server root, so every job finds its book by RFC 6764
discovery (well-known URI, principal, address-book home)."""

import re

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

USERS = {"books": "pw-books", "own": "pw-own", "exp": "pw-exp", "notif": "pw-notif"}

# The card with an error: a charset no vCard reader has to know (RFC 2426
# allows only what the reader supports; the rest is refused, naming the line).
BAD = "card-0049.vcf"


def bad_card():
    return card(["BEGIN:VCARD", "VERSION:3.0", "UID:card-0049", "FN:Broken Charset", "N:Charset;Broken;;;",
                 "NOTE;CHARSET=SHIFT_JIS:\u3042", "END:VCARD"])


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
    r.start()
    yield r
    r.stop()


@pytest.fixture
def srv(start_server, radicale):
    s = start_server(settings=dict(FAST, **{"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"}))
    add_adapter(s, "dav", "carddav", radicale.url("/"), "--plain-http-loopback", "true")
    return s


def run(srv, kind, rid, account, password=None, xui=ALICE, **kw):
    client = srv.client(xui)
    r = client.get(doc_path(FH, xui))
    req = request_xml(kind, rid, "dav", remote_user=kw.pop("remote_user", account), username=account,
                      password=password if password is not None else USERS[account], **kw)
    if r.status == 200:
        body = r.body.replace(b"</cab-feature-handler>", req.encode() + b"</cab-feature-handler>")
        expect(client.put_doc(FH, xui, body, headers={"If-Match": r.header("ETag")}), 200)
    else:
        expect(client.put_doc(FH, xui, fh_doc(req)), 201)
    resp, _ = wait_response(client, xui, rid, timeout=60)
    return resp


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
