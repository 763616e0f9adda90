"""The networks the CPU paths run per frame for one zoo style's painting, as the runtime
benchmarks compare them (`int8_onnx.py`, `openvino_runtime.py`):

- `microast`: the arbitrary engine's default network for the painting (MicroAST with its style
  signals folded into its weights: what a zoo style, video and the live camera run);
- `refined`: the zoo's shipped network for the style (MicroAST refined for it), if it ships one;
- `metanet`: the MetaNet's generated network for the painting, if a MetaNet is shipped.
"""

from __future__ import annotations

from torch import nn


def frame_networks(style: str) -> dict[str, nn.Module]:
    """The networks above for the zoo style `style` (ValueError naming it if unknown)."""
    from restyle import zoo
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.arbitrary_config import ArbitrarySetup
    from restyle.imaging import as_tensor
    from restyle.models.checkpoint import load_fast_network

    entry = zoo.find(style)
    if entry is None:
        raise ValueError(f"unknown zoo style {style!r}")
    painting = as_tensor(entry.painting_path)
    networks: dict[str, nn.Module] = {
        "microast": ArbitraryEngine(ArbitrarySetup(network="microast")).network(painting)[1],
    }
    if "refined" in entry.variants:  # a style ships one only where it beat the arbitrary pass
        networks["refined"] = load_fast_network(entry.variants["refined"].verified_path())[0]
    if zoo.arbitrary_model() is not None:
        metanet = ArbitraryEngine(ArbitrarySetup(network="metanet"))
        networks["metanet"] = metanet.network(painting)[1]
    return networks
