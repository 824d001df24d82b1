# SPDX-License-Identifier: MIT
"""Drives tests/tools/sipsub: xdmsd's SIP subscriber module in a process.

SipSub(workdir) starts the tool on 127.0.0.1 (an ephemeral port unless
`listen` says otherwise), sends it commands and collects what the module
reports (DIALOG, NOTIFY, END lines) as Event objects. wait() polls them with
a deadline and fails with everything seen so far.
"""

import queue
import subprocess
import threading
import time
from urllib.parse import unquote

from xdmslib import builddir


def sipsub_path():
    return builddir() / "tests" / "tools" / "sipsub"


class Event:
    def __init__(self, line):
        parts = line.split(" ")
        self.line = line
        self.at = time.monotonic()  # when the tool reported it
        self.wall = time.time()     # the same, on the wall clock (expires_at is wall-clock seconds)
        self.kind = parts[0]
        self.id = parts[1] if len(parts) > 1 else None
        self.fields = {}
        self.routes = []
        for kv in parts[2:]:
            k, _, v = kv.partition("=")
            v = None if v == "-" else ("" if v == "%00" else unquote(v))
            if k == "route":
                self.routes.append(v)
            else:
                self.fields[k] = v

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        return self.fields.get(key, default)

    @property
    def body(self):
        return bytes.fromhex(self.fields.get("body") or "")

    def __repr__(self):
        return self.line if len(self.line) < 400 else self.line[:400] + "..."


def q(value):
    """Percent-encodes what the tool's command parser splits on."""
    return "".join(c if c > " " and c not in "%=" and ord(c) < 0x7f else "%%%02X" % ord(c)
                   for c in str(value))


class SipSub:
    def __init__(self, workdir, listen="127.0.0.1:0", margin=None, max_body=None, max_subs=None,
                 resume_spread=None, debug=False):
        exe = sipsub_path()
        assert exe.exists(), f"{exe} does not exist (make check builds it)"
        self.workdir = workdir
        self.log_path = workdir / "sipsub.stderr.log"
        cmd = [str(exe), "--listen", listen]
        if margin is not None:
            cmd += ["--margin", str(margin)]
        if max_body is not None:
            cmd += ["--max-body", str(max_body)]
        if max_subs is not None:
            cmd += ["--max-subs", str(max_subs)]
        if resume_spread is not None:
            cmd += ["--resume-spread", str(resume_spread)]
        env = {"SIPSUB_DEBUG": "1"} if debug else {}
        import os
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         env={**os.environ, **env}, text=True, bufsize=1)
        self.events = []
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.udp = self.wait("LISTEN", "udp").line.split()[2]
        self.tcp = self.wait("LISTEN", "tcp").line.split()[2]
        self.port = int(self.udp.rsplit(":", 1)[1])

    def _read(self):
        for line in self.proc.stdout:
            ev = Event(line.rstrip("\n"))
            with self._new:
                self.events.append(ev)
                self._new.notify_all()

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def start(self, sid, resume=None, **kw):
        """start/resume SID with keys; `entry` and `route` may be lists."""
        parts = ["resume" if resume else "start", sid]
        items = dict(kw)
        if resume:
            items.update({k: v for k, v in resume.items() if k not in ("route",)})
            for r in resume.get("route", []):
                parts.append(f"route={q(r)}")
        for k, v in items.items():
            if v is None:
                continue
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                parts.append(f"{k}={q(one)}")
        self.send(" ".join(parts))
        ev = self.wait(("STARTED", "REFUSED"), sid)
        return ev.kind == "STARTED"

    def of(self, kind, sid=None):
        with self._lock:
            return [e for e in self.events if e.kind == kind and (sid is None or e.id == sid)]

    def wait(self, kind, sid=None, pred=None, count=1, timeout=15.0):
        """The count-th event of `kind` (a string or a tuple) for `sid` matching pred."""
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                found = [e for e in self.events if e.kind in kinds and (sid is None or e.id == sid)
                         and (pred is None or pred(e))]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not found):
                    break
                self._new.wait(min(left, 0.2))
        raise AssertionError(f"no {count} {kinds} event(s) for {sid} within {timeout}s; seen:\n"
                             + "\n".join(map(repr, self.events[-40:])) + "\n--- stderr:\n" + self.log_tail())

    def log_tail(self, n=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self, kill=False):
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    self.send("quit")
                except (BrokenPipeError, OSError):
                    pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode
