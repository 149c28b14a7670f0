"""Demo load (BENCHMARKS.md, "Demo load"): the demo page under unfriendly clients, each its own loopback address.

* ``hostile``: an ordinary visitor's ``/stylize`` (512 px) quiet and while one client floods previews from 24
  sessions at the page's largest size (2048 px); a visitor's Gatys job while one client holds the slow lane from
  6 refine sessions; inline images too big by their header; bodies over the cap; then the server's tracebacks and
  its temp folders while serving and after Ctrl-C.
* ``soak``: session churn — fresh sessions from 250 addresses, each calling ``/zero_shot`` with a small painting
  (a new one every 10th session) — with the server's RSS against sessions, counted from after a warm-up of 40
  sessions (the first loads VGG for the painting's features); a visitor's added style must survive it.

The server is ``multistyle demo`` with the CLI's defaults (:func:`benchmarks.kit.serve`, 1 torch thread per
request); clients and floods are :mod:`benchmarks.demo_clients`. Goals (issue #38, 2 cores): visitor ≤ 5× quiet
and never refused during the preview flood; Gatys served within 120 s; RSS growth < 200 MB over 5000 sessions;
0 tracebacks. ``hostile`` also runs issue #44's crowd: 12 and 30 paced visitors behind one address for 40 s, alone
and while another address floods (goals: 12 alone 0 refused, median ≤ 2 s; 30 alone 0 refused, each served at
least once every 10 s; under the flood ≤ 5 % refused)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from .demo_clients import PAINTING, PHOTO, Flood, fn_indices, inline, jpeg, paced_crowd, raw_call, stylize_args
from .kit import effort, machine, register, rss_mb, serve, table

FOLDER_GLOBS = ("multistyle-demo-*", "multistyle-session-*")
VISITOR = "127.0.0.9"
CROWD = "127.0.0.6"  # the paced crowd's one address


def visitor_stylize(url: str, ix: dict, n: int) -> dict:
    """``n`` sequential 512 px ``/stylize`` calls of an ordinary visitor → median seconds, refusals."""
    image, times, refused = inline(jpeg(PHOTO, 512)), [], 0
    for i in range(n):
        start = time.perf_counter()
        status, out = raw_call(url, ix["stylize"], stylize_args(image, 512, ("udnie", "great_wave")[i % 2]),
                               source=VISITOR)
        times.append(time.perf_counter() - start)
        refused += status != 200 or isinstance(out, str)
    return {"median_s": statistics.median(times), "refused": refused, "calls": n}


def visitor_gatys(url: str, ix: dict) -> dict:
    """One Gatys job of an ordinary visitor (384 px, the page's default) → seconds to its result, outcome."""
    start = time.perf_counter()
    status, out = raw_call(url, ix["gatys"], [inline(jpeg(PHOTO, 512)), inline(jpeg(PAINTING, 512)), 384, 100,
                                              False], source=VISITOR, timeout=600)
    ok = status == 200 and not isinstance(out, str)
    return {"seconds": time.perf_counter() - start, "served": ok, "said": None if ok else out}


def crowd_phases(url: str, ix: dict, seconds: float, sizes: tuple[int, ...]) -> list[dict]:
    """Paced visitors behind one address (127.0.0.6), alone and while 127.0.0.2 floods 2048 px previews from 24
    sessions (issue #44): each a row of :func:`~.demo_clients.paced_crowd`'s figures."""
    rows = []
    for visitors in sizes:
        rows.append({"case": f"{visitors} alone", **paced_crowd(url, ix, visitors, seconds, CROWD)})
        with Flood("previews", url, {**ix, "source": "127.0.0.2"}, 4, 6) as flood:
            time.sleep(2.0)
            row = {"case": f"{visitors} while one address floods from 24 sessions",
                   **paced_crowd(url, ix, visitors, seconds, CROWD)}
        rows.append({**row, "flood_calls": dict(flood.calls)})
    return rows


def report_crowd(rows: list[dict]) -> str:
    """The crowd table (goals: 12 alone 0 refused, median ≤ 2 s; 30 alone 0 refused, every visitor served at least
    once every 10 s; under the flood ≤ 5 % of the crowd's calls refused)."""
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    return table("Paced visitors behind one address (a 512 px preview, then 1 s pause, each with its own page)",
                 ["crowd", "seconds", "calls", "refused", "refused %", "median s", "p90 s",
                  "longest wait for a result s", "never served", "flood calls by outcome"],
                 [[r["case"], f"{r['seconds']:.0f}", r["calls"], r["refused"],
                   f"{100 * r['refused'] / max(1, r['calls']):.1f}", fmt(r["median_s"]), fmt(r["p90_s"]),
                   fmt(r["longest_gap_s"]), r["visitors_never_served"],
                   ", ".join(f"{k}: {v}" for k, v in r.get("flood_calls", {}).items()) or "-"] for r in rows])


def tracebacks(demo) -> int:
    return demo.stderr_tail(10 ** 9).count("Traceback")


@register("hostile", headline=False)
def bench_hostile(args: argparse.Namespace) -> dict:
    """An ordinary visitor's Stylize and Gatys while one client floods each path from many sessions."""
    n = effort(args, 15, 8, 2)
    with tempfile.TemporaryDirectory() as tmp, serve(env={"TMPDIR": tmp}) as demo:
        ix = fn_indices(demo.url)
        visitor_stylize(demo.url, ix, 2)  # warm-up
        result: dict = {"machine": machine(), "quiet": visitor_stylize(demo.url, ix, n), "phases": []}
        floods = {"one client, 24 sessions: /stylize at 2048 px": ("previews", "127.0.0.2", 4, 6),
                  "one client, 9000x9000 PNG data: URLs": ("huge", "127.0.0.4", 2, 2),
                  "one client, 24 MB request bodies": ("oversize", "127.0.0.5", 1, 2)}
        for label, (name, source, processes, sessions) in floods.items():
            with Flood(name, demo.url, {**ix, "source": source}, processes, sessions) as flood:
                time.sleep(2.0)
                busy = visitor_stylize(demo.url, ix, n)
            result["phases"].append({"flood": label, **busy, "flood_calls": dict(flood.calls)})
        with Flood("refine", demo.url, {**ix, "source": "127.0.0.3"}, 1, 6) as flood:
            time.sleep(5.0)  # the six sessions hold the slow lane
            result["gatys_while_held"] = visitor_gatys(demo.url, ix)
        result["gatys_while_held"]["flood_calls"] = dict(flood.calls)
        seconds, crowds = effort(args, (40.0, (12, 30)), (20.0, (12, 30)), (3.0, (3,)))
        result["crowd"] = crowd_phases(demo.url, ix, seconds, crowds)
        result["after"] = visitor_stylize(demo.url, ix, n)
        result["folders_while_serving"] = sum(len(list(Path(tmp).glob(g))) for g in FOLDER_GLOBS)
        result["tracebacks"] = tracebacks(demo)
    result["folders_after_stop"] = sum(len(list(Path(tmp).glob(g))) for g in FOLDER_GLOBS)
    report_hostile(result, Path(args.out_dir))
    return {"hostile": result}


def report_hostile(result: dict, out: Path) -> None:
    quiet = result["quiet"]["median_s"]
    rows = [["quiet", f"{quiet:.3f}", "1.00", 0, "-"]]
    rows += [[p["flood"], f"{p['median_s']:.3f}", f"{p['median_s'] / quiet:.2f}", p["refused"],
              ", ".join(f"{k}: {v}" for k, v in p["flood_calls"].items())] for p in result["phases"]]
    after = result["after"]
    rows.append(["after the floods", f"{after['median_s']:.3f}", f"{after['median_s'] / quiet:.2f}",
                 after["refused"], "-"])
    print(table("An ordinary visitor's /stylize (512 px) while one client floods (goal ≤ 5x quiet, never refused)",
                ["flood", "median s", "x quiet", "visitor refused", "flood calls by outcome"], rows))
    print(report_crowd(result["crowd"]))
    g = result["gatys_while_held"]
    print(table("The slow lane and the server", ["what", "measured"], [
        ["visitor's Gatys job (384 px) while one client holds the slow lane from 6 refine sessions (goal ≤ 120 s)",
         f"{g['seconds']:.1f} s, " + ("served" if g["served"] else f"not served: {g['said']}")],
        ["refine sessions' calls by outcome", ", ".join(f"{k}: {v}" for k, v in g["flood_calls"].items())],
        ["tracebacks in the server's log (goal 0)", result["tracebacks"]],
        ["temp folders while serving / after Ctrl-C (goal 1 / 0)",
         f"{result['folders_while_serving']} / {result['folders_after_stop']}"]]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(result, indent=1, default=str))


@register("soak", headline=False)
def bench_soak(args: argparse.Namespace) -> dict:
    """Session churn: fresh sessions from 250 addresses call /zero_shot; the server's RSS against sessions."""
    total = effort(args, 5000, 1000, 20)
    with tempfile.TemporaryDirectory() as tmp, serve(env={"TMPDIR": tmp}) as demo:
        ix = fn_indices(demo.url)
        status, out = raw_call(demo.url, ix["add_style"], [inline(jpeg(PAINTING, 256)), "mine", 2],
                               session="keeper", source=VISITOR, timeout=300)
        warm = Flood("churn", demo.url, ix, 1, 4, limit=40)
        with warm:
            warm.wait()
        curve, start = [(0, rss_mb(demo.pid))], time.perf_counter()
        flood = Flood("churn", demo.url, ix, 2, 4, limit=total)
        with flood:
            while flood.done.value < total and time.perf_counter() - start < effort(args, 540, 300, 120):
                time.sleep(2.0)
                curve.append((flood.done.value, rss_mb(demo.pid)))
        curve.append((flood.done.value, rss_mb(demo.pid)))
        kept, _ = raw_call(demo.url, ix["stylize"], stylize_args(inline(jpeg(PHOTO, 256)), 256, "mine"),
                           session="keeper", source=VISITOR)
        result = {"machine": machine(), "sessions": flood.done.value, "seconds": time.perf_counter() - start,
                  "calls": dict(flood.calls), "rss_curve": curve, "style_added": status == 200,
                  "style_survives": kept == 200, "tracebacks": tracebacks(demo)}
    report_soak(result, Path(args.out_dir))
    return {"soak": result}


def report_soak(result: dict, out: Path) -> None:
    curve = result["rss_curve"]
    warm = next((mb for n, mb in curve if n >= 300), curve[-1][1])
    picks = [curve[round(i * (len(curve) - 1) / 8)] for i in range(9)]
    print(table(f"Session churn: {result['sessions']} fresh sessions in {result['seconds']:.0f} s after 40 warm-up "
                "ones, each /zero_shot (a new painting every 10th)", ["sessions", "server RSS MB"],
                [[n, f"{mb:.0f}"] for n, mb in picks]))
    print(table("Session churn: goals", ["what", "measured"], [
        ["RSS growth over the run, after the warm-up (goal < 200 MB)", f"{curve[-1][1] - curve[0][1]:.0f} MB"],
        ["RSS growth after the first 300 sessions (flat)", f"{curve[-1][1] - warm:.0f} MB"],
        ["calls by outcome", ", ".join(f"{k}: {v}" for k, v in result["calls"].items())],
        ["a visitor's added style survives", "yes" if result["style_survives"] else "no"],
        ["tracebacks in the server's log (goal 0)", result["tracebacks"]]]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=1, default=str))
