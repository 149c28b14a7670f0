"""Nothing a user owns is lost: atomic model writes under SIGKILL, one writer at a time, packaged model untouched."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

from conftest import ROOT, STYLES, THREADS, assert_one_line_error, run_cli
from filelock import Timeout

from multistyle.modelfile import PACKAGED_MODEL, load_model
from multistyle.train.add_style import model_lock

ADD_STYLE = str(ROOT / "train" / "add_style.py")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_add_style(model, out, steps: int = 100000) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": THREADS}
    return subprocess.Popen([sys.executable, ADD_STYLE, str(STYLES / "udnie.jpg"), "--model", str(model), "--out",
                             str(out), "--steps", str(steps), "--size", "32", "--batch", "1", "--name", "added"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_lock(path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once ``proc`` holds the model file's lock."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            with model_lock(path):
                pass
        except Timeout:
            return
        time.sleep(0.1)
    raise AssertionError("add_style never took the lock")


def test_sigkill_never_corrupts_the_model(tmp_path):
    """Kill short add_style runs at random moments (startup, training, saving): the file is always either the
    old model, byte for byte, or the complete new one."""
    original = PACKAGED_MODEL.read_bytes()
    before = hashlib.sha256(original).hexdigest()
    model = tmp_path / "user.safetensors"
    rng = random.Random(7)
    outcomes = set()
    for _ in range(5):
        model.write_bytes(original)
        proc = start_add_style(model, model, steps=3)
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = load_model(model)[0].style_names
        if sha256(model) == before:
            outcomes.add("old")
        else:
            assert names[-1] == "added" and len(names) == 14
            outcomes.add("new")
    assert "old" in outcomes


def test_second_writer_is_refused(tmp_path):
    model = tmp_path / "user.safetensors"
    model.write_bytes(PACKAGED_MODEL.read_bytes())
    first = start_add_style(model, model)
    try:
        wait_for_lock(model, first)
        second = run_cli(str(STYLES / "the_scream.jpg"), "--model", str(model), "--out", str(model), "--steps", "1",
                         "--name", "second", module=ADD_STYLE)
        assert "already writing" in assert_one_line_error(second)
    finally:
        first.kill()
        first.wait()
    assert len(load_model(model)[0].style_names) == 13


def test_packaged_model_is_never_modified(tmp_path):
    before = sha256(PACKAGED_MODEL)
    line = assert_one_line_error(run_cli(str(STYLES / "udnie.jpg"), "--out", str(PACKAGED_MODEL), "--steps", "1",
                                         module=ADD_STYLE))
    assert "packaged model" in line
    home = tmp_path / "home"
    result = run_cli(str(STYLES / "udnie.jpg"), "--steps", "2", "--size", "32", "--name", "udnie2", module=ADD_STYLE,
                     env={"MULTISTYLE_HOME": str(home)})
    assert result.returncode == 0, result.stderr.decode()
    assert sha256(PACKAGED_MODEL) == before
    user = home / "model.safetensors"
    assert load_model(user)[0].style_names[-1] == "udnie2"
    listed = run_cli("styles", "--json", env={"MULTISTYLE_HOME": str(home)})
    assert '"udnie2"' in listed.stdout.decode() and str(user) in listed.stdout.decode()


SAVE_LOOP = """
import sys
from multistyle.modelfile import load_model, save_model
a, extra_a = load_model(sys.argv[1])
b, extra_b = load_model(sys.argv[2])
save_model(a, sys.argv[3], extra_a)
print("ready", flush=True)
while True:
    save_model(b, sys.argv[3], extra_b)
    save_model(a, sys.argv[3], extra_a)
"""


def test_sigkill_while_saving_leaves_the_old_or_the_new_file(tmp_path):
    """A process that does nothing but save two different models over one path (with 32 MB of ballast, so the
    write and fsync dominate each save) is killed at random moments; a leftover temp file proves a kill landed
    inside save_model. The model file is always one of the two complete files, byte for byte, and loads."""
    import torch

    from multistyle.modelfile import save_model

    model, _ = load_model(PACKAGED_MODEL)
    for style in model.styles:
        style.painting = None
    ballast = {"ballast": torch.arange(8_000_000, dtype=torch.float32)}
    first = save_model(model, tmp_path / "a.safetensors", ballast)
    model.styles[0].name = "renamed"  # a second, different complete file
    second = save_model(model, tmp_path / "b.safetensors", ballast)
    versions = {sha256(first), sha256(second)}
    target = tmp_path / "work" / "model.safetensors"
    target.parent.mkdir()
    rng = random.Random(11)
    mid_save = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for _ in range(10):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(first), str(second), str(target)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sha256(target) in versions
        assert load_model(target)[0].net.num_styles == 13
        leftovers = [p for p in target.parent.iterdir() if p != target]
        mid_save += bool(leftovers)
        for p in leftovers:
            p.unlink()
    assert mid_save >= 1, "no kill landed inside save_model; the test proved nothing"
