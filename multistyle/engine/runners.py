"""Runners: a graph (:mod:`multistyle.engine.graph`) compiled by one engine for one input shape, called with
NumPy arrays. ``torch`` runs the graph module eagerly (the reference), ``openvino`` and ``onnxruntime`` compile its
ONNX file. Each runner is safe to call from several threads at once (OpenVINO: one infer request per thread)."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MultistyleError
from ..signal_stack import ensure_roomy_signal_stack
from .graph import affine_width, graph_module, onnx_graph



class EngineError(MultistyleError):
    """An unknown engine, or one that is not installed here."""


def engine_module(engine: str):
    """Import an optional engine's package, or raise :class:`EngineError` with the command that installs it."""
    try:
        return importlib.import_module(engine)
    except ImportError:
        raise EngineError(f"engine {engine} is not installed here (pip install {engine}); "
                          "use --engine auto or torch") from None


def installed(engine: str) -> bool:
    """Whether ``engine`` can be used here (torch always)."""
    if engine == "torch":
        return True
    try:
        engine_module(engine)
    except EngineError:
        return False
    return True


def engine_version(engine: str) -> str:
    """``engine`` and its package version (part of the key a measured choice is cached under)."""
    return f"{engine} {getattr(engine_module(engine), '__version__', '?')}"


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner is compiled for: engine, precision, graph kind, input shape and thread count."""

    engine: str
    precision: str
    kind: str
    shape: tuple[int, ...]
    threads: int


class TorchRunner:
    """The graph module run by torch eagerly (fp32, channels_last for images)."""

    def __init__(self, net: torch.nn.Module, spec: RunnerSpec) -> None:
        self.spec = spec
        self.module = graph_module(net, spec.kind).eval().to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        if self.spec.kind == "image":
            tensors[0] = tensors[0].contiguous(memory_format=torch.channels_last)
        return self.module(*tensors).contiguous().numpy()


class OpenVinoRunner:
    """The ONNX graph compiled by OpenVINO's CPU plugin for a static shape, f32 or bf16, latency-first; int8: the
    network's checked int8 file (:func:`multistyle.engine.int8.int8_network`), int8 convs and f32 for the rest."""

    def __init__(self, net: torch.nn.Module, spec: RunnerSpec, key: str | None = None) -> None:
        ov = engine_module(spec.engine)
        self.spec = spec
        if spec.precision == "int8":
            from .int8 import int8_key, int8_network

            net = int8_network(net)
            if net is None:
                raise EngineError("no checked int8 network covers this model and its styles; use openvino fp32")
            key = int8_key(net)
        core = ov.Core()
        model = core.read_model(str(onnx_graph(net, spec.kind, key)))
        if spec.kind == "image":  # every dimension static: a dynamic batch alone halves OpenVINO's speed
            model.reshape({"image": list(spec.shape), "affine": [spec.shape[0], affine_width(net)]})
        else:
            model.reshape({"frame": list(spec.shape)})
        config = {"INFERENCE_PRECISION_HINT": "bf16" if spec.precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": spec.threads}
        self.compiled = core.compile_model(model, "CPU", config)
        ensure_roomy_signal_stack()  # compile_model left this thread a 20 KB one: a Ctrl-C after AMX code crashed
        self._local = threading.local()

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer([np.ascontiguousarray(a) for a in inputs])
        return request.get_output_tensor(0).data.copy()


class OnnxRuntimeRunner:
    """The ONNX graph in an ONNX Runtime CPU session (fp32, all graph optimisations)."""

    def __init__(self, net: torch.nn.Module, spec: RunnerSpec, key: str | None = None) -> None:
        ort = engine_module(spec.engine)
        self.spec = spec
        options = ort.SessionOptions()
        options.intra_op_num_threads = spec.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_graph(net, spec.kind, key)), options,
                                            providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {n: np.ascontiguousarray(a) for n, a in zip(self.names, inputs)})[0]


Runner = TorchRunner | OpenVinoRunner | OnnxRuntimeRunner
# THE engine table, the one place engine names are written: each engine, its runner and the precisions it runs.
# torch is the reference and always there; the others are optional packages of the same name (pip install NAME).
_TABLE = {"torch": (TorchRunner, ("fp32",)), "openvino": (OpenVinoRunner, ("fp32", "bf16", "int8")),
          "onnxruntime": (OnnxRuntimeRunner, ("fp32",))}
ENGINES = tuple(_TABLE)
OPTIONAL = ENGINES[1:]
PRECISIONS = {engine: precisions for engine, (_, precisions) in _TABLE.items()}
_CLASSES = {engine: cls for engine, (cls, _) in _TABLE.items()}


def build_runner(net: torch.nn.Module, spec: RunnerSpec, key: str | None = None) -> Runner:
    """Compile ``net``'s graph as ``spec`` says; an engine failure becomes one :class:`EngineError` line."""
    if spec.engine not in _CLASSES:
        raise EngineError(f"engine must be one of {', '.join(ENGINES)}, not {spec.engine!r}")
    if spec.precision not in PRECISIONS[spec.engine]:
        raise EngineError(f"{spec.engine} runs {', '.join(PRECISIONS[spec.engine])}, not {spec.precision}")
    if spec.engine == "torch":
        return TorchRunner(net, spec)
    try:
        return _CLASSES[spec.engine](net, spec, key)
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - a compiler problem becomes one clear line
        text = str(exc).strip().splitlines()
        raise EngineError(f"{spec.engine} could not compile the network ({text[0][:200] if text else exc}); "
                          "use --engine torch") from None
