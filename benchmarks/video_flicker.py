"""Flicker of stylized video, frame by frame against the temporal stabiliser, and throughput.

The clip is rendered from one still photo of `../shared/data/eval/photos/` with a known camera
motion: a pan of `--pan` px per frame to the right and a zoom in of `--zoom` per frame about
the centre (0.4%: ×1.21 over 48 frames), with Gaussian sensor noise of `--noise` grey levels, at
25 fps, written losslessly (H.264, crf 0). Each engine stylizes it twice through
`restyle.video.stylize_video` (crf 0 again, so the encoder adds nothing): `temporal_strength=0`
(frame by frame) and the default. For each output:

- warping error: the mean squared difference between each output frame and the previous output
  frame warped by the motion, over pixels visible in both (Lai et al. 2018), measured with the
  *known* motion of the render and, as a check, with OpenCV's Farneback flow of the input
  frames; the stabiliser itself follows DIS flow, so neither measure is its own;
- style distance (`restyle.metrics.StyleMetrics`) of every 8th frame against the painting.

Then throughput (frames per second, decode to encode) at 640×360 and 1280×720 for the fast and
arbitrary engines with and without the stabiliser, and the stabiliser's own cost per frame.

    python benchmarks/video_flicker.py --json docs/video-flicker-cpu.json \\
        --strip docs/images/video-flicker-strip.jpg
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

from machine import describe
from restyle.engines.holder import Engines
from restyle.examples import bundled
from restyle.imaging import image_to_tensor, load_image
from restyle.metrics import StyleMetrics
from restyle.video import stylize_video
from restyle.video.stabilise import TemporalStabiliser, inside, warping_error

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "eval" / "photos"
RATE = 25


def camera(t: int, width: int, height: int, photo: np.ndarray, pan: float, zoom: float) -> Any:
    """The 2×3 affine from frame t's pixels to the photo's: the frame is a window that starts
    covering the photo's left part and moves right by `pan` px while zooming in by `zoom`."""
    ph, pw = photo.shape[:2]
    scale0 = min(pw * 0.8 / width, ph / height)  # frame px → photo px at t = 0
    scale = scale0 / (1 + zoom) ** t
    cx = pw * 0.1 + width * scale0 / 2 + pan * scale0 * t
    cy = ph / 2
    return np.array(
        [[scale, 0, cx - scale * width / 2], [0, scale, cy - scale * height / 2]], np.float64
    )


def known_flow(a_now: np.ndarray, a_before: np.ndarray, width: int, height: int) -> np.ndarray:
    """For each pixel of frame t, where the same photo point is in frame t − 1."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    px = a_now[0, 0] * xs + a_now[0, 2]
    py = a_now[1, 1] * ys + a_now[1, 2]
    bx = (px - a_before[0, 2]) / a_before[0, 0]
    by = (py - a_before[1, 2]) / a_before[1, 1]
    return np.stack([bx - xs, by - ys], axis=-1).astype(np.float32)


def render(
    path: Path, photo: np.ndarray, size: tuple[int, int], frames: int, args: argparse.Namespace
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Write the clip; returns its frames (RGB uint8) and each frame's camera."""
    width, height = size
    rng = np.random.default_rng(0)
    images, cameras = [], []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE, options={"crf": "0", "preset": "fast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for t in range(frames):
            a = camera(t, width, height, photo, args.pan, args.zoom)
            flags = cv2.INTER_AREA | cv2.WARP_INVERSE_MAP
            image = cv2.warpAffine(photo, a, (width, height), flags=flags)
            noisy = image.astype(np.float32) + rng.normal(0, args.noise, image.shape)
            image = noisy.clip(0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = t
            out.mux(stream.encode(frame))
            images.append(image)
            cameras.append(a)
        out.mux(stream.encode(None))
    return images, cameras


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]


def flicker(
    outputs: list[np.ndarray],
    inputs: list[np.ndarray],
    cameras: list[np.ndarray],
) -> dict[str, float]:
    height, width = outputs[0].shape[:2]
    known, farneback = [], []
    for t in range(1, len(outputs)):
        before, now = outputs[t - 1] / 255.0, outputs[t] / 255.0
        flow = known_flow(cameras[t], cameras[t - 1], width, height)
        known.append(warping_error(before, now, flow, inside(flow)))
        grey = [cv2.cvtColor(inputs[i], cv2.COLOR_RGB2GRAY) for i in (t, t - 1)]
        measured = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, 0.5, 4, 21, 3, 5, 1.1, 0)
        farneback.append(warping_error(before, now, measured, inside(measured)))
    return {"known_motion": float(np.mean(known)), "farneback": float(np.mean(farneback))}


def style_distance(
    metrics: StyleMetrics, outputs: list[np.ndarray], inputs: list[np.ndarray], painting: Any
) -> float:
    values = []
    for i in range(0, len(outputs), 8):
        result = torch.from_numpy(outputs[i]).permute(2, 0, 1)[None].float() / 255
        photo = torch.from_numpy(inputs[i]).permute(2, 0, 1)[None].float() / 255
        values.append(metrics.distances(result, photo, painting).style)
    return float(np.mean(values))


def strip(rows: list[list[np.ndarray]], path: Path, picks: list[int]) -> None:
    """Rows of frames (input, frame by frame, stabilised), `picks` of each, as one JPEG."""
    tiles = [np.concatenate([row[i] for i in picks], axis=1) for row in rows]
    image = np.concatenate(tiles, axis=0)
    height, width = image.shape[:2]
    image = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default="kodim23.jpg")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--pan", type=float, default=1.5, help="px per frame at the clip's size")
    parser.add_argument("--zoom", type=float, default=0.004, help="zoom in per frame")
    parser.add_argument("--noise", type=float, default=2.0, help="sensor noise, grey levels")
    parser.add_argument("--speed-frames", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--strip", type=Path, default=None)
    args = parser.parse_args()

    photo = np.asarray(load_image(PHOTOS / args.photo))
    painting_path = bundled("starry_night")
    painting = image_to_tensor(load_image(painting_path))
    engines = Engines(device="cpu")
    metrics = StyleMetrics()
    runs = {"fast": ("starry-night", "fast"), "arbitrary": (painting_path, "arbitrary")}
    report: dict[str, Any] = {
        "machine": describe() | {"av": av.__version__, "opencv": cv2.__version__},
        "clip": {
            "photo": args.photo,
            "size": [640, 360],
            "frames": args.frames,
            "fps": RATE,
            "motion": f"pan {args.pan} px/frame right, zoom in {args.zoom:.1%}/frame",
            "noise": args.noise,
        },
        "quality": {},
        "throughput": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "clip.mp4"
        inputs, cameras = render(source, photo, (640, 360), args.frames, args)
        rows: list[list[np.ndarray]] = [inputs]
        for name, (style, method) in runs.items():
            entry: dict[str, Any] = {}
            for label, strength in (("frame_by_frame", 0.0), ("stabilised", None)):
                out = work / f"{name}-{label}.mp4"
                extra = {} if strength is None else {"temporal_strength": strength}
                summary = stylize_video(
                    source, out, style, method=method, crf=0, engines=engines, **extra
                )
                frames = decoded(out)
                entry[label] = {
                    "warping_error": flicker(frames, inputs, cameras),
                    "style_distance": style_distance(metrics, frames, inputs, painting),
                    "fps": summary.frames / summary.seconds,
                }
                if name == "fast":
                    rows.append(frames)
                print(name, label, json.dumps(entry[label]), flush=True)
            plain, steady = entry["frame_by_frame"], entry["stabilised"]
            entry["warping_error_ratio"] = {
                k: plain["warping_error"][k] / steady["warping_error"][k]
                for k in plain["warping_error"]
            }
            entry["style_distance_change"] = steady["style_distance"] / plain["style_distance"] - 1
            report["quality"][name] = entry
        if args.strip is not None:
            strip(rows, args.strip, [20, 21, 22, 23])
        for size in ((640, 360), (1280, 720)):
            clip = work / f"speed-{size[0]}.mp4"
            render(clip, photo, size, args.speed_frames, args)
            for name, (style, method) in runs.items():
                for label, strength in (("frame_by_frame", 0.0), ("stabilised", None)):
                    extra = {} if strength is None else {"temporal_strength": strength}
                    summary = stylize_video(
                        clip, work / "speed-out.mp4", style, method=method, engines=engines, **extra
                    )
                    key = f"{size[0]}x{size[1]}"
                    fps = summary.frames / summary.seconds
                    report["throughput"].setdefault(key, {}).setdefault(name, {})[label] = fps
                    print(key, name, label, f"{fps:.2f} fps", flush=True)
            stabiliser = TemporalStabiliser(0.7)
            frames = render(work / "cost.mp4", photo, size, 12, args)[0]
            stylized = [f.astype(np.float32) / 255 for f in frames]
            stabiliser(frames[0], stylized[0])
            began = time.perf_counter()
            for frame, out in zip(frames[1:], stylized[1:], strict=True):
                stabiliser(frame, out)
            cost = (time.perf_counter() - began) / (len(frames) - 1) * 1000
            report["throughput"][f"{size[0]}x{size[1]}"]["stabiliser_ms_per_frame"] = cost
            print(f"stabiliser {size}: {cost:.1f} ms/frame", flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
