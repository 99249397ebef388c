"""The unit tier's rules, enforced rather than hoped for: no subprocess, no network, no ../shared, no MindSpore.
A unit test that needs any of them belongs in tests/integration."""
import socket
import subprocess
import sys

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
    had_mindspore = "mindspore" in sys.modules  # (in a full run the integration tier may have loaded it)
    yield
    assert had_mindspore or "mindspore" not in sys.modules, "a unit test loaded MindSpore (framework-free code only)"


@pytest.fixture
def datasets_dir():
    raise AssertionError("a unit test may not read ../shared/datasets (use a tiny fixture in tests/unit/fixtures)")
