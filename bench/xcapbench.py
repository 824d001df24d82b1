#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Helpers for bench/xcap-http (standard library only, Debian's python3).

  gen-doc OUT [--size N]          write a valid resource-lists document of
                                  exactly N bytes (default 2048)
  free-port                       print a free TCP port on 127.0.0.1
  fetch --port P --path PATH [--identity XUI] [--out FILE] [--expect FILE]
        [--tries N]               GET, require 200 (and the bytes of FILE);
                                  optionally save the body
  warm-put --port P --users N --body FILE [--conns C]
                                  PUT the body for sip:user0..N-1, require
                                  200/201 (creates the documents the PUT
                                  benchmark then replaces)
  digest-nonces --port P --path PATH --user U --password PW --algo A --count N
                                  get N nonces from 401 challenges, use each
                                  once (nc=1, must answer 200), print them
                                  comma-separated
  report RESULTS [--strict]       print the results table; exit 1 when a case
                                  failed to run (or, with --strict, missed
                                  its target)

Talks to 127.0.0.1 only.
"""

import argparse
import hashlib
import http.client
import re
import secrets
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
DOMAIN = "example.com"
CTYPE = "application/resource-lists+xml"


def die(msg):
    print(f"xcapbench: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- document ----------------------------------------------------------------------


def make_doc(size):
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">\n'
            ' <list name="friends">\n')
    tail = ' </list>\n</resource-lists>\n'

    def entry(k, name):
        return f'  <entry uri="sip:friend{k}@{DOMAIN}"><display-name>{name}</display-name></entry>\n'

    entries = []
    k = 1
    used = len(head) + len(tail)
    # Whole entries while another one still fits, then one last entry whose
    # display-name is padded so the document is exactly `size` bytes.
    while used + len(entry(k, f"Friend {k}")) + len(entry(k + 1, f"Friend {k + 1}")) + 8 <= size:
        e = entry(k, f"Friend {k}")
        entries.append(e)
        used += len(e)
        k += 1
    room = size - used - len(entry(k, ""))
    name = f"Friend {k}"
    if room < len(name):
        die(f"cannot build a {size}-byte document")
    entries.append(entry(k, name + "." * (room - len(name))))
    doc = head + "".join(entries) + tail
    assert len(doc.encode()) == size, len(doc)
    return doc.encode()


def cmd_gen_doc(a):
    with open(a.out, "wb") as f:
        f.write(make_doc(a.size))


def cmd_free_port(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    print(s.getsockname()[1])
    s.close()


# ---- plain requests ------------------------------------------------------------------


def xui(n):
    return f"sip:user{n}@{DOMAIN}"


def doc_path(n, root="/xcap-root"):
    return f"{root}/resource-lists/users/{xui(n)}/index"


def cmd_fetch(a):
    headers = {}
    if a.identity:
        headers["X-3GPP-Asserted-Identity"] = f'"{a.identity}"'
    last = None
    for attempt in range(a.tries):
        try:
            c = http.client.HTTPConnection(HOST, a.port, timeout=10)
            c.request("GET", a.path, headers=headers)
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status != 200:
                die(f"GET {a.path} on port {a.port}: {r.status} {r.reason}: {body[:300]!r}")
            break
        except OSError as e:
            last = e
            time.sleep(0.1)
    else:
        die(f"GET {a.path} on port {a.port}: {last}")
    if a.expect:
        with open(a.expect, "rb") as f:
            want = f.read()
        if body != want:
            die(f"GET {a.path} on port {a.port}: body differs from {a.expect} "
                f"({len(body)} bytes, expected {len(want)})")
    if a.out:
        with open(a.out, "wb") as f:
            f.write(body)
    print(f"{len(body)} bytes, ETag {r.getheader('ETag')}, Content-Type {r.getheader('Content-Type')}")


def cmd_warm_put(a):
    with open(a.body, "rb") as f:
        body = f.read()
    counts = {}
    errors = []
    lock = threading.Lock()

    def worker(tid):
        c = http.client.HTTPConnection(HOST, a.port, timeout=30)
        for n in range(tid, a.users, a.conns):
            try:
                c.request("PUT", doc_path(n), body=body, headers={
                    "Content-Type": CTYPE, "X-3GPP-Asserted-Identity": f'"{xui(n)}"'})
                r = c.getresponse()
                rbody = r.read()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"PUT {doc_path(n)}: {e!r}")
                c.close()
                c = http.client.HTTPConnection(HOST, a.port, timeout=30)
                continue
            with lock:
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status not in (200, 201):
                    errors.append(f"PUT {doc_path(n)}: {r.status} {r.reason}: {rbody[:300]!r}")
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = http.client.HTTPConnection(HOST, a.port, timeout=30)
        c.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    print(f"{a.users} PUTs in {dt:.1f} s ({summary})")
    if errors:
        for e in errors[:5]:
            print(e, file=sys.stderr)
        die(f"{len(errors)} of {a.users} warm-up PUTs failed")


# ---- Digest ------------------------------------------------------------------------------


def _h(algo, s):
    f = hashlib.md5 if algo == "MD5" else hashlib.sha256
    return f(s.encode()).hexdigest()


def challenge(port, path, algo):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 401:
        die(f"GET {path} without credentials: expected 401, got {r.status}")
    for value in r.msg.get_all("WWW-Authenticate") or []:
        if not value.lower().startswith("digest "):
            continue
        params = dict((k.lower(), v1 or v2) for k, v1, v2 in
                      re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', value[7:]))
        if params.get("algorithm", "MD5").upper() == algo.upper():
            return params
    die(f"no Digest challenge with algorithm={algo} in the 401 to GET {path}")


def cmd_digest_nonces(a):
    nonces = []
    for i in range(a.count):
        p = challenge(a.port, a.path, a.algo)
        if "auth" not in [q.strip() for q in p.get("qop", "").split(",")]:
            die(f"challenge does not offer qop=auth: {p}")
        realm, nonce = p["realm"], p["nonce"]
        cnonce = secrets.token_hex(8)
        nc = "00000001"
        ha1 = _h(a.algo, f"{a.user}:{realm}:{a.password}")
        ha2 = _h(a.algo, f"GET:{a.path}")
        resp = _h(a.algo, f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        auth = (f'Digest username="{a.user}", realm="{realm}", nonce="{nonce}", uri="{a.path}", '
                f'algorithm={a.algo}, qop=auth, cnonce="{cnonce}", nc={nc}, response="{resp}"')
        c = http.client.HTTPConnection(HOST, a.port, timeout=10)
        c.request("GET", a.path, headers={"Authorization": auth})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            die(f"Digest GET {a.path} (nc=1): {r.status} {r.reason}, "
                f"WWW-Authenticate {r.msg.get_all('WWW-Authenticate')}: {body[:300]!r}")
        if i == 0:
            print(f"realm {realm}", file=sys.stderr)
        nonces.append(nonce)
    print(",".join(nonces))


# ---- report --------------------------------------------------------------------------------

LABELS = ("get1_nginx", "get1_xdmsd", "get16_nginx", "get16_xdmsd", "get16_digest_nginx", "get16_digest",
          "put1_xdmsd", "put16_xdmsd")
DIGEST_LABELS = ("get16_digest_nginx", "get16_digest")
FAIL_FRACTION = 0.01  # more non-2xx or socket errors than this: the case did not run properly


def load_results(path):
    res = {}
    bad = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("XBENCH "):
                kv = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
                res[kv["label"]] = kv
            elif line.startswith("XBENCH_FIRST_BAD "):
                rest = line[len("XBENCH_FIRST_BAD "):]
                label, _, text = rest.partition(" ")
                bad[label.split("=", 1)[1]] = text
    return res, bad


def case_status(r):
    """(ok, why) for one wrk run."""
    if r is None:
        return False, "did not run"
    if r.get("failed"):
        return False, r.get("reason", "failed").replace("_", " ")
    n = int(r["requests"])
    if n == 0:
        return False, "no responses"
    errs = sum(int(r[k]) for k in ("connect_err", "read_err", "write_err", "timeout_err"))
    if int(r["non2xx"]) > FAIL_FRACTION * n:
        return False, f"{r['non2xx']} of {n} responses not 2xx"
    if errs > FAIL_FRACTION * n:
        return False, f"{errs} socket errors in {n} requests"
    return True, ""


def fmt_rps(r):
    return f"{float(r['rps']):.0f}" if case_status(r)[0] else "-"


def fmt_us(r, key):
    if not case_status(r)[0]:
        return "-"
    us = int(r[key])
    return f"{us}us" if us < 1000 else f"{us / 1000:.2f}ms"


def cmd_report(a):
    res, bad = load_results(a.results)
    ok = {}
    why = {}
    for label in LABELS:
        if label in res or not (a.skip_digest and label in DIGEST_LABELS):
            ok[label], why[label] = case_status(res.get(label))

    def rps(label):
        r = res.get(label)
        return float(r["rps"]) if r and ok.get(label) else None

    def ratio(x, y):
        return x / y if x is not None and y else None

    # (case, label shown in the xdmsd columns, label shown in the nginx column,
    #  labels the row depends on, ratio, note, target)
    rows = [
        ("GET 2KB c=1", "get1_xdmsd", "get1_nginx", ("get1_xdmsd", "get1_nginx"),
         ratio(rps("get1_xdmsd"), rps("get1_nginx")), "", None),
        ("GET 2KB c=16", "get16_xdmsd", "get16_nginx", ("get16_xdmsd", "get16_nginx"),
         ratio(rps("get16_xdmsd"), rps("get16_nginx")), "", 0.50),
    ]
    if "get16_digest" in ok:
        # nginx gets the very same Digest requests from the same Lua client
        # (and ignores Authorization): the ratio is not skewed by the cost of
        # building a signed request per call in wrk.
        rows.append(("GET 2KB c=16 digest", "get16_digest", "get16_digest_nginx",
                     ("get16_digest", "get16_digest_nginx"),
                     ratio(rps("get16_digest"), rps("get16_digest_nginx")), "nginx: same reqs", None))
    rows += [
        ("PUT durable c=1", "put1_xdmsd", None, ("put1_xdmsd",), None, "", None),
        ("PUT durable c=16", "put16_xdmsd", None, ("put16_xdmsd", "put1_xdmsd"),
         ratio(rps("put16_xdmsd"), rps("put1_xdmsd")), "vs PUT c=1", 4.0),
        ("PUT durable c=16 vs nginx GET", None, "get16_nginx", ("put16_xdmsd", "get16_nginx"),
         ratio(rps("put16_xdmsd"), rps("get16_nginx")), "vs nginx GET c=16", 0.15),
    ]
    results = []
    for case, xl, nl, deps, value, note, target in rows:
        if any(not ok.get(d, False) for d in deps):
            result = "FAIL"
        elif target is None:
            result = ""
        else:
            result = "PASS" if value >= target else "MISS"
        results.append((case, result))

    w = "{:<30} {:>11} {:>8} {:>8} {:>11} {:>6} {:<17} {:>6}  {}"
    print(w.format("case", "xdmsd req/s", "p50", "p99", "nginx req/s", "ratio", "", "target", "result"))
    for (case, xl, nl, deps, value, note, target), (_, result) in zip(rows, results):
        print(w.format(
            case,
            fmt_rps(res.get(xl)) if xl else "",
            fmt_us(res.get(xl), "p50_us") if xl else "",
            fmt_us(res.get(xl), "p99_us") if xl else "",
            fmt_rps(res.get(nl)) if nl else "",
            f"{value:.2f}" if value is not None else ("-" if (target or nl) else ""),
            note,
            f">={target:.2f}" if target is not None else "",
            result).rstrip())

    print()
    print("details (per wrk run):")
    dw = "  {:<18} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7}  {}"
    print(dw.format("run", "requests", "req/s", "p50", "p90", "p99", "B/resp", "non2xx", "sockerr", "statuses"))
    for label in LABELS:
        r = res.get(label)
        if label not in ok:
            print(f"  {label:<18} skipped")
            continue
        if not r or r.get("failed"):
            print(f"  {label:<18} FAILED: {why[label]}")
            continue
        errs = sum(int(r[k]) for k in ("connect_err", "read_err", "write_err", "timeout_err"))
        us = lambda key: f"{int(r[key])}us" if int(r[key]) < 1000 else f"{int(r[key]) / 1000:.2f}ms"
        print(dw.format(label, r["requests"], f"{float(r['rps']):.0f}", us("p50_us"), us("p90_us"),
                        us("p99_us"), r.get("bytes_per_resp", "-"), r["non2xx"], errs, r["statuses"]))
        if not ok[label]:
            print(f"    FAILED: {why[label]}")
        if label in bad:
            print(f"    first non-2xx: {bad[label][:300]}")

    failed = [l for l in ok if not ok[l]]
    missed = [case for case, result in results if result == "MISS"]
    print()
    if failed:
        print(f"result: {len(failed)} run(s) failed: {', '.join(failed)}")
        sys.exit(1)
    if missed:
        print(f"result: target missed: {'; '.join(missed)}")
        sys.exit(1 if a.strict else 0)
    print("result: all targets met")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("gen-doc")
    s.add_argument("out")
    s.add_argument("--size", type=int, default=2048)
    s.set_defaults(fn=cmd_gen_doc)
    s = sub.add_parser("free-port")
    s.set_defaults(fn=cmd_free_port)
    s = sub.add_parser("fetch")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--identity")
    s.add_argument("--out")
    s.add_argument("--expect")
    s.add_argument("--tries", type=int, default=1)
    s.set_defaults(fn=cmd_fetch)
    s = sub.add_parser("warm-put")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--body", required=True)
    s.add_argument("--conns", type=int, default=8)
    s.set_defaults(fn=cmd_warm_put)
    s = sub.add_parser("digest-nonces")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--algo", choices=("MD5", "SHA-256"), default="SHA-256")
    s.add_argument("--count", type=int, default=1)
    s.set_defaults(fn=cmd_digest_nonces)
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("--strict", action="store_true")
    s.add_argument("--skip-digest", action="store_true")
    s.set_defaults(fn=cmd_report)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
