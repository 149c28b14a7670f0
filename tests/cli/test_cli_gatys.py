"""`multistyle gatys` end to end, and its handling of bad input."""

from __future__ import annotations

from conftest import ROOT, STYLES, assert_one_line_error, run_cli, run_main
from PIL import Image

CONTENT = str(ROOT / "examples" / "tubingen.jpg")
STYLE = str(STYLES / "starry_night.jpg")


def test_gatys_cli_writes_image(tmp_path):
    out = tmp_path / "out.png"
    result = run_cli("gatys", CONTENT, STYLE, "-o", str(out), "--size", "64", "--steps", "4")
    assert result.returncode == 0, result.stderr.decode()
    with Image.open(out) as img:
        assert img.size == (64, 48) and img.mode == "RGB"
    summary = result.stdout.decode().strip().splitlines()[-1]
    assert "content" in summary and "style" in summary and str(out) in summary


def test_gatys_cli_two_styles_preserve_color(tmp_path):
    out = tmp_path / "out.jpg"
    result = run_cli("gatys", CONTENT, STYLE, str(STYLES / "great_wave.jpg"), "--style-weights", "2", "1",
                     "-o", str(out), "--size", "48", "--steps", "2", "--preserve-color", "--optimizer", "adam")
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(out).size == (48, 36)


def test_gatys_cli_bad_input(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    out = str(tmp_path / "o.png")
    cases = [
        (("gatys", str(tmp_path / "missing.jpg"), STYLE, "-o", out), "no such file"),
        (("gatys", str(text), STYLE, "-o", out), "not an image"),
        (("gatys", CONTENT, str(empty), "-o", out), "empty"),
        (("gatys", CONTENT, str(tmp_path), "-o", out), "directory"),
        (("gatys", CONTENT, STYLE, "-o", out, "--optimizer", "sgd"), "invalid choice"),
        (("gatys", CONTENT, STYLE, "-o", out, "--steps", "0"), ">= 1"),
        (("gatys", CONTENT, STYLE, "-o", out, "--size", "abc"), "whole number"),
        (("gatys", CONTENT, STYLE, "-o", out, "--noise-ratio", "2"), "between 0 and 1"),
        (("gatys", CONTENT, STYLE, "-o", out, "--style-weights", "1", "1"), "one weight per style"),
        (("gatys", CONTENT, STYLE, "-o", str(tmp_path / "o.xyz")), "unknown image extension"),
        (("gatys", CONTENT, STYLE, "-o", out, "--init", "nowhere.png"), "--init"),
    ]
    for k, (args, expected) in enumerate(cases):
        run = run_cli if k == 0 else run_main  # one real subprocess, the rest in process
        line = assert_one_line_error(run(*args, "--steps", "1") if "--steps" not in args else run(*args))
        assert expected in line, (args, line)
    assert not (tmp_path / "o.png").exists()


def test_gatys_with_a_style_stored_in_the_model(tmp_path):
    """-s picks the painting stored in the model file: same loss target as passing that painting's file."""
    out = tmp_path / "stored.png"
    result = run_cli("gatys", str(ROOT / "examples" / "tubingen.jpg"), "-s", "udnie", "-o", str(out), "--size", "48",
                     "--steps", "3", "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(out).size == (48, 36)
    both = run_cli("gatys", str(ROOT / "examples" / "tubingen.jpg"), str(STYLES / "udnie.jpg"), "-s", "udnie", "-o",
                   str(out))
    assert "not both" in assert_one_line_error(both)
    unknown = run_cli("gatys", str(ROOT / "examples" / "tubingen.jpg"), "-s", "udnee", "-o", str(out))
    assert "did you mean udnie" in assert_one_line_error(unknown)


def test_gatys_default_start_is_the_photo_and_network_start_still_works(tmp_path):
    """Classic Gatys by default: the same picture as ``--init content``, another one from ``--init network``."""
    import numpy as np

    outs = {}
    for label, extra in (("default", ()), ("content", ("--init", "content")), ("network", ("--init", "network"))):
        outs[label] = tmp_path / f"{label}.png"
        run = run_cli if label == "network" else run_main  # one real subprocess, the rest in process
        result = run("gatys", CONTENT, STYLE, "-o", str(outs[label]), "--size", "48", "--steps", "2",
                      "--device", "cpu", *extra)
        assert result.returncode == 0, result.stderr.decode()
    pixels = {k: np.asarray(Image.open(v), dtype=np.int16) for k, v in outs.items()}
    assert np.array_equal(pixels["default"], pixels["content"])
    assert pixels["network"].shape == pixels["default"].shape
    assert np.abs(pixels["network"] - pixels["default"]).mean() > 1.0
    help_text = run_main("gatys", "--help").stdout.decode()
    assert "stylize --best" in " ".join(help_text.split())
