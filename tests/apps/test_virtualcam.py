"""``multistyle webcam --virtual-camera``: the one-line error where no virtual camera exists, and the frames handed
to pyvirtualcam where it finds one (a backend registered through pyvirtualcam's own ``register_backend``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import DATA, assert_one_line_error, run_cli

from multistyle.apps.virtualcam import VirtualCamera
from multistyle.errors import MultistyleError

CLIP = DATA / "video" / "bunny.mp4"
EXTRA = 'the virtualcam extra: pip install -e ".[virtualcam]"'

try:
    import pyvirtualcam
except ImportError:
    pyvirtualcam = None


def has_a_device() -> bool:
    try:
        VirtualCamera.open().close()
    except MultistyleError:
        return False
    return True


def test_no_virtual_camera_is_a_one_line_error_saying_what_to_install():
    if pyvirtualcam is not None and has_a_device():
        pytest.skip("this machine has a virtual camera device")
    result = run_cli("webcam", "--source", str(CLIP), "--headless", "--virtual-camera", "--size", "64",
                     "--max-frames", "2", "--device", "cpu")
    line = assert_one_line_error(result)
    if pyvirtualcam is None:
        assert 'pip install "multistyle[virtualcam]"' in line
    else:
        assert "no virtual camera found" in line and "v4l2loopback" in line and "OBS" in line


def test_without_pyvirtualcam_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # as if the extra were not installed
    with pytest.raises(MultistyleError, match=r'pip install "multistyle\[virtualcam\]"'):
        VirtualCamera.open()


class RecordingCamera:
    """A pyvirtualcam backend (its documented Backend interface) that keeps what it is sent."""

    opened: list[tuple[int, int, int]] = []
    frames: list[np.ndarray] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device, **kw) -> None:
        self.shape = (height, width)
        RecordingCamera.opened.append((width, height, fourcc))

    def close(self) -> None:
        pass

    def send(self, frame: np.ndarray) -> None:
        RecordingCamera.frames.append(frame.reshape(*self.shape, 3).copy())

    def device(self) -> str:
        return "recording"

    def native_fourcc(self):
        return None


def test_the_webcam_app_hands_its_stylized_frames_to_the_virtual_camera(monkeypatch):
    if pyvirtualcam is None:
        pytest.skip(EXTRA)
    from pyvirtualcam.camera import BACKENDS
    from pyvirtualcam.util import encode_fourcc

    from multistyle.apps.webcam import WebcamOptions, run_webcam

    monkeypatch.setattr(RecordingCamera, "opened", [])
    monkeypatch.setattr(RecordingCamera, "frames", [])
    monkeypatch.setitem(BACKENDS, "multistyle-test", RecordingCamera)  # tried after the system's own backends
    stats = run_webcam(WebcamOptions(source=str(CLIP), headless=True, virtual_camera=True, max_frames=3, size=64,
                                     device="cpu"))
    assert stats.frames_out == 3 and len(RecordingCamera.frames) == 3
    bgr = encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
    assert RecordingCamera.opened[0] == (640, 480, bgr)  # found at the probe size ...
    assert RecordingCamera.opened[-1] == (64, 36, bgr)  # ... then reopened at the frames' size
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    ok, first = cap.read()
    source = cv2.resize(first, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert all(f.shape == (36, 64, 3) and f.dtype == np.uint8 for f in RecordingCamera.frames)
    assert np.abs(RecordingCamera.frames[0].astype(np.float32) - source).mean() > 10  # stylized, not the camera
