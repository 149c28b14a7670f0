"""The benchmark runner: every headline bench runs (at --smoke size) on every device present, and those that run the
process-wide cached model run again in the same process, without converting it (a bench once made it fp16/CUDA in
place); the studies run when named."""

from __future__ import annotations

import torch

from benchmarks import runner as bench
from benchmarks.kit import HEADLINE
from multistyle.modelfile import get_model
from multistyle.stylizer import get_stylizer


def test_bench_all_then_again_leaves_the_cached_model_alone(tmp_path, capsys):
    model = get_model(None)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    stylizer = get_stylizer(None, "cpu")
    assert bench.main(["all", "--smoke", "--out-dir", str(tmp_path / "0")]) == 0
    again = ["stylize", "api"]  # the benches that run the process-wide cached model, once more
    assert bench.main([*again, "--smoke", "--out-dir", str(tmp_path / "1")]) == 0
    out = capsys.readouterr().out
    assert get_model(None) is model and get_stylizer(None, "cpu") is stylizer
    after = model.net.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype for k in before)
    assert all(v.device.type == "cpu" for v in after.values())
    assert not model.net.training
    # every headline bench printed its table(s), or said why it skipped, each time; the matrix is not among them
    assert out.count("### ") + out.count(": skipped (") >= len(HEADLINE) + len(again)
    assert "cpu-matrix" not in HEADLINE and set(again) <= set(HEADLINE)
    assert (tmp_path / "0" / "bench.json").is_file() and (tmp_path / "1" / "latency.png").is_file()


def test_the_studies_run_when_named(tmp_path, capsys):
    studies = ["add-style", "refine", "train", "best"]  # at full size 25, 1.5, 1 and 3 min: not in `all`'s 10
    assert not set(studies) & set(HEADLINE)
    assert bench.main([*studies, "--smoke", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "### add-style" in out and "### --best" in out and "### Training throughput" in out
    assert "vs classic Gatys" in out
    assert (tmp_path / "add_style_sheet.jpg").is_file()
