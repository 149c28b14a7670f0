"""Shared command-line helpers: argparse with one-line errors, guarded runs, progress bars, typed options.

Every command module (``cli``, ``commands``, ``sweep``, ``apps/``, ``train/``) imports from here; this module
imports nothing of the package at module level but the error types, so it can never be part of an import cycle.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..errors import MultistyleError


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def fail(message: str, code: int = 2) -> int:
    """Print a one-line error to stderr and return the exit code."""
    sys.stderr.write(f"error: {message}\n")
    return code


def run_guarded(job: Callable[[], int]) -> int:
    """Run ``job``; expected failures become a one-line error and exit code 2, Ctrl-C exit code 130."""
    try:
        return job()
    except (MultistyleError, ValueError) as exc:
        return fail(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    except FileNotFoundError as exc:
        return fail(f"{exc.filename}: no such file or folder")
    except PermissionError as exc:
        return fail(f"{exc.filename}: permission denied; choose another location")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except (OSError, RuntimeError) as exc:  # disk full, out of memory, ...: still one line, no traceback
        message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return fail(f"{exc.__class__.__name__}: {message}", code=1)


def tqdm_progress(total: int, desc: str):
    """A tqdm bar and a progress callback ``(step, total, losses)`` that advances it (``total`` may change)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, disable=None)
    shown = {"n": 0}

    def progress(step: int, now_total: int, record: dict) -> None:
        if now_total != bar.total:  # a run that a time budget ends early says so as it goes
            bar.total = now_total
        bar.update(step - shown["n"] if shown["n"] else step - bar.n)
        shown["n"] = step
        bar.set_postfix({k: f"{record[k]:.3g}" for k in ("content", "style", "tv") if k in record}, refresh=False)

    return bar, progress


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _finite_float(text: str, positive: bool) -> float:
    """argparse type: a finite number, > 0 (``positive``) or >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not ((value > 0 if positive else value >= 0) and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number {'>' if positive else '>='} 0")
    return value


def nonneg_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _finite_float(text, positive=False)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _finite_float(text, positive=True)


def model_options(p: argparse.ArgumentParser) -> None:
    """``--model`` and ``--device``, the same on every command that runs a model."""
    p.add_argument("--model", help="model file, or v1 / v2 for a packaged model (default: your extended model if "
                                   "add_style made one, else the packaged v2; env MULTISTYLE_MODEL overrides)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")


def style_option(p: argparse.ArgumentParser, default: str = "0") -> None:
    """``-s/--style``: a name, an index or a mix, the same on every command that picks a style."""
    p.add_argument("-s", "--style", default=default,
                   help="style name or index, or a mix like starry_night=0.7,great_wave=0.3 (default: style 0)")


def engine_name(text: str) -> str:
    """argparse type of ``--engine``: one of :data:`multistyle.engine.CHOICES`, installed here (one-line error)."""
    from ..engine import check_engine

    try:
        return check_engine(text)
    except MultistyleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_engine_argument(p: argparse.ArgumentParser, verbose: bool = True) -> None:
    """``--engine {auto,torch,...}`` (:data:`multistyle.engine.CHOICES`; and, with ``verbose``, ``-v/--verbose`` to
    print the engine, precision and reason), the same on every command that runs the fast network."""
    from ..engine import CHOICES

    p.add_argument("--engine", type=engine_name, default="auto", metavar="{" + ",".join(CHOICES) + "}",
                   help="what runs the network: auto (default: the engine and precision measured fastest on this "
                        "machine without changing the picture, measured once and cached) or one of "
                        + ", ".join(CHOICES[1:]))
    if verbose:
        p.add_argument("-v", "--verbose", action="store_true",
                       help="say which engine and precision run the network, and why")


def say_engine(args: argparse.Namespace, stylizer) -> None:
    """With ``-v``: one line on stderr with the stylizer's engine, precision and the reason for them."""
    if getattr(args, "verbose", False):
        sys.stderr.write(f"engine: {stylizer.choice.name} ({stylizer.choice.reason})\n")
