"""Training, resume, checkpoints and torchrun DDP, at tiny sizes with the real VGG19."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, STYLES

from multistyle.errors import ModelFileError
from multistyle.images import list_images
from multistyle.modelfile import (
    FORMAT_VERSION,
    PACKAGED_CONTENT,
    load_model,
    save_model,
)
from multistyle.nets import StyleNet
from multistyle.train.loop import TrainConfig, train

STYLE_FILES = [STYLES / "starry_night.jpg", STYLES / "great_wave.jpg"]
TRAIN_SCRIPT = str(ROOT / "train" / "train.py")


def rewrite_metadata(path, **changes) -> None:
    """Change fields of a model file's JSON metadata, keeping its tensors."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["multistyle"])
    save_file(load_file(str(path)), str(path), metadata={"multistyle": json.dumps({**meta, **changes})})


def tiny_config(steps: int, **kw) -> TrainConfig:
    base = dict(size=32, batch=2, steps=steps, lr=5e-3, width=0.25, style_size=64, workers=0,
                checkpoint_every=2, sample_every=1000)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    train(list_images([PACKAGED_CONTENT]), STYLE_FILES, out, tiny_config(4), torch.device("cpu"), log=lambda s: None)
    return out


def test_training_lowers_loss(tmp_path):
    seen = []
    config = tiny_config(40, lr=2e-2, size=48, batch=4, checkpoint_every=40)
    train(list_images([PACKAGED_CONTENT]), STYLE_FILES[:1], tmp_path / "m.safetensors", config,
          torch.device("cpu"), progress=lambda i, n, rec: seen.append(rec["total"]))
    assert len(seen) == 40
    first, last = sum(seen[:5]) / 5, sum(seen[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert (tmp_path / "m.samples.png").is_file() and (tmp_path / "m.loss.png").is_file()


def test_resume_continues_exactly(tmp_path):
    files = list_images([PACKAGED_CONTENT])
    straight, split = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    train(files, STYLE_FILES, straight, tiny_config(4), torch.device("cpu"))
    train(files, STYLE_FILES, split, tiny_config(2), torch.device("cpu"))
    train(files, STYLE_FILES, split, tiny_config(4), torch.device("cpu"), resume=True)
    a, _ = load_model(straight)
    b, _ = load_model(split)
    for (name, pa), pb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert b.extra["step"] == 4


def test_torchrun_two_cpu_processes_agree(tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", TRAIN_SCRIPT,
           "--content-dir", str(PACKAGED_CONTENT), "--styles", *map(str, STYLE_FILES), "--out", str(out),
           "--size", "32", "--style-size", "64", "--batch", "2", "--steps", "3", "--width", "0.25",
           "--workers", "0", "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    text = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, text
    sums = re.findall(r"rank (\d) done: 3 steps.*?checksum ([-0-9.]+e[-+]\d+)", text)
    assert sorted(r for r, _ in sums) == ["0", "1"], text
    assert sums[0][1] == sums[1][1]
    assert load_model(out)[0].style_names == ["starry_night", "great_wave"]


def test_checkpoint_round_trip_and_bad_files(tiny_model, tmp_path):
    model, _ = load_model(tiny_model)
    assert model.style_names == ["starry_night", "great_wave"]
    assert model.styles[0].thumbnail.dtype == torch.uint8 and model.styles[0].thumbnail.shape[-1] == 3
    assert model.loss["style_weight"] > 0
    copy = tmp_path / "copy.safetensors"
    save_model(model, copy)
    again, _ = load_model(copy)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model.net(x, torch.tensor([1])), again.net(x, torch.tensor([1])))

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_model.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(truncated)
    pickle_file = tmp_path / "model.pth"
    torch.save({"a": torch.zeros(1)}, pickle_file)
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_model(pickle_file)
    from multistyle.modelfile import ModelFile
    from multistyle.nets import StyleNet

    wide = ModelFile(StyleNet(2, 0.5), model.styles, model.loss)
    wrong = tmp_path / "wrong.safetensors"
    save_model(wide, wrong)
    rewrite_metadata(wrong, width=0.25)
    with pytest.raises(ModelFileError, match="has shape"):
        load_model(wrong)
    newer = tmp_path / "newer.safetensors"
    shutil.copy(tiny_model, newer)
    rewrite_metadata(newer, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(newer)
    assert FORMAT_VERSION == 1


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_mixed_precision_training_step_is_finite_and_learns(amp, tmp_path):
    """Under autocast the Gram matrices of Caffe-scale VGG features (raw sums 1e6–5e8) must not overflow
    float16: the losses stay finite and the optimiser really moves the weights (a skipped step would not)."""
    seen = []
    config = tiny_config(2, size=64, style_size=128, amp=amp, checkpoint_every=100)
    model = train(list_images([PACKAGED_CONTENT]), STYLE_FILES[:1], tmp_path / "amp.safetensors", config,
                  torch.device("cpu"), progress=lambda i, n, rec: seen.append(rec), log=lambda s: None)
    assert len(seen) == 2
    assert all(math.isfinite(r[k]) for r in seen for k in ("content", "style", "tv", "total")), seen
    assert seen[0]["style"] > 1.0  # real Caffe-scale losses, not a degenerate zero
    torch.manual_seed(config.seed)
    untrained = StyleNet(1, config.width)
    changed = [name for (name, a), b in zip(model.net.state_dict().items(), untrained.state_dict().values())
               if not torch.equal(a, b)]
    assert any("conv.weight" in name for name in changed), changed


def test_gram_matrix_is_float32_under_float16_autocast(tubingen, loss_net):
    from multistyle.loss import gram_matrix

    with torch.autocast("cpu", dtype=torch.float16):
        feats = loss_net.vgg(tubingen, ["relu2_1"])["relu2_1"]
        gram = gram_matrix(feats)
    assert feats.dtype == torch.float16 and gram.dtype == torch.float32
    assert torch.isfinite(gram).all()
    assert torch.allclose(gram, gram_matrix(feats.float()))


def test_resume_keeps_adam_step_counters_on_the_cpu(tiny_model):
    """Resuming onto another device moves Adam's moments there but keeps its ``step`` counters on the CPU
    (on CUDA, step tensors on the GPU cost one synchronisation per parameter per step). The "meta" device
    stands in for a GPU on a CPU-only machine."""
    from multistyle.train.loop import resume_state, state_path

    state = state_path(tiny_model)
    assert state.is_file()
    net = StyleNet(2, 0.25).to("meta")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    step, history = resume_state(state, net, optimizer, ["starry_night", "great_wave"])
    assert step == 4 and len(history) == 4
    entries = [optimizer.state[p] for p in net.parameters()]
    assert len(entries) == len(list(net.parameters()))
    assert all(e["step"].device.type == "cpu" for e in entries)
    assert all(e["exp_avg"].device.type == "meta" and e["exp_avg_sq"].device.type == "meta" for e in entries)
    with pytest.raises(Exception, match="other styles"):
        resume_state(state, StyleNet(2, 0.25), torch.optim.Adam(StyleNet(2, 0.25).parameters()), ["a", "b"])


def test_resuming_a_finished_run_reports_its_real_step(tmp_path):
    files = list_images([PACKAGED_CONTENT])
    out = tmp_path / "done.safetensors"
    assert train(files, STYLE_FILES, out, tiny_config(2), torch.device("cpu")).extra["step"] == 2
    again = train(files, STYLE_FILES, out, tiny_config(2), torch.device("cpu"), resume=True)
    assert again.extra["step"] == 2


def test_finish_distributed_leaves_the_process_group(tmp_path):
    """After training under torchrun every rank waits for the others and leaves the group (no leaked group)."""
    import torch.distributed as dist

    from multistyle.train.loop import DistInfo, finish_distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    finish_distributed(DistInfo(rank=0, world=2, local_rank=0))
    assert not dist.is_initialized()
    finish_distributed(DistInfo())  # without torchrun: nothing to do
