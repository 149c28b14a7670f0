"""The demo's Live tab where the visitor sees it (``python -m benchmarks live``; BENCHMARKS.md, "Demo load").

``multistyle demo`` runs as a subprocess (:func:`benchmarks.kit.start_demo`); headless Debian Chromium opens the
page with a fake camera (a ``.y4m`` written from bunny.mp4, each frame stamped with its number as eight black/white
blocks) and streams it. Per visitor: frames per second shown in the page and latency from the browser's capture of
a camera frame to the moment its stylized result is decoded in the page (the bench streams at strength 0, so the
stamp survives while the network, flicker reduction and encoding run all the same); the server's CPU and RSS.
Browser and server share this machine's cores. The browser helpers are used by ``tests/apps/test_demo.py`` too."""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .kit import CLIP, effort, register, rss_mb, start_demo, stop_demo, table

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
STAMP_BITS = 8  # frame numbers 0..255, as blocks of width/16 along the top edge
LOW_CAP = 8.0  # the browser's send rate also measured for three visitors (each send costs the browser CPU)


def camera_args(y4m: str | os.PathLike) -> list[str]:
    """Chromium flags for a fake camera that plays ``y4m`` (looped) with the permission prompt answered."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]


def stamp(frame: np.ndarray, number: int) -> np.ndarray:
    """Draw ``number`` as STAMP_BITS black/white blocks along the top-left edge (in place)."""
    block = frame.shape[1] // 16
    for bit in range(STAMP_BITS):
        frame[:block, bit * block:(bit + 1) * block] = 255 if (number >> bit) & 1 else 0
    return frame


def camera_frames(frames: int = 60, size: tuple[int, int] = (640, 480), stamped: bool = False,
                  src: str | os.PathLike = CLIP) -> list[np.ndarray]:
    """The fake camera's frames, BGR uint8 at ``size``: ``src`` (bunny.mp4, 640x360) letterboxed, looped;
    ``stamped``: each carries its number (see :func:`stamp`)."""
    w, h = size
    cap = cv2.VideoCapture(str(src))
    out = []
    for i in range(frames):
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        fh, fw = frame.shape[:2]
        zoom = min(w / fw, h / fh)
        small = cv2.resize(frame, (round(fw * zoom), round(fh * zoom)), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((h, w, 3), np.uint8)
        y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        out.append(stamp(canvas, i % (1 << STAMP_BITS)) if stamped else canvas)
    cap.release()
    return out


def write_y4m(dst: str | os.PathLike, frames: int = 60, size: tuple[int, int] = (640, 480),
              stamped: bool = False) -> Path:
    """A fake-camera file written with OpenCV: ``YUV4MPEG2 W640 H480 F30:1 Ip C420jpeg``, then ``FRAME\\n`` + the
    I420 bytes of each of :func:`camera_frames` (Chromium loops it)."""
    w, h = size
    with open(dst, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip C420jpeg\n".encode())
        for frame in camera_frames(frames, size, stamped):
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return Path(dst)


# Installed in the page: logs captures (the stamp the browser sent) and every new live frame (its stamp, its
# data URL, when it was decoded). The webcam is mirrored, so the stamp is read from the right-hand edge.
FRAME_LOG_JS = """() => {
  const L = window.__live = {caps: [], shows: [], srcs: []};
  const BITS = %d;
  const readStamp = (ctx, w) => {
    const b = w / 16; let n = 0;
    for (let i = 0; i < BITS; i++) {
      const p = ctx.getImageData(Math.floor(w - (i + 0.5) * b), Math.floor(b / 2), 1, 1).data;
      if (p[0] + p[1] + p[2] > 384) n |= 1 << i;
    }
    return n;
  };
  const orig = HTMLCanvasElement.prototype.toDataURL;
  HTMLCanvasElement.prototype.toDataURL = function (...args) {
    try { L.caps.push([performance.now(), readStamp(this.getContext('2d'), this.width)]); } catch (e) {}
    return orig.apply(this, args);
  };
  const probe = document.createElement('canvas');
  let last = null;
  new MutationObserver(() => {
    const img = document.querySelector('#live-output img');
    if (!img || !img.src || img.src === last) return;
    last = img.src;
    const src = img.src, el = new Image();
    el.onload = () => {
      probe.width = el.naturalWidth; probe.height = el.naturalHeight;
      const ctx = probe.getContext('2d', {willReadFrequently: true});
      ctx.drawImage(el, 0, 0);
      L.shows.push([performance.now(), readStamp(ctx, el.naturalWidth)]);
      L.srcs.push(src); if (L.srcs.length > 40) L.srcs.shift();
    };
    el.src = src;
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}""" % STAMP_BITS


def launch_browser(playwright, y4m: str | os.PathLike):
    """Headless Debian Chromium with the fake camera (the machine's network is closed: no background traffic)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=BROWSER_ARGS + camera_args(y4m))


def start_live(page, url: str, strength: float | None = None, timeout_ms: int = 60_000) -> None:
    """Open the page, install the frame log, switch the camera on and press Record in the Live tab."""
    page.goto(url)
    page.locator("#live-camera").wait_for(timeout=timeout_ms)
    page.evaluate(FRAME_LOG_JS)
    if strength is not None:
        box = page.locator("#live-strength input[type=number]")
        box.fill(str(strength))
        box.press("Enter")
    page.locator("#live-camera").get_by_text("Click to Access Webcam").click(timeout=timeout_ms)
    page.locator("#live-camera button.capture-button").click(timeout=timeout_ms)


def live_log(page) -> dict:
    return page.evaluate("window.__live")


def decode_data_url(url: str) -> np.ndarray:
    """A ``data:image/jpeg;base64,...`` URL → RGB uint8."""
    data = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]


def latencies_ms(log: dict) -> list[float]:
    """For every shown frame: its decode time minus the browser's latest earlier capture of the same stamp."""
    out = []
    caps = log["caps"]
    for shown, number in log["shows"]:
        before = [t for t, n in caps if n == number and t <= shown]
        if before:
            out.append(shown - before[-1])
    return out


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += kids.get(p, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _wait_for_frames(pages, count: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if all(len(live_log(p)["shows"]) >= count for p in pages):
            return
        pages[0].wait_for_timeout(250)
    raise RuntimeError(f"the Live tab showed fewer than {count} frames in {timeout_s:.0f} s")


def measure_browser(size: int, visitors: int, seconds: float, device: str, y4m: Path, threads: int | None,
                    fps_cap: float) -> dict:
    """``visitors`` browser contexts stream at once for ``seconds`` after warm-up → fps, latency, CPU, RSS."""
    from playwright.sync_api import sync_playwright

    flags = ["--live-size", str(size), "--live-seconds", str(int(seconds) + 120), "--live-visitors",
             str(max(visitors, 1)), "--live-per-client", str(max(visitors, 1)),  # the browsers share 127.0.0.1
             "--live-fps", str(fps_cap)] + (["--threads", str(threads)] if threads else [])
    demo = start_demo(flags, device)
    proc, port, errors = demo.proc, demo.port, []
    try:
        with sync_playwright() as p:
            browser = launch_browser(p, y4m)
            pages = [browser.new_context(permissions=["camera"]).new_page() for _ in range(visitors)]
            for page in pages:
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                start_live(page, f"http://127.0.0.1:{port}/", strength=0)
            _wait_for_frames(pages, 3, 120)
            server, others = proc.pid, [q for q in _descendants(os.getpid()) if q not in _descendants(proc.pid)]
            marks = [len(live_log(pg)["shows"]) for pg in pages]
            cpu0, bcpu0, rss, start = cpu_seconds([server]), cpu_seconds(others), [rss_mb(server)], time.time()
            while time.time() - start < seconds:
                pages[0].wait_for_timeout(1000)
                rss.append(rss_mb(server))
            elapsed = time.time() - start
            cpu1, bcpu1 = cpu_seconds([server]), cpu_seconds(others)
            logs = [live_log(pg) for pg in pages]
            errors += [f"error toast: {t}" for pg in pages for t in pg.locator(".toast-body.error").all_inner_texts()]
            browser.close()
    finally:
        stop_demo(demo)
    shown = [len(log["shows"]) - mark for log, mark in zip(logs, marks)]
    lat = [latencies_ms({"caps": log["caps"], "shows": log["shows"][mark:]}) for log, mark in zip(logs, marks)]
    frames = max(sum(shown), 1)
    return {"size": size, "visitors": visitors, "threads": threads, "fps_cap": fps_cap, "seconds": round(elapsed, 1),
            "fps_each": [n / elapsed for n in shown], "latency_ms_each": [statistics.median(v) if v else None
                                                                         for v in lat],
            "server_cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / frames,
            "browser_cpu_ms_per_frame": 1000 * (bcpu1 - bcpu0) / frames,
            "rss_mb": [round(r, 1) for r in rss], "errors": errors}


@register("live")
def bench_live(args: argparse.Namespace) -> dict:
    """Frames per second and latency the Live tab delivers to headless Chromium (1 and 3 visitors), the server's
    CPU and RSS while streaming."""
    from multistyle.apps.demo import DemoOptions

    device = "cuda" if args.device.startswith("cuda") else "cpu"
    if getattr(args, "smoke", False) or not os.path.exists(CHROMIUM):
        print("live: skipped (" + ("--smoke" if getattr(args, "smoke", False) else
                                   "needs Debian's chromium: apt-get install chromium") + ")\n")
        return {"live": {"skipped": True}}
    runs, cap = [], DemoOptions().live_fps
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(Path(tmp) / "camera.y4m", frames=120, stamped=True)
        for size in effort(args, (480,), (480,), (64,)):  # the default --live-size
            for visitors, fps in ((1, cap), (3, cap), (3, LOW_CAP)):
                runs.append(measure_browser(size, visitors, effort(args, 20, 8, 0), device, y4m, None, fps))
    rows = [[r["size"], r["visitors"], f"{r['fps_cap']:g}", " / ".join(f"{f:.1f}" for f in r["fps_each"]),
             " / ".join("-" if v is None else f"{v:.0f}" for v in r["latency_ms_each"]),
             r["server_cpu_ms_per_frame"], f"{1000 * os.cpu_count() / r['server_cpu_ms_per_frame']:.0f}",
             r["browser_cpu_ms_per_frame"],
             f"{r['rss_mb'][0]:.0f} → {r['rss_mb'][-1]:.0f}", len(r["errors"])] for r in runs]
    print(table(f"Live tab in headless Chromium, fake 640x480 camera, browser and server on the same "
                f"{os.cpu_count()}-core machine ({device})",
                ["long side px", "visitors", "--live-fps", "fps each", "latency ms each (median)",
                 "server CPU ms/frame", "frames/s the server's cores hold (browsers elsewhere)",
                 "browser CPU ms/frame", "server RSS MB", "errors"], rows))
    return {"live": runs}
