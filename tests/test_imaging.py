"""Tests for restyle.imaging: every input quirk and hostile file, on tiny generated images."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, JpegImagePlugin

from restyle import imaging
from restyle.errors import (
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
)
from restyle.imaging import (
    ImageLimits,
    image_to_tensor,
    load_image,
    resize_tensor,
    resize_to_area,
    resize_to_long_side,
    save_image,
    tensor_to_image,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# --- helpers -----------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)  # (H, W, 3)


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with a token IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            png_chunk(b"IHDR", ihdr),
            png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)),
            png_chunk(b"IEND", b""),
        )
    )


def read_png16(data: bytes) -> np.ndarray:
    """Decode a 16-bit RGB PNG by hand (Pillow only reads it as 8-bit): (H, W, 3) uint16."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + payload
        )
        header = payload if kind == b"IHDR" else header
        idat += payload if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) == (16, 2)
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 6)
    filters, body = rows[:, 0], rows[:, 1:].reshape(height, width, 6)
    assert set(filters.tolist()) <= {0, 1}
    # Undo the Sub filter: each pixel's bytes are a running sum (mod 256) along the row.
    summed = np.cumsum(body.astype(np.int64), axis=1) % 256
    body = np.where(filters[:, None, None] == 1, summed, body).astype(np.uint8)
    return body.reshape(height, width * 6).copy().view(">u2").reshape(height, width, 3)


def icc_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))


LINEAR_CURVE = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"  # gamma 1.0, padded
D50 = icc_xyz(0.9642, 1.0, 0.8249)


def make_icc(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 display profile: header, tag table, tag data."""
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I4sI", offset + len(body), b"\0" * 4, 0x02100000)
        + b"mntr"
        + colour_space
        + b"XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + D50[8:]  # the PCS illuminant
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + table + body


def linear_rgb_icc() -> bytes:
    """An RGB profile with sRGB primaries but a linear (gamma 1.0) tone curve.

    Pillow can only create sRGB, LAB and XYZ profiles, so a real non-sRGB profile is built by
    hand. Grey stays grey through it; only the tone curve differs from sRGB.
    """
    primaries = [
        (b"rXYZ", icc_xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", icc_xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", icc_xyz(0.1431, 0.0606, 0.7141)),
    ]
    curves = [(tag, LINEAR_CURVE) for tag in (b"rTRC", b"gTRC", b"bTRC")]
    return make_icc(b"RGB ", [(b"wtpt", D50), *primaries, *curves])


def linear_grey_icc() -> bytes:
    return make_icc(b"GRAY", [(b"wtpt", D50), (b"kTRC", LINEAR_CURVE)])


def srgb_encode(linear: float) -> float:
    return 1.055 * linear ** (1 / 2.4) - 0.055 if linear > 0.0031308 else 12.92 * linear


# --- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "max_side"])
@pytest.mark.parametrize("value", [0, -5, 1.5, True, "10"])
def test_image_limits_reject_non_positive_ints(field: str, value: object) -> None:
    with pytest.raises(InvalidParameterError, match=f"{field}.*{value!r}"):
        ImageLimits(**{field: value})  # type: ignore[arg-type]


def test_default_limits() -> None:
    assert ImageLimits(50 * 1024 * 1024, 40_000_000, 12_000) == imaging.DEFAULT_LIMITS


def test_errors_form_one_hierarchy() -> None:
    for error in (ImageTooLargeError, InvalidImageError, InvalidParameterError):
        assert issubclass(error, RestyleError)
    assert issubclass(ImageTooLargeError, InvalidImageError)


# --- tensors -----------------------------------------------------------------------------------


def test_png_round_trip_is_exact_to_one_level(tmp_path: Path) -> None:
    t = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(0))
    out = save_image(t, tmp_path / "out.png")
    back = image_to_tensor(load_image(out))
    assert back.shape == (1, 3, 7, 5)
    assert (back - t).abs().max().item() <= 0.5 / 255 + 1e-6


def test_image_to_tensor_values_layout_and_dtype() -> None:
    img = Image.new("RGB", (3, 2), (255, 0, 51))
    img.putpixel((2, 1), (0, 255, 0))
    t = image_to_tensor(img, dtype=torch.float16)
    assert t.shape == (1, 3, 2, 3) and t.dtype == torch.float16 and t.is_contiguous()
    assert t[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2], abs=1e-3)
    assert t[0, :, 1, 2].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("bad", [Image.new("RGBA", (2, 2)), Image.new("L", (2, 2))])
def test_image_to_tensor_rejects_non_rgb(bad: Image.Image) -> None:
    with pytest.raises(InvalidParameterError, match=bad.mode):
        image_to_tensor(bad)


def test_image_to_tensor_rejects_integer_dtype() -> None:
    with pytest.raises(InvalidParameterError, match="int64"):
        image_to_tensor(Image.new("RGB", (2, 2)), dtype=torch.int64)


def test_tensor_to_image_clamps_and_rounds() -> None:
    levels = torch.tensor([-1.0, 0.4 / 255, 0.6 / 255, 127.5 / 255, 254.6 / 255, 2.0])
    t = levels.view(1, 1, 6).expand(3, 1, 6).clone()  # (3, H=1, W=6)
    assert pixels(tensor_to_image(t))[0, :, 0].tolist() == [0, 0, 1, 128, 255, 255]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_tensor_to_image_accepts_half_types_and_grad(dtype: torch.dtype) -> None:
    t = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    half = t.to(dtype)
    diff = pixels(tensor_to_image(half)) - pixels(tensor_to_image(t))
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
def test_tensor_to_image_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidParameterError, match=r"\(1, 3, H, W\)"):
        tensor_to_image(torch.zeros(shape))


def test_tensor_to_image_rejects_nan() -> None:
    t = torch.zeros(3, 2, 2)
    t[0, 0, 0] = float("nan")
    with pytest.raises(InvalidParameterError, match="NaN"):
        tensor_to_image(t)


# --- loading: colour handling ------------------------------------------------------------------


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    img = Image.new("RGB", (32, 16), BLUE)
    img.paste(RED, (0, 0, 16, 16))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, quality=95, exif=exif)
    upright = load_image(path)
    assert upright.size == (16, 32)
    got = pixels(upright)
    # The left (red) half is now the top half.
    assert np.abs(got[2, 8] - RED).max() < 30
    assert np.abs(got[29, 8] - BLUE).max() < 30


def test_embedded_srgb_profile_keeps_values() -> None:
    img = noise_image(8, 8)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image(encode(img, "PNG", icc_profile=icc))
    assert np.array_equal(pixels(loaded), pixels(img))


def test_embedded_linear_profile_is_converted_to_srgb() -> None:
    img = Image.new("RGB", (4, 4), (128, 128, 128))
    loaded = load_image(encode(img, "PNG", icc_profile=linear_rgb_icc()))
    expected = round(255 * srgb_encode(128 / 255))  # 188, where an unmanaged load gives 128
    assert np.abs(pixels(loaded) - expected).max() <= 2


@pytest.mark.parametrize("blob", [b"not a profile", b"\0" * 200, linear_rgb_icc()[:140]])
def test_corrupt_profile_falls_back_to_plain_conversion(blob: bytes) -> None:
    img = noise_image(6, 4)
    assert np.array_equal(pixels(load_image(encode(img, "PNG", icc_profile=blob))), pixels(img))


def test_embedded_grey_profile_is_converted_to_srgb() -> None:
    img = Image.new("L", (4, 4), 128)
    loaded = load_image(encode(img, "PNG", icc_profile=linear_grey_icc()))
    assert np.abs(pixels(loaded) - round(255 * srgb_encode(128 / 255))).max() <= 2


def test_rgb_profile_on_greyscale_falls_back() -> None:
    img = Image.new("L", (3, 3), 77)
    loaded = load_image(encode(img, "PNG", icc_profile=linear_rgb_icc()))
    assert (pixels(loaded) == 77).all()


def test_alpha_is_composited_over_white() -> None:
    img = Image.new("RGBA", (3, 1), (0, 0, 0, 0))  # transparent black
    img.putpixel((1, 0), (255, 0, 0, 255))
    img.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black -> mid grey
    got = pixels(load_image(encode(img, "PNG")))
    assert got[0, 0].tolist() == list(WHITE)
    assert got[0, 1].tolist() == list(RED)
    assert np.abs(got[0, 2] - 127).max() <= 1


def test_greyscale_with_alpha() -> None:
    img = Image.new("LA", (2, 1), (40, 255))
    img.putpixel((1, 0), (40, 0))
    got = pixels(load_image(encode(img, "PNG")))
    assert got[0].tolist() == [[40, 40, 40], list(WHITE)]


def test_cmyk_jpeg_becomes_rgb() -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    loaded = load_image(encode(img, "JPEG", quality=95))
    assert loaded.mode == "RGB"
    assert np.abs(pixels(loaded) - RED).max() < 10


@pytest.mark.parametrize("transparent", [True, False])
def test_palette_png(transparent: bool) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([*RED, *GREEN])
    img.putpixel((1, 0), 1)
    options = {"transparency": 1} if transparent else {}
    got = pixels(load_image(encode(img, "PNG", **options)))
    assert got[0].tolist() == [list(RED), list(WHITE if transparent else GREEN)]


def test_transparent_colour_in_rgb_png() -> None:
    img = Image.new("RGB", (2, 1), BLUE)
    img.putpixel((1, 0), GREEN)
    got = pixels(load_image(encode(img, "PNG", transparency=GREEN)))
    assert got[0].tolist() == [list(BLUE), list(WHITE)]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    img = Image.fromarray(np.array([[0, 257, 32768, 65535]], dtype=np.uint16))
    assert img.mode == "I;16"
    got = pixels(load_image(encode(img, fmt)))
    assert got[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (got == got[..., :1]).all()  # grey stays grey


def test_32_bit_int_and_float_greyscale_tiff() -> None:
    ints = Image.fromarray(np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32))
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert pixels(load_image(encode(ints, "TIFF")))[0, :, 0].tolist() == [0, 128, 255]
    assert pixels(load_image(encode(floats, "TIFF")))[0, :, 0].tolist() == [0, 128, 255]


def test_16_bit_rgb_png_input_is_scaled(tmp_path: Path) -> None:
    t = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3).expand(3, 1, 3).clone()
    path = save_image(t, tmp_path / "deep.png", bit_depth=16)
    got = pixels(load_image(path))
    assert got[0, :, 1].tolist() == [0, 128, 255]


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 3
    assert (pixels(load_image(data)) == RED).all()


def test_animated_webp_gives_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in (GREEN, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert (pixels(load_image(data)) == GREEN).all()


def test_multi_picture_jpeg_gives_first_picture() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (BLUE, RED)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:], quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "MPO" and check.n_frames == 2
    assert np.abs(pixels(load_image(data)) - BLUE).max() < 10


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "WEBP", "TIFF"])
def test_other_supported_formats_load(fmt: str) -> None:
    img = Image.new("RGB", (5, 3), (10, 200, 30))
    options = {"lossless": True} if fmt == "WEBP" else {}
    got = pixels(load_image(encode(img, fmt, **options)))
    assert got.shape == (3, 5, 3)
    assert np.abs(got - (10, 200, 30)).max() <= 3  # GIF quantises to a palette


# --- loading: sources --------------------------------------------------------------------------


def test_bytes_bytearray_and_stream_sources() -> None:
    data = encode(noise_image(4, 3), "PNG")
    expected = pixels(load_image(data))
    assert np.array_equal(pixels(load_image(bytearray(data))), expected)
    assert np.array_equal(pixels(load_image(memoryview(data))), expected)
    assert np.array_equal(pixels(load_image(io.BytesIO(data))), expected)


def test_path_and_open_file_sources(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    noise_image(4, 3).save(path)
    expected = pixels(load_image(path))
    assert np.array_equal(pixels(load_image(str(path))), expected)
    with path.open("rb") as stream:
        assert np.array_equal(pixels(load_image(stream)), expected)


def test_limits_must_be_image_limits() -> None:
    with pytest.raises(InvalidParameterError, match="limits"):
        load_image(b"x", limits=1000)  # type: ignore[arg-type]


def test_unsupported_source_type() -> None:
    with pytest.raises(InvalidParameterError, match="int"):
        load_image(42)  # type: ignore[arg-type]


# --- loading: hostile and broken input ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt: str) -> None:
    data = encode(noise_image(64, 64), fmt)
    with pytest.raises(InvalidImageError, match="<bytes>"):
        load_image(data[: len(data) // 2])


def test_random_bytes() -> None:
    junk = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidImageError, match=r"<bytes> is not an image.*\(4096 bytes\)"):
        load_image(junk)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "cat.jpg"
    with pytest.raises(InvalidImageError, match="does not exist") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize(
    ("width", "height", "limits", "match"),
    [
        (100_000, 100_000, ImageLimits(), "too large to decode safely"),  # Pillow's guard
        (10_000, 10_000, ImageLimits(max_pixels=10**9), "too large"),  # Pillow's warning band
        (7_000, 7_000, ImageLimits(), "49000000 pixels"),
        (13_000, 1, ImageLimits(), "max_side"),
    ],
)
def test_huge_header_is_refused_without_decoding(
    width: int, height: int, limits: ImageLimits, match: str
) -> None:
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=match):
        load_image(png_header_only(width, height), limits=limits)
    assert time.perf_counter() - start < 0.5
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the global guard is untouched


def test_pixel_limit_on_a_real_image(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 3000), RED).save(path, compress_level=1)
    with pytest.raises(ImageTooLargeError, match="3000x3000 = 9000000 pixels"):
        load_image(path, limits=ImageLimits(max_pixels=1_000_000))
    assert load_image(path).size == (3000, 3000)


def test_byte_limit(tmp_path: Path) -> None:
    data = encode(noise_image(16, 16), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    limits = ImageLimits(max_bytes=len(data) - 1)
    for source in (path, data, io.BytesIO(data)):
        with pytest.raises(ImageTooLargeError, match=rf"{len(data)} bytes, over {len(data) - 1} "):
            load_image(source, limits=limits)
    assert load_image(data, limits=ImageLimits(max_bytes=len(data))).size == (16, 16)


def test_stream_is_read_no_further_than_the_limit() -> None:
    stream = io.BytesIO(b"\0" * 5_000_000)
    with pytest.raises(ImageTooLargeError, match="at least 1001 bytes, over 1000"):
        load_image(stream, limits=ImageLimits(max_bytes=1000))
    assert stream.tell() == 1001


@pytest.mark.parametrize(
    ("fmt", "options"), [("PPM", {}), ("ICO", {"sizes": [(16, 16)]}), ("TGA", {})]
)
def test_unsupported_format_is_named(fmt: str, options: dict[str, object]) -> None:
    data = encode(Image.new("RGB", (16, 16), RED), fmt, **options)
    with pytest.raises(InvalidImageError, match=r"not in a supported format|not an image"):
        load_image(data)


def test_unsupported_format_named_when_magic_is_known() -> None:
    with pytest.raises(InvalidImageError, match="looks like PPM"):
        load_image(encode(Image.new("RGB", (4, 4)), "PPM"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_corrupted_files_raise_only_invalid_image(fmt: str) -> None:
    """Flip random bytes: every outcome is an RGB image or InvalidImageError, nothing else."""
    data = bytearray(encode(noise_image(12, 10, seed=1), fmt))
    rng = np.random.default_rng(7)
    for _ in range(40):
        mutated = data.copy()
        for index in rng.integers(0, len(data), size=3):
            mutated[index] = int(rng.integers(0, 256))
        try:
            img = load_image(bytes(mutated), limits=ImageLimits(max_pixels=1_000_000))
        except InvalidImageError:
            continue
        assert img.mode == "RGB"


# --- saving ------------------------------------------------------------------------------------


def test_save_16_bit_png_keeps_16_bit_precision(tmp_path: Path) -> None:
    t = torch.rand(1, 3, 5, 4, generator=torch.Generator().manual_seed(2))
    t[0, :, 0, 0] = torch.tensor([0.5, 1 / 65535, 1.0])
    path = save_image(t, tmp_path / "deep.png", bit_depth=16)
    raw = read_png16(path.read_bytes())
    assert raw.shape == (5, 4, 3)
    assert raw[0, 0].tolist() == [32768, 1, 65535]
    expected = (t[0].permute(1, 2, 0).double() * 65535).numpy()
    assert np.abs(raw - expected).max() <= 0.5 + 1e-6
    with Image.open(path) as check:  # Pillow accepts it as a valid PNG too
        assert check.size == (4, 5) and check.getpixel((0, 0)) == (128, 0, 255)


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".png"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    img = noise_image(6, 5)
    out = save_image(img, tmp_path / f"x{suffix}")
    assert np.array_equal(pixels(load_image(out)), pixels(img))


@pytest.mark.parametrize(("quality", "sampling"), [(95, 0), (90, 0), (80, 2)])
def test_jpeg_quality_and_subsampling(tmp_path: Path, quality: int, sampling: int) -> None:
    out = save_image(noise_image(16, 16), tmp_path / "x.JPG", quality=quality)
    with Image.open(out) as check:
        assert check.format == "JPEG"
        assert isinstance(check, JpegImagePlugin.JpegImageFile)
        assert JpegImagePlugin.get_sampling(check) == sampling


def test_webp_and_explicit_format(tmp_path: Path) -> None:
    img = Image.new("RGB", (8, 8), (200, 100, 50))
    out = save_image(img, tmp_path / "noext", format="webp", quality=100)
    with Image.open(out) as check:
        assert check.format == "WEBP"
    assert np.abs(pixels(load_image(out)) - (200, 100, 50)).max() <= 4


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("x.bmp", {}, "suffix '.bmp'"),
        ("x", {}, "suffix ''"),
        ("x.png", {"format": "gif"}, "'gif'"),
        ("x.jpg", {"bit_depth": 16}, "PNG only, got JPEG"),
        ("x.webp", {"bit_depth": 16}, "PNG only, got WEBP"),
        ("x.tif", {"bit_depth": 16}, "PNG only, got TIFF"),
        ("x.png", {"bit_depth": 12}, "bit_depth.*12"),
        ("x.jpg", {"quality": 0}, "quality.*0"),
        ("x.jpg", {"quality": 101}, "quality.*101"),
    ],
)
def test_save_rejects_bad_parameters(
    tmp_path: Path, name: str, options: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        save_image(torch.zeros(1, 3, 2, 2), tmp_path / name, **options)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_save_16_bit_needs_a_tensor(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="needs a tensor"):
        save_image(Image.new("RGB", (2, 2)), tmp_path / "x.png", bit_depth=16)


def test_save_missing_parent_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(InvalidParameterError, match="does not exist") as info:
        save_image(torch.zeros(3, 2, 2), missing / "x.png")
    assert str(missing) in str(info.value)


def test_failed_save_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "x.png"
    out.write_bytes(b"previous")

    def fail_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("restyle.imaging.encode.os.replace", fail_replace)
    with pytest.raises(RestyleError, match="disk full"):
        save_image(torch.zeros(3, 2, 2), out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_save_replaces_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    out.write_bytes(b"previous")
    save_image(torch.ones(3, 2, 2), out)
    assert (pixels(load_image(out)) == 255).all()
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


# --- resizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "long_side", "expected"),
    [((400, 200), 100, (100, 50)), ((200, 400), 100, (50, 100)), ((30, 20), 60, (60, 40))],
)
def test_resize_to_long_side(
    size: tuple[int, int], long_side: int, expected: tuple[int, int]
) -> None:
    assert resize_to_long_side(Image.new("RGB", size), long_side).size == expected


def test_resize_never_gives_zero_pixels() -> None:
    assert resize_to_long_side(Image.new("RGB", (1000, 1)), 10).size == (10, 1)
    assert resize_to_area(Image.new("RGB", (1000, 1)), 4).size == (63, 1)


def test_resize_to_area_keeps_aspect() -> None:
    out = resize_to_area(Image.new("RGB", (400, 100)), 10_000)
    assert out.size == (200, 50)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_resize_rejects_bad_sizes(bad: object) -> None:
    img = Image.new("RGB", (4, 4))
    with pytest.raises(InvalidParameterError, match="size"):
        resize_to_long_side(img, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="pixels"):
        resize_to_area(img, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resize_tensor_stays_in_range(dtype: torch.dtype) -> None:
    checker = (torch.arange(8).view(1, 8) + torch.arange(8).view(8, 1)) % 2  # sharp edges
    t = checker.float().expand(1, 3, 8, 8).to(dtype)
    up = resize_tensor(t, (20, 12))
    assert up.shape == (1, 3, 20, 12) and up.dtype == dtype
    assert up.min().item() >= 0 and up.max().item() <= 1
    down = resize_tensor(t, (2, 2))  # antialiased: the checkerboard averages to grey
    assert torch.allclose(down.float(), torch.full_like(down.float(), 0.5), atol=0.02)


@pytest.mark.parametrize(
    ("t", "size"),
    [
        (torch.zeros(3, 4, 4), (2, 2)),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (2, 2)),
        (torch.zeros(1, 3, 4, 4), (0, 2)),
        (torch.zeros(1, 3, 4, 4), (2,)),
    ],
)
def test_resize_tensor_rejects_bad_input(t: torch.Tensor, size: tuple[int, ...]) -> None:
    with pytest.raises(InvalidParameterError):
        resize_tensor(t, size)  # type: ignore[arg-type]


# --- the painting shape rule, across engines ---------------------------------------------------

THIN = "painting: 1x12000 px is too thin \\(1:12000\\); at most 1:20"


@pytest.fixture(scope="module")
def engines() -> Any:
    from restyle.engines.holder import Engines

    return Engines(device="cpu")


# Each engine's cheapest run: gatys at 64 px for 2 steps, where a 1:20 painting's short side used
# to come out under VGG19's reach.
RUNS = {"arbitrary": {"size": 64}, "gatys": {"size": 64, "iterations": 2, "coarse_iterations": 1}}


def test_check_painting_shape_draws_the_line_at_1_to_20() -> None:
    imaging.check_painting_shape((100, 2000))  # a long handscroll: exactly 1:20
    imaging.check_painting_shape(torch.zeros(1, 3, 800, 100))  # a hanging scroll: 1:8
    with pytest.raises(InvalidImageError, match=r"painting: 100x2050 px is too thin \(1:20.5\)"):
        imaging.check_painting_shape((2050, 100))
    with pytest.raises(InvalidImageError, match=r"style_image: 12000x1 px .* at most 1:20"):
        imaging.check_painting_shape((1, 12000), name="style_image")


@pytest.mark.parametrize("method", sorted(RUNS))
@pytest.mark.parametrize("shape", [(12000, 1), (1, 12000)])
def test_every_engine_refuses_a_painting_too_thin_with_the_same_error(
    engines: Any, small_content: torch.Tensor, method: str, shape: tuple[int, int]
) -> None:
    from restyle.api import stylize_tensor

    painting = torch.rand(1, 3, *shape)
    width, height = shape[1], shape[0]
    message = rf"painting: {width}x{height} px is too thin \(1:12000\); at most 1:20"
    with pytest.raises(InvalidImageError, match=message):
        stylize_tensor(small_content, painting, method=method, engines=engines, **RUNS[method])
    if method == "arbitrary":  # the live export's and the video's way in, without the API
        with pytest.raises(InvalidImageError, match=message):
            engines.get("arbitrary").stylizer([painting])


@pytest.mark.parametrize("method", sorted(RUNS))
@pytest.mark.parametrize("shape", [(384, 48), (48, 384), (960, 48)])  # 1:8, 8:1, 1:20
def test_every_engine_takes_a_panoramic_painting(
    engines: Any,
    small_content: torch.Tensor,
    small_style: torch.Tensor,
    method: str,
    shape: tuple[int, int],
) -> None:
    from restyle.api import stylize_tensor

    painting = resize_tensor(small_style, shape)
    out = stylize_tensor(small_content, painting, method=method, engines=engines, **RUNS[method])
    height, width = small_content.shape[-2:]
    assert out.shape[-2:] == (round(height * 64 / max(height, width)), 64)
    assert out.std() > 0.05  # a picture, not a flat field
    moved = (out - resize_tensor(small_content, tuple(out.shape[-2:]))).abs().mean()
    # Stylized: the arbitrary engine repaints (0.19 measured); gatys moves from the photo in its
    # two steps (0.016 to 0.024).
    assert moved > (0.1 if method == "arbitrary" else 0.01)


def test_a_thin_photo_is_stylized_or_refused_clearly(
    engines: Any, small_style: torch.Tensor
) -> None:
    from restyle.api import stylize_tensor

    photo = torch.rand(1, 3, 12000, 1)
    for method in ("fast", "arbitrary"):  # feed-forward networks take any size
        style = "starry-night" if method == "fast" else small_style
        assert stylize_tensor(photo, style, method=method, engines=engines).shape == photo.shape
    with pytest.raises(InvalidImageError, match=r"photo: too thin .* comes out 1x64 px, .* 16 px"):
        stylize_tensor(photo, small_style, method="gatys", engines=engines, **RUNS["gatys"])
    with pytest.raises(InvalidImageError, match=r"photo \(analysed .*style_mix\): 1x12000 px"):
        stylize_tensor(photo, small_style, method="arbitrary", engines=engines, style_mix=0.5)
    # A panoramic photo (1:10) loses the gatys engine's coarse scales it is too thin for.
    panorama = resize_tensor(small_style, (40, 400))
    out = stylize_tensor(panorama, small_style, method="gatys", engines=engines, size=400,
                         iterations=1, coarse_iterations=1)  # fmt: skip
    assert out.shape[-2:] == (40, 400)
