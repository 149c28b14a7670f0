"""Who a request comes from, and each client's fair share of a lane.

A client is the address its connection comes from; only behind a proxy the host names (``--trusted-proxy``, off by
default) is it the address that proxy reports in ``X-Forwarded-For``. Uvicorn reads that header for us, for the
trusted proxy alone (:func:`proxy_environment`); without ``--trusted-proxy`` it trusts nobody, so a client on the
server's own host cannot claim another address either.

:class:`ClientRate` is the rate/burst part: ``limits``' sliding-window counter per client (two counters per client
and window, so its memory stays small however a client sends). :func:`fair_order` is the round-robin: a lane's
waiting room serves clients in turn, however many sessions each has."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator, Sequence

from .options import DemoOptions

UNKNOWN = "unknown"


def client_of(request) -> str:
    """The client address of a Starlette/Gradio request (the proxy's report when the proxy is trusted)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or UNKNOWN


@contextlib.contextmanager
def proxy_environment(trusted_proxy: str | None) -> Iterator[None]:
    """While the server starts: uvicorn trusts ``X-Forwarded-For`` from ``trusted_proxy`` only (nobody when None;
    uvicorn's own default would trust 127.0.0.1)."""
    previous = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxy or ""
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
               running: Callable[[str], int]) -> list:
    """A lane's waiting events in the order that serves clients in turn: each event's round is how many events
    its client has running or ahead of it; events are served by round, first come first within a round (so a
    client's sixth event waits behind every other client's first)."""
    rounds: dict[str, int] = {}
    keyed = []
    for index, event in enumerate(waiting):
        owner = client_of_event(event)
        rounds[owner] = rounds.get(owner, running(owner)) + 1
        keyed.append((rounds[owner] - 1, index, event))
    return [event for _, _, event in sorted(keyed, key=lambda k: k[:2])]
