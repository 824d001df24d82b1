# SPDX-License-Identifier: MIT
"""The xcap-diff notifier (RFC 5875, RFC 6665) against a real xdmsd.

A Python subscriber (sipua.Subscriber) SUBSCRIBEs over UDP or TCP, answers
NOTIFYs and parses their xcap-diff bodies; documents change through real XCAP
requests (xdmslib.Client) or xdmsctl. The sipp-driven flows are in
test_notify_sipp.py.
"""

import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from sipua import DIFF_NS, Subscriber, digest_authorization, rl_body
from xdmslib import ALICE, BOB, IWF, PASSWORDS, data, expect, sip_port, unquote

PCC = "org.openmobilealliance.cab-pcc"
FH = "org.openmobilealliance.cab-feature-handler"
PCC_MIME = "application/vnd.oma.cab-pcc+xml"
ALICE_PCC = f"{PCC}/users/{ALICE}/index"
BOB_PCC = f"{PCC}/users/{BOB}/index"
D = f"{{{DIFF_NS}}}"


@pytest.fixture
def nserver(start_server):
    """SIP on, subscriber identity from From (lab mode)."""
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.aggregate_window": "400"})
    srv.sip = sip_port(srv)
    return srv


@pytest.fixture
def subs():
    made = []

    def factory(srv, aor=ALICE, transport="UDP", **kw):
        s = Subscriber(srv.sip, aor=aor, transport=transport, **kw)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


def put_pcc(srv, xui=ALICE, body=None):
    resp = srv.client(xui).put_doc(PCC, xui, body or data("pcc-alice.xml").replace(ALICE.encode(), xui.encode()))
    assert resp.status in (200, 201), resp.describe()
    return unquote(resp.header("ETag"))


def subscribe_ok(s, *uris, mode=None, expires=600):
    resp = s.subscribe(rl_body(*uris), mode=mode, expires=expires)
    assert resp.status == 200, resp
    assert int(resp.header("Expires")) == expires
    first = s.notify()
    assert first.header("Event") == "xcap-diff"
    assert first.header("Subscription-State") == f"active;expires={expires}" or \
        first.header("Subscription-State").startswith("active;expires=")
    assert first.header("Content-Type") == "application/xcap-diff+xml"
    return first


def node_text(el):
    return ET.tostring(el, encoding="unicode")


# ---------------------------------------------------------------------------
# Full state and changes


def test_full_state_then_element_patch(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    first = subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    root = first.diff()
    assert root.get("xcap-root").startswith("http://127.0.0.1:") and root.get("xcap-root").endswith("/xcap-root/")
    assert first.documents() == [{"new-etag": etag1, "sel": ALICE_PCC}]
    assert first.cseq() >= 1

    # An element PUT: a new tel after the last one.
    tel = (b'<tel xmlns="urn:oma:xml:cab:pcc" pref="3" tel-type="Home"><tel-nb><tel-string>'
           b'tel:+15555550150</tel-string></tel-nb></tel>')
    c = nserver.client(ALICE)
    resp = c.put(f"/xcap-root/{ALICE_PCC}/~~/pcc/person-details/comm-addr/tel[3]", tel,
                  "application/xcap-el+xml")
    expect(resp, 201)
    etag2 = unquote(resp.header("ETag"))
    n = s.notify()
    assert n.cseq() == first.cseq() + 1
    docs = n.diff().findall(f"{D}document")
    assert len(docs) == 1
    d = docs[0]
    assert (d.get("previous-etag"), d.get("new-etag"), d.get("sel")) == (etag1, etag2, ALICE_PCC)
    ops = list(d)
    assert len(ops) == 1 and ops[0].tag == f"{D}add", node_text(d)
    assert ops[0].get("pos") == "after" and ops[0].get("sel").endswith("pcc:tel[2]"), node_text(d)
    added = list(ops[0])
    assert len(added) == 1 and added[0].tag == "{urn:oma:xml:cab:pcc}tel"
    assert added[0].find(".//{urn:oma:xml:cab:pcc}tel-string").text == "tel:+15555550150"
    # the prefix used in sel is declared on the root
    assert 'xmlns:pcc="urn:oma:xml:cab:pcc"' in n.body.decode()


def test_whole_document_put_gets_a_computed_patch(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    etag2 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    d = s.notify().diff().find(f"{D}document")
    assert (d.get("previous-etag"), d.get("new-etag")) == (etag1, etag2)
    ops = list(d)
    assert len(ops) == 1 and ops[0].tag == f"{D}replace", node_text(d)
    assert ops[0].get("sel") == "pcc:pcc/pcc:person-details/pcc:career/pcc:employer/text()"
    assert ops[0].text == "Acme Corp"


def test_same_bytes_again_is_body_not_changed(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    etag2 = put_pcc(nserver)
    d = s.notify().diff().find(f"{D}document")
    assert (d.get("previous-etag"), d.get("new-etag")) == (etag1, etag2)
    assert [x.tag for x in d] == [f"{D}body-not-changed"]


def test_no_patching_sends_etags_only(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)  # no diff-processing: no-patching
    etag2 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    d = s.notify().diff().find(f"{D}document")
    assert (d.get("previous-etag"), d.get("new-etag")) == (etag1, etag2)
    assert list(d) == []


def test_delete_reports_previous_etag_only(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    expect(nserver.client(ALICE).delete(f"/xcap-root/{ALICE_PCC}"), 200)
    d = s.notify().diff().find(f"{D}document")
    assert d.attrib == {"previous-etag": etag1, "sel": ALICE_PCC}
    assert list(d) == []


def test_missing_document_is_absent_from_full_state_then_created(nserver, subs):
    s = subs(nserver)
    first = subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    assert first.documents() == []
    etag = put_pcc(nserver)
    assert s.notify().documents() == [{"new-etag": etag, "sel": ALICE_PCC}]


def test_changes_queue_behind_an_unanswered_notify_and_chain(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    s.auto_answer = None
    etag2 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Two"))
    held = s.notify()
    etag3 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Three"))
    etag4 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Four"))
    s.pump(0.5)
    assert [m for m in s.inbox if m.method == "NOTIFY" and m.cseq() != held.cseq()] == [], \
        "a second NOTIFY went out before the first was answered"
    s.inbox = [m for m in s.inbox if m.method != "NOTIFY"]
    s.auto_answer = 200
    s._answer(held, 200)
    assert [(d["previous-etag"], d["new-etag"]) for d in held.documents()] == [(etag1, etag2)]
    n = s.notify()
    assert n.cseq() == held.cseq() + 1
    chain = [(d["previous-etag"], d["new-etag"]) for d in n.documents()]
    assert chain == [(etag2, etag3), (etag3, etag4)]
    for d in n.diff().findall(f"{D}document"):
        assert [x.tag for x in d] == [f"{D}replace"]


def test_aggregate_coalesces_within_the_window(start_server, subs):
    # A window wide enough for two PUTs on a loaded machine (the fixture's
    # 400 ms was not always).
    nserver = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                     "notify.aggregate_window": "2000"})
    nserver.sip = sip_port(nserver)
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="aggregate")
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Two"))
    etag3 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Three"))
    n = s.notify()
    docs = n.diff().findall(f"{D}document")
    assert len(docs) == 1, n.body
    assert (docs[0].get("previous-etag"), docs[0].get("new-etag")) == (etag1, etag3)
    ops = list(docs[0])
    assert [x.tag for x in ops] == [f"{D}replace", f"{D}replace"]
    assert [x.text for x in ops] == ["Corp Two", "Corp Three"]
    s.no_notify(0.8)


def test_collection_subscription_sees_new_documents(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trusted_peers": "127.0.0.1"})
    srv.sip = sip_port(srv)
    s = subs(srv, aor="sip:cab-server@example.com")
    resp = s.subscribe(rl_body(f"{FH}/users/"), extra=[f"P-Asserted-Identity: <{IWF}>"])
    assert resp.status == 200, resp
    assert s.notify().documents() == []
    body = data("fh-requests.xml")
    resp = srv.client(ALICE).put_doc(FH, ALICE, body)
    assert resp.status == 201, resp.describe()
    n = s.notify()
    assert n.documents() == [{"new-etag": unquote(resp.header("ETag")), "sel": f"{FH}/users/{ALICE}/index"}]
    # Documents of other usages are not reported.
    put_pcc(srv)
    s.no_notify(1.0)


def test_collection_full_state_is_paged_across_notifies(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.max_body": "2000", "auth.server_identities": "sip:cab@example.com"})
    srv.sip = sip_port(srv)
    expect(srv.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    for i in range(40):
        srv.ctl("doc", "put", f"{PCC}/users/sip:u{i:02d}@example.com/index", "-", input=data("pcc-alice.xml"),
                check=0)
    s = subs(srv, aor="sip:cab@example.com")
    assert s.subscribe(rl_body(f"{PCC}/users/")).status == 200
    seen = []
    while len(seen) < 41:
        n = s.notify()
        assert len(n.body) <= 2000 + 200
        seen += [d["sel"] for d in n.documents()]
    assert len(seen) == len(set(seen)) == 41
    s.no_notify(0.8)


def test_element_subscription_reports_the_element(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    sel = f"{ALICE_PCC}/~~/pcc/person-details/career"
    first = subscribe_ok(s, sel)
    el = first.diff().find(f"{D}element")
    assert el is not None and el.get("sel") == sel, first.body
    career = el.find("{urn:oma:xml:cab:pcc}career")
    assert career.find("{urn:oma:xml:cab:pcc}employer").text == "Example Corp"
    # A change elsewhere in the document: nothing to report.
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Springfield</place>", b"Shelbyville</place>"))
    s.no_notify(1.0)
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    n = s.notify()
    el = n.diff().find(f"{D}element")
    assert el.find(".//{urn:oma:xml:cab:pcc}employer").text == "Acme Corp"
    expect(nserver.client(ALICE).delete(f"/xcap-root/{ALICE_PCC}"), 200)
    el = s.notify().diff().find(f"{D}element")
    assert el.get("exists") == "0"


def test_tcp_subscription(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver, transport="TCP")
    first = subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    assert first.documents() == [{"new-etag": etag1, "sel": ALICE_PCC}]
    assert "SIP/2.0/TCP" in first.header("Via")
    etag2 = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    assert [(d["previous-etag"], d["new-etag"]) for d in s.notify().documents()] == [(etag1, etag2)]


# ---------------------------------------------------------------------------
# Refresh, unsubscribe, expiry, fetch


def test_refresh_without_body_keeps_the_list_and_sends_full_state(nserver, subs):
    etag1 = put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)
    resp = s.subscribe(None, expires=900)
    assert resp.status == 200 and resp.header("Expires") == "900"
    n = s.notify()
    assert n.documents() == [{"new-etag": etag1, "sel": ALICE_PCC}]
    assert n.header("Subscription-State") in ("active;expires=900", "active;expires=899")


def test_refresh_with_body_replaces_the_list(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)
    fh = nserver.client(ALICE).put_doc(FH, ALICE, data("fh-requests.xml"))
    assert fh.status == 201
    resp = s.subscribe(rl_body(f"{FH}/users/{ALICE}/index"))
    assert resp.status == 200
    assert [d["sel"] for d in s.notify().documents()] == [f"{FH}/users/{ALICE}/index"]
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    s.no_notify(1.0)


def test_unsubscribe_sends_terminated_and_stops(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)
    resp = s.subscribe(None, expires=0)
    assert resp.status == 200 and resp.header("Expires") == "0"
    final = s.notify()
    assert final.header("Subscription-State").startswith("terminated")
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    s.no_notify(1.0)
    # The dialog is gone: a refresh is 481.
    assert s.subscribe(None, expires=600).status == 481


def test_fetch_with_expires_zero(nserver, subs):
    etag = put_pcc(nserver)
    s = subs(nserver)
    resp = s.subscribe(rl_body(ALICE_PCC), expires=0)
    assert resp.status == 200
    n = s.notify()
    assert n.header("Subscription-State") == "terminated;reason=timeout"
    assert n.documents() == [{"new-etag": etag, "sel": ALICE_PCC}]


def test_expiry_sends_terminated_timeout(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.min_expires": "1"})
    srv.sip = sip_port(srv)
    s = subs(srv)
    subscribe_ok(s, ALICE_PCC, expires=2)
    n = s.notify(timeout=5)
    assert n.header("Subscription-State") == "terminated;reason=timeout"


def test_expires_above_the_maximum_is_cut(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.max_expires": "7200"})
    srv.sip = sip_port(srv)
    s = subs(srv)
    resp = s.subscribe(rl_body(ALICE_PCC), expires=99999)
    assert resp.status == 200 and resp.header("Expires") == "7200"


# ---------------------------------------------------------------------------
# Refusals


def test_too_short_is_423_with_min_expires(nserver, subs):
    resp = subs(nserver).subscribe(rl_body(ALICE_PCC), expires=10)
    assert resp.status == 423 and resp.header("Min-Expires") == "60"


def test_other_event_is_489(nserver, subs):
    resp = subs(nserver).subscribe(rl_body(ALICE_PCC), event="presence")
    assert resp.status == 489 and resp.header("Allow-Events") == "xcap-diff"


def test_wrong_body_type_is_415(nserver, subs):
    resp = subs(nserver).subscribe(rl_body(ALICE_PCC), content_type="application/xml")
    assert resp.status == 415 and resp.header("Accept") == "application/resource-lists+xml"


def test_accept_without_xcap_diff_is_406(nserver, subs):
    resp = subs(nserver).subscribe(rl_body(ALICE_PCC), accept="application/pidf+xml")
    assert resp.status == 406


@pytest.mark.parametrize("body", [b"<resource-lists", b"<other xmlns='urn:x'/>",
                                  rl_body().replace(b"<list>", b"<list>"),
                                  rl_body("org.openmobilealliance.cab-pcc/users/sip:alice@example.com/index/~~/pcc[")])
def test_bad_body_is_400(nserver, subs, body):
    s = subs(nserver)
    resp = s.subscribe(body)
    assert resp.status == 400, resp
    assert resp.header("Warning", "").startswith("399 xdmsd "), resp


def test_missing_body_on_a_new_subscription_is_400(nserver, subs):
    assert subs(nserver).subscribe(None).status == 400


def test_other_users_document_is_403(nserver, subs):
    s = subs(nserver)
    for uri in (BOB_PCC, f"{PCC}/users/", f"{PCC}/"):
        resp = s.subscribe(rl_body(ALICE_PCC, uri))
        assert resp.status == 403, (uri, resp)


def test_unknown_dialog_is_481(nserver, subs):
    s = subs(nserver)
    s.remote_tag = "nosuchtag"
    assert s.subscribe(rl_body(ALICE_PCC)).status == 481


def test_per_user_cap_is_503_with_retry_after(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.max_per_user": "2"})
    srv.sip = sip_port(srv)
    for _ in range(2):
        subscribe_ok(subs(srv), ALICE_PCC)
    resp = subs(srv).subscribe(rl_body(ALICE_PCC))
    assert resp.status == 503 and resp.header("Retry-After") == "30"
    # Another user is not affected.
    assert subs(srv, aor=BOB).subscribe(rl_body(BOB_PCC)).status == 200


def test_untrusted_subscriber_is_challenged_and_digest_works(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trusted_peers": "127.0.0.2"})
    srv.sip = sip_port(srv)
    s = subs(srv)
    # P-Asserted-Identity from an untrusted address is ignored.
    resp = s.subscribe(rl_body(ALICE_PCC), extra=[f"P-Asserted-Identity: <{ALICE}>"])
    assert resp.status == 401, resp
    challenges = resp.all("WWW-Authenticate")
    assert challenges and all(c.startswith("Digest ") for c in challenges)
    chal = dict(re.findall(r'(\w+)="?([^",]+)"?', challenges[0]))
    assert chal["realm"] == "example.com"
    auth, response = digest_authorization(challenges[0], "alice", PASSWORDS[ALICE], ALICE)
    resp = s.subscribe(rl_body(ALICE_PCC), extra=[f"Authorization: {auth}"])
    assert resp.status == 200, resp
    assert s.notify().header("Event") == "xcap-diff"
    # Wrong password: challenged again.
    s2 = subs(srv)
    bad = auth.replace(response, "0" * len(response))
    assert s2.subscribe(rl_body(ALICE_PCC), extra=[f"Authorization: {bad}"]).status == 401


# ---------------------------------------------------------------------------
# Failures of the subscriber, and restarts


def test_notify_answered_481_ends_the_subscription(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)
    s.auto_answer = 481
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    s.notify()
    deadline = time.monotonic() + 10
    while not re.search(r"answered 481: subscription ended", nserver.log_path.read_text()):
        assert time.monotonic() < deadline, f"no 'answered 481: subscription ended':\n{nserver.log_tail()}"
        time.sleep(0.02)
    s.auto_answer = 200
    put_pcc(nserver)
    s.no_notify(1.0)
    assert s.subscribe(None).status == 481


def test_restart_resumes_with_higher_cseq_and_catches_up(start_server, subs, tmp_path):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    srv.sip = sip_port(srv)
    etag1 = put_pcc(srv)
    s = subs(srv)
    first = subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    etag2 = put_pcc(srv, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Two"))
    n2 = s.notify()
    assert [(d["previous-etag"], d["new-etag"]) for d in n2.documents()] == [(etag1, etag2)]
    srv.stop()
    # A change while xdmsd is down (xdmsctl writes the same store and feed).
    srv.ctl("doc", "put", ALICE_PCC, "-", input=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Three"),
            check=0)
    srv.settings["sip.listen"] = f"127.0.0.1:{srv.sip}"
    srv.start()
    n3 = s.notify(timeout=8)
    docs = n3.documents()
    assert len(docs) == 1 and docs[0]["previous-etag"] == etag2 and docs[0]["new-etag"] != etag2, n3
    assert n3.cseq() > n2.cseq() > first.cseq()
    etag4 = put_pcc(srv, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp Four"))
    n4 = s.notify()
    assert [(d["previous-etag"], d["new-etag"]) for d in n4.documents()] == [(docs[0]["new-etag"], etag4)]
    assert n4.cseq() == n3.cseq() + 1
    s.no_notify(1.0)


def full_state_acked(srv):
    """The subscription's stored record (the notifier's text record in the
    subs database, read with mdb_dump) says its full state was acknowledged."""
    res = subprocess.run(["mdb_dump", "-p", "-s", "subs", str(srv.data_dir)], capture_output=True, timeout=30)
    return res.returncode == 0 and b"full 1" in res.stdout


def test_subscription_survives_kill9(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"}, sync=True)
    srv.sip = sip_port(srv)
    etag1 = put_pcc(srv)
    s = subs(srv)
    subscribe_ok(s, ALICE_PCC)
    srv.kill9()
    srv.settings["sip.listen"] = f"127.0.0.1:{srv.sip}"
    srv.start()
    # A crash may repeat the full state if its acknowledgement was not
    # recorded yet. Once the stored record says it was acknowledged, any
    # repeat has gone out and been answered; a write before that could be
    # folded into the repeated full state instead of a change of its own.
    deadline = time.monotonic() + 15
    while not full_state_acked(srv):
        assert time.monotonic() < deadline, "the full state's acknowledgement was never recorded"
        s.pump(0.05)
    etag2 = put_pcc(srv, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    # The next change arrives with the chain intact...
    n = s.wait(lambda m: m.method == "NOTIFY" and any("previous-etag" in d for d in m.documents()),
               timeout=15, what="the NOTIFY of the change")
    assert [(d["previous-etag"], d["new-etag"]) for d in n.documents()] == [(etag1, etag2)], n
    # ...and what came before it can only be that repeat (idempotent: the
    # same ETag), never anything else.
    for m in s.inbox:
        if m.method == "NOTIFY":
            assert m.documents() == [{"new-etag": etag1, "sel": ALICE_PCC}], m


def test_metrics_count_subscriptions_and_notifies(nserver, subs):
    from xdmslib import metric_sum, parse_metrics

    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC)
    put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"Acme Corp"))
    s.notify()
    resp = nserver.client().get("/metrics")
    expect(resp, 200)
    samples = parse_metrics(resp.body.decode())
    assert metric_sum(samples, "xdms_sip_subscriptions") == 1
    assert metric_sum(samples, "xdms_sip_notifies_total") == 2
    assert metric_sum(samples, "xdms_sip_notify_failures_total") == 0
    assert s.subscribe(None, expires=0).status == 200
    s.notify()
    deadline = time.monotonic() + 10
    while True:
        samples = parse_metrics(nserver.client().get("/metrics").body.decode())
        if metric_sum(samples, "xdms_sip_subscriptions") == 0:
            break
        assert time.monotonic() < deadline, "the ended subscription is still counted"
        time.sleep(0.02)


def test_notify_follows_the_record_route_set(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    p1 = f"<sip:127.0.0.1:{s.local_port};lr>"
    p2 = "<sip:192.0.2.7;lr;ftag=x>"
    resp = s.subscribe(rl_body(ALICE_PCC), extra=[f"Record-Route: {p1}, {p2}"])
    assert resp.status == 200
    assert resp.all("Record-Route") in ([f"{p1}, {p2}"], [p1, p2]), resp
    n = s.notify()
    # RFC 3261 §12.1.1: the UAS's route set is the Record-Route list in order.
    routes = [r.strip() for v in n.all("Route") for r in v.split(",")]
    assert routes == [p1.strip("<>").join("<>"), p2], n
    assert n.start.startswith("NOTIFY sip:sub@127.0.0.1:"), n  # the Request-URI is the Contact (loose routing)


def two_writes_read_at_once(srv, s, tries=4):
    """Two writes by another process (xdmsctl), which the notifier finds in
    one read of the feed (its 1 s poll) so that the version between them is
    never seen. The poll may fall between them; then the attempt is
    repeated. Returns (previous ETag, the NOTIFYs of the attempt)."""
    for attempt in range(tries):
        before = unquote(srv.client(ALICE).get(f"/xcap-root/{ALICE_PCC}").header("ETag"))
        for name in (b"Corp Two %d" % attempt, b"Corp Three %d" % attempt):
            srv.ctl("doc", "put", ALICE_PCC, "-", input=data("pcc-alice.xml").replace(b"Example Corp", name),
                    check=0)
        got = [s.notify(timeout=4)]
        got += [m for m in s.pump(1.5) if m.method == "NOTIFY"]
        s.inbox.clear()
        if len(got) == 1 and len(got[0].documents()) in (1, 2) and \
                got[0].documents()[0].get("previous-etag") == before and \
                (len(got[0].documents()) == 2 or "Corp Two" not in got[0].body.decode()):
            return before, attempt, got[0]
    raise AssertionError("the two writes never reached the notifier in one read")


def test_aggregate_patch_spans_versions_never_seen(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="aggregate")
    before, attempt, n = two_writes_read_at_once(nserver, s)
    docs = n.diff().findall(f"{D}document")
    assert len(docs) == 1 and docs[0].get("previous-etag") == before, n.body
    # one patch from the first version to the last
    ops = list(docs[0])
    assert [x.tag for x in ops] == [f"{D}replace"] and ops[0].text == f"Corp Three {attempt}", n.body
    assert 'xmlns:pcc="urn:oma:xml:cab:pcc"' in n.body.decode()


def test_xcap_patching_without_the_previous_version_sends_etags_only(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver)
    subscribe_ok(s, ALICE_PCC, mode="xcap-patching")
    before, _, n = two_writes_read_at_once(nserver, s)
    docs = n.diff().findall(f"{D}document")
    assert len(docs) == 2 and docs[0].get("previous-etag") == before, n.body
    assert docs[1].get("previous-etag") == docs[0].get("new-etag")
    # Neither step can be diffed (the version between them was never read): ETags only.
    assert [list(d) for d in docs] == [[], []], n.body
    assert "xmlns:pcc" not in n.body.decode()


def test_request_credentials_never_leave_in_a_notify(start_server, subs):
    # The IWF is off here, so the credentials stay in the document: every
    # kind of report must still leave them out.
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    srv.sip = sip_port(srv)
    fh_sel = f"{FH}/users/{ALICE}/index"
    empty = b'<cab-feature-handler xmlns="urn:oma:xml:cab:feature-handler"/>'
    etag0 = unquote(expect(srv.client(ALICE).put_doc(FH, ALICE, empty), 201).header("ETag"))
    req = (b'<cab-feature-handler xmlns="urn:oma:xml:cab:feature-handler"><import-profile id="i1">'
           b'<third-party id="x"/><credentials><username>alice</username><password>s3cret-pw</password>'
           b'</credentials><remote-user>alice</remote-user></import-profile></cab-feature-handler>')
    doc_sub = subs(srv)
    subscribe_ok(doc_sub, fh_sel, mode="xcap-patching")
    node_sub = subs(srv)
    subscribe_ok(node_sub, f"{fh_sel}/~~/cab-feature-handler/import-profile")
    cred_sub = subs(srv)
    subscribe_ok(cred_sub, f"{fh_sel}/~~/cab-feature-handler/import-profile/credentials/password")
    etag1 = unquote(expect(srv.client(ALICE).put_doc(FH, ALICE, req), 200).header("ETag"))
    n = doc_sub.notify()
    assert b"s3cret-pw" not in n.body, n.body
    d = n.diff().find(f"{D}document")
    assert (d.get("previous-etag"), d.get("new-etag")) == (etag0, etag1) and list(d) == [], n.body
    for s in (node_sub, cred_sub):
        n = s.notify()
        assert b"s3cret-pw" not in n.body, n.body
        el = n.diff().find(f"{D}element")
        assert el is not None and el.get("exists") != "0", n.body


# ---------------------------------------------------------------------------
# Edge cases found in review


def test_subscriber_too_far_behind_is_deactivated_safely(start_server, subs):
    # Changes pile up behind an unanswered NOTIFY past notify.max_pending: the
    # subscription ends (deactivated) once the NOTIFY in flight is answered,
    # and the entries that NOTIFY carried are released only once.
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.max_pending": "5"})
    srv.sip = sip_port(srv)
    put_pcc(srv)
    s = subs(srv)
    subscribe_ok(s, ALICE_PCC)
    s.auto_answer = None
    put_pcc(srv, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp 0"))
    held = s.notify()
    for i in range(1, 9):
        put_pcc(srv, body=data("pcc-alice.xml").replace(b"Example Corp", b"Corp %d" % i))
    s.pump(0.3)
    s.inbox = [m for m in s.inbox if m.method != "NOTIFY"]
    s.auto_answer = 200
    s._answer(held, 200)
    final = s.notify()
    assert final.header("Subscription-State") == "terminated;reason=deactivated", final
    assert srv.alive()
    # It may subscribe again and gets the current state.
    s2 = subs(srv)
    first = subscribe_ok(s2, ALICE_PCC)
    assert first.documents()[0]["new-etag"] == unquote(
        srv.client(ALICE).get(f"/xcap-root/{ALICE_PCC}").header("ETag"))


def test_refresh_while_the_last_full_state_page_is_in_flight(nserver, subs):
    put_pcc(nserver)
    assert nserver.client(ALICE).put_doc(FH, ALICE, data("fh-requests.xml")).status == 201
    s = subs(nserver)
    s.auto_answer = None
    assert s.subscribe(rl_body(ALICE_PCC)).status == 200
    held = s.notify()  # the full state of the old list, unanswered
    assert s.subscribe(rl_body(f"{FH}/users/{ALICE}/index")).status == 200
    s.pump(0.3)
    s.inbox = [m for m in s.inbox if m.method != "NOTIFY"]
    s._answer(held, 200)
    s.auto_answer = 200
    # RFC 6665 §4.2.2: the refresh gets its own NOTIFY, with the new list's state.
    n = s.notify(timeout=4)
    assert [d["sel"] for d in n.documents()] == [f"{FH}/users/{ALICE}/index"]


def test_fetch_of_a_large_collection_sends_every_page(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.max_body": "2000", "auth.server_identities": "sip:cab@example.com"})
    srv.sip = sip_port(srv)
    for i in range(20):
        srv.ctl("doc", "put", f"{PCC}/users/sip:u{i:02d}@example.com/index", "-", input=data("pcc-alice.xml"),
                check=0)
    s = subs(srv, aor="sip:cab@example.com")
    assert s.subscribe(rl_body(f"{PCC}/users/"), expires=0).status == 200
    seen, states = [], []
    while not states or not states[-1].startswith("terminated"):
        n = s.notify(timeout=3)
        states.append(n.header("Subscription-State"))
        seen += [d["sel"] for d in n.documents()]
    assert len(states) > 1 and all(x == "active;expires=0" for x in states[:-1]), states
    assert states[-1] == "terminated;reason=timeout"
    assert len(seen) == len(set(seen)) == 20


def test_refresh_moves_the_subscriber_to_its_new_address(nserver, subs):
    put_pcc(nserver)
    s = subs(nserver, transport="TCP")
    subscribe_ok(s, ALICE_PCC)
    s.close()
    # The same dialog over a new TCP connection (the phone reconnected).
    t = subs(nserver, transport="TCP")
    t.call_id, t.tag, t.remote_tag, t.cseq = s.call_id, s.tag, s.remote_tag, s.cseq
    assert t.subscribe(None).status == 200
    t.notify(timeout=5)
    etag = put_pcc(nserver, body=data("pcc-alice.xml").replace(b"Example Corp", b"New Corp"))
    assert t.notify(timeout=5).documents()[0]["new-etag"] == etag


def changes_in_feed(srv):
    out = subprocess.run(["mdb_stat", "-s", "changes", str(srv.data_dir)], capture_output=True, text=True,
                         check=True).stdout
    return int(re.search(r"Entries: (\d+)", out).group(1))


@pytest.mark.skipif(shutil.which("mdb_stat") is None, reason="mdb_stat (Debian package lmdb-utils) is missing")
def test_a_quiet_subscription_does_not_hold_back_feed_pruning(start_server, subs):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "store.feed_retention": "1"})
    srv.sip = sip_port(srv)
    put_pcc(srv)
    subscribe_ok(subs(srv), ALICE_PCC)  # alice's PCC never changes again
    for _ in range(60):
        put_pcc(srv, xui=BOB)  # unrelated writes
    # Once they are older than the retention (1 s) and the notifier moved its
    # floor past them, each commit prunes up to 256 records.
    deadline = time.monotonic() + 20
    while changes_in_feed(srv) >= 10:
        assert time.monotonic() < deadline, f"the feed kept {changes_in_feed(srv)} records"
        put_pcc(srv, xui=BOB)
        time.sleep(0.3)  # a few writes per retention period, so what stays is < 10
