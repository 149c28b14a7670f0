"""The CPU-class matrix: the caps each class sets, the table rendered from accumulated cells, and one tiny real
row in a capped subprocess (the full matrix is a benchmark, not a test)."""

from __future__ import annotations

import json

from benchmarks import cpu_matrix


def test_class_environments_cap_only_their_own_isa(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "ONEDNN_MAX_CPU_ISA" not in cpu_matrix.class_env("native")
    assert cpu_matrix.class_env("avx512")["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_VNNI"
    env = cpu_matrix.class_env("avx2")
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"


def test_the_table_has_a_column_per_measured_class_and_ratios_against_legacy():
    cells = {"native": {"legacy": {"pooled": 2.0, "seconds": 330.0, "photos": 53, "measured": "x"},
                        "add-style": {"fast": {"seconds": 28.0, "steps": 190, "precision": "bf16", "pooled": 2.02}},
                        "precision": {"bf16": True, "reason": "native AVX512_BF16", "fp32_ms": 480.0,
                                      "bf16_ms": 295.0, "bf16_vs_fp32": 0.61}},
             "avx2": {"precision": {"error": "boom"}, "live": {"skipped": "no chromium"}}}
    text = cpu_matrix.render_markdown({"machine": {"cpu": "Test CPU"}, "cells": cells})
    assert "| row | native | avx2 |" in text and "Test CPU" in text
    assert "28.0 s, 190 steps, bf16; 1.010× legacy" in text and "480 / 295 (0.61×)" in text
    assert "error" in text and "skipped (no chromium)" in text


def test_a_row_runs_capped_and_accumulates(tmp_path, capsys):
    assert cpu_matrix.main(["--smoke", "--rows", "precision", "--classes", "avx512", "--out-dir", str(tmp_path)]) == 0
    cell = json.loads((tmp_path / "cpu_matrix.json").read_text())["cells"]["avx512"]["precision"]
    assert "error" not in cell and cell["bf16"] is False and cell["fp32_ms"] > 0
    assert "| row | avx512 |" in (tmp_path / "cpu_matrix.md").read_text()
