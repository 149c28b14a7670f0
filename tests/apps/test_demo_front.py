"""The nginx front of README's "Safe to share" (``deploy/nginx.conf``, run as it is with this test's ports): Debian's
nginx as a non-daemon with a temporary prefix, in front of two demo replicas on loopback (``--trusted-proxy
127.0.0.1``); clients told apart by their loopback source address (127.0.0.2 …). Without nginx the module is
skipped, except under CI (which installs it), where that is a failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import ROOT, wait_for

from benchmarks.demo_clients import PHOTO, inline, jpeg, raw_call, stylize_args
from benchmarks.kit import free_port
from multistyle.apps.demo.guard import waiting

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = ROOT / "deploy" / "nginx.conf"
SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]


def require_nginx() -> None:
    if os.path.exists(NGINX):
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Debian's nginx is missing; .ci/run installs it with apt-get install nginx")
    pytest.skip("needs Debian's nginx: apt-get install nginx (CI installs it and runs this test)")


def nginx_conf(prefix, port: int, replicas: list[int]) -> str:
    """deploy/nginx.conf with this test's ports, inside a main config that keeps every file under ``prefix``."""
    site = CONF.read_text()
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:7861;", f"server 127.0.0.1:{replicas[0]};")
    site = site.replace("server 127.0.0.1:7862;", f"server 127.0.0.1:{replicas[1]};")
    assert site.count("server 127.0.0.1:") == 2 and f":{port};" in site
    (prefix / "multistyle.conf").write_text(site)
    temp = "\n".join(f"  {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                         "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # root's workers would run as nobody: no access to tmp
    return (f"{user}worker_processes 1;\nerror_log {prefix / 'error.log'};\npid {prefix / 'nginx.pid'};\n"
            f"events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n{temp}\n"
            f"  include {prefix / 'multistyle.conf'};\n}}\n")


def recorded(app, name: str, seen: list) -> None:
    """Record (replica, client) of every queue join the replica sees."""
    from multistyle.apps.demo.clients import client_of

    original = app._queue.push

    async def push(body, request, username):
        seen.append((name, client_of(request)))
        return await original(body=body, request=request, username=username)

    app._queue.push = push


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """nginx on a free loopback port in front of two in-process replicas → (nginx URL, replicas, joins seen)."""
    require_nginx()
    from multistyle.apps.demo import DemoOptions, build_app, launch

    replicas, ports, seen = [], [], []
    for name in ("r0", "r1"):
        options = DemoOptions(device="cpu", user_model=tmp_path_factory.mktemp(name) / "m.safetensors", threads=1,
                              live_size=128, trusted_proxy="127.0.0.1", client_burst=1000, client_per_minute=10**5)
        app = build_app(options=options, temp_parent=str(tmp_path_factory.mktemp(f"{name}-tmp")))
        ports.append(free_port())
        launch(app, "127.0.0.1", ports[-1], block=False)
        recorded(app, name, seen)
        replicas.append(app)
    prefix, port = tmp_path_factory.mktemp("nginx"), free_port()
    (prefix / "nginx.conf").write_text(nginx_conf(prefix, port, ports))
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert wait_for(lambda: nginx.poll() is not None or _up(url), 30) and nginx.poll() is None, \
            (nginx.stdout.read() if nginx.poll() is not None else "") + (prefix / "error.log").read_text()
        yield url, dict(zip(("r0", "r1"), replicas)), seen
    finally:
        nginx.terminate()
        nginx.wait(30)
        for app in replicas:
            app.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def join(url: str, index: int, source: str) -> int:
    """A cheap queue join (a page update of an empty session) from ``source``."""
    body = json.dumps({"data": [], "fn_index": index, "session_hash": uuid.uuid4().hex[:11], "trigger_id": None})
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post(url + "gradio_api/queue/join", content=body,
                           headers={"content-type": "application/json"}).status_code


def test_a_client_sticks_to_one_replica_which_sees_its_address_and_keeps_its_share(front):
    """Joins from 8 addresses through nginx: each address reaches one replica only, which counts it as itself (not
    as nginx); then, on the replica two addresses share, one floods previews into a room for 3 while the other's
    previews are all served."""
    url, replicas, seen = front
    update = next(i for i, fn in replicas["r0"].fns.items() if getattr(fn.fn, "__name__", "") == "after_add")
    for source in SOURCES:
        for _ in range(3):
            assert join(url, update, source) == 200
    where = {source: {name for name, client in seen if client == source} for source in SOURCES}
    assert all(len(names) == 1 for names in where.values()), where  # sticky
    assert {client for _, client in seen} == set(SOURCES), seen  # each replica saw the real client
    name = max(("r0", "r1"), key=lambda n: sum(1 for s in SOURCES if where[s] == {n}))
    a, b = [s for s in SOURCES if where[s] == {name}][:2]  # 8 addresses, 2 replicas: one has at least 4
    app, stop, flood = replicas[name], threading.Event(), []
    index = next(i for i, fn in app.fns.items() if fn.api_name == "stylize")
    image = inline(jpeg(PHOTO, 1024))  # the flood's previews take a while, so its events wait in the room

    def flooder() -> None:
        while not stop.is_set():
            flood.append(raw_call(url, index, stylize_args(image, 1024), source=a))
            time.sleep(0.05 if flood[-1][0] != 200 else 0)

    app.multistyle_host.options.fast_waiting = 3
    try:
        with ThreadPoolExecutor(8) as pool:
            for _ in range(7):
                pool.submit(flooder)
            try:
                assert wait_for(lambda: waiting(app._queue, "fast") >= 3, 30)  # A fills the room
                mine = [raw_call(url, index, stylize_args(image, 128), source=b) for _ in range(2)]
            finally:
                stop.set()
    finally:
        app.multistyle_host.options.fast_waiting = 64
    assert all(status == 200 and not isinstance(out, str) for status, out in mine), mine
    assert {n for n, client in seen if client in (a, b)} == {name}  # both stayed on their replica throughout


def test_a_page_visit_and_a_live_stream_pass_through_nginx(front, tmp_path):
    """Headless Chromium with a fake camera, through nginx: the page loads and the Live tab streams frames."""
    from test_demo import require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    from benchmarks.demo_browser import decode_data_url, launch_browser, live_log, start_live, write_y4m

    url, _, _ = front
    y4m = write_y4m(tmp_path / "camera.y4m", frames=24)
    with sync_playwright() as p:
        browser = launch_browser(p, y4m)
        page = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 900}).new_page()
        start_live(page, url)
        page.wait_for_function("window.__live.srcs.length >= 4", timeout=90_000)
        frames = [decode_data_url(u) for u in live_log(page)["srcs"]]
        rate = page.locator("#live-fps").inner_text()
        browser.close()
    assert len({f.tobytes() for f in frames}) >= 3 and all(max(f.shape[:2]) == 128 for f in frames)
    assert re.search(r"\d+\.\d fps served", rate), rate
