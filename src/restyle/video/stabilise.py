"""Temporal stabilisation: each stylized frame blended with the previous one, moved by the motion.

A feed-forward style network sees each frame alone, so textures that should move with the scene
shimmer instead: small changes of the input (noise, sub-pixel motion, a zoom) change the strokes.
The stabiliser follows the motion of the *input* frames (OpenCV's DIS optical flow, Kroeger et
al. 2016), warps the previous *output* frame along it and blends:

    out_t = (1 − a·m) · stylized_t + a·m · warp(out_{t−1})

with `a` the strength and `m` the reliability of the motion at each pixel. The blend is recursive
(a pixel remembers strength^n of frame t − n), which is what removes flicker rather than halving
it. Like Ruder et al. 2016 the motion is trusted only where the forward and backward flows agree
and the pixel was inside the previous frame; unlike them nothing is optimised, and a photometric
check (the warped previous input must look like the current input) also drops occlusions the
flows smooth over. When too little of a frame is reliable the shot has changed: the history is
dropped and the frame is kept as stylized.

A plain blend softens the painting: two frames' strokes are never quite the same, and a mean of
unlike textures has less contrast than either (a recursive blend at 0.7 raised the style
distance by 77% on the flicker benchmark), and every bilinear warp blurs the history a little
more. So the history is warped bicubically, and the blend's fine detail (what a Gaussian of
`TEXTURE_SIGMA` px takes away) is scaled, pixel by pixel, back to the local energy of the
stylized frame's own detail (`restore_texture`): the strokes keep the previous frame's
positions, which is what stops them crawling, and the current frame's contrast. On the
benchmark clip this kept the style distance within 10% of frame by frame at 6-8× less flicker
(docs/video.md).

Flows are computed with the long side at most `FLOW_SIDE` and resized, so their cost does not
grow with the clip's resolution; a frame costs two DIS flows at that size and two remaps and a
blend at the output size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

FLOW_SIDE = 640
"""Long side of the frames the flows are computed on."""
CONSISTENCY_RATIO, CONSISTENCY_PIXELS = 0.01, 0.5
"""|b + f(x + b)|² ≤ ratio · (|b|² + |f(x + b)|²) + pixels: Sundaram et al. 2010's test, as used
by Ruder et al. 2016 (in pixels of the flow's resolution)."""
PHOTOMETRIC = 24
"""Largest grey-level difference (of 255) between a pixel and its warped previous self."""
CUT_FRACTION = 0.5
"""A frame with fewer reliable pixels than this starts a new shot."""
TEXTURE_SIGMA = 1.0
"""Scale (px) of the detail whose contrast `restore_texture` brings back: the strokes' own."""
MAX_TEXTURE_GAIN = 3.0
"""At most this much contrast is given back to a pixel's detail (no noise blown up from
nothing)."""


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of every pixel, (H, W) float32 each (read-only: built once per size,
    since a frame's warps use it four times)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """`image` sampled at x + flow(x) for each pixel x of `flow`'s frame (a backward warp).

    `flow` is (H, W, 2) in pixels; the result has `flow`'s size. Samples outside the image take
    the nearest edge pixel; `inside` says which those are.
    """
    xs, ys = pixel_grid(*flow.shape[:2])
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    warped: np.ndarray = cv2.remap(image, x, y, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return warped


def restore_texture(blend: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """`blend` with its fine detail scaled to the local contrast of `stylized`'s detail.

    Both (H, W, 3) float32. Detail is what a Gaussian of `TEXTURE_SIGMA` px removes; its energy
    (summed over the channels) is averaged over twice that, and the blend's detail multiplied
    by the square root of the ratio, between 1 and `MAX_TEXTURE_GAIN`: only contrast the blend
    lost is given back, never taken away.
    """
    base = cv2.GaussianBlur(blend, (0, 0), TEXTURE_SIGMA)
    detail = blend - base
    own = stylized - cv2.GaussianBlur(stylized, (0, 0), TEXTURE_SIGMA)
    wanted = cv2.GaussianBlur(np.square(own).sum(axis=-1), (0, 0), 2 * TEXTURE_SIGMA)
    present = cv2.GaussianBlur(np.square(detail).sum(axis=-1), (0, 0), 2 * TEXTURE_SIGMA)
    gain = np.sqrt((wanted + 1e-6) / (present + 1e-6)).clip(1.0, MAX_TEXTURE_GAIN)
    restored: np.ndarray = base + detail * gain[..., None]
    return restored


def inside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: whether x + flow(x) falls inside the frame."""
    height, width = flow.shape[:2]
    xs, ys = pixel_grid(height, width)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    result: np.ndarray = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return result


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) bool: where the backward flow (current → previous) and the forward flow
    (previous → current) taken at the pixel's previous position cancel out."""
    forward_there = warp(forward, backward)  # (H, W, 2)
    error = np.square(backward + forward_there).sum(axis=-1)
    scale = np.square(backward).sum(axis=-1) + np.square(forward_there).sum(axis=-1)
    result: np.ndarray = error <= CONSISTENCY_RATIO * scale + CONSISTENCY_PIXELS
    return result


def warping_error(
    previous: np.ndarray, current: np.ndarray, flow: np.ndarray, mask: np.ndarray
) -> float:
    """Mean squared difference of `current` and `previous` warped by `flow`, over `mask`.

    The flicker measure of the tests and the benchmark (Lai et al. 2018's warping error):
    frames (H, W, 3) float in [0, 1], `flow` current → previous, `mask` (H, W) bool.
    """
    diff = np.square(current.astype(np.float32) - warp(previous.astype(np.float32), flow))
    return float(diff.sum(axis=-1)[mask].mean() / 3)


@dataclass
class StabiliserStats:
    frames: int = 0
    cuts: int = 0
    reliable: float = 0.0
    """Sum over frames of the fraction of pixels blended (its mean is reliable / frames)."""


class TemporalStabiliser:
    """Stabilises one shot after another; feed frames in order.

    >>> stabiliser = TemporalStabiliser(0.7)
    >>> out = stabiliser(frame, stylized)  # (H, W, 3) uint8 input, float32 [0, 1] stylized
    """

    def __init__(self, strength: float, *, flow_side: int = FLOW_SIDE) -> None:
        self.strength = strength
        self.flow_side = flow_side
        self.stats = StabiliserStats()
        # The fast preset: its flow is close enough to the medium one's for a blend mask, at
        # a third of the cost (the benchmark measures the flicker with another method).
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_FAST)
        self._previous_grey: np.ndarray | None = None
        self._previous_out: np.ndarray | None = None

    def reset(self) -> None:
        self._previous_grey = self._previous_out = None

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """The stabilised frame: `stylized` (H, W, 3) float32 in [0, 1], of the input `frame`
        (H, W, 3) uint8 RGB at the same size."""
        self.stats.frames += 1
        if self.strength == 0:
            return stylized
        grey = self._grey(frame)
        previous_grey, previous_out = self._previous_grey, self._previous_out
        self._previous_grey = grey
        if previous_grey is None or previous_out is None or previous_out.shape != stylized.shape:
            self._previous_out = stylized
            return stylized
        backward = self._flow(grey, previous_grey)  # current → previous
        forward = self._flow(previous_grey, grey)
        seen = warp(previous_grey, backward).astype(np.int16) - grey
        reliable = consistent(backward, forward) & inside(backward) & (np.abs(seen) <= PHOTOMETRIC)
        fraction = float(reliable.mean())
        if fraction < CUT_FRACTION:  # a new shot: nothing to carry over
            self.stats.cuts += 1
            self._previous_out = stylized
            return stylized
        self.stats.reliable += fraction
        height, width = stylized.shape[:2]
        flow = _resize_flow(backward, height, width)
        # A soft mask: a hard one draws the outline of every occlusion into the blend.
        weight = cv2.GaussianBlur(reliable.astype(np.float32), (5, 5), 0)
        weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        weight = (self.strength * weight)[..., None]
        history = warp(previous_out, flow, cv2.INTER_CUBIC)  # bilinear blurs a little each frame
        blend = (1.0 - weight) * stylized + weight * history
        out: np.ndarray = np.clip(restore_texture(blend, stylized), 0.0, 1.0)
        self._previous_out = out
        return out

    def _flow(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(H, W, 2): for each pixel of `first`, where it is in `second`."""
        flow: np.ndarray = self._dis.calc(first, second, None)  # type: ignore[call-overload]
        return flow

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        grey: np.ndarray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape
        scale = self.flow_side / max(height, width)
        if scale < 1:
            size = (max(8, round(width * scale)), max(8, round(height * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey


def _resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """A flow field at another size, its vectors scaled with it."""
    if flow.shape[:2] == (height, width):
        return flow
    sy, sx = height / flow.shape[0], width / flow.shape[1]
    resized: np.ndarray = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    return resized * np.array([sx, sy], dtype=np.float32)
