"""multistyle: fast multi-style neural style transfer (conditional instance norm) with a Gatys teacher."""

__version__ = "0.1.0"

from .errors import ImageError, ModelFileError, MultistyleError, StyleError, WeightsNotFoundError  # noqa: E402
from .inference import stylize  # noqa: E402

__all__ = ["stylize", "MultistyleError", "ImageError", "ModelFileError", "StyleError", "WeightsNotFoundError"]
