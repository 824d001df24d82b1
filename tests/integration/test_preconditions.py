# SPDX-License-Identifier: MIT
"""Conditional requests (SPEC §1.6): If-Match / If-None-Match on documents."""

import pytest

from xdmslib import ALICE, MIME, RL, doc_path, expect, expect_etag, rl_doc, unquote

PATH = doc_path(RL, ALICE)
OLD = rl_doc("Old")
NEW = rl_doc("New")
BOGUS = '"no-such-etag-0000"'


@pytest.fixture
def existing(alice):
    """alice's resource-lists index with body OLD; returns its ETag."""
    return expect_etag(expect(alice.put(PATH, OLD, MIME[RL]), 201))


def assert_unchanged(client, etag, body=OLD):
    r = expect(client.get(PATH), 200)
    assert r.body == body, f"document changed after a refused request: {r.describe()}"
    assert r.etag == etag, f"ETag changed after a refused request: expected {etag}, got {r.etag}"


# ---- If-Match


def test_if_match_get_matching(alice, existing):
    r = expect(alice.get(PATH, headers={"If-Match": existing}), 200)
    assert r.body == OLD and r.etag == existing


def test_if_match_put_matching(alice, existing):
    r = expect(alice.put(PATH, NEW, MIME[RL], headers={"If-Match": existing}), 200)
    etag = expect_etag(r)
    assert etag != existing
    r = expect(alice.get(PATH), 200)
    assert r.body == NEW and r.etag == etag


def test_if_match_delete_matching(alice, existing):
    expect(alice.delete(PATH, headers={"If-Match": existing}), 200)
    expect(alice.get(PATH), 404)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_if_match_mismatch_is_412_and_changes_nothing(alice, existing, method):
    body = NEW if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, PATH, body=body, content_type=ct, headers={"If-Match": BOGUS})
    expect(r, 412)
    assert_unchanged(alice, existing)


def test_if_match_with_a_stale_etag_is_412(alice, existing):
    """The ETag of the previous version no longer matches."""
    newer = expect_etag(expect(alice.put(PATH, NEW, MIME[RL]), 200))
    expect(alice.put(PATH, OLD, MIME[RL], headers={"If-Match": existing}), 412)
    assert_unchanged(alice, newer, NEW)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("value", [BOGUS, "*"])
def test_if_match_on_missing_document_is_412(alice, method, value):
    body = NEW if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, PATH, body=body, content_type=ct, headers={"If-Match": value})
    expect(r, 412)
    expect(alice.get(PATH), 404)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_if_match_star_matches_existing(alice, existing, method):
    body = NEW if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, PATH, body=body, content_type=ct, headers={"If-Match": "*"})
    expect(r, 200)
    # And the request did what it says: the document is replaced, deleted,
    # or read as it is.
    g = alice.get(PATH)
    if method == "PUT":
        assert r.etag != existing
        expect(g, 200)
        assert g.body == NEW and g.etag == r.etag, g.describe()
    elif method == "DELETE":
        expect(g, 404)
    else:
        assert r.body == OLD and r.etag == existing, r.describe()
        assert_unchanged(alice, existing)


def test_if_match_list(alice, existing):
    r = expect(alice.put(PATH, NEW, MIME[RL], headers={"If-Match": f'"a", {existing}, "b"'}), 200)
    etag = expect_etag(r)
    r = expect(alice.get(PATH), 200)
    assert r.body == NEW and r.etag == etag


def test_if_match_list_without_match_is_412(alice, existing):
    expect(alice.put(PATH, NEW, MIME[RL], headers={"If-Match": '"a", "b"'}), 412)
    assert_unchanged(alice, existing)


def test_if_match_unquoted_etag(alice, existing):
    raw = unquote(existing)
    r = expect(alice.get(PATH, headers={"If-Match": raw}), 200)
    assert r.body == OLD
    expect(alice.put(PATH, NEW, MIME[RL], headers={"If-Match": raw}), 200)
    expect(alice.put(PATH, OLD, MIME[RL], headers={"If-Match": raw}), 412)


# ---- If-None-Match


def test_if_none_match_get_matching_is_304(alice, existing):
    r = expect(alice.get(PATH, headers={"If-None-Match": existing}), 304)
    assert r.body == b"", f"304 carried a body: {r.describe()}"
    assert r.etag == existing, f"304 must carry the current ETag {existing} (RFC 7232 §4.1), got {r.etag!r}"


def test_if_none_match_head_matching_is_304(alice, existing):
    r = expect(alice.head(PATH, headers={"If-None-Match": existing}), 304)
    assert r.etag == existing, f"304 must carry the current ETag {existing}, got {r.etag!r}"


def test_if_none_match_get_star_is_304(alice, existing):
    r = expect(alice.get(PATH, headers={"If-None-Match": "*"}), 304)
    assert r.body == b""


def test_if_none_match_get_list_and_unquoted(alice, existing):
    expect(alice.get(PATH, headers={"If-None-Match": f'"x", {existing}'}), 304)
    expect(alice.get(PATH, headers={"If-None-Match": unquote(existing)}), 304)


def test_if_none_match_get_not_matching_is_200(alice, existing):
    r = expect(alice.get(PATH, headers={"If-None-Match": BOGUS}), 200)
    assert r.body == OLD and r.etag == existing


def test_if_none_match_get_after_change_is_200(alice, existing):
    newer = expect_etag(expect(alice.put(PATH, NEW, MIME[RL]), 200))
    r = expect(alice.get(PATH, headers={"If-None-Match": existing}), 200)
    assert r.body == NEW and r.etag == newer


def test_if_none_match_get_star_on_missing_is_404(alice):
    expect(alice.get(PATH, headers={"If-None-Match": "*"}), 404)


def test_if_none_match_star_put_existing_is_412(alice, existing):
    expect(alice.put(PATH, NEW, MIME[RL], headers={"If-None-Match": "*"}), 412)
    assert_unchanged(alice, existing)


def test_if_none_match_star_put_new_is_201(alice):
    r = expect(alice.put(PATH, NEW, MIME[RL], headers={"If-None-Match": "*"}), 201)
    etag = expect_etag(r)
    r = expect(alice.get(PATH), 200)
    assert r.body == NEW and r.etag == etag


# ---- Preconditions come before body checks


def test_precondition_checked_before_body(alice, existing):
    """SPEC §1.4: preconditions are evaluated before the body is checked, so a
    not-well-formed body with a failing If-Match is 412, not 409."""
    expect(alice.put(PATH, b"<resource-lists", MIME[RL], headers={"If-Match": BOGUS}), 412)
    expect(alice.put(PATH, b"<resource-lists", MIME[RL], headers={"If-None-Match": "*"}), 412)
    assert_unchanged(alice, existing)


def test_precondition_on_missing_document_before_body(alice):
    expect(alice.put(PATH, b"not xml at all", MIME[RL], headers={"If-Match": "*"}), 412)
    expect(alice.get(PATH), 404)


def test_matching_precondition_then_invalid_body_is_409(alice, existing):
    r = alice.put(PATH, b"<resource-lists", MIME[RL], headers={"If-Match": existing})
    assert r.status == 409, f"expected 409, got {r.describe()}"
    assert_unchanged(alice, existing)
