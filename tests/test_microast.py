"""MicroAST, the arbitrary engine's default network: parity with the authors, and the engine's
uses of it (per-painting networks with the signals folded in, ONNX, blends, strength, tiling)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import restyle
from restyle import zoo
from restyle.engines.arbitrary import ArbitraryEngine
from restyle.engines.arbitrary_config import ArbitraryOptions, ArbitrarySetup
from restyle.errors import InvalidParameterError
from restyle.examples import example_path
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.models.checkpoint import file_sha256, load_microast
from restyle.models.microast import StyleSignals
from restyle.onnx_export import OnnxTransformNet

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "models" / "microast"
PAINTING = example_path("starry_night")
OTHER = example_path("great_wave")


@pytest.fixture(scope="module")
def engine() -> ArbitraryEngine:
    return ArbitraryEngine(ArbitrarySetup(runtime="torch"), device="cpu")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return resize_tensor_to_long_side(as_tensor(example_path("lighthouse")), 96)


def test_the_shipped_weights_are_the_registrys() -> None:
    record = zoo.microast_info()
    assert record is not None and "MIT" in record["licence"]
    path = zoo.verified_microast_model()
    assert path is not None and file_sha256(path) == record["sha256"]
    assert (path.parent / record["licence_file"]).read_text().startswith("MIT License")
    net, info = load_microast(path)
    assert sum(p.numel() for p in net.parameters()) == 471_987
    assert info["name"] == "MicroAST"


@pytest.mark.skipif(
    not FIXTURES.is_dir(), reason="the shared models folder is not beside the clone"
)
def test_parity_with_the_authors_outputs() -> None:
    """The authors' implementation's outputs (float32), reproduced to 1e-4: the whole network,
    and a painting's network with its signals folded into the weights."""
    net, _ = load_microast(zoo.verified_microast_model() or "")
    cases = load_file(str(FIXTURES / "parity_fixtures.safetensors"))
    with torch.no_grad():
        for case in ("case0", "case1"):
            content, style = cases[f"{case}.content"], cases[f"{case}.style"]
            signals = net.signals(style)
            for name, mine in (("weight1", signals.scale1), ("bias1", signals.shift1)):
                torch.testing.assert_close(
                    mine, cases[f"{case}.modulation.{name}"], atol=1e-4, rtol=0
                )
            for alpha, key in ((1.0, "alpha1"), (0.5, "alpha0.5")):
                expected = cases[f"{case}.output.{key}"]
                torch.testing.assert_close(
                    net(content, style, alpha=alpha), expected, atol=1e-4, rtol=0
                )
            folded = net.styled(signals)(content)
            torch.testing.assert_close(folded, cases[f"{case}.output.alpha1"], atol=1e-4, rtol=0)


def test_is_the_default_and_needs_no_vgg() -> None:
    holder = restyle.Engines(device="cpu")
    out = restyle.stylize_tensor(
        example_path("cat"), PAINTING, method="arbitrary", engines=holder, size=64
    )
    assert max(out.shape[-2:]) == 64
    # The one-line call is the engine's own pass with the default finishing (strength 1, the
    # colours as stylized): nothing resized, recoloured or blended on the way.
    direct = holder.get("arbitrary").run(
        as_tensor(example_path("cat")), [PAINTING], ArbitraryOptions(size=64)
    )
    assert torch.equal(out, direct)
    assert holder.loads == {"arbitrary": 1}
    assert holder.get("arbitrary").setup.network == "microast"  # type: ignore[attr-defined]


def test_the_onnx_export_of_a_painting_network_matches_pytorch(
    engine: ArbitraryEngine, photo: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    stylizer = engine.stylizer([PAINTING])
    exported = OnnxTransformNet(stylizer.onnx_path())
    odd = torch.rand(1, 3, 67, 93, generator=torch.Generator().manual_seed(0))
    for image in (photo, odd):
        with torch.no_grad():
            expected = stylizer.net(image)
        torch.testing.assert_close(exported(image), expected, atol=1e-4, rtol=0)


def test_a_blend_of_a_painting_with_itself_is_that_painting(
    engine: ArbitraryEngine, photo: torch.Tensor
) -> None:
    alone = engine.run(photo, [PAINTING])
    torch.testing.assert_close(
        engine.run(photo, [PAINTING, PAINTING], style_blend=[0.3, 0.7]), alone
    )
    # Blends live in signal space: the ends are the paintings, the middle is neither.
    other = engine.run(photo, [OTHER])
    torch.testing.assert_close(engine.run(photo, [PAINTING, OTHER], style_blend=[1, 0]), alone)
    middle = engine.run(photo, [PAINTING, OTHER], style_blend=[1, 1])
    assert (middle - alone).abs().mean() > 0.01 and (middle - other).abs().mean() > 0.01
    _, a = engine.analyse(PAINTING)
    _, b = engine.analyse(OTHER)
    half = StyleSignals.blend([a, b], [0.5, 0.5])
    torch.testing.assert_close(half.std1, (a.std1 + b.std1) / 2)


def test_strength_in_feature_space_and_in_pixels(
    engine: ArbitraryEngine, photo: torch.Tensor
) -> None:
    def distance(style_mix: float) -> float:
        out = engine.run(photo, [PAINTING], ArbitraryOptions(style_mix=style_mix))
        return float((out - photo).abs().mean())

    distances = [distance(mix) for mix in (0.0, 0.5, 1.0)]
    assert distances[0] < distances[1] < distances[2]  # the photo's own signals at 0
    assert distances[0] < 0.12
    same = restyle.stylize_tensor(photo, PAINTING, method="arbitrary", strength=0.0)
    torch.testing.assert_close(same, photo, atol=1e-6, rtol=0)  # pixel strength 0: the photo
    with pytest.raises(InvalidParameterError, match="style_mix"):
        ArbitraryOptions(style_mix=1.5)


def test_style_mix_is_microast_only() -> None:
    if zoo.arbitrary_info() is None:
        pytest.skip("no MetaNet shipped")
    metanet = ArbitraryEngine(ArbitrarySetup(network="metanet"), device="cpu")
    photo = torch.rand(1, 3, 32, 32)
    with pytest.raises(InvalidParameterError, match="style_mix: the metanet network"):
        metanet.run(photo, [PAINTING], ArbitraryOptions(style_mix=0.5))


def test_large_images_are_tiled_with_whole_image_statistics(engine: ArbitraryEngine) -> None:
    photo = resize_tensor_to_long_side(as_tensor(example_path("parrots")), 256)
    whole = engine.run(photo, [PAINTING])
    tiled = engine.run(photo, [PAINTING], ArbitraryOptions(tile_size=128, tile_overlap=64))
    difference = (tiled - whole).abs()
    # Whole-image AdaIN statistics make the tiles agree; the rest is the receptive field
    # reaching past the overlap.
    assert difference.mean() < 2e-3 and difference.max() < 0.1, difference.max()


def test_the_painting_is_analysed_larger_for_large_results() -> None:
    """0 (the default) picks the analysis size by the result's: 512 px up to 768 px results,
    640 above (docs/arbitrary.md); a given size is used as given."""
    from restyle.engines.arbitrary import MICROAST_LARGE_STYLE_SIZE, MICROAST_STYLE_SIZE

    engine = ArbitraryEngine(ArbitrarySetup(runtime="torch"), device="cpu")
    painting = as_tensor(PAINTING)
    tiny = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    engine.run(tiny, [painting], ArbitraryOptions(size=512))
    assert list(engine._styles) == [engine.style_key(painting, style_size=MICROAST_STYLE_SIZE)]
    engine.run(tiny, [painting], ArbitraryOptions(size=800))
    large = engine.style_key(painting, style_size=MICROAST_LARGE_STYLE_SIZE)
    assert list(engine._styles)[-1] == large
    engine.run(tiny, [painting], ArbitraryOptions(size=800, style_size=300))
    assert list(engine._styles)[-1] == engine.style_key(painting, style_size=300)
