# SPDX-License-Identifier: MIT
"""subscribe-profile (SPEC §4.3 rule 7, §5.3 step 8): the IWF watches the 3rd
party and keeps the PCC up to date. A second xdmsd is the remote XDMS, polled
with conditional GETs; a Python HTTP server on loopback is an HTTP 3rd party
that calls the webhook. Every wait polls with a deadline."""

import time

import pytest
from lxml import etree

from iwflib import (NS, WebhookThirdParty, add_adapter, expect_response, fh_doc, free_port, pcc_url, request_xml,
                    response_of, text, wait_for, wait_response)
from sipua import Subscriber, rl_body
from xdmslib import (ALICE, FH, PASSWORDS, PCC, data, doc_path, expect, metric_sum, parse_metrics, sip_port,
                     unquote)

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "3"}
PREFS = "org.openmobilealliance.cab-user-prefs"
PREFS_NS = "urn:oma:xml:cab:user-prefs"
NEW_TEL = b"tel:+15555550177"
PCC_SEL = f"{PCC}/users/{ALICE}/index"


def remote_pcc(tel=NEW_TEL, name=b"Alice Remote"):
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<pcc xmlns="urn:oma:xml:cab:pcc" pcc-type="individual"><person-details>'
            b'<name><name-entry pref="1"><display-name>' + name + b'</display-name></name-entry></name>'
            b'<comm-addr><tel pref="1" tel-type="Mobile"><tel-nb><tel-string>' + tel +
            b'</tel-string></tel-nb></tel></comm-addr></person-details></pcc>\n')


def subscribe_request(rid="sub-1", expires=None, third_party="remote-cab"):
    xml = request_xml("subscribe-profile", rid, third_party, remote_user=ALICE, username=ALICE,
                      password=PASSWORDS[ALICE])
    if expires is not None:
        xml = xml.replace("</subscribe-profile>", f"<expires>{expires}</expires></subscribe-profile>")
    return xml


def tels(body):
    return sorted(etree.fromstring(body).xpath("//pcc:tel-string/text()", namespaces=NS))


def seq_of(client, rid="sub-1"):
    r = expect(client.get(doc_path(FH, ALICE)), 200)
    resp = response_of(r.body, rid)
    return (int(resp.get("seq", "0")), resp) if resp is not None else (0, None)


def subscriptions(server):
    out = []
    for line in server.ctl("subscriptions", check=0).stdout.decode().splitlines():
        f = line.split("\t")
        assert len(f) == 12, f"xdmsctl subscriptions: expected 12 fields, got {line!r}"
        out.append({"xui": f[0], "request": f[1], "adapter": f[2], "state": f[3], "via": f[4], "seq": int(f[5]),
                    "failures": int(f[6]), "code": int(f[7]), "next": f[8], "expires": f[9],
                    "updated": f[10], "reason": f[11]})
    return out


def remote_conditional_gets(remote):
    """GETs the remote answered 304 (the watch's polls that found nothing new)."""
    m = parse_metrics(expect(remote.client().get("/metrics"), 200).body.decode())
    return metric_sum(m, "xdms_http_requests_total", method="GET", status="304") or 0


@pytest.fixture
def remote(start_server):
    srv = start_server(name="remote")
    expect(srv.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    return srv


def make_local(start_server, remote, settings=None, interval="1"):
    srv = start_server(name="local", settings={**FAST, **(settings or {})})
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", interval)
    return srv


def test_remote_change_reaches_local_pcc_and_its_subscriber(start_server, remote):
    local = make_local(start_server, remote, {"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    assert resp.get("seq") == "1", etree.tostring(resp)
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert text(resp, "pcc-etag") == unquote(pcc.etag)
    assert text(resp, "subscription-expires"), etree.tostring(resp)
    assert "polling" in text(resp, "reason"), etree.tostring(resp)
    subs = subscriptions(local)
    assert [(s["request"], s["state"], s["via"], s["seq"]) for s in subs] == [("sub-1", "active", "poll", 1)], subs

    s = Subscriber(sip_port(local))
    try:
        assert s.subscribe(rl_body(PCC_SEL)).status == 200
        full = s.notify()
        assert [d["sel"] for d in full.documents()] == [PCC_SEL], full
        # A change at the remote XDMS reaches the local PCC within the poll interval.
        expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
        wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
                 "the remote's new number in the local PCC")
        n = s.wait(lambda m: m.method == "NOTIFY" and any(d["sel"] == PCC_SEL for d in m.documents()),
                   timeout=10, what="a NOTIFY of the local PCC")
        pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
        assert [d["new-etag"] for d in n.documents()] == [unquote(pcc.etag)], n
    finally:
        s.close()
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "seq 2")
    expect_response(resp, "success", 200)
    assert text(resp, "pcc-etag") == unquote(pcc.etag), etree.tostring(resp)
    assert int(text(resp, "imported-count")) >= 1, etree.tostring(resp)
    # Nothing new at the remote: polls find 304s, the response stays as it is.
    before = remote_conditional_gets(remote)
    wait_for(lambda: remote_conditional_gets(remote) >= before + 2, "two more conditional GETs")
    assert seq_of(alice)[0] == 2
    m = parse_metrics(expect(local.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_watches") == 1
    assert metric_sum(m, "xdms_iwf_watch_updates_total") == 1
    assert metric_sum(m, "xdms_iwf_watch_polls_total", result="unchanged") >= 2


def test_expiry_terminates_with_410(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=2))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    seq, resp = wait_for(lambda: (lambda v: v if v[1] is not None and v[1].get("status") == "terminated" else None)(
        seq_of(alice)), "a terminated response", timeout=15)
    expect_response(resp, "terminated", 410)
    assert seq == 2 and "expired" in text(resp, "reason"), etree.tostring(resp)
    assert [s["state"] for s in subscriptions(local)] == ["terminated"]
    # Terminated: no more polls.
    before = remote_conditional_gets(remote)
    time.sleep(2.5)
    assert remote_conditional_gets(remote) == before


def test_delete_stops_polling(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    wait_response(alice, ALICE, "sub-1")
    before = remote_conditional_gets(remote)
    wait_for(lambda: remote_conditional_gets(remote) > before, "a poll")
    expect(alice.put_doc(FH, ALICE, fh_doc()), 200)
    assert subscriptions(local) == []
    # At most a poll already in flight; then the remote sees no more GETs.
    time.sleep(1.5)
    settled = remote_conditional_gets(remote)
    time.sleep(3)
    assert remote_conditional_gets(remote) == settled
    m = parse_metrics(expect(local.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_watches") == 0


def test_re_put_with_new_expires_refreshes(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=60))), 201)
    resp, fh = wait_response(alice, ALICE, "sub-1")
    first = text(resp, "subscription-expires")
    changed = fh.replace(b"<expires>60</expires>", b"<expires>7200</expires>")
    expect(alice.put_doc(FH, ALICE, changed), 200)
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "the refresh's seq 2")
    expect_response(resp, "success", 200)
    assert text(resp, "subscription-expires") > first, etree.tostring(resp)
    assert [(s["request"], s["seq"]) for s in subscriptions(local)] == [("sub-1", 2)]


@pytest.mark.parametrize("how", ["term", "kill"])
def test_change_while_down_is_imported_at_start(start_server, remote, how):
    local = make_local(start_server, remote, interval="3600")
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    wait_response(alice, ALICE, "sub-1")
    if how == "term":
        local.stop()
    else:
        local.kill9()
    expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
    local.start()
    alice = local.client(ALICE)
    # The next poll was up to an hour away, but the server was down
    # meanwhile: every watch is polled right after the start.
    wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             f"the change made while the server was down ({how}) in the local PCC")
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "seq 2")
    expect_response(resp, "success", 200)


def test_remote_gone_counts_failures_then_recovers(start_server, remote):
    port = free_port()
    local = make_local(start_server, remote)
    # A second adapter to a port nothing listens on yet.
    add_adapter(local, "flaky", "xcap", f"http://127.0.0.1:{port}/xcap-root/{PCC}/users/{{remote-user}}/index",
                "--poll-interval", "1")
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    wait_response(alice, ALICE, "sub-1")
    # Point the watched adapter at the dead port: the adapter is read again on every poll.
    add_adapter(local, "remote-cab", "xcap", f"http://127.0.0.1:{port}/xcap-root/{PCC}/users/{{remote-user}}/index",
                "--poll-interval", "1")
    wait_for(lambda: [s["failures"] for s in subscriptions(local)][0] >= 2, "two failed polls")
    sub = subscriptions(local)[0]
    assert sub["reason"].startswith("503"), sub
    m = parse_metrics(expect(local.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_watch_failures_total") >= 2
    # Back: the next poll succeeds and the count goes back to 0.
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", "1")
    wait_for(lambda: [s["failures"] for s in subscriptions(local)][0] == 0, "a good poll after the failures")
    expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
    wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             "the change after the recovery")


def put_prefs(client, body):
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<cab-user-prefs xmlns="{PREFS_NS}">{body}</cab-user-prefs>\n').encode()
    expect(client.put(doc_path(PREFS, ALICE), doc, "application/vnd.oma.cab-user-prefs+xml"), 201)


def test_max_expires_caps_the_subscription(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    put_prefs(alice, "<subscription-prefs><max-expires>3</max-expires></subscription-prefs>")
    t0 = time.time()
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=86400))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    until = time.mktime(time.strptime(text(resp, "subscription-expires"), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert until <= t0 + 3 + 30, (t0, text(resp, "subscription-expires"))
    wait_for(lambda: (lambda v: v if v[1] is not None and v[1].get("code") == "410" else None)(seq_of(alice)),
             "the capped subscription's end", timeout=15)


def test_max_expires_zero_forbids(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    put_prefs(alice, "<subscription-prefs><max-expires>0</max-expires></subscription-prefs>")
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request())), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "failure", 403)
    assert subscriptions(local) == []


def test_auto_update_false_holds_updates(start_server, remote):
    local = make_local(start_server, remote)
    alice = local.client(ALICE)
    put_prefs(alice, "<subscription-prefs><auto-update>false</auto-update></subscription-prefs>")
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    assert "held" in text(resp, "reason"), etree.tostring(resp)
    pcc_before = expect(alice.get(doc_path(PCC, ALICE)), 200)
    expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "the held update's seq 2")
    assert "held" in text(resp, "reason") and text(resp, "imported-count") == "0", etree.tostring(resp)
    pcc_after = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert pcc_after.etag == pcc_before.etag and NEW_TEL not in pcc_after.body
    assert [s["state"] for s in subscriptions(local)] == ["held"]
    # Said once: more polls of the same version write nothing.
    time.sleep(2.5)
    assert seq_of(alice)[0] == 2


def test_unknown_adapter_is_answered_at_once(start_server):
    """A subscribe-profile naming no configured adapter is answered, never
    left waiting."""
    local = start_server(name="local", settings=FAST)
    add_adapter(local, "remote-cab", "xcap", f"http://127.0.0.1:{free_port()}/x/{{remote-user}}")
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(third_party="nobody"))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "failure", 404)


# ---------------------------------------------------------------------------
# An HTTP 3rd party with a webhook (iwflib.WebhookThirdParty)

@pytest.fixture
def third_party():
    tp = WebhookThirdParty(remote_pcc(tel=b"tel:+15555550100"))
    yield tp
    tp.close()


def test_webhook_good_call_imports_bad_calls_change_nothing(start_server, third_party):
    local = start_server(name="local", settings=FAST)
    # The webhook base is where the 3rd party reaches xdmsd: known once it listens.
    base = f"http://127.0.0.1:{local.port}"
    add_adapter(local, "social", "http", f"http://127.0.0.1:{third_party.port}/profile/{{remote-user}}",
                "--import-xslt", "pcc-identity.xsl", "--export-xslt", "pcc-identity.xsl",
                "--watch", "webhook", "--webhook-base", base,
                "--webhook-register", f"http://127.0.0.1:{third_party.port}/hooks")
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(third_party="social", expires=3600))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    assert "webhook" in text(resp, "reason"), etree.tostring(resp)
    assert len(third_party.hooks) == 1, third_party.hooks
    hid = next(iter(third_party.hooks))
    assert third_party.hooks[hid]["callback"] == f"{base}/iwf/hook/{hid}"
    assert len(third_party.hooks[hid]["secret"]) == 64
    assert [s["via"] for s in subscriptions(local)] == ["webhook"]

    # The validation handshake echoes the token.
    r = expect(local.client().get(f"/iwf/hook/{hid}?challenge=tok-123"), 200)
    assert r.body == b"tok-123"
    expect(local.client().get("/iwf/hook/nosuchhook?challenge=x"), 404)

    third_party.profile = remote_pcc(tel=NEW_TEL)
    third_party.version = 2
    pcc_before = expect(alice.get(doc_path(PCC, ALICE)), 200)
    gets_before = third_party.gets
    # No signature, a wrong one, a wrong secret: refused, nothing fetched or changed.
    assert third_party.call_hook(hid, signature=False)[0] == 401
    assert third_party.call_hook(hid, signature="sha256=" + "0" * 64)[0] == 403
    assert third_party.call_hook(hid, secret="not-the-secret")[0] == 403
    time.sleep(1.0)
    assert third_party.gets == gets_before
    assert expect(alice.get(doc_path(PCC, ALICE)), 200).etag == pcc_before.etag
    assert seq_of(alice)[0] == 1
    # A good call: the watch fetches at once and imports.
    status, _ = third_party.call_hook(hid)
    assert status == 202
    wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             "the webhook's change in the local PCC")
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "seq 2")
    expect_response(resp, "success", 200)
    m = parse_metrics(expect(local.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_webhook_calls_total", outcome="accepted") == 1
    assert metric_sum(m, "xdms_iwf_webhook_calls_total", outcome="bad_signature") == 2
    assert metric_sum(m, "xdms_iwf_webhook_calls_total", outcome="unsigned") == 1
    # The same call again: fetched (304), nothing changes.
    assert third_party.call_hook(hid)[0] == 202
    time.sleep(1.0)
    assert seq_of(alice)[0] == 2
    # Deleting the request unregisters the webhook.
    expect(alice.put_doc(FH, ALICE, fh_doc()), 200)
    wait_for(lambda: third_party.unregistered == [hid], "the webhook's unregistration")
    expect(local.client().get(f"/iwf/hook/{hid}?challenge=x"), 404)


# ---------------------------------------------------------------------------
# SIP: the local xdmsd SUBSCRIBEs (xcap-diff) to the remote XDMS

def remote_sip_subscriptions(remote):
    m = parse_metrics(expect(remote.client().get("/metrics"), 200).body.decode())
    return metric_sum(m, "xdms_sip_subscriptions") or 0


@pytest.fixture
def sip_pair(start_server):
    remote = start_server(name="remote", settings={"sip.listen": "127.0.0.1:0"})
    expect(remote.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    # A fixed SIP port, as in production: after a restart, what the remote
    # side sends in the dialog still reaches this server.
    local = start_server(name="local", settings={**FAST, "sip.listen": f"127.0.0.1:{free_port()}",
                                                 "sip.trust_from": "true"})
    # Polling an hour apart: what arrives within seconds came by NOTIFY.
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", "3600",
                "--sip-uri", f"sip:127.0.0.1:{sip_port(remote)}")
    return remote, local


def test_sip_notify_brings_remote_change(sip_pair):
    remote, local = sip_pair
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    resp, _ = wait_response(alice, ALICE, "sub-1")
    expect_response(resp, "success", 200)
    assert "SIP xcap-diff subscription" in text(resp, "reason"), etree.tostring(resp)
    wait_for(lambda: remote_sip_subscriptions(remote) == 1, "the local xdmsd's SUBSCRIBE at the remote")
    wait_for(lambda: [s["via"] for s in subscriptions(local)] == ["sip"], "the stored dialog")
    s = Subscriber(sip_port(local))
    try:
        assert s.subscribe(rl_body(PCC_SEL)).status == 200
        s.notify()
        expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
        wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
                 "the remote's change in the local PCC by NOTIFY", timeout=10)
        s.wait(lambda m: m.method == "NOTIFY" and any(d["sel"] == PCC_SEL for d in m.documents()),
               timeout=10, what="a NOTIFY of the local PCC")
    finally:
        s.close()
    seq, resp = wait_for(lambda: (lambda v: v if v[0] == 2 else None)(seq_of(alice)), "seq 2")
    m = parse_metrics(expect(local.client().get("/metrics"), 200).body.decode())
    assert metric_sum(m, "xdms_iwf_watch_sip_notifies_total") >= 2
    # Deleting the request unsubscribes at the remote side.
    expect(alice.put_doc(FH, ALICE, fh_doc()), 200)
    wait_for(lambda: remote_sip_subscriptions(remote) == 0, "the unsubscribe at the remote")


@pytest.mark.parametrize("how", ["term", "kill"])
def test_sip_dialog_resumes_after_restart(sip_pair, how):
    remote, local = sip_pair
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    wait_response(alice, ALICE, "sub-1")
    wait_for(lambda: [s["via"] for s in subscriptions(local)] == ["sip"], "the stored dialog")
    local.stop() if how == "term" else local.kill9()
    expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
    local.start()
    alice = local.client(ALICE)
    wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             f"the change made while down ({how})", timeout=15)
    # The dialog was resumed (refreshed in place), not doubled.
    wait_for(lambda: remote_sip_subscriptions(remote) == 1, "one subscription at the remote")
    second = remote_pcc(tel=b"tel:+15555550178")
    expect(remote.client(ALICE).put_doc(PCC, ALICE, second), 200)
    wait_for(lambda: "tel:+15555550178" in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             "a change after the resume, by NOTIFY", timeout=10)


def test_sip_refused_falls_back_to_polling(start_server, remote):
    """The remote side's SIP port answers nothing (no SIP there): the watch
    says so in its response and polls."""
    local = start_server(name="local", settings={**FAST, "sip.listen": "127.0.0.1:0"})
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", "1",
                "--sip-uri", f"sip:127.0.0.1:{free_port()}")
    alice = local.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
    wait_response(alice, ALICE, "sub-1")
    seq, resp = wait_for(lambda: (lambda v: v if v[0] >= 2 else None)(seq_of(alice)),
                         "the response saying SIP failed", timeout=60)
    assert "polling" in text(resp, "reason"), etree.tostring(resp)
    expect(remote.client(ALICE).put_doc(PCC, ALICE, remote_pcc()), 200)
    wait_for(lambda: NEW_TEL.decode() in tels(expect(alice.get(doc_path(PCC, ALICE)), 200).body),
             "the change found by polling")


def test_remote_side_ending_the_subscription_gives_410(start_server, remote, tmp_path):
    """sipp plays the remote XDMS's SIP side: it grants the SUBSCRIBE, sends
    an active NOTIFY, then Subscription-State: terminated;reason=rejected
    (RFC 6665 §4.1.3: do not subscribe again). The watch ends with 410."""
    from test_sip_subscriber_sipp import Uas
    uas = Uas(tmp_path, "uas_terminated.xml", "u1", keys={"state": "terminated;reason=rejected"})
    try:
        local = start_server(name="local", settings={**FAST, "sip.listen": "127.0.0.1:0"})
        add_adapter(local, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", "3600", "--sip-uri", uas.target)
        alice = local.client(ALICE)
        expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
        wait_response(alice, ALICE, "sub-1")
        uas.expect_ok()
        seq, resp = wait_for(lambda: (lambda v: v if v[1] is not None and v[1].get("code") == "410" else None)(
            seq_of(alice)), "the 410 after the remote side's terminating NOTIFY", timeout=15)
        expect_response(resp, "terminated", 410)
        assert "rejected" in text(resp, "reason"), etree.tostring(resp)
        assert [s["state"] for s in subscriptions(local)] == ["terminated"]
    finally:
        uas.kill()


def test_remote_side_deactivating_makes_the_watch_subscribe_again(start_server, remote, tmp_path):
    """terminated;reason=deactivated (RFC 6665 §4.1.3: subscribe again at
    once): sipp takes two subscriptions, each ended that way; the second
    exists only if the watch subscribed again. The request stays answered."""
    from test_sip_subscriber_sipp import Uas
    uas = Uas(tmp_path, "uas_terminated.xml", "u1", calls=2, keys={"state": "terminated;reason=deactivated"})
    try:
        local = start_server(name="local", settings={**FAST, "sip.listen": "127.0.0.1:0"})
        add_adapter(local, "remote-cab", "xcap", pcc_url(remote), "--poll-interval", "3600", "--sip-uri", uas.target)
        alice = local.client(ALICE)
        expect(alice.put_doc(FH, ALICE, fh_doc(subscribe_request(expires=3600))), 201)
        wait_response(alice, ALICE, "sub-1")
        uas.expect_ok()
        seq, resp = seq_of(alice)
        assert resp.get("status") == "success", etree.tostring(resp)
        assert [s["state"] for s in subscriptions(local)] == ["active"]
    finally:
        uas.kill()
