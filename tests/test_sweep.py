"""`multistyle sweep`: a 2×2 grid at tiny size, resumable."""

from __future__ import annotations

import csv
import json

from conftest import ROOT, STYLES, assert_one_line_error, run_cli, run_main
from PIL import Image

ARGS = [str(ROOT / "examples" / "chelsea_cat.jpg"), str(STYLES / "great_wave.jpg")]


def test_sweep_grid_outputs_and_resume(tmp_path):
    out = tmp_path / "sweep"
    cmd = ["sweep", *ARGS, "--param", "style-weight=10,1000", "--param", "noise-ratio=0,0.6", "-o", str(out),
           "--size", "48", "--steps", "3"]
    first = run_cli(*cmd)
    assert first.returncode == 0, first.stderr.decode()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and {r["style-weight"] for r in rows} == {"10", "1000"}
    assert float(rows[0]["style"]) < float(rows[2]["style"])  # weight 10 vs 1000 on the weighted style term
    sheet = Image.open(out / "sheet.png")
    assert sheet.size[0] > 2 * 48 and (out / "losses.png").is_file()
    data = json.loads((out / "results.json").read_text())
    assert len(data["cells"]) == 4 and all(len(c["curve"]) == 3 for c in data["cells"])
    stamp = (out / "cells").stat().st_mtime_ns
    images = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    again = run_main(*cmd)  # in process: the first run was the real command
    assert again.returncode == 0 and (again.stdout + again.stderr).decode().count("skipped") == 4
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == images
    assert (out / "cells").stat().st_mtime_ns == stamp


def test_sweep_loss_net_and_bad_params(tmp_path):
    out = tmp_path / "nets"
    r = run_cli("sweep", *ARGS, "--param", "loss-net=vgg19,efficientnet_lite0", "-o", str(out), "--size", "48",
                "--steps", "2")
    assert r.returncode == 0, r.stderr.decode()
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 2
    assert "NAME=V1,V2" in assert_one_line_error(run_main("sweep", *ARGS, "--param", "colour=1,2", "-o", str(out)))
    assert "not a valid value" in assert_one_line_error(run_main("sweep", *ARGS, "--param", "seed=a", "-o", str(out)))


def test_sweep_with_a_style_stored_in_the_model(tmp_path):
    result = run_cli("sweep", str(ROOT / "examples" / "tubingen.jpg"), "-s", "udnie", "--param", "style-weight=30,3000",
                     "--size", "32", "--steps", "2", "-o", str(tmp_path / "sw"), "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    cells = json.loads((tmp_path / "sw" / "results.json").read_text())["cells"]
    assert len(cells) == 2 and cells[0]["style"] != cells[1]["style"]  # the stored painting is a real target
    mixed = run_main("sweep", str(ROOT / "examples" / "tubingen.jpg"), "-s", "udnie=0.5,great_wave=0.5", "--param",
                     "style-weight=30", "-o", str(tmp_path / "sw2"))
    assert "one style" in assert_one_line_error(mixed)
