"""./dev: the demo installs only the runtime dependencies, the tests add the test extras, and the
stamp file decides when to install again."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for .venv/bin/python: answers the version check, logs pip installs
if [ "$1" = "-c" ]; then exec "{python}" "$@"; fi
echo "$*" >> "$(dirname "$0")/pip.log"
"""


@pytest.fixture
def checkout(tmp_path):
    if shutil.which("bash") is None or shutil.which("sha1sum") is None:
        pytest.fail("./dev needs bash and sha1sum")
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    return tmp_path


def _setup(checkout, *args) -> list[str]:
    """Run ./dev setup ARGS; the pip installs it made."""
    log = checkout / ".venv" / "bin" / "pip.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["bash", str(checkout / "dev"), "setup", *args], cwd=checkout, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HIERFIT_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    return [ln for ln in log.read_text().splitlines() if "install" in ln and "pip" not in ln.split()[-1]] \
        if log.exists() else []


def _digest(checkout) -> str:
    import hashlib

    return hashlib.sha1((checkout / "pyproject.toml").read_bytes()).hexdigest()


def test_runtime_setup_installs_no_test_extras(checkout):
    installs = _setup(checkout)
    assert installs and installs[-1].endswith("install --disable-pip-version-check -e .")
    assert (checkout / ".venv" / ".hierfit-installed").read_text().split() == [_digest(checkout)]
    assert _setup(checkout) == []   # up to date: nothing to do


def test_test_setup_adds_the_extras_once(checkout):
    stamp = checkout / ".venv" / ".hierfit-installed"
    stamp.write_text(f"{_digest(checkout)} \n")          # a runtime-only environment
    installs = _setup(checkout, "test")
    assert installs[-1].endswith("-e .[test]")
    assert stamp.read_text().split() == [_digest(checkout), "test"]
    assert _setup(checkout, "test") == [] and _setup(checkout) == []   # a test install serves the demo too


def test_changed_pyproject_installs_again(checkout):
    (checkout / ".venv" / ".hierfit-installed").write_text("0000 test\n")
    assert _setup(checkout)[-1].endswith("-e .")


def test_dev_commands_choose_their_environment():
    dev = (ROOT / "dev").read_text()
    assert "demo) setup;" in dev and "test) setup test;" in dev
