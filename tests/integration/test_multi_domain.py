# SPDX-License-Identifier: MIT
"""Users of several domains side by side, and the default realm.

- sip:alice@a.example and sip:alice@b.example are both provisioned; each
  logs in with its own password, over HTTP (the realm of a user's documents
  is its domain) and over SIP (the realm is the From domain), and neither
  reaches the other's documents. A Digest username is unique within its
  realm, not across realms.
- A name really taken is refused with a message naming the realm and the
  user that holds it.
- The default realm (global documents, tel: users) is the domain of the
  first user provisioned, recorded in the store, so a single-domain
  deployment needs no auth.realm. A store written by the previous version
  (no record) keeps the old default, "xdms".
"""

import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from sipua import Subscriber, digest_authorization, rl_body
from xdmslib import (ALICE, CAPS, CAROL, DATA, MIME, PASSWORDS, PCC, RL, Client, data, doc_path, expect,
                     global_path, rl_doc, sip_port)

A = "sip:alice@a.example"
B = "sip:alice@b.example"
USERS = {A: "alice-a-secret", B: "alice-b-secret"}


@pytest.fixture
def two_domains(start_server):
    return start_server(users=USERS, settings={"sip.listen": "127.0.0.1:0"})


def client(srv, xui, username="alice", password=None, algorithm="MD5"):
    return Client(srv, username=username, password=password or USERS[xui], algorithm=algorithm)


def test_same_user_part_in_two_domains_is_provisioned(start_server):
    srv = start_server(users={}, start=False)
    for xui, pw in USERS.items():
        r = srv.ctl("user", "add", xui, pw)
        assert r.returncode == 0, f"user add {xui}: expected exit 0, got {r.returncode}: {r.stderr!r}"
        if xui == B:
            note = r.stderr.decode()
            assert "'alice' in realm a.example belongs to " + A in note and B in note, \
                f"user add {B} should say that it logs in to the default realm with its full XUI: {note!r}"
    listed = srv.ctl("user", "list", check=0).stdout.decode().split()
    assert listed == [A, B], f"user list: {listed}"
    stats = srv.ctl("stats", check=0).stdout.decode()
    assert "\ndefault_realm a.example\n" in stats, f"stats should show the recorded default realm: {stats!r}"


def test_a_user_of_the_default_realm_added_after_a_namesake_of_another_domain(start_server):
    """Provisioning order must not lock a user out of its own domain: when
    alice@b (added first) holds "alice" in a.example only as an alias for
    global documents, alice@a takes it over and alice@b keeps her full XUI."""
    srv = start_server(users={}, start=False)
    srv.ctl("user", "add", "sip:x@a.example", "x-secret", check=0)
    srv.ctl("user", "add", B, USERS[B], check=0)
    r = srv.ctl("user", "add", A, USERS[A])
    assert r.returncode == 0, f"user add {A} after {B}: {r.returncode} {r.stderr!r}"
    assert B in r.stderr.decode() and "full XUI" in r.stderr.decode(), r.stderr
    srv.start()
    a = client(srv, A)
    expect(a.put(doc_path(RL, A), rl_doc(display="a"), MIME[RL]), 201)
    expect(a.get(global_path(CAPS)), 200)  # the default realm, by user part
    b = client(srv, B)
    expect(b.put(doc_path(RL, B), rl_doc(display="b"), MIME[RL]), 201)
    expect(client(srv, B, username=B).get(global_path(CAPS)), 200)  # full XUI in a.example
    r = b.get(global_path(CAPS))
    assert r.status == 401, f"alice@b's user part must no longer log in to a.example: {r.describe()}"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_each_alice_logs_in_with_her_own_password_over_http(two_domains, algorithm):
    srv = two_domains
    for xui in (A, B):
        c = client(srv, xui, algorithm=algorithm)
        body = rl_doc(display=f"of {xui}")
        expect(c.put(doc_path(RL, xui), body, MIME[RL]), 201)
        assert c.challenge["realm"] == xui.split("@")[1], c.challenge
        assert expect(c.get(doc_path(RL, xui)), 200).body == body


def test_neither_alice_reaches_the_others_documents(two_domains):
    srv = two_domains
    for xui in (A, B):
        expect(client(srv, xui).put(doc_path(RL, xui), rl_doc(display=xui), MIME[RL]), 201)
    for me, other in ((A, B), (B, A)):
        for username in ("alice", me):
            c = client(srv, me, username=username)
            for method in ("GET", "PUT", "DELETE"):
                body = rl_doc() if method == "PUT" else None
                r = c.request(method, doc_path(RL, other), body=body,
                              content_type=MIME[RL] if body else None)
                assert r.status in (401, 403), \
                    f"{me} (username {username}) {method} {other}'s document: expected 401/403, got {r.describe()}"
    for xui in (A, B):
        r = expect(client(srv, xui).get(doc_path(RL, xui)), 200)
        assert r.body == rl_doc(display=xui), f"{xui}'s document changed: {r.describe()}"


def test_the_other_domains_password_is_wrong(two_domains):
    # alice@a's password in realm b.example: "alice" there is alice@b.
    r = client(two_domains, A).get(doc_path(RL, B))
    assert r.status == 401, f"alice@a's password must not open alice@b's realm: {r.describe()}"


def test_global_documents_first_domain_realm(two_domains):
    """The default realm is the first user's domain; the other alice logs in
    there with her full XUI (her user part names the first one)."""
    srv = two_domains
    c = client(srv, A)
    expect(c.get(global_path(CAPS)), 200)
    assert c.challenge["realm"] == "a.example", c.challenge
    expect(client(srv, B, username=B).get(global_path(CAPS)), 200)
    r = client(srv, B).get(global_path(CAPS))
    assert r.status == 401, f"'alice' in realm a.example is alice@a, not alice@b: {r.describe()}"


def sip_subscribe_digest(srv, xui, password, username="alice"):
    """SUBSCRIBE from @xui, answer the first challenge; returns (realm, final status)."""
    s = Subscriber(srv.sip, aor=xui)
    try:
        pcc = f"{PCC}/users/{xui}/index"
        resp = s.subscribe(rl_body(pcc))
        assert resp.status == 401, f"SUBSCRIBE without credentials: expected 401, got {resp}"
        challenge = resp.all("WWW-Authenticate")[0]
        chal = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
        auth, _ = digest_authorization(challenge, username, password, xui)
        resp = s.subscribe(rl_body(pcc), extra=[f"Authorization: {auth}"])
        if resp.status == 200:
            assert s.notify().header("Event") == "xcap-diff"
        return chal["realm"], resp.status
    finally:
        s.close()


def test_each_alice_subscribes_with_her_own_password_over_sip(two_domains):
    srv = two_domains
    srv.sip = sip_port(srv)
    for xui in (A, B):
        realm, status = sip_subscribe_digest(srv, xui, USERS[xui])
        assert realm == xui.split("@")[1], f"SIP realm for {xui}: {realm}"
        assert status == 200, f"SUBSCRIBE as {xui} with her password: expected 200, got {status}"
    _, status = sip_subscribe_digest(srv, B, USERS[A])
    assert status == 401, f"SUBSCRIBE as {B} with alice@a's password: expected 401, got {status}"


def test_a_name_really_taken_names_realm_and_holder(start_server):
    srv = start_server(users={A: "pw-a"}, start=False)
    r = srv.ctl("user", "add", "sips:alice@a.example", "pw-s")
    err = r.stderr.decode()
    assert r.returncode == 1, f"sips:alice@a.example shares 'alice' in realm a.example: {r.returncode} {err!r}"
    assert "a.example" in err and A in err and "'alice'" in err, \
        f"the error must name the realm and the user that holds the name: {err!r}"
    assert srv.ctl("user", "list", check=0).stdout.decode().split() == [A]


# ---- the default realm


def test_single_domain_default_realm_is_the_domain(start_server):
    """A client that holds one password for realm example.com reads global
    documents and xcap-caps with the default configuration."""
    srv = start_server(users={"sip:alice@example.com": "pw", "sip:bob@example.com": "pw-b",
                              "tel:+15555550101": "pw-t"})
    mgr = urllib.request.HTTPPasswordMgr()
    mgr.add_password("example.com", srv.url("/"), "alice", "pw")
    op = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(mgr))
    for path in (global_path(CAPS), doc_path(RL, "sip:alice@example.com")):
        try:
            with op.open(srv.url(path), timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (200, 404), \
            f"GET {path} with a password for realm example.com only: expected to authenticate, got {status}"
    # A tel: user lives in the same realm.
    c = Client(srv, username="+15555550101", password="pw-t", algorithm="MD5")
    expect(c.put(doc_path(PCC, "tel:+15555550101"), data("pcc-alice.xml"), MIME[PCC]), 201)
    assert c.challenge["realm"] == "example.com", c.challenge


@pytest.mark.skipif(shutil.which("mdb_load") is None, reason="lmdb-utils not installed")
def test_store_written_by_the_previous_version(start_server):
    """data/store-schema1.mdb-dump is a store written by the previous
    xdmsctl (schema 1, users with credentials in their domain and in "xdms",
    no default_realm record, alice's resource-lists document). It opens and
    keeps working with the default configuration; users added now join it."""
    srv = start_server(users={}, start=False)
    load = subprocess.run(["mdb_load", "-f", str(DATA / "store-schema1.mdb-dump"), str(srv.data_dir)],
                          capture_output=True, timeout=30)
    assert load.returncode == 0, f"mdb_load: {load.stderr!r}"
    srv.start()
    alice = Client(srv, username="alice", password=PASSWORDS[ALICE], algorithm="MD5")
    r = expect(alice.get(doc_path(RL, ALICE)), 200)
    assert b'<list name="friends">' in r.body and r.etag == '"rl-0b24c88a-0000000000000001"', r.describe()
    assert alice.challenge["realm"] == "example.com", alice.challenge
    expect(alice.get(global_path(CAPS)), 200)
    assert alice.challenge["realm"] == "xdms", f"the old store keeps its default realm: {alice.challenge}"
    carol = Client(srv, username="+15555550101", password=PASSWORDS[CAROL], algorithm="SHA-256")
    expect(carol.put(doc_path(PCC, CAROL), data("pcc-alice.xml"), MIME[PCC]), 201)
    assert carol.challenge["realm"] == "xdms", carol.challenge
    # A user of another domain with the same user part joins the old store.
    r = srv.ctl("user", "add", "sip:alice@other.example", "other-secret")
    assert r.returncode == 0, f"user add on the old store: {r.stderr!r}"
    other = Client(srv, username="alice", password="other-secret", algorithm="MD5")
    expect(other.put(doc_path(RL, "sip:alice@other.example"), rl_doc(), MIME[RL]), 201)
    other = Client(srv, username="sip:alice@other.example", password="other-secret", algorithm="MD5")
    expect(other.get(global_path(CAPS)), 200)
    assert other.challenge["realm"] == "xdms", other.challenge
    expect(alice.get(doc_path(RL, ALICE)), 200)
    dump = subprocess.run(["mdb_dump", "-p", "-s", "meta", str(srv.data_dir)], capture_output=True, timeout=30)
    assert b" default_realm\n xdms\n" in dump.stdout, f"the old default is recorded now: {dump.stdout!r}"


def test_configured_realm_wins_over_the_recorded_one(start_server):
    srv = start_server(users={"sip:alice@example.com": "pw"}, start=False)
    srv.ctl("--set", "auth.realm=cab.test", "user", "add", "sip:bob@example.com", "pw-b", check=0)
    srv.settings["auth.realm"] = "cab.test"
    srv.start()
    bob = Client(srv, username="bob", password="pw-b", algorithm="MD5")
    expect(bob.get(global_path(CAPS)), 200)
    assert bob.challenge["realm"] == "cab.test", bob.challenge
