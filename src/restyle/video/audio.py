"""A clip's sound in the output: its packets copied where the container holds its codec,
re-encoded where it does not (AAC, most phones' sound, into WebM, which holds only Opus and
Vorbis).

Copying keeps the sound bit for bit, so it is the rule; re-encoding is the exception that lets a
browser without H.264 get a playable WebM of any clip. A re-encoded stream keeps the input's
timestamps (decoded frames carry them into the encoder), so it stays in sync with the video, and
its sample rate where the encoder takes it. Mono stays mono and anything else becomes stereo:
the encoders take different sets of surround layouts (libopus refuses 2.1 and 4.0) and none
takes a layout of unnamed channels, which some AVI files declare.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
"""FFmpeg's muxer for each output suffix."""

# The encoder for a container that cannot hold the input's sound as it is: Opus for WebM (what
# browsers play there), AAC for the others (what every player of MP4 and MOV takes).
_ENCODERS = {"webm": "libopus"}
_DEFAULT_ENCODER = "aac"
_NAMES = {"libopus": "Opus", "aac": "AAC"}


def audio_encoder(path: Path, codec: str | None) -> str | None:
    """The encoder (FFmpeg's name) that `path` needs for sound of `codec`: None when there is no
    sound or when `path`'s container holds `codec` as it is (its packets are then copied)."""
    if codec is None:
        return None
    fmt = FORMATS[path.suffix.lower()]
    probe = av.open(io.BytesIO(), "w", format=fmt)
    try:
        supported = codec in probe.supported_codecs
    finally:
        probe.close()
    return None if supported else _ENCODERS.get(fmt, _DEFAULT_ENCODER)


def encoder_name(encoder: str) -> str:
    """How a summary names an encoder's codec ("libopus" → "Opus")."""
    return _NAMES.get(encoder, encoder)


class AudioOut:
    """The output's sound: `write` takes the input's packets in file order, `close` flushes.

    With `encoder` None the packets are remuxed untouched; otherwise they are decoded with the
    input stream's decoder and encoded with `encoder`. PyAV's encoder converts the sample format
    and cuts the frames to the encoder's frame size itself, passing the timestamps through.
    """

    def __init__(self, out: OutputContainer, source: AudioStream, encoder: str | None) -> None:
        self._out, self._source, self.encoder = out, source, encoder
        if encoder is None:
            self.stream = out.add_stream_from_template(source)
            return
        context = source.codec_context
        rates = av.codec.Codec(encoder, "w").audio_rates
        rate = context.sample_rate
        if rates and rate not in rates:  # Opus: 8, 12, 16, 24 or 48 kHz; the next one up
            rate = min((r for r in rates if r >= rate), default=max(rates))
        layout = "mono" if context.layout.nb_channels == 1 else "stereo"
        stream = out.add_stream(encoder, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        self.stream = stream

    def write(self, packet: Packet[Any]) -> None:
        """One of the input's audio packets."""
        if self.encoder is None:
            packet.stream = self.stream
            self._out.mux(packet)
            return
        for frame in self._source.decode(packet):
            self._encode(frame)

    def close(self) -> None:
        """Flush the decoder and the encoder (nothing to do for copied packets)."""
        if self.encoder is None:
            return
        for frame in self._source.decode(None):
            self._encode(frame)
        self._out.mux(self.stream.encode(None))

    def _encode(self, frame: AudioFrame) -> None:
        self._out.mux(self.stream.encode(frame))
