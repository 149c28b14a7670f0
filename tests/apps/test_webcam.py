"""The webcam app: the style-weight vector as the key state, the HUD, headless runs, bad sources."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA, ROOT, assert_one_line_error, run_cli

from multistyle.apps.webcam import SCALE_STEPS, Controls, draw_hud

CLIP = DATA / "video" / "bunny.mp4"
WEBCAM = str(ROOT / "apps" / "webcam.py")


def test_keys_switch_styles_mix_and_flags():
    c = Controls.for_style(["a", "b", "c"])
    assert c.handle_key(ord("n")) and c.anchor == 1 and c.weights.tolist() == [[0.0, 1.0, 0.0]]
    c.handle_key(ord("p")), c.handle_key(ord("p"))
    assert c.anchor == 2
    c.handle_key(ord("0"))
    c.handle_key(ord("9"))  # no style 9: ignored
    assert c.anchor == 0 and c.label() == "a"
    c.handle_key(ord("m"))
    assert c.weights.tolist() == [[0.5, 0.5, 0.0]]
    c.handle_key(ord("]"))
    assert c.weights[0, 1].item() == pytest.approx(0.6) and "b 0.6" in c.label()
    c.handle_key(ord("-"))
    assert c.strength == pytest.approx(0.9)
    for key in "cf r":
        c.handle_key(ord(key))
    assert c.preserve_color and not c.flicker and c.recording and c.snapshots == 1
    c.handle_key(ord("m"))
    assert c.weights.tolist() == [[1.0, 0.0, 0.0]]
    assert c.handle_key(-1) and not c.handle_key(ord("q")) and not c.handle_key(27)


def test_a_three_style_mix_is_kept_and_edited_as_a_whole():
    """`-s a=0.5,b=0.3,c=0.2` runs exactly that mix (it once ran a=0.7, b=0.3), and [ / ] keep the others'
    proportions while moving weight to or from the anchor."""
    c = Controls.for_style(["a", "b", "c"], {"a": 0.5, "b": 0.3, "c": 0.2})
    assert torch.allclose(c.weights, torch.tensor([[0.5, 0.3, 0.2]]))
    assert c.anchor == 0 and c.label() == "a 0.5 + b 0.3 + c 0.2"
    c.handle_key(ord("]"))  # 0.1 away from a, shared 3:2 by b and c
    assert torch.allclose(c.weights, torch.tensor([[0.4, 0.36, 0.24]]))
    c.handle_key(ord("[")), c.handle_key(ord("["))
    assert torch.allclose(c.weights, torch.tensor([[0.6, 0.24, 0.16]]))
    assert c.weights.sum().item() == pytest.approx(1.0)


def test_scale_keys_step_through_scales_and_show_in_the_hud():
    c = Controls.for_style(["a", "b"])
    c.handle_key(ord(","))
    assert c.scale == 0.7
    for _ in range(10):
        c.handle_key(ord(","))
    assert c.scale == SCALE_STEPS[0]
    c.handle_key(ord("."))
    assert c.scale == SCALE_STEPS[1]
    for _ in range(10):
        c.handle_key(ord("."))
    assert c.scale == SCALE_STEPS[-1]
    blank = np.zeros((120, 640, 3), np.uint8)
    with_hud = draw_hud(blank.copy(), c, 10.0, "cpu")
    c.scale = 0.5
    assert not np.array_equal(draw_hud(blank.copy(), c, 10.0, "cpu"), with_hud)  # the scale is drawn


def test_headless_run_writes_video(tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli("--source", str(CLIP), "--headless", "--output", str(out), "--max-frames", "12", "--size",
                     "160", "--style", "starry_night=0.5,udnie=0.3,great_wave=0.2", module=WEBCAM)
    assert result.returncode == 0, result.stderr.decode()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160, 88)
    assert "12 frames" in result.stdout.decode()


def test_webcam_bad_sources(tmp_path):
    line = assert_one_line_error(run_cli("--source", "7", "--headless", "--output", str(tmp_path / "o.mp4"),
                                         module=WEBCAM))
    assert "cannot open camera 7" in line and "--source" in line
    line = assert_one_line_error(run_cli("--source", str(tmp_path / "none.mp4"), "--headless", "--output",
                                         str(tmp_path / "o.mp4"), module=WEBCAM))
    assert "not found" in line
    assert "--output" in assert_one_line_error(run_cli("--headless", module=WEBCAM))


def test_multistyle_webcam_subcommand_takes_short_options(tmp_path):
    """`multistyle webcam` is the same app as apps/webcam.py, with -s/--style and -o/--output like the others."""
    out = tmp_path / "sub.mp4"
    result = run_cli("webcam", "--source", str(CLIP), "--headless", "-o", str(out), "--max-frames", "5", "--size",
                     "96", "-s", "udnie", "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    helps = run_cli("--help").stdout.decode()
    assert "webcam" in helps and "demo" in helps and "video" in helps
    demo_help = run_cli("demo", "--help").stdout.decode()
    assert "--port" in demo_help and "--model" in demo_help and "--device" in demo_help
