# SPDX-License-Identifier: MIT
"""xdmsd's SIP subscriber module against sipp playing the notifier (UAS).

sipp runs a scenario of sipp/uas_*.xml on a free port of 127.0.0.1; the
module runs in tests/tools/sipsub (sipsub.py) and subscribes to sipp. sipp
checks what it receives (Digest answers with verifyauth, the dialog's tags
and route set, Expires) and logs STEP lines; the test checks sipp's exit
status and log, and what the module reported, with its timing.
"""

import re
import subprocess
import time

import pytest

from sipsub import SipSub
from test_notify_sipp import SCENARIOS, SIPP, free_port

ALICE = "sip:alice@example.com"
DOC = f"org.openmobilealliance.cab-pcc/users/{ALICE}/index"
USER, PASSWORD = "alice", "sipp-secret"

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian package sip-tester) is not installed")


class Uas:
    """One sipp process waiting for SUBSCRIBEs."""

    def __init__(self, workdir, scenario, transport, calls=1, keys=None, timeout=60):
        self.dir = workdir / "sipp"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        name = scenario.rsplit(".", 1)[0] + "-" + transport
        self.log_file = self.dir / f"{name}.log"
        self.msg_file = self.dir / f"{name}.msg"
        self.err_file = self.dir / f"{name}.err"
        self.out_file = self.dir / f"{name}.out"
        cmd = [SIPP, "-sf", str(SCENARIOS / scenario), "-m", str(calls), "-t", transport,
               "-i", "127.0.0.1", "-p", str(self.port), "-nostdin", "-timeout", str(timeout), "-timeout_error",
               "-trace_logs", "-log_file", str(self.log_file), "-trace_err", "-error_file", str(self.err_file),
               "-trace_msg", "-message_file", str(self.msg_file),
               "-key", "doc", DOC, "-key", "user", USER, "-key", "password", PASSWORD]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        self.cmd = cmd
        self.out = open(self.out_file, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True)
        self._wait_listening()

    def _is_bound(self):
        # /proc/net: local address 0100007F:PORT (hex); TCP state 0A is LISTEN.
        is_tcp = self.cmd[self.cmd.index("-t") + 1].startswith("t")
        want = "0100007F:%04X" % self.port
        with open("/proc/net/tcp" if is_tcp else "/proc/net/udp") as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if cols[1] == want and (not is_tcp or cols[3] == "0A"):
                    return True
        return False

    def _wait_listening(self, timeout=10.0):
        # A SUBSCRIBE sent before sipp binds would be refused (TCP).
        deadline = time.monotonic() + timeout
        while not self._is_bound():
            if self.proc.poll() is not None:
                raise AssertionError(f"sipp exited early:\n{self.describe()}")
            assert time.monotonic() < deadline, f"sipp does not listen on {self.port}:\n{self.describe()}"
            time.sleep(0.05)

    @property
    def target(self):
        t = self.cmd[self.cmd.index("-t") + 1]
        return f"sip:127.0.0.1:{self.port}" + (";transport=tcp" if t.startswith("t") else "")

    def text(self, path):
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, prefix):
        return [ln for ln in self.text(self.log_file).splitlines() if ln.startswith(prefix)]

    def expect_ok(self, timeout=60.0):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"sipp still running after {timeout}s:\n{self.describe()}")
        assert rc == 0, f"sipp exited with {rc}, expected 0:\n{self.describe()}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()

    def describe(self):
        parts = [f"command: {' '.join(self.cmd)}", f"exit: {self.proc.poll()}"]
        for label, path, n in (("stdout", self.out_file, 2000), ("errors", self.err_file, 3000),
                               ("log", self.log_file, 2000), ("messages", self.msg_file, 8000)):
            parts.append(f"--- sipp {label}:\n{self.text(path)[-n:]}")
        return "\n".join(parts)


@pytest.fixture
def peers(tmp_path):
    made = []

    def uas(*args, **kw):
        u = Uas(tmp_path, *args, **kw)
        made.append(u)
        return u

    def sub(**kw):
        d = tmp_path / f"sipsub{len(made)}"
        d.mkdir(exist_ok=True)
        s = SipSub(d, **kw)
        made.append(s)
        return s

    yield uas, sub
    for p in made:
        if isinstance(p, Uas):
            p.kill()
        else:
            p.close()


def start(sub, uas, expires=None, **kw):
    assert sub.start("a", target=uas.target, uri=ALICE, **{"from": ALICE}, entry=DOC, user=USER,
                     **{"pass": PASSWORD}, expires=expires, **kw), "sipsub refused the parameters"


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_digest_refresh_timing_and_unsubscribe(peers, transport):
    uas_of, sub_of = peers
    uas = uas_of("uas_digest_refresh.xml", transport, keys={"expires": 6})
    sub = sub_of()
    start(sub, uas, expires=6)
    d1 = sub.wait("DIALOG", "a")
    assert d1["cseq"] == "2", d1  # 1 challenged, 2 answered
    assert sub.wait("NOTIFY", "a")["state"] == "active"
    # 6 s granted: the refresh comes max(6/2, 6 - 60) = 3 s later, not before
    # (5 % earlier at most, to spread refreshes), and well before the end.
    d2 = sub.wait("DIALOG", "a", count=2, timeout=10)
    took = d2.at - d1.at
    assert 2.5 <= took <= 5.5, f"refresh {took:.2f}s after the dialog came up, expected about 3 s"
    assert (d2["call_id"], d2["remote_tag"]) == (d1["call_id"], d1["remote_tag"]) and d2["cseq"] == "3", (d1, d2)
    sub.wait("NOTIFY", "a", count=2)
    sub.send("unsub a")
    end = sub.wait("END", "a")
    assert (end["status"], end["reason"]) == ("0", "unsubscribed"), end
    uas.expect_ok()
    # sipp checked each Digest answer (verifyauth) and the later ones' nonce count.
    assert uas.log_lines("AUTH ok") and uas.log_lines("REFRESH ok"), uas.describe()
    assert uas.log_lines("UNSUB ok=true"), uas.describe()
    assert [n["state"] for n in sub.of("NOTIFY", "a")] == ["active", "active", "terminated"]


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_refresh_answered_481_subscribes_anew(peers, transport):
    uas_of, sub_of = peers
    uas = uas_of("uas_refresh_481.xml", transport, calls=2, keys={"expires": 6})
    sub = sub_of()
    start(sub, uas, expires=600)
    d1 = sub.wait("DIALOG", "a")
    d2 = sub.wait("DIALOG", "a", count=2, timeout=10)
    sub.wait("NOTIFY", "a", count=2)
    # The unsubscribe goes once sipp has its answer to the NOTIFY, well
    # before this dialog's own refresh (3 s).
    sub.send("unsub a")
    assert d2["call_id"] != d1["call_id"] and d2["local_tag"] != d1["local_tag"], (d1, d2)
    assert d2["cseq"] == "1" and d2["remote_tag"] != d1["remote_tag"], d2
    notifies = sub.of("NOTIFY", "a")
    assert all(n["state"] == "active" for n in notifies), notifies
    end = sub.wait("END", "a")
    # sipp answers the second dialog's next SUBSCRIBE (the unsubscribe) 481 too.
    assert (end["status"], end["reason"]) == ("481", "unsubscribed"), end
    uas.expect_ok()
    subs = [ln.split("=", 1)[1] for ln in uas.log_lines("SUB call=")]
    refreshes = [ln.split("=", 1)[1] for ln in uas.log_lines("REFRESH call=")]
    assert subs == refreshes == [d1["call_id"], d2["call_id"]], uas.describe()


@pytest.mark.parametrize("state,reason,retry_after", [
    ("terminated;reason=deactivated", "deactivated", "-1"),
    ("terminated;reason=probation;retry-after=7", "probation", "7"),
    ("terminated;reason=noresource", "noresource", "-1"),
])
def test_terminated_notify_ends_the_subscription(peers, state, reason, retry_after):
    uas_of, sub_of = peers
    uas = uas_of("uas_terminated.xml", "u1", keys={"state": state})
    sub = sub_of()
    start(sub, uas)
    end = sub.wait("END", "a")
    assert (end["status"], end["reason"], end["retry_after"]) == ("0", reason, retry_after), end
    last = sub.of("NOTIFY", "a")[-1]
    assert (last["state"], last["reason"], last["retry_after"]) == ("terminated", reason, retry_after), last
    uas.expect_ok()  # both NOTIFYs got 200


def test_423_is_answered_with_min_expires(peers):
    uas_of, sub_of = peers
    uas = uas_of("uas_423.xml", "u1", keys={"min": 45})
    sub = sub_of()
    start(sub, uas, expires=10)
    d = sub.wait("DIALOG", "a")
    assert 43.5 <= int(d["expires_at"]) - d.wall <= 45.5, d
    uas.expect_ok()
    assert uas.log_lines("MIN asked=45"), uas.describe()


def test_notify_before_the_200_creates_the_dialog(peers):
    uas_of, sub_of = peers
    uas = uas_of("uas_notify_first.xml", "u1", keys={"expires": 4})
    sub = sub_of()
    start(sub, uas, expires=4)
    first = sub.wait("NOTIFY", "a")
    d = sub.wait("DIALOG", "a")
    assert first.at <= d.at, "the NOTIFY came first"
    assert re.fullmatch(r"\d+SIPpTag011", d["remote_tag"] or ""), d
    assert d.routes == [f"<sip:127.0.0.1:{uas.port};transport=UDP;lr;rr=first>"], d
    sub.wait("DIALOG", "a", count=2, timeout=10)  # the refresh went along that route
    uas.expect_ok()
    assert uas.log_lines("REFRESH ok"), uas.describe()
