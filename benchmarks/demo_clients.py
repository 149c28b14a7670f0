"""The demo-load benches' clients (:mod:`benchmarks.demo_load`): a raw-HTTP client of the demo's queue
(:func:`raw_call`, also what ``tests/apps/test_demo_hostile.py`` drives the page with), each client told apart by
its loopback source address (its socket bound to 127.0.0.2, 127.0.0.3 … before it connects to the server on
127.0.0.1), and :class:`Flood`: one client's sessions calling one attack in niced processes (they stand for
scripts on other machines)."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import uuid
from pathlib import Path

from .kit import DATA, ROOT

PHOTO, PAINTING = ROOT / "examples" / "tubingen.jpg", DATA / "styles" / "the_scream.jpg"


def raw_call(url: str, index: int, data: list, session: str | None = None, event_data=None, timeout: float = 120,
             source: str | None = None, headers: dict | None = None) -> tuple[int, object]:
    """Join the demo's queue as a script would (by ``fn_index``, any session hash, any JSON), from the local
    address ``source``, and wait for the outcome → (HTTP status of the join, the error message or the output)."""
    import httpx

    session = session or uuid.uuid4().hex[:11]
    body = json.dumps({"data": data, "fn_index": index, "session_hash": session, "event_data": event_data,
                       "trigger_id": None})
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(transport=transport, timeout=timeout) as client:
        join = client.post(url + "gradio_api/queue/join", content=body,
                           headers={"content-type": "application/json", **(headers or {})})
        if join.status_code != 200:
            try:
                return join.status_code, join.json().get("detail")
            except ValueError:
                return join.status_code, join.text[:200]
        event = join.json()["event_id"]
        with client.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                msg = json.loads(line[5:]) if line.startswith("data:") else {}
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


def inline(data: bytes, mime: str = "image/jpeg") -> dict:
    """Image bytes as the ``data:`` URL payload a script may send instead of an upload."""
    return {"url": f"data:{mime};base64," + base64.b64encode(data).decode(), "meta": {"_type": "gradio.FileData"}}


def jpeg(path: Path, side: int, crop: int = 0) -> bytes:
    """``path`` at ``side`` px on the long side (``crop``: a different small cut of it for each number)."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    if crop:
        x, y = crop * 7 % (img.width - side), crop * 13 % (img.height - side)
        img = img.crop((x, y, x + side, y + side))
    img.thumbnail((side, side)) if not crop else None
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def stylize_args(image: dict, size: int, style: str = "udnie") -> list:
    return [image, style, 1.0, None, 0.5, None, 0.5, 1.0, False, size, 1.0]


# ---- floods: one client (one source address), many sessions -----------------------------------------------------

def _previews(url: str, ix: dict, n: int):
    image = inline(jpeg(PHOTO, 2048))
    return lambda: raw_call(url, ix["stylize"], stylize_args(image, 2048), source=ix["source"])[0]


def _refine(url: str, ix: dict, n: int):
    image = inline(jpeg(PHOTO, 512))

    def hold() -> int:
        status, _ = raw_call(url, ix["refine"], stylize_args(image, 512) + [200], session=f"hold{n}",
                             source=ix["source"])
        time.sleep(0.5 if status != 200 else 0)  # refused: ask again soon, as a script would
        return status

    return hold


def _huge(url: str, ix: dict, n: int):
    image = inline(big_png(9000), "image/png")
    return lambda: raw_call(url, ix["stylize"], stylize_args(image, 256), source=ix["source"])[0]


def _oversize(url: str, ix: dict, n: int):
    import httpx

    body = b'{"data": ["' + b"A" * (24 * 1024 * 1024) + b'"]}'
    return lambda: httpx.post(url + "gradio_api/queue/join", content=body, timeout=60,
                              headers={"content-type": "application/json"}).status_code


def _churn(url: str, ix: dict, n: int):
    count = iter(range(n, 10 ** 9, 64))

    def visit() -> int:  # a fresh session from one of 250 addresses; a painting of its own every 10th
        i = next(count)
        return raw_call(url, ix["zero_shot"], [inline(jpeg(PAINTING, 96, crop=i // 10 + 1))],
                        source=f"127.0.1.{i % 250 + 1}")[0]

    return visit


ATTACKS = {"previews": _previews, "refine": _refine, "huge": _huge, "oversize": _oversize, "churn": _churn}


class Flood:
    """``processes`` niced processes × ``sessions`` threads, each calling ``ATTACKS[name]`` until stopped or
    ``limit`` calls in all; :attr:`calls` counts the outcomes by HTTP status, :attr:`done` as they happen."""

    def __init__(self, name: str, url: str, ix: dict, processes: int = 1, sessions: int = 1,
                 limit: int | None = None) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._stop, self._counts, self._ready, self.done = ctx.Event(), ctx.Queue(), ctx.Queue(), ctx.Value("i", 0)
        per = None if limit is None else -(-limit // (processes * sessions))
        self._procs = [ctx.Process(target=_flood_worker, daemon=True, args=(
            name, url, ix, p * sessions, sessions, per, self._stop, self._counts, self._ready, self.done))
            for p in range(processes)]
        self.calls: dict = {}

    def __enter__(self) -> "Flood":
        for p in self._procs:
            p.start()
        for _ in self._procs:
            self._ready.get(timeout=300)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        """Until every process has stopped (at its limit, or after ``__exit__``); idempotent."""
        procs, self._procs = self._procs, []
        for _ in procs:
            for status, n in self._counts.get(timeout=900).items():
                self.calls[status] = self.calls.get(status, 0) + n
        for p in procs:
            p.join(60)


def _flood_worker(name, url, ix, first, sessions, limit, stop, counts, ready, done) -> None:
    os.nice(19)
    calls: dict = {}
    attacks = [ATTACKS[name](url, ix, first + s) for s in range(sessions)]
    ready.put(1)

    def loop(attack) -> None:
        n = 0
        while not stop.is_set() and (limit is None or n < limit):
            try:
                status = attack()
            except Exception as exc:  # noqa: BLE001 - counted
                status = type(exc).__name__
            calls[status], n = calls.get(status, 0) + 1, n + 1
            with done.get_lock():
                done.value += 1

    threads = [threading.Thread(target=loop, args=(a,)) for a in attacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts.put(calls)


# ---- a crowd: paced people behind one address -------------------------------------------------------------------

def paced_crowd(url: str, ix: dict, visitors: int, seconds: float, source: str, size: int = 512,
                pause: float = 1.0) -> dict:
    """``visitors`` people behind one address, each with a page (session) of their own: one ``size`` px preview,
    then a ``pause`` (a person moving a slider), over and over for ``seconds`` → calls, refused, median and p90
    seconds of a served call, and the longest any visitor went without a served preview (start and end count)."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    image, start = inline(jpeg(PHOTO, size)), time.perf_counter()
    end = start + seconds

    def visitor(v: int) -> tuple[list[float], list[float], int, int]:
        served, times, calls, refused = [start], [], 0, 0
        while time.perf_counter() < end:
            began = time.perf_counter()
            status, out = raw_call(url, ix["stylize"], stylize_args(image, size, ("udnie", "great_wave")[v % 2]),
                                   session=f"crowd{v}", source=source, timeout=300)
            calls += 1
            if status == 200 and not isinstance(out, str):
                served.append(time.perf_counter())
                times.append(served[-1] - began)
            else:
                refused += 1
            time.sleep(pause)
        return served + [end], times, calls, refused

    with ThreadPoolExecutor(visitors) as pool:
        results = list(pool.map(visitor, range(visitors)))
    times = sorted(t for _, ts, _, _ in results for t in ts)
    gaps = [max(b - a for a, b in zip(served, served[1:])) for served, *_ in results]
    return {"visitors": visitors, "seconds": seconds, "calls": sum(r[2] for r in results),
            "refused": sum(r[3] for r in results), "median_s": statistics.median(times) if times else None,
            "p90_s": times[int(0.9 * (len(times) - 1))] if times else None, "longest_gap_s": max(gaps),
            "visitors_never_served": sum(1 for _, ts, _, _ in results if not ts)}
