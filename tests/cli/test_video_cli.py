"""``multistyle video`` and the stylize command's --scale / --refine, run like a user would."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
from conftest import DATA, ROOT, assert_one_line_error, run_cli
from PIL import Image

from multistyle.modelfile import PACKAGED_MODEL, load_model, save_model
from multistyle.refine import NO_PAINTINGS

CLIP = DATA / "video" / "bunny.mp4"
PHOTO = ROOT / "examples" / "tubingen.jpg"


def probe(path) -> tuple[int, float, int, int]:
    cap = cv2.VideoCapture(str(path))
    info = (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return info


def test_video_keeps_frame_count_and_rate(tmp_path):
    out = tmp_path / "styled.mp4"
    result = run_cli("video", str(CLIP), "-s", "udnie", "-o", str(out), "--max-frames", "7", "--max-size", "96",
                     "--scale", "0.5")
    assert result.returncode == 0, result.stderr.decode()
    frames, fps, width, height = probe(out)
    assert (frames, width, height) == (7, 96, 52)
    assert fps == probe(CLIP)[1] == 24.0
    assert "7 frames" in result.stdout.decode() and not list(tmp_path.glob(".*partial*"))
    cap = cv2.VideoCapture(str(out))
    ok, first = cap.read()
    assert ok and first.std() > 5  # a picture, not a blank frame


def test_video_refuses_to_overwrite_its_input_and_reports_bad_files(tmp_path):
    clip = tmp_path / "clip.mp4"
    shutil.copy(CLIP, clip)
    before = clip.read_bytes()
    line = assert_one_line_error(run_cli("video", str(clip), "-o", str(tmp_path / "." / "clip.mp4")))
    assert "refusing to overwrite" in line and clip.read_bytes() == before
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    line = assert_one_line_error(run_cli("video", str(text), "-o", str(tmp_path / "o.mp4")))
    assert "not a video file this tool can read" in line and "notes.mp4" in line
    assert "no such video file" in assert_one_line_error(run_cli("video", str(tmp_path / "none.mp4"), "-o",
                                                                 str(tmp_path / "o.mp4")))
    assert ".mp4" in assert_one_line_error(run_cli("video", str(clip), "-o", str(tmp_path / "o.gif")))
    assert not (tmp_path / "o.mp4").exists()


def test_stylize_cli_scale_and_refine(tmp_path):
    outs = {name: tmp_path / f"{name}.png" for name in ("plain", "half", "refined")}
    for name, extra in (("plain", []), ("half", ["--scale", "0.5"]), ("refined", ["--refine", "3"])):
        result = run_cli("stylize", str(PHOTO), "-s", "great_wave", "--max-size", "64", "-o", str(outs[name]), *extra)
        assert result.returncode == 0, result.stderr.decode()
    images = {name: np.asarray(Image.open(path), dtype=np.int16) for name, path in outs.items()}
    assert images["plain"].shape == images["half"].shape == images["refined"].shape == (48, 64, 3)
    assert np.abs(images["half"] - images["plain"]).mean() > 5
    assert np.abs(images["refined"] - images["plain"]).mean() > 1
    assert "scale must be" in assert_one_line_error(run_cli("stylize", str(PHOTO), "--scale", "9", "-o",
                                                            str(tmp_path / "x.png")))
    model, _ = load_model(PACKAGED_MODEL)
    for style in model.styles:
        style.painting = None
    old = save_model(model, tmp_path / "old.safetensors")
    line = assert_one_line_error(run_cli("stylize", str(PHOTO), "--refine", "2", "--model", str(old), "-o",
                                         str(tmp_path / "x.png")))
    assert NO_PAINTINGS in line and not (tmp_path / "x.png").exists()
