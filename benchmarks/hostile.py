"""The demo under a hostile client (``python -m benchmarks.soak hostile``): an ordinary visitor's Stylize latency
and Live frame rate while one script floods each path a public link exposes, the server's RSS over the run, and
the temp folders left after the server stops. Everything runs on 127.0.0.1; counts and time are bounded.

Method: ``multistyle demo`` as its own process (the CLI's defaults: one torch thread per request, the default
budgets and caps), the visitor and the flood from this process. Each phase floods from background threads while
the visitor sends ``--requests`` Stylize calls at 512 px one after another; the median is compared with the quiet
median measured first, in the same run. Live: headless Chromium with a fake camera (as ``bench live``), 480 px,
quiet and while the hostile client keeps a Gatys job running.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .kit import ROOT, machine, table
from .live import rss_mb

FOLDER_GLOBS = ("multistyle-demo-*", "multistyle-session-*")


def raw_call(url: str, index: int, data: list, session: str | None = None, event_data=None,
             timeout: float = 60) -> tuple[int, object]:
    """Join the demo's queue as a script would (by ``fn_index``, any session hash, any JSON — NaN included) and
    wait for the outcome → (HTTP status of the join, the error message or the output data)."""
    import httpx

    session = session or uuid.uuid4().hex[:11]
    body = json.dumps({"data": data, "fn_index": index, "session_hash": session, "event_data": event_data,
                       "trigger_id": None})
    join = httpx.post(url + "gradio_api/queue/join", content=body, headers={"content-type": "application/json"},
                      timeout=timeout)
    if join.status_code != 200:
        try:
            return join.status_code, join.json().get("detail")
        except ValueError:
            return join.status_code, join.text[:200]
    event = join.json()["event_id"]
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("event_id") == event and msg.get("msg") == "process_completed":
                out = msg.get("output") or {}
                return 200, out.get("error") if not msg.get("success") else out.get("data")
    return 200, None


def fn_indices(url: str) -> dict[str, int]:
    """API name → fn_index, from the page's config (what a script reads first)."""
    import httpx

    config = httpx.get(url + "config", timeout=30).json()
    return {d.get("api_name"): d["id"] for d in config["dependencies"] if d.get("api_name")}


def big_png(side: int) -> bytes:
    """A single-colour PNG of side × side pixels: a few hundred KB that would decode to side² × 3 bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def serve(port: int, temp: Path) -> subprocess.Popen:
    """``multistyle demo`` with the CLI's defaults on 127.0.0.1:port, its temp folder in ``temp``."""
    import httpx

    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "multistyle", "demo", "--port", str(port), "--device", "cpu"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"multistyle demo exited: {proc.stderr.read()[-400:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("multistyle demo did not answer within 180 s")


class Flood:
    """Processes (not threads: the visitor's client must not wait for this process's GIL) calling
    ``ATTACKS[name](url, args)`` until stopped or ``limit`` calls in all; counts calls by HTTP status."""

    def __init__(self, name: str, url: str, args: dict, processes: int = 4, limit: int | None = None) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._stop, self._counts, self._ready = ctx.Event(), ctx.Queue(), ctx.Queue()
        per = None if limit is None else -(-limit // processes)
        self._procs = [ctx.Process(target=_flood_worker, daemon=True,
                                   args=(name, url, args, per, self._stop, self._counts, self._ready))
                       for _ in range(processes)]
        self.calls: dict = {}

    def __enter__(self) -> "Flood":
        for p in self._procs:
            p.start()
        for _ in self._procs:
            self._ready.get(timeout=300)  # every process has built its attack (imports, clients)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        """Until every process has stopped (at its limit, or after ``__exit__``); idempotent."""
        procs, self._procs = self._procs, []
        for _ in procs:
            for status, n in self._counts.get(timeout=600).items():
                self.calls[status] = self.calls.get(status, 0) + n
        for p in procs:
            p.join(60)


def _flood_worker(name: str, url: str, args: dict, limit: int | None, stop, counts, ready) -> None:
    """One flooding process, at the lowest CPU priority: it stands for a script on another machine, so its own
    CPU should not compete with the server's (the server's cost of each request is what is measured)."""
    os.nice(19)
    attack, calls = ATTACKS[name](url, args), {}
    ready.put(1)
    while not stop.is_set() and (limit is None or sum(calls.values()) < limit):
        try:
            status = attack()
        except Exception as exc:  # noqa: BLE001 - counted
            status = type(exc).__name__
        calls[status] = calls.get(status, 0) + 1
    counts.put(calls)


def _fresh_sessions(url: str, args: dict):
    return lambda: raw_call(url, args["index"], NO_IMAGE)[0]


def _huge_data_url(url: str, args: dict):
    image = {"url": "data:image/png;base64," + base64.b64encode(big_png(9000)).decode(),
             "meta": {"_type": "gradio.FileData"}}
    return lambda: raw_call(url, args["index"], [image, *NO_IMAGE[1:]])[0]


def _oversize(url: str, args: dict):
    import httpx

    body = b'{"data": ["' + b"A" * (24 * 1024 * 1024) + b'"]}'
    return lambda: httpx.post(url + "gradio_api/queue/join", content=body, timeout=60,
                              headers={"content-type": "application/json"}).status_code


def _gatys_bursts(url: str, args: dict):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)

    def burst() -> int:
        jobs = [client.submit(handle_file(args["photo"]), handle_file(str(painting_path())), 1024, 500, False,
                              api_name="/gatys") for _ in range(32)]
        time.sleep(1.0)
        for job in jobs:
            job.cancel()
        return 200

    return burst


def _gatys_jobs(url: str, args: dict):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return lambda: client.predict(handle_file(args["photo"]), handle_file(str(painting_path())), 1024, 500, False,
                                  api_name="/gatys") and 200


NO_IMAGE = [None, "udnie", 1.0, None, 0.5, None, 0.5, 1.0, False, 256, 1.0]
ATTACKS = {"fresh": _fresh_sessions, "huge": _huge_data_url, "oversize": _oversize, "gatys": _gatys_bursts,
           "gatys-jobs": _gatys_jobs}


def visitor_latency(client, photo: Path, n: int) -> float:
    from gradio_client import handle_file

    times = []
    for i in range(n):
        start = time.perf_counter()
        client.predict(handle_file(str(photo)), ("udnie", "great_wave")[i % 2], 1.0, None, 0.5, None, 0.5, 1.0,
                       False, 512, api_name="/stylize")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def live_fps(url: str, seconds: float, y4m: Path) -> float:
    """Frames per second one headless-Chromium visitor's Live tab shows (fake camera, 480 px)."""
    from playwright.sync_api import sync_playwright

    from .live import launch_browser, live_log, start_live

    with sync_playwright() as p:
        browser = launch_browser(p, y4m)
        page = browser.new_context(permissions=["camera"]).new_page()
        start_live(page, url, strength=0)
        deadline = time.time() + 90
        while len(live_log(page)["shows"]) < 3 and time.time() < deadline:
            page.wait_for_timeout(250)
        mark, start = len(live_log(page)["shows"]), time.time()
        page.wait_for_timeout(seconds * 1000)
        fps = (len(live_log(page)["shows"]) - mark) / (time.time() - start)
        browser.close()
    return fps


def run(requests: int = 10, flood_total: int = 10_000, live_seconds: float = 15.0, browser: bool = True,
        out_dir: Path | None = None) -> dict:
    """Measure every phase → the result record (also printed as markdown tables and written as JSON)."""
    import socket

    from gradio_client import Client, handle_file
    from PIL import Image

    from .live import CHROMIUM, write_y4m

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (temp := tmp / "server-tmp").mkdir()
        photo = tmp / "photo.png"
        img = Image.open(ROOT / "examples" / "tubingen.jpg").convert("RGB")
        img.thumbnail((512, 512))
        img.save(photo)
        proc = serve(port, temp)
        try:
            result = _phases(url, proc.pid, photo, requests, flood_total)
            if browser and os.path.exists(CHROMIUM):
                y4m = write_y4m(tmp / "camera.y4m", frames=120)
                result["live_quiet_fps"] = live_fps(url, live_seconds, y4m)
                with Flood("gatys-jobs", url, {"photo": str(photo)}, processes=1):
                    time.sleep(5)
                    result["live_gatys_fps"] = live_fps(url, live_seconds, y4m)
            visitor = Client(url, verbose=False)
            visitor.predict(handle_file(str(painting_path())), "mine", 2, api_name="/add_style")
            result["folders_while_serving"] = sum(len(list(temp.glob(g))) for g in FOLDER_GLOBS)
            visitor.close()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        result["folders_after_stop"] = sum(len(list(temp.glob(g))) for g in FOLDER_GLOBS)
    report(result, out_dir)
    return result


def painting_path() -> Path:
    return ROOT.parent / "shared" / "data" / "styles" / "the_scream.jpg"


def _phases(url: str, pid: int, photo: Path, requests: int, flood_total: int) -> dict:
    from gradio_client import Client

    args = {"index": fn_indices(url)["stylize"], "photo": str(photo)}
    visitor = Client(url, verbose=False)
    visitor_latency(visitor, photo, 3)  # warm-up
    quiet = visitor_latency(visitor, photo, requests)
    attacks = {"fresh sessions, a /stylize with no image": ("fresh", 4),
               "32 Gatys jobs (1024 px, 500 steps) at once, cancelled, again": ("gatys", 1),
               "a 9000x9000 PNG as a data: URL": ("huge", 4),
               "24 MB request bodies": ("oversize", 2)}
    rows, rss = [], [rss_mb(pid)]
    for label, (name, processes) in attacks.items():
        with Flood(name, url, args, processes) as flood:
            time.sleep(1.0)  # the flood is under way
            busy = visitor_latency(visitor, photo, requests)
        rss.append(rss_mb(pid))
        rows.append({"flood": label, "median_s": busy, "ratio": busy / quiet, "calls": dict(flood.calls)})
    time.sleep(1.0)  # the Gatys client has left: its job ends with it
    after = visitor_latency(visitor, photo, requests)
    rows.append({"flood": "after the hostile clients left", "median_s": after, "ratio": after / quiet, "calls": {}})
    rss_before = rss_mb(pid)
    flood = Flood("fresh", url, args, 4, flood_total)
    with flood:
        flood.wait()
    rss_after = rss_mb(pid)
    visitor.close()
    return {"machine": machine(), "quiet_median_s": quiet, "phases": rows, "rss_mb_phases": rss,
            "flood_requests": flood_total, "flood_calls": dict(flood.calls), "rss_mb_before_flood": rss_before,
            "rss_mb_after_flood": rss_after}


def report(result: dict, out_dir: Path | None) -> None:
    rows = [["quiet", f"{result['quiet_median_s']:.3f}", "1.00", "-"]]
    rows += [[p["flood"], f"{p['median_s']:.3f}", f"{p['ratio']:.2f}",
              ", ".join(f"{k}: {v}" for k, v in p["calls"].items()) or "-"] for p in result["phases"]]
    print(table("An ordinary visitor's /stylize (512 px) while one client floods (goal: ≤ 2x quiet)",
                ["flood", "median s", "x quiet", "flood calls by HTTP status"], rows))
    other = [["server RSS before / after the fresh-session flood (MB; goal +200 at most)",
              f"{result['rss_mb_before_flood']:.0f} → {result['rss_mb_after_flood']:.0f} "
              f"({result['flood_requests']} requests)"],
             ["temp folders while a visitor holds a style / after Ctrl-C (goal 0)",
              f"{result.get('folders_while_serving', '-')} / {result['folders_after_stop']}"]]
    if "live_quiet_fps" in result:
        other.append(["Live fps, 1 visitor at 480 px: quiet / while a Gatys job runs (goal ≥ 8)",
                      f"{result['live_quiet_fps']:.1f} / {result['live_gatys_fps']:.1f}"])
    print(table("Server under the floods", ["what", "measured"], other))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "hostile.json").write_text(json.dumps(result, indent=1, default=str))
