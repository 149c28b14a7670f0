"""The precision choice: bf16 autocast only where the CPU computes bf16 natively (the CPU probes are mocked to
stand for other machines; nothing else is), and the thread override."""

from __future__ import annotations

import pytest
import torch

from multistyle import precision
from multistyle.precision import bf16_autocast_native, choose_precision, torch_threads
from multistyle.train.add_style import AddStyleConfig, precision_choice, uses_bf16

CPUS = {  # the torch.cpu probes of each CPU class
    "avx2": {"_is_avx512_supported": False, "_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False},
    "avx512_vnni": {"_is_avx512_supported": True, "_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False},
    "avx512_bf16": {"_is_avx512_supported": True, "_is_avx512_bf16_supported": True, "_is_amx_tile_supported": False},
    "amx": {"_is_avx512_supported": True, "_is_avx512_bf16_supported": True, "_is_amx_tile_supported": True},
}


@pytest.fixture
def cpu(monkeypatch):
    """Make torch.cpu's capability probes (and ATen's capability) those of a CPU class; no ISA caps set."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)

    def become(name: str, aten: str | None = None) -> None:
        for probe, value in CPUS[name].items():
            monkeypatch.setattr(torch.cpu, probe, lambda value=value: value, raising=False)
        aten = aten or ("AVX2" if name == "avx2" else "AVX512")
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: aten)
    return become


@pytest.mark.parametrize("name, bf16", [("avx2", False), ("avx512_vnni", False), ("avx512_bf16", True), ("amx", True)])
def test_auto_is_bf16_only_where_native(cpu, monkeypatch, name, bf16):
    cpu(name)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)  # emulation
    choice = bf16_autocast_native("cpu")
    assert choice.bf16 is bf16 and choice.name == ("bf16" if bf16 else "fp32") and choice.reason
    assert uses_bf16(AddStyleConfig(), torch.device("cpu")) is bf16
    assert precision_choice(AddStyleConfig(), torch.device("cpu")) == choice
    if name == "avx512_vnni":
        assert "emulated" in choice.reason


@pytest.mark.parametrize("cap, bf16", [("AVX2", False), ("avx512_core_vnni", False), ("AVX512_CORE_BF16", True),
                                       ("ALL", True), ("SOMETHING_NEW", False)])
def test_an_isa_cap_below_bf16_means_fp32(cpu, monkeypatch, cap, bf16):
    cpu("avx512_bf16")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert bf16_autocast_native("cpu").bf16 is bf16


def test_amx_needs_the_amx_cap_when_it_lacks_avx512_bf16(cpu, monkeypatch):
    cpu("amx")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert not bf16_autocast_native("cpu").bf16
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert bf16_autocast_native("cpu").bf16


def test_aten_capped_to_avx2_means_fp32(cpu):
    cpu("avx512_bf16", aten="AVX2")
    choice = bf16_autocast_native("cpu")
    assert not choice.bf16 and "ATEN_CPU_CAPABILITY" in choice.reason


def test_asked_precision_is_kept(cpu):
    cpu("avx512_vnni")
    assert choose_precision("bf16", "cpu").bf16 and not choose_precision("fp32", "cpu").bf16
    assert uses_bf16(AddStyleConfig(precision="bf16"), torch.device("cpu"))
    with pytest.raises(ValueError):
        choose_precision("fp16", "cpu")


def test_this_machine_agrees_with_its_own_flags():
    """Unmocked: the choice on the real CPU follows /proc/cpuinfo's avx512_bf16/amx_tile flags."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    native = ("avx512_bf16" in flags or "amx_tile" in flags) and precision.onednn_isa_cap() is None \
        and "AVX512" in torch.backends.cpu.get_cpu_capability().upper()
    assert bf16_autocast_native("cpu").bf16 is native


def test_threads_come_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.delenv("MULTISTYLE_THREADS", raising=False)
    assert torch_threads(None) is None and torch_threads(None, default=1) == 1 and torch_threads(3, 1) == 3
    monkeypatch.setenv("MULTISTYLE_THREADS", "2")
    assert torch_threads(None, default=1) == 2 and torch_threads(1) == 1
    monkeypatch.setenv("MULTISTYLE_THREADS", "two")
    with pytest.raises(ValueError):
        torch_threads(None)


def test_a_native_cpu_keeps_bf16_only_if_measured_faster_and_measures_once(cpu, monkeypatch, tmp_path):
    """The timing probe: two evaluations per precision, the outcome cached per machine in the user cache."""
    import time

    monkeypatch.setenv("MULTISTYLE_CACHE", str(tmp_path))
    cpu("avx512_bf16")
    calls = []

    def slow_bf16(bf16: bool) -> None:
        calls.append(bf16)
        time.sleep(0.02 if bf16 else 0.005)
    first = precision.measured_bf16("cpu", slow_bf16, "test net")
    assert not first.bf16 and "fp32" in first.reason and len(calls) == 4  # one untimed, one timed each
    again = precision.measured_bf16("cpu", slow_bf16, "test net")
    assert again == first and len(calls) == 4  # cached: not measured again
    assert (tmp_path / "precision.json").is_file()
    fast = precision.measured_bf16("cpu", lambda bf16: time.sleep(0.002 if bf16 else 0.01), "other net")
    assert fast.bf16


def test_an_emulating_cpu_is_never_measured_into_bf16(cpu, monkeypatch, tmp_path):
    monkeypatch.setenv("MULTISTYLE_CACHE", str(tmp_path))
    cpu("avx512_vnni")
    calls = []
    choice = precision.measured_bf16("cpu", calls.append, "test net")
    assert not choice.bf16 and calls == [] and "emulated" in choice.reason
