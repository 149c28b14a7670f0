"""The engine layer: compiled runners equal torch (a mix, an added style row, a zero-shot row) without recompiling,
the measured choice is cached with its reason, and a bad or missing engine is one line, exit 2."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from conftest import STYLES, assert_one_line_error, run_cli

from multistyle.engine import EngineChoice, choose_engine, compiled_runner, installed, style_affine
from multistyle.modelfile import get_model
from multistyle.precision import bf16_autocast_native
from multistyle.styles import style_weights
from multistyle.zero_shot import zero_shot_model

FP32_TOL = 2e-3  # max |engine fp32 - torch| on 0..1 (other conv algorithms, summation order)
BF16_MEAN_TOL = 0.005  # mean |bf16 - torch fp32| on 0..1, the choice's own quality limit (measured ~0.0024)
SHAPE = (1, 3, 32, 48)
# OpenVINO bf16 only where the CPU computes bf16 natively (elsewhere it does not compile: the AVX2 class)
COMPILED = [(e, p) for e, p in (("openvino", "fp32"), ("openvino", "bf16"), ("onnxruntime", "fp32"))
            if installed(e) and (p == "fp32" or bf16_autocast_native("cpu").bf16)]


def _photo() -> np.ndarray:
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(0)).numpy()


def _check(engine: str, precision: str, got: np.ndarray, expected: torch.Tensor) -> None:
    diff = np.abs(got - expected.numpy())
    if precision == "bf16":
        assert diff.mean() <= BF16_MEAN_TOL, diff.mean()
    else:
        assert diff.max() <= FP32_TOL, diff.max()


@pytest.mark.parametrize("engine,precision", COMPILED)
def test_runner_equals_torch_for_a_mix_an_added_row_and_a_zero_shot_row(engine, precision):
    model = get_model()
    net = copy.deepcopy(model.net).eval()
    x = _photo()
    choice = EngineChoice(engine, precision, "test")
    runner = compiled_runner(net, "image", SHAPE, choice)
    mix = style_weights({"udnie": 0.6, "great_wave": 0.4}, model.style_names)
    with torch.inference_mode():
        _check(engine, precision, runner(x, style_affine(net, mix)), net(torch.from_numpy(x), mix))

    grown = copy.deepcopy(net)  # a visitor's added style: one more γ/β row, conv weights unchanged
    grown.append_styles(1, init_from=2)
    with torch.no_grad():
        for norm in grown.norms():
            norm.gamma[-1].mul_(1.3)
            norm.beta[-1].add_(0.1)
    added = torch.zeros(1, grown.num_styles)
    added[0, -1] = 1.0
    assert compiled_runner(grown, "image", SHAPE, choice) is runner  # no new graph for a new row
    with torch.inference_mode():
        _check(engine, precision, runner(x, style_affine(grown, added)), grown(torch.from_numpy(x), added))

    shot = zero_shot_model(model, str(STYLES / "starry_night.jpg"), fit=False).net.eval()
    last = torch.zeros(1, shot.num_styles)
    last[0, -1] = 1.0
    assert compiled_runner(shot, "image", SHAPE, choice) is runner
    with torch.inference_mode():
        _check(engine, precision, runner(x, style_affine(shot, last)), shot(torch.from_numpy(x), last))


@pytest.mark.parametrize("engine,precision", COMPILED[:1])
def test_frame_graph_matches_torch_uint8_path(engine, precision):
    model = get_model()
    net = copy.deepcopy(model.net).eval()
    frame = (_photo()[0].transpose(1, 2, 0) * 255).astype(np.uint8)  # [H, W, 3], taken as BGR
    weights = style_weights("the_scream", model.style_names)
    expected = compiled_runner(net, "frame", frame.shape, EngineChoice("torch", "fp32", "test"))
    got = compiled_runner(net, "frame", frame.shape, EngineChoice(engine, precision, "test"))
    args = (frame, style_affine(net, weights), np.array([0.8], np.float32))
    assert got(*args).dtype == np.uint8
    assert np.abs(got(*args).astype(int) - expected(*args)).max() <= 1


def test_auto_choice_is_measured_once_and_cached_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISTYLE_CACHE", str(tmp_path))
    net = get_model().net.eval()
    first = choose_engine("auto", "cpu", net)
    cache = json.loads((tmp_path / "engine.json").read_text())
    (key, record), = cache.items()
    assert "torch fp32" in record["ms"] and record["mean_diff"]["torch fp32"] == 0
    assert first.reason.startswith("measured") and first.name in first.reason
    for name in record["ms"]:  # the cache is what decides: make torch the fastest and ask again
        record["ms"][name] = 1.0 if name == "torch fp32" else 99.0
    (tmp_path / "engine.json").write_text(json.dumps(cache))
    again = choose_engine("auto", "cpu", net)
    assert again.name == "torch fp32" and "torch fp32 1.0 ms" in again.reason
    assert choose_engine("torch", "cpu", net).engine == "torch"


BLOCKER = '''import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("openvino", "onnxruntime"):
            raise ImportError(f"{name} is blocked for this test")
        return None
sys.meta_path.insert(0, _Blocked())
'''


def test_engine_torch_works_without_the_optional_engines(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    from conftest import ROOT

    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}", "MULTISTYLE_CACHE": str(tmp_path / "cache")}
    photo = str(ROOT / "multistyle" / "assets" / "content" / "kodak_parrots.jpg")
    for engine in ("torch", "auto"):
        result = run_cli("stylize", photo, "--max-size", "64", "-o", str(tmp_path / f"{engine}.png"), "--engine",
                         engine, "-v", env=env)
        assert result.returncode == 0, result.stderr.decode()
        assert "engine: torch fp32" in result.stderr.decode()
    line = assert_one_line_error(run_cli("stylize", photo, "-o", str(tmp_path / "x.png"), "--engine", "openvino",
                                         env=env))
    assert "openvino is not installed" in line


def test_bad_engine_is_one_line_exit_2(tmp_path):
    for command in (["stylize", "x.jpg", "-o", str(tmp_path / "y.png")], ["video", "x.mp4", "-o", "y.mp4"],
                    ["webcam", "--headless", "-o", "y.mp4"]):
        line = assert_one_line_error(run_cli(*command, "--engine", "fastest"))
        assert "auto, torch, openvino, onnxruntime" in line
