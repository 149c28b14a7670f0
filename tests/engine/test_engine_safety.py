"""The engine layer under concurrency and upgrades: a compile does not block another size's runner, processes
sharing engine.json keep each other's entries, a graph file from another version is not reused, and a zero-shot
stylizer keeps the choice ``auto`` measured."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading

import numpy as np
import torch
from conftest import ROOT, STYLES

import multistyle.engine as engine
from multistyle.engine import EngineChoice, compiled_runner, fingerprint, installed, style_affine
from multistyle.engine import graph as graph_module
from multistyle.engine.runners import RunnerSpec, build_runner
from multistyle.modelfile import get_model
from multistyle.styles import style_weights

READY, SLOW = (1, 3, 24, 40), (1, 3, 28, 36)  # sizes no other test compiles
WAIT_S = 120  # only a deadlock (a fetch waiting on another size's compile) gets near this


def test_a_compile_does_not_block_another_sizes_runner(monkeypatch):
    net = copy.deepcopy(get_model().net).eval()
    choice, key = EngineChoice("torch", "fp32", "test"), fingerprint(net)
    ready = compiled_runner(net, "image", READY, choice, key)
    started, release, built = threading.Event(), threading.Event(), []
    real_build = engine.build_runner

    def held_build(net, spec, key=None):  # the compile of SLOW stays in progress until the test releases it
        built.append(spec.shape)
        if spec.shape == SLOW:
            started.set()
            assert release.wait(WAIT_S)
        return real_build(net, spec, key)

    monkeypatch.setattr(engine, "build_runner", held_build)
    slow: dict[int, object] = {}
    askers = [threading.Thread(target=lambda i=i: slow.update({i: compiled_runner(net, "image", SLOW, choice, key)}))
              for i in range(2)]
    askers[0].start()
    assert started.wait(WAIT_S)
    askers[1].start()  # the same key: waits for the compile in progress, compiles nothing itself
    fetched: dict[str, object] = {}
    other = threading.Thread(target=lambda: fetched.update(r=compiled_runner(net, "image", READY, choice, key)))
    other.start()
    other.join(WAIT_S)
    assert not other.is_alive() and fetched["r"] is ready  # fetched while SLOW is still compiling
    assert askers[0].is_alive() and not release.is_set()
    x = torch.rand(READY, generator=torch.Generator().manual_seed(0))
    weights = style_weights("udnie", get_model().style_names)
    with torch.inference_mode():
        expected = net(x, weights).numpy()
    assert np.abs(fetched["r"](x.numpy(), style_affine(net, weights)) - expected).max() <= 1e-4
    release.set()
    for asker in askers:
        asker.join(WAIT_S)
    assert slow[0] is slow[1] and built.count(SLOW) == 1  # one compile per key


WRITER = """import sys, time
from pathlib import Path
from multistyle.engine.choice import cached_record
path, tag, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
for i in range(150):
    cached_record(path, f"{tag} {i}", lambda record: record is not None, lambda: {"i": i})
"""


def test_two_processes_writing_the_engine_cache_keep_both_entries(tmp_path):
    path, go = tmp_path / "engine.json", tmp_path / "go"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(go)], stdout=subprocess.PIPE,
                              text=True, env=env) for tag in ("a", "b")]
    for proc in procs:  # both imported and waiting: they start writing together
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    for proc in procs:
        assert proc.wait(WAIT_S) == 0
    cache = json.loads(path.read_text())
    assert set(cache) == {f"{tag} {i}" for tag in "ab" for i in range(150)}
    assert all(cache[f"a {i}"] == {"i": i} for i in range(150))


def test_a_graph_from_another_version_is_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISTYLE_CACHE", str(tmp_path))
    net = copy.deepcopy(get_model().net).eval()
    current = graph_module.GRAPH_FORMAT
    monkeypatch.setattr(graph_module, "GRAPH_FORMAT", current - 1)  # a file the previous format exported ...
    stale = graph_module.onnx_graph(net, "image")
    stale.write_bytes(b"not a graph this version can run")  # ... which this version must not open
    monkeypatch.setattr(graph_module, "GRAPH_FORMAT", current)
    fresh = graph_module.onnx_graph(net, "image")
    assert fresh != stale and fresh.read_bytes().startswith(b"\x08")  # a new export (an ONNX protobuf)
    assert graph_module.onnx_graph(net, "image") == fresh  # and this version's file is reused
    if installed("onnxruntime"):  # an engine compiles this version's file, not the stale one
        run = build_runner(net, RunnerSpec("onnxruntime", "fp32", "image", READY, 1))
        x = torch.rand(READY, generator=torch.Generator().manual_seed(1))
        weights = style_weights("great_wave", get_model().style_names)
        with torch.inference_mode():
            expected = net(x, weights).numpy()
        assert np.abs(run(x.numpy(), style_affine(net, weights)) - expected).max() <= 2e-3


def test_zero_shot_stylizer_keeps_autos_measured_choice():
    from multistyle.stylizer import get_stylizer, zero_shot_stylizer

    base = get_stylizer(device="cpu")  # engine "auto": measured, with its quality check
    assert base.choice.reason.startswith("measured")
    shot = zero_shot_stylizer(base, str(STYLES / "starry_night.jpg"), fit=False)
    assert shot.names[-1] != base.names[-1]
    if base.choice.precision == "int8":  # its new row was never checked in int8: auto measures again, without it
        assert shot.choice.precision != "int8" and shot.choice.reason.startswith("measured")
    else:
        assert shot.choice == base.choice
