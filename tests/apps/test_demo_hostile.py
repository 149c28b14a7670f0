"""The demo page against a hostile client: a real server on localhost (one for the module), driven by gradio_client
and by raw HTTP (the way a script would, private events included), clients told apart by their loopback source
address (127.0.0.2, 127.0.0.3 …). Budgets and sizes are small so the module stays quick."""

from __future__ import annotations

import base64
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from conftest import ROOT, wait_for
from gradio_client.exceptions import AppError
from PIL import Image

from benchmarks.demo_clients import big_png, inline, raw_call
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
    assert not list(temp.glob(f"{FOLDER_PREFIX}*")) and not list(temp.glob("multistyle-session-*")), \
        list(temp.iterdir())


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def gatys_job(photo: Path) -> list:
    """A /gatys call's data: a 64 px job of up to 500 steps (the budget set by the test ends it)."""
    return [inline(photo.read_bytes(), "image/png"), inline(SCREAM.read_bytes()), 64, 500, False]


def test_one_client_gets_its_share_however_many_sessions_it_opens(server, photo):
    """Client A (127.0.0.2) sends Gatys jobs from 4 sessions: 2 are admitted (its address's cap), 2 refused with
    one plain sentence; client B (127.0.0.3) is admitted and served before A's second job (clients in turn)."""
    url, app, _ = server
    host = app.multistyle_host
    index, job = fn_index(app, "gatys"), gatys_job(photo)
    host.options.gatys_seconds = 2
    finished: dict[str, float] = {}

    def call(name: str, source: str):
        outcome = raw_call(url, index, job, source=source)
        finished[name] = time.perf_counter()
        return outcome

    try:
        with ThreadPoolExecutor(5) as pool:
            a = [pool.submit(call, f"a{i}", "127.0.0.2") for i in range(4)]
            assert wait_for(lambda: sum(f.done() for f in a) == 2, 30)  # the two over A's cap, refused at once
            b = pool.submit(call, "b", "127.0.0.3")
            outcomes = [f.result(timeout=120) for f in a] + [b.result(timeout=120)]
    finally:
        host.options.gatys_seconds = GATYS_SECONDS
    refused = [out for status, out in outcomes if status == 400]
    assert len(refused) == 2 and outcomes[-1][0] == 200 and not isinstance(outcomes[-1][1], str), outcomes
    for reason in refused:
        assert reason.startswith("Your address already has 2 slow jobs") and reason.count(".") == 1, reason
        assert "try again" in reason and "\n" not in reason
    served = sorted((t, name) for name, t in finished.items() if name in {"b"} | {f"a{i}" for i in range(4)})
    a_served = [name for (status, _), name in zip(outcomes, ["a0", "a1", "a2", "a3"]) if status == 200]
    assert finished["b"] < max(finished[name] for name in a_served), served  # B did not wait for both of A's


def test_fair_order_serves_clients_in_turn():
    """The waiting room's order: by round (events a client has running or ahead), first come within a round."""
    from multistyle.apps.demo.clients import fair_order

    waiting = ["a1", "a2", "a3", "b1", "c1", "b2"]
    order = fair_order(waiting, lambda e: e[0], lambda client: {"a": 1}.get(client, 0))
    assert order == ["b1", "c1", "a1", "b2", "a2", "a3"]


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
