# SPDX-License-Identifier: MIT
"""A sharded deployment on loopback (docs/scale-out.md): several xdmsd, one
per shard, behind HAProxy (XCAP) and Kamailio (SIP), both configured with the
files in deploy/ and routing by the one shard map deploy/xdms-shardmap writes.

Everything listens on 127.0.0.1 with ephemeral ports and lives in the test's
temporary directory. HAProxy reaches the shards from 127.0.0.2 (the address
the shards trust for asserted identities) and trusts 127.0.0.3 as the hop
allowed to assert one (an Aggregation Proxy); plain clients come from
127.0.0.1.
"""

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from iwflib import free_port
from xdmslib import REPO, Server, sip_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SHARDMAP = REPO / "deploy" / "xdms-shardmap"
DEPLOY = REPO / "deploy"

LB_SOURCE = "127.0.0.2"     # HAProxy -> xdmsd; in the shards' auth.trusted_peers
TRUSTED_HOP = "127.0.0.3"   # may assert an identity through HAProxy


def available():
    return os.access(HAPROXY, os.X_OK) and os.access(KAMAILIO, os.X_OK)


def shardmap(*args, input=None):
    res = subprocess.run(["/usr/bin/python3", str(SHARDMAP), *args], input=input, capture_output=True,
                         timeout=30)
    assert res.returncode == 0, f"xdms-shardmap {args[:2]}: {res.stderr.decode()}"
    return res.stdout.decode()


def load_map(path):
    return {b: int(s) for b, s in (line.split() for line in Path(path).read_text().splitlines())}


class Shard(Server):
    """An xdmsd that keeps its HTTP and SIP ports across restarts, so the
    routers' configuration stays valid when it comes back."""

    def __init__(self, workdir, number, settings):
        super().__init__(workdir, name=f"shard{number}", settings=settings)
        self.number = number
        self.http_port = None
        self.sip = None

    def command(self):
        cmd = super().command()
        if self.http_port:
            cmd[cmd.index("127.0.0.1:0")] = f"127.0.0.1:{self.http_port}"
        return cmd

    def start(self):
        super().start()
        self.http_port = self.port
        self.sip = sip_port(self)
        self.settings["sip.listen"] = f"127.0.0.1:{self.sip}"

    def ctl_fast(self, *args, check=0):
        return self.ctl("--set", "store.sync=false", *args, check=check)


class Proc:
    """A helper process (HAProxy, Kamailio) with its log in the work dir."""

    def __init__(self, name, workdir):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self.proc = None

    def spawn(self, cmd, env=None):
        assert self.proc is None
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, env=env)
        finally:
            log.close()

    def log_tail(self, lines=60):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def wait_tcp(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"{what} exited with {proc.proc.returncode}:\n{proc.log_tail()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} does not listen on {port} after {timeout}s:\n{proc.log_tail()}")


class HAProxy(Proc):
    """deploy/haproxy/haproxy.cfg as shipped, with a generated shards file."""

    def __init__(self, workdir):
        super().__init__("haproxy", workdir)
        self.etc = self.workdir / "etc"
        self.etc.mkdir(exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        (self.etc / "trusted-hops.lst").write_text(TRUSTED_HOP + "\n")

    def write_shards(self, shards, buckets_map):
        (self.etc / "buckets.map").write_text(buckets_map)
        # Checks every 300 ms, and down after three failures in a row: a
        # shard killed is out within a second, and one health check slowed
        # by a loaded machine does not take a live shard out.
        lines = []
        for s in shards:
            lines += [f"backend shard{s.number}", "\toption httpchk GET /healthz",
                      "\thttp-check expect status 200",
                      f"\tserver s{s.number} 127.0.0.1:{s.http_port} source {LB_SOURCE} inter 300 fall 3 rise 1",
                      ""]
        lines += ["backend any_shard", "\tbalance roundrobin", "\toption httpchk GET /healthz"]
        lines += [f"\tserver s{s.number} 127.0.0.1:{s.http_port} source {LB_SOURCE} inter 300 fall 3 rise 1"
                  for s in shards]
        (self.workdir / "shards.cfg").write_text("\n".join(lines) + "\n")

    def start(self):
        env = dict(os.environ, XDMS_XCAP_BIND=f"127.0.0.1:{self.port}",
                   XDMS_ADMIN_BIND=f"127.0.0.1:{self.admin_port}", XDMS_ETC=str(self.etc))
        cmd = [HAPROXY, "-db", "-n", "2000", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg"),
               "-f", str(self.workdir / "shards.cfg")]
        check = subprocess.run(cmd + ["-c"], env=env, capture_output=True, timeout=30)
        assert check.returncode == 0, f"haproxy -c: {check.stdout.decode()} {check.stderr.decode()}"
        self.spawn(cmd, env=env)
        wait_tcp(self.port, self, "haproxy")
        wait_tcp(self.admin_port, self, "haproxy (admin)")

    def shard_url(self, number):
        return f"http://127.0.0.1:{self.admin_port}/shard/{number}/xcap-root"


class Kamailio(Proc):
    """deploy/kamailio/kamailio.cfg as shipped, next to the generated shard
    map include and a dispatcher list of the shards."""

    def __init__(self, workdir):
        super().__init__("kamailio", workdir)
        self.port = free_port_udp()

    def write_shards(self, shards, map_path):
        shutil.copy(DEPLOY / "kamailio" / "kamailio.cfg", self.workdir / "kamailio.cfg")
        (self.workdir / "xdms-shardmap.cfg").write_text(shardmap("kamailio", str(map_path)))
        (self.workdir / "dispatcher.list").write_text(
            "".join(f"{s.number} sip:127.0.0.1:{s.sip}\n" for s in shards))

    def start(self):
        cmd = [KAMAILIO, "-DD", "-E", "-f", str(self.workdir / "kamailio.cfg"),
               "-l", f"udp:127.0.0.1:{self.port}", "-n", "1", "-m", "32", "-M", "8",
               "-w", str(self.workdir), "-Y", str(self.workdir),
               "-A", f'XDMS_DISPATCHER_LIST="{self.workdir / "dispatcher.list"}"']
        self.spawn(cmd)
        # Ready when it answers a request (an OPTIONS gets its 405).
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"kamailio exited:\n{self.log_tail()}"
                lp = s.getsockname()[1]
                s.sendto((f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};"
                          f"branch=z9hG4bK{uuid.uuid4().hex[:8]}\r\nFrom: <sip:t@t>;tag=1\r\nTo: <sip:t@t>\r\n"
                          f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\n"
                          "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", self.port))
                try:
                    if s.recv(4096).startswith(b"SIP/2.0 405"):
                        return
                except socket.timeout:
                    pass
            raise AssertionError(f"kamailio does not answer on {self.port}:\n{self.log_tail()}")
        finally:
            s.close()


def free_port_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
