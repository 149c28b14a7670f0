"""A regular (non-editable) install works: build the wheel, install it into a temporary target, and from a folder
outside the checkout stylize a photo and add a style with the packaged content photos (no --content-dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT, STYLES


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    shutil.copytree(ROOT / "multistyle", source / "multistyle", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    [wheel] = wheels.glob("multistyle-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "multistyle/assets/default.safetensors" in names and "multistyle/assets/v1.safetensors" in names
    assert sum(n.startswith("multistyle/assets/content/") and n.endswith(".jpg") for n in names) >= 4
    assert not any(n.startswith(("benchmarks/", "tests/")) for n in names)  # the checkout's tools stay out
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ROOT / "examples" / "tubingen.jpg", elsewhere / "photo.jpg")
    shutil.copy(STYLES / "the_scream.jpg", elsewhere / "painting.jpg")
    env = {**os.environ, "PYTHONPATH": str(target), "MULTISTYLE_HOME": str(tmp_path / "home"),
           "OMP_NUM_THREADS": "2"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=600)

    where = run("-c", "import multistyle; print(multistyle.__file__)")
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    out = run("-m", "multistyle", "stylize", "photo.jpg", "-s", "starry_night", "--max-size", "64", "-o", "out.jpg")
    assert out.returncode == 0, out.stderr
    assert (elsewhere / "out.jpg").stat().st_size > 0
    added = run("-m", "multistyle", "add-style", "painting.jpg", "--name", "scream2", "--steps", "2", "--size", "64",
                "-o", "extended.safetensors", "--device", "cpu")
    assert added.returncode == 0, added.stderr
    listed = run("-m", "multistyle", "styles", "--model", "extended.safetensors")
    assert "scream2" in listed.stdout, listed.stdout + listed.stderr
