"""The clip loop behind `restyle.video.stylize_video` (see the package's docstring).

Frames stream from the decoder to the encoder in batches (`io.VideoSource` → the engine's
runner, built once (`frames.frame_stylizer`) → `stabilise.TemporalStabiliser` → `io.VideoSink`),
so memory holds one batch whatever the clip's length. The audio stream's packets are copied
untouched (re-encoded where the output's container cannot hold their codec: `audio.py`),
timestamps are the input's (so the frame rate and the duration are too) and the display matrix
(a phone's rotation) is carried over.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av.error
import numpy as np
import torch
from av.packet import Packet
from av.video.frame import VideoFrame

from restyle.api import AUTO, choose_method, default_engines
from restyle.engines.holder import Engines
from restyle.engines.registry import EngineSpec, engine_spec
from restyle.errors import InvalidParameterError, InvalidVideoError, RestyleError
from restyle.imaging import DEFAULT_LIMITS, ImageInput, ImageLimits
from restyle.progress import Progress, ProgressCallback
from restyle.video.audio import encoder_name
from restyle.video.config import BATCH_PIXELS, VideoOptions
from restyle.video.config import looks_like_video as looks_like_video
from restyle.video.frames import FrameStylizer, frame_stylizer
from restyle.video.io import (
    VideoInfo,
    VideoSink,
    VideoSource,
    choose_codec,
    display_matrix,
)
from restyle.video.stabilise import TemporalStabiliser

VIDEO_OPTIONS = frozenset(f.name for f in dataclasses.fields(VideoOptions))


@dataclass(frozen=True)
class VideoSummary:
    """What a run wrote."""

    path: Path
    frames: int
    rate: Fraction
    size: tuple[int, int]
    """(height, width) of the output frames."""
    audio_packets: int
    """The input's audio packets the output's sound was made of."""
    audio_encoder: str | None
    """The encoder the sound was re-encoded with (FFmpeg's name, "libopus" for AAC into WebM);
    None when its packets were copied as they were, or when there is no sound."""
    cuts: int
    """Scene cuts the stabiliser found (its history starts again at each)."""
    seconds: float

    @property
    def audio_note(self) -> str:
        """The sound in a few words, for a summary line: "17 audio packets kept" or "audio
        re-encoded to Opus"."""
        if self.audio_encoder is not None:
            return f"audio re-encoded to {encoder_name(self.audio_encoder)}"
        return f"{self.audio_packets} audio packets kept"


def stylize_video(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    style: ImageInput | Sequence[ImageInput],
    *,
    method: str = AUTO,
    style_weights: Sequence[float] | None = None,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    engines: Engines | None = None,
    **options: Any,
) -> VideoSummary:
    """Stylize the clip `source` into `output` (.mp4, .mov, .mkv: H.264; .webm: VP9).

    `style`, `method` and `style_weights` are as for `restyle.stylize`. `options` are the
    engine's and the post-processing's (e.g. `size`, the long side frames are stylized at,
    `strength`) and those of `VideoOptions` (`temporal_strength`, `codec`, `crf`,
    `max_frames`, `frame_batch`). `progress` receives a `Progress` per batch (steps are frames;
    `preview` is the batch's last frame as written).

    The gatys engine optimises every frame (minutes each on a CPU), so it needs `max_frames`.
    A file that is not a video, or that breaks off, raises `InvalidVideoError` naming it and
    the frame; nothing is written then.
    """
    video = VideoOptions(**{k: options.pop(k) for k in list(options) if k in VIDEO_OPTIONS})
    styles: list[ImageInput] = list(style) if isinstance(style, list | tuple) else [style]  # type: ignore[list-item]
    if not styles:
        raise InvalidParameterError("style: at least one style is needed")
    if method == AUTO:  # a painting's frames go to the one-pass engine, never to gatys
        method = choose_method(styles, options=options, video=True)
    spec = engine_spec(method)
    if not spec.interactive and not video.max_frames:
        raise InvalidParameterError(
            f"max_frames: the {spec.name} engine optimises every frame (minutes each on a CPU); "
            "give a frame limit, or use the fast or arbitrary engine for whole clips"
        )
    choose_codec(Path(output), video.codec)  # a bad output name fails before any work
    holder = engines if engines is not None else default_engines(device)
    with VideoSource(source) as clip:
        run = frame_stylizer(spec, styles, style_weights, options, engines=holder, limits=limits)
        size = frame_size(clip.info, _size_option(spec, options))
        return _Run(clip, Path(output), run, size, video, progress).all()


def frame_size(info: VideoInfo, size: int | None) -> tuple[int, int]:
    """(height, width) frames are stylized at: long side `size` (none or 0: the clip's),
    rounded down to even sides for yuv420p."""
    height, width = info.height, info.width
    if size:
        scale = size / max(height, width)
        height, width = round(height * scale), round(width * scale)
    return max(2, height - height % 2), max(2, width - width % 2)


def _size_option(spec: EngineSpec, options: dict[str, Any]) -> int | None:
    if "size" in options:
        value: int | None = options["size"]
        return value
    default: int | None = next(s.default for s in spec.engine_option_specs() if s.name == "size")
    return default


class _Run:
    """One clip's loop: decode, batch, stylize, stabilise, encode, remux the audio."""

    def __init__(
        self,
        clip: VideoSource,
        output: Path,
        stylize: FrameStylizer,
        size: tuple[int, int],
        video: VideoOptions,
        progress: ProgressCallback | None,
    ) -> None:
        self.clip, self.output, self.stylize, self.size = clip, output, stylize, size
        self.video, self.progress = video, progress
        self.batch_size = max(1, min(video.frame_batch, BATCH_PIXELS // (size[0] * size[1])))
        self.total = min(clip.info.frames, video.max_frames or clip.info.frames)
        self.stabiliser = TemporalStabiliser(video.temporal_strength)
        self.sink: VideoSink | None = None
        self.pending_audio: list[Packet[Any]] = []  # until the first batch opens the output
        self.matrix: list[int] | None = None
        self.end: float | None = None  # with max_frames: the time the output ends
        self.frames = self.audio_packets = 0
        self.out_size = size
        self.began = time.perf_counter()

    def all(self) -> VideoSummary:
        batch: list[tuple[int, np.ndarray]] = []
        try:
            for item in self.clip.items():
                if isinstance(item, VideoFrame):
                    if self.video.max_frames and self.frames + len(batch) >= self.video.max_frames:
                        break
                    if self.end is None and self.video.max_frames and item.time is not None:
                        # Audio is interleaved ahead of the video: its cut is known up front.
                        self.end = item.time + self.video.max_frames / self.clip.info.rate
                    batch.append(self._decoded(item))
                    if len(batch) == self.batch_size:
                        self._flush(batch)
                        batch = []
                else:
                    self._audio(item)
            if batch:
                self._flush(batch)
            if self.sink is None:
                raise InvalidVideoError(f"{self.clip.name!r}: the video stream has no frames")
            written = self.sink.close()
        except av.error.FFmpegError as exc:
            self._abort()
            raise RestyleError(f"{str(self.output)!r}: cannot write the video: {exc}") from exc
        except BaseException:
            self._abort()
            raise
        return VideoSummary(
            path=written,
            frames=self.frames,
            rate=self.clip.info.rate,
            size=self.out_size,
            audio_packets=self.audio_packets,
            audio_encoder=self.sink.audio.encoder if self.sink.audio is not None else None,
            cuts=self.stabiliser.stats.cuts,
            seconds=time.perf_counter() - self.began,
        )

    def _decoded(self, frame: VideoFrame) -> tuple[int, np.ndarray]:
        if self.matrix is None:
            self.matrix = display_matrix(frame) or []
        rgb = frame.to_ndarray(format="rgb24")
        if rgb.shape[:2] != self.size:  # OpenCV's area filter: swscale rebuilds its context
            rgb = _resize(rgb, self.size)
        if frame.pts is not None:
            pts = frame.pts
        else:  # a stream without timestamps: frames at the average rate
            pts = round(self.frames / (self.clip.info.rate * self.clip.time_base))
        return pts, rgb

    def _flush(self, batch: list[tuple[int, np.ndarray]]) -> None:
        frames = torch.from_numpy(np.stack([rgb for _, rgb in batch])).permute(0, 3, 1, 2)
        stylized = self.stylize(frames.float() / 255.0).permute(0, 2, 3, 1).numpy()
        sink = self._sink(stylized.shape[1:3])
        pixels = np.zeros((0, 0, 3), np.uint8)
        for (pts, rgb), out in zip(batch, stylized, strict=True):
            if out.shape[:2] != rgb.shape[:2]:  # an output_size: follow the motion there
                rgb = _resize(rgb, out.shape[:2])
            steady = self.stabiliser(rgb, out)
            height, width = self.out_size
            pixels = np.clip(steady[:height, :width] * 255.0 + 0.5, 0, 255).astype(np.uint8)
            sink.write(pixels, pts=pts)
        self.frames += len(batch)
        if self.progress is not None:
            elapsed = time.perf_counter() - self.began
            # The batch's last frame as written, for a caller that shows one (the service).
            preview = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255.0
            self.progress(
                Progress(
                    step=self.frames,
                    total=max(self.total, self.frames),
                    loss=math.nan,
                    elapsed=elapsed,
                    size=self.out_size,
                    preview=preview,
                )
            )

    def _sink(self, size: tuple[int, int]) -> VideoSink:
        if self.sink is None:
            height, width = size
            self.out_size = (height - height % 2, width - width % 2)  # an odd output_size
            self.sink = VideoSink(
                self.output,
                width=self.out_size[1],
                height=self.out_size[0],
                rate=self.clip.info.rate,
                time_base=self.clip.time_base,
                codec=self.video.codec,
                crf=self.video.crf,
                matrix=self.matrix or None,
                audio=self.clip.audio,
            )
            for packet in self.pending_audio:
                self.sink.write_audio(packet)
            self.pending_audio = []
        return self.sink

    def _audio(self, packet: Packet[Any]) -> None:
        if (
            self.end is not None
            and packet.pts is not None
            and packet.pts * packet.time_base >= self.end
        ):
            return
        self.audio_packets += 1
        if self.sink is None:
            self.pending_audio.append(packet)
        else:
            self.sink.write_audio(packet)

    def _abort(self) -> None:
        if self.sink is not None:
            self.sink.abort()


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    resized: np.ndarray = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return resized


__all__ = [
    "VideoOptions",
    "VideoSummary",
    "frame_size",
    "looks_like_video",
    "stylize_video",
]
