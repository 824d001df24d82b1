# SPDX-License-Identifier: MIT
"""xdmsctl (user and doc commands) and xdmsd's command line."""

import subprocess

import pytest

from xdmslib import (ALICE, BOB, MIME, PASSWORDS, PCC, RL, Client, data, doc_path, expect, expect_etag,
                     rl_doc, xdmsctl_path, xdmsd_path)


def run(cmd, timeout=20):
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def describe(res):
    return f"exit {res.returncode}, stdout={res.stdout!r}, stderr={res.stderr!r}"


# ---- users


def test_user_add_list_del_round_trip(start_server):
    srv = start_server(users={}, start=False)
    assert srv.ctl("user", "list", check=0).stdout.strip() == b""
    srv.ctl("user", "add", ALICE, "pw-a", check=0)
    srv.ctl("user", "add", "tel:+15555550101", "pw-t", check=0)
    srv.ctl("user", "add", BOB, "pw-b", check=0)
    res = srv.ctl("user", "list", check=0)
    lines = res.stdout.decode().splitlines()
    assert sorted(lines) == sorted([ALICE, BOB, "tel:+15555550101"]), \
        f"user list: expected one XUI per line, got {res.stdout!r}"
    srv.ctl("user", "del", BOB, check=0)
    res = srv.ctl("user", "list", check=0)
    assert sorted(res.stdout.decode().splitlines()) == sorted([ALICE, "tel:+15555550101"]), res.stdout


def test_user_add_existing_is_exit_1(start_server):
    srv = start_server(users={}, start=False)
    srv.ctl("user", "add", ALICE, "pw", check=0)
    res = srv.ctl("user", "add", ALICE, "other", check=1)
    assert res.stderr.strip(), f"expected a message on stderr: {describe(res)}"
    # The original password still works.
    srv.start()
    c = Client(srv, username=ALICE, password="pw")
    expect(c.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    c2 = Client(srv, username=ALICE, password="other")
    expect(c2.get(doc_path(RL, ALICE)), 401)


def test_users_added_and_deleted_while_running(start_server):
    srv = start_server(users={ALICE: PASSWORDS[ALICE]})
    srv.ctl("user", "add", BOB, PASSWORDS[BOB], check=0)
    bob = srv.client(BOB)
    r = bob.put(doc_path(RL, BOB), rl_doc(), MIME[RL])
    assert r.status == 201, f"a user added with xdmsctl while xdmsd runs must log in: {r.describe()}"
    srv.ctl("user", "del", BOB, check=0)
    fresh = srv.client(BOB)
    r = fresh.get(doc_path(RL, BOB))
    assert r.status == 401, f"a deleted user must not log in any more: {r.describe()}"


def test_tel_user_with_custom_realm(start_server):
    srv = start_server(users={"tel:+4930123456": "tel-pw"}, realm="operator.test",
                       settings={"auth.realm": "operator.test"})
    c = Client(srv, username="tel:+4930123456", password="tel-pw")
    expect(c.put(doc_path(PCC, "tel:+4930123456"), data("pcc-alice.xml"), MIME[PCC]), 201)
    assert c.challenge["realm"] == "operator.test"


@pytest.mark.parametrize("args", [
    [],
    ["user"],
    ["user", "add", ALICE],
    ["user", "frobnicate"],
    ["frobnicate"],
    ["doc", "get"],
    ["doc", "put", "resource-lists/users/sip:alice@example.com/index"],
], ids=["nothing", "user", "add-no-password", "user-bad-verb", "bad-command", "doc-get-no-sel",
        "doc-put-no-file"])
def test_ctl_bad_usage_is_exit_2(tmp_path, args):
    res = run([xdmsctl_path(), "--data-dir", tmp_path / "data", *args])
    assert res.returncode == 2, f"xdmsctl {' '.join(args)}: expected exit 2, got {describe(res)}"
    assert res.stderr.strip(), f"expected a usage message on stderr: {describe(res)}"


def test_ctl_unknown_option_is_exit_2(tmp_path):
    res = run([xdmsctl_path(), "--data-dir", tmp_path / "data", "--bogus-option", "user", "list"])
    assert res.returncode == 2, describe(res)


# ---- documents


def test_doc_put_then_xcap_get(start_server, tmp_path):
    srv = start_server()
    body = data("pcc-alice.xml")
    f = tmp_path / "pcc.xml"
    f.write_bytes(body)
    sel = f"{PCC}/users/{ALICE}/index"
    srv.ctl("doc", "put", sel, f, check=0)
    r = expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 200)
    assert r.body == body, "XCAP GET after xdmsctl doc put returned other bytes"
    assert r.content_type == MIME[PCC]
    expect_etag(r)


def test_doc_put_before_start(start_server, tmp_path):
    srv = start_server(start=False)
    body = rl_doc("offline")
    f = tmp_path / "rl.xml"
    f.write_bytes(body)
    srv.ctl("doc", "put", f"{RL}/users/{ALICE}/index", f, check=0)
    srv.start()
    r = expect(srv.client(ALICE).get(doc_path(RL, ALICE)), 200)
    assert r.body == body


def test_doc_put_replaces_and_changes_etag(start_server, tmp_path):
    srv = start_server()
    a = srv.client(ALICE)
    etag = expect_etag(expect(a.put(doc_path(RL, ALICE), rl_doc("xcap"), MIME[RL]), 201))
    f = tmp_path / "rl.xml"
    f.write_bytes(rl_doc("ctl"))
    srv.ctl("doc", "put", f"{RL}/users/{ALICE}/index", f, check=0)
    r = expect(a.get(doc_path(RL, ALICE)), 200)
    assert r.body == rl_doc("ctl")
    assert r.etag != etag, "xdmsctl doc put kept the old ETag"
    expect(a.get(doc_path(RL, ALICE), headers={"If-None-Match": etag}), 200)


@pytest.mark.parametrize("fixture,auid", [
    ("pcc-invalid-tel-type.xml", PCC),
    ("not-well-formed", RL),
    ("pcc-alice.xml", RL),
], ids=["schema-invalid", "not-well-formed", "wrong-root"])
def test_doc_put_validates(start_server, tmp_path, fixture, auid):
    srv = start_server()
    f = tmp_path / "bad.xml"
    f.write_bytes(b"<resource-lists" if fixture == "not-well-formed" else data(fixture))
    res = srv.ctl("doc", "put", f"{auid}/users/{ALICE}/index", f)
    assert res.returncode > 0, \
        f"xdmsctl doc put of an invalid document must fail: {describe(res)}"
    assert res.stderr.strip(), f"expected a reason on stderr: {describe(res)}"
    expect(srv.client(ALICE).get(doc_path(auid, ALICE)), 404)


def test_doc_get_prints_xcap_put_document_byte_exact(start_server):
    srv = start_server()
    body = ("<?xml version='1.0' encoding='UTF-8'?>\r\n<!-- ✓ -->"
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            '<list name="日本"/></resource-lists>').encode()
    expect(srv.client(ALICE).put(doc_path(RL, ALICE, "dir/x.xml"), body, MIME[RL]), 201)
    res = srv.ctl("doc", "get", f"{RL}/users/{ALICE}/dir/x.xml", check=0)
    assert res.stdout == body, f"xdmsctl doc get: expected {body!r}, got {res.stdout!r}"


def test_doc_get_missing_is_exit_1(start_server):
    srv = start_server()
    res = srv.ctl("doc", "get", f"{RL}/users/{ALICE}/index", check=1)
    assert res.stdout == b"", f"nothing may be printed for a missing document: {describe(res)}"


def test_doc_get_after_restart(start_server):
    srv = start_server()
    body = rl_doc("persist")
    expect(srv.client(BOB).put(doc_path(RL, BOB), body, MIME[RL]), 201)
    srv.stop()
    res = srv.ctl("doc", "get", f"{RL}/users/{BOB}/index", check=0)
    assert res.stdout == body


def test_stats(start_server):
    srv = start_server()
    expect(srv.client(ALICE).put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    res = srv.ctl("stats", check=0)
    assert res.stdout.strip(), f"xdmsctl stats printed nothing: {describe(res)}"


# ---- xdmsd command line


def test_xdmsd_help_and_version():
    res = run([xdmsd_path(), "--help"])
    assert res.returncode == 0, describe(res)
    assert b"--data-dir" in res.stdout + res.stderr, f"--help does not mention --data-dir: {describe(res)}"
    res = run([xdmsd_path(), "--version"])
    assert res.returncode == 0, describe(res)
    assert (res.stdout + res.stderr).strip(), "--version printed nothing"


@pytest.mark.parametrize("setting,key", [
    ("no.such_key=1", "no.such_key"),
    ("http.no_such=1", "http.no_such"),
    ("store.sync=maybe", "store.sync"),
    ("http.max_body=lots", "http.max_body"),
    ("auth.allow_basic=2", "auth.allow_basic"),
    ("log.access=yes please", "log.access"),
], ids=["unknown-section", "unknown-key", "bad-bool", "bad-size", "bad-bool-2", "bad-bool-3"])
def test_xdmsd_bad_set_is_exit_2(tmp_path, setting, key):
    res = run([xdmsd_path(), "--data-dir", tmp_path / "data", "--http", "127.0.0.1:0",
               "--set", setting])
    assert res.returncode == 2, f"--set {setting}: expected exit 2, got {describe(res)}"
    assert key.encode() in res.stderr, f"the message must name {key}: {describe(res)}"
    assert b"listening" not in res.stderr


def test_xdmsd_bad_option_is_exit_2(tmp_path):
    res = run([xdmsd_path(), "--no-such-option"])
    assert res.returncode == 2, describe(res)


def test_config_file_and_set_override(start_server, tmp_path):
    conf = tmp_path / "xdmsd.conf"
    conf.write_text("[auth]\nrealm = file.realm\n\n[http]\nxcap_root = /xcap\n")
    srv = start_server(config_file=conf, realm="file.realm")
    r = Client(srv).get("/xcap/resource-lists/global/index")
    assert r.status == 401
    assert 'realm="file.realm"' in r.all("WWW-Authenticate")[0], r.describe()
    # The root moved: /xcap serves documents, /xcap-root does not.
    a = srv.client(ALICE)
    expect(a.put(f"/xcap/resource-lists/users/{ALICE}/index", rl_doc(), MIME[RL]), 201)
    expect(a.get(f"/xcap/resource-lists/users/{ALICE}/index"), 200)
    expect(a.get(f"/xcap-root/resource-lists/users/{ALICE}/index"), 404)
    srv.stop()
    # --set wins over the file.
    srv.settings["auth.realm"] = "set.realm"
    srv.start()
    r = Client(srv).get("/xcap/resource-lists/global/index")
    assert 'realm="set.realm"' in r.all("WWW-Authenticate")[0], r.describe()


def test_print_config_reads_back_as_itself(tmp_path):
    """The packaged /etc/xdmsd/xdmsd.conf is --print-config's output: read
    back with -c it must give the same file. Descriptions are wrapped into
    comment lines that inih reads whole (a longer line was read as two, and
    a comment's tail as an unknown key)."""
    conf = tmp_path / "xdmsd.conf"
    res = run([xdmsd_path(), "--print-config"])
    assert res.returncode == 0, describe(res)
    conf.write_bytes(res.stdout)
    longest = max(len(line) for line in res.stdout.splitlines())
    assert longest <= 78, f"--print-config wrote a line of {longest} characters"
    again = run([xdmsd_path(), "-c", conf, "--print-config"])
    assert again.returncode == 0, f"xdmsd -c on --print-config's own output: {describe(again)}"
    assert again.stdout == res.stdout, "the configuration read back prints differently"


def test_a_configuration_line_longer_than_inih_reads_is_refused(tmp_path):
    conf = tmp_path / "xdmsd.conf"
    conf.write_text("[http]\n# " + "x" * 300 + "\nthreads = 2\n")
    res = run([xdmsd_path(), "-c", conf, "--print-config"])
    assert res.returncode == 2, f"a 302-character line: {describe(res)}"
    assert f"{conf}:2: longer than".encode() in res.stderr, describe(res)


def test_store_settings_out_of_range_stop_the_start_with_their_name(tmp_path):
    """store.wal_size between 1 and 65535 and store.batch_max above 65536
    stop xdmsd with a message naming the key, not "invalid argument"."""
    for key, value, says in (("store.wal_size", "100", b"store.wal_size: 100 bytes is below 65536"),
                             ("store.batch_max", "70000", b"store.batch_max: 70000 is above 65536")):
        res = run([xdmsd_path(), "--data-dir", tmp_path / key, "--http", "127.0.0.1:0",
                   "--set", f"{key}={value}"])
        assert res.returncode == 1, describe(res)
        assert says in res.stderr, describe(res)
