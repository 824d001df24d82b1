# SPDX-License-Identifier: MIT
"""Credentials in requests (SPEC 4.3 rule 4): inline ones leave the Feature
Handler document and are kept sealed, never in clear on disk or in logs; a
credential-ref names one an administrator provisioned."""

import stat
import time

from lxml import etree

from iwflib import NS, add_adapter, expect_response, fh_doc, jobs, pcc_url, request_xml, text, wait_response
from xdmslib import ALICE, FH, PASSWORDS, PCC, data, doc_path, expect

SECRET = "alice-secret"  # alice's password at the remote XDMS


def setup_pair(start_server):
    remote = start_server(name="remote")
    expect(remote.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    local = start_server(name="local", sync=True, users={ALICE: "local-password"},
                         settings={"iwf.enabled": "true", "iwf.retry_delay": "50",
                                   "iwf.max_attempts": "2"})
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote))
    return local, remote


def test_inline_credentials_are_moved_and_sealed(start_server):
    local, _ = setup_pair(start_server)
    alice = local.client(ALICE, password="local-password")
    req = request_xml("import-profile", "imp-1", "remote-cab", remote_user=ALICE, username=ALICE,
                      password=SECRET)
    expect(alice.put_doc(FH, ALICE, fh_doc(req)), 201)
    resp, body = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    root = etree.fromstring(body)
    assert root.xpath("//fh:credentials", namespaces=NS) == [], f"credentials left in {body!r}"
    assert SECRET.encode() not in body
    # In no stored document, nor in the log. (The bytes of the client's own
    # PUT may linger in LMDB's free pages until they are reused; a secret
    # that never was in a document is checked against the whole file in
    # test_credential_ref.)
    listing = local.ctl("doc", "list", check=0).stdout.decode().splitlines()
    assert listing, "no documents listed"
    for line in listing:
        doc = local.ctl("doc", "get", line.split("\t")[0], check=0).stdout
        assert SECRET.encode() not in doc, f"the password is in {line}"
    assert SECRET not in local.log_tail(2000)
    key = local.data_dir / "iwf.key"
    assert key.stat().st_size == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    # The client writing back what it read queues nothing; the sealed
    # credentials still serve a changed request.
    expect(alice.put_doc(FH, ALICE, body), 200)
    assert len(jobs(local)) == 1
    changed = body.replace(b"</remote-user>", b"</remote-user><fields>tel</fields>")
    expect(alice.put_doc(FH, ALICE, changed), 200)
    for _ in range(600):
        js = jobs(local)
        if len(js) == 2 and js[1]["state"] == "done":
            break
        time.sleep(0.05)
    assert [(j["state"], j["code"]) for j in jobs(local)] == [("done", 200), ("done", 206)], jobs(local)


def test_credential_ref(start_server):
    local, _ = setup_pair(start_server)
    local.ctl("credential", "set", ALICE, "remote-alice", "--username", ALICE, "--password", SECRET, check=0)
    alice = local.client(ALICE, password="local-password")
    reqs = [request_xml("import-profile", "imp-1", "remote-cab", remote_user=ALICE, credential_ref="remote-alice"),
            request_xml("import-profile", "imp-2", "remote-cab", remote_user=ALICE, credential_ref="nobody")]
    expect(alice.put_doc(FH, ALICE, fh_doc(*reqs)), 201)
    resp, body = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "success", 200)
    # A reference is not a secret: it stays.
    assert b"<credential-ref>remote-alice</credential-ref>" in body
    resp, _ = wait_response(alice, ALICE, "imp-2")
    expect_response(resp, "failure", 400)
    assert "nobody" in text(resp, "reason")
    assert SECRET.encode() not in open(local.data_dir / "data.mdb", "rb").read()
    local.ctl("credential", "del", ALICE, "remote-alice", check=0)
    local.ctl("credential", "del", ALICE, "remote-alice", check=1)


def test_adapter_credential_serves_requests_without_any(start_server):
    local, _ = setup_pair(start_server)
    alice = local.client(ALICE, password="local-password")
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "remote-cab", remote_user=ALICE))),
           201)
    resp, body = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "failure", 401)
    local.ctl("credential", "set", "--adapter", "remote-cab", "--username", ALICE, "--password", SECRET, check=0)
    changed = body.replace(b"</remote-user>", b"</remote-user><fields>tel</fields>")
    expect(alice.put_doc(FH, ALICE, changed), 200)
    for _ in range(600):
        if [j["state"] for j in jobs(local)] == ["failed", "done"]:
            break
        time.sleep(0.05)
    resp, _ = wait_response(alice, ALICE, "imp-1")
    expect_response(resp, "partial-success", 206)
    assert SECRET.encode() not in open(local.data_dir / "data.mdb", "rb").read()
    local.ctl("credential", "del", "--adapter", "remote-cab", check=0)
