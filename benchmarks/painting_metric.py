"""The independent VGG-Gram metric the new-painting bench scores with (style ↓, content ↓), and the painting
colour distance. Independent of the model's own loss (layer weights, Gram normalisation, content layer ``relu4_2``):

* style: VGG19 with max pooling (the model trains with average pooling), the mean over ``relu1_1 … relu5_1`` of
  ``‖G(out) − G(painting)‖_F / ‖G(painting)‖_F``, the painting at the output's long side;
* content: VGG19 with average pooling, ``‖F(out) − F(photo)‖² / ‖F(photo)‖²`` at ``relu4_1``;
* colour: the distance of the output's mean CIELAB colour from the painting's (ΔE of the means)."""

from __future__ import annotations

from functools import lru_cache

import torch

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_1"


@lru_cache(maxsize=2)
def _vgg(pooling: str):
    from multistyle.loss.vgg import VGG19Features

    return VGG19Features(STYLE_LAYERS if pooling == "max" else (CONTENT_LAYER,), pooling=pooling)


def _gram(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    f = x.float().reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


class PaintingMetric:
    """Scores of stylized images against one painting (its Grams computed once, at ``size`` px)."""

    def __init__(self, painting: torch.Tensor, size: int) -> None:
        from multistyle.images import resize_long_side

        painting = resize_long_side(painting.float(), size)
        with torch.no_grad():
            feats = _vgg("max")(painting)
        self.grams = {k: _gram(v) for k, v in feats.items()}
        self.lab = _mean_lab(painting)

    @torch.no_grad()
    def __call__(self, out: torch.Tensor, photo: torch.Tensor) -> dict[str, float]:
        """{"style", "content", "colour"} of ``out`` (the stylized ``photo``, both [1, 3, H, W] in [0, 1])."""
        out = out.float().clamp(0, 1)
        feats = _vgg("max")(out)
        style = sum(float((_gram(feats[k]) - g).norm() / g.norm()) for k, g in self.grams.items()) / len(self.grams)
        now, ref = _vgg("avg")(out)[CONTENT_LAYER], _vgg("avg")(photo.float())[CONTENT_LAYER]
        content = float((now - ref).square().sum() / ref.square().sum())
        return {"style": style, "content": content, "colour": float((_mean_lab(out) - self.lab).norm())}


def _mean_lab(image: torch.Tensor) -> torch.Tensor:
    import kornia

    return kornia.color.rgb_to_lab(image.float().clamp(0, 1)).mean((0, 2, 3))
