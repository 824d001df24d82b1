# SPDX-License-Identifier: MIT
"""A JSON REST 3rd party on loopback for the IWF tests (python3 http.server).

It serves the shapes of two well-known contact APIs from the fixture files in
data/json/: a People-API-shaped list of connections (pageToken /
nextPageToken, syncToken / nextSyncToken) and a Graph-shaped users delta
(@odata.nextLink / @odata.deltaLink), behind Bearer access tokens from an
OAuth 2.0 token endpoint (refresh-token grant, RFC 6749 section 6) that can
rotate refresh tokens and refuse them. The tests change its state (expire a
sync token, revoke access tokens) and read what it was asked.
"""

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from xdmslib import data

PEOPLE_BOOK = "/book/people/v1"
GRAPH_BOOK = "/book/graph/v1.0/me/contacts"

CLIENT_ID = "xdmsd-test-client.apps.example"
CLIENT_SECRET = "cs-3f9a1c77e2b84d5e"  # the adapter's OAuth client secret


def fixture(name, base):
    return data(f"json/{name}").decode("utf-8").replace("{base}", base).encode("utf-8")


class ThirdParty:
    def __init__(self):
        self.lock = threading.Lock()
        self.refresh_tokens = {}      # refresh token -> rotate to this one (None: no rotation)
        self.access_tokens = set()    # valid access tokens
        self.issued = 0
        self.grants = []              # refresh tokens presented to the token endpoint
        self.calls = []               # (method, path with query, Authorization header)
        self.expired_sync = set()     # sync tokens / delta tokens that answer 410
        # sync tokens with no change yet: an empty delta that gives the same token back
        self.quiet_sync = {"CPDd3Y-rMhIMCKaHoKsGEICr7YMDGgQIARAB"}
        self.received = []            # (method, path, content type, body) of writes
        self.raw = {}                 # /raw/NAME -> bytes
        self.expires_in = 3600
        self.people_book = ContactStore("people")
        self.graph_book = ContactStore("graph")
        self.bad_page = None          # bytes served instead of the next contacts page, once
        # Graph-shaped webhook subscriptions (/graph/v1.0/subscriptions)
        self.subs = {}                # id -> the subscription (dict)
        self.sub_lifetime = 3600      # the longest expiry granted, seconds
        self.sub_log = []             # ("create" | "renew" | "delete", id, expiry granted, when) in order
        self.validations = []         # (token sent, status, body echoed)
        self.refuse_subscriptions = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return self.base + path

    def add_refresh_token(self, token, rotate_to=None):
        with self.lock:
            self.refresh_tokens[token] = rotate_to

    def revoke_access_tokens(self):
        with self.lock:
            self.access_tokens.clear()

    def notify(self, sub_id, client_state=None):
        """Sends a Graph-shaped change notification of subscription @sub_id
        (its own clientState unless @client_state); returns the HTTP status."""
        import http.client
        with self.lock:
            sub = dict(self.subs[sub_id])
        body = json.dumps({"value": [{
            "subscriptionId": sub_id, "changeType": "updated", "tenantId": "00000000-0000-0000-0000-000000000001",
            "clientState": sub["clientState"] if client_state is None else client_state,
            "subscriptionExpirationDateTime": sub["expirationDateTime"], "resource": sub["resource"],
            "resourceData": {"@odata.type": "#Microsoft.Graph.User", "id": "4a3b7c2e"}}]}).encode()
        url = urllib.parse.urlsplit(sub["notificationUrl"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            conn.request("POST", url.path, body=body, headers={"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    def _validate(self, notification_url):
        """The handshake: POST ?validationToken=T; T must come back as text/plain 200."""
        import http.client
        import uuid
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        url = urllib.parse.urlsplit(notification_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            conn.request("POST", url.path + "?validationToken=" + urllib.parse.quote(token, safe=""),
                         headers={"Content-Type": "text/plain; charset=utf-8", "Content-Length": "0"})
            resp = conn.getresponse()
            got = resp.read().decode("utf-8", "replace")
        except OSError as e:
            resp, got = None, str(e)
        finally:
            conn.close()
        status = resp.status if resp else 0
        with self.lock:
            self.validations.append((token, status, got))
        return status == 200 and got == token

    def _granted(self, asked):
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        cap = now + datetime.timedelta(seconds=self.sub_lifetime)
        try:
            want = datetime.datetime.strptime(asked, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        except (TypeError, ValueError):
            return None
        return min(want, cap).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"), min(want, cap).timestamp()

    def api_calls(self, prefix):
        with self.lock:
            return [c for c in self.calls if c[1].startswith(prefix)]

    # -- the HTTP side
    def _handler(self):
        tp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def reply(self, status, body=b"", ctype="application/json", headers=()):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def authorized(self):
                auth = self.headers.get("Authorization") or ""
                with tp.lock:
                    tp.calls.append((self.command, self.path, auth))
                    ok = auth.startswith("Bearer ") and auth[7:] in tp.access_tokens
                if not ok:
                    # RFC 6750 section 3.1
                    self.reply(401, {"error": {"code": 401, "message": "Request had invalid authentication "
                                               "credentials.", "status": "UNAUTHENTICATED"}},
                               headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
                return ok

            def token(self):
                form = urllib.parse.parse_qs(self.body().decode())
                one = {k: v[0] for k, v in form.items()}
                with tp.lock:
                    tp.grants.append(one.get("refresh_token"))
                    if one.get("grant_type") != "refresh_token":
                        return self.reply(400, {"error": "unsupported_grant_type"})
                    if one.get("client_id") != CLIENT_ID or one.get("client_secret") != CLIENT_SECRET:
                        return self.reply(401, {"error": "invalid_client"})
                    rt = one.get("refresh_token")
                    if rt not in tp.refresh_tokens:
                        return self.reply(400, {"error": "invalid_grant",
                                                "error_description": "Token has been expired or revoked."})
                    tp.issued += 1
                    access = f"ya29.at-{tp.issued}-{rt[-6:]}"
                    tp.access_tokens.add(access)
                    answer = {"access_token": access, "token_type": "Bearer", "expires_in": tp.expires_in,
                              "scope": "https://www.googleapis.com/auth/contacts"}
                    rotate = tp.refresh_tokens[rt]
                    if rotate:
                        del tp.refresh_tokens[rt]
                        tp.refresh_tokens[rotate] = None
                        answer["refresh_token"] = rotate
                self.reply(200, answer, headers=[("Cache-Control", "no-store")])

            def people(self, query):
                if "syncToken" in query:
                    token = query["syncToken"][0]
                    if token in tp.expired_sync:
                        return self.reply(410, {"error": {"code": 410, "message": "Sync token is expired. "
                                                          "Clear local cache and retry call without the sync "
                                                          "token.", "status": "FAILED_PRECONDITION"}})
                    if token in tp.quiet_sync:
                        return self.reply(200, {"nextSyncToken": token})
                    name = {"CPDd3Y-rMhIMCNT_n6sGEIDki8QBGgQIARAB": "people-connections-sync-1.json",
                            "CPDd3Y-rMhIMCPKFoKsGEMCS0_UCGgQIARAB": "people-connections-sync-2.json"}.get(token)
                    if not name:
                        return self.reply(400, {"error": {"code": 400, "message": "bad sync token"}})
                    return self.reply(200, fixture(name, tp.base))
                if query.get("pageToken") == ["GgYKAghkEAIiDAjU_5-rBhCA5IvEAQ"]:
                    return self.reply(200, fixture("people-connections-2.json", tp.base))
                if "pageToken" in query:
                    return self.reply(400, {"error": {"code": 400, "message": "bad page token"}})
                self.reply(200, fixture("people-connections-1.json", tp.base))

            def graph(self, query):
                if "$deltatoken" in query:
                    token = query["$deltatoken"][0]
                    if token in tp.quiet_sync:
                        return self.reply(200, {"value": [], "@odata.deltaLink":
                                                f"{tp.base}/graph/v1.0/users/delta?$deltatoken={token}"})
                    if token in tp.expired_sync:
                        return self.reply(410, {"error": {"code": "syncStateNotFound",
                                                          "message": "The sync state is gone."}})
                    return self.reply(200, fixture("graph-users-delta.json", tp.base))
                if "$skiptoken" in query:
                    return self.reply(200, fixture("graph-users-2.json", tp.base))
                self.reply(200, fixture("graph-users-1.json", tp.base))

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path.startswith("/raw/"):
                    with tp.lock:
                        tp.calls.append((self.command, self.path, ""))
                        body = tp.raw.get(url.path[5:])
                    return self.reply(200, body) if body is not None else self.reply(404, {})
                if url.path == "/endless":
                    with tp.lock:
                        tp.calls.append((self.command, self.path, ""))
                    n = int(query.get("pageToken", ["0"])[0])
                    return self.reply(200, {"connections": [], "nextPageToken": str(n + 1)})
                if not self.authorized():
                    return
                if url.path.startswith("/book/"):
                    with tp.lock:
                        bad, tp.bad_page = tp.bad_page, None
                    if bad is not None:
                        return self.reply(200, bad)
                    return self.reply(*book_get(tp, url.path, query))
                if url.path == "/people/v1/people/me/connections":
                    return self.people(query)
                if url.path == "/graph/v1.0/users/delta":
                    return self.graph(query)
                self.reply(404, {"error": "no such resource"})

            def book_write(self):
                body = self.body()
                if not self.authorized():
                    return
                with tp.lock:
                    tp.received.append((self.command, self.path, self.headers.get("Content-Type"), body))
                self.reply(*book_write(tp, self.command, urllib.parse.urlsplit(self.path).path,
                                       self.headers.get("If-Match"), body))

            def subscribe(self):
                try:
                    want = json.loads(self.body())
                except ValueError:
                    return self.reply(400, {"error": {"code": "InvalidRequest", "message": "bad JSON"}})
                if not self.authorized():
                    return
                if tp.refuse_subscriptions:
                    return self.reply(403, {"error": {"code": "ExtensionError", "message": "Operation: Create; "
                                                      "Exception: [Status Code: Forbidden]"}})
                granted, until = tp._granted(want.get("expirationDateTime")) or (None, None)
                if not granted or not want.get("notificationUrl") or not want.get("clientState"):
                    return self.reply(400, {"error": {"code": "InvalidRequest", "message": "missing fields"}})
                if not tp._validate(want["notificationUrl"]):
                    return self.reply(400, {"error": {"code": "InvalidRequest", "message": "Subscription "
                                                      "validation request failed. Response must exactly match "
                                                      "validationToken query parameter."}})
                with tp.lock:
                    sid = f"7f105c7d-2dc5-4530-97cd-4e7a{len(tp.subs) + 1:08d}"
                    sub = {"id": sid, "resource": want.get("resource"), "changeType": want.get("changeType"),
                           "clientState": want["clientState"], "notificationUrl": want["notificationUrl"],
                           "expirationDateTime": granted}
                    tp.subs[sid] = sub
                    tp.sub_log.append(("create", sid, until, time.time()))
                self.reply(201, sub)

            def renew(self, sid):
                try:
                    want = json.loads(self.body())
                except ValueError:
                    return self.reply(400, {"error": {"code": "InvalidRequest", "message": "bad JSON"}})
                if not self.authorized():
                    return
                granted, until = tp._granted(want.get("expirationDateTime")) or (None, None)
                with tp.lock:
                    sub = tp.subs.get(sid)
                    if sub is None or not granted:
                        return self.reply(404, {"error": {"code": "ResourceNotFound", "message": "no such "
                                                          "subscription"}})
                    sub["expirationDateTime"] = granted
                    tp.sub_log.append(("renew", sid, until, time.time()))
                    sub = dict(sub)
                self.reply(200, sub)

            def do_DELETE(self):
                if self.path.startswith("/book/"):
                    return self.book_write()
                if not self.authorized():
                    return
                sid = self.path.rsplit("/", 1)[-1]
                with tp.lock:
                    found = tp.subs.pop(sid, None)
                    if found:
                        tp.sub_log.append(("delete", sid, None, time.time()))
                self.reply(204 if found else 404, b"")

            def do_POST(self):
                if self.path == "/oauth2/token":
                    return self.token()
                if self.path.startswith("/book/"):
                    return self.book_write()
                if self.path == "/graph/v1.0/subscriptions":
                    return self.subscribe()
                self.reply(404, {})

            def do_PATCH(self):
                if self.path.startswith("/book/"):
                    return self.book_write()
                if self.command == "PATCH" and self.path.startswith("/graph/v1.0/subscriptions/"):
                    return self.renew(self.path.rsplit("/", 1)[-1])
                body = self.body()
                if not self.authorized():
                    return
                with tp.lock:
                    tp.received.append((self.command, self.path, self.headers.get("Content-Type"), body))
                self.reply(200, body)

            do_PUT = do_PATCH

        return Handler


# ---- contacts collections: People-API connections and Graph contacts ----------------------

class ContactStore:
    """The contacts of one account, with a change log: every change has a
    sequence number; a sync token or delta token is the number it was
    given at, and a sync gives what changed after it (deleted ones too)."""

    PAGE = 2  # contacts per page, so that every listing has pages

    def __init__(self, shape):
        self.shape = shape
        self.items = {}      # id -> contact (dict, in the API's shape, without id and etag)
        self.versions = {}   # id -> version
        self.changed = {}    # id -> sequence number of its last change
        self.deleted = {}    # id -> sequence number of its deletion
        self.seq = 0
        self.next_id = 1
        self.requests = []   # (method, path with query) of the collection's reads

    def etag(self, cid):
        v = self.versions[cid]
        return f"%EgUBAj{v:04d}=" if self.shape == "people" else f'W/"CQAAABYAAAA{v:04d}"'

    def put(self, cid, fields):
        """Creates or replaces contact @cid (None: a new id); returns the id."""
        if cid is None:
            cid = (f"c{1000 + self.next_id}" if self.shape == "people"
                   else f"AAMkAGI2TG93AAA{self.next_id:04d}=")
            self.next_id += 1
        self.seq += 1
        self.items[cid] = dict(fields)
        self.versions[cid] = self.versions.get(cid, 0) + 1
        self.changed[cid] = self.seq
        self.deleted.pop(cid, None)
        return cid

    def delete(self, cid):
        self.seq += 1
        del self.items[cid]
        self.changed.pop(cid, None)
        self.deleted[cid] = self.seq

    def as_json(self, cid):
        c = dict(self.items[cid])
        if self.shape == "people":
            c["resourceName"] = f"people/{cid}"
            c["etag"] = self.etag(cid)
        else:
            c["id"] = cid
            c["@odata.etag"] = self.etag(cid)
        return c

    def removed_json(self, cid):
        if self.shape == "people":
            return {"resourceName": f"people/{cid}", "etag": "%EgUBAj-deleted",
                    "metadata": {"deleted": True, "sources": [{"type": "CONTACT", "id": cid}]}}
        return {"id": cid, "@removed": {"reason": "deleted"}}

    def listing(self, since):
        """Every contact (since None) or the changes after @since, in order."""
        if since is None:
            return [self.as_json(c) for c in sorted(self.items)]
        out = [self.as_json(c) for c, n in sorted(self.changed.items()) if n > since]
        out += [self.removed_json(c) for c, n in sorted(self.deleted.items()) if n > since]
        return out


def _page(items, offset):
    offset = int(offset or 0)
    part = items[offset:offset + ContactStore.PAGE]
    more = offset + ContactStore.PAGE < len(items)
    return part, (str(offset + ContactStore.PAGE) if more else None)


def book_get(tp, path, query):
    """GET of a contacts collection: (status, body)."""
    if path == PEOPLE_BOOK + "/people/me/connections":
        st = tp.people_book
        with tp.lock:
            st.requests.append(("GET", path + "?" + urllib.parse.urlencode(query, doseq=True)))
            since = None
            if "syncToken" in query:
                token = query["syncToken"][0]
                if token in tp.expired_sync:
                    return 410, {"error": {"code": 410, "message": "Sync token is expired. Clear local cache "
                                           "and retry call without the sync token.",
                                           "status": "FAILED_PRECONDITION"}}
                if not token.startswith("sync-"):
                    return 400, {"error": {"code": 400, "message": "bad sync token"}}
                since = int(token[5:])
            part, nxt = _page(st.listing(since), query.get("pageToken", ["0"])[0])
            body = {"connections": part, "totalPeople": len(st.items), "totalItems": len(st.items)}
            if nxt:
                body["nextPageToken"] = nxt
            elif query.get("requestSyncToken") == ["true"]:
                body["nextSyncToken"] = f"sync-{st.seq}"
            return 200, body
    if path in (GRAPH_BOOK, GRAPH_BOOK + "/delta"):
        st = tp.graph_book
        with tp.lock:
            st.requests.append(("GET", path + "?" + urllib.parse.urlencode(query, doseq=True)))
            since = None
            if "$deltatoken" in query:
                token = query["$deltatoken"][0]
                if token in tp.expired_sync:
                    return 410, {"error": {"code": "syncStateNotFound", "message": "The sync state is gone."}}
                since = int(token)
            part, nxt = _page(st.listing(since), query.get("$skiptoken", ["0"])[0])
            body = {"@odata.context": f"{tp.base}/book/graph/v1.0/$metadata#Collection(contact)", "value": part}
            base = tp.base + path
            keep = {k: v for k, v in query.items() if k not in ("$skiptoken", "$deltatoken")}
            if nxt:
                body["@odata.nextLink"] = base + "?" + urllib.parse.urlencode({**keep, "$skiptoken": nxt},
                                                                              doseq=True)
            elif path.endswith("/delta"):
                body["@odata.deltaLink"] = base + "?" + urllib.parse.urlencode({"$deltatoken": str(st.seq)})
            return 200, body
    return 404, {"error": "no such resource"}


def book_write(tp, method, path, if_match, body):
    """POST / PATCH / DELETE of one contact: (status, body)."""
    try:
        fields = json.loads(body) if body else {}
    except ValueError:
        return 400, {"error": {"code": 400, "message": "the body is not JSON"}}
    with tp.lock:
        if path.startswith(PEOPLE_BOOK):
            st, rest = tp.people_book, path[len(PEOPLE_BOOK):]
            if method == "POST" and rest == "/people:createContact":
                cid = st.put(None, {k: v for k, v in fields.items() if k not in ("resourceName", "etag")})
                return 200, st.as_json(cid)
            for suffix, verb in ((":updateContact", "PATCH"), (":deleteContact", "DELETE")):
                if rest.startswith("/people/") and rest.endswith(suffix) and method == verb:
                    cid = rest[len("/people/"):-len(suffix)]
                    if cid not in st.items:
                        return 404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                               "status": "NOT_FOUND"}}
                    if verb == "DELETE":
                        st.delete(cid)
                        return 200, {}
                    if fields.get("etag") != st.etag(cid):
                        return 400, {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                                               "message": "Request person.etag is different than the current "
                                               "person.etag. Clear local cache and get the latest person."}}
                    st.put(cid, {k: v for k, v in fields.items() if k not in ("resourceName", "etag")})
                    return 200, st.as_json(cid)
            return 404, {"error": {"code": 404, "message": "no such method"}}
        if path.startswith(GRAPH_BOOK):
            st, rest = tp.graph_book, path[len(GRAPH_BOOK):]
            if method == "POST" and rest == "":
                cid = st.put(None, {k: v for k, v in fields.items() if v is not None})
                return 201, st.as_json(cid)
            cid = urllib.parse.unquote(rest[1:])
            if cid not in st.items:
                return 404, {"error": {"code": "ErrorItemNotFound", "message": "The specified object was not "
                                       "found in the store."}}
            if if_match is not None and if_match != st.etag(cid):
                return 412, {"error": {"code": "ErrorIrresolvableConflict",
                                       "message": "The change key passed in the request does not match the "
                                       "current change key for the item."}}
            if method == "DELETE":
                st.delete(cid)
                return 204, b""
            if method == "PATCH":
                merged = dict(st.items[cid])
                for k, v in fields.items():
                    if v is None:
                        merged.pop(k, None)
                    elif k not in ("id", "@odata.etag"):
                        merged[k] = v
                st.put(cid, merged)
                return 200, st.as_json(cid)
        return 404, {"error": "no such resource"}
