# SPDX-License-Identifier: MIT
"""The CAB client's view, end to end (DESIGN §2): the client subscribes to its
Feature Handler document and its PCC (xcap-diff over SIP), writes an
<import-profile> request over XCAP, and learns through NOTIFYs that the IWF
imported its profile from the 3rd party (a second xdmsd) into the PCC and
wrote the <response>. Every server is real; the subscriber is a real SIP UA
on a UDP socket (sipua.Subscriber) and, in the second test, sipp.
"""

import shutil
import subprocess
import time

import pytest
from lxml import etree

import patchlib
from iwflib import FH_NS, add_adapter, fh_doc, pcc_url, request_xml, response_of, text
from sipua import DIFF_NS, Subscriber, rl_body
from xdmslib import ALICE, FH, HERE, PASSWORDS, PCC, data, doc_path, expect, sip_port, unquote

D = f"{{{DIFF_NS}}}"
FH_SEL = f"{FH}/users/{ALICE}/index"
PCC_SEL = f"{PCC}/users/{ALICE}/index"

# The local PCC holds the remote profile but for its mobile number, which the
# import brings in: a patch small next to the document (a patch larger than
# the document is sent as ETags only, by design), so the NOTIFY must carry it.
CAB_LOCAL_PCC = b"".join(line for line in data("pcc-alice.xml").splitlines(keepends=True)
                         if b"tel:+15555550101" not in line)


@pytest.fixture
def cab(start_server):
    remote = start_server(name="remote")
    expect(remote.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    local = start_server(name="local", settings={
        "iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
        "sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    local.sip = sip_port(local)
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote))
    alice = local.client(ALICE)
    pcc0 = unquote(expect(alice.put_doc(PCC, ALICE, CAB_LOCAL_PCC), 201).header("ETag"))
    fh0 = unquote(expect(alice.put_doc(FH, ALICE, fh_doc()), 201).header("ETag"))
    return local, alice, pcc0, fh0


def without_credentials(doc):
    """@doc (a Feature Handler document) without its <credentials>, as the
    IWF leaves it once it sealed them."""
    root = etree.fromstring(doc)
    for c in root.iter(f"{{{FH_NS}}}credentials"):
        c.getparent().remove(c)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def import_request():
    return request_xml("import-profile", "imp-1", "remote-cab", remote_user=ALICE, username=ALICE,
                       password=PASSWORDS[ALICE])


def test_client_learns_of_import_and_response_by_notify(cab):
    local, alice, pcc0, fh0 = cab
    s = Subscriber(local.sip)
    try:
        resp = s.subscribe(rl_body(FH_SEL, PCC_SEL), mode="xcap-patching")
        assert resp.status == 200, resp
        full = s.notify()
        assert sorted((d["sel"], d["new-etag"]) for d in full.documents()) == sorted(
            [(FH_SEL, fh0), (PCC_SEL, pcc0)])

        # The bytes of the two documents as the full state reported them:
        # each patch that follows is applied to them (patchlib, an RFC 5261
        # applier independent of the server's), in order.
        state = {FH_SEL: expect(alice.get(doc_path(FH, ALICE)), 200),
                 PCC_SEL: expect(alice.get(doc_path(PCC, ALICE)), 200)}
        assert unquote(state[FH_SEL].etag) == fh0 and unquote(state[PCC_SEL].etag) == pcc0
        state = {sel: r.body for sel, r in state.items()}

        fh1 = unquote(expect(alice.put_doc(FH, ALICE, fh_doc(import_request())), 200).header("ETag"))

        # Collect transitions until the <response> is reported.
        chains = {FH_SEL: [fh0], PCC_SEL: [pcc0]}
        patched = {FH_SEL: 0, PCC_SEL: 0}
        response_seen = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not response_seen:
            n = s.notify(timeout=max(0.1, deadline - time.monotonic()))
            # The request's credentials never travel in a NOTIFY (the IWF seals them away).
            assert PASSWORDS[ALICE].encode() not in n.body, n.body
            for d in etree.fromstring(n.body).findall(f"{D}document"):
                sel = d.get("sel")
                assert d.get("previous-etag") == chains[sel][-1], (sel, chains, n.body)
                chains[sel].append(d.get("new-etag"))
                ops = patchlib.operations(d)
                if ops:
                    state[sel] = patchlib.apply(state[sel], ops)
                    patched[sel] += 1
                elif d.find(f"{D}body-not-changed") is None:
                    # ETags only, by design, for a patch that would show the
                    # secret: the client's write that brought the
                    # <credentials>, and the IWF's that sealed them away.
                    assert sel == FH_SEL and len(chains[sel]) <= 3, (
                        f"{sel}: a transition without a patch: {n.body.decode()}")
                    state[sel] = without_credentials(fh_doc(import_request()))
                if sel == FH_SEL:
                    r = response_of(state[sel], "imp-1")
                    response_seen = r is not None and r.get("status") not in ("pending", "in-progress")
        assert response_seen, f"no NOTIFY reported the final <response>; transitions seen: {chains}"

        # What the NOTIFYs said is what the documents are, byte for byte in
        # canonical XML: the patches rebuilt both documents.
        fh_now = expect(alice.get(doc_path(FH, ALICE)), 200)
        pcc_now = expect(alice.get(doc_path(PCC, ALICE)), 200)
        assert chains[FH_SEL][1] == fh1
        assert chains[FH_SEL][-1] == unquote(fh_now.header("ETag"))
        assert chains[PCC_SEL][-1] == unquote(pcc_now.header("ETag")), chains
        assert patched[PCC_SEL] >= 1, f"the import reached no PCC patch: {chains}"
        assert patchlib.canonical(state[PCC_SEL]) == patchlib.canonical(pcc_now.body), (
            state[PCC_SEL], pcc_now.body)
        assert patchlib.canonical(state[FH_SEL]) == patchlib.canonical(fh_now.body), (
            state[FH_SEL], fh_now.body)
        r = response_of(fh_now.body, "imp-1")
        assert r.get("status") == "success" and r.get("code") == "200", etree.tostring(r)
        assert text(r, "pcc-etag") == chains[PCC_SEL][-1]
        # The import brought the remote profile's number into the PCC.
        assert b"tel:+15555550101" in pcc_now.body and b"tel:+15555550101" not in CAB_LOCAL_PCC
    finally:
        s.close()


SIPP = shutil.which("sipp")


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian package sip-tester) is not installed")
def test_sipp_client_receives_pcc_and_response_notifies(cab, tmp_path):
    """The same flow with sipp as the CAB client: it subscribes to both
    documents and must receive the full state, then NOTIFYs whose bodies
    report the PCC's new ETag and the <response> (checked by the scenario's
    regular expressions), answering each with 200."""
    local, alice, pcc0, fh0 = cab
    scen = HERE / "sipp" / "cab_client_import.xml"
    cmd = [SIPP, "-sf", str(scen), "-m", "1", "-t", "u1", "-i", "127.0.0.1", "-p", "0", "-nostdin",
           "-timeout", "40", "-timeout_error", "-max_recv_loops", "1000",
           "-key", "fh", FH_SEL, "-key", "pcc", PCC_SEL, "-key", "user", ALICE,
           "-trace_msg", "-message_file", str(tmp_path / "sipp.msg"), f"127.0.0.1:{local.sip}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        # Wait for the full state to have reached sipp, then write the request.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = tmp_path / "sipp.msg"
            if msg.exists() and "NOTIFY sip:" in msg.read_text(errors="replace"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("sipp got no full-state NOTIFY")
        expect(alice.put_doc(FH, ALICE, fh_doc(import_request())), 200)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out.decode(errors="replace")[-3000:], err.decode(errors="replace")[-2000:])
    trace = (tmp_path / "sipp.msg").read_text(errors="replace")
    pcc_now = unquote(expect(alice.get(doc_path(PCC, ALICE)), 200).header("ETag"))
    assert f'new-etag="{pcc_now}"' in trace, "no NOTIFY reported the imported PCC's ETag"
    assert PASSWORDS[ALICE] not in trace, "a NOTIFY carried the request's password"
