"""multistyle: fast multi-style neural style transfer."""

__version__ = "0.1.0"
