"""Tiny clips made with PyAV for the video tests: a textured canvas panning by a known number of
pixels per frame (with sensor noise, optionally a scene cut and a rotation), and a 440 Hz tone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, RATE, SHIFT = 64, 48, 25, 2  # SHIFT: px the scene moves left per frame


def canvas(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colour field with edges, (H, W, 3) uint8: texture for the flow to follow."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 1, width // 8 + 1, 3))
    field = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    stripes = 0.25 * (np.sin(np.arange(width) / 3.0) > 0)[None, :, None]
    return ((0.7 * field + stripes) * 255).clip(0, 255).astype(np.uint8)


def make_clip(
    path: Path,
    *,
    frames: int = 25,
    rotation: int | None = None,
    audio: bool = True,
    noise: float = 0.0,
    cut_at: int | None = None,
    faststart: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    codec: str = "libx264",
    sound_codec: str | None = None,
) -> Path:
    """A clip panning over a canvas by SHIFT px per frame (a new canvas from `cut_at`);
    `codec` libvpx-vp9 for a .webm (whose sound is then Opus, else AAC unless `sound_codec`
    names another encoder, e.g. pcm_u8 in an .avi)."""
    rng = np.random.default_rng(1)
    scenes = [canvas(width + SHIFT * frames, height, seed) for seed in (0, 1)]
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream(codec, rate=RATE, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound_codec = sound_codec or ("libopus" if codec == "libvpx-vp9" else "aac")
        rate = 48000 if sound_codec == "libopus" else 16000
        sound = out.add_stream(sound_codec, rate=rate, layout="mono") if audio else None
        for i in range(frames):
            scene = scenes[1 if cut_at is not None and i >= cut_at else 0]
            image = scene[:, i * SHIFT : i * SHIFT + width].astype(np.float32)
            image += rng.normal(0, noise, image.shape)
            frame = av.VideoFrame.from_ndarray(image.clip(0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = frames * rate // RATE
            tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)
            chunk_size = 960 if sound_codec == "libopus" else 1024
            for start in range(0, samples, chunk_size):
                chunk = tone[None, start : start + chunk_size].astype(np.float32)
                # The encoder converts the samples to its own format (u8 for pcm_u8).
                block = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                block.sample_rate, block.pts = rate, start
                out.mux(sound.encode(block))
            out.mux(sound.encode(None))
    return path


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as clip:
        return [(p.pts, bytes(p)) for p in clip.demux(clip.streams.audio[0]) if p.dts is not None]


@dataclass(frozen=True)
class Sound:
    """A clip's audio stream as heard: codec, when it starts and how long it lasts (seconds),
    its loudest frequency (Hz)."""

    codec: str
    start: float
    seconds: float
    pitch: float


def sound(path: Path) -> Sound:
    """The first audio stream of `path`, decoded (the test clips' sound is mono)."""
    with av.open(str(path)) as clip:
        stream = clip.streams.audio[0]
        frames = list(clip.decode(stream))
        rate = frames[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in frames])  # (first) channel
        spectrum = np.abs(np.fft.rfft(samples - samples.mean(dtype=np.float64)))  # u8: no DC
        return Sound(
            codec=stream.codec_context.name,
            start=float(frames[0].time or 0.0),
            seconds=len(samples) / rate,
            pitch=float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]),
        )


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]
