"""The registry of trained styles shipped inside the package.

Each entry names its checkpoint file and says what it is; nothing parses file names. The
registry file `registry.json` lists the entries; the trained weights sit beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StyleEntry:
    id: str
    title: str
    file: str
    sha256: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(str(resources.files(__name__).joinpath(self.file)))


def entries() -> list[StyleEntry]:
    registry = resources.files(__name__).joinpath("registry.json")
    if not registry.is_file():
        return []
    data = json.loads(registry.read_text(encoding="utf-8"))
    return [StyleEntry(**item) for item in data.get("styles", [])]


def find(style_id: str) -> StyleEntry | None:
    return next((e for e in entries() if e.id == style_id), None)
