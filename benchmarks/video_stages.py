"""Where a stylized clip's time goes: decode, network, stabiliser, encode, per frame.

Renders the flicker benchmark's clip (`video_flicker.render`: kodim23 with a known pan and zoom,
640×360 by default, 48 frames), warms the arbitrary engine up on a few frames, then runs
`restyle.video.stylize_video` frame by frame (`temporal_strength=0`) and stabilised (the
default), timing each stage inside the loop by wrapping the pipeline's own steps. Frames per
second are decode to encode, engines loaded.

The CPU runtime follows `auto` (OpenVINO in bf16 on a CPU with native bf16, else onnxruntime):
to compare runtimes on one machine, run it with `RESTYLE_CPU_BF16=0` (onnxruntime) and without,
taking turns:

    for i in 1 2; do RESTYLE_CPU_BF16=0 python benchmarks/video_stages.py; \\
        python benchmarks/video_stages.py; done
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from machine import describe
from restyle.engines.holder import Engines
from restyle.examples import example_path
from restyle.imaging import image_to_tensor, load_image
from restyle.video import io as video_io
from restyle.video import pipeline, stylize_video
from restyle.video.stabilise import TemporalStabiliser
from video_flicker import PHOTOS, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    motion = argparse.Namespace(pan=1.5, zoom=0.004, noise=2.0)
    photo = cv2.cvtColor(cv2.imread(str(PHOTOS / "kodim23.jpg")), cv2.COLOR_BGR2RGB)
    folder = Path(tempfile.mkdtemp(prefix="restyle-stages-"))
    clip = folder / "clip.mp4"
    render(clip, photo, (args.width, args.height), args.frames, motion)
    engines = Engines(device="cpu")
    painting = image_to_tensor(load_image(example_path("starry_night")))
    spent: dict[str, float] = {}
    _time_stages(spent)
    stylize_video(clip, folder / "warm.mp4", painting, method="arbitrary", engines=engines,
                  max_frames=8)  # fmt: skip
    runtime = engines.get("arbitrary").stylizer([painting]).exported_runtime()
    print(f"{describe()['cpu']}, runtime {runtime}, {args.width}x{args.height}", flush=True)
    for strength in (0.0, 0.7):
        spent.clear()
        start = time.perf_counter()
        summary = stylize_video(
            clip, folder / f"out-{strength}.mp4", painting, method="arbitrary",
            engines=engines, temporal_strength=strength,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        stages = {k: round(v / summary.frames * 1000, 1) for k, v in spent.items()}
        print(
            f"temporal_strength {strength}: {summary.frames / seconds:.2f} fps; ms per frame "
            f"{stages}",
            flush=True,
        )


def _time_stages(spent: dict[str, float]) -> None:
    """Wrap the pipeline's steps so each call adds its seconds to `spent[stage]`."""

    def timed(stage: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - start

        return wrapper

    TemporalStabiliser.__call__ = timed("stabilise", TemporalStabiliser.__call__)  # type: ignore[method-assign]
    video_io.VideoSink.write = timed("encode", video_io.VideoSink.write)  # type: ignore[method-assign]
    pipeline._Run._decoded = timed("decode", pipeline._Run._decoded)  # type: ignore[method-assign]
    original = pipeline._Run.__init__

    def init(self: Any, clip: Any, output: Any, stylize: Any, *rest: Any, **kwargs: Any) -> None:
        original(self, clip, output, timed("network", stylize), *rest, **kwargs)

    pipeline._Run.__init__ = init  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
