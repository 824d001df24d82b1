# SPDX-License-Identifier: MIT
"""docs/configuration.md and docs/xdmsd.8 describe every configuration key
the server has (the CONF_KEYS table, as xdmsd --help prints it)."""

import re
import subprocess

from xdmslib import REPO, xdmsd_path


def help_keys():
    out = subprocess.run([str(xdmsd_path()), "--help"], capture_output=True, timeout=30).stdout.decode()
    keys = re.findall(r"^  ([a-z]+\.[a-z_]+) ", out, re.M)
    assert len(keys) > 30, f"xdmsd --help listed too few keys: {out}"
    return keys


def test_configuration_md_lists_every_key():
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [k for k in help_keys() if f"| `{k}` |" not in text]
    assert not missing, f"keys without a row in docs/configuration.md: {missing}"


def test_man_page_lists_every_key():
    text = (REPO / "docs" / "xdmsd.8").read_text(encoding="utf-8")
    missing = [k for k in help_keys() if f"\n.B {k}\n" not in text]
    assert not missing, f"keys not described in docs/xdmsd.8: {missing}"
