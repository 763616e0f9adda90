"""Video files end to end, on tiny clips made with PyAV (`tests/video_clips.py`): a textured canvas
panning by a known number of pixels per frame (with sensor noise), and a 440 Hz tone."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from tests.video_clips import (
    HEIGHT,
    RATE,
    SHIFT,
    WIDTH,
    audio_packets,
    decoded,
    make_clip,
    sound,
)

from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError, InvalidVideoError
from restyle.examples import bundled
from restyle.models.checkpoint import save_transform_net
from restyle.models.transform_net import TransformNet, TransformNetConfig
from restyle.video import stylize_video
from restyle.video.stabilise import warping_error

STYLE = "starry-night"  # a network of the model zoo shipped with the package


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines(device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "pan.mp4", noise=6.0)


def test_frames_rate_duration_and_audio_packets_are_kept(
    clip: Path, tmp_path: Path, engines: Engines
) -> None:
    out = tmp_path / "out.mp4"
    summary = stylize_video(clip, out, STYLE, engines=engines)
    with av.open(str(clip)) as source, av.open(str(out)) as result:
        before, after = source.streams.video[0], result.streams.video[0]
        assert after.frames == before.frames == summary.frames == 25
        assert after.average_rate == before.average_rate == Fraction(RATE)
        assert (after.width, after.height) == (WIDTH, HEIGHT)
        assert after.codec_context.name == "h264" and after.format.name == "yuv420p"
        duration = float(after.duration * after.time_base)  # type: ignore[operator]
        assert duration == pytest.approx(float(before.duration * before.time_base), abs=1e-6)  # type: ignore[operator]
    packets = audio_packets(clip)
    assert len(packets) > 10
    assert audio_packets(out) == packets  # remuxed, byte for byte, at the same times
    assert summary.audio_packets == len(packets)
    assert summary.audio_encoder is None
    assert summary.audio_note == f"{len(packets)} audio packets kept"
    frames = decoded(out)
    assert frames[0].std() > 10  # a picture, not a flat frame
    assert np.abs(frames[0].astype(int) - decoded(clip)[0]).mean() > 20  # and stylized


def test_rotation_metadata_stays(tmp_path: Path, engines: Engines) -> None:
    source = make_clip(tmp_path / "phone.mp4", frames=4, rotation=90, audio=False)
    out = tmp_path / "out.mkv"
    stylize_video(source, out, STYLE, engines=engines)
    with av.open(str(out)) as result:
        frame = next(result.decode(video=0))
        assert frame.rotation == 90
        assert (frame.width, frame.height) == (WIDTH, HEIGHT)  # stored as it was, not turned


def test_arbitrary_engine_and_webm(tmp_path: Path, engines: Engines) -> None:
    source = make_clip(tmp_path / "silent.mp4", frames=6, audio=False)
    out = tmp_path / "out.webm"
    summary = stylize_video(
        source, out, bundled("great_wave"), method="arbitrary", size=80, engines=engines
    )
    with av.open(str(out)) as result:
        stream = result.streams.video[0]
        assert stream.codec_context.name == "vp9"
        assert (stream.codec_context.width, stream.codec_context.height) == (80, 60)
    assert summary.frames == len(decoded(out)) == 6


@pytest.mark.parametrize(
    ("source", "output", "encoder", "codec"),
    [
        # WebM holds only Opus and Vorbis: a phone clip's AAC becomes Opus.
        ("pan.mp4", "out.webm", "libopus", "opus"),
        # MP4 does not hold an old camera's 8-bit PCM (beside MPEG-4 video, in AVI): it becomes AAC.
        ("camera.avi", "out.mp4", "aac", "aac"),
    ],
)
def test_sound_the_container_cannot_hold_is_re_encoded_in_sync(
    source: str, output: str, encoder: str, codec: str, tmp_path: Path, engines: Engines
) -> None:
    camera = {"codec": "mpeg4", "sound_codec": "pcm_u8"} if source.endswith(".avi") else {}
    clip = make_clip(tmp_path / source, frames=25, **camera)
    out = tmp_path / output
    summary = stylize_video(clip, out, STYLE, engines=engines)
    assert summary.audio_encoder == encoder
    assert summary.audio_note == f"audio re-encoded to {'Opus' if codec == 'opus' else 'AAC'}"
    assert summary.audio_packets == len(audio_packets(clip))
    before, after = sound(clip), sound(out)
    assert after.codec == codec
    assert after.start == pytest.approx(before.start, abs=0.005)  # in sync with the video
    # The encoders pad the last block (AAC: 1024 samples, 64 ms at 16 kHz; Opus: 20 ms).
    assert after.seconds == pytest.approx(before.seconds, abs=0.07)
    assert after.pitch == pytest.approx(440, abs=2)  # the tone, not noise or silence
    with av.open(str(out)) as result:
        assert result.streams.video[0].frames in (0, 25)  # WebM does not declare a count
    assert summary.frames == len(decoded(out)) == 25


def test_max_frames_cuts_video_and_sound_together(
    clip: Path, tmp_path: Path, engines: Engines
) -> None:
    out = tmp_path / "short.mp4"
    summary = stylize_video(clip, out, STYLE, max_frames=10, engines=engines)
    assert summary.frames == len(decoded(out)) == 10
    kept = audio_packets(out)
    assert kept == audio_packets(clip)[: len(kept)]
    with av.open(str(out)) as result:
        audio = result.streams.audio[0]
        end = float(kept[-1][0] * audio.time_base)  # type: ignore[operator]
        assert end < 10 / RATE <= end + 0.1  # the last packet starts before the last frame ends


def test_truncated_file_is_an_error_naming_file_and_frame(tmp_path: Path, engines: Engines) -> None:
    whole = make_clip(tmp_path / "whole.mp4", frames=25, faststart=True, noise=20.0)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])  # the index survives, the frames do not
    out = tmp_path / "out.mp4"
    with pytest.raises(InvalidVideoError, match=r"cut\.mp4.*frame \d+ of the 25"):
        stylize_video(cut, out, STYLE, engines=engines)
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no partial output left behind
    ended = tmp_path / "ended.mp4"
    ended.write_bytes(make_clip(tmp_path / "plain.mp4", frames=5).read_bytes()[:2000])
    with pytest.raises(InvalidVideoError, match=r"ended\.mp4.*not a readable video"):
        stylize_video(ended, out, STYLE, engines=engines)


def test_non_video_inputs_are_clear_errors(tmp_path: Path, engines: Engines) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InvalidVideoError, match=r"notes\.mp4"):
        stylize_video(text, tmp_path / "out.mp4", STYLE, engines=engines)
    with pytest.raises(InvalidVideoError, match=r"parrots\.jpg.*not a video"):
        stylize_video(bundled("parrots"), tmp_path / "out.mp4", STYLE, engines=engines)


def test_bad_requests_fail_before_any_work(clip: Path, tmp_path: Path, engines: Engines) -> None:
    with pytest.raises(InvalidParameterError, match="max_frames"):
        stylize_video(clip, tmp_path / "out.mp4", bundled("starry_night"), method="gatys")
    with pytest.raises(InvalidParameterError, match="not a video file name"):
        stylize_video(clip, tmp_path / "out.png", STYLE, engines=engines)
    with pytest.raises(InvalidParameterError, match="temporal_strength"):
        stylize_video(clip, tmp_path / "out.mp4", STYLE, temporal_strength=2.0)
    assert not list(tmp_path.iterdir())


def _pan_error(frames: list[np.ndarray]) -> float:
    """Mean warping error between consecutive frames under the clip's known motion."""
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 0] = SHIFT  # a pixel of frame t was SHIFT px further right in frame t - 1
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[:, : WIDTH - SHIFT] = True
    pairs = itertools.pairwise(frames)
    return float(np.mean([warping_error(a / 255, b / 255, flow, mask) for a, b in pairs]))


def test_stabiliser_lowers_the_warping_error(clip: Path, tmp_path: Path, engines: Engines) -> None:
    plain, steady = tmp_path / "plain.mp4", tmp_path / "steady.mp4"
    # Lossless (crf 0): the differences measured are the stabiliser's, not the encoder's.
    stylize_video(clip, plain, STYLE, temporal_strength=0.0, crf=0, engines=engines)
    stylize_video(clip, steady, STYLE, crf=0, engines=engines)
    plain_frames, steady_frames = decoded(plain), decoded(steady)
    assert _pan_error(steady_frames) < 0.5 * _pan_error(plain_frames)
    # The first frame has no history; later ones stay near their own stylization.
    assert np.abs(steady_frames[0].astype(int) - plain_frames[0]).mean() < 1
    assert np.abs(steady_frames[-1].astype(int) - plain_frames[-1]).mean() < 12


def test_a_scene_cut_resets_the_history(tmp_path: Path, engines: Engines) -> None:
    source = make_clip(tmp_path / "cut.mp4", frames=12, cut_at=6, audio=False)
    plain, steady = tmp_path / "plain.mp4", tmp_path / "steady.mp4"
    stylize_video(source, plain, STYLE, temporal_strength=0.0, crf=0, engines=engines)
    summary = stylize_video(source, steady, STYLE, temporal_strength=0.9, crf=0, engines=engines)
    assert summary.cuts == 1
    plain_frames, steady_frames = decoded(plain), decoded(steady)
    assert np.abs(plain_frames[6].astype(int) - steady_frames[6]).mean() < 1  # no ghost
    assert np.abs(plain_frames[5].astype(int) - steady_frames[5]).mean() > 1  # blended before


def _restyle(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "restyle.cli", "stylize", *args, "--device", "cpu"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_cli_stylizes_a_clip_with_a_progress_bar(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    done = _restyle(str(clip), "-s", STYLE, "-o", str(out), "--max-frames", "8", "--crf", "20")
    assert done.returncode == 0, done.stderr
    assert "8/8" in done.stderr and "frame/s" in done.stderr
    assert "audio packets kept" in done.stderr
    assert len(decoded(out)) == 8
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    done = _restyle(str(broken), "-s", STYLE, "-o", str(out))
    assert done.returncode == 3 and "broken.mp4" in done.stderr
    assert "Traceback" not in done.stderr


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from restyle.engines.holder import Engines
    from restyle.video import stylize_video

    engines = Engines(device="cpu")
    style, *clips = sys.argv[1:]
    peaks = []
    for source in clips:
        summary = stylize_video(source, source + ".out.mp4", style, engines=engines)
        peaks.append((summary.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    print(json.dumps(peaks))
    """
)


@pytest.mark.slow  # 3300 frames: about two minutes on 2 shared cores
def test_memory_stays_bounded_on_a_long_clip(tmp_path: Path) -> None:
    # A small seeded network: the per-frame work measured is the pipeline's, which is the
    # same for every network (decode, batch, stabilise, encode).
    torch.manual_seed(0)
    config = TransformNetConfig(channels=(4, 8, 8), residual_blocks=1, outer_kernel=3)
    style = save_transform_net(tmp_path / "tiny.safetensors", TransformNet(config).eval())
    short = make_clip(tmp_path / "short.mp4", frames=300, noise=4.0, audio=False)
    long = make_clip(tmp_path / "long.mp4", frames=3000, noise=4.0)
    command = [sys.executable, "-c", MEMORY_SCRIPT, str(style), str(short), str(long)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (short_frames, short_peak), (long_frames, long_peak) = json.loads(done.stdout)
    assert (short_frames, long_frames) == (300, 3000)
    # 2700 more frames would hold 25 MB as decoded RGB, 100 MB as float tensors.
    assert (long_peak - short_peak) / 1024 < 8, (short_peak, long_peak)


def _detail_energy(frames: list[np.ndarray]) -> float:
    """Mean energy of what a 1 px Gaussian removes: the strokes' contrast."""
    import cv2

    values = []
    for frame in frames:
        image = frame.astype(np.float32) / 255
        values.append(np.square(image - cv2.GaussianBlur(image, (0, 0), 1.0)).mean())
    return float(np.mean(values))


def test_stabilised_frames_keep_the_strokes_contrast(
    clip: Path, tmp_path: Path, engines: Engines
) -> None:
    # A plain recursive blend of unlike strokes is a softer picture (the style distance rose by
    # three quarters on the benchmark); the stabiliser gives the blend's detail its contrast back.
    plain, steady = tmp_path / "plain.mp4", tmp_path / "steady.mp4"
    stylize_video(clip, plain, STYLE, temporal_strength=0.0, crf=0, engines=engines)
    stylize_video(clip, steady, STYLE, temporal_strength=0.9, crf=0, engines=engines)
    ratio = _detail_energy(decoded(steady)[5:]) / _detail_energy(decoded(plain)[5:])
    assert 0.8 < ratio < 1.25


def test_restore_texture_gives_back_only_lost_contrast() -> None:
    from restyle.video.stabilise import restore_texture

    rng = np.random.default_rng(0)
    first, second = (rng.random((64, 64, 3), dtype=np.float32) for _ in range(2))
    blend = 0.5 * first + 0.5 * second  # half the variance of either
    assert _detail_energy([blend * 255]) < 0.6 * _detail_energy([second * 255])
    restored = restore_texture(blend, second)
    assert _detail_energy([restored * 255]) == pytest.approx(
        _detail_energy([second * 255]), rel=0.15
    )
    # A frame with more contrast than the stylized one is left as it is.
    flat = np.full_like(first, 0.5)
    assert np.allclose(restore_texture(first, flat), first, atol=1e-5)


@pytest.mark.parametrize("name", ["colour.mp4", "colour.webm"])
def test_output_is_bt709_tagged_and_keeps_colours(tmp_path: Path, name: str) -> None:
    from restyle.video.io import VideoSink

    colour = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    colour[:] = (200, 60, 40)
    sink = VideoSink(
        tmp_path / name,
        width=WIDTH,
        height=HEIGHT,
        rate=Fraction(RATE),
        time_base=Fraction(1, RATE),
        crf=0,
    )
    for pts in range(3):
        sink.write(colour, pts=pts)
    with av.open(str(sink.close())) as written:
        context = written.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc) == (1, 1, 1)
        frame = next(written.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame.astype(int) - colour).max() <= 3
