"""Labelled contact sheets (a grid of image tiles with captions), drawn with OpenCV."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from .images import tensor_to_uint8


def contact_sheet(tiles: Sequence[tuple[str, torch.Tensor]], columns: int = 5, caption: int = 22,
                  gap: int = 6) -> torch.Tensor:
    """Grid of (label, [1, 3, H, W] image) tiles, each with its label under it → [1, 3, H', W'] in [0, 1]."""
    if not tiles:
        raise ValueError("no tiles")
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    th = max(t.shape[-2] for _, t in tiles)
    tw = max(t.shape[-1] for _, t in tiles)
    sheet = np.full((rows * (th + caption + gap) + gap, columns * (tw + gap) + gap, 3), 255, np.uint8)
    for k, (label, image) in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (th + caption + gap), gap + c * (tw + gap)
        arr = tensor_to_uint8(image)
        sheet[y:y + arr.shape[0], x:x + arr.shape[1]] = arr
        text, scale = label, 0.5
        while cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > tw - 4:
            if scale > 0.34:
                scale -= 0.02  # shrink the font first, then shorten the label
            else:
                text = text[:-2] + "."
        cv2.putText(sheet, text, (x + 2, y + th + caption - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1,
                    cv2.LINE_AA)
    return torch.from_numpy(sheet).permute(2, 0, 1).unsqueeze(0).float() / 255.0
