"""The unit tier's rules, enforced rather than hoped for: no subprocess, no network, no ../shared. A unit test
that needs any of them belongs in tests/integration."""
import socket
import subprocess

import numpy.testing  # noqa: F401  (its import runs lscpu once: before the rule below, not in a test)
import pytest


def _refuse(what):
    def refused(*args, **kwargs):
        raise AssertionError(f"a unit test may not {what} (move it to tests/integration)")
    return refused


@pytest.fixture(autouse=True)
def _unit_tier_rules(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", _refuse("start a subprocess"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a network connection"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("open a network socket"))


@pytest.fixture
def datasets_dir():
    raise AssertionError("a unit test may not read ../shared/datasets (use a tiny fixture in tests/unit/fixtures)")
