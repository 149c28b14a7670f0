"""Webcam app: headless run on the test clip, key handling, flicker reduction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import DATA, ROOT, assert_one_line_error, run_cli
from multistyle.inference import get_stylizer
from multistyle.video import Controls, FrameStylizer, flicker_metric, resize_for_processing

CLIP = DATA / "video" / "bunny.mp4"
WEBCAM = str(ROOT / "apps" / "webcam.py")


def read_frames(count: int, size: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        assert ok
        frames.append(resize_for_processing(frame, size))
    cap.release()
    return frames


def test_headless_run_writes_video(tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli("--source", str(CLIP), "--headless", "--output", str(out), "--max-frames", "12", "--size",
                     "160", "--style", "starry_night", module=WEBCAM)
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


def test_keys_switch_styles_mix_and_flags():
    c = Controls(["a", "b", "c"])
    assert c.handle_key(ord("n")) and c.style == 1
    c.handle_key(ord("p")), c.handle_key(ord("p"))
    assert c.style == 2
    c.handle_key(ord("0"))
    c.handle_key(ord("9"))  # no style 9: ignored
    assert c.style == 0
    c.handle_key(ord("m"))
    assert c.mix_with == 1 and c.weights().tolist() == [[0.5, 0.5, 0.0]]
    c.handle_key(ord("]"))
    assert c.weights()[0, 1].item() == pytest.approx(0.6) and "b 0.6" in c.label()
    c.handle_key(ord("-"))
    assert c.strength == pytest.approx(0.9)
    for key in "cf r":
        c.handle_key(ord(key))
    assert c.preserve_color and not c.flicker and c.recording and c.snapshots == 1
    c.handle_key(ord("m"))
    assert c.weights().tolist() == [[1.0, 0.0, 0.0]]
    assert c.handle_key(-1) and not c.handle_key(ord("q")) and not c.handle_key(27)


def test_flicker_reduction_lowers_flicker_metric():
    frames = read_frames(16, 160)
    stylizer = get_stylizer(device="cpu")
    results = {}
    for flicker in (False, True):
        controls = Controls(stylizer.names, style=stylizer.names.index("starry_night"), flicker=flicker)
        process = FrameStylizer(stylizer, controls, 160)
        results[flicker] = flicker_metric(frames, [process(f)[1] for f in frames])
    assert results[True] < 0.8 * results[False], results


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


def test_flicker_reducer_blends_as_documented():
    """The OpenCV form of the reducer: keep × mask × warped previous output + the rest of the fresh frame,
    rounded; a static scene (zero flow, identical inputs) keeps 70 % of the previous output everywhere."""
    from multistyle.video import FlickerReducer, RunStats

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    first, second = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2))
    expected = 0.7 * first.astype(np.float32) + 0.3 * second.astype(np.float32)
    for flow_side in (None, 32):  # flows and mask at full size, and at half size upsampled
        reducer = FlickerReducer(keep=0.7, flow_side=flow_side)
        assert np.array_equal(reducer(frame, first), first)  # nothing to blend with yet
        out = reducer(frame.copy(), second)
        assert out.shape == second.shape and np.abs(out.astype(np.float32) - expected).max() <= 1.0
    # the pipeline's rate counts from the first frame out: warm-up does not weigh on it
    assert RunStats(frames_out=11, seconds=9.0, first_out=4.0, last_out=6.0).fps == pytest.approx(5.0)
    assert RunStats(frames_out=1, seconds=2.0, first_out=2.0, last_out=2.0).fps == pytest.approx(0.5)
