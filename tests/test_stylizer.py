"""The shipped default model, the stylize API and the model commands (stylize, styles, sheet, export-onnx)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli, run_main
from PIL import Image

import multistyle
from multistyle.errors import ImageError, StyleError
from multistyle.modelfile import PACKAGED_MODEL, default_model_path
from multistyle.styles import parse_style_arg, style_weights
from multistyle.stylizer import get_stylizer, pad_to_multiple

PHOTO = ROOT / "examples" / "tubingen.jpg"


@pytest.fixture(scope="module")
def small_photo():
    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((96, 96))
    return img


def test_default_model_loads_offline_from_package():
    assert default_model_path() == PACKAGED_MODEL and PACKAGED_MODEL.is_file()
    names = get_stylizer(device="cpu").names
    assert len(names) == 13 and "starry_night" in names and "great_wave" in names


def test_every_shipped_style_works(small_photo):
    names = get_stylizer(device="cpu").names
    outputs = [np.asarray(multistyle.stylize(small_photo, style=name, device="cpu")) for name in names]
    assert all(o.shape == (72, 96, 3) and o.dtype == np.uint8 for o in outputs)
    assert len({o.tobytes() for o in outputs}) == len(names)  # each style gives a different picture


def test_input_kinds_and_odd_sizes(small_photo, tmp_path):
    odd = np.array(small_photo.resize((131, 97)))
    out = multistyle.stylize(odd, style=3, device="cpu")
    assert isinstance(out, np.ndarray) and out.shape == (97, 131, 3)
    tensor = torch.from_numpy(odd).permute(2, 0, 1).float() / 255
    t_out = multistyle.stylize(tensor, style="great_wave", device="cpu")
    assert t_out.shape == (3, 97, 131) and t_out.dtype == torch.float32
    assert np.abs(t_out.permute(1, 2, 0).numpy() * 255 - out).max() <= 1.0
    path = tmp_path / "in.png"
    small_photo.save(path)
    as_path = multistyle.stylize(str(path), style="starry_night", device="cpu", max_size=48)
    assert isinstance(as_path, Image.Image) and max(as_path.size) == 48
    batch = multistyle.stylize([small_photo, odd], style=0, device="cpu")
    assert isinstance(batch, list) and np.array_equal(np.asarray(batch[1]), multistyle.stylize(odd, 0, device="cpu"))


def test_exif_orientation_honoured(small_photo, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    small_photo.save(path, exif=exif.tobytes())
    assert multistyle.stylize(str(path), device="cpu").size == (72, 96)


def test_strength_and_mixing(small_photo):
    src = np.asarray(small_photo)
    assert np.array_equal(np.asarray(multistyle.stylize(small_photo, "starry_night", strength=0.0, device="cpu")), src)
    full = np.asarray(multistyle.stylize(small_photo, "starry_night", device="cpu")).astype(float)
    half = np.asarray(multistyle.stylize(small_photo, "starry_night", strength=0.5, device="cpu")).astype(float)
    assert np.abs(half - (src + full) / 2).max() <= 1.0
    one_hot = np.asarray(multistyle.stylize(small_photo, {"starry_night": 1.0, "great_wave": 0.0}, device="cpu"))
    assert np.array_equal(one_hot, full.astype(np.uint8))
    mix = np.asarray(multistyle.stylize(small_photo, {"starry_night": 0.5, "great_wave": 0.5}, device="cpu"))
    assert not np.array_equal(mix, one_hot)


def test_bad_api_input_raises_typed_errors(small_photo):
    with pytest.raises(StyleError, match="did you mean starry_night"):
        multistyle.stylize(small_photo, "stary_night", device="cpu")
    with pytest.raises(StyleError, match="out of range"):
        multistyle.stylize(small_photo, 99, device="cpu")
    for bad in ({"starry_night": -1}, {"starry_night": 0, "udnie": 0}, {"starry_night": float("nan")}):
        with pytest.raises(StyleError):
            multistyle.stylize(small_photo, bad, device="cpu")
    with pytest.raises(StyleError, match="strength"):
        multistyle.stylize(small_photo, 0, strength=2, device="cpu")
    with pytest.raises(ImageError, match="no such file"):
        multistyle.stylize("/nonexistent/photo.jpg", device="cpu")
    assert parse_style_arg("a=0.7,b=0.3") == {"a": 0.7, "b": 0.3}
    assert torch.equal(style_weights("1", ["a", "b"]), torch.tensor([[0.0, 1.0]]))


def test_pad_to_multiple():
    x = torch.rand(1, 3, 5, 7)
    padded, size = pad_to_multiple(x)
    assert padded.shape == (1, 3, 8, 8) and size == (5, 7) and torch.equal(padded[..., :5, :7], x)
    tiny, _ = pad_to_multiple(torch.rand(1, 3, 1, 1))
    assert tiny.shape == (1, 3, 8, 8)


def test_onnx_export_matches_torch(tmp_path):
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    result = run_cli("export-onnx", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    stylizer = get_stylizer(device="cpu", engine="torch")
    for h, w in ((64, 96), (100, 72)):
        x = torch.rand(2, 3, h, w)
        weights = torch.zeros(2, len(stylizer.names))
        weights[0, 3] = 1.0
        weights[1, 0], weights[1, 7] = 0.3, 0.7
        onnx_out = session.run(None, {"image": x.numpy(), "style_weights": weights.numpy()})[0]
        torch_out = stylizer(x, weights)
        assert np.abs(onnx_out - torch_out.numpy()).max() < 1e-4


def test_onnx_export_leaves_the_callers_model_as_it_was(tmp_path):
    from multistyle.export import export_onnx
    from multistyle.modelfile import load_model

    model, _ = load_model(PACKAGED_MODEL)
    model.net.eval().to(torch.bfloat16)
    export_onnx(model, tmp_path / "m.onnx")
    assert not model.net.training and next(model.net.parameters()).dtype == torch.bfloat16
    assert (tmp_path / "m.onnx").stat().st_size > 100_000


def test_cli_stylize_files_folders_stdin_json(tmp_path, small_photo):
    src = tmp_path / "in"
    src.mkdir()
    small_photo.save(src / "a.jpg")
    small_photo.resize((97, 131)).save(src / "b.png")
    one = tmp_path / "one.png"
    r = run_main("stylize", str(src / "a.jpg"), "-s", "starry_night", "-o", str(one))
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(one).size == (96, 72)
    r = run_main("stylize", str(src), "-s", "starry_night=0.7,great_wave=0.3", "-o", str(tmp_path / "out"), "--json",
                 "--strength", "0.8", "--preserve-color")
    assert r.returncode == 0, r.stderr.decode()
    records = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(records) == 2 and Image.open(records[1]["output"]).size == (97, 131)
    r = run_cli("stylize", "-", "-s", "3", "-o", "-", stdin=(src / "b.png").read_bytes())  # the real entry point
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    r = run_main("styles", "--json")
    assert len(json.loads(r.stdout)["styles"]) == 13
    r = run_main("sheet", str(src / "a.jpg"), "-o", str(tmp_path / "sheet.png"), "--tile", "48")
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "sheet.png").size[0] > 48 * 5


