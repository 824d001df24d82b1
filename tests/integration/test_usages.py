# SPDX-License-Identifier: MIT
"""Application usages as data (SPEC §1.9-1.10, §3, §4;
docs/application-usages.md): every AUID's schema and semantic rules, the
generated xcap-directory, global trees, document names, and a usage added by
descriptor only (xcap.descriptor_dir).

The usages come from the descriptors compiled into xdmsd. To run these tests
against the descriptors of a directory instead (for example before a rebuild),
set XDMS_USAGE_DESCRIPTOR_DIR to a directory holding copies of schemas/*.xsd
and schemas/auids/*.auid; test_every_source_descriptor_is_built_in still
checks the compiled-in set.

Rules that need C (descriptor key `hook`) are tested on both sides of the
line: resource_lists (RFC 4826 uniqueness, with the <exists field> of the
offending node), rls_services (service URIs unique on the whole server),
cab_feature_handler (request ids, <response> ownership), cab_pcc (SPEC §4.2
constraints), oma_pres_content (status icons) and xcap_directory.
"""

import configparser
import os
import re
import shutil
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from xdmslib import (ADMIN, ALICE, BOB, FH, IWF, MIME, PCC, REPO, RL, RL_NS, TRUSTED_PEER,
                     XCAP_CAPS_NS, XCAP_ERROR_NS, Client, data, doc_path, expect, expect_etag,
                     expect_xcap_error, global_path, schema, unquote)

USAGE_DATA = Path(__file__).resolve().parent / "data" / "usages"
SCHEMAS = REPO / "schemas"
DOCS = REPO / "docs"

RLS = "rls-services"
PRES_RULES = "pres-rules"
PIDF = "pidf-manipulation"
OMA_PRES_RULES = "org.openmobilealliance.pres-rules"
PRES_CONTENT = "org.openmobilealliance.pres-content"
DIRECTORY = "org.openmobilealliance.xcap-directory"
GROUPS = "org.openmobilealliance.groups"
POC_GROUPS = "org.openmobilealliance.poc-groups"
GROUP_USAGE_LIST = "org.openmobilealliance.group-usage-list"
USER_PROFILE = "org.openmobilealliance.user-profile"
ACCESS_RULES = "org.openmobilealliance.access-rules"
POC_RULES = "org.openmobilealliance.poc-rules"
ADDRESS_BOOK = "org.openmobilealliance.cab-address-book"
USER_PREFS = "org.openmobilealliance.cab-user-prefs"

UMIME = dict(MIME)
UMIME.update({
    RLS: "application/rls-services+xml",
    PRES_RULES: "application/auth-policy+xml",
    PIDF: "application/pidf+xml",
    OMA_PRES_RULES: "application/auth-policy+xml",
    PRES_CONTENT: "application/vnd.oma.pres-content+xml",
    DIRECTORY: "application/vnd.oma.xcap-directory+xml",
    GROUPS: "application/vnd.oma.poc.groups+xml",
    POC_GROUPS: "application/vnd.oma.poc.groups+xml",
    GROUP_USAGE_LIST: "application/vnd.oma.group-usage-list+xml",
    USER_PROFILE: "application/vnd.oma.user-profile+xml",
    ACCESS_RULES: "application/auth-policy+xml",
    POC_RULES: "application/auth-policy+xml",
    ADDRESS_BOOK: "application/vnd.oma.cab-address-book+xml",
    USER_PREFS: "application/vnd.oma.cab-user-prefs+xml",
})

XCAP_DIR_NS = "urn:oma:xml:xdm:xcap-directory"
RLS_NS = "urn:ietf:params:xml:ns:rls-services"
FH_NS = "urn:oma:xml:cab:feature-handler"
PCC_NS = "urn:oma:xml:cab:pcc"
PC_NS = "urn:oma:xml:prs:pres-content"
ICON = "oma_status-icon/rcs_status_icon"

# SPEC §4.3 rule 2 and fixtures/xcap-error-constraint.xml.
FH_RESPONSE_PHRASE = "response elements are written by the CAB server only"


def assert_fh_phrase(child):
    """SPEC's phrase, then the request it is about (its id in quotes)."""
    phrase = child.get("phrase") or ""
    assert phrase.startswith(FH_RESPONSE_PHRASE) and re.search(r'request "[^"]+"', phrase), phrase


def udata(name):
    """Bytes of a fixture in tests/integration/data/usages."""
    return (USAGE_DATA / name).read_bytes()


def descriptors():
    """{AUID: {key: value}} of every descriptor in the source tree."""
    out = {}
    for path in sorted((SCHEMAS / "auids").glob("*.auid")):
        cp = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"),
                                       inline_comment_prefixes=None)
        cp.read(path, encoding="utf-8")
        sec = dict(cp["auid"])
        sec["_file"] = path.name
        out[sec["name"]] = sec
    return out


def usage_settings(extra=None):
    settings = {}
    ddir = os.environ.get("XDMS_USAGE_DESCRIPTOR_DIR")
    if ddir:
        settings["xcap.descriptor_dir"] = ddir
    settings.update(extra or {})
    return settings


@pytest.fixture
def userver(start_server):
    return start_server(settings=usage_settings())


@pytest.fixture
def alice(userver):
    return userver.client(ALICE)


@pytest.fixture
def bob(userver):
    return userver.client(BOB)


def iwf_client(server):
    """The CAB IWF: a trusted server identity asserted from a trusted peer."""
    return Client(server, source_address=TRUSTED_PEER,
                  headers={"X-3GPP-Asserted-Identity": f'"{IWF}"'})


def assert_missing(client, path):
    r = client.get(path)
    assert r.status == 404, f"a refused write stored something: {r.describe()}"


def assert_unchanged(client, path, body, etag):
    r = expect(client.get(path), 200)
    assert r.body == body, f"a refused write changed the document: {r.describe()}"
    assert r.etag == etag, f"a refused write changed the ETag: expected {etag}, got {r.etag}"


def expect_uniqueness(resp):
    """Asserts a 409 <uniqueness-failure> with a phrase and exactly one
    <exists>; returns (field, [alt-value...])."""
    child = expect_xcap_error(resp, "uniqueness-failure", need_phrase=True)
    exists = child.findall(f"{{{XCAP_ERROR_NS}}}exists")
    assert len(exists) == 1, f"expected one <exists>, got {len(exists)}: {resp.describe()}"
    alts = [a.text or "" for a in exists[0].findall(f"{{{XCAP_ERROR_NS}}}alt-value")]
    return exists[0].get("field"), alts


def no_net_parser():
    return etree.XMLParser(resolve_entities=False, no_network=True)


# ---------------------------------------------------------------------------
# The registry: xcap-caps, the built-in set, the documentation


def test_xcap_caps_lists_every_usage_and_validates(userver, alice):
    r = expect(alice.get(global_path("xcap-caps")), 200)
    assert r.content_type == "application/xcap-caps+xml", r.describe()
    root = etree.fromstring(r.body, no_net_parser())
    s = schema("xcap-caps.xsd")
    assert s.validate(etree.ElementTree(root)), \
        f"xcap-caps does not validate against the RFC 4825 schema: {s.error_log}: {r.describe()}"
    ns = {"c": XCAP_CAPS_NS}
    auids = [a.text for a in root.findall("c:auids/c:auid", ns)]
    namespaces = {n.text for n in root.findall("c:namespaces/c:namespace", ns)}
    descs = descriptors()
    assert len(auids) == len(set(auids)), f"an AUID is listed twice: {auids}"
    assert set(auids) == set(descs), (
        f"xcap-caps AUIDs differ from schemas/auids/: missing {sorted(set(descs) - set(auids))}, "
        f"extra {sorted(set(auids) - set(descs))}")
    want_ns = {d["namespace"] for d in descs.values()}
    assert namespaces == want_ns, (
        f"xcap-caps namespaces differ: missing {sorted(want_ns - namespaces)}, "
        f"extra {sorted(namespaces - want_ns)}")


def test_every_source_descriptor_is_built_in(start_server):
    """Every schemas/auids/*.auid (and so its schema) is listed in Makefile.am's
    EMBEDDED_FILES: a server with no descriptor directory serves them all."""
    srv = start_server()
    r = expect(srv.client(ALICE).get(global_path("xcap-caps")), 200)
    root = etree.fromstring(r.body, no_net_parser())
    auids = {a.text for a in root.iter(f"{{{XCAP_CAPS_NS}}}auid")}
    missing = sorted(set(descriptors()) - auids)
    assert not missing, (f"not compiled into xdmsd (add the .auid and its .xsd to "
                         f"EMBEDDED_FILES in Makefile.am): {missing}")


def test_docs_table_lists_every_usage():
    text = (DOCS / "application-usages.md").read_text(encoding="utf-8")
    # The rows of the table of usages (8 columns), not of the other tables.
    rows = [line for line in text.splitlines() if line.startswith("|") and line.count("|") >= 9]
    for name, d in descriptors().items():
        row = [line for line in rows if f"`{name}`" in line.split("|")[1]]
        assert len(row) == 1, f"docs/application-usages.md: expected one table row for `{name}`"
        for key in ("namespace", "mime", "default_document", "scope"):
            value = d.get(key, "index" if key == "default_document" else "users")
            assert value in row[0], f"docs row of {name} does not give its {key} {value!r}: {row[0]}"


# ---------------------------------------------------------------------------
# Every usage: a valid document is accepted and read back byte-exact

VALID = [
    (RL, "index", lambda: data("subscribe-body.xml")),
    (RLS, "index", lambda: udata("rls-services.xml")),
    (PRES_RULES, "index", lambda: udata("pres-rules.xml")),
    (PIDF, "index", lambda: udata("pidf-manipulation.xml")),
    (OMA_PRES_RULES, "pres-rules", lambda: udata("oma-pres-rules.xml")),
    (PRES_CONTENT, ICON, lambda: udata("oma-pres-content.xml")),
    (GROUPS, "index", lambda: udata("oma-groups.xml")),
    (POC_GROUPS, "index", lambda: udata("oma-groups.xml")),
    (GROUP_USAGE_LIST, "index", lambda: udata("oma-group-usage-list.xml")),
    (USER_PROFILE, "index", lambda: udata("oma-user-profile.xml")),
    (ACCESS_RULES, "index", lambda: udata("oma-access-rules.xml")),
    (POC_RULES, "index", lambda: udata("oma-poc-rules.xml")),
    (PCC, "index", lambda: data("pcc-alice.xml")),
    (FH, "index", lambda: data("fh-requests.xml")),
    (ADDRESS_BOOK, "index", lambda: udata("address-book-alice.xml")),
    (USER_PREFS, "index", lambda: udata("user-prefs-alice.xml")),
]


@pytest.mark.parametrize("auid,doc,body", VALID, ids=[v[0] for v in VALID])
def test_valid_document_round_trip(alice, auid, doc, body):
    body = body()
    path = doc_path(auid, ALICE, doc)
    r = alice.put(path, body, UMIME[auid])
    assert r.status == 201, f"{auid}: valid document refused: {r.describe()}"
    etag = expect_etag(r)
    prefix = descriptors()[auid].get("etag_prefix") or descriptors()[auid]["root"]
    assert unquote(etag).startswith(prefix + "-"), \
        f"{auid}: ETag {etag} does not start with the descriptor's etag_prefix {prefix!r}"
    r = expect(alice.get(path), 200)
    assert r.body == body, f"{auid}: GET does not return the PUT bytes: {r.describe()}"
    assert r.content_type == UMIME[auid], f"{auid}: Content-Type {r.content_type!r}, expected {UMIME[auid]}"
    assert r.etag == etag
    # The usage's own media type only.
    r = alice.put(path, body, "application/xml")
    assert r.status == 415, f"{auid}: PUT as application/xml: expected 415, got {r.describe()}"
    assert_unchanged(alice, path, body, etag)


def test_every_descriptor_has_a_valid_document():
    """Keeps VALID complete: a new descriptor needs a round-trip case."""
    writable = {n for n, d in descriptors().items()
                if d.get("generated", "false") != "true" and d.get("scope", "users") != "global"}
    assert writable == {v[0] for v in VALID}


# ---------------------------------------------------------------------------
# Every invalid fixture: its exact 409 child, with a phrase, and nothing stored

INVALID = [
    (RLS, "index", "rls-services-invalid-no-list.xml", "schema-validation-error"),
    (PRES_RULES, "index", "pres-rules-invalid-sub-handling.xml", "schema-validation-error"),
    (PRES_RULES, "index", "pres-rules-invalid-duplicate-rule-id.xml", "schema-validation-error"),
    (OMA_PRES_RULES, "pres-rules", "oma-pres-rules-invalid-other-identity.xml", "schema-validation-error"),
    (PIDF, "index", "pidf-manipulation-invalid-basic.xml", "schema-validation-error"),
    (PIDF, "index", "pidf-manipulation-invalid-device-without-id.xml", "schema-validation-error"),
    (PRES_CONTENT, ICON, "oma-pres-content-invalid-no-data-element.xml", "schema-validation-error"),
    (PRES_CONTENT, ICON, "oma-pres-content-invalid-mime-type.xml", "constraint-failure"),
    (PRES_CONTENT, ICON, "oma-pres-content-invalid-encoding.xml", "constraint-failure"),
    (GROUPS, "index", "oma-groups-invalid-root.xml", "schema-validation-error"),
    (USER_PROFILE, "index", "oma-user-profile-invalid-root.xml", "schema-validation-error"),
    (ADDRESS_BOOK, "index", "address-book-invalid-duplicate-contact-id.xml", "schema-validation-error"),
    (USER_PREFS, "index", "user-prefs-invalid-conflict-policy.xml", "schema-validation-error"),
    (PCC, "index", "../pcc-invalid-tel-type.xml", "schema-validation-error"),
    (FH, "index", "fh-invalid-duplicate-id.xml", "uniqueness-failure"),
    (FH, "index", "fh-with-responses.xml", "constraint-failure"),
]


@pytest.mark.parametrize("auid,doc,fixture,child", INVALID,
                         ids=[Path(v[2]).stem for v in INVALID])
def test_invalid_fixture_is_refused(alice, auid, doc, fixture, child):
    path = doc_path(auid, ALICE, doc)
    expect_xcap_error(alice.put(path, udata(fixture), UMIME[auid]), child, need_phrase=True)
    assert_missing(alice, path)


# ---------------------------------------------------------------------------
# resource-lists (RFC 4826 §3.4.5), also inside org.openmobilealliance.group-usage-list


def rl(*lists):
    """A resource-lists document from lists of inner XML strings."""
    inner = "".join((f'<list name="{n}">' if n is not None else "<list>") + body + "</list>"
                    for n, body in lists)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">'
            f"{inner}</resource-lists>\n").encode()


def entry(uri):
    return f'<entry uri="{uri}"/>'


def entry_ref(ref):
    return f'<entry-ref ref="{ref}"/>'


def external(anchor):
    return f'<external anchor="{anchor}"/>'


REF1 = ("resource-lists/users/sip:alice@example.com/index/~~/resource-lists/"
        "list%5B@name=%22a%22%5D/entry%5B@uri=%22sip:bob@example.com%22%5D")
REF2 = ("resource-lists/users/sip:alice@example.com/index/~~/resource-lists/"
        "list%5B@name=%22a%22%5D/entry%5B@uri=%22sip:carol@example.com%22%5D")
ANCHOR1 = ("http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index"
           "/~~/resource-lists/list%5B@name=%22a%22%5D")
ANCHOR2 = ("http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index"
           "/~~/resource-lists/list%5B@name=%22b%22%5D")

RL_DUPLICATES = {
    # The first duplicate is the offending node: positions count same-named
    # element siblings only (display-name, comments and other kinds do not count).
    "entry-uri": (
        rl(("friends", "<display-name>Friends</display-name>" + entry("sip:bob@example.com")
            + "<!-- c -->" + entry("sip:carol@example.com") + entry("sip:bob@example.com"))),
        "resource-lists/list[1]/entry[3]/@uri"),
    "entry-uri-second-list": (
        rl(("a", entry("sip:x@example.com")),
           ("b", entry("sip:bob@example.com") + entry("sip:bob@example.com"))),
        "resource-lists/list[2]/entry[2]/@uri"),
    "list-name": (
        rl(("friends", entry("sip:bob@example.com")), ("family", ""),
           ("friends", entry("sip:carol@example.com"))),
        "resource-lists/list[3]/@name"),
    "nested-list-name": (
        rl(("top", '<list name="x"/><entry uri="sip:bob@example.com"/><list name="x"/>')),
        "resource-lists/list[1]/list[2]/@name"),
    "entry-ref": (
        rl(("refs", entry_ref(REF1) + entry("sip:bob@example.com") + entry_ref(REF1))),
        "resource-lists/list[1]/entry-ref[2]/@ref"),
    "external-anchor": (
        rl(("ext", external(ANCHOR1) + external(ANCHOR2) + external(ANCHOR1))),
        "resource-lists/list[1]/external[3]/@anchor"),
}

RL_UNIQUE = {
    "same-uri-other-list": rl(("friends", entry("sip:bob@example.com")),
                              ("family", entry("sip:bob@example.com"))),
    "same-name-other-parent": rl(("x", '<list name="x"/><list name="y"/>'),
                                 ("y", '<list name="x"/>')),
    "same-ref-other-list": rl(("a", entry_ref(REF1) + entry_ref(REF2)), ("b", entry_ref(REF1))),
    "same-anchor-other-list": rl(("a", external(ANCHOR1)), ("b", external(ANCHOR1))),
    "entry-uri-equals-ref-uri": rl(("a", entry("sip:bob@example.com") + entry_ref(REF1))),
}

RL_AUIDS = [RL, GROUP_USAGE_LIST]


@pytest.mark.parametrize("auid", RL_AUIDS)
@pytest.mark.parametrize("case", sorted(RL_DUPLICATES))
def test_resource_lists_first_duplicate_is_refused(alice, auid, case):
    body, field = RL_DUPLICATES[case]
    path = doc_path(auid, ALICE)
    got, _ = expect_uniqueness(alice.put(path, body, UMIME[auid]))
    assert got == field, f"{auid} {case}: expected <exists field={field!r}>, got {got!r}"
    assert_missing(alice, path)


@pytest.mark.parametrize("auid", RL_AUIDS)
@pytest.mark.parametrize("case", sorted(RL_UNIQUE))
def test_resource_lists_same_value_elsewhere_is_accepted(alice, auid, case):
    body = RL_UNIQUE[case]
    path = doc_path(auid, ALICE)
    r = alice.put(path, body, UMIME[auid])
    assert r.status == 201, f"{auid} {case}: unique values refused: {r.describe()}"
    assert expect(alice.get(path), 200).body == body


def test_resource_lists_duplicate_replacement_leaves_document(alice):
    path = doc_path(RL, ALICE)
    body = RL_UNIQUE["same-uri-other-list"]
    etag = expect_etag(expect(alice.put(path, body, UMIME[RL]), 201))
    got, _ = expect_uniqueness(alice.put(path, RL_DUPLICATES["entry-uri"][0], UMIME[RL]))
    assert got == RL_DUPLICATES["entry-uri"][1]
    assert_unchanged(alice, path, body, etag)


def test_resource_lists_duplicates_in_other_documents_are_accepted(alice, bob):
    """Uniqueness is per list of one document, not per user or server."""
    body = rl(("friends", entry("sip:carol@example.com")))
    expect(alice.put(doc_path(RL, ALICE), body, UMIME[RL]), 201)
    expect(alice.put(doc_path(RL, ALICE, "other"), body, UMIME[RL]), 201)
    expect(bob.put(doc_path(RL, BOB), body, UMIME[RL]), 201)


# ---------------------------------------------------------------------------
# rls-services (RFC 4826 §4.4.5): service URIs are unique on the whole server


def rls(*services):
    """An rls-services document; each service is (uri, [entry URIs])."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<rls-services xmlns="{RLS_NS}" '
           f'xmlns:rl="{RL_NS}">']
    for uri, entries in services:
        out.append(f'<service uri="{uri}"><list>')
        out.extend(f'<rl:entry uri="{e}"/>' for e in entries)
        out.append("</list><packages><package>presence</package></packages></service>")
    out.append("</rls-services>\n")
    return "".join(out).encode()


TAKEN = "sip:alice-friends@example.com"  # a service of rls-services.xml


def test_rls_service_uri_of_another_user_is_refused(alice, bob):
    expect(alice.put(doc_path(RLS, ALICE), udata("rls-services.xml"), UMIME[RLS]), 201)
    path = doc_path(RLS, BOB)
    field, alts = expect_uniqueness(bob.put(path, rls((TAKEN, ["sip:x@example.com"])), UMIME[RLS]))
    assert field == "rls-services/service[1]/@uri", f"expected the <service> of the request, got {field!r}"
    assert TAKEN not in alts, f"an <alt-value> proposes the taken URI itself: {alts}"
    assert_missing(bob, path)
    # The other side of the line: a URI nobody has.
    r = bob.put(path, rls(("sip:bob-friends@example.com", ["sip:x@example.com"])), UMIME[RLS])
    assert r.status == 201, f"a free service URI was refused: {r.describe()}"


def test_rls_service_uri_alt_values_are_free(alice, bob):
    expect(alice.put(doc_path(RLS, ALICE), udata("rls-services.xml"), UMIME[RLS]), 201)
    _, alts = expect_uniqueness(bob.put(doc_path(RLS, BOB), rls((TAKEN, [])), UMIME[RLS]))
    for alt in alts:
        r = bob.put(doc_path(RLS, BOB), rls((alt, [])), UMIME[RLS])
        assert r.status in (200, 201), f"the suggested <alt-value> {alt!r} is not free: {r.describe()}"


def test_rls_service_uri_in_another_document_of_the_same_user_is_refused(alice):
    expect(alice.put(doc_path(RLS, ALICE), udata("rls-services.xml"), UMIME[RLS]), 201)
    path = doc_path(RLS, ALICE, "second")
    field, _ = expect_uniqueness(
        alice.put(path, rls(("sip:alice-new@example.com", []), (TAKEN, [])), UMIME[RLS]))
    assert field == "rls-services/service[2]/@uri", field
    assert_missing(alice, path)


def test_rls_duplicate_service_uri_within_a_document_is_refused(alice):
    path = doc_path(RLS, ALICE)
    body = rls(("sip:a@example.com", []), ("sip:b@example.com", []), ("sip:a@example.com", []))
    field, _ = expect_uniqueness(alice.put(path, body, UMIME[RLS]))
    assert field == "rls-services/service[3]/@uri", field
    assert_missing(alice, path)


def test_rls_replacing_own_document_keeps_its_uris(alice):
    path = doc_path(RLS, ALICE)
    body = udata("rls-services.xml")
    expect(alice.put(path, body, UMIME[RLS]), 201)
    r = alice.put(path, body, UMIME[RLS])
    assert r.status == 200, f"replacing a document with its own service URIs was refused: {r.describe()}"


def test_rls_uri_is_free_again_after_delete_or_replace(alice, bob):
    apath = doc_path(RLS, ALICE)
    expect(alice.put(apath, udata("rls-services.xml"), UMIME[RLS]), 201)
    # Alice drops the URI by replacing her document: Bob may take it.
    expect(alice.put(apath, rls(("sip:alice-colleagues@example.com", [])), UMIME[RLS]), 200)
    r = bob.put(doc_path(RLS, BOB), rls((TAKEN, [])), UMIME[RLS])
    assert r.status == 201, f"a URI released by a replacement is still taken: {r.describe()}"
    # Now Alice cannot take it back.
    expect_uniqueness(alice.put(apath, rls((TAKEN, [])), UMIME[RLS]))
    # Bob deletes: free again.
    expect(bob.delete(doc_path(RLS, BOB)), 200)
    r = alice.put(apath, rls((TAKEN, [])), UMIME[RLS])
    assert r.status == 200, f"a URI released by a DELETE is still taken: {r.describe()}"


def test_rls_uri_index_survives_a_restart(userver, alice, bob):
    expect(alice.put(doc_path(RLS, ALICE), udata("rls-services.xml"), UMIME[RLS]), 201)
    userver.restart()
    alice.close()
    bob.close()
    expect_uniqueness(bob.put(doc_path(RLS, BOB), rls((TAKEN, [])), UMIME[RLS]))


def test_rls_inline_list_follows_resource_lists_rules(alice):
    path = doc_path(RLS, ALICE)
    dup = rls(("sip:a@example.com", ["sip:bob@example.com", "sip:bob@example.com"]))
    field, _ = expect_uniqueness(alice.put(path, dup, UMIME[RLS]))
    assert field and field.startswith("rls-services/service[1]/list[1]/") \
        and field.endswith("entry[2]/@uri"), f"expected the second entry of the list, got {field!r}"
    # The same entry in two services is fine.
    ok = rls(("sip:a@example.com", ["sip:bob@example.com"]), ("sip:b@example.com", ["sip:bob@example.com"]))
    expect(alice.put(path, ok, UMIME[RLS]), 201)


# ---------------------------------------------------------------------------
# CAB Feature Handler (SPEC §4.3): request ids, <response> ownership

FH_PATH = doc_path(FH, ALICE)
IMPORT_SEL = "cab-feature-handler/import-profile%5B@id=%22imp-0001%22%5D"
EXPORT_SEL = "cab-feature-handler/export-profile%5B@id=%22exp-0001%22%5D"
EL = "application/xcap-el+xml"


def node(path, selector):
    return f"{path}/~~/{selector}"


def test_fh_duplicate_id_names_the_second_request(alice):
    field, alts = expect_uniqueness(alice.put(FH_PATH, udata("fh-invalid-duplicate-id.xml"), UMIME[FH]))
    assert field == 'cab-feature-handler/export-profile[@id="dup-1"]/@id', field
    assert alts, "SPEC §4.3 rule 3: the error proposes an <alt-value> id"
    assert "dup-1" not in alts, f"the proposed id is the duplicate itself: {alts}"
    assert_missing(alice, FH_PATH)


def test_fh_ids_are_unique_per_document_only(alice, bob):
    body = udata("fh-invalid-duplicate-id.xml").replace(b'export-profile id="dup-1"',
                                                        b'export-profile id="dup-2"')
    expect(alice.put(FH_PATH, body, UMIME[FH]), 201)
    expect(bob.put(doc_path(FH, BOB), body, UMIME[FH]), 201)


def test_fh_user_cannot_write_responses(alice):
    """fh-with-responses.xml is fh-requests.xml after the IWF answered: the
    user may not create it (SPEC §4.3 rule 2)."""
    r = alice.put(FH_PATH, udata("fh-with-responses.xml"), UMIME[FH])
    child = expect_xcap_error(r, "constraint-failure", need_phrase=True)
    assert_fh_phrase(child)
    assert_missing(alice, FH_PATH)


def fh_after_iwf_response(server, alice):
    """fh-requests.xml with the IWF's response of fixtures/fh-response-element.xml
    added to imp-0001; returns (iwf client, document bytes, ETag)."""
    expect(alice.put(FH_PATH, data("fh-requests.xml"), UMIME[FH]), 201)
    iwf = iwf_client(server)
    resp = udata("fh-response-element.xml").strip()
    r = iwf.put(node(FH_PATH, IMPORT_SEL + "/response"), resp, EL)
    assert r.status == 201, f"IWF element PUT of <response>: expected 201, got {r.describe()}"
    r = expect(iwf.get(node(FH_PATH, IMPORT_SEL + "/response")), 200)
    assert r.body == resp, f"GET of the response does not return the PUT body: {r.describe()}"
    r = expect(alice.get(FH_PATH), 200)
    return iwf, r.body, r.etag


def test_fh_iwf_writes_response(userver, alice):
    iwf, body, _ = fh_after_iwf_response(userver, alice)
    root = etree.fromstring(body, no_net_parser())
    imp = root.find(f"{{{FH_NS}}}import-profile")
    kids = [c for c in imp if isinstance(c.tag, str)]
    assert kids[-1].tag == f"{{{FH_NS}}}response", "the <response> must be the last child of its request"
    assert kids[-1].get("status") == "success"
    # A later update by the IWF replaces it: 200.
    upd = udata("fh-response-element.xml").strip().replace(b'seq="1"', b'seq="2"')
    r = iwf.put(node(FH_PATH, IMPORT_SEL + "/response"), upd, EL)
    assert r.status == 200, f"IWF replacing its <response>: expected 200, got {r.describe()}"


def test_fh_user_may_keep_but_not_change_responses(userver, alice):
    _, body, etag = fh_after_iwf_response(userver, alice)
    # Changing a request while its response stays as it is: allowed.
    changed = body.replace(b"<fields>fn tel email</fields>", b"<fields>fn tel</fields>")
    assert changed != body
    r = alice.put(FH_PATH, changed, UMIME[FH])
    assert r.status == 200, f"the user changed a request and left the response alone: {r.describe()}"
    etag = r.etag
    # Changing the response: refused.
    forged = changed.replace(b'status="success"', b'status="failure"')
    assert forged != changed
    child = expect_xcap_error(alice.put(FH_PATH, forged, UMIME[FH]), "constraint-failure", need_phrase=True)
    assert_fh_phrase(child)
    # Removing the response: refused.
    root = etree.fromstring(changed, no_net_parser())
    resp = root.find(f"{{{FH_NS}}}import-profile/{{{FH_NS}}}response")
    resp.getparent().remove(resp)
    stripped = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    child = expect_xcap_error(alice.put(FH_PATH, stripped, UMIME[FH]), "constraint-failure", need_phrase=True)
    assert_fh_phrase(child)
    # Element PUT of a response by the user: refused the same way.
    r = alice.put(node(FH_PATH, EXPORT_SEL + "/response"),
                  b'<response xmlns="urn:oma:xml:cab:feature-handler" status="success" code="200" '
                  b'updated="2024-05-01T10:05:09Z"/>', EL)
    expect_xcap_error(r, "constraint-failure", need_phrase=True)
    assert_unchanged(alice, FH_PATH, changed, etag)


def test_fh_iwf_may_write_nothing_but_responses(userver, alice):
    iwf, body, etag = fh_after_iwf_response(userver, alice)
    attempts = [
        ("PUT", node(FH_PATH, IMPORT_SEL + "/remote-user"),
         b'<remote-user xmlns="urn:oma:xml:cab:feature-handler">mallory</remote-user>', EL),
        ("PUT", node(FH_PATH, IMPORT_SEL + "/@created"), b"2030-01-01T00:00:00Z",
         "application/xcap-att+xml"),
        ("PUT", FH_PATH, body.replace(b"imp-0001", b"imp-0009"), UMIME[FH]),
        ("PUT", FH_PATH, body.replace(b"<fields>fn tel email</fields>", b"<fields>fn</fields>"), UMIME[FH]),
        ("DELETE", node(FH_PATH, IMPORT_SEL + "/fields"), None, None),
        ("DELETE", FH_PATH, None, None),
    ]
    for method, target, payload, ctype in attempts:
        r = iwf.request(method, target, body=payload, content_type=ctype)
        assert r.status == 403, f"IWF {method} {target}: expected 403, got {r.describe()}"
    assert_unchanged(alice, FH_PATH, body, etag)
    # SPEC §4.3 rules 2 and 4: it may delete consumed credentials.
    r = iwf.delete(node(FH_PATH, EXPORT_SEL + "/credentials"))
    assert r.status == 200, f"IWF DELETE of <credentials>: expected 200, got {r.describe()}"
    r = expect(alice.get(FH_PATH), 200)
    assert b"s3cret" not in r.body


# ---------------------------------------------------------------------------
# PCC (SPEC §4.2 extra constraints, hook cab_pcc)


def pcc(*person_details):
    inner = "".join(f"<person-details>{p}</person-details>" for p in person_details)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<pcc xmlns="{PCC_NS}" pcc-type="individual">'
            f"{inner}</pcc>\n").encode()


NAME = '<name><name-entry pref="1"><display-name>Alice</display-name></name-entry></name>'


def tel(pref, value="tel:+15555550101"):
    return f'<tel pref="{pref}" tel-type="Mobile"><tel-nb><tel-string>{value}</tel-string></tel-nb></tel>'


def uri_entry(pref, value="mailto:alice@example.com"):
    return f'<uri-entry pref="{pref}" addr-uri-type="Email"><addr-uri>{value}</addr-uri></uri-entry>'


PCC_REFUSED = {
    "two-names": pcc(NAME + NAME),
    "two-comm-addr": pcc(f"<comm-addr>{tel(1)}</comm-addr><comm-addr>{tel(2)}</comm-addr>"),
    "duplicate-tel-pref": pcc(f"<comm-addr>{tel(1)}{tel(1, 'tel:+15555550199')}</comm-addr>"),
    "tel-string-not-a-number": pcc(f"<comm-addr>{tel(1, 'call me maybe')}</comm-addr>"),
}
PCC_ACCEPTED = {
    "names-in-two-person-details": pcc(NAME, NAME),
    "same-pref-other-kind": pcc(f"<comm-addr>{tel(1)}{uri_entry(1)}</comm-addr>"),
    "distinct-tel-prefs": pcc(f"<comm-addr>{tel(1)}{tel(2, 'tel:+15555550199')}</comm-addr>"),
    "e164-digits": pcc(f"<comm-addr>{tel(1, '+15555550101')}</comm-addr>"),
    "after-import": udata("pcc-alice-after-import.xml"),
    "mediatek-style": data("pcc-mediatek-style.xml"),
}


@pytest.mark.parametrize("case", sorted(PCC_REFUSED))
def test_pcc_constraint_refused(alice, case):
    path = doc_path(PCC, ALICE)
    expect_xcap_error(alice.put(path, PCC_REFUSED[case], UMIME[PCC]), "constraint-failure",
                      need_phrase=True)
    assert_missing(alice, path)


@pytest.mark.parametrize("case", sorted(PCC_ACCEPTED))
def test_pcc_constraint_accepted(alice, case):
    path = doc_path(PCC, ALICE)
    r = alice.put(path, PCC_ACCEPTED[case], UMIME[PCC])
    assert r.status == 201, f"{case}: expected 201, got {r.describe()}"


# ---------------------------------------------------------------------------
# org.openmobilealliance.pres-content status icons (hook oma_pres_content)


def icon(data_text, mime="image/png", encoding="base64"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<content xmlns="{PC_NS}">'
            f"<mime-type>{mime}</mime-type><encoding>{encoding}</encoding>"
            f"<data>{data_text}</data></content>\n").encode()


@pytest.mark.parametrize("mime", ["image/jpeg", "image/gif", "image/png"])
def test_pres_content_icon_types_accepted(alice, mime):
    r = alice.put(doc_path(PRES_CONTENT, ALICE, ICON), icon("R0lGODlhAQABAAAAACw=", mime), UMIME[PRES_CONTENT])
    assert r.status == 201, f"{mime} icon refused: {r.describe()}"


def test_pres_content_icon_size_limit(alice):
    """300 KiB of base64 (307200 characters, 230400 bytes decoded) is
    accepted; 410000 characters (307500 bytes decoded, over 300 KiB either
    way) is refused with <constraint-failure>."""
    path = doc_path(PRES_CONTENT, ALICE, ICON)
    big = icon("A" * 410000)
    expect_xcap_error(alice.put(path, big, UMIME[PRES_CONTENT]), "constraint-failure", need_phrase=True)
    assert_missing(alice, path)
    ok = icon("A" * 307200)
    r = alice.put(path, ok, UMIME[PRES_CONTENT])
    assert r.status == 201, f"an icon of exactly 307200 base64 characters was refused: {r.describe()}"
    assert expect(alice.get(path), 200).body == ok


# ---------------------------------------------------------------------------
# org.openmobilealliance.xcap-directory (SPEC §3.4, hook xcap_directory)

XCAP_ROOT_URI = "http://xdms.example.com/xcap-root"


def xcap_directory_schema():
    doc = etree.parse(str(SCHEMAS / "xcap-directory.xsd"), no_net_parser())
    return etree.XMLSchema(doc)


def directory(client, xui=ALICE):
    """GETs the user's directory; returns {uri: (folder auid, etag, size, last-modified)}."""
    r = expect(client.get(doc_path(DIRECTORY, xui, "directory.xml")), 200)
    assert r.content_type == UMIME[DIRECTORY], r.describe()
    expect_etag(r)
    root = etree.fromstring(r.body, no_net_parser())
    s = xcap_directory_schema()
    assert s.validate(etree.ElementTree(root)), f"xcap-directory.xsd: {s.error_log}: {r.describe()}"
    out = {}
    folders = root.findall(f"{{{XCAP_DIR_NS}}}folder")
    assert len({f.get("auid") for f in folders}) == len(folders), "one <folder> per AUID"
    for folder in folders:
        assert folder.find(f"{{{XCAP_DIR_NS}}}error-code") is None, r.describe()
        for e in folder.findall(f"{{{XCAP_DIR_NS}}}entry"):
            uri = urllib.parse.unquote(e.get("uri"))
            assert uri not in out, f"document listed twice: {uri}"
            out[uri] = (folder.get("auid"), e.get("etag"), e.get("size"), e.get("last-modified"))
    return out


def check_directory(client, docs, start):
    """docs: {(auid, doc): (body, etag)} - exactly what the directory must list."""
    got = directory(client)
    want = {f"{XCAP_ROOT_URI}/{auid}/users/{ALICE}/{doc}": (auid, body, etag)
            for (auid, doc), (body, etag) in docs.items()}
    assert set(got) == set(want), (f"directory lists {sorted(got)}, expected {sorted(want)} "
                                   f"(entry uri = the absolute XCAP URI of the document)")
    now = datetime.now(timezone.utc)
    for uri, (auid, body, etag) in want.items():
        folder, g_etag, size, lm = got[uri]
        assert folder == auid, f"{uri} listed in the folder of {folder}"
        assert g_etag in (etag, unquote(etag)), f"{uri}: etag {g_etag!r}, current ETag is {etag}"
        assert size == str(len(body)), f"{uri}: size {size}, document has {len(body)} bytes"
        assert lm, f"{uri}: no last-modified"
        when = datetime.fromisoformat(lm.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        assert start - timedelta(seconds=5) <= when <= now + timedelta(seconds=5), \
            f"{uri}: last-modified {lm} is not the time of the last write"


def test_xcap_directory_lists_exactly_the_users_documents(start_server):
    srv = start_server(settings=usage_settings({"http.xcap_root": XCAP_ROOT_URI}))
    alice, bob, admin = srv.client(ALICE), srv.client(BOB), srv.client(ADMIN)
    start = datetime.now(timezone.utc).replace(microsecond=0)
    docs = {}

    def put(auid, doc, body):
        r = alice.put(doc_path(auid, ALICE, doc), body, UMIME[auid])
        assert r.status in (200, 201), r.describe()
        docs[(auid, doc)] = (body, expect_etag(r))

    def delete(auid, doc):
        expect(alice.delete(doc_path(auid, ALICE, doc)), 200)
        del docs[(auid, doc)]

    put(RL, "index", data("subscribe-body.xml"))
    put(RL, "dir1/other.xml", rl(("x", entry("sip:x@example.com"))))
    put(PCC, "PCC.xml", data("pcc-alice.xml"))
    put(FH, "index", data("fh-requests.xml"))
    put(OMA_PRES_RULES, "pres-rules", udata("oma-pres-rules.xml"))
    put(PRES_CONTENT, ICON, udata("oma-pres-content.xml"))
    # Another user's and a global document are not Alice's.
    expect(bob.put(doc_path(RL, BOB), data("subscribe-body.xml"), UMIME[RL]), 201)
    expect(admin.put(global_path(RL), rl(("g", "")), UMIME[RL]), 201)
    check_directory(alice, docs, start)

    put(RL, "index", rl(("replaced", entry("sip:y@example.com"))))  # new ETag and size
    delete(RL, "dir1/other.xml")
    delete(FH, "index")
    put(ADDRESS_BOOK, "index", udata("address-book-alice.xml"))
    check_directory(alice, docs, start)

    # Bob's directory lists Bob's document only.
    got = directory(bob, BOB)
    assert [urllib.parse.unquote(u) for u in got] == [f"{XCAP_ROOT_URI}/{RL}/users/{BOB}/index"], got


def test_xcap_directory_of_a_user_without_documents(userver, alice):
    r = expect(alice.get(doc_path(DIRECTORY, ALICE, "directory.xml")), 200)
    root = etree.fromstring(r.body, no_net_parser())
    assert root.tag == f"{{{XCAP_DIR_NS}}}xcap-directory"
    assert not list(root.iter(f"{{{XCAP_DIR_NS}}}entry")), r.describe()


def test_xcap_directory_is_read_only_and_private(userver, alice, bob):
    path = doc_path(DIRECTORY, ALICE, "directory.xml")
    body = f'<xcap-directory xmlns="{XCAP_DIR_NS}"/>'.encode()
    for method in ("PUT", "DELETE"):
        r = alice.request(method, path, body=body if method == "PUT" else None,
                          content_type=UMIME[DIRECTORY] if method == "PUT" else None)
        assert r.status == 405, f"{method} on the xcap-directory: expected 405, got {r.describe()}"
    r = bob.get(path)
    assert r.status == 403, f"Bob reading Alice's directory: expected 403, got {r.describe()}"
    r = alice.get(global_path(DIRECTORY, "directory.xml"))
    assert r.status == 404, f"xcap-directory has no global tree: {r.describe()}"


# ---------------------------------------------------------------------------
# Global trees and document names


def test_users_only_usages_have_no_global_tree(userver):
    admin = userver.client(ADMIN)
    for auid, doc, body in VALID:
        if descriptors()[auid].get("scope", "users") != "users":
            continue
        r = admin.put(global_path(auid, doc), body(), UMIME[auid])
        assert r.status == 404, f"{auid}: PUT in the global tree: expected 404, got {r.describe()}"


@pytest.mark.parametrize("auid,doc,body", [
    (PCC, "PCC.xml", lambda: data("pcc-alice.xml")),
    (OMA_PRES_RULES, "index", lambda: udata("oma-pres-rules.xml")),
    (PRES_RULES, "pres-rules", lambda: udata("pres-rules.xml")),
    (PRES_CONTENT, "oma_status-icon/index", lambda: udata("oma-pres-content.xml")),
    (GROUPS, "alice-team", lambda: udata("oma-groups.xml")),
], ids=["pcc-PCC.xml", "oma-pres-rules-index", "pres-rules-pres-rules", "pres-content-oma_status-icon-index",
        "groups-by-name"])
def test_documents_under_other_names(alice, auid, doc, body):
    """Default document names are conventions: clients that use others work."""
    body = body()
    path = doc_path(auid, ALICE, doc)
    expect(alice.put(path, body, UMIME[auid]), 201)
    assert expect(alice.get(path), 200).body == body
    assert_missing(alice, doc_path(auid, ALICE, descriptors()[auid].get("default_document", "index")))


# ---------------------------------------------------------------------------
# A usage added by descriptor only (xcap.descriptor_dir, no rebuild)

NOTES_NS = "urn:example:xml:notes"
NOTES_MIME = "application/vnd.example.notes+xml"
NOTES_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema targetNamespace="{NOTES_NS}" xmlns="{NOTES_NS}"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace"
      schemaLocation="http://www.w3.org/2001/xml.xsd"/>
  <xs:import namespace="urn:ietf:params:xml:ns:resource-lists" schemaLocation="resource-lists.xsd"/>
  <xs:element name="notes">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="note" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:simpleContent>
              <xs:extension base="xs:string">
                <xs:attribute name="id" type="xs:token" use="required"/>
                <xs:attribute ref="xml:lang"/>
              </xs:extension>
            </xs:simpleContent>
          </xs:complexType>
        </xs:element>
        <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def notes_descriptor(name="com.example.notes", extra=""):
    return (f"; a usage added without rebuilding xdmsd\n[auid]\nname = {name}\n"
            f"namespace = {NOTES_NS}\nmime = {NOTES_MIME}\ndefault_document = notes.xml\n"
            f"schema = example-notes.xsd\nroot = notes\netag_prefix = notes\n{extra}")


def descriptor_dir(tmp_path, files):
    """A descriptor directory: the one of XDMS_USAGE_DESCRIPTOR_DIR (if set)
    plus @files {name: text}."""
    d = tmp_path / "auids"
    d.mkdir()
    base = os.environ.get("XDMS_USAGE_DESCRIPTOR_DIR")
    if base:
        for f in Path(base).iterdir():
            if f.suffix in (".auid", ".xsd"):
                shutil.copy(f, d / f.name)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def test_usage_added_by_descriptor_only(start_server, tmp_path):
    d = descriptor_dir(tmp_path, {"example-notes.xsd": NOTES_XSD,
                                  "example-notes.auid": notes_descriptor(extra="scope = users\n")})
    srv = start_server(settings=usage_settings({"xcap.descriptor_dir": str(d)}))
    alice = srv.client(ALICE)
    r = expect(alice.get(global_path("xcap-caps")), 200)
    caps = etree.fromstring(r.body, no_net_parser())
    assert "com.example.notes" in [a.text for a in caps.iter(f"{{{XCAP_CAPS_NS}}}auid")]
    assert NOTES_NS in [n.text for n in caps.iter(f"{{{XCAP_CAPS_NS}}}namespace")]
    path = doc_path("com.example.notes", ALICE, "notes.xml")
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<notes xmlns="{NOTES_NS}" xmlns:rl="{RL_NS}">'
            f'<note id="n1" xml:lang="en">Buy milk</note>'
            f'<rl:resource-lists><rl:list name="shops"/></rl:resource-lists></notes>\n').encode()
    etag = expect_etag(expect(alice.put(path, body, NOTES_MIME), 201))
    assert unquote(etag).startswith("notes-"), etag
    r = expect(alice.get(path), 200)
    assert r.body == body and r.content_type == NOTES_MIME and r.etag == etag, r.describe()
    # Its schema applies, including the imported resource-lists schema.
    for bad in (f'<notes xmlns="{NOTES_NS}"><note>no id</note></notes>',
                f'<notes xmlns="{NOTES_NS}" xmlns:rl="{RL_NS}">'
                f'<rl:resource-lists><rl:list><rl:entry/></rl:list></rl:resource-lists></notes>',
                f'<other xmlns="{NOTES_NS}"/>',
                '<notes xmlns="urn:example:wrong"/>'):
        expect_xcap_error(alice.put(path, bad.encode(), NOTES_MIME), "schema-validation-error",
                          need_phrase=True)
    assert_unchanged(alice, path, body, etag)
    r = alice.put(path, body, "application/xml")
    assert r.status == 415, r.describe()
    expect(alice.delete(path), 200)
    r = srv.client(ADMIN).put(global_path("com.example.notes", "notes.xml"), body, NOTES_MIME)
    assert r.status == 404, f"scope = users: no global tree, got {r.describe()}"


def test_descriptor_only_usage_with_admin_only_global_tree(start_server, tmp_path):
    d = descriptor_dir(tmp_path, {
        "example-notes.xsd": NOTES_XSD,
        "example-bulletins.auid": notes_descriptor("com.example.bulletins",
                                                   "scope = both\nadmin_only = true\n")})
    srv = start_server(settings=usage_settings({"xcap.descriptor_dir": str(d)}))
    alice, admin, iwf = srv.client(ALICE), srv.client(ADMIN), iwf_client(srv)
    gpath = global_path("com.example.bulletins", "notes.xml")
    body = f'<notes xmlns="{NOTES_NS}"><note id="b1">Maintenance on Sunday</note></notes>'.encode()
    etag = expect_etag(expect(admin.put(gpath, body, NOTES_MIME), 201))
    for who, c in (("alice", alice), ("IWF", iwf), ("admin", admin)):
        r = expect(c.get(gpath), 200)
        assert r.body == body and r.etag == etag, f"{who}: {r.describe()}"
    for who, c in (("alice", alice), ("IWF", iwf)):
        r = c.put(gpath, body.replace(b"Sunday", b"Monday"), NOTES_MIME)
        assert r.status == 403, f"{who} writing a global document: expected 403, got {r.describe()}"
        r = c.delete(gpath)
        assert r.status == 403, f"{who} deleting a global document: expected 403, got {r.describe()}"
    assert_unchanged(alice, gpath, body, etag)
    # admin_only covers every tree: an operator provisions the users' documents too.
    upath = doc_path("com.example.bulletins", ALICE, "notes.xml")
    r = alice.put(upath, body, NOTES_MIME)
    assert r.status == 403, f"alice writing her admin-only document: expected 403, got {r.describe()}"
    expect(admin.put(upath, body, NOTES_MIME), 201)
    assert expect(alice.get(upath), 200).body == body, "the owner still reads her admin-provisioned document"


@pytest.mark.parametrize("line", ["hook = no_such_hook", "admin_only = perhaps"])
def test_descriptor_with_bad_hook_or_admin_only_stops_startup(start_server, tmp_path, line):
    d = descriptor_dir(tmp_path, {"example-notes.xsd": NOTES_XSD,
                                  "example-notes.auid": notes_descriptor(extra=line + "\n")})
    srv = start_server(settings=usage_settings({"xcap.descriptor_dir": str(d)}), start=False)
    with pytest.raises(AssertionError, match="exited with 1"):
        srv.start()
    log = srv.log_tail()
    assert "example-notes.auid" in log and re.search(r"hook|admin_only", log), log
