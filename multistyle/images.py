"""Images: safe decoding of files and arrays to RGB float tensors, resizing, listing image files, atomic saving."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .paths import atomic_write

MAX_PIXELS = int(os.environ.get("MULTISTYLE_MAX_PIXELS", 50_000_000))
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                ".tiff": "TIFF"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")  # what folders are read for
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images over white (what people expect a transparent PNG to look like)."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def pil_to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (16-bit, CMYK, palette, grey, alpha) → 8-bit RGB, EXIF orientation applied; a CMYK image with
    an embedded ICC profile is converted through it (the naive formula turns print colours dull)."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "CMYK" and img.info.get("icc_profile"):
        img = _cmyk_via_profile(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img)
    return img.convert("RGB")


def _cmyk_via_profile(img: Image.Image) -> Image.Image:
    """CMYK → sRGB through the image's own ICC profile (unchanged when Pillow has no LittleCMS or it fails)."""
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        return ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - a broken profile: fall back to Pillow's plain conversion
        return img


REDUCE_ABOVE = 8_000_000  # pixels: bigger images are reduced on 8-bit data first (smaller ones: exactly as before)


def reduce_to(img: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink an image of over :data:`REDUCE_ABOVE` pixels by a whole factor (Pillow's box ``reduce``, on 8-bit
    data) while the long side stays ≥ 2 × ``max_side``: a huge photo never becomes a huge float tensor; the exact
    resize follows in float."""
    if max_side and img.width * img.height > REDUCE_ABOVE:
        factor = max(img.size) // (2 * max_side)
        if factor >= 2:
            img = img.reduce(factor)
    return img


def check_pixels(width: int, height: int, label: str, max_pixels: int) -> None:
    """An :class:`ImageError` when a ``width`` × ``height`` image (as its header says) is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageError(f"{label} is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
                         f"{max_pixels / 1e6:.0f} MP limit; downscale it first")


def decode_rgb(source: str | os.PathLike | bytes, label: str, max_pixels: int = MAX_PIXELS,
               max_side: int | None = None) -> Image.Image:
    """Decode a file (path) or its bytes as 8-bit RGB within limits, with one-line errors that name ``label``
    (never a server path the visitor did not give). The size is read from the header and refused over
    ``max_pixels`` before any decoding; with ``max_side``, JPEGs decode at a reduced scale (``Image.draft``) and
    other formats are reduced right after decoding (:func:`reduce_to`)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            check_pixels(img.width, img.height, label, max_pixels)
            img.seek(0)  # animated images: first frame
            if max_side and img.format == "JPEG" and img.width * img.height > REDUCE_ABOVE:
                img.draft(img.mode, (2 * max_side, 2 * max_side))
            img.load()
            return pil_to_rgb(reduce_to(img, max_side))
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{label} has far more pixels than the {max_pixels / 1e6:.0f} MP limit (decompression "
                         "bomb?); downscale it first") from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label} is not an image this tool can read ({exc.__class__.__name__}); "
                         "use a PNG, JPEG, WebP, BMP, TIFF or GIF file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label} is corrupt or truncated ({str(exc).splitlines()[0] if str(exc) else 'no data'}); "
                         "re-export or re-download it") from None


def open_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Open an image file as 8-bit RGB with clear errors; refuses > ``max_pixels`` before decoding (see
    :func:`decode_rgb` for ``max_side``)."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ImageError(f"{path} is a directory; give an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes); give a real image file")
    return decode_rgb(path, str(path), max_pixels, max_side)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image → float tensor [1, 3, H, W] in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_tensor(image: ImageLike, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """A path, PIL image, HxWx3 (or HxW) uint8 array or tensor → float tensor [1, 3, H, W] in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        return pil_to_tensor(open_rgb(image, max_pixels))
    if isinstance(image, Image.Image):
        return pil_to_tensor(pil_to_rgb(image))
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ImageError(f"expected an HxWx3 array, got shape {arr.shape}")
        arr = arr[..., :3]
        scale = 255.0 if arr.dtype == np.uint8 else 1.0
        return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).unsqueeze(0).float() / scale
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[1] != 3:
            raise ImageError(f"expected a [3, H, W] or [B, 3, H, W] tensor, got shape {tuple(image.shape)}")
        return t.float() / 255.0 if image.dtype == torch.uint8 else t.float()
    raise ImageError(f"cannot use a {type(image).__name__} as an image; give a path, PIL image, array or tensor")


def load_image(path: str | os.PathLike, max_size: int | None = None, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Read an image file as [1, 3, H, W] float in [0, 1], downscaled so its long side is ≤ ``max_size`` (a big
    file is reduced on 8-bit data first, so it never becomes a full-size float tensor)."""
    return limit_size(pil_to_tensor(open_rgb(path, max_pixels, max_size)), max_size)


def limit_size(image: torch.Tensor, max_size: int | None) -> torch.Tensor:
    """Downscale [B, 3, H, W] so its long side is at most ``max_size`` (never upscales; None = unchanged)."""
    return resize_long_side(image, max_size) if max_size and max(image.shape[-2:]) > max_size else image


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize [B, 3, H, W] so the longer side equals ``size`` (bilinear, antialiased when shrinking, aspect kept;
    torch's own antialias filter: 4 ms for a 1024 px painting, where kornia's blur-then-resize took 200 ms)."""
    if size < 1:
        raise ImageError(f"size must be a positive number of pixels, not {size}")
    h, w = image.shape[-2:]
    if max(h, w) == size:
        return image
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image, size=new, mode="bilinear", align_corners=False, antialias=size < max(h, w)).clamp(0, 1)


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] (or [3, H, W]) float in [0, 1] → HxWx3 uint8 array."""
    t = image.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    return (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def save_image(image: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save [1, 3, H, W] float in [0, 1] atomically; format from the extension."""
    fmt = SAVE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image extension; use one of {', '.join(sorted(SAVE_FORMATS))}")
    pil = Image.fromarray(tensor_to_uint8(image), "RGB")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, **options))


def list_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files among ``paths`` (folders are listed, sorted, by :data:`IMAGE_SUFFIXES`); a clear
    :class:`ImageError` for a missing path or when there are none."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder")
    if not files:
        raise ImageError(f"no images found in {', '.join(map(str, paths))}")
    return files
