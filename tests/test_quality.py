"""The code stays ruff clean and mypy clean: checked here so CI enforces it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff not installed")
def test_ruff_clean():
    p = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
                       cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_mypy_clean():
    # tests/data/vendor_x_api.py is a maintainer's tool (it refreshes the vendored OpenAPI cut)
    p = subprocess.run([sys.executable, "-m", "mypy", "src", "tests/data/vendor_x_api.py"], cwd=REPO,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
