"""multistyle: fast multi-style neural style transfer (conditional instance norm) with a Gatys teacher."""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ImageError,
    ModelFileError,
    MultistyleError,
    StyleError,
    WeightsNotFoundError,
)


def __getattr__(name: str):
    """``multistyle.stylize`` loads the stylizer (and its engines) on first use, so commands that never stylize
    (add-style, train) start ~0.3 s sooner."""
    if name == "stylize":
        from .stylizer import stylize

        return stylize
    raise AttributeError(f"module 'multistyle' has no attribute {name!r}")


__all__ = ["stylize", "MultistyleError", "ImageError", "ModelFileError", "StyleError", "WeightsNotFoundError"]
