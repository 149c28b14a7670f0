"""Who a request comes from, and the fair-share policy of a lane.

A client is the address its connection comes from. Only behind a proxy the host names (``--trusted-proxy``) or,
with ``--share``, behind Gradio's tunnel (it connects from loopback) is it the address the proxy reports in
``X-Forwarded-For``. Uvicorn reads that header for us, for the trusted addresses alone (:func:`trusted_addresses`,
:func:`proxy_environment`); otherwise it trusts nobody, so a client on the server's own host cannot claim another
address either.

The policy (:data:`POLICY`, also in ``multistyle demo --help``) is work-conserving: :func:`fair_order` serves a
lane's waiting room by address in turn and, inside an address, by session in turn; :func:`pick` starts the next
event (a client's cap binds only while another address waits, and one worker is kept for an address with nothing
running); :func:`heaviest` names whom a full waiting room refuses. :class:`ClientRate` is the rate/burst part:
``limits``' sliding-window counter per client (two counters per client and window, so its memory stays small
however a client sends)."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Callable, Iterator, Sequence

from .options import DemoOptions

UNKNOWN = "unknown"
LOOPBACK = "127.0.0.1,::1"
POLICY = ("Each lane serves client addresses in turn, and inside an address its sessions in turn; an address alone "
          "may use the whole page (every worker but one, kept for a newcomer), and its caps (--fast-per-client, "
          "--slow-per-client, --live-per-client) bind only while another address waits. A full waiting room "
          "refuses the address holding the most in it, never a newcomer, and each address has a rate "
          "(--client-burst) a paced crowd stays within and a flood does not.")


def client_of(request) -> str:
    """The client address of a Starlette/Gradio request (the proxy's report when the proxy is trusted)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or UNKNOWN


def trusted_addresses(trusted_proxy: str | None, share: bool) -> str:
    """Whose ``X-Forwarded-For`` uvicorn believes: ``--trusted-proxy``, plus loopback with ``--share``.

    Gradio's share link is frp: ``gradio/tunneling.py`` runs ``frpc http -l PORT -i HOST``, so every visitor's
    request reaches this server from loopback through frpc, and the share server (frps) forwards it with
    ``httputil.ReverseProxy`` whose ``Rewrite`` copies the incoming ``X-Forwarded-For`` and calls
    ``SetXForwarded()``, which appends the visitor's own address (fatedier/frp, ``pkg/util/vhost/http.go``).
    Uvicorn takes the rightmost address it does not trust, so what a visitor writes into the header itself is
    ignored. Without ``--share`` loopback is not trusted (uvicorn's own default would trust 127.0.0.1)."""
    items = [v for v in (trusted_proxy or "").split(",") if v]
    if share:
        items += [v for v in LOOPBACK.split(",") if v not in items]
    return ",".join(items)


@contextlib.contextmanager
def proxy_environment(trusted: str | None) -> Iterator[None]:
    """While the server starts: uvicorn trusts ``X-Forwarded-For`` from ``trusted`` only (nobody when empty)."""
    previous = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = trusted or ""
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("FORWARDED_ALLOW_IPS", None)
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = previous


class ClientRate:
    """Queue joins per client: at most ``client_burst`` a second and ``client_per_minute`` a minute."""

    def __init__(self, options: DemoOptions) -> None:
        from limits import RateLimitItemPerMinute, RateLimitItemPerSecond, storage, strategies

        self.items = (RateLimitItemPerSecond(options.client_burst), RateLimitItemPerMinute(options.client_per_minute))
        self.limiter = strategies.SlidingWindowCounterRateLimiter(storage.MemoryStorage())

    def refusal(self, client: str) -> str | None:
        """Why this client's join is refused now (None: within its rate; the join is counted)."""
        for item, when in zip(self.items, ("in a second", "in a minute")):
            if not self.limiter.hit(item, client):
                return (f"Your address sent more than {item.amount} requests a {item.GRANULARITY.name}; "
                        f"try again {when}.")
        return None


def fair_order(waiting: Sequence[object], client_of_event: Callable[[object], str],
               running: Callable[[str], int], session_of_event: Callable[[object], object] = id,
               session_running: Callable[[object], int] = lambda s: 0,
               served: Callable[[object], int] = lambda key: -1) -> list:
    """A lane's waiting events in the order that serves clients in turn, and each client's sessions in turn.

    Inside a client, its events go by session round (how many events the session has running or ahead); the
    client's k-th event in that order has round ``running(client) + k``; events are served by round, and within a
    round the client (or session) served longest ago goes first (``served``: when a client or session last had an
    event started, -1 never), then first come (so a client's sixth event waits behind every other client's
    first, and a client just served waits behind one that was not)."""
    by_client: dict[str, list[tuple[int, int, int, object]]] = {}
    session_rounds: dict[object, int] = {}
    for index, event in enumerate(waiting):
        session = session_of_event(event)
        session_rounds[session] = session_rounds.get(session, session_running(session)) + 1
        by_client.setdefault(client_of_event(event), []).append(
            (session_rounds[session] - 1, served(session), index, event))
    keyed = []
    for client, events in by_client.items():
        base, turn = running(client), served(client)
        keyed += [(base + k, turn, index, event)
                  for k, (_, _, index, event) in enumerate(sorted(events, key=lambda e: e[:3]))]
    return [event for *_, event in sorted(keyed, key=lambda k: k[:3])]


class Turns:
    """When each client and session of a lane last had an event started (a counter, not a clock), for the
    ``served`` of :func:`fair_order`; the ``keep`` most recent only, so memory stays bounded however many come."""

    def __init__(self, keep: int = 4096) -> None:
        from collections import OrderedDict

        self.keep, self.count, self.last = keep, 0, OrderedDict()

    def started(self, *keys: object) -> None:
        self.count += 1
        for key in keys:
            self.last[key] = self.count
            self.last.move_to_end(key)
        while len(self.last) > self.keep:
            self.last.popitem(last=False)

    def __call__(self, key: object) -> int:
        return self.last.get(key, -1)


def pick(order: Sequence[object], client_of_event: Callable[[object], str], running: Counter, workers: int,
         busy: int, per_client: int) -> int | None:
    """Which event of a lane's fair ``order`` starts on the next free worker (None: none now).

    Work-conserving: the first event whose client is under ``per_client`` running, or any client when no other
    client waits; the last free worker of a lane with several goes only to a client with nothing running (a
    newcomer then starts at once, whatever one address has queued)."""
    last = workers > 1 and busy >= workers - 1
    waiting_clients = Counter(client_of_event(e) for e in order)
    fallback = None
    for i, event in enumerate(order):
        client = client_of_event(event)
        if last and running[client] > 0:
            continue
        if running[client] < per_client or len(waiting_clients) == 1:
            return i
        fallback = i if fallback is None else fallback
    return fallback


def heaviest(holding: Counter, waiting_clients: set[str], joiner: str) -> str | None:
    """A full waiting room's choice: None when ``joiner`` holds at least as much as every other client with an
    event waiting (the joiner is refused), else the client holding the most (one of its waiting events makes
    room). A newcomer holds nothing, so it is never the one refused while another client waits."""
    others = [c for c in waiting_clients if c != joiner]
    if not others:
        return None
    top = max(others, key=lambda c: holding[c])
    return top if holding[top] > holding[joiner] else None
