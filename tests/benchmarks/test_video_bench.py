"""``python -m benchmarks video --smoke``: the table and the JSON row carry the sound kept, the codec and the drift."""

from __future__ import annotations

import json

from benchmarks import runner as bench


def test_video_bench_smoke(tmp_path, capsys):
    assert bench.main(["video", "--smoke", "--out-dir", str(tmp_path), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "### Video files" in out and "| 64x48 |" in out
    [row] = json.loads((tmp_path / "v.json").read_text())["video"]
    assert row["frames"] == 24 and row["audio_kept"] is True and row["codec"].startswith("h264 High yuv420p + aac")
    assert row["drift_ms"] <= row["frame_ms"] and row["fps"] > 0
