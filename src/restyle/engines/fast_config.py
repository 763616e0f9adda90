"""Settings of the fast (feed-forward) engine, one place for their defaults and limits."""

from __future__ import annotations

from dataclasses import dataclass

from restyle.engines.tiling import ALIGN
from restyle.errors import InvalidParameterError

RUNTIMES = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
MAX_SIZE = 20000  # longest output side; beyond print resolution at 300 dpi for 1.6 m


@dataclass(frozen=True)
class FastConfig:
    """How a trained transform network is applied.

    - `size`: long side the photo is resized to before stylizing; 0 keeps its size. Brush
      strokes are learnt at the training resolution, so a larger input gives finer strokes.
    - `runtime`: "torch", "onnx" (onnxruntime, CPU) or "auto" (onnxruntime on the CPU where it
      is installed and the image runs whole, since it is faster there; PyTorch otherwise).
    - `precision`: "auto" runs float16 on CUDA and float32 elsewhere.
    - `tile_size`, `tile_overlap`: images with more than `tile_size`² pixels are stylized in
      tiles of that side, overlapping by `tile_overlap`, with whole-image normalisation
      statistics; 0 picks 2048 on CUDA and, on the CPU, the side whose whole-image run needs
      about 2.5 GB (2048 for `lite`, 1448 for `standard`).
    """

    size: int = 0
    runtime: str = "auto"
    precision: str = "auto"
    tile_size: int = 0
    tile_overlap: int = 128

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_SIZE:
            raise InvalidParameterError(f"size: must be 0 (keep) or 1..{MAX_SIZE}, got {self.size}")
        if self.runtime not in RUNTIMES:
            raise InvalidParameterError(f"runtime: one of {RUNTIMES}, got {self.runtime!r}")
        if self.precision not in PRECISIONS:
            raise InvalidParameterError(f"precision: one of {PRECISIONS}, got {self.precision!r}")
        if self.tile_size != 0 and not 64 <= self.tile_size <= 8192:
            raise InvalidParameterError(f"tile_size: 0 (auto) or 64..8192 px, got {self.tile_size}")
        if self.tile_size % ALIGN or self.tile_overlap % ALIGN:
            raise InvalidParameterError(
                f"tile_size and tile_overlap: multiples of {ALIGN} px, got "
                f"{self.tile_size} and {self.tile_overlap}"
            )
        if not 0 <= self.tile_overlap <= 1024:
            raise InvalidParameterError(f"tile_overlap: 0..1024 px, got {self.tile_overlap}")
