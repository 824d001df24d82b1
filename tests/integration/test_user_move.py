# SPDX-License-Identifier: MIT
"""xdmsctl user export / import / purge / thaw and global put on one
machine: what a bad bundle, a wrong order or bad usage does (a clear error,
nothing stored). The full move between shards behind HAProxy and Kamailio
is in test_scale_out.py."""

from xdmslib import ALICE, BOB, PASSWORDS, RL, doc_path, expect, rl_doc, unquote


def exported(start_server, tmp_path):
    src = start_server(name="src")
    etag = unquote(expect(src.client(ALICE).put_doc(RL, ALICE, rl_doc()), 201).header("ETag"))
    bundle = tmp_path / "alice.export"
    src.ctl("user", "export", ALICE, str(bundle), check=0)
    return src, bundle, etag


def test_export_freezes_and_thaw_or_purge_ends_it(start_server, tmp_path):
    src, bundle, etag = exported(start_server, tmp_path)
    alice = src.client(ALICE)
    r = alice.put_doc(RL, ALICE, rl_doc(display="during"))
    assert r.status == 503 and b"moving to another shard" in r.body, r.describe()
    # Reads go on, and other users are not frozen.
    assert unquote(expect(alice.get(doc_path(RL, ALICE)), 200).header("ETag")) == etag
    expect(src.client(BOB).put_doc(RL, BOB, rl_doc()), 201)
    # An existing bundle is not overwritten.
    res = src.ctl("user", "export", ALICE, str(bundle), check=1)
    assert b"File exists" in res.stderr, res.stderr
    src.ctl("user", "thaw", ALICE, check=0)
    expect(alice.put_doc(RL, ALICE, rl_doc(display="after")), 200)
    # Purge refuses a user that is not being moved.
    res = src.ctl("user", "purge", ALICE, check=1)
    assert b"not being moved" in res.stderr, res.stderr
    assert ALICE in src.ctl("user", "list", check=0).stdout.decode()


def test_export_of_an_unknown_user_leaves_nothing_frozen(start_server, tmp_path):
    src = start_server(name="src")
    res = src.ctl("user", "export", "sip:nobody@example.com", str(tmp_path / "x"), check=1)
    assert b"no such user" in res.stderr, res.stderr
    assert not (tmp_path / "x").exists()
    expect(src.client(ALICE).put_doc(RL, ALICE, rl_doc()), 201)


def test_import_refuses_bad_bundles_and_stores_nothing(start_server, tmp_path):
    src, bundle, etag = exported(start_server, tmp_path)
    dst = start_server(name="dst", users={})
    good = bundle.read_bytes()
    cases = {
        "cut": (good[:-5], b"cut short"),
        "magic": (b"hello\n" + good, b"not a user export"),
        "length": (good.replace(b"\ndoc ", b"\ndoc 99999999999 ", 1), b"malformed line"),
        "foreign": (good.replace(b"resource-lists/users/sip:alice@example.com/index",
                                 b"resource-lists/users/sip:bob@example.com/index", 1), b"not a document of"),
        "realm": (good.replace(b"\nrealm 0 ", b"\nrealm 7 ", 1), b"malformed line"),
    }
    for name, (data, why) in cases.items():
        f = tmp_path / f"{name}.export"
        f.write_bytes(data)
        res = dst.ctl("user", "import", str(f), check=1)
        assert why in res.stderr, (name, res.stderr)
    assert dst.ctl("user", "list", check=0).stdout == b"", "a refused bundle stored a user"
    assert dst.ctl("doc", "list", check=0).stdout == b"", "a refused bundle stored a document"
    # The good one goes in, twice (idempotent), with its ETag and credentials.
    for _ in range(2):
        res = dst.ctl("user", "import", str(bundle), check=0)
        assert b"imported sip:alice@example.com: 1 document(s)" in res.stdout, res.stdout
    r = expect(dst.client(ALICE, PASSWORDS[ALICE]).get(doc_path(RL, ALICE)), 200)
    assert unquote(r.header("ETag")) == etag
    # The old shard lets go of it.
    src.ctl("user", "purge", ALICE, check=0)
    assert ALICE not in src.ctl("user", "list", check=0).stdout.decode()
    assert f"/users/{ALICE}/".encode() not in src.ctl("doc", "list", check=0).stdout


def test_global_usage_errors(start_server, tmp_path):
    srv = start_server(name="g")
    f = tmp_path / "a.xml"
    f.write_bytes(b"<x/>")
    for args, why in (
        (["global", "put", "resource-lists/users/sip:alice@example.com/index", str(f), "--shard",
          srv.url("/xcap-root")], b"not a global document selector"),
        (["global", "put", "org.xdmsd.iwf-adapter/global/a", str(f)], b"at least one --shard"),
        (["global", "put", "org.xdmsd.iwf-adapter/global/a", str(f), "--shard", "ftp://x/"], b"not an http"),
        (["global", "put", "org.xdmsd.iwf-adapter/global/a", str(f), "--shard", srv.url("/xcap-root"),
          "--bogus", "1"], b"unknown option"),
        (["global", "put", "no-such-auid/global/a", str(f), "--shard", srv.url("/xcap-root")],
         b"no application usage"),
    ):
        res = srv.ctl(*args, check=2)
        assert why in res.stderr, (args, res.stderr)
    # A shard that refuses the document (not schema-valid) is reported, exit 1.
    res = srv.ctl("global", "put", "org.xdmsd.iwf-adapter/global/a", str(f), "--shard", srv.url("/xcap-root"),
                  "--user", f"admin:{PASSWORDS['sip:admin@example.com']}", check=1)
    assert b"\tFAILED\t409" in res.stdout, res.stdout


def test_purge_ends_the_moved_users_subscriptions_with_deactivated(start_server, tmp_path):
    """After a move the old shard must not tell the user's own subscriptions
    that its documents were deleted (they live on in the new shard): it ends
    them with reason=deactivated, so the client re-subscribes at once and the
    new SUBSCRIBE is routed to the new shard. Other watchers (a CAB server
    watching every user) still see the documents leave this shard."""
    from sipua import Subscriber, rl_body
    from xdmslib import PCC, data, sip_port

    src = start_server(name="src", settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    src.sip = sip_port(src)
    expect(src.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    pcc = f"{PCC}/users/{ALICE}/index"
    own = Subscriber(src.sip, aor=ALICE)
    server = Subscriber(src.sip, aor="sip:cab-iwf@example.com")  # a trusted server: every user
    try:
        for s, body in ((own, rl_body(pcc)), (server, rl_body(f"{PCC}/users/"))):
            assert s.subscribe(body).status == 200
            assert "active" in s.notify().header("Subscription-State")
        bundle = tmp_path / "alice.export"
        src.ctl("user", "export", ALICE, str(bundle), check=0)
        src.ctl("user", "purge", ALICE, check=0)
        end = own.notify(timeout=10)
        state = end.header("Subscription-State")
        assert state.startswith("terminated") and "reason=deactivated" in state, \
            f"the owner's subscription should end deactivated, got {state!r}: {end!r}"
        seen = server.notify(timeout=10)
        assert "active" in seen.header("Subscription-State") and pcc.encode() in seen.body, seen
    finally:
        own.close()
        server.close()


def test_watches_move_with_the_user_and_stop_on_the_old_shard(start_server, tmp_path):
    """A subscribe-profile being watched moves with its user: the new shard
    runs it again from the bundle (seq + 1, with the request's sealed OAuth
    refresh token) and keeps it from then on; the purge stops the old
    shard's watch."""

    from iwflib import add_adapter, expect_response, fh_doc, request_xml, response_of, wait_for, wait_response
    from jsonapi import CLIENT_ID, CLIENT_SECRET, ThirdParty
    from xdmslib import FH, PCC

    refresh, first = "1//0gRt-alice-refresh-7c1e", "CPDd3Y-rMhIMCNT_n6sGEIDki8QBGgQIARAB"
    settings = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
                "iwf.max_response": "65536"}
    tp = ThirdParty().start()
    tp.add_refresh_token(refresh)
    tp.quiet_sync.add(first)

    def seq_of(srv):
        resp = response_of(expect(srv.client(ALICE).get(doc_path(FH, ALICE)), 200).body, "sub-1")
        return int(resp.get("seq", "0")) if resp is not None else 0

    try:
        src = start_server(name="src", settings=settings)
        # One credential key for both shards (xdmsctl seals with the data
        # directory's): the moved sealed secrets open on the new shard.
        dst = start_server(name="dst", users={}, settings=settings, start=False)
        (dst.data_dir / "iwf.key").write_bytes((src.data_dir / "iwf.key").read_bytes())
        (dst.data_dir / "iwf.key").chmod(0o600)
        dst.start()
        for srv in (src, dst):
            srv.ctl("credential", "set", "--adapter", "people", "--client-secret", CLIENT_SECRET, check=0)
            add_adapter(srv, "people", "http",
                        tp.url("/people/v1/people/me/connections?personFields=names,emailAddresses,phoneNumbers"
                               "&requestSyncToken=true"),
                        "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                        "--client-id", CLIENT_ID, "--next-page-token", "/nextPageToken",
                        "--page-token-param", "pageToken", "--sync-token", "/nextSyncToken",
                        "--sync-token-param", "syncToken", "--import-xslt", "people-api-import.xsl",
                        "--export-xslt", "people-api-export.xsl", "--poll-interval", "1")
        req = request_xml("subscribe-profile", "sub-1", "people", remote_user="alice@example.com", token=refresh)
        expect(src.client(ALICE).put_doc(FH, ALICE, fh_doc(req)), 201)
        resp, _ = wait_response(src.client(ALICE), ALICE, "sub-1")
        expect_response(resp, "success", 200)
        assert "sub-1" in src.ctl("subscriptions", check=0).stdout.decode()

        bundle = tmp_path / "alice.export"
        res = src.ctl("user", "export", ALICE, str(bundle), check=0)
        assert b"1 watch(es)" in res.stderr, res.stderr
        text = bundle.read_bytes()
        assert b"\nwatch 1 " in text and b"\njob subscribe " in text, text[-400:]
        assert refresh.encode() not in text, "the refresh token left its seal"
        dst.ctl("user", "import", str(bundle), check=0)
        src.ctl("user", "purge", ALICE, check=0)

        # The old shard stops; the new one runs the subscription again.
        wait_for(lambda: b"its record is gone" in src.log_path.read_bytes(), "the old shard's watch stopped")
        assert "sub-1" not in src.ctl("subscriptions", check=0).stdout.decode()
        wait_for(lambda: seq_of(dst) == 2, "seq 2 on the new shard")
        resp, _ = wait_response(dst.client(ALICE), ALICE, "sub-1")
        expect_response(resp, "success", 200)
        assert "sub-1\tpeople\tactive" in dst.ctl("subscriptions", check=0).stdout.decode()
        # And keeps it: a change at the 3rd party reaches the new shard's PCC.
        tp.quiet_sync.discard(first)
        wait_for(lambda: seq_of(dst) == 3, "seq 3 on the new shard")
        assert b"tel:+15555550177" in expect(dst.client(ALICE).get(doc_path(PCC, ALICE)), 200).body
    finally:
        tp.stop()
