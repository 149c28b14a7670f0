"""multistyle: fast multi-style neural style transfer (conditional instance norm) with a Gatys teacher."""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ImageError,
    ModelFileError,
    MultistyleError,
    StyleError,
    WeightsNotFoundError,
)
from .stylizer import stylize  # noqa: E402

__all__ = ["stylize", "MultistyleError", "ImageError", "ModelFileError", "StyleError", "WeightsNotFoundError"]
