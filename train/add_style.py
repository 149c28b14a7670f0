"""Teach a model a new painting: ``python train/add_style.py new_style.jpg [--name NAME] [--steps N]``.

Only the new style's γ/β rows are trained (every conv weight frozen), so all existing styles stay
bit-identical. By default the packaged model (or your extended model, if you added styles before) is read and
the result goes to your user model file, which every multistyle command then uses by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.cliutil import Parser, positive_int, run_guarded, tqdm_progress  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="add_style.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("style", help="the painting to learn")
    p.add_argument("--model", help="model to extend (default: your user model if it exists, else the packaged one)")
    p.add_argument("-o", "--output", "--out", dest="out",
                   help="where to write the extended model (default: your user model file)")
    p.add_argument("--name", help="style name (default: the file name)")
    p.add_argument("--steps", type=positive_int, default=200, help="optimisation steps (default 200)")
    p.add_argument("--size", type=positive_int, default=256, help="training crop size, multiple of 8 (default 256)")
    p.add_argument("--batch", type=positive_int, default=4, help="crops per step (default 4)")
    p.add_argument("--lr", type=float, default=0.03, help="Adam learning rate of the γ/β rows (default 0.03)")
    p.add_argument("--content-dir", nargs="+", help="photos to train on (default: photos packaged with multistyle)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default auto)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        from multistyle.extend import AddStyleConfig, add_style
        from multistyle.gatys import pick_device
        from multistyle.models import PACKAGED_CONTENT, PACKAGED_MODEL, resolve_model_path, user_model_path

        model = resolve_model_path(args.model)
        out = Path(args.out) if args.out else user_model_path()
        if out.resolve() == PACKAGED_MODEL.resolve():
            raise ValueError("refusing to overwrite the packaged model; give another --out")
        config = AddStyleConfig(steps=args.steps, size=args.size, batch=args.batch, lr=args.lr)
        bar, progress = tqdm_progress(config.steps, "add_style")
        result = add_style(args.style, model, out, args.content_dir or [PACKAGED_CONTENT], args.name, config,
                           pick_device(args.device), progress)
        bar.close()
        new = result.styles[-1]
        final = new.training["final"]
        print(f"added style {new.name!r} (index {len(result.styles) - 1}) in {new.training['seconds']}s, "
              f"content {final['content']:.4g} style {final['style']:.4g} -> {out}")
        return 0

    return run_guarded(job)


if __name__ == "__main__":
    sys.exit(main())
