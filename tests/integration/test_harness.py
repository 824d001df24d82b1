# SPDX-License-Identifier: MIT
"""The test harness runs every integration test file: Makefile.am lists each
tests/integration/test_*.py as its own test entry (run in parallel by make
-jN check); a file missing from the list would never run in CI."""

import re

from xdmslib import HERE, REPO


def test_makefile_lists_every_test_file():
    text = (REPO / "Makefile.am").read_text(encoding="utf-8")
    listed = set(re.findall(r"tests/integration/(test_\w+\.py)", text))
    present = {p.name for p in HERE.glob("test_*.py")}
    assert present - listed == set(), f"test files Makefile.am does not run: {sorted(present - listed)}"
    assert listed - present == set(), f"Makefile.am lists test files that do not exist: {sorted(listed - present)}"
