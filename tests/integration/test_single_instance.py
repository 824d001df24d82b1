# SPDX-License-Identifier: MIT
"""One xdmsd per data directory and per port.

A second server on the same data directory would serve part of the traffic
and run the IWF's jobs a second time; on the same port it would take part
of the connections. Either is refused at once with a message that names
the directory (or port) and the PID of the process holding it. xdmsctl
keeps working beside a running server.
"""

import subprocess
import time

from xdmslib import ALICE, MIME, RL, Server, doc_path, expect, rl_doc, xdmsctl_path, xdmsd_path

START_WAIT = 10


def run_second(cmd, timeout=START_WAIT):
    """Runs a server command that must exit by itself; returns (rc, stderr text, seconds)."""
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(map(str, cmd))}: still running after {timeout} s; expected it to "
                             f"refuse to start. stderr: {e.stderr!r}")
    return res.returncode, res.stderr.decode(errors="replace"), time.monotonic() - t0


def test_second_server_on_the_same_data_directory_exits(start_server, tmp_path):
    first = start_server()
    cmd = [str(xdmsd_path()), "--data-dir", str(first.data_dir), "--http", "127.0.0.1:0",
           "--set", "iwf.enabled=true"]
    rc, err, took = run_second(cmd)
    assert rc != 0, f"a second xdmsd on {first.data_dir} started (exit {rc}): {err}"
    assert str(first.data_dir) in err, f"the message does not name the data directory: {err!r}"
    assert f"pid {first.proc.pid}" in err, f"the message does not name pid {first.proc.pid}: {err!r}"
    assert "listening http" not in err, f"the second server listened before refusing: {err!r}"
    assert took < 5, f"the second server took {took:.1f} s to give up"
    # The first one is unharmed.
    alice = first.client(ALICE)
    expect(alice.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)


def test_xdmsctl_works_beside_a_running_server(start_server):
    srv = start_server()
    srv.ctl("user", "add", "sip:dora@example.com", "dora-secret", check=0)
    res = srv.ctl("user", "list", check=0)
    assert b"sip:dora@example.com" in res.stdout, f"xdmsctl user list: {res.stdout!r}"
    dora = srv.client("sip:dora@example.com", "dora-secret")
    expect(dora.put(doc_path(RL, "sip:dora@example.com"), rl_doc(), MIME[RL]), 201)


def test_the_lock_goes_with_the_process(start_server):
    """SIGKILL leaves no stale lock: the next server starts at once."""
    srv = start_server()
    srv.kill9()
    srv.start()
    assert srv.alive()


def test_second_server_on_the_same_port_exits(start_server, tmp_path):
    first = start_server()
    cmd = [str(xdmsd_path()), "--data-dir", str(tmp_path / "other"), "--http", f"127.0.0.1:{first.port}",
           "--set", "iwf.enabled=false"]
    rc, err, _ = run_second(cmd)
    assert rc != 0, f"a second xdmsd on port {first.port} started (exit {rc}): {err}"
    assert f"127.0.0.1:{first.port}" in err and "in use" in err, f"the message does not name the port: {err!r}"
    assert f"pid {first.proc.pid}" in err, f"the message does not name pid {first.proc.pid}: {err!r}"
    # Every connection still reaches the first server.
    for _ in range(20):
        assert first.alive()


def test_port_held_by_another_program_is_refused(tmp_path):
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        cmd = [str(xdmsd_path()), "--data-dir", str(tmp_path / "d"), "--http", f"127.0.0.1:{port}",
               "--set", "iwf.enabled=false"]
        rc, err, _ = run_second(cmd)
        assert rc != 0 and f"127.0.0.1:{port}" in err, f"exit {rc}: {err!r}"
    finally:
        holder.close()


def test_data_directory_that_is_a_file_says_not_a_directory(tmp_path):
    path = tmp_path / "plain-file"
    path.write_bytes(b"not a store\n")
    rc, err, _ = run_second([str(xdmsd_path()), "--data-dir", str(path), "--http", "127.0.0.1:0"])
    assert rc != 0 and "not a directory" in err, f"xdmsd: exit {rc}, stderr {err!r}"
    assert "input/output error" not in err, err
    res = subprocess.run([str(xdmsctl_path()), "--data-dir", str(path), "user", "list"], capture_output=True,
                         timeout=30)
    text = res.stderr.decode(errors="replace")
    assert res.returncode != 0 and "not a directory" in text, f"xdmsctl: exit {res.returncode}, {text!r}"
    assert path.read_bytes() == b"not a store\n", "the file was changed"


def test_restart_on_the_same_directory_after_a_clean_stop(tmp_path):
    srv = Server(tmp_path / "s", settings={"iwf.enabled": "false"})
    srv.start()
    srv.stop()
    srv.start()
    try:
        assert srv.alive()
    finally:
        srv.stop()
