# SPDX-License-Identifier: MIT
"""xdmsd's SIP subscriber module (RFC 6665 UAC for xcap-diff) against a real
second xdmsd as the remote XDMS.

tests/tools/sipsub runs the module (src/sip/subscriber.c) over xdmsd's SIP
stack; the remote is a real xdmsd with SIP on, which challenges with Digest
(no trust_from), so every SUBSCRIBE of these flows is authenticated. The
protocol corners (timers, 481, 423, terminated reasons) are played by sipp
in test_sip_subscriber_sipp.py.
"""

import re
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from sipsub import SipSub
from sipua import Message
from xdmslib import ALICE, BOB, PASSWORDS, data, metric_sum, parse_metrics, sip_port, unquote

PCC = "org.openmobilealliance.cab-pcc"
PCC_MIME = "application/vnd.oma.cab-pcc+xml"
ALICE_PCC = f"{PCC}/users/{ALICE}/index"
BOB_PCC = f"{PCC}/users/{BOB}/index"
DIFF = "{urn:ietf:params:xml:ns:xcap-diff}"


@pytest.fixture
def remote(start_server):
    """The remote XDMS: SIP on, Digest required, short lifetimes allowed."""
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "notify.min_expires": "2",
                                 "notify.aggregate_window": "100"})
    srv.sip = sip_port(srv)
    return srv


@pytest.fixture
def sipsubs(tmp_path):
    made = []

    def factory(**kw):
        d = tmp_path / f"sipsub{len(made)}"
        d.mkdir(exist_ok=True)
        s = SipSub(d, **kw)
        made.append(s)
        return s

    yield factory
    for s in made:
        rc = s.close()
        assert rc in (0, -9), f"sipsub exited with {rc}:\n{s.log_tail()}"


def put_pcc(srv, xui=ALICE, company=b"Example Corp"):
    body = data("pcc-alice.xml").replace(ALICE.encode(), xui.encode()).replace(b"Example Corp", company)
    resp = srv.client(xui).put_doc(PCC, xui, body)
    assert resp.status in (200, 201), resp.describe()
    return unquote(resp.header("ETag"))


def documents(ev):
    root = ET.fromstring(ev.body)
    assert root.tag == f"{DIFF}xcap-diff", ev.body
    return [dict(d.attrib) for d in root.findall(f"{DIFF}document")]


def target(srv, transport):
    return f"sip:127.0.0.1:{srv.sip}" + (";transport=tcp" if transport == "tcp" else "")


def start_alice(sub, srv, transport="udp", sid="a", expires=600, password=None, **kw):
    ok = sub.start(sid, target=target(srv, transport), uri=ALICE, **{"from": ALICE}, entry=ALICE_PCC,
                   user="alice", **{"pass": password or PASSWORDS[ALICE]},
                   expires=expires, **kw)
    assert ok, "sipsub refused the subscription parameters"


def remote_subscriptions(srv):
    return metric_sum(parse_metrics(srv.client().get("/metrics").body.decode()), "xdms_sip_subscriptions")


def wait_remote_subscriptions(srv, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        n = remote_subscriptions(srv)
        if n == want:
            return
        assert time.monotonic() < deadline, f"the remote counts {n} subscriptions, expected {want}"
        time.sleep(0.05)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_subscribe_notify_change_refresh_unsubscribe(remote, sipsubs, transport):
    etag1 = put_pcc(remote)
    sub = sipsubs()
    start_alice(sub, remote, transport, expires=4)

    # The dialog, authenticated by Digest, and the initial full state.
    d1 = sub.wait("DIALOG", "a")
    assert d1["remote_tag"] and d1["call_id"] and d1["local_tag"], d1
    assert d1["transport"] == transport and d1["dest"] == f"127.0.0.1:{remote.sip}", d1
    assert d1["remote_target"].startswith(f"sip:127.0.0.1:{remote.sip}"), d1
    # expires_at is whole seconds: up to 1 s below the 4 s granted.
    assert 2.5 <= int(d1["expires_at"]) - d1.wall <= 4.5, d1
    first = sub.wait("NOTIFY", "a")
    assert first["state"] == "active", first
    assert first["ctype"] == "application/xcap-diff+xml", first
    assert documents(first) == [{"sel": ALICE_PCC, "new-etag": etag1}], first.body
    assert remote_subscriptions(remote) == 1

    # A change at the remote reaches us with its new ETag.
    etag2 = put_pcc(remote, company=b"Acme Corp")
    change = sub.wait("NOTIFY", "a", pred=lambda e: etag2.encode() in e.body)
    docs = documents(change)
    assert docs[-1]["new-etag"] == etag2 and docs[-1]["sel"] == ALICE_PCC, change.body

    # 4 s granted, refreshed after 2 s (max(E/2, E - 60)): a second dialog
    # report with a later CSeq and expiry, in the same dialog; the remote
    # sends its full state again after the refresh.
    d2 = sub.wait("DIALOG", "a", count=2, timeout=10)
    assert (d2["call_id"], d2["local_tag"], d2["remote_tag"]) == (d1["call_id"], d1["local_tag"],
                                                                   d1["remote_tag"]), (d1, d2)
    assert int(d2["cseq"]) > int(d1["cseq"]), (d1, d2)
    assert int(d2["expires_at"]) >= int(d1["expires_at"]), (d1, d2)
    d3 = sub.wait("DIALOG", "a", count=3, timeout=10)
    assert int(d3["cseq"]) > int(d2["cseq"]), (d2, d3)
    assert not sub.of("END", "a"), sub.of("END", "a")

    # Unsubscribe: the final NOTIFY comes, the end is reported, and the remote
    # no longer holds the subscription.
    sub.send("unsub a")
    end = sub.wait("END", "a")
    assert end["reason"] == "unsubscribed" and end["status"] == "0", end
    final = sub.of("NOTIFY", "a")[-1]
    assert final["state"] == "terminated", final
    wait_remote_subscriptions(remote, 0)


def test_wrong_password_ends_with_401(remote, sipsubs):
    sub = sipsubs()
    start_alice(sub, remote, password="not-the-password")
    end = sub.wait("END", "a")
    assert (end["status"], end["reason"]) == ("401", "refused"), end
    assert not sub.of("DIALOG", "a") and not sub.of("NOTIFY", "a")
    assert remote_subscriptions(remote) == 0


def test_forbidden_resource_ends_with_403(remote, sipsubs):
    # Alice may not watch Bob's documents at the remote.
    sub = sipsubs()
    assert sub.start("b", target=target(remote, "udp"), uri=ALICE, **{"from": ALICE}, entry=BOB_PCC,
                     user="alice", **{"pass": PASSWORDS[ALICE]}, expires=600)
    end = sub.wait("END", "b")
    assert (end["status"], end["reason"]) == ("403", "refused"), end


def test_too_short_expires_is_raised_to_min_expires(remote, sipsubs):
    # The remote's Min-Expires is 2: asking 1 gets 423, then 2 is asked and granted.
    put_pcc(remote)
    sub = sipsubs()
    start_alice(sub, remote, expires=1)
    d = sub.wait("DIALOG", "a")
    assert 0.5 <= int(d["expires_at"]) - d.wall <= 2.5, d
    assert sub.wait("NOTIFY", "a")["state"] == "active"


@pytest.mark.parametrize("spread", [None, 2])
def test_resume_after_restart_refreshes_the_same_dialog(remote, sipsubs, spread):
    etag1 = put_pcc(remote)
    first = sipsubs()
    start_alice(first, remote, expires=600)
    d = first.wait("DIALOG", "a")
    first.wait("NOTIFY", "a")
    port = first.port
    assert first.close(kill=True) == -9

    # The same address after a restart, from the saved dialog; with a
    # spread the refresh comes within its 2 s.
    second = sipsubs(listen=f"127.0.0.1:{port}", resume_spread=spread)
    saved = {k: d[k] for k in ("call_id", "local_tag", "remote_tag", "cseq", "remote_target", "expires_at")}
    saved["route"] = d.routes
    assert second.start("a", resume=saved, target=target(remote, "udp"), uri=ALICE, **{"from": ALICE},
                        entry=ALICE_PCC, user="alice", **{"pass": PASSWORDS[ALICE]}, expires=600)
    d2 = second.wait("DIALOG", "a")
    assert (d2["call_id"], d2["local_tag"], d2["remote_tag"]) == (d["call_id"], d["local_tag"], d["remote_tag"])
    assert int(d2["cseq"]) >= int(d["cseq"]) + 1000, (d, d2)
    # The refresh brings a full state, and changes keep coming in the dialog.
    assert documents(second.wait("NOTIFY", "a"))[-1]["new-etag"] == etag1
    etag2 = put_pcc(remote, company=b"Acme Corp")
    second.wait("NOTIFY", "a", pred=lambda e: etag2.encode() in e.body)
    assert remote_subscriptions(remote) == 1


def test_resume_of_a_dialog_the_remote_forgot_subscribes_anew(remote, sipsubs):
    put_pcc(remote)
    sub = sipsubs()
    saved = {"call_id": "gone-1@xdmsd", "local_tag": "t-gone", "remote_tag": "r-gone", "cseq": "7",
             "remote_target": f"sip:127.0.0.1:{remote.sip}", "expires_at": str(int(time.time()) + 600)}
    assert sub.start("a", resume=saved, target=target(remote, "udp"), uri=ALICE, **{"from": ALICE},
                     entry=ALICE_PCC, user="alice", **{"pass": PASSWORDS[ALICE]}, expires=600)
    d = sub.wait("DIALOG", "a")
    assert d["call_id"] != "gone-1@xdmsd" and d["local_tag"] != "t-gone", d
    assert d["cseq"] in ("1", "2"), d  # 1, or 2 after the Digest challenge
    assert sub.wait("NOTIFY", "a")["state"] == "active"
    wait_remote_subscriptions(remote, 1)


def udp_ask(port, data, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        return Message(s.recv(65535))
    finally:
        s.close()


def test_notify_for_no_subscription_is_481(sipsubs):
    sub = sipsubs()
    msg = ("NOTIFY sip:127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-stray-1;rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:x@example.com>;tag=r1\r\nTo: <sip:y@example.com>;tag=nobody\r\n"
           "Call-ID: stray-notify-1\r\nCSeq: 1 NOTIFY\r\nContact: <sip:127.0.0.1:9>\r\n"
           "Event: xcap-diff\r\nSubscription-State: active;expires=60\r\nContent-Length: 0\r\n\r\n") % sub.port
    resp = udp_ask(sub.port, msg.encode())
    assert resp.status == 481, resp
    other = msg.replace("Event: xcap-diff", "Event: presence").replace("stray-1", "stray-2")
    resp = udp_ask(sub.port, other.encode())
    assert resp.status == 489, resp
    assert resp.header("Allow-Events") == "xcap-diff", resp
    # With the module in place, NOTIFY is allowed.
    opts = msg.replace("NOTIFY sip", "OPTIONS sip").replace("1 NOTIFY", "1 OPTIONS").replace("stray-1", "opt-1")
    resp = udp_ask(sub.port, opts.encode())
    assert resp.status == 200 and resp.header("Allow") == "OPTIONS, SUBSCRIBE, NOTIFY", resp


class RawNotifier:
    """A notifier on a raw UDP socket: every byte the module sends is checked."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.n = 0

    def close(self):
        self.sock.close()

    def recv(self, pred, timeout=5.0, what="message"):
        deadline = time.monotonic() + timeout
        while True:
            for i, (m, addr) in enumerate(self.seen):
                if pred(m):
                    del self.seen[i]
                    return m, addr
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; seen: {self.seen}")
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.seen.append((Message(data), addr))

    def request(self, method, timeout=5.0):
        return self.recv(lambda m: m.method == method, timeout, method)

    def reply(self, req, addr, status, reason, extra=(), tag="n-1"):
        to = req.header("To") if "tag=" in req.header("To") else f"{req.header('To')};tag={tag}"
        lines = [f"SIP/2.0 {status} {reason}", f"Via: {req.header('Via')}", f"From: {req.header('From')}",
                 f"To: {to}", f"Call-ID: {req.header('Call-ID')}", f"CSeq: {req.header('CSeq')}", *extra,
                 "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(lines).encode(), addr)

    def notify(self, sub_port, call_id, from_tag, to_value, cseq, state, body=b"", branch=None):
        """Sends a NOTIFY (a retransmission when @branch is an earlier one's) and returns its answer."""
        self.n += 1
        branch = branch or f"z9hG4bK-raw-{self.n}"
        lines = [f"NOTIFY sip:127.0.0.1:{sub_port} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch}", "Max-Forwards: 70",
                 f"From: <{ALICE}>;tag={from_tag}", f"To: {to_value}", f"Call-ID: {call_id}",
                 f"CSeq: {cseq} NOTIFY", f"Contact: <sip:127.0.0.1:{self.port}>", "Event: xcap-diff"]
        if state is not None:
            lines.append(f"Subscription-State: {state}")
        if body:
            lines.append("Content-Type: application/xcap-diff+xml")
        lines += [f"Content-Length: {len(body)}", "", ""]
        self.sock.sendto("\r\n".join(lines).encode() + body, ("127.0.0.1", sub_port))
        m, _ = self.recv(lambda m: m.status is not None and branch in (m.header("Via") or ""), what="answer")
        return m.status


def test_subscribe_bytes_and_every_notify_answered(sipsubs):
    raw = RawNotifier()
    sub = sipsubs(max_body=300)
    odd = "org.openmobilealliance.cab-pcc/users/sip:a&b\"c@example.com/index"
    try:
        assert sub.start("r", target=f"sip:127.0.0.1:{raw.port}", uri=ALICE, **{"from": BOB},
                         entry=[ALICE_PCC, odd], expires=300, diff="xcap-patching")
        req, addr = raw.request("SUBSCRIBE")
        # Request-URI and To: the watched resource's owner; From: who subscribes.
        assert req.start == f"SUBSCRIBE {ALICE} SIP/2.0", req
        assert req.header("To") == f"<{ALICE}>", req
        assert re.fullmatch(rf"<{re.escape(BOB)}>;tag=\S+", req.header("From")), req
        assert req.header("CSeq") == "1 SUBSCRIBE" and req.header("Max-Forwards") == "70", req
        assert re.fullmatch(rf"SIP/2.0/UDP 127.0.0.1:{sub.port};branch=z9hG4bK\S+;rport", req.header("Via")), req
        assert req.header("Contact") == f"<sip:127.0.0.1:{sub.port}>", req
        assert req.header("Event") == "xcap-diff;diff-processing=xcap-patching", req
        assert req.header("Expires") == "300", req
        assert req.header("Accept") == "application/xcap-diff+xml", req
        assert req.header("Content-Type") == "application/resource-lists+xml", req
        assert req.header("Authorization") is None, req
        rl = ET.fromstring(req.body)
        ns = "{urn:ietf:params:xml:ns:resource-lists}"
        assert [e.get("uri") for e in rl.iter(f"{ns}entry")] == [ALICE_PCC, odd], req.body
        assert int(req.header("Content-Length")) == len(req.body)
        call_id, our_tag = req.header("Call-ID"), req.header("From").split("tag=")[1]
        raw.reply(req, addr, 200, "OK", extra=[f"Contact: <sip:127.0.0.1:{raw.port}>", "Expires: 300"])
        d = sub.wait("DIALOG", "r")
        assert (d["call_id"], d["local_tag"], d["remote_tag"], d["cseq"]) == (call_id, our_tag, "n-1", "1"), d
        to = f"<{BOB}>;tag={our_tag}"

        diff = (b'<?xml version="1.0" encoding="UTF-8"?><xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" '
                b'xcap-root="http://x/"><document sel="' + ALICE_PCC.encode() + b'" new-etag="e1"/></xcap-diff>')
        assert raw.notify(sub.port, call_id, "n-1", to, 1, "active;expires=300", diff,
                          branch="z9hG4bK-raw-first") == 200
        n1 = sub.wait("NOTIFY", "r")
        assert n1.body == diff and n1["expires"] == "300" and n1["dropped"] == "0", n1
        # A retransmission (same branch, as when our 200 is lost) gets 200 again.
        assert raw.notify(sub.port, call_id, "n-1", to, 1, "active;expires=300", diff,
                          branch="z9hG4bK-raw-first") == 200
        # The same CSeq again, as a new transaction: a retransmission (the
        # module ends a NOTIFY's transaction on its 200), answered 200 again
        # and not passed on twice.
        assert raw.notify(sub.port, call_id, "n-1", to, 1, "active;expires=300", diff) == 200
        # No Subscription-State.
        assert raw.notify(sub.port, call_id, "n-1", to, 2, None) == 400
        # Another fork (From tag) of the same subscription: only one dialog is kept.
        assert raw.notify(sub.port, call_id, "n-2", to, 3, "active;expires=300") == 481
        # A body over the limit: answered 200, the subscription goes on, the body is not passed on.
        big = diff.replace(b"</xcap-diff>", b"<!--" + b"x" * 400 + b"--></xcap-diff>")
        assert raw.notify(sub.port, call_id, "n-1", to, 4, "active;expires=300", big) == 200
        n2 = sub.wait("NOTIFY", "r", count=2)
        assert n2["dropped"] == "1" and n2.body == b"", n2
        # A CSeq below the last one: out of order (RFC 3261 12.2.2).
        assert raw.notify(sub.port, call_id, "n-1", to, 3, "active;expires=300", diff) == 500
        assert len(sub.of("NOTIFY", "r")) == 2 and not sub.of("END", "r")

        # A NOTIFY granting 1 s makes the refresh go at once, to the remote
        # target, in the dialog, without a body.
        assert raw.notify(sub.port, call_id, "n-1", to, 5, "active;expires=1") == 200
        ref, addr = raw.request("SUBSCRIBE")
        assert ref.start == f"SUBSCRIBE sip:127.0.0.1:{raw.port} SIP/2.0", ref
        assert ref.header("To") == f"<{ALICE}>;tag=n-1" and ref.header("Call-ID") == call_id, ref
        assert ref.header("CSeq") == "2 SUBSCRIBE" and ref.body == b"", ref
        assert ref.header("Content-Type") is None and ref.header("Content-Length") == "0", ref
        # 481: a new subscription outside the dialog, with the list again.
        raw.reply(ref, addr, 481, "Subscription Does Not Exist")
        again, addr = raw.request("SUBSCRIBE")
        assert again.header("Call-ID") != call_id and again.header("CSeq") == "1 SUBSCRIBE", again
        assert again.header("To") == f"<{ALICE}>" and again.start == f"SUBSCRIBE {ALICE} SIP/2.0", again
        assert [e.get("uri") for e in ET.fromstring(again.body).iter(f"{ns}entry")] == [ALICE_PCC, odd]
        # The old dialog is gone for good.
        assert raw.notify(sub.port, call_id, "n-1", to, 6, "active;expires=300") == 481
        raw.reply(again, addr, 403, "Forbidden", extra=["Retry-After: 30"])
        end = sub.wait("END", "r")
        assert (end["status"], end["reason"], end["retry_after"]) == ("403", "refused", "30"), end
    finally:
        raw.close()


def test_refused_tcp_connection_ends_at_once_with_503(sipsubs):
    # Nobody listens: the connection is refused, and the subscription ends
    # then, not at Timer F (32 s).
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    sub = sipsubs()
    t0 = time.monotonic()
    assert sub.start("t", target=f"sip:127.0.0.1:{port};transport=tcp", uri=ALICE, **{"from": ALICE},
                     entry=ALICE_PCC, expires=600)
    end = sub.wait("END", "t", timeout=20)
    assert (end["status"], end["reason"]) == ("503", "refused"), end
    assert time.monotonic() - t0 < 10, "the refused connection was not reported at once"


def test_unusable_parameters_are_refused_at_once(sipsubs):
    sub = sipsubs()
    good = dict(target="sip:127.0.0.1:5060", uri=ALICE, entry=ALICE_PCC, expires=600, **{"from": ALICE})
    for bad in (dict(target="sip:example.com:5060"), dict(target="sips:127.0.0.1:5061"),
                dict(target="sip:127.0.0.1:5060;transport=sctp"), dict(entry=None), dict(uri=None),
                dict(diff="everything")):
        assert not sub.start("x", **{**good, **bad}), bad
    assert not sub.of("END"), sub.of("END")
