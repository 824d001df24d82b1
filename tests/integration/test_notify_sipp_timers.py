# SPDX-License-Identifier: MIT
"""RFC 3261 non-INVITE client transaction timers on the notifier's NOTIFYs,
with sipp as a subscriber that stops answering: Timer E's retransmissions,
then Timer F (32 s) ending the subscription. In a file of its own (the
helpers are test_notify_sipp.py's) because it waits half a minute: as its
own test entry it runs beside the others (make -jN check).
"""

import pytest

from test_notify_sipp import (ALICE, PCC_DOC, SIPP, lab_server, log_count, notify_copies, put_pcc, put_tel2,  # noqa: F401
                              server_log_time, sipps, wait_server_log)

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian package sip-tester) is not installed")


def test_unanswered_notify_is_retransmitted_then_subscription_ends(start_server, sipps):
    srv = lab_server(start_server)
    put_pcc(srv)
    sp = sipps(srv, "xcap_diff_silent.xml", "u1", keys={"user": ALICE, "doc": PCC_DOC}, timeout=70)
    sp.wait_step("FIRST")
    wait_server_log(srv, r"notify: NOTIFY for [0-9a-f]+ answered 408: subscription ended", timeout=50)
    # RFC 3261 17.1.2.2: Timer F = 64*T1 = 32 s after the NOTIFY was first sent,
    # which follows the SUBSCRIBE's log line. Measured on the server's own log
    # timestamps: never early; late only by what a loaded machine adds.
    ended = server_log_time(srv, r"answered 408: subscription ended") - \
        server_log_time(srv, r"notify: sip:alice@example\.com subscribes")
    assert 32.0 <= ended <= 40.0, f"the subscription ended {ended:.3f}s after the first NOTIFY, expected 32s"
    wait_server_log(srv, r"notify: subscription [0-9a-f]+ of sip:alice@example\.com ended")
    # Gone: a change now makes no NOTIFY (sipp would log OTHER and fail).
    put_tel2(srv)
    sp.expect_ok(60)
    assert sp.steps("OTHER") == [] and len(sp.steps("QUIET")) == 1, sp.describe()
    copies = notify_copies(sp)
    assert len(copies) == 1, f"expected copies of one NOTIFY only, got {sorted(copies)}"
    times = next(iter(copies.values()))
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    # Timer E: 0.5, 1, 2, then 4 s (T2) until Timer F: 10 retransmissions within 32 s.
    assert 9 <= len(gaps) <= 11, f"expected about 10 retransmissions, got {len(gaps)}: gaps {gaps}"
    # Arrival times at sipp: a copy that arrives late shortens the next gap,
    # so each gap may be short by what the machine delayed the copy before
    # it, and long by more. The doubling up to T2 is what RFC 3261 requires.
    want = [0.5, 1, 2, 4, 4, 4, 4, 4, 4]
    late = 0.0  # how much later than its gap the copy before this one came
    for i, (got, exp) in enumerate(zip(gaps, want)):
        assert exp - 0.3 - late <= got <= exp + 1.5, f"retransmission {i + 1} came {got}s after the previous " \
                                                     f"one, expected {exp}s (Timer E); gaps {gaps}"
        late = max(0.0, got - exp)
    assert times[-1] - times[0] < 32.0, f"a retransmission came after Timer F (32 s): gaps {gaps}"
    assert log_count(srv, r"notify: sip:alice@example\.com subscribes") == 1

