"""The webcam filter's virtual camera (``multistyle webcam --virtual-camera``): stylized frames go to the system's
virtual camera through ``pyvirtualcam`` (OBS Virtual Camera on Windows/macOS, v4l2loopback on Linux), so Zoom, Meet
or OBS can pick the filter as a camera. ``pyvirtualcam`` is the optional extra ``multistyle[virtualcam]``."""

from __future__ import annotations

import numpy as np

from ..errors import MultistyleError

INSTALL_HINT = ("install a virtual camera: OBS Studio (its Virtual Camera) on Windows/macOS, v4l2loopback on Linux "
                "(sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback)")
PROBE_SIZE = (640, 480)  # the device is opened at this size first, then at the size of the first frame


def _pyvirtualcam():
    try:
        import pyvirtualcam
    except ImportError:
        raise MultistyleError('--virtual-camera needs pyvirtualcam: pip install "multistyle[virtualcam]"') from None
    return pyvirtualcam


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


class VirtualCamera:
    """A virtual camera fed with BGR uint8 frames; it follows the frame size (reopened when the size changes).

    :meth:`open` fails at once, with one line saying what to install, where there is no virtual camera device."""

    def __init__(self, camera, fps: float, backend: str | None, device: str | None) -> None:
        self.camera = camera  # a pyvirtualcam.Camera
        self.fps, self.backend, self.device = fps, backend, device

    @classmethod
    def open(cls, fps: float = 25.0, backend: str | None = None, device: str | None = None) -> "VirtualCamera":
        """Find and open a virtual camera (``backend``/``device``: pyvirtualcam's, None = the first that works)."""
        return cls(cls._camera(PROBE_SIZE, fps, backend, device), fps, backend, device)

    @staticmethod
    def _camera(size: tuple[int, int], fps: float, backend: str | None, device: str | None):
        pyvirtualcam = _pyvirtualcam()
        width, height = size
        try:
            return pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                       backend=backend, device=device)
        except Exception as exc:  # noqa: BLE001 - pyvirtualcam raises RuntimeError/ValueError per backend
            raise MultistyleError(f"no virtual camera found ({_first_line(exc)}); {INSTALL_HINT}") from None

    @property
    def name(self) -> str:
        """The device in use, as the video apps list it."""
        return str(self.camera.device) if self.camera is not None else "closed"

    def send(self, frame: np.ndarray) -> None:
        """Send one BGR uint8 [H, W, 3] frame (the camera is reopened at a new frame size)."""
        if self.camera is None:
            raise MultistyleError("the virtual camera is closed")
        h, w = frame.shape[:2]
        if (self.camera.width, self.camera.height) != (w, h):
            self.camera.close()
            self.camera = None
            self.camera = self._camera((w, h), self.fps, self.backend, self.device)
        self.camera.send(np.ascontiguousarray(frame, dtype=np.uint8))

    def close(self) -> None:
        """Release the device (idempotent)."""
        if self.camera is not None:
            self.camera.close()
            self.camera = None
