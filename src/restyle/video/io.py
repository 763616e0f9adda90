"""Reading and writing clips with PyAV: frames one at a time, audio packets as they were.

`VideoSource` demuxes a file and yields, in file order, decoded video frames and the audio
stream's packets untouched; `VideoSink` encodes frames (H.264 or VP9, yuv420p) and hands those
audio packets to `audio.AudioOut`, which muxes them without decoding them where the container
holds their codec (the sound is then bit-for-bit the input's) and re-encodes them where it does
not (AAC into WebM becomes Opus).
Neither holds more than a frame and the encoder's own look-ahead, whatever the clip's length.
Every failure of FFmpeg's libraries becomes an `InvalidVideoError` naming the file and, while
decoding, the frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.sidedata.sidedata import SideDataContainer
from av.sidedata.sidedata import Type as SideDataType
from av.video.frame import VideoFrame
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from av.video.stream import VideoStream

from restyle.errors import InvalidParameterError, InvalidVideoError
from restyle.video.audio import FORMATS, AudioOut, audio_encoder
from restyle.video.config import (
    OUTPUT_SUFFIXES,
    Codec,
)

# FFmpeg reads a still image as a one-frame "video"; these demuxers are not clips.
_IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "apng", "webp")


@dataclass(frozen=True)
class VideoInfo:
    """What the output keeps of the input: size, rate, length, rotation, audio."""

    width: int
    height: int
    rate: Fraction
    """Average frame rate (frames per second)."""
    frames: int
    """Frames the container declares (0 when it does not say)."""
    duration: float
    """Seconds (0 when unknown)."""
    audio_codec: str | None


class VideoSource:
    """An open clip: `info`, then `items()` yields its video frames and audio packets."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        try:
            self._container: InputContainer = av.open(self.name, "r")
        except (av.error.FFmpegError, OSError) as exc:
            raise InvalidVideoError(f"{self.name!r}: not a readable video ({exc})") from exc
        try:
            self.video, self.audio = self._streams()
        except InvalidVideoError:
            self._container.close()
            raise
        self.video.thread_type = "AUTO"  # frame threads: decoding is a small part of a run
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        duration = 0.0
        if self.video.duration is not None and self.video.time_base is not None:
            duration = float(self.video.duration * self.video.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        self.info = VideoInfo(
            width=self.video.codec_context.width,
            height=self.video.codec_context.height,
            rate=Fraction(rate),
            frames=self.video.frames or round(duration * rate),
            duration=duration,
            audio_codec=self.audio.codec_context.name if self.audio is not None else None,
        )

    def _streams(self) -> tuple[VideoStream, AudioStream | None]:
        container = self._container
        if not container.streams.video or container.format.name.endswith(_IMAGE_DEMUXERS):
            raise InvalidVideoError(
                f"{self.name!r}: not a video (FFmpeg reads it as {container.format.name!r} "
                "with no moving pictures); stylize images without a video output"
            )
        video = container.streams.video[0]
        if video.codec_context.width <= 0 or video.codec_context.height <= 0:
            raise InvalidVideoError(f"{self.name!r}: the video stream has no frame size")
        audio = container.streams.audio[0] if container.streams.audio else None
        return video, audio

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()

    def items(self) -> Iterator[VideoFrame | Packet[Any]]:
        """Decoded video frames and raw audio packets, in the file's order.

        Raises `InvalidVideoError` naming the frame when a packet cannot be read or decoded,
        and when the stream stops short of the frames the container declares (a truncated
        file that FFmpeg would otherwise end quietly).
        """
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        decoded = 0
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:  # demux ends each stream with an empty packet
                        yield packet
                    continue
                for frame in self.video.decode(packet):
                    decoded += 1
                    yield frame
        except av.error.FFmpegError as exc:
            raise InvalidVideoError(
                f"{self.name!r}: cannot read video frame {decoded + 1}: {exc}"
            ) from exc
        declared = self.video.frames
        if declared and decoded < declared:
            raise InvalidVideoError(
                f"{self.name!r}: the video stops at frame {decoded} of the {declared} it "
                "declares (the file is truncated or damaged)"
            )

    @property
    def time_base(self) -> Fraction:
        return self.video.time_base or Fraction(1, 90000)


def inspect_video(path: str | os.PathLike[str], *, stop_after: int | None = None) -> VideoInfo:
    """A clip's `VideoInfo` with `frames` counted, not declared: its video packets are demuxed
    and counted without being decoded, so the compressed bytes are read once and nothing is held
    (what a server checks an upload with before queueing it).

    Raises `InvalidVideoError` for a file that is not a video, whose packets cannot be read, or
    that has fewer packets than its container declares frames (a truncated file). With
    `stop_after`, counting stops past that many frames (the count is then `stop_after + 1`).
    """
    with VideoSource(path) as clip:
        counted = 0
        streams = [clip.video] + ([clip.audio] if clip.audio is not None else [])
        try:
            for packet in clip._container.demux(streams):
                if packet.is_corrupt:  # a packet cut short: the file ends inside it
                    raise InvalidVideoError(
                        f"{clip.name!r}: the {packet.stream.type} stream breaks off after "
                        f"video frame {counted} (the file is truncated or damaged)"
                    )
                if packet.size == 0 or packet.stream.type != "video":
                    continue  # demux ends each stream with an empty packet
                counted += 1
                if stop_after is not None and counted > stop_after:
                    break
        except av.error.FFmpegError as exc:
            raise InvalidVideoError(
                f"{clip.name!r}: cannot read video packet {counted + 1}: {exc}"
            ) from exc
        declared = clip.video.frames
        if declared and counted < declared and (stop_after is None or counted <= stop_after):
            raise InvalidVideoError(
                f"{clip.name!r}: the video stops at frame {counted} of the {declared} it "
                "declares (the file is truncated or damaged)"
            )
        if counted == 0:
            raise InvalidVideoError(f"{clip.name!r}: the video stream has no frames")
        return dataclasses.replace(clip.info, frames=counted)


def display_matrix(frame: VideoFrame) -> list[int] | None:
    """The frame's display matrix (rotation and flips, 9 × int32), if it has one."""
    # PyAV's stub calls `side_data` one SideData; it is the container of them all.
    side_data = cast(SideDataContainer, frame.side_data)
    for data in side_data:
        if data.type == SideDataType.DISPLAYMATRIX:
            return [int(v) for v in np.frombuffer(bytes(data), dtype="<i4")]
    return None


def choose_codec(path: Path, codec: Codec) -> str:
    """The encoder for `path` (FFmpeg's name): VP9 in WebM, H.264 elsewhere unless asked."""
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InvalidParameterError(
            f"output: {str(path)!r} is not a video file name; use one of "
            f"{', '.join(OUTPUT_SUFFIXES)}"
        )
    if codec == "auto":
        codec = "vp9" if suffix == ".webm" else "h264"
    if suffix == ".webm" and codec != "vp9":
        raise InvalidParameterError(f"codec: WebM holds VP9 video, not {codec}; use .mp4")
    return {"h264": "libx264", "vp9": "libvpx-vp9"}[codec]


class VideoSink:
    """An output clip being written: encoded frames plus the input's sound (`audio.AudioOut`:
    its packets remuxed, or re-encoded where the container cannot hold their codec).

    Written to a hidden file beside `path` and renamed over it by `close()`, so a failed run
    leaves no half-written video; `abort()` removes the partial file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction,
        codec: Codec = "auto",
        crf: int | None = None,
        matrix: Sequence[int] | None = None,
        audio: AudioStream | None = None,
    ) -> None:
        self.path = Path(path)
        encoder = choose_codec(self.path, codec)
        if width % 2 or height % 2:  # yuv420p halves the chroma planes
            raise InvalidParameterError(f"video size: even sides needed, got {width}x{height}")
        self._partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        # MP4 and MOV with the index first, so a browser can play while it downloads.
        fmt = FORMATS[self.path.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._out: OutputContainer = av.open(os.fspath(self._partial), "w", options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise InvalidParameterError(f"output: cannot write {str(self.path)!r}: {exc}") from exc
        options = _encoder_options(encoder, crf)
        video = self._out.add_stream(encoder, rate=rate, options=options)
        assert isinstance(video, VideoStream)
        self.video = video
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        # Input timestamps are kept as they were (variable frame rates too).
        self.video.time_base = time_base
        self.video.codec_context.time_base = time_base
        if matrix is not None:
            self.video.set_display_matrix(matrix)
        # Frames are converted with BT.709's matrix and tagged so: untagged video is read as
        # BT.601 by some players and BT.709 by others (browsers, for HD), which shifts colours.
        context = self.video.codec_context
        context.colorspace = Colorspace.ITU709
        context.color_primaries, context.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
        context.color_range = ColorRange.MPEG
        self.audio: AudioOut | None = None
        if audio is not None:
            sound = audio_encoder(self.path, audio.codec_context.name)
            self.audio = AudioOut(self._out, audio, sound)

    def write(self, frame: np.ndarray, *, pts: int) -> None:
        """One (H, W, 3) uint8 RGB frame at `pts` (in the input's time base)."""
        video_frame = VideoFrame.from_ndarray(frame, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709
        )
        video_frame.pts = pts
        video_frame.time_base = self.video.codec_context.time_base
        self._out.mux(self.video.encode(video_frame))

    def write_audio(self, packet: Packet[Any]) -> None:
        """One of the input's audio packets (copied or re-encoded: see `AudioOut`)."""
        if self.audio is not None:
            self.audio.write(packet)

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it into place."""
        self._out.mux(self.video.encode(None))
        if self.audio is not None:
            self.audio.close()
        self._out.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(av.error.FFmpegError, OSError):  # the file is removed anyway
            self._out.close()
        self._partial.unlink(missing_ok=True)


def _encoder_options(encoder: str, crf: int | None) -> dict[str, str]:
    if encoder == "libx264":
        # "fast": on a CPU the networks, not the encoder, set the pace; crf 18 is near
        # transparent for painterly frames.
        return {"crf": str(18 if crf is None else crf), "preset": "fast"}
    # VP9 in constant quality mode (b=0); cpu-used 4 and row threads keep it off the critical
    # path of a CPU run.
    return {
        "crf": str(32 if crf is None else crf),
        "b": "0",
        "deadline": "good",
        "cpu-used": "4",
        "row-mt": "1",
    }
