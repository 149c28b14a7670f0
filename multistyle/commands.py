"""Model commands (filled in by the inference issue)."""


def add_all(sub) -> None:
    """Register the model subcommands."""
