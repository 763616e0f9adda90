"""The registry of trained styles shipped inside the package.

`registry.json` lists every style: what the painting is (title, artist, year, licence, a
thumbnail of at least 512 px for the gallery) and its networks by variant:
- "arbitrary": the arbitrary network (MicroAST) with the painting's style signals, computed
  once and written into the registry (512 numbers, no file): every style has it, and it is
  what a style runs unless a trained network earned its place;
- "refined": the arbitrary network fine-tuned for the painting, shipped only where it beats
  the arbitrary pass (docs/model-zoo.md has the rule and the scores); "standard", "lite":
  transform networks trained from scratch.
A trained variant records its architecture, the exact training command, data, steps, final
losses and the sha256 of its weights. The files sit beside the registry; nothing parses file
names.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from restyle.errors import InvalidParameterError, WeightsError

REGISTRY_FORMAT = "restyle.zoo"
REGISTRY_VERSION = 1
# Preferred network when a style id names no variant: a trained one (shipped only where it
# beats the arbitrary pass, docs/model-zoo.md), else the arbitrary network's pass.
VARIANT_ORDER = ("refined", "standard", "lite", "arbitrary")
# What each variant is, in the gallery's words.
VARIANT_SUMMARY = {
    "refined": "a network refined for this painting",
    "standard": "a network trained for this painting",
    "lite": "a small network trained for this painting",
    "arbitrary": "the any-painting network, this painting's signals built in",
}


def _package_file(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


@dataclass(frozen=True)
class Variant:
    """One network of a style: a trained weights file, or (`signals`) the arbitrary network's
    style signals for the painting, which the fast engine folds into the shipped MicroAST."""

    name: str
    network: dict[str, Any]
    training: dict[str, Any]
    file: str = ""
    sha256: str = ""
    bytes: int = 0
    signals: dict[str, list[float]] | None = None

    @property
    def path(self) -> Path:
        if self.signals is not None:
            raise InvalidParameterError(f"style: the {self.name!r} network has no file")
        return _package_file(self.file)

    @property
    def summary(self) -> str:
        return VARIANT_SUMMARY.get(self.name, self.name)

    def verified_path(self) -> Path:
        """The weights file, checked against the registry's sha256 (once per process)."""
        return verify_file(self.path, self.sha256, what=f"the network {self.file!r}")

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"summary": self.summary, "network": self.network}
        if self.signals is None:
            found.update(file=self.file, path=str(self.path), sha256=self.sha256, bytes=self.bytes)
        else:
            found["signals"] = self.signals
        return {**found, "training": self.training}


@dataclass(frozen=True)
class StyleEntry:
    """One style of the zoo: the painting and its trained networks."""

    id: str
    title: str
    artist: str
    year: str
    licence: str
    attribution: str
    painting: dict[str, Any]
    variants: dict[str, Variant]

    @property
    def painting_path(self) -> Path:
        """The painting's image shipped for the gallery (at least 512 px on the long side)."""
        return _package_file(self.painting["file"])

    @property
    def default_variant(self) -> Variant:
        return next(self.variants[n] for n in VARIANT_ORDER if n in self.variants)

    def variant(self, name: str | None = None) -> Variant:
        if name is None:
            return self.default_variant
        if name not in self.variants:
            raise InvalidParameterError(
                f"style: {self.id!r} has no {name!r} network; available: {', '.join(self.variants)}"
            )
        return self.variants[name]

    def as_dict(self) -> dict[str, Any]:
        """The entry with absolute paths to its files: what `restyle styles --json` prints."""
        return {
            "id": self.id,
            "title": self.title,
            "artist": self.artist,
            "year": self.year,
            "licence": self.licence,
            "attribution": self.attribution,
            "painting": {**self.painting, "path": str(self.painting_path)},
            "default_variant": self.default_variant.name,
            "network": self.default_variant.summary,
            "variants": {name: v.as_dict() for name, v in self.variants.items()},
        }


def parse_registry(data: dict[str, Any]) -> list[StyleEntry]:
    if data.get("format") != REGISTRY_FORMAT or data.get("version") != REGISTRY_VERSION:
        raise WeightsError(
            f"style registry: expected {REGISTRY_FORMAT} v{REGISTRY_VERSION}, got "
            f"{data.get('format')!r} v{data.get('version')!r}; reinstall restyle"
        )
    result = []
    for item in data["styles"]:
        variants = {name: Variant(name=name, **fields) for name, fields in item["variants"].items()}
        if not variants:
            raise WeightsError(f"style registry: {item['id']!r} has no trained network")
        result.append(StyleEntry(**{**item, "variants": variants}))
    return result


@cache
def _registry() -> dict[str, Any]:
    registry = _package_file("registry.json")
    if not registry.is_file():
        return {"format": REGISTRY_FORMAT, "version": REGISTRY_VERSION, "styles": []}
    data: dict[str, Any] = json.loads(registry.read_text(encoding="utf-8"))
    return data


@cache
def entries() -> list[StyleEntry]:
    """Every shipped style, in the registry's (gallery) order; [] when none is installed."""
    return parse_registry(_registry())


def arbitrary_info() -> dict[str, Any] | None:
    """The registry's record of the shipped MetaNet (file, sha256, training), if any."""
    model: dict[str, Any] | None = _registry().get("arbitrary")
    return model


def arbitrary_model() -> Path | None:
    """The shipped MetaNet of the arbitrary engine, if this installation has one."""
    model = arbitrary_info()
    return None if model is None else _package_file(model["file"])


def microast_info() -> dict[str, Any] | None:
    """The registry's record of the shipped MicroAST network (file, sha256, source, licence)."""
    record: dict[str, Any] | None = _registry().get("microast")
    return record


def verified_microast_model() -> Path | None:
    """The shipped MicroAST weights, checked against the registry's sha256 (once per process)."""
    return _verified_record(microast_info(), "the arbitrary engine's MicroAST network")


def verified_arbitrary_model() -> Path | None:
    """The shipped MetaNet, checked against the registry's sha256 (once per process)."""
    return _verified_record(arbitrary_info(), "the arbitrary engine's model")


def _verified_record(record: dict[str, Any] | None, what: str) -> Path | None:
    if record is None:
        return None
    return verify_file(_package_file(record["file"]), record["sha256"], what=what)


_verified: set[tuple[str, str, int, int]] = set()
_verify_lock = threading.Lock()


def verify_file(path: Path, sha256: str, *, what: str) -> Path:
    """`path` if its sha256 is the registry's; WeightsError if missing or damaged.

    The registry owns this check and makes it once per process and file: the hash is
    remembered with the file's size and modification time, so a file replaced while the
    process runs is checked again.
    """
    from restyle.models.checkpoint import file_sha256

    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path), sha256, stat.st_size, stat.st_mtime_ns) if stat else None
    with _verify_lock:
        if key is not None and key in _verified:
            return path
    if key is None or file_sha256(path) != sha256:
        raise WeightsError(
            f"{what}: {path} is missing or damaged (sha256 differs from the registry); "
            "reinstall restyle"
        )
    with _verify_lock:
        _verified.add(key)
    return path


def find(style_id: str) -> StyleEntry | None:
    """The style called `style_id`; case, spaces and `_` for `-` do not matter, so
    'Starry_Night' is 'starry-night' (one namespace: no two spellings name different things)."""
    wanted = canonical_id(style_id)
    return next((e for e in entries() if e.id == wanted), None)


def canonical_id(style_id: str) -> str:
    """'Starry_Night ' → 'starry-night': how a style's name is spelt in the registry."""
    return style_id.strip().lower().replace("_", "-").replace(" ", "-")


def painting_of(spec: str) -> Path | None:
    """The painting of the style a name (any spelling, ':variant' allowed) names; None if it
    names no style."""
    entry = find(split_spec(spec)[0])
    return None if entry is None else entry.painting_path


def split_spec(spec: str) -> tuple[str, str | None]:
    """'starry-night' → ('starry-night', None); 'starry-night:lite' → ('starry-night', 'lite')."""
    style_id, sep, variant = spec.partition(":")
    return style_id, (variant if sep else None)


def find_variant(spec: str) -> Variant | None:
    """The network that a style id (optionally ':standard' or ':lite') names; None if unknown."""
    style_id, variant = split_spec(spec)
    entry = find(style_id)
    return None if entry is None else entry.variant(variant)
