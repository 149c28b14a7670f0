"""Video files in and out (PyAV): the sound kept, H.264 a browser plays, frame times and rotation kept, damaged files
one line, Ctrl-C leaving a playable file. Tiny clips made at test time (64×48, about a second), the real network."""

from __future__ import annotations

import os

import av
import pytest
from conftest import assert_one_line_error, run_cli

from benchmarks.clips import CHROMIUM, play_in_chromium, synthetic_clip
from multistyle.errors import MultistyleError
from multistyle.video.media import probe

VFR_TIMES = [0.0, 0.04, 0.1, 0.3, 0.34, 0.5, 0.52, 0.54, 0.8, 0.95, 1.2, 1.25]  # a phone's uneven frame times


def streams(path) -> dict:
    """What a file holds: the video's codec, pixel format, frame times (s) and display rotation; the sound's codec,
    rate and length; where the moov atom is."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = sorted(float(p.pts * p.time_base) for p in c.demux(v) if p.pts is not None)
        c.seek(0)
        rotation = next(c.decode(video=0)).rotation
        out = {"codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt, "times": times,
               "size": (v.width, v.height), "rotation": rotation, "audio": None}
        if c.streams.audio:
            a = c.streams.audio[0]
            out.update(audio=a.codec_context.name, rate=a.sample_rate, audio_s=float(a.duration * a.time_base))
    head = open(path, "rb").read(4096)
    out["moov_first"] = 0 <= head.find(b"moov") < (head.find(b"mdat") if b"mdat" in head else 1 << 30)
    return out


@pytest.fixture(scope="module")
def styled(tmp_path_factory):
    """A variable-frame-rate, rotated clip with AAC sound through ``multistyle video`` (one CLI run for the
    module) → (input, output, the run)."""
    folder = tmp_path_factory.mktemp("clips")
    clip = synthetic_clip(folder / "phone.mp4", times=VFR_TIMES, rotation=90)
    out = folder / "styled.mp4"
    result = run_cli("video", str(clip), "-s", "udnie", "-o", str(out), "--device", "cpu")
    return clip, out, result


def test_sound_in_sound_out_with_the_frame_times_and_rotation(styled):
    clip, out, result = styled
    assert result.returncode == 0, result.stderr.decode()
    assert f"{len(VFR_TIMES)} frames" in result.stdout.decode() and "sound aac kept" in result.stdout.decode()
    src, got = streams(clip), streams(out)
    assert (got["codec"], got["pix_fmt"], got["moov_first"]) == ("h264", "yuv420p", True)  # what browsers play
    assert (got["audio"], got["rate"]) == ("aac", src["rate"])
    assert got["audio_s"] == pytest.approx(src["audio_s"], abs=0.03)  # the whole sound, copied
    assert got["times"] == pytest.approx(src["times"], abs=2e-3)  # uneven frame times kept: in sync with the sound
    assert got["size"] == src["size"] and got["rotation"] == src["rotation"] == 90
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_the_output_plays_in_headless_chromium(styled):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI is set but Debian's chromium is missing")
        pytest.skip("needs Debian's chromium: apt-get install chromium")
    clip, out, _ = styled
    state = play_in_chromium(out)
    assert state["ready"] >= 2 and not state["error"], state
    assert state["duration"] == pytest.approx(probe(clip).duration, abs=0.05)  # the input's length
    assert (state["width"], state["height"]) == (48, 64)  # shown upright: the rotation is honoured


@pytest.fixture(scope="module")
def process():
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import FrameSettings, FrameStylizer

    stylizer = get_stylizer(None, "cpu")
    return lambda: FrameStylizer(stylizer, FrameSettings(style_weights("udnie", stylizer.names)), 1 << 30)


def test_no_sound_in_gives_a_valid_file_and_other_sound_becomes_aac(tmp_path, process):
    from multistyle.video.render import render_file

    silent = render_file(synthetic_clip(tmp_path / "silent.mp4", audio=None), tmp_path / "a.mp4", process())
    assert silent.complete and silent.frames == 24
    got = streams(silent.path)
    assert got["audio"] is None and got["codec"] == "h264" and len(got["times"]) == 24
    pcm = synthetic_clip(tmp_path / "camera.mov", audio="pcm_s16le", container="mov", sample_rate=48000)
    got = streams(render_file(pcm, tmp_path / "b.mp4", process()).path)
    assert (got["audio"], got["rate"]) == ("aac", 48000)  # PCM cannot go in an MP4 a browser plays: re-encoded
    assert got["audio_s"] == pytest.approx(1.0, abs=0.05)


def test_ctrl_c_keeps_a_playable_file_of_what_was_done(tmp_path, process):
    from multistyle.video.render import Interrupted, render_file

    def stop_after_ten(done, _total):
        if done == 10:
            raise KeyboardInterrupt

    out = tmp_path / "part.mp4"
    with pytest.raises(Interrupted) as stopped:
        render_file(synthetic_clip(tmp_path / "clip.mp4"), out, process(), progress=stop_after_ten)
    assert stopped.value.result.path == out and stopped.value.result.frames == 10
    got = streams(out)
    assert len(got["times"]) == 10 and got["audio_s"] == pytest.approx(10 / 24, abs=0.03)  # sound cut to match
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "part.mp4"]  # no temp file left


def test_a_truncated_file_is_one_line_and_exit_2(tmp_path, process):
    from multistyle.video.render import render_file

    whole = synthetic_clip(tmp_path / "whole.mp4", seconds=2.0)  # moov atom at the end (no faststart)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    line = assert_one_line_error(run_cli("video", str(cut), "-o", str(tmp_path / "o.mp4")))
    assert "cut.mp4" in line and "not a video file this tool can read" in line
    assert not (tmp_path / "o.mp4").exists()
    # moov first, the picture cut short: found at the end of the picture, and nothing is written
    styled = render_file(whole, tmp_path / "fast.mp4", process()).path
    short = tmp_path / "short.mp4"
    short.write_bytes(styled.read_bytes()[: styled.stat().st_size * 2 // 3])
    with pytest.raises(MultistyleError, match="truncated or damaged"):
        render_file(short, tmp_path / "o.mp4", process())
    assert not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob(".o.mp4*"))


def test_a_live_recording_uses_the_faster_encoder_preset(tmp_path):
    """The webcam's recordings keep pace beside the network (x264 ultrafast); rendered files keep veryfast. x264
    writes its settings into the stream: ultrafast searches sub-pixels not at all (subme=0), veryfast does."""
    import numpy as np

    from multistyle.video.media import MediaWriter

    frames = np.random.default_rng(0).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    written = {}
    for live in (True, False):
        writer = MediaWriter(tmp_path / f"live_{live}.mp4", 30, live=live)
        for frame in frames:
            writer.write(frame)
        writer.close()
        written[live] = (tmp_path / f"live_{live}.mp4").read_bytes()
    assert b"subme=0" in written[True] and b"subme=0" not in written[False]
    assert b"x264" in written[False]
