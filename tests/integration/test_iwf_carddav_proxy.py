# SPDX-License-Identifier: MIT
"""The carddav kind against server behaviours Radicale does not have by
itself, produced by nginx in front of it: a book that refuses the
sync-collection REPORT (405, and 501) but answers PROPFIND and
addressbook-multiget, and a server that takes bearer tokens; and Apache
httpd (mod_auth_digest) in front of it checking HTTP Digest.

One Radicale, one nginx (a port per behaviour) and one Apache serve the module; each
test has its own Radicale account."""

import base64
import re

import pytest
from lxml import etree

from davlib import (DavProxy, DigestProxy, Radicale, apache_available, generated_book, generated_card,
                    radicale_available)
from iwflib import add_adapter, expect_response, fh_doc, nginx_available, request_xml, text, wait_response
from xdmslib import ALICE, FH, doc_path, expect

pytestmark = pytest.mark.skipif(not (radicale_available() and nginx_available() and apache_available()),
                                reason="radicale, nginx or apache2-bin is not installed")

AB = "org.openmobilealliance.cab-address-book"
AB_NS = "urn:oma:xml:cab:address-book"
NS = {"ab": AB_NS, "pcc": "urn:oma:xml:cab:pcc"}
FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "10"}
USERS = {"fb405": "pw-405", "fb501": "pw-501", "tok": "pw-tok", "dig": "pw-dig"}
TOKEN = "tok-7f3c9a"


def basic(user):
    return base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()


@pytest.fixture(scope="module")
def dav(tmp_path_factory):
    r = Radicale(tmp_path_factory.mktemp("radicale"), USERS)
    for user in ("fb405", "fb501"):
        r.add_book(user, "book", generated_book(12))
    r.add_book("tok", "book", generated_book(3))
    r.add_book("dig", "book", generated_book(2))
    r.start()
    behaviours = {
        "no-sync-405": "if ($is_sync_report) { return 405; }",
        "no-sync-501": "if ($is_sync_report) { return 501; }",
        # The bearer token is checked here; Radicale gets the account's Basic.
        "bearer": (f'if ($http_authorization != "Bearer {TOKEN}") {{ return 401; }}\n'
                   f'            proxy_set_header Host $http_host;\n'
                   f'            proxy_set_header Authorization "Basic {basic("tok")}";'),
    }
    p = DavProxy(tmp_path_factory.mktemp("nginx"), r, behaviours)
    try:
        p.start()
        yield r, p
    finally:
        p.stop()
        r.stop()


def run(srv, kind, rid, adapter, **kw):
    client = srv.client(ALICE)
    r = client.get(doc_path(FH, ALICE))
    req = request_xml(kind, rid, adapter, **kw)
    if r.status == 200:
        body = r.body.replace(b"</cab-feature-handler>", req.encode() + b"</cab-feature-handler>")
        expect(client.put_doc(FH, ALICE, body, headers={"If-Match": r.header("ETag")}), 200)
    else:
        expect(client.put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, _ = wait_response(client, ALICE, rid, timeout=60)
    return resp


def from_dav(srv):
    r = expect(srv.client(ALICE).get(doc_path(AB, ALICE)), 200)
    out = {}
    for c in etree.fromstring(r.body).xpath("/ab:address-book/ab:contact", namespaces=NS):
        src = c.find(f"{{{AB_NS}}}source")
        if src is not None and src.text == "dav":
            out[src.get("uid")] = c
    return out


def asked_cards(body):
    """The card names an addressbook-multiget body asks for."""
    return sorted(re.findall(r"/([^/<]+\.vcf)</", body))


@pytest.mark.parametrize("behaviour,code", [("no-sync-405", 405), ("no-sync-501", 501)])
def test_a_book_without_sync_collection_is_listed_and_multigot(start_server, dav, behaviour, code):
    radicale, proxy = dav
    user = "fb" + str(code)
    srv = start_server(settings=FAST)
    add_adapter(srv, "dav", "carddav", proxy.url(behaviour, f"/{user}/book/"), "--plain-http-loopback", "true")

    resp = run(srv, "import-profile", "f-1", "dav", remote_user=user, username=user, password=USERS[user],
               target="address-book")
    expect_response(resp, "success", 200)
    assert len(from_dav(srv)) == 12
    calls = [(m, p, s) for m, p, s, _ in proxy.requests(behaviour)]
    # sync-collection refused, then PROPFIND of the ETags and multigets.
    assert ("REPORT", f"/{user}/book/", code) in calls, calls
    assert ("PROPFIND", f"/{user}/book/", 207) in calls, calls
    assert all(s != code or m == "REPORT" for m, _, s in calls), calls

    # A phone changes one card and deletes another at Radicale itself.
    st, _, _ = radicale.request("PUT", f"/{user}/book/card-0003.vcf",
                                generated_card(3).replace("FN:Dmitri Müller 3", "FN:Dmitri Renamed").encode(),
                                user=user, headers={"Content-Type": "text/vcard; charset=utf-8"})
    assert st in (200, 201, 204), st
    st, _, _ = radicale.request("DELETE", f"/{user}/book/card-0004.vcf", user=user)
    assert st in (200, 204), st
    seen = len(proxy.requests(behaviour))

    resp = run(srv, "import-profile", "f-2", "dav", remote_user=user, username=user, password=USERS[user],
               target="address-book")
    expect_response(resp, "success", 200)
    reason = text(resp, "reason")
    assert "1 cards read, 0 contacts added, 1 updated, 1 removed" in reason, reason
    mine = from_dav(srv)
    assert len(mine) == 11 and "card-0004" not in mine
    assert mine["card-0003"].xpath(".//pcc:display-name/text()", namespaces=NS) == ["Dmitri Renamed"]
    # Listed again with PROPFIND; only the changed card was read.
    later = proxy.requests(behaviour)[seen:]
    multigets = [b for m, _, s, b in later if m == "REPORT" and s == 207]
    assert [asked_cards(b) for b in multigets] == [["card-0003.vcf"]], later
    assert [m for m, _, s, _ in later if s == 207].count("PROPFIND") >= 1, later


def test_bearer_token_to_the_carddav_server(start_server, dav):
    _, proxy = dav
    srv = start_server(settings=FAST)
    add_adapter(srv, "dav", "carddav", proxy.url("bearer", "/tok/book/"), "--auth", "bearer")
    resp = run(srv, "import-profile", "b-1", "dav", remote_user="tok", token=TOKEN, target="address-book")
    expect_response(resp, "success", 200)
    assert sorted(from_dav(srv)) == ["card-0000", "card-0001", "card-0002"]
    assert all(s != 401 for _, _, s, _ in proxy.requests("bearer"))

    resp = run(srv, "import-profile", "b-2", "dav", remote_user="tok", token="not-the-token", target="address-book")
    expect_response(resp, "failure", 401)
    assert [s for _, _, s, _ in proxy.requests("bearer")][-1] == 401


@pytest.fixture(scope="module")
def digest(dav, tmp_path_factory):
    radicale, _ = dav
    d = DigestProxy(tmp_path_factory.mktemp("apache"), radicale, {"diana": "digest-pw"}, as_user="dig")
    try:
        yield d.start()
    finally:
        d.stop()


def test_digest_to_the_carddav_server(start_server, digest):
    srv = start_server(settings=FAST)
    add_adapter(srv, "dav", "carddav", digest.url("/dig/book/"), "--auth", "digest")
    resp = run(srv, "import-profile", "d-1", "dav", remote_user="dig", username="diana", password="digest-pw",
               target="address-book")
    expect_response(resp, "success", 200)
    assert sorted(from_dav(srv)) == ["card-0000", "card-0001"]
    # Every call was challenged and then answered with Digest.
    calls = digest.requests()
    assert any(s == 401 for _, _, s in calls) and any(s == 207 for _, _, s in calls), calls

    resp = run(srv, "import-profile", "d-2", "dav", remote_user="dig", username="diana", password="wrong",
               target="address-book")
    expect_response(resp, "failure", 401)
