"""Ship the published MicroAST weights: convert them into the package and record them.

    python model-zoo/microast_import.py [--source ../shared/models/microast]

Reads the authors' weights (converted to safetensors, with parity fixtures, in the shared
models folder), renames them to `restyle.models.microast.MicroAST`'s keys, checks the result
against the authors' parity fixtures (float32, to 1e-5), and writes
`src/restyle/zoo/microast.safetensors` (format "restyle.microast") with the licence notice
beside it (`MICROAST-LICENSE`) and its record (file, sha256, bytes, source, licence) in
`registry.json` under "microast". Running it again gives the same weights (safetensors may
write the header's metadata in another order, so the recorded sha256 is rewritten with the file).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from restyle.models.checkpoint import file_sha256, load_microast, save_microast
from restyle.models.microast import MicroAST, convert_authors_state

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "src" / "restyle" / "zoo"
SOURCE = ROOT.parent / "shared" / "models" / "microast"
INFO = {
    "name": "MicroAST",
    "paper": "Wang et al., MicroAST: Towards Super-Fast Ultra-Resolution Arbitrary Style "
    "Transfer, AAAI 2023 (arXiv 2211.15313)",
    "source": "EndyWon/MicroAST, models/{content_encoder,style_encoder,modulator,decoder}"
    "_iter_160000.pth.tar",
    "licence": "MIT, copyright (c) 2022 Zhizhong Wang (MICROAST-LICENSE)",
    "training": "160,000 iterations, batch 8, 256 px crops of MS-COCO and WikiArt (the authors')",
}


def check_parity(net: MicroAST, fixtures: Path, *, tolerance: float = 1e-5) -> float:
    """Largest difference from the authors' outputs over the fixtures' cases and mixes."""
    cases = load_file(str(fixtures))
    worst = 0.0
    with torch.no_grad():
        for case in sorted({k.split(".")[0] for k in cases}):
            content, style = cases[f"{case}.content"], cases[f"{case}.style"]
            for alpha, key in ((1.0, "alpha1"), (0.5, "alpha0.5")):
                out = net(content, style, alpha=alpha)
                worst = max(worst, (out - cases[f"{case}.output.{key}"]).abs().max().item())
    if worst > tolerance:
        raise SystemExit(f"parity: {worst:.2e} from the authors' outputs (> {tolerance})")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    net = MicroAST()
    state = convert_authors_state(load_file(str(args.source / "microast.safetensors")))
    net.load_state_dict(state, strict=True)
    net.eval()
    target = ZOO / "microast.safetensors"
    save_microast(target, net, info=INFO)
    shipped, _ = load_microast(target)
    worst = check_parity(shipped, args.source / "parity_fixtures.safetensors")
    shutil.copyfile(args.source / "LICENSE", ZOO / "MICROAST-LICENSE")
    registry_path = ZOO / "registry.json"
    registry = json.loads(registry_path.read_text(encoding="utf-8"))
    registry["microast"] = {
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "provisional": False,
        "licence_file": "MICROAST-LICENSE",
        **{k: v for k, v in INFO.items() if k != "name"},
    }
    registry_path.write_text(json.dumps(registry, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {target} ({target.stat().st_size} bytes); parity with the authors: {worst:.1e}")


if __name__ == "__main__":
    main()
