"""Soak and load checks (scripts, not unit tests): ``python -m benchmarks.soak webcam|gradio``.

* webcam: N frames of the test clip (looped) through the headless pipeline at a small size; reports RSS growth.
* gradio: the demo on 127.0.0.1, then sequential and concurrent requests through gradio_client; counts errors.
* hostile: an ordinary visitor's latency and Live fps while one client floods the demo (``benchmarks/hostile.py``).
Everything stays on this machine, with bounded counts and time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import sys
import tempfile
import time
from pathlib import Path

from .kit import DATA, ROOT


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0



def soak_webcam(frames: int, size: int) -> int:

    from multistyle.apps.webcam import Controls
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import FrameStylizer
    from multistyle.video.pipeline import run_pipeline

    clip = str(DATA / "video" / "bunny.mp4")
    stylizer = get_stylizer(None, "auto")
    controls = Controls.for_style(stylizer.names)
    process = FrameStylizer(stylizer, controls, size)
    done, samples = 0, []
    start_rss = None
    deadline = time.time() + 1800
    while done < frames and time.time() < deadline:
        def sink(small, out) -> bool:
            nonlocal done, start_rss
            done += 1
            if done == 100:
                start_rss = rss_mb()  # after warm-up
            if done % 500 == 0:
                samples.append((done, rss_mb()))
                controls.handle_key(ord("n"))  # switch styles now and then, like a user
            return done < frames

        run_pipeline(clip, process.stages(), sink, log=lambda s: None)
    growth = rss_mb() - (start_rss or rss_mb())
    print(f"webcam soak: {done} frames at {size} px, RSS after warm-up {start_rss:.0f} MB, growth {growth:.1f} MB "
          f"(samples: {', '.join(f'{n}:{m:.0f}' for n, m in samples)})")
    ok = growth < 50
    print("PASS" if ok else "FAIL: RSS grew by 50 MB or more")
    return 0 if ok else 1


def soak_gradio(sequential: int, concurrent: int) -> int:
    import socket

    from gradio_client import Client, handle_file
    from PIL import Image

    from multistyle.apps.demo import build_app, launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(device="auto", user_model=Path(tmp) / "user.safetensors")
        launch(app, "127.0.0.1", port, block=False)
        photo = Path(tmp) / "photo.png"
        img = Image.open(ROOT / "examples" / "tubingen.jpg").convert("RGB")
        img.thumbnail((256, 256))
        img.save(photo)
        url = f"http://127.0.0.1:{port}/"
        from multistyle.stylizer import get_stylizer

        names = get_stylizer(None, "auto").names

        def one(i: int) -> float:
            client = Client(url, verbose=False)
            start = time.perf_counter()
            client.predict(handle_file(str(photo)), names[i % len(names)], 1.0, None, 0.5, None, 0.5, 1.0, False, 512,
                           api_name="/stylize")
            return time.perf_counter() - start

        errors, times = 0, []
        for i in range(sequential):
            try:
                times.append(one(i))
            except Exception as exc:  # counted, reported
                errors += 1
                print(f"request {i} failed: {exc}")
        with futures.ThreadPoolExecutor(concurrent) as pool:
            jobs = [pool.submit(one, i) for i in range(concurrent)]
            for job in jobs:
                try:
                    times.append(job.result(timeout=300))
                except Exception as exc:
                    errors += 1
                    print(f"concurrent request failed: {exc}")
        app.close()
    times.sort()
    print(f"gradio load: {sequential} sequential + {concurrent} concurrent requests, {errors} errors, "
          f"median {times[len(times) // 2]:.2f}s, max {times[-1]:.2f}s" if times else "no request succeeded")
    print("PASS" if errors == 0 else "FAIL")
    return 0 if errors == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["webcam", "gradio", "hostile"])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10, help="hostile: the visitor's calls per phase")
    parser.add_argument("--flood", type=int, default=10_000, help="hostile: fresh-session calls for the RSS check")
    parser.add_argument("--no-browser", action="store_true", help="hostile: skip the Live-tab figures")
    parser.add_argument("--out-dir", type=Path, default=Path("bench-out"), help="hostile: where hostile.json goes")
    args = parser.parse_args(argv)
    if args.which == "hostile":
        from .hostile import run

        run(args.requests, args.flood, browser=not args.no_browser, out_dir=args.out_dir)
        return 0
    if args.which == "webcam":
        return soak_webcam(args.frames, args.size)
    return soak_gradio(args.sequential, args.concurrent)


if __name__ == "__main__":
    sys.exit(main())
