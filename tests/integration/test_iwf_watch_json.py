# SPDX-License-Identifier: MIT
"""subscribe-profile over JSON REST 3rd parties behind OAuth 2.0 (jsonapi.py
on loopback, the shipped People-API-shaped and Graph-shaped adapters): the
watch polls with the stored sync token or delta link and imports only what
changed; an empty delta is no update; an expired sync token is one full
sync; a revoked access token is replaced from the sealed refresh token; a
refused refresh token ends the subscription with 401. No token is logged.
Every wait polls with a deadline."""

import time
import urllib.parse

import pytest
from lxml import etree

from iwflib import NS, add_adapter, expect_response, fh_doc, request_xml, response_of, text, wait_for, wait_response
from jsonapi import CLIENT_ID, CLIENT_SECRET, ThirdParty
from xdmslib import ALICE, FH, PCC, doc_path, expect

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
        "iwf.max_response": "65536", "log.level": "debug"}
REMOTE = "alice@example.com"
REFRESH = "1//0gRt-alice-refresh-7c1e"
PEOPLE_FIRST = "CPDd3Y-rMhIMCNT_n6sGEIDki8QBGgQIARAB"   # the full sync's nextSyncToken
PEOPLE_SECOND = "CPDd3Y-rMhIMCPKFoKsGEMCS0_UCGgQIARAB"  # the first delta's
PEOPLE_THIRD = "CPDd3Y-rMhIMCKaHoKsGEICr7YMDGgQIARAB"   # the second delta's (quiet from then on)
GRAPH_FIRST = "mS5DuRZGjVL-abreviated"


@pytest.fixture
def tp():
    t = ThirdParty().start()
    t.add_refresh_token(REFRESH)
    yield t
    t.stop()


@pytest.fixture
def local(start_server, tp):
    srv = start_server(name="local", settings=FAST)
    for aid in ("people", "graph"):
        srv.ctl("credential", "set", "--adapter", aid, "--client-secret", CLIENT_SECRET, check=0)
    add_adapter(srv, "people", "http",
                tp.url("/people/v1/people/me/connections?personFields=names,emailAddresses,phoneNumbers,"
                       "organizations,birthdays&requestSyncToken=true"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-page-token", "/nextPageToken", "--page-token-param", "pageToken",
                "--sync-token", "/nextSyncToken", "--sync-token-param", "syncToken",
                "--import-xslt", "people-api-import.xsl", "--export-xslt", "people-api-export.xsl",
                "--poll-interval", "1")
    add_adapter(srv, "graph", "http", tp.url("/graph/v1.0/users/delta?$select=displayName,givenName,surname,mail,"
                                             "businessPhones,mobilePhone,jobTitle"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-link", "/@odata.nextLink", "--delta-link", "/@odata.deltaLink",
                "--import-xslt", "graph-import.xsl", "--export-xslt", "graph-export.xsl", "--poll-interval", "1")
    return srv


def subscribe(srv, rid="sub-1", third_party="people", expires=600, **kw):
    alice = srv.client(ALICE)
    xml = request_xml("subscribe-profile", rid, third_party, remote_user=REMOTE, **kw)
    xml = xml.replace("</subscribe-profile>", f"<expires>{expires}</expires></subscribe-profile>")
    expect(alice.put_doc(FH, ALICE, fh_doc(xml)), 201)
    resp, body = wait_response(alice, ALICE, rid)
    assert b"<token" not in body, "the refresh token is still in the document"
    return resp


def seq_of(srv, rid="sub-1"):
    r = expect(srv.client(ALICE).get(doc_path(FH, ALICE)), 200)
    resp = response_of(r.body, rid)
    return (int(resp.get("seq", "0")), resp) if resp is not None else (0, None)


def pcc_values(srv, xpath):
    r = expect(srv.client(ALICE).get(doc_path(PCC, ALICE)), 200)
    return etree.fromstring(r.body).xpath(xpath, namespaces=NS)


def calls_with(tp, prefix, needle):
    return [c for c in tp.api_calls(prefix) if needle in urllib.parse.unquote(c[1])]


def no_secret_in_log(srv):
    log = srv.log_path.read_bytes()
    for secret in (REFRESH.encode(), b"ya29.", CLIENT_SECRET.encode()):
        assert secret not in log, f"{secret!r} is in the log"


def test_delta_poll_imports_a_change_and_nothing_else(local, tp):
    tp.quiet_sync.add(PEOPLE_FIRST)   # no change at the 3rd party yet
    resp = expect_response(subscribe(local, token=REFRESH), "success", 200)
    assert resp.get("seq") == "1" and "polling every 1 s" in text(resp, "reason"), etree.tostring(resp)
    assert "tel:+15555550177" not in pcc_values(local, "//pcc:tel-string/text()")
    # The watch polls with the sync token the full sync stored; nothing
    # changed, so no update.
    wait_for(lambda: len(calls_with(tp, "/people/", f"syncToken={PEOPLE_FIRST}")) >= 2, "two delta polls")
    assert seq_of(local)[0] == 1
    # A change at the 3rd party: imported within the interval.
    tp.quiet_sync.discard(PEOPLE_FIRST)
    seq, resp = wait_for(lambda: seq_of(local)[0] == 2 and seq_of(local), "seq 2")
    expect_response(resp, "success", 200)
    assert "applied: profile imported from people" in text(resp, "reason"), etree.tostring(resp)
    assert "tel:+15555550177" in pcc_values(local, "//pcc:tel-string/text()")
    # The next deltas hold nothing for alice (another contact deleted, then
    # nothing): no new response.
    wait_for(lambda: len(calls_with(tp, "/people/", f"syncToken={PEOPLE_THIRD}")) >= 2, "polls from the third token")
    assert calls_with(tp, "/people/", f"syncToken={PEOPLE_SECOND}"), "the second delta was not asked for"
    assert seq_of(local)[0] == 2
    assert tp.grants == [REFRESH], "the cached access token was not used"
    no_secret_in_log(local)


def test_access_token_refreshed_during_a_watch(local, tp):
    tp.quiet_sync.add(PEOPLE_FIRST)
    expect_response(subscribe(local, token=REFRESH), "success", 200)
    wait_for(lambda: calls_with(tp, "/people/", f"syncToken={PEOPLE_FIRST}"), "a delta poll")
    tp.revoke_access_tokens()
    tp.quiet_sync.discard(PEOPLE_FIRST)
    wait_for(lambda: seq_of(local)[0] == 2, "seq 2 after the access token was revoked")
    assert tp.grants == [REFRESH, REFRESH]
    assert "tel:+15555550177" in pcc_values(local, "//pcc:tel-string/text()")
    no_secret_in_log(local)


def test_rotated_refresh_token_is_used_by_the_watch(local, tp):
    tp.refresh_tokens.clear()
    tp.add_refresh_token("1//rt-old-0001", rotate_to="1//rt-new-0002")
    local.ctl("credential", "set", ALICE, "people-token", "--token", "1//rt-old-0001", check=0)
    tp.quiet_sync.add(PEOPLE_FIRST)
    expect_response(subscribe(local, credential_ref="people-token"), "success", 200)
    # A restart drops the cached access token: the watch must take the
    # rotated refresh token from where the request's credential is sealed.
    local.restart()
    tp.revoke_access_tokens()
    tp.quiet_sync.discard(PEOPLE_FIRST)
    wait_for(lambda: seq_of(local)[0] == 2, "seq 2 after the restart")
    # The old one once (the 3rd party rotated it); after it, only the new one.
    assert tp.grants[0] == "1//rt-old-0001" and len(tp.grants) >= 2, tp.grants
    assert set(tp.grants[1:]) == {"1//rt-new-0002"}, tp.grants


def test_refused_grant_ends_the_watch_with_401(local, tp):
    tp.quiet_sync.add(PEOPLE_FIRST)
    expect_response(subscribe(local, token=REFRESH), "success", 200)
    etag = expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag
    tp.refresh_tokens.clear()
    tp.revoke_access_tokens()
    seq, resp = wait_for(lambda: seq_of(local)[1] is not None and seq_of(local)[1].get("status") == "terminated"
                         and seq_of(local), "the watch terminated")
    expect_response(resp, "terminated", 401)
    reason = text(resp, "reason")
    assert "invalid_grant" in reason and "new refresh token" in reason, reason
    assert seq == 2
    # Over: no more polls, the PCC as it was.
    n = len(tp.api_calls("/people/"))
    time.sleep(2.5)
    assert len(tp.api_calls("/people/")) == n
    assert expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag == etag
    no_secret_in_log(local)


def test_expired_sync_token_during_a_watch_is_one_full_sync(local, tp):
    tp.quiet_sync.add(PEOPLE_FIRST)
    expect_response(subscribe(local, token=REFRESH), "success", 200)
    wait_for(lambda: calls_with(tp, "/people/", f"syncToken={PEOPLE_FIRST}"), "a delta poll")
    n = len(tp.api_calls("/people/"))
    tp.expired_sync.add(PEOPLE_FIRST)
    # 410, then the two pages of a full sync (the second by its page token).
    wait_for(lambda: any("pageToken=" in c[1] for c in tp.api_calls("/people/")[n:]), "the full sync")
    got = [urllib.parse.unquote(c[1]) for c in tp.api_calls("/people/")[n:]]
    first_410 = next(i for i, p in enumerate(got) if f"syncToken={PEOPLE_FIRST}" in p)
    assert "syncToken" not in got[first_410 + 1] and "pageToken" in got[first_410 + 2], got
    # The full sync found nothing new for the PCC: no update.
    assert seq_of(local)[0] == 1
    wait_for(lambda: b"a full sync was made" in local.log_path.read_bytes(), "the full sync in the log")


def test_graph_delta_link_watch(local, tp):
    tp.quiet_sync.add(GRAPH_FIRST)
    expect_response(subscribe(local, third_party="graph", token=REFRESH, merge_policy="replace"), "success", 200)
    assert pcc_values(local, "//pcc:duty/text()") == ["Engineer"]
    wait_for(lambda: calls_with(tp, "/graph/", f"$deltatoken={GRAPH_FIRST}"), "a delta poll")
    assert seq_of(local)[0] == 1
    tp.quiet_sync.add("Xt9aPQ-second")  # no change after this one
    tp.quiet_sync.discard(GRAPH_FIRST)
    wait_for(lambda: seq_of(local)[0] == 2, "seq 2")
    assert pcc_values(local, "//pcc:duty/text()") == ["Principal Engineer"]
    # The delta link the change came with is the next poll's.
    wait_for(lambda: len(calls_with(tp, "/graph/", "$deltatoken=Xt9aPQ-second")) >= 2,
             "polls with the new delta link")
    assert seq_of(local)[0] == 2


def test_oauth_subscription_without_a_token_is_refused(local, tp):
    resp = expect_response(subscribe(local), "failure", 400)
    assert "refresh token" in text(resp, "reason"), etree.tostring(resp)
    assert tp.api_calls("/people/") == [] and tp.grants == []


# -- Graph-shaped webhook subscriptions (--webhook-style graph)

def hook_adapter(srv, tp, watch="webhook"):
    srv.ctl("credential", "set", "--adapter", "graph-hook", "--client-secret", CLIENT_SECRET, check=0)
    add_adapter(srv, "graph-hook", "http", tp.url("/graph/v1.0/users/delta?$select=displayName,givenName,surname,"
                                                  "mail,businessPhones,mobilePhone,jobTitle"),
                "--format", "json", "--auth", "oauth2", "--token-url", tp.url("/oauth2/token"),
                "--client-id", CLIENT_ID, "--next-link", "/@odata.nextLink", "--delta-link", "/@odata.deltaLink",
                "--import-xslt", "graph-import.xsl", "--export-xslt", "graph-export.xsl", "--poll-interval", "1",
                "--watch", watch, "--webhook-base", f"http://127.0.0.1:{srv.port}",
                "--webhook-register", tp.url("/graph/v1.0/subscriptions"), "--webhook-style", "graph")


def test_graph_webhook_handshake_and_client_state(local, tp):
    hook_adapter(local, tp)
    tp.quiet_sync.update({GRAPH_FIRST, "Xt9aPQ-second"})
    resp = expect_response(subscribe(local, third_party="graph-hook", token=REFRESH, merge_policy="replace"),
                           "success", 200)
    assert "watched by webhook" in text(resp, "reason"), etree.tostring(resp)
    # The 3rd party's handshake was answered with its token, as text.
    assert len(tp.validations) == 1 and tp.validations[0][1] == 200, tp.validations
    assert tp.validations[0][2] == tp.validations[0][0]
    [(sid, sub)] = list(tp.subs.items())
    assert sub["notificationUrl"].startswith(f"http://127.0.0.1:{local.port}/iwf/hook/g"), sub
    assert sub["resource"] == REMOTE and len(sub["clientState"]) >= 32
    # Told of changes: no polling meanwhile.
    n = len(tp.api_calls("/graph/v1.0/users"))
    time.sleep(2.5)
    assert len(tp.api_calls("/graph/v1.0/users")) == n, "a webhook watch polled"
    # A notification with a wrong clientState is refused and changes nothing.
    tp.quiet_sync.discard(GRAPH_FIRST)
    etag = expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag
    assert tp.notify(sid, client_state="not-the-secret") == 403
    time.sleep(1.5)
    assert len(tp.api_calls("/graph/v1.0/users")) == n and seq_of(local)[0] == 1
    assert expect(local.client(ALICE).get(doc_path(PCC, ALICE)), 200).etag == etag
    # The right one imports at once (a delta poll from the stored link).
    assert tp.notify(sid) == 202
    wait_for(lambda: seq_of(local)[0] == 2, "seq 2 after the notification", timeout=10)
    assert pcc_values(local, "//pcc:duty/text()") == ["Principal Engineer"]
    assert calls_with(tp, "/graph/", f"$deltatoken={GRAPH_FIRST}")
    log = local.log_path.read_bytes()
    assert sub["clientState"].encode() not in log, "the clientState is in the log"
    no_secret_in_log(local)


def test_graph_webhook_is_renewed_before_it_expires(local, tp):
    hook_adapter(local, tp)
    tp.sub_lifetime = 3   # the 3rd party grants 3 s, whatever is asked
    tp.quiet_sync.update({GRAPH_FIRST})
    expect_response(subscribe(local, third_party="graph-hook", token=REFRESH), "success", 200)
    wait_for(lambda: len([x for x in tp.sub_log if x[0] == "renew"]) >= 2, "two renewals", timeout=30)
    log = list(tp.sub_log)
    assert log[0][0] == "create" and len(tp.subs) == 1, log
    for before, renewal in zip(log, log[1:]):
        assert renewal[0] == "renew" and renewal[1] == log[0][1], log
        assert renewal[3] < before[2], f"renewed after the expiry it was granted: {log}"
    assert seq_of(local)[0] == 1


def test_graph_webhook_refused_falls_back_to_delta_polling(local, tp):
    hook_adapter(local, tp)
    tp.refuse_subscriptions = True
    tp.quiet_sync.update({GRAPH_FIRST, "Xt9aPQ-second"})
    resp = expect_response(subscribe(local, third_party="graph-hook", token=REFRESH, merge_policy="replace"),
                           "success", 200)
    assert "could not be made" in text(resp, "reason") and "polling every 1 s" in text(resp, "reason"), \
        etree.tostring(resp)
    wait_for(lambda: calls_with(tp, "/graph/", f"$deltatoken={GRAPH_FIRST}"), "a delta poll")
    tp.quiet_sync.discard(GRAPH_FIRST)
    wait_for(lambda: seq_of(local)[0] == 2, "seq 2 by polling")
    assert pcc_values(local, "//pcc:duty/text()") == ["Principal Engineer"]
