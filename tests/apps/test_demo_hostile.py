"""The demo page against a hostile client: a real server on localhost (one for the module), driven by gradio_client
and by raw HTTP (the way a script would, private events included), clients told apart by their loopback source
address (127.0.0.2, 127.0.0.3 …). Budgets and sizes are small so the module stays quick."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from conftest import ROOT, wait_for
from gradio_client.exceptions import AppError
from PIL import Image

from benchmarks.demo_clients import big_png, inline, raw_call, stylize_args
from benchmarks.kit import free_port
from benchmarks.kit import rss_mb as process_rss
from multistyle.apps.demo.sessions import FOLDER_PREFIX

PHOTO = ROOT / "examples" / "tubingen.jpg"
SCREAM = ROOT.parent / "shared" / "data" / "styles" / "the_scream.jpg"
GATYS_SECONDS = 60  # long: the test shows the job ends when its visitor leaves, not at its budget


def rss_mb() -> float:
    return process_rss(os.getpid())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One demo with one torch thread per request (the CLI's default), as a 2-core host runs it; Gradio's own
    session store is small (10) and the join rate high, so the floods below test our caps, not the rate."""
    threads = torch.get_num_threads()
    temp = tmp_path_factory.mktemp("server-tmp")
    url, app = start_server(tmp_path_factory, temp, gatys_seconds=GATYS_SECONDS, max_sessions=5, gradio_sessions=10,
                            client_burst=1000, client_per_minute=100_000)
    yield url, app, temp
    app.close()
    torch.set_num_threads(threads)


def start_server(tmp_path_factory, temp, **options):
    from multistyle.apps.demo import DemoOptions, build_app, launch

    options = DemoOptions(device="cpu", user_model=tmp_path_factory.mktemp("user") / "model.safetensors",
                          live_size=128, threads=1, **options)
    app = build_app(options=options, temp_parent=str(temp))
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    return f"http://127.0.0.1:{port}/", app


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.png"
    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((384, 384))
    img.save(path)
    return path


def fn_index(app, name: str) -> int:
    """The fn_index of an event by API name or by its function's name (private events have no API name)."""
    for index, fn in app.fns.items():
        if fn.api_name == name or getattr(fn.fn, "__name__", "") == name:
            return index
    raise KeyError(name)


def latency(client, photo: Path, n: int = 5) -> float:
    from gradio_client import handle_file

    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.predict(handle_file(str(photo)), "udnie", 1.0, None, 0.5, None, 0.5, 1.0, False, 384,
                       api_name="/stylize")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_one_client_cannot_starve_another_and_its_jobs_end_when_it_leaves(server, photo):
    """32 slow Gatys jobs from one client: one is admitted, the rest refused with a reason; a second visitor's
    Stylize stays within 2x its quiet latency while the job runs and after; the job ends when its client leaves."""
    from gradio_client import Client, handle_file

    url, app, _ = server
    host = app.multistyle_host
    b = Client(url, verbose=False)
    latency(b, photo, 2)  # warm-up
    quiet = latency(b, photo)
    a = Client(url, verbose=False)
    jobs = [a.submit(handle_file(str(photo)), handle_file(str(SCREAM)), 512, 500, False, api_name="/gatys")
            for _ in range(32)]
    assert wait_for(lambda: host.jobs.running(a.session_hash, "slow") == 1, 30)
    busy = latency(b, photo)
    refused = sum(1 for j in jobs if j.done() and j.exception() is not None)
    assert refused == 31, refused
    a.close()  # the client leaves: its running job stops at its next iteration, long before its 60 s budget
    left = time.perf_counter()
    assert wait_for(lambda: host.jobs.running(a.session_hash, "slow") == 0, 20)
    assert time.perf_counter() - left < 20
    after = latency(b, photo)
    b.close()
    assert busy <= 2 * quiet and after <= 2 * quiet, (quiet, busy, after)


@pytest.mark.parametrize("calls", [150, pytest.param(1100, marks=pytest.mark.slow)])
def test_a_flood_of_fresh_sessions_evicts_nobody(server, photo, calls):
    """A visitor adds a style; a flood of calls, each from a fresh session of one of 30 addresses, follows — more
    than Gradio's own session store holds (10 here), and the issue's 1100 in the slow run; the visitor still has the
    style, the flood stored no session of ours, Gradio's store stayed within its bound, no folder was left; when
    the visitor leaves, their folder goes too."""
    from gradio_client import Client, handle_file

    url, app, temp = server
    host = app.multistyle_host
    v = Client(url, verbose=False)
    v.predict(handle_file(str(SCREAM)), "mine", 2, api_name="/add_style")
    index = fn_index(app, "stylize")
    empty = [None, "udnie", 1.0, None, 0.5, None, 0.5, 1.0, False, 256, 1.0]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: raw_call(url, index, empty, source=f"127.0.0.{10 + i % 30}")[0],
                                 range(calls)))
    assert statuses.count(200) >= 0.9 * calls, {s: statuses.count(s) for s in set(statuses)}
    assert len(host.sessions) == 1  # the flood held nothing, so it stored nothing
    assert len(app.state_holder.session_data) <= host.options.gradio_sessions  # Gradio's store is bounded too
    assert len(app._queue.pending_event_ids_session) <= host.options.gradio_sessions + 1  # nor Gradio's queue
    assert len(app._queue.pending_messages_per_session) <= host.options.gradio_sessions + 1  # its messages too
    out = v.predict(handle_file(str(photo)), "mine", 1.0, None, 0.5, None, 0.5, 1.0, False, 128,
                    api_name="/stylize")
    assert Image.open(out).size[0] == 128
    folders = [p for p in host.folders.root.iterdir()]
    assert len(folders) == 1
    v.close()
    assert wait_for(lambda: len(host.sessions) == 0 and not any(host.folders.root.iterdir()))


def test_session_registry_protects_active_visitors_and_releases_what_it_drops(tmp_path):
    """The registry (no server): full of recently used sessions, a newcomer is refused; with idle ones, the least
    recently used goes and its files with it; past the TTL a session is released."""
    from multistyle.apps.demo import DemoOptions
    from multistyle.apps.demo.sessions import ServerBusy, SessionFolders, SessionRegistry

    folders = SessionFolders(str(tmp_path))
    registry = SessionRegistry(DemoOptions(max_sessions=2, session_protect=600), folders)
    a, _b = registry.open("a"), registry.open("b")
    a.folder = folders.new()
    with pytest.raises(ServerBusy, match="try again"):
        registry.open("c")
    registry.options.session_protect = 0
    registry.get("b")  # b used now: a is the least recently used
    registry.open("c")
    assert registry.get("a") is None and a.closed and a.folder is None and registry.get("b") is not None
    registry.options.session_ttl = 1e-3
    time.sleep(0.01)
    assert registry.sweep() == 2 and len(registry) == 0
    folders.close()
    assert not folders.root.exists()


def test_huge_images_and_big_bodies_are_refused_before_decoding(server, tmp_path):
    """A 9000x9000 single-colour PNG (a few hundred KB) is refused from its header at once, as a file and as a
    data: URL; a body over the cap is refused with 413 before it is read; the server's memory stays flat."""
    from gradio_client import Client, handle_file

    url, app, _ = server
    path = tmp_path / "huge.png"
    path.write_bytes(big_png(9000))
    client = Client(url, verbose=False)
    before = rss_mb()
    start = time.perf_counter()
    for _ in range(3):
        with pytest.raises(AppError, match="9000x9000 = 81 MP, over the 25 MP limit"):
            client.predict(handle_file(str(path)), "udnie", 1.0, None, 0.5, None, 0.5, 1.0, False, 256,
                           api_name="/stylize")
    assert time.perf_counter() - start < 10
    data_url = {"url": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode(),
                "meta": {"_type": "gradio.FileData"}}
    status, error = raw_call(url, fn_index(app, "stylize"), [data_url, "udnie", 1.0, None, 0.5, None, 0.5, 1.0,
                                                             False, 256, 1.0])
    assert status == 400 and "over the 25 MP limit" in error  # refused at the queue's door, by its header
    flood = b'{"data": ["' + b"A" * (24 * 1024 * 1024) + b'"]}'
    for _ in range(5):
        response = httpx.post(url + "gradio_api/queue/join", content=flood, timeout=30,
                              headers={"content-type": "application/json"})
        assert response.status_code == 413 and "at most 20 MB" in response.json()["detail"]
    assert rss_mb() - before < 200
    client.close()


def test_sixteen_bit_alpha_and_cmyk_uploads_are_decoded_by_our_loader(server, tmp_path):
    """Gradio would turn a 16-bit grey ramp white and transparency black: our loader keeps mid-grey and puts
    transparent areas on white (strength 0 returns the photo as decoded)."""
    from gradio_client import Client, handle_file

    url, _, _ = server
    ramp = np.tile(np.linspace(0, 65535, 128).astype(np.uint16), (64, 1))
    grey = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(grey)
    assert Image.open(grey).mode.startswith("I")
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(clear)
    client = Client(url, verbose=False)
    outs = [np.asarray(Image.open(client.predict(handle_file(str(p)), "udnie", 1.0, None, 0.5, None, 0.5, 0.0,
                                                 False, 256, api_name="/stylize")).convert("RGB")).astype(float)
            for p in (grey, clear)]
    client.close()
    assert abs(outs[0].mean() - 127.5) < 3, outs[0].mean()
    assert outs[1].mean() > 250


def test_bad_values_through_every_endpoint_give_one_line_errors(server, photo, capfd):
    """NaN, infinity, out-of-range numbers, junk and missing values, sent raw to every event (private ones too):
    each is refused with one line, nothing runs, and the server prints no traceback."""
    url, app, _ = server
    capfd.readouterr()
    photo_data = {"url": "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode(),
                  "meta": {"_type": "gradio.FileData"}}
    style = ["udnie", 1.0, None, 0.5, None, 0.5]
    nan, inf = float("nan"), float("inf")
    calls = {
        "stylize": [[photo_data, "udnie", nan, None, 0.5, None, 0.5, 1.0, False, 256, 1.0],
                    [photo_data, *style, inf, False, 256, 1.0],
                    [photo_data, *style, 1.0, False, nan, 1.0],
                    [photo_data, *style, 1.0, False, 256, nan],
                    [photo_data, "no_such_style", 1.0, None, 0.5, None, 0.5, 1.0, False, 256, 1.0]],
        "refine": [[photo_data, *style, 1.0, False, 256, 1.0, nan], [photo_data, *style, 1.0, False, 256, 1.0, 1e9]],
        "gatys": [[photo_data, photo_data, nan, 10, False], [photo_data, photo_data, 64, -5, False],
                  [photo_data, None, 64, 10, False]],
        "add_style": [[photo_data, "x", nan], [None, "x", 5], [photo_data, "x", 10 ** 9]],
        "after_add": [[]],
        "pick_style": [[]],
    }
    refused = 0
    for name, attempts in calls.items():
        for data in attempts:
            event_data = {"index": 10 ** 6, "value": None} if name == "pick_style" else None
            status, error = raw_call(url, fn_index(app, name), data, event_data=event_data)
            if name == "after_add":  # a page update of the caller's own (empty) session: harmless, no error
                assert status == 200
                continue
            assert status in (200, 400) and isinstance(error, str) and error, (name, data, error)
            assert "\n" not in error and "/tmp" not in error and "Traceback" not in error, error
            refused += 1
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    assert len(re.findall(r"^multistyle demo: .*(refused|failed)", err, re.M)) == refused, err[-2000:]  # one each


def test_save_styles_on_a_public_address_is_refused(tmp_path):
    """``--save-styles`` with --share or a non-loopback --host: one line, exit 2, before anything loads."""
    env = {**os.environ, "MULTISTYLE_HOME": str(tmp_path)}
    for extra in (["--share"], ["--host", "0.0.0.0"]):
        done = subprocess.run([sys.executable, "-m", "multistyle", "demo", "--save-styles", *extra],
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "--save-styles-public" in done.stderr, done.stderr


def test_a_stopped_server_leaves_no_session_folder(tmp_path, photo):
    """``multistyle demo`` stopped with Ctrl-C (SIGINT) after a visitor added a style: no folder is left in the
    temp dir; a folder of a server that is gone is swept at the next start."""
    from gradio_client import Client, handle_file

    temp = tmp_path / "tmp"
    temp.mkdir()
    stale = temp / f"{FOLDER_PREFIX}999999-abc"  # a server that died without cleaning up
    (stale / "session-x").mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(temp), "MULTISTYLE_HOME": str(tmp_path / "home"),
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    server = subprocess.Popen([sys.executable, "-m", "multistyle", "demo", "--port", str(port), "--device", "cpu"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert wait_for(lambda: _up(url), 120), "the demo did not start"
        assert not stale.exists()
        client = Client(url, verbose=False)
        client.predict(handle_file(str(SCREAM)), "mine", 2, api_name="/add_style")
        assert any(temp.glob(f"{FOLDER_PREFIX}*/session-*/*.safetensors"))
        server.send_signal(signal.SIGINT)
        server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
    left = [str(p.relative_to(temp)) for p in temp.rglob("*")]
    assert not list(temp.glob(f"{FOLDER_PREFIX}*")) and not list(temp.glob("multistyle-session-*")), \
        (left, server.returncode, server.stdout.read()[-3000:] if server.stdout else "")


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def gatys_job(photo: Path) -> list:
    """A /gatys call's data: a 64 px job of up to 500 steps (the budget set by the test ends it)."""
    return [inline(photo.read_bytes(), "image/png"), inline(SCREAM.read_bytes()), 64, 500, False]


def test_one_client_alone_may_fill_the_slow_lane_and_a_newcomer_still_gets_in(server, photo):
    """Client A (127.0.0.2) sends Gatys jobs from 4 sessions to a slow lane with room for 2 waiting: alone, 3 are
    admitted (the worker and the room) and the fourth refused with one plain sentence (A holds the most); client
    B (127.0.0.3) then joins the full room: admitted, A's newest waiting job gives up its place, and B is served
    before A's second job (clients in turn)."""
    url, app, _ = server
    host = app.multistyle_host
    index, job = fn_index(app, "gatys"), gatys_job(photo)
    host.options.gatys_seconds, host.options.slow_waiting = 2, 2
    finished: dict[str, float] = {}

    def call(name: str, source: str):
        outcome = raw_call(url, index, job, source=source)
        finished[name] = time.perf_counter()
        return outcome

    try:
        with ThreadPoolExecutor(5) as pool:
            a = []
            for i in range(3):
                a.append(pool.submit(call, f"a{i}", "127.0.0.2"))
                assert wait_for(lambda n=i + 1: held(app, "slow", "127.0.0.2") >= n, 30)
            a.append(pool.submit(call, "a3", "127.0.0.2"))
            assert wait_for(lambda: a[3].done(), 30)  # the room is full and A holds the most: refused at once
            b = pool.submit(call, "b", "127.0.0.3")
            outcomes = [f.result(timeout=120) for f in a] + [b.result(timeout=120)]
    finally:
        host.options.gatys_seconds, host.options.slow_waiting = GATYS_SECONDS, 4
    refused = [out for status, out in outcomes if status == 400 or isinstance(out, str)]
    assert outcomes[3][0] == 400 and outcomes[-1][0] == 200 and not isinstance(outcomes[-1][1], str), outcomes
    assert len(refused) == 2 and isinstance(outcomes[2][1], str), outcomes  # a3 refused, a2 made room for B
    for reason in refused:
        assert reason.startswith("The page is busy") and "holds the most" in reason, reason
        assert reason.count(".") == 1 and "try again" in reason and "\n" not in reason
    assert finished["b"] < finished["a1"], finished  # B did not wait for both of A's


def test_a_crowd_behind_one_address_is_not_refused_while_the_page_is_idle(server, photo):
    """12 visitors behind one address (a class behind one router), each with a page of their own asking for two
    previews in a row: every call is served (the old cap of 2 per address refused 10 of the first 12)."""
    url, app, _ = server
    index, image = fn_index(app, "stylize"), inline(photo.read_bytes(), "image/png")

    def visitor(i: int) -> list:
        return [raw_call(url, index, stylize_args(image, 128), session=f"pupil{i}", source="127.0.0.6")
                for _ in range(2)]

    with ThreadPoolExecutor(12) as pool:
        outcomes = [o for calls in pool.map(visitor, range(12)) for o in calls]
    assert all(status == 200 and not isinstance(out, str) for status, out in outcomes), outcomes


def test_a_flood_from_one_address_does_not_lock_out_another(server, photo):
    """Client A floods previews from 10 sessions into a lane with room for 3 waiting; client B's previews are all
    served (a full room refuses the address holding the most, so B's join takes one of A's places)."""
    url, app, _ = server
    host = app.multistyle_host
    index, image = fn_index(app, "stylize"), inline(photo.read_bytes(), "image/png")
    stop, flood = threading.Event(), []

    def flooder() -> None:
        while not stop.is_set():
            flood.append(raw_call(url, index, stylize_args(image, 256), source="127.0.0.7"))
            time.sleep(0.05 if flood[-1][0] != 200 else 0)  # refused: ask again soon, as a script would

    host.options.fast_waiting = 3
    try:
        with ThreadPoolExecutor(11) as pool:
            for _ in range(10):
                pool.submit(flooder)
            try:
                assert wait_for(lambda: waiting_in(app, "fast") >= 3, 30)  # A fills the room
                mine = [raw_call(url, index, stylize_args(image, 128), source="127.0.0.8") for _ in range(3)]
            finally:
                stop.set()
    finally:
        host.options.fast_waiting = 64
    assert all(status == 200 and not isinstance(out, str) for status, out in mine), mine
    assert flood and all(status in (200, 400) for status, _ in flood)


def held(app, lane: str, client: str) -> int:
    """Events of ``client`` waiting or running in ``lane``."""
    from multistyle.apps.demo.guard import _events, event_client

    waiting, running = _events(app._queue, lane)
    return sum(1 for e in waiting + running if event_client(e) == client)


def waiting_in(app, lane: str) -> int:
    from multistyle.apps.demo.guard import waiting

    return waiting(app._queue, lane)


def test_fair_order_serves_clients_in_turn():
    """The waiting room's order: by round (events a client has running or ahead), first come within a round."""
    from multistyle.apps.demo.clients import fair_order

    waiting = ["a1", "a2", "a3", "b1", "c1", "b2"]
    order = fair_order(waiting, lambda e: e[0], lambda client: {"a": 1}.get(client, 0))
    assert order == ["b1", "c1", "a1", "b2", "a2", "a3"]
    # inside an address, its sessions in turn: session x's second event waits behind y's and z's first
    crowd = ["ax1", "ax2", "ay1", "az1", "b1"]
    order = fair_order(crowd, lambda e: e[0], lambda c: 0, lambda e: e[1])
    assert order == ["ax1", "b1", "ay1", "az1", "ax2"]
    # within a round, the client served longest ago goes first (a was just served, b never)
    assert fair_order(["a1", "b1"], lambda e: e[0], lambda c: 0, served=lambda k: {"a": 5}.get(k, -1)) == ["b1", "a1"]


def test_pick_keeps_a_worker_for_a_newcomer_and_caps_bind_only_under_contention():
    """One address alone takes every worker but the last; the last goes to an address with nothing running; a
    client at its cap gives way only while another waits."""
    from collections import Counter

    from multistyle.apps.demo.clients import heaviest, pick

    owner = lambda e: e[0]  # noqa: E731
    assert pick(["a1", "a2"], owner, Counter(a=2), workers=4, busy=2, per_client=2) == 0  # alone: over its cap
    assert pick(["a1", "a2"], owner, Counter(a=3), workers=4, busy=3, per_client=2) is None  # the last: kept
    assert pick(["a1", "b1"], owner, Counter(a=3), workers=4, busy=3, per_client=2) == 1  # ... for a newcomer
    assert pick(["a1", "b1"], owner, Counter(a=2, b=1), workers=8, busy=3, per_client=2) == 1  # a at its cap
    assert heaviest(Counter(a=5, b=1), {"a", "b"}, "b") == "a"  # b joins a full room: a gives up a place
    assert heaviest(Counter(a=5, b=1), {"a", "b"}, "a") is None  # a joins: a is refused
    assert heaviest(Counter(a=5), {"a"}, "c") == "a"  # a newcomer is never the one refused


def test_a_clients_rate_is_limited_with_a_plain_sentence():
    from multistyle.apps.demo import DemoOptions
    from multistyle.apps.demo.clients import ClientRate

    rate = ClientRate(DemoOptions(client_burst=3))
    assert [rate.refusal("127.0.0.2") for _ in range(3)] == [None] * 3
    reason = rate.refusal("127.0.0.2")
    assert reason == "Your address sent more than 3 requests a second; try again in a second."
    assert rate.refusal("127.0.0.3") is None  # another client is not affected


def test_forwarded_for_counts_only_behind_the_trusted_proxy(server, photo, tmp_path_factory):
    """Without --trusted-proxy an X-Forwarded-For header is ignored (the client is its socket's address); with
    --trusted-proxy 127.0.0.2, a request from 127.0.0.2 counts as the address it reports, from elsewhere not."""
    url, app, _ = server
    forged = {"x-forwarded-for": "10.1.2.3"}

    def clients_seen(url: str, app, source: str) -> list[str]:
        host, seen = app.multistyle_host, []
        host.options.gatys_seconds = 2
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(raw_call, url, fn_index(app, "gatys"), gatys_job(photo), source=source, headers=forged)
            assert wait_for(lambda: bool(seen.extend(host.jobs.clients("slow")) or seen), 30)
            assert job.result(timeout=60)[0] == 200
        host.options.gatys_seconds = GATYS_SECONDS
        return seen

    assert set(clients_seen(url, app, "127.0.0.2")) == {"127.0.0.2"}
    proxied_url, proxied = start_server(tmp_path_factory, tmp_path_factory.mktemp("proxied"),
                                        trusted_proxy="127.0.0.2", gatys_seconds=GATYS_SECONDS)
    try:
        assert set(clients_seen(proxied_url, proxied, "127.0.0.2")) == {"10.1.2.3"}
        assert set(clients_seen(proxied_url, proxied, "127.0.0.3")) == {"127.0.0.3"}
    finally:
        proxied.close()


class Tunnel(BaseHTTPRequestHandler):
    """Stands in for Gradio's share tunnel (frp): forwards a POST from loopback, the incoming X-Forwarded-For with
    the visitor's address appended (what frp's ``SetXForwarded`` does)."""

    target = ""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        forwarded = ", ".join(filter(None, [self.headers.get("x-forwarded-for"), self.client_address[0]]))
        answer = httpx.post(self.target + self.path, content=body, timeout=30,
                            headers={"content-type": "application/json", "x-forwarded-for": forwarded})
        self.send_response(answer.status_code)
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args) -> None:
        pass


def clients_recorded(app) -> list[str]:
    """Record the client of every queue join the server sees (wrapping the admission's push)."""
    from multistyle.apps.demo.clients import client_of

    seen, original = [], app._queue.push

    async def push(body, request, username):
        seen.append(client_of(request))
        return await original(body=body, request=request, username=username)

    app._queue.push = push
    return seen


def join(url: str, index: int, source: str, forwarded: str) -> int:
    body = json.dumps({"data": [], "fn_index": index, "session_hash": uuid.uuid4().hex[:11], "trigger_id": None})
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post(url + "gradio_api/queue/join", content=body, headers={
            "content-type": "application/json", "x-forwarded-for": forwarded}).status_code


def test_share_mode_trusts_the_tunnels_header_from_loopback_only(server, tmp_path_factory, monkeypatch):
    """With --share (Gradio's tunnel faked: no network), a join through a loopback proxy that appends the visitor's
    address counts as that visitor, whatever the visitor forged; the header from another address (127.0.0.2) is
    ignored; without --share the same proxy's header is ignored too."""
    import gradio.networking

    from multistyle.apps.demo import DemoOptions, build_app, launch

    monkeypatch.setattr(gradio.networking, "setup_tunnel", lambda **kwargs: "https://stand-in.gradio.live")
    options = DemoOptions(device="cpu", user_model=tmp_path_factory.mktemp("share") / "m.safetensors", threads=1)
    shared = build_app(options=options, temp_parent=str(tmp_path_factory.mktemp("share-tmp")))
    port = free_port()
    launch(shared, "127.0.0.1", port, share=True, block=False)
    tunnel = ThreadingHTTPServer(("127.0.0.1", 0), Tunnel)
    threading.Thread(target=tunnel.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{tunnel.server_address[1]}/"
    try:
        Tunnel.target = f"http://127.0.0.1:{port}"
        seen = clients_recorded(shared)
        index = fn_index(shared, "after_add")
        assert join(proxy, index, "127.0.0.5", "6.6.6.6") == 200  # a visitor through the tunnel, forging
        assert join(f"http://127.0.0.1:{port}/", index, "127.0.0.2", "10.9.9.9") == 200  # not from loopback
        assert seen == ["127.0.0.5", "127.0.0.2"], seen
        url, app, _ = server  # no --share, no --trusted-proxy: the tunnel's header counts for nothing
        push = app._queue.push
        Tunnel.target, seen = url.rstrip("/"), clients_recorded(app)
        try:
            assert join(proxy, fn_index(app, "after_add"), "127.0.0.5", "6.6.6.6") == 200
        finally:
            app._queue.push = push
        assert seen == ["127.0.0.1"], seen
    finally:
        tunnel.shutdown()
        shared.close()


def test_sessions_past_the_cap_free_their_state(tmp_path):
    """Ten visitors who each hold a stream and a download folder, with room for three: the registry keeps three,
    and every session it dropped has let go of its stream, its styles and its folder."""
    from multistyle.apps.demo import DemoOptions
    from multistyle.apps.demo.sessions import SessionFolders, SessionRegistry

    folders = SessionFolders(str(tmp_path))
    registry = SessionRegistry(DemoOptions(max_sessions=3, session_protect=0), folders)
    sessions = []
    for i in range(10):
        session = registry.open(f"visitor-{i}")
        session.live, session.folder = object(), folders.new()
        sessions.append(session)
    assert len(registry) == 3 and [registry.get(f"visitor-{i}") is not None for i in range(10)] == [False] * 7 + [True] * 3
    for dropped in sessions[:7]:
        assert dropped.closed and dropped.live is None and dropped.model is None and dropped.folder is None
    assert len(list(folders.root.iterdir())) == 3
    folders.close()


def test_results_are_written_once_and_never_while_sent(server, photo, tmp_path, capfd):
    """A result file is written atomically and never rewritten (the same picture again only touches it); many
    visitors asking for the same picture at once all receive it whole, and the server logs no traceback."""
    import httpx

    from multistyle.apps.demo.results import cached_image

    picture = np.full((32, 48, 3), 90, np.uint8)
    first = cached_image(picture, tmp_path)
    inode = os.stat(first).st_ino
    with open(first, "rb") as sending:  # a response streaming the file ...
        assert cached_image(picture, tmp_path) == first and os.stat(first).st_ino == inode  # ... is left alone
        assert Image.open(sending).size == (48, 32)
    assert cached_image(picture + 1, tmp_path) != first
    url, app, _ = server
    capfd.readouterr()
    data = [inline(photo.read_bytes(), "image/png"), "udnie", 1.0, None, 0.5, None, 0.5, 1.0, False, 256, 1.0]
    index = fn_index(app, "stylize")

    def fetch(i: int) -> tuple[int, int]:
        status, out = raw_call(url, index, data, source=f"127.0.0.{40 + i}")
        body = httpx.get(out[0]["url"], timeout=30).content
        return status, Image.open(__import__("io").BytesIO(body)).size[0]

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(fetch, range(12)))
    assert got == [(200, 256)] * 12, got
    assert "Traceback" not in capfd.readouterr().err
