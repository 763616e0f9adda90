"""What a benchmark ran on, for its JSON: timings are only comparable between runs that name it.

Imported by the scripts in this folder (`python benchmarks/X.py` puts the folder on the path).
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

# Environment settings that change which CPU kernels run: recorded with the machine, since a run
# with bf16 forced off or oneDNN's instruction set capped measures a different machine.
_KERNEL_SETTINGS = ("RESTYLE_CPU_BF16", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def describe() -> dict[str, Any]:
    """The CPU (model, cores, the instruction sets that matter here), PyTorch's view of it, the
    kernel settings in force and the load average at the time of the call."""
    import torch

    from restyle.devices import cpu_has_fast_bf16

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in lscpu.splitlines())
    )
    flags = set(fields.get("Flags", "").split())
    return {
        "cpu": fields.get("Model name") or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "bf16_native": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "bf16_used_by_auto": cpu_has_fast_bf16(),
        "kernel_settings": {k: os.environ[k] for k in _KERNEL_SETTINGS if k in os.environ},
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1_5_15": list(os.getloadavg()),
    }
