# SPDX-License-Identifier: MIT
"""The IWF against an HTTP 3rd party: nginx serves profiles in the shipped
vendor format (xslt/vendor-example-*) and takes exports by WebDAV PUT.
Also the failures an HTTP 3rd party can cause: garbage, a huge body, a slow
answer, 5xx, a missing profile, a transform that fails; and the adapter
commands of xdmsctl."""

import pytest
from lxml import etree

from iwflib import (NS, Nginx, add_adapter, expect_response, fh_doc, jobs, nginx_available, request_xml,
                    text, wait_response)
from xdmslib import ADMIN, ALICE, FH, PCC, REPO, data, doc_path, expect

pytestmark = pytest.mark.skipif(not nginx_available(), reason="nginx is not installed")

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5", "iwf.max_response": "65536"}

LOCAL_PCC = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<pcc xmlns="urn:oma:xml:cab:pcc"><person-details>'
             b'<name><name-entry pref="1"><display-name>Alice Local</display-name><given>Alice</given>'
             b'<family>Local</family></name-entry></name>'
             b'<comm-addr><tel pref="1" tel-type="Home"><tel-nb><tel-string>tel:+15555550111</tel-string>'
             b'</tel-nb></tel><uri-entry pref="1" addr-uri-type="Email"><addr-uri>mailto:alice@local.example'
             b'</addr-uri></uri-entry></comm-addr>'
             b'<career><employer>Local Corp</employer></career>'
             b'</person-details></pcc>\n')

SLOW = """
        location /slow/ { alias ROOT/profiles/; limit_rate 1; }
        location /broken/ { return 503; }
"""


@pytest.fixture
def nginx(tmp_path):
    n = Nginx(tmp_path / "nginx")
    n.extra = SLOW.replace("ROOT", str(n.root))
    (n.root / "profiles" / "alice.example.xml").write_bytes(data("vendor-alice.xml"))
    (n.root / "profiles" / "garbage.xml").write_bytes(b"<contact>this is not <closed")
    (n.root / "profiles" / "huge.xml").write_bytes(b"<contact xmlns='http://ns.example.com/vcdir/1'>"
                                                    + b"<email>x@example.com</email>" * 20000 + b"</contact>")
    n.start()
    yield n
    n.stop()


@pytest.fixture
def local(start_server, nginx):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    return srv


def run(srv, kind, rid, third_party, remote_user, **kw):
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml(kind, rid, third_party, remote_user=remote_user, **kw))),
           201)
    resp, _ = wait_response(alice, ALICE, rid)
    return resp


def test_import_vendor_profile(local):
    resp = expect_response(run(local, "import-profile", "imp-1", "vcdir", "alice.example"), "success", 200)
    pcc = expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200)
    root = etree.fromstring(pcc.body)
    assert root.xpath("//pcc:tel-string/text()", namespaces=NS) == ["tel:+15555550101", "tel:+15555550199"]
    assert root.xpath("//pcc:addr-uri/text()", namespaces=NS) == ["mailto:alice@example.com"]
    assert root.xpath("//pcc:employer/text()", namespaces=NS) == ["Example Corp"]
    assert root.xpath("//pcc:date/text()", namespaces=NS) == ["1985-04-12"]
    # Counted in values (docs/client-developers.md): each child of a PCC group.
    groups = root.xpath("/pcc:pcc/pcc:person-details/*", namespaces=NS)
    assert text(resp, "imported-count") == str(sum(len(g) for g in groups)), etree.tostring(resp)


def test_export_is_stored_byte_for_byte(local, nginx):
    expect(local.client(ALICE).put_doc(PCC, ALICE, LOCAL_PCC), 201)
    resp = run(local, "export-profile", "exp-1", "vcdir", "alice.export")
    expect_response(resp, "success", 200)
    stored = (nginx.root / "profiles" / "alice.export.xml").read_bytes()
    expected = data("vendor-alice-export.xml")
    assert stored == expected, f"nginx stored {stored!r}, expected {expected!r}"


def test_export_fields_filter(local, nginx):
    expect(local.client(ALICE).put_doc(PCC, ALICE, LOCAL_PCC), 201)
    resp = run(local, "export-profile", "exp-1", "vcdir", "alice.tel", fields="tel")
    expect_response(resp, "partial-success", 206)
    stored = etree.fromstring((nginx.root / "profiles" / "alice.tel.xml").read_bytes())
    names = [etree.QName(e).localname for e in stored]
    assert names == ["phone"], etree.tostring(stored)


@pytest.mark.parametrize("remote_user,code,words", [
    ("garbage", 502, "not usable XML"),
    ("huge", 413, "more than 65536 bytes"),
    ("nobody", 404, "no such profile"),
])
def test_bad_answers(local, remote_user, code, words):
    resp = expect_response(run(local, "import-profile", "imp-1", "vcdir", remote_user), "failure", code)
    assert words in text(resp, "reason"), etree.tostring(resp)
    expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 404)


def test_slow_third_party_times_out(start_server, nginx):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "slow", "http", nginx.url("/slow/{remote-user}.xml"), "--timeout", "1",
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    resp = expect_response(run(srv, "import-profile", "imp-1", "slow", "alice.example"), "failure", 504)
    assert "in time" in text(resp, "reason")
    assert [(j["state"], j["attempts"]) for j in jobs(srv)] == [("failed", 2)]


def test_5xx_is_retried_then_503(start_server, nginx):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "broken", "http", nginx.url("/broken/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    expect_response(run(srv, "import-profile", "imp-1", "broken", "alice.example"), "failure", 503)
    assert [(j["state"], j["attempts"]) for j in jobs(srv)] == [("failed", 2)]


FAILING_XSLT = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><xsl:message terminate="yes">refusing on purpose</xsl:message></xsl:template>
</xsl:stylesheet>
"""

FILE_READING_XSLT = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><pcc xmlns="urn:oma:xml:cab:pcc"><person-details><career>
    <employer><xsl:value-of select="document('file:///etc/hostname')"/></employer>
  </career></person-details></pcc></xsl:template>
</xsl:stylesheet>
"""


@pytest.mark.parametrize("sheet", [FAILING_XSLT, FILE_READING_XSLT], ids=["terminate", "document-file"])
def test_failing_transform_gives_502(start_server, nginx, tmp_path, sheet):
    srv = start_server(name="local", settings=FAST)
    xsl = tmp_path / "bad.xsl"
    xsl.write_bytes(sheet)
    add_adapter(srv, "bad", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", str(xsl), "--export-xslt", "vendor-example-export.xsl")
    resp = expect_response(run(srv, "import-profile", "imp-1", "bad", "alice.example"), "failure", 502)
    assert "transform" in text(resp, "reason"), etree.tostring(resp)
    expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 404)


def test_adapter_commands(start_server, nginx, tmp_path):
    srv = start_server(name="local", settings=FAST)
    bad = tmp_path / "bad.xsl"
    bad.write_bytes(b"<xsl:stylesheet version='1.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
                    b"<xsl:template match='/'><xsl:value-of/></xsl:template></xsl:stylesheet>")
    r = add_adapter(srv, "a", "http", "ftp://example.com/x", check=2)
    assert b"http:// or https://" in r.stderr, r.stderr
    r = add_adapter(srv, "a", "http", nginx.url("/{nope}"), check=2)
    assert b"unknown placeholder" in r.stderr, r.stderr
    r = add_adapter(srv, "a", "http", nginx.url("/x"), "--import-xslt", str(tmp_path / "missing.xsl"),
                    "--export-xslt", "vendor-example-export.xsl", check=1)
    assert b"missing.xsl" in r.stderr, r.stderr
    r = add_adapter(srv, "a", "http", nginx.url("/x"), "--import-xslt", str(bad),
                    "--export-xslt", "vendor-example-export.xsl", check=1)
    assert b"not a valid XSLT" in r.stderr, r.stderr
    assert srv.ctl("adapter", "list", check=0).stdout == b"", "a refused add stored something"
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    listing = srv.ctl("adapter", "list", check=0).stdout.decode()
    assert listing == f"vcdir\thttp\t{nginx.url('/profiles/{remote-user}.xml')}\n", listing
    shown = srv.ctl("adapter", "show", "vcdir", check=0).stdout
    assert b"<import-xslt>vendor-example-import.xsl</import-xslt>" in shown, shown
    # Dry import: the PCC is printed, nothing is stored.
    out = srv.ctl("adapter", "test", "vcdir", "--user", ALICE, "--remote-user", "alice.example", check=0)
    root = etree.fromstring(out.stdout)
    assert root.xpath("//pcc:display-name/text()", namespaces=NS) == ["Alice Example"], out.stdout
    expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 404)
    r = srv.ctl("adapter", "test", "vcdir", "--user", ALICE, "--remote-user", "garbage", check=1)
    assert b"502" in r.stderr, r.stderr
    # Over XCAP, adapters are global documents only the admin writes.
    adapter_path = "/xcap-root/org.xdmsd.iwf-adapter/global/vcdir"
    expect(srv.client(ALICE).put(adapter_path, shown, "application/vnd.xdmsd.iwf-adapter+xml"), 403)
    admin = srv.client(ADMIN)
    expect(admin.put(adapter_path + "-copy", shown, "application/vnd.xdmsd.iwf-adapter+xml"), 201)
    bad_kind = shown.replace(b'kind="http"', b'kind="gopher"')
    expect(admin.put(adapter_path + "-bad", bad_kind, "application/vnd.xdmsd.iwf-adapter+xml"), 409)
    assert srv.ctl("adapter", "list", check=0).stdout.decode().count("\n") == 2
    srv.ctl("adapter", "del", "vcdir-copy", check=0)
    srv.ctl("adapter", "del", "vcdir", check=0)
    assert srv.ctl("adapter", "list", check=0).stdout == b""
    srv.ctl("adapter", "show", "vcdir", check=1)


def test_shipped_example_matches_docs():
    """The example profile in xslt/ is the one the tests serve."""
    assert (REPO / "xslt" / "vendor-example-profile.xml").read_bytes() == data("vendor-alice.xml")


def test_edited_transform_applies_to_the_next_job(start_server, nginx, tmp_path):
    """Stylesheets are cached by ETag: an administrator's edit takes effect."""
    srv = start_server(name="local", settings=FAST)
    good = (REPO / "xslt" / "vendor-example-import.xsl").read_bytes()
    xsl = tmp_path / "import.xsl"
    xsl.write_bytes(good)
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", str(xsl), "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "vcdir",
                                                       remote_user="alice.example"))), 201)
    expect_response(wait_response(alice, ALICE, "imp-1")[0], "success", 200)
    broken = tmp_path / "broken.xsl"
    broken.write_bytes(FAILING_XSLT)
    srv.ctl("doc", "put", "org.xdmsd.iwf-xslt/global/vcdir-import.xsl", str(broken), check=0)
    _, body = wait_response(alice, ALICE, "imp-1")
    expect(alice.put_doc(FH, ALICE, body.replace(b"</cab-feature-handler>", request_xml(
        "import-profile", "imp-2", "vcdir", remote_user="alice.example").encode() + b"</cab-feature-handler>")),
        200)
    resp = expect_response(wait_response(alice, ALICE, "imp-2")[0], "failure", 502)
    assert "refusing on purpose" in text(resp, "reason"), etree.tostring(resp)


def test_edited_adapter_applies_to_the_next_job(start_server, nginx):
    """A worker keeps the adapter it parsed last while the adapter's ETag
    stays: an administrator's edit, and a removal, reach the next job. One
    worker, so that every job runs where the adapter was kept."""
    srv = start_server(name="local", settings={**FAST, "iwf.workers": "1"})
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice, admin = srv.client(ALICE), srv.client(ADMIN)
    adapter_path = "/xcap-root/org.xdmsd.iwf-adapter/global/vcdir"
    good = expect(admin.get(adapter_path), 200).body
    assert b"/profiles/" in good, good
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "vcdir",
                                                       remote_user="alice.example"))), 201)
    expect_response(wait_response(alice, ALICE, "imp-1")[0], "success", 200)

    def another(rid, status, code):
        _, body = wait_response(alice, ALICE, "imp-1")
        expect(alice.put_doc(FH, ALICE, body.replace(b"</cab-feature-handler>", request_xml(
            "import-profile", rid, "vcdir", remote_user="alice.example").encode() + b"</cab-feature-handler>")),
            200)
        return expect_response(wait_response(alice, ALICE, rid)[0], status, code)

    # The same adapter pointing at a 3rd party that answers 503.
    expect(admin.put(adapter_path, good.replace(b"/profiles/", b"/broken/"),
                     "application/vnd.xdmsd.iwf-adapter+xml"), 200)
    another("imp-2", "failure", 503)
    expect(admin.put(adapter_path, good, "application/vnd.xdmsd.iwf-adapter+xml"), 200)
    another("imp-3", "success", 200)
    expect(admin.delete(adapter_path), 200)
    resp = another("imp-4", "failure", 404)
    assert "no 3rd-party system 'vcdir'" in text(resp, "reason"), etree.tostring(resp)
    calls = [c[3] for c in nginx.calls()]
    assert calls.count("/profiles/alice.example.xml") == 2 and calls.count("/broken/alice.example.xml") == 2, calls
