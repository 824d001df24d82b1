# SPDX-License-Identifier: MIT
"""Feature Handler rules a client developer meets (docs/client-developers.md):
unknown field names refused at PUT time, a 409 that names the request whose
<response> was touched, and running a finished request again by changing its
`created` attribute, without DELETE and PUT."""

import time

import pytest
from lxml import etree

from iwflib import NS, add_adapter, expect_response, fh_doc, jobs, pcc_url, request_xml, wait_response
from xdmslib import (ALICE, FH, PASSWORDS, PCC, data, doc_path, expect, expect_xcap_error)

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5"}
ATT = "application/xcap-att+xml"
FH_PATH = doc_path(FH, ALICE)


@pytest.fixture
def local(start_server):
    remote = start_server(name="remote")
    expect(remote.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote))
    return srv


def import_request(rid="imp-1", **kw):
    return request_xml("import-profile", rid, "remote-cab", remote_user=ALICE, username=ALICE,
                       password=PASSWORDS[ALICE], **kw)


def test_unknown_field_name_is_refused_at_put_time(local):
    alice = local.client(ALICE)
    r = alice.put_doc(FH, ALICE, fh_doc(import_request(fields="tel shoesize")))
    child = expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert "shoesize" in child.get("phrase"), f"the 409 does not name the unknown field: {r.describe()}"
    expect(alice.get(FH_PATH), 404)
    assert jobs(local, "--user", ALICE) == [], "a refused request must queue no job"
    # The same request with known names is accepted and carried out.
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(fields="tel email"))), 201)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "partial-success", 206)


def test_put_without_the_servers_response_names_the_request(local):
    alice = local.client(ALICE)
    mine = fh_doc(import_request(rid="imp-7"))
    expect(alice.put_doc(FH, ALICE, mine), 201)
    wait_response(alice, ALICE, "imp-7")
    before = expect(alice.get(FH_PATH), 200)
    # The client PUTs its own copy again: the server's <response> is missing.
    r = alice.put_doc(FH, ALICE, mine)
    child = expect_xcap_error(r, "constraint-failure", need_phrase=True)
    phrase = child.get("phrase")
    assert 'request "imp-7"' in phrase and "created" in phrase, phrase
    after = expect(alice.get(FH_PATH), 200)
    assert after.body == before.body and after.etag == before.etag, "a refused PUT changed the document"


def test_changing_created_runs_a_finished_request_again(local):
    alice = local.client(ALICE)
    req = import_request(rid="imp-9").replace('id="imp-9"', 'id="imp-9" created="2026-01-01T00:00:00Z"')
    expect(alice.put_doc(FH, ALICE, fh_doc(req)), 201)
    first, _ = wait_response(alice, ALICE, "imp-9")
    expect_response(first, "success", 200)
    assert [j["state"] for j in jobs(local, "--user", ALICE)] == ["done"]
    updated_first = first.get("updated")

    # Re-run: one attribute PUT, the <response> left as it is.
    sel = FH_PATH + '/~~/cab-feature-handler/import-profile%5B@id=%22imp-9%22%5D/@created'
    expect(alice.put(sel, b"2026-01-02T00:00:00Z", ATT), 200)
    js = []
    for _ in range(200):
        js = jobs(local, "--user", ALICE)
        if len(js) == 2 and js[-1]["state"] == "done":
            break
        time.sleep(0.05)
    assert [j["state"] for j in js] == ["done", "done"], f"the changed request did not run again: {js}"
    body = expect(alice.get(FH_PATH), 200).body
    resp = etree.fromstring(body).xpath("//fh:import-profile[@id='imp-9']/fh:response", namespaces=NS)
    assert len(resp) == 1, body
    expect_response(resp[0], "success", 200)
    assert resp[0].get("updated") >= updated_first, "the second run did not write its own <response>"


def test_subscribe_profile_is_answered_and_its_credentials_removed(local):
    """A subscribe-profile is answered by its first import (seq 1), never
    left waiting, and its password leaves the document as for any request;
    the watch that keeps it up to date (test_iwf_watch.py) is listed."""
    alice = local.client(ALICE)
    req = import_request(rid="sub-1").replace("import-profile", "subscribe-profile")
    expect(alice.put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, body = wait_response(alice, ALICE, "sub-1", timeout=10)
    expect_response(resp, "success", 200)
    assert resp.get("seq") == "1", etree.tostring(resp)
    assert PASSWORDS[ALICE].encode() not in body, "the password stayed in the document"
    assert b"<credentials>" not in body, body
    js = jobs(local, "--user", ALICE)
    assert [(j["kind"], j["state"], j["code"]) for j in js] == [("subscribe", "done", 200)], js
    subs = local.ctl("subscriptions", "--user", ALICE, check=0).stdout.decode().splitlines()
    assert [line.split("\t")[1:4] for line in subs] == [["sub-1", "remote-cab", "active"]], subs


def test_ended_jobs_carry_the_reason_of_their_response_and_failures_are_warnings(local):
    alice = local.client(ALICE)
    ok = import_request(rid="ok-1")
    unknown = request_xml("import-profile", "bad-1", "no-such-adapter", remote_user=ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(ok, unknown)), 201)
    resp_ok, _ = wait_response(alice, ALICE, "ok-1")
    resp_bad, _ = wait_response(alice, ALICE, "bad-1")
    expect_response(resp_bad, "failure", 404)
    by_request = {j["request"]: j for j in jobs(local, "--user", ALICE)}
    for rid, resp in (("ok-1", resp_ok), ("bad-1", resp_bad)):
        reason = resp.find("{urn:oma:xml:cab:feature-handler}reason").text
        assert reason and by_request[rid]["reason"] == reason, \
            f"{rid}: xdmsctl jobs says {by_request[rid]['reason']!r}, the <response> says {reason!r}"
    log = local.log_tail(400)
    assert any(" warn iwf job " in line and "bad-1" in line and "adapter no-such-adapter" in line
               and "failed 404" in line and ALICE in line for line in log.splitlines()), log


def test_response_does_not_repeat_a_namespace_declaration_in_scope(local):
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(rid="ns-1"))), 201)
    _, body = wait_response(alice, ALICE, "ns-1")
    start = body.index(b"<response")
    tag = body[start:body.index(b">", start)]
    assert b"xmlns" not in tag, f"the <response> repeats the default namespace: {tag!r}"
    # A document that binds the namespace to a prefix only: the response must
    # still be in it, so it declares it.
    prefixed = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b'<fh:cab-feature-handler xmlns:fh="urn:oma:xml:cab:feature-handler">'
                b'<fh:import-profile id="ns-2"><fh:third-party id="remote-cab"/>'
                b'<fh:remote-user>' + ALICE.encode() + b'</fh:remote-user></fh:import-profile>'
                b'</fh:cab-feature-handler>\n')
    expect(alice.put_doc(FH, ALICE, prefixed), 200)
    resp, body = wait_response(alice, ALICE, "ns-2")
    assert resp.tag == "{urn:oma:xml:cab:feature-handler}response", body


def test_partial_result_names_what_was_left_out_and_why(local):
    alice = local.client(ALICE)
    # The preferences forbid photos; the request asks for names and tel only.
    prefs = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<cab-user-prefs xmlns="urn:oma:xml:cab:user-prefs"><import-prefs>'
             b'<allowed-fields>fn n tel</allowed-fields></import-prefs></cab-user-prefs>\n')
    r = alice.put(doc_path("org.openmobilealliance.cab-user-prefs", ALICE), prefs,
                  "application/vnd.oma.cab-user-prefs+xml")
    assert r.status in (200, 201), r.describe()
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(rid="p-1", fields="fn tel email"))), 201)
    resp, _ = wait_response(alice, ALICE, "p-1")
    expect_response(resp, "partial-success", 206)
    reason = resp.find("{urn:oma:xml:cab:feature-handler}reason").text
    assert "email (not allowed by the user's preferences)" in reason, reason
    assert "adr (not in <fields>)" in reason and "photo (not in <fields>)" in reason, reason
    assert "tel (" not in reason, reason


def test_a_profile_with_several_people_is_not_silently_cut(start_server):
    remote = start_server(name="remote")
    two = data("pcc-alice.xml").replace(
        b"</person-details>\n</pcc>",
        b"</person-details>\n<person-details><name><name-entry pref=\"1\"><display-name>Friend</display-name>"
        b"</name-entry></name></person-details>\n</pcc>")
    assert two.count(b"<person-details>") == 2
    expect(remote.client(ALICE).put_doc(PCC, ALICE, two), 201)
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote))
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(import_request(rid="two-1"))), 201)
    resp, _ = wait_response(alice, ALICE, "two-1")
    expect_response(resp, "partial-success", 206)
    reason = resp.find("{urn:oma:xml:cab:feature-handler}reason").text
    assert "1 more <person-details> not imported" in reason and "address book" in reason, reason
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200).body
    assert b"Friend" not in pcc and pcc.count(b"<person-details") == 1, pcc
