# SPDX-License-Identifier: MIT
"""The IWF against a native 3rd party: a second xdmsd is the remote XDMS
(adapter kind xcap). Import its PCC into a new or existing local PCC,
export a local PCC into it, and the failures: wrong credentials, an
unknown adapter, a 3rd party that is down."""

import time

import pytest
from lxml import etree

from iwflib import (LOCAL_PCC, NS, add_adapter, expect_response, fh_doc, free_port, jobs, pcc_url, request_xml,
                    text, wait_response)
from xdmslib import ALICE, BOB, FH, PASSWORDS, PCC, data, doc_path, expect, unquote

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5"}


@pytest.fixture
def remote(start_server):
    """The 3rd party: another xdmsd whose alice has the fixture PCC."""
    srv = start_server(name="remote")
    expect(srv.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    return srv


@pytest.fixture
def local(start_server, remote):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote))
    return srv


def import_request(rid="imp-1", password=PASSWORDS[ALICE], third_party="remote-cab", **kw):
    return request_xml("import-profile", rid, third_party, remote_user=ALICE, username=ALICE,
                       password=password, **kw)


def tel_strings(pcc_body):
    root = etree.fromstring(pcc_body)
    return sorted(root.xpath("//pcc:tel-string/text()", namespaces=NS))


def test_import_creates_pcc(local):
    alice = local.client(ALICE)
    expect(alice.get(doc_path(PCC, ALICE)), 404)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request())), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert tel_strings(pcc.body) == ["tel:+15555550101", "tel:+15555550199"], pcc.body
    assert text(resp, "pcc-etag") == unquote(pcc.etag), \
        f"<pcc-etag> {text(resp, 'pcc-etag')} is not the PCC's ETag {pcc.etag}"
    # Counted in values (docs/client-developers.md): each child of a PCC group.
    groups = etree.fromstring(pcc.body).xpath("/pcc:pcc/pcc:person-details/*", namespaces=NS)
    assert int(text(resp, "imported-count")) == sum(len(g) for g in groups) == 11, etree.tostring(resp)
    # The job is done, once.
    js = jobs(local, "--user", ALICE)
    assert [(j["state"], j["code"], j["request"]) for j in js] == [("done", 200, "imp-1")], js


def test_import_merges_into_existing_pcc(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(PCC, ALICE, LOCAL_PCC), 201)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(fields="tel"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    # Only tel was asked for: the rest of the profile is left out.
    expect_response(resp, "partial-success", 206)
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert tel_strings(pcc.body) == ["tel:+15555550101", "tel:+15555550111", "tel:+15555550199"], pcc.body
    root = etree.fromstring(pcc.body)
    assert root.xpath("//pcc:display-name/text()", namespaces=NS) == ["Alice Local"], pcc.body
    # The added tel whose pref was taken got a free one.
    assert sorted(root.xpath("//pcc:tel/@pref", namespaces=NS)) == ["1", "2", "3"], pcc.body
    assert text(resp, "imported-count") == "2", etree.tostring(resp)


def test_import_replace_policy_and_rerun_only_on_change(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(PCC, ALICE, LOCAL_PCC), 201)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(merge_policy="replace"))), 201)
    resp, fh = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert tel_strings(pcc.body) == ["tel:+15555550101", "tel:+15555550199"], pcc.body
    # Writing the answered document back (credentials and all) queues nothing.
    expect(alice.put_doc(FH, ALICE, fh), 200)
    assert len(jobs(local, "--user", ALICE)) == 1
    # A changed request runs again (its old <response> stays until the new
    # one replaces it: only the server writes responses).
    changed = fh.replace(b"<merge-policy>replace</merge-policy>", b"<merge-policy>add-only</merge-policy>")
    assert changed != fh
    expect(alice.put_doc(FH, ALICE, changed), 200)
    deadline = time.monotonic() + 30
    while [j["state"] for j in jobs(local, "--user", ALICE)] != ["cancelled", "done"] and \
            [j["state"] for j in jobs(local, "--user", ALICE)] != ["done", "done"]:
        assert time.monotonic() < deadline, jobs(local)
        time.sleep(0.05)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    assert text(resp, "imported-count") == "0", etree.tostring(resp)
    assert [j["state"] for j in jobs(local, "--user", ALICE)] == ["done", "done"]


def test_export_to_remote(local, remote):
    alice = local.client(ALICE)
    expect(alice.put_doc(PCC, ALICE, LOCAL_PCC), 201)
    req = request_xml("export-profile", "exp-1", "remote-cab", remote_user=BOB, username=BOB,
                      password=PASSWORDS[BOB])
    expect(alice.put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, _ = wait_response(alice, ALICE, "exp-1")
    expect_response(resp, "success", 200)
    assert text(resp, "exported-count") == "2", etree.tostring(resp)
    got = expect(remote.client(BOB).get(doc_path(PCC, BOB)), 200)
    root = etree.fromstring(got.body)
    assert root.xpath("//pcc:display-name/text()", namespaces=NS) == ["Alice Local"], got.body
    assert tel_strings(got.body) == ["tel:+15555550111"], got.body


def test_wrong_credentials_give_401(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(password="not-the-password"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "failure", 401)
    assert "credentials" in text(resp, "reason"), etree.tostring(resp)
    assert "not-the-password" not in local.log_tail(1000)
    expect(alice.get(doc_path(PCC, ALICE)), 404)
    assert [j["state"] for j in jobs(local)] == ["failed"]


def test_unknown_adapter_gives_404(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(third_party="nobody-here"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "failure", 404)
    assert "nobody-here" in text(resp, "reason")


def test_third_party_down_gives_503_after_retries(start_server):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "down", "xcap", f"http://127.0.0.1:{free_port()}/xcap-root/x/{{remote-user}}")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(third_party="down"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "failure", 503)
    js = jobs(srv)
    assert [(j["state"], j["attempts"]) for j in js] == [("failed", 2)], js


def test_deleting_a_request_cancels_its_job(start_server):
    # No adapter can run it (workers off), so the job stays queued.
    srv = start_server(name="local", settings={"iwf.enabled": "false"})
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request())), 201)
    assert [j["state"] for j in jobs(srv)] == ["queued"]
    expect(alice.put_doc(FH, ALICE, fh_doc()), 200)
    assert [j["state"] for j in jobs(srv)] == ["cancelled"]
    assert [j["state"] for j in jobs(srv, "--state", "queued")] == []


PREFS = "org.openmobilealliance.cab-user-prefs"
PREFS_MIME = "application/vnd.oma.cab-user-prefs+xml"


def prefs_doc(import_prefs="", export_prefs=""):
    return (f'<cab-user-prefs xmlns="urn:oma:xml:cab:user-prefs"><import-prefs>{import_prefs}</import-prefs>'
            f'<export-prefs>{export_prefs}</export-prefs></cab-user-prefs>').encode()


def put_prefs(client, body):
    expect(client.put(doc_path(PREFS, ALICE), body, PREFS_MIME), 201)


def test_preferences_apply(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(PCC, ALICE, LOCAL_PCC), 201)
    put_prefs(alice, prefs_doc("<conflict-policy>keep-existing</conflict-policy>"
                               "<allowed-fields>fn n tel</allowed-fields>",
                               "<allowed-third-party>someone-else</allowed-third-party>"))
    exp = request_xml("export-profile", "exp-1", "remote-cab", remote_user=BOB, username=BOB,
                      password=PASSWORDS[BOB])
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(), exp)), 201)
    # keep-existing = add-only: name and comm-addr exist, so nothing is added;
    # the rest is not allowed by the preferences, so the result is partial.
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "partial-success", 206)
    assert text(resp, "imported-count") == "0", etree.tostring(resp)
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert tel_strings(pcc.body) == ["tel:+15555550111"], pcc.body
    resp, _ = wait_response(alice, ALICE, "exp-1")
    expect_response(resp, "failure", 403)
    assert "remote-cab" in text(resp, "reason")


def test_preferences_auto_store_off(local):
    alice = local.client(ALICE)
    put_prefs(alice, prefs_doc("<auto-store>false</auto-store>"))
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request())), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    assert "preferences" in text(resp, "reason")
    expect(alice.get(doc_path(PCC, ALICE)), 404)


def test_in_progress_acknowledgement(start_server):
    settings = dict(FAST, **{"iwf.ack_in_progress": "true", "iwf.retry_delay": "1500"})
    srv = start_server(name="local", settings=settings)
    # A 3rd party that is down: the first attempt fails, the retry waits 1.5 s.
    add_adapter(srv, "down", "xcap", f"http://127.0.0.1:{free_port()}/xcap-root/x/{{remote-user}}")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(third_party="down"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1", final=False)
    expect_response(resp, "in-progress", 202)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "failure", 503)
    assert [(j["state"], j["attempts"]) for j in jobs(srv)] == [("failed", 2)]
