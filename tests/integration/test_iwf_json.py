# SPDX-License-Identifier: MIT
"""The IWF against JSON REST 3rd parties behind OAuth 2.0: a People-API-
shaped and a Graph-shaped service on loopback (jsonapi.py) with the shipped
worked adapters (xslt/people-api-*.xsl, xslt/graph-*.xsl). Paging by token
and by link, sync tokens and delta links kept per user, an expired sync
token (410) giving one full sync, a 401 cured by a fresh access token, a
refused refresh token, a rotated refresh token kept; exports as JSON; bad
JSON of every kind refused with a clear <response> and nothing stored; no
token anywhere it must not be."""

import json
import shutil
import subprocess
import urllib.parse

import pytest
from lxml import etree

from iwflib import NS, add_adapter, expect_response, fh_doc, request_xml, text, wait_response
from jsonapi import CLIENT_ID, CLIENT_SECRET, ThirdParty
from xdmslib import ALICE, FH, PCC, doc_path, expect

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
        "iwf.max_response": "65536", "log.level": "debug"}
REMOTE = "alice@example.com"
REFRESH = "1//0gRt-alice-refresh-7c1e"
PEOPLE_FIRST = "CPDd3Y-rMhIMCNT_n6sGEIDki8QBGgQIARAB"   # people-connections-2.json's nextSyncToken
MDB_COPY = shutil.which("mdb_copy")
PEOPLE_SECOND = "CPDd3Y-rMhIMCPKFoKsGEMCS0_UCGgQIARAB"  # people-connections-sync-1.json's


@pytest.fixture
def tp():
    t = ThirdParty().start()
    t.add_refresh_token(REFRESH)
    yield t
    t.stop()


def people_adapter(srv, tp, aid="people"):
    add_adapter(srv, aid, "http",
                tp.url("/people/v1/people/me/connections?personFields=names,emailAddresses,phoneNumbers,"
                       "organizations,birthdays&requestSyncToken=true"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-page-token", "/nextPageToken", "--page-token-param", "pageToken",
                "--sync-token", "/nextSyncToken", "--sync-token-param", "syncToken",
                "--import-xslt", "people-api-import.xsl", "--export-xslt", "people-api-export.xsl", check=0)


def graph_adapter(srv, tp, aid="graph"):
    add_adapter(srv, aid, "http", tp.url("/graph/v1.0/users/delta?$select=displayName,givenName,surname,mail,"
                                         "businessPhones,mobilePhone,jobTitle"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-link", "/@odata.nextLink", "--delta-link", "/@odata.deltaLink",
                "--import-xslt", "graph-import.xsl", "--export-xslt", "graph-export.xsl", check=0)


@pytest.fixture
def local(start_server, tp):
    srv = start_server(name="local", settings=FAST)
    srv.ctl("credential", "set", "--adapter", "people", "--client-secret", CLIENT_SECRET, check=0)
    srv.ctl("credential", "set", "--adapter", "graph", "--client-secret", CLIENT_SECRET, check=0)
    people_adapter(srv, tp)
    graph_adapter(srv, tp)
    return srv


def run(srv, kind, rid, third_party, remote_user=REMOTE, **kw):
    alice = srv.client(ALICE)
    put = alice.put_doc(FH, ALICE, fh_doc(request_xml(kind, rid, third_party, remote_user=remote_user, **kw)))
    assert put.status in (200, 201), put.describe()
    resp, body = wait_response(alice, ALICE, rid)
    for secret in (b"<token", b"<password"):
        assert secret not in body, f"the request's credentials are still in the document: {body!r}"
    return resp


def pcc_values(srv, xpath):
    r = expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 200)
    return etree.fromstring(r.body).xpath(xpath, namespaces=NS)


def paths(calls):
    return [urllib.parse.unquote(c[1]) for c in calls]


def test_people_pages_then_sync_tokens(local, tp):
    resp = expect_response(run(local, "import-profile", "imp-1", "people", token=REFRESH), "success", 200)
    assert pcc_values(local, "//pcc:tel-string/text()") == ["tel:+15555550101", "tel:555-0199"]
    assert pcc_values(local, "//pcc:addr-uri/text()") == ["mailto:Alice@Example.com"]
    assert pcc_values(local, "//pcc:given/text()") == ["Alice"]
    assert pcc_values(local, "//pcc:employer/text()") == ["Example Corp"]
    assert pcc_values(local, "//pcc:date/text()") == ["1985-04-12"]
    assert text(resp, "reason") == "profile imported from people"
    # Two pages, the second by its token; one grant.
    got = paths(tp.api_calls("/people/"))
    assert len(got) == 2 and "pageToken=GgYKAghkEAIiDAjU_5-rBhCA5IvEAQ" in got[1], got
    assert tp.grants == [REFRESH]

    # The next import sends the sync token and gets alice's change only.
    expect_response(run(local, "import-profile", "imp-2", "people", token=REFRESH), "success", 200)
    got = paths(tp.api_calls("/people/"))
    assert len(got) == 3 and f"syncToken={PEOPLE_FIRST}" in got[2], got
    assert "tel:+15555550177" in pcc_values(local, "//pcc:tel-string/text()")
    assert tp.grants == [REFRESH], "the cached access token was not used"

    # A delta with nothing for alice: nothing changed; the newest token is kept.
    etag = expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag
    resp = expect_response(run(local, "import-profile", "imp-3", "people", token=REFRESH), "success", 200)
    assert "nothing changed at people" in text(resp, "reason"), etree.tostring(resp)
    assert expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag == etag
    got = paths(tp.api_calls("/people/"))
    assert f"syncToken={PEOPLE_SECOND}" in got[3], got


def test_expired_sync_token_means_one_full_sync(local, tp):
    expect_response(run(local, "import-profile", "imp-1", "people", token=REFRESH), "success", 200)
    tp.expired_sync.add(PEOPLE_FIRST)
    resp = expect_response(run(local, "import-profile", "imp-2", "people", token=REFRESH), "success", 200)
    assert "full sync" in text(resp, "reason"), etree.tostring(resp)
    got = paths(tp.api_calls("/people/"))
    # 2 pages, then the 410, then 2 pages again from the start.
    assert len(got) == 5, got
    assert f"syncToken={PEOPLE_FIRST}" in got[2] and "syncToken" not in got[3] and "pageToken" in got[4], got
    # The full sync stored a fresh token: the next import is a delta again.
    tp.expired_sync.clear()
    expect_response(run(local, "import-profile", "imp-3", "people", token=REFRESH), "success", 200)
    assert f"syncToken={PEOPLE_FIRST}" in paths(tp.api_calls("/people/"))[5]


def test_401_is_cured_by_a_fresh_access_token(local, tp):
    expect_response(run(local, "import-profile", "imp-1", "people", token=REFRESH), "success", 200)
    tp.revoke_access_tokens()
    expect_response(run(local, "import-profile", "imp-2", "people", token=REFRESH), "success", 200)
    assert tp.grants == [REFRESH, REFRESH]
    calls = tp.api_calls("/people/")
    assert [c[2] for c in calls][2] != [c[2] for c in calls][3], "the retry did not carry a new token"


def test_refused_refresh_token_is_401(local, tp):
    resp = expect_response(run(local, "import-profile", "imp-1", "people", token="1//revoked-long-ago"),
                           "failure", 401)
    reason = text(resp, "reason")
    assert "invalid_grant" in reason and "authorize again" in reason, reason
    assert "revoked-long-ago" not in reason
    expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 404)
    assert tp.api_calls("/people/") == []


def test_missing_client_secret_is_explained(start_server, tp):
    srv = start_server(name="local", settings=FAST)
    people_adapter(srv, tp)
    resp = expect_response(run(srv, "import-profile", "imp-1", "people", token=REFRESH), "failure", 500)
    assert "--client-secret" in text(resp, "reason"), etree.tostring(resp)
    assert tp.grants == []


def test_rotated_refresh_token_is_kept(local, tp):
    tp.refresh_tokens.clear()
    tp.add_refresh_token("1//rt-old-0001", rotate_to="1//rt-new-0002")
    local.ctl("credential", "set", ALICE, "people-token", "--token", "1//rt-old-0001", check=0)
    expect_response(run(local, "import-profile", "imp-1", "people", credential_ref="people-token"), "success", 200)
    assert tp.grants == ["1//rt-old-0001"]
    # A new process has no access token cached: it must use the rotated
    # refresh token, the only one the 3rd party still takes.
    local.restart()
    expect_response(run(local, "import-profile", "imp-2", "people", credential_ref="people-token"), "success", 200)
    assert tp.grants == ["1//rt-old-0001", "1//rt-new-0002"]


def test_graph_next_link_then_delta_link(local, tp):
    expect_response(run(local, "import-profile", "imp-1", "graph", token=REFRESH), "success", 200)
    assert pcc_values(local, "//pcc:tel-string/text()") == ["tel:+15555550111", "tel:+15555550101"]
    assert pcc_values(local, "//pcc:duty/text()") == ["Engineer"]
    got = paths(tp.api_calls("/graph/"))
    assert len(got) == 2 and "$skiptoken=" in got[1], got
    # The delta changes the job title: replace, since merge keeps a filled single value.
    expect_response(run(local, "import-profile", "imp-2", "graph", token=REFRESH, merge_policy="replace"),
                    "success", 200)
    got = paths(tp.api_calls("/graph/"))
    assert got[2] == "/graph/v1.0/users/delta?$deltatoken=mS5DuRZGjVL-abreviated", got
    assert pcc_values(local, "//pcc:duty/text()") == ["Principal Engineer"]
    tp.expired_sync.add("Xt9aPQ-second")
    resp = expect_response(run(local, "import-profile", "imp-3", "graph", token=REFRESH), "success", 200)
    assert "full sync" in text(resp, "reason")
    assert paths(tp.api_calls("/graph/"))[3:] == [
        "/graph/v1.0/users/delta?$deltatoken=Xt9aPQ-second",
        "/graph/v1.0/users/delta?$select=displayName,givenName,surname,mail,businessPhones,mobilePhone,jobTitle",
        "/graph/v1.0/users/delta?$skiptoken=pX2R1bTF6ckJ1T2dPZ1E"]


LOCAL_PCC = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<pcc xmlns="urn:oma:xml:cab:pcc"><person-details>'
             b'<name><name-entry pref="1"><display-name>Alice Local</display-name><given>Alice</given>'
             b'<family>Local &amp; "Sons"</family></name-entry></name>'
             b'<comm-addr><tel pref="1" tel-type="Mobile"><tel-nb><tel-string>tel:+15555550111</tel-string>'
             b'</tel-nb></tel><tel pref="2" tel-type="Work"><tel-nb><tel-string>tel:+15555550122</tel-string>'
             b'</tel-nb></tel><uri-entry pref="1" addr-uri-type="Email"><addr-uri>mailto:alice@local.example'
             b'</addr-uri></uri-entry></comm-addr>'
             b'<birth><birth-date><date>1985-04-12</date></birth-date></birth>'
             b'<career><employer>Local Corp</employer><duty>Engineer</duty></career>'
             b'</person-details></pcc>\n')


@pytest.mark.parametrize("which,path,expected", [
    ("people", "/people/v1/people/c5048265452316744433:updateContact?updatePersonFields=names,phoneNumbers",
     {"names": [{"displayName": "Alice Local", "givenName": "Alice", "familyName": 'Local & "Sons"'}],
      "phoneNumbers": [{"value": "+15555550111", "type": "mobile"}, {"value": "+15555550122", "type": "work"}],
      "emailAddresses": [{"value": "alice@local.example"}],
      "organizations": [{"name": "Local Corp", "title": "Engineer"}],
      "birthdays": [{"date": {"year": 1985, "month": 4, "day": 12}}]}),
    ("graph", "/graph/v1.0/me/contacts/AAMkAGI2THVSAAA=",
     {"displayName": "Alice Local", "givenName": "Alice", "surname": 'Local & "Sons"',
      "emailAddresses": [{"address": "alice@local.example"}], "businessPhones": ["+15555550122"],
      "homePhones": [], "mobilePhone": "+15555550111", "companyName": "Local Corp", "jobTitle": "Engineer",
      "birthday": "1985-04-12T00:00:00Z"}),
])
def test_export_as_json(start_server, tp, which, path, expected):
    srv = start_server(name="local", settings=FAST)
    srv.ctl("credential", "set", "--adapter", f"{which}-out", "--client-secret", CLIENT_SECRET, check=0)
    add_adapter(srv, f"{which}-out", "http", tp.url(path), "--format", "json", "--export-method", "PATCH",
                "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"), "--client-id", CLIENT_ID,
                "--import-xslt", f"{'people-api' if which == 'people' else which}-import.xsl",
                "--export-xslt", f"{'people-api' if which == 'people' else which}-export.xsl", check=0)
    expect(srv.client(ALICE).put_doc(PCC, ALICE, LOCAL_PCC), 201)
    expect_response(run(srv, "export-profile", "exp-1", f"{which}-out", token=REFRESH), "success", 200)
    assert len(tp.received) == 1, tp.received
    method, got_path, ctype, body = tp.received[0]
    assert (method, got_path, ctype) == ("PATCH", path, "application/json")
    assert json.loads(body) == expected


def test_export_transform_must_write_json_as_xml(start_server, tp, tmp_path):
    srv = start_server(name="local", settings=FAST)
    xsl = tmp_path / "not-json.xsl"
    xsl.write_bytes(b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
                    b'<xsl:template match="/"><contact><name>x</name></contact></xsl:template></xsl:stylesheet>')
    add_adapter(srv, "plain", "http", tp.url("/raw/ignored"), "--format", "json", "--export-method", "PATCH",
                "--import-xslt", "people-api-import.xsl", "--export-xslt", str(xsl), check=0)
    expect(srv.client(ALICE).put_doc(PCC, ALICE, LOCAL_PCC), 201)
    resp = expect_response(run(srv, "export-profile", "exp-1", "plain"), "failure", 502)
    assert "not JSON in its XML form" in text(resp, "reason") and "<contact>" in text(resp, "reason")
    assert tp.received == []


def deep(n):
    return b"{\"connections\":" + b"[" * n + b"]" * n + b"}"


@pytest.mark.parametrize("name,body,code,words", [
    ("bad-json", b'{"connections": [ {"names": [}', 502, "not valid at line 1"),
    ("trailing-comma", b'{"connections": [],}', 502, "not valid"),
    ("deep", deep(100), 413, "nested deeper than 62 levels"),
    ("deep-62", deep(61), 404, "no profile for this user"),
    ("huge-number", b'{"connections": [], "totalItems": 1e400}', 502, "not valid"),
    ("invalid-utf8", b'{"connections": [{"names": [{"displayName": "Al\xffce"}]}]}', 502, "not valid"),
    ("oversized", b'{"connections": ["' + b"x" * 70000 + b'"]}', 413, "more than 65536 bytes"),
    ("not-json", b"<html><body>Service Unavailable</body></html>", 502, "not valid"),
])
def test_bad_pages_store_nothing(start_server, tp, name, body, code, words):
    srv = start_server(name="local", settings=FAST)
    tp.raw[name] = body
    add_adapter(srv, "raw", "http", tp.url(f"/raw/{name}"), "--format", "json",
                "--import-xslt", "people-api-import.xsl", "--export-xslt", "people-api-export.xsl", check=0)
    resp = expect_response(run(srv, "import-profile", "imp-1", "raw"), "failure", code)
    assert words in text(resp, "reason"), etree.tostring(resp)
    expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 404)


def test_huge_integer_is_kept_exactly(start_server, tp):
    """A 30-digit number reaches the transform as written (no rounding): the
    import transform here copies it into the display name."""
    srv = start_server(name="local", settings=FAST)
    tp.raw["big"] = (b'{"connections": [{"names": [{"displayName": "A"}], "emailAddresses": '
                     b'[{"value": "alice@example.com"}], "id": 123456789012345678901234567890}]}')
    xsl = (b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" '
           b'xmlns:j="http://www.w3.org/2005/xpath-functions" xmlns="urn:oma:xml:cab:pcc" '
           b'exclude-result-prefixes="j"><xsl:template match="/"><pcc><person-details><name><name-entry>'
           b'<display-name><xsl:value-of select="//j:number[@key=\'id\']"/></display-name>'
           b'</name-entry></name></person-details></pcc></xsl:template></xsl:stylesheet>')
    path = srv.workdir / "big.xsl"
    path.write_bytes(xsl)
    add_adapter(srv, "raw", "http", tp.url("/raw/big"), "--format", "json",
                "--import-xslt", str(path), "--export-xslt", "people-api-export.xsl", check=0)
    expect_response(run(srv, "import-profile", "imp-1", "raw"), "success", 200)
    assert pcc_values(srv, "//pcc:display-name/text()") == ["123456789012345678901234567890"]


def test_next_link_to_another_site_is_refused(start_server, tp):
    srv = start_server(name="local", settings=FAST)
    tp.raw["offsite"] = b'{"value": [], "@odata.nextLink": "http://127.0.0.2:9/steal?x=1"}'
    add_adapter(srv, "raw", "http", tp.url("/raw/offsite"), "--format", "json", "--next-link", "/@odata.nextLink",
                "--import-xslt", "graph-import.xsl", "--export-xslt", "graph-export.xsl", check=0)
    resp = expect_response(run(srv, "import-profile", "imp-1", "raw"), "failure", 502)
    assert "another site" in text(resp, "reason")
    expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 404)


def test_page_cap(start_server, tp):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "endless", "http", tp.url("/endless"), "--format", "json", "--next-page-token", "/nextPageToken",
                "--page-token-param", "pageToken", "--max-pages", "7",
                "--import-xslt", "people-api-import.xsl", "--export-xslt", "people-api-export.xsl", check=0)
    resp = expect_response(run(srv, "import-profile", "imp-1", "endless"), "failure", 413)
    assert "more than 7 pages" in text(resp, "reason")
    assert len(tp.api_calls("/endless")) == 7


def test_user_not_in_the_directory_is_404(local, tp):
    resp = expect_response(run(local, "import-profile", "imp-1", "people", remote_user="nobody@example.com",
                               token=REFRESH), "failure", 404)
    assert "no profile for this user" in text(resp, "reason")
    expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 404)


def test_no_token_anywhere(local, tp, tmp_path):
    """The refresh token, the access tokens and the client secret appear in no
    log line (debug level), no access log line, no document, no xdmsctl
    output and nowhere in the live content of the store (a compacting copy:
    the sealed secrets are there, in clear nothing)."""
    expect_response(run(local, "import-profile", "imp-1", "people", token=REFRESH), "success", 200)
    tp.revoke_access_tokens()
    expect_response(run(local, "import-profile", "imp-2", "graph", token=REFRESH), "success", 200)
    expect_response(run(local, "import-profile", "imp-3", "people", token="1//revoked-long-ago"), "failure", 401)
    # Every access token the 3rd party issued starts with "ya29.".
    secrets_ = [REFRESH, CLIENT_SECRET, "revoked-long-ago", "ya29."]
    fh = expect(local.client(ALICE).get(doc_path(FH, ALICE)), 200).body
    pcc = expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).body
    outputs = [local.ctl("jobs").stdout, local.ctl("adapter", "show", "people").stdout,
               local.ctl("adapter", "list").stdout]
    copy = tmp_path / "copy"
    copy.mkdir()
    assert MDB_COPY, "mdb_copy (Debian package lmdb-utils) is not installed"
    subprocess.run([MDB_COPY, "-c", str(local.data_dir), str(copy)], check=True, timeout=60)
    store = (copy / "data.mdb").read_bytes()
    assert b"imp-3" in store and b"sync:people" in store, "the copy does not hold the store's content"
    log = local.log_path.read_bytes()
    assert b" debug " in log
    places = [("the log", log), ("the access log", local.stdout_path.read_bytes()), ("the Feature Handler", fh),
              ("the PCC", pcc), ("the store", store)] + [(f"xdmsctl output {i}", o) for i, o in enumerate(outputs)]
    for s in secrets_:
        for where, blob in places:
            assert s.encode() not in blob, f"{s!r} appears in {where}"
