"""The fast engine's setup (built once) and options (per call), each default written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from restyle.errors import InvalidParameterError
from restyle.options import Precision, check_options, option

Runtime = Literal["auto", "torch", "onnx", "openvino"]
MAX_SIZE = 20000  # longest output side; beyond print resolution at 300 dpi for 1.6 m


ALIGN = 4  # tiles start on the network's stride grid, so tile and whole image sample alike


@dataclass(frozen=True)
class FastSetup:
    """How trained transform networks are run (the same for every call and style).

    - `runtime`: "onnx" (onnxruntime, CPU), "openvino" (OpenVINO, CPU), "torch", or "auto":
      on the CPU, for an image run whole, OpenVINO on x86 CPUs where it is installed (faster
      than onnxruntime there: `docs/fast.md`), else onnxruntime where installed; PyTorch
      otherwise.
    - `precision`: "auto" runs float16 on CUDA, and on the CPU float32, except OpenVINO, which
      computes in bfloat16 on CPUs with native bf16 (AVX512-BF16, AMX; twice as fast, an image
      visually the same).
    """

    precision: Precision = option(
        "auto",
        label="Network precision",
        help="network precision (auto: float16 on CUDA; on a CPU float32, or bfloat16 for "
        "OpenVINO where the CPU has native bf16)",
    )
    runtime: Runtime = option(
        "auto",
        label="Runtime",
        help="onnx (onnxruntime, CPU), openvino (OpenVINO, CPU) or torch (auto: on the CPU "
        "OpenVINO on x86 where installed, else onnxruntime)",
    )

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class FastOptions:
    """Options of one call of a feed-forward network.

    - `size`: long side the photo is resized to before stylizing; 0 keeps its size. Brush
      strokes are learnt at the training resolution, so a larger input gives finer strokes.
    - `tile_size`, `tile_overlap`: images with more than `tile_size`² pixels are stylized in
      tiles of that side, overlapping by `tile_overlap`, with whole-image normalisation
      statistics; 0 picks 2048 on CUDA and, on the CPU, the side whose whole-image run needs
      about 2.5 GB (2048 for `lite`, 1448 for `standard`).
    """

    size: int = option(
        0,
        label="Output size (long side, px)",
        help="long side in px the photo is stylized at (0: its own size)",
        minimum=0,
        maximum=MAX_SIZE,
        public=True,
    )
    tile_size: int = option(
        0,
        label="Tile size (px)",
        help="tile side for large images (0: auto)",
        minimum=0,
        maximum=8192,
    )
    tile_overlap: int = option(
        128, label="Tile overlap (px)", help="overlap of tiles in px", minimum=0, maximum=1024
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.tile_size != 0 and self.tile_size < 64:
            raise InvalidParameterError(f"tile_size: 0 (auto) or 64..8192 px, got {self.tile_size}")
        if self.tile_size % ALIGN or self.tile_overlap % ALIGN:
            raise InvalidParameterError(
                f"tile_size and tile_overlap: multiples of {ALIGN} px, got "
                f"{self.tile_size} and {self.tile_overlap}"
            )
