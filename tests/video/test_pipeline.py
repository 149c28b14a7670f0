"""The threaded pipeline: explicit stages in order, steady frame rate, errors surfaced, files fully processed."""

from __future__ import annotations

import pytest
from conftest import DATA

from multistyle.errors import MultistyleError
from multistyle.video.pipeline import RunStats, run_pipeline

CLIP = DATA / "video" / "bunny.mp4"


def test_stages_run_in_order_on_every_frame_of_a_file():
    seen = []
    stats = run_pipeline(str(CLIP), [lambda f: f.shape, lambda shape: (shape, len(shape))],
                         lambda shape, n: seen.append((shape, n)) or True, max_frames=7, log=lambda _m: None)
    assert stats.frames_in == stats.frames_out == 7 and len(seen) == 7
    assert all(n == 3 and shape[2] == 3 for shape, n in seen)


def test_a_failing_stage_stops_the_pipeline_and_raises():
    def broken(_frame):
        raise MultistyleError("stage broke")

    with pytest.raises(MultistyleError, match="stage broke"):
        run_pipeline(str(CLIP), [broken], lambda *_: True, max_frames=50, log=lambda _m: None)


def test_the_rate_counts_from_the_first_frame_out():
    assert RunStats(frames_out=11, seconds=9.0, first_out=4.0, last_out=6.0).fps == pytest.approx(5.0)
    assert RunStats(frames_out=1, seconds=2.0, first_out=2.0, last_out=2.0).fps == pytest.approx(0.5)


def test_realtime_reads_a_file_at_its_frame_rate_and_reports_latency():
    import time

    start = time.perf_counter()
    stats = run_pipeline(str(CLIP), [lambda f: (f, f)], lambda *_: True, max_frames=12, log=lambda _m: None,
                         realtime=True)
    elapsed = time.perf_counter() - start
    assert elapsed >= 11 / 24 - 0.05  # bunny.mp4 is 24 fps: 12 frames take at least 11 frame periods
    assert stats.frames_out >= 10 and len(stats.latencies) == stats.frames_out
    assert 0 < stats.latency_ms < 200


def test_latency_is_kept_over_a_bounded_window():
    """A webcam runs for hours: the stats keep the last LATENCY_WINDOW latencies, and the median is theirs."""
    from multistyle.video.pipeline import LATENCY_WINDOW

    stats = RunStats()
    for i in range(LATENCY_WINDOW + 500):
        stats.frames_out += 1
        stats.latencies.append(0.5 if i < 500 else 0.01)
    assert len(stats.latencies) == LATENCY_WINDOW
    assert stats.latency_ms == pytest.approx(10.0)
    short = RunStats(frames_out=3)
    short.latencies.extend([9.0, 9.0, 0.02])  # the first two frames (warm-up) are left out
    assert short.latency_ms == pytest.approx(20.0)
