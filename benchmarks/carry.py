"""Pack what a lent GPU machine needs beside the checkout (it has torch but no kornia and no internet, and only
64 MiB travel with the working tree): wheels for the missing packages, the VGG19 layers the loss uses as fp16
safetensors (the 80 MB h5 would not fit), the paintings, the bench photos and clip, and the training photos
downscaled. Its layout mirrors ``../shared/data`` so ``MULTISTYLE_DATA`` / ``MULTISTYLE_TEST_DATA`` can point at it.

``python -m benchmarks.carry [FOLDER]`` (default ``carry/``, which git ignores); MODEL.md's GPU checklist says how
the device commands use it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from multistyle.cli.common import Parser, positive_int, run_guarded

from .kit import HELD_OUT

WHEELS = ("kornia", "kornia_rs")  # what the device image lacks (it has torch, opencv, matplotlib, safetensors, tqdm)


def pack_wheels(folder: Path, python_version: str = "3.12") -> list[Path]:
    """Download wheels of :data:`WHEELS` for the device's Python (binary, manylinux x86_64, no dependencies)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", python_version, "--platform", "manylinux2014_x86_64",
                    "--platform", "manylinux_2_17_x86_64", "-d", str(folder), *WHEELS], check=True, timeout=600)
    return sorted(folder.glob("*.whl"))


def pack_vgg(path: Path) -> Path:
    """The VGG19 convs up to the deepest layer the default loss uses, as fp16 safetensors (about 26 MB)."""
    import torch

    from multistyle.loss import LossConfig
    from multistyle.loss.vgg import resolve_weights, save_weights

    return save_weights(resolve_weights(), path, layers=LossConfig().all_layers, dtype=torch.float16)


def pack_images(source: Path, folder: Path, short_side: int | None = None, quality: int = 85,
                names: tuple[str, ...] | None = None) -> int:
    """Copy the images of ``source`` (only ``names`` if given) into ``folder``: byte for byte, or downscaled so the
    short side is at most ``short_side`` (JPEG)."""
    import shutil

    from multistyle.images import list_images, open_rgb

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for f in list_images([source]):
        if names is not None and f.name not in names:
            continue
        if not short_side:
            shutil.copy2(f, folder / f.name)
            count += 1
            continue
        img = open_rgb(f)
        if min(img.size) > short_side:
            scale = short_side / min(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)))
        img.save(folder / (f.stem + ".jpg"), quality=quality)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m benchmarks.carry", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default="carry", help="where to pack (default carry/, git-ignored)")
    p.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"),
                   help="the shared data folder holding styles/ and train/ (default ../shared/data)")
    p.add_argument("--photo-size", type=positive_int, default=256,
                   help="short side of the packed training photos (default 256, the scale training crops from)")
    args = p.parse_args(argv)

    def job() -> int:
        out, data = Path(args.folder), Path(args.data)
        wheels = pack_wheels(out / "wheels")
        vgg = pack_vgg(out / "vgg19_fp16.safetensors")
        styles = pack_images(data / "styles", out / "styles")
        pack_images(data / "content", out / "content", names=HELD_OUT)  # the photos the quality benches judge on
        shutil.copytree(data / "video", out / "video", dirs_exist_ok=True)  # bunny.mp4 for the webcam bench
        photos = pack_images(data / "train", out / "train", args.photo_size, quality=80)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
        print(f"{out}: {len(wheels)} wheels, {vgg.name}, {styles} paintings, {photos} training photos, bench photos "
              f"and clip; {size:.1f} MiB "
              "(the working tree and carried paths may total 64 MiB)")
        return 0

    return run_guarded(job)


if __name__ == "__main__":
    sys.exit(main())
