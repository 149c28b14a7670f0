"""Shared fixtures: real data from ../shared/data (the bundled examples where they suffice), real VGG weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MULTISTYLE_TEST_DATA", ROOT.parent / "shared" / "data"))
STYLES = DATA / "styles"
CONTENT = DATA / "content"

THREADS = os.environ.get("MULTISTYLE_TEST_THREADS", str(min(2, os.cpu_count() or 1)))
torch.set_num_threads(int(THREADS))


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """One cache folder for the whole run (converted VGG weights, style targets, precision and engine choices),
    set before any session fixture builds a network, so no test writes to the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MULTISTYLE_CACHE", str(folder))
        patch.setenv("MULTISTYLE_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield folder


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch, _session_cache):
    """Keep the user's model file and cache out of tests: both live in this run's temporary folders."""
    monkeypatch.setenv("MULTISTYLE_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("MULTISTYLE_CACHE", str(_session_cache))
    monkeypatch.delenv("MULTISTYLE_MODEL", raising=False)


@pytest.fixture(scope="session")
def loss_net():
    from multistyle.loss import LossConfig, PerceptualLoss

    return PerceptualLoss(LossConfig())


@pytest.fixture(scope="session")
def tubingen():
    from multistyle.images import load_image

    return load_image(ROOT / "examples" / "tubingen.jpg", max_size=64)


@pytest.fixture(scope="session")
def starry():
    from multistyle.images import load_image

    return load_image(STYLES / "starry_night.jpg", max_size=64)


@pytest.fixture(scope="session")
def wave():
    from multistyle.images import load_image

    return load_image(STYLES / "great_wave.jpg", max_size=64)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, stdin: bytes | None = None,
            module: str = "multistyle", timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m multistyle ARGS`` (or a script path) in a subprocess, like a user would."""
    cmd = [sys.executable, *(["-m", module] if not module.endswith(".py") else [module]), *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": THREADS, **(env or {})}
    return subprocess.run(cmd, cwd=cwd or ROOT, env=full_env, input=stdin, capture_output=True, timeout=timeout)


def run_main(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """``multistyle ARGS`` through the same ``main()`` as the command, in this process (no interpreter and torch
    start-up per call): for batteries of bad input. Exit code, stdout and stderr as :func:`run_cli` gives them; an
    uncaught exception (a traceback for the user) fails the test. Each battery keeps one real subprocess too."""
    import contextlib
    import io

    from multistyle.cli import main

    out, err = io.StringIO(), io.StringIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", fake_stdin)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's exit
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(list(args), code, out.getvalue().encode(), err.getvalue().encode())


def assert_one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """A clean failure: the given exit code, one line on stderr, no traceback."""
    err = result.stderr.decode()
    assert result.returncode == code, (result.returncode, err)
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    return lines[0]


def wait_for(condition, seconds: float = 20) -> bool:
    """Poll ``condition()`` every 0.1 s until it holds or ``seconds`` pass; its last value."""
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
