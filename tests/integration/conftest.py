# SPDX-License-Identifier: MIT
"""Fixtures for the xdmsd black-box tests.

`start_server(...)` starts a real xdmsd (see xdmslib.Server) in the test's
temporary directory and stops it at the end of the test; `server` is one
started with the standard users and trust settings:

  sip:alice@example.com, sip:bob@example.com, tel:+15555550101 (normal
  users), sip:admin@example.com (in auth.admin_identities);
  auth.trusted_peers = 127.0.0.2, auth.server_identities = sip:cab-iwf@example.com.

When a test fails, the stderr log of every server it started is attached to
the report.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("xdmslib")

import xdmslib  # noqa: E402
from xdmslib import DEFAULT_SETTINGS, PASSWORDS, Server  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_xdms_servers", []):
            rep.sections.append((f"xdmsd stderr ({srv.name}, {srv.log_path})", srv.log_tail()))
            out = srv.stdout_text()
            if out:
                tail = "\n".join(out.splitlines()[-40:])
                rep.sections.append((f"xdmsd stdout ({srv.name})", tail))


@pytest.fixture
def start_server(request, tmp_path):
    """Factory: start_server(users=..., settings=..., sync=..., name=...).

    users: dict XUI -> password added with xdmsctl before the start
    (default: the four standard users); settings: extra --set keys merged
    over the default trust settings (default_settings=False drops those).
    """
    servers = []
    request.node._xdms_servers = servers

    def factory(users=None, settings=None, sync=False, name=None, default_settings=True,
                config_file=None, realm=None, start=True, env=None):
        name = name or f"xdmsd{len(servers)}"
        merged = dict(DEFAULT_SETTINGS) if default_settings else {}
        merged.update(settings or {})
        srv = Server(tmp_path / name, name=name, sync=sync, settings=merged,
                     config_file=config_file, env=env)
        servers.append(srv)
        for xui, pw in (PASSWORDS if users is None else users).items():
            srv.add_user(xui, pw, realm=realm)
        if start:
            srv.start()
        return srv

    yield factory

    problems = []
    for srv in servers:
        if srv.proc is not None:
            try:
                srv.stop(check=False)
            except AssertionError as e:
                problems.append(str(e))
                continue
            rc = srv.exit_codes[-1]
            if rc != 0:
                problems.append(f"{srv.name} exited with {rc} on SIGTERM at teardown, expected 0:\n"
                                f"{srv.log_tail()}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def alice(server):
    return server.client(xdmslib.ALICE)


@pytest.fixture
def bob(server):
    return server.client(xdmslib.BOB)
