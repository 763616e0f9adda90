"""Personal styles on this disk: records in SQLite, files in `RESTYLE_DATA_DIR/styles/<id>/`."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from restyle.service.personal import FILES, PersonalStyle, valid_id
from restyle.service.stores.base import PersonalStyleStore
from restyle.service.stores.embedded_db import Database, store_errors


class EmbeddedPersonalStyleStore(PersonalStyleStore):
    def __init__(self, root: Path, db: Database) -> None:
        self.styles = root / "styles"  # styles/<id>/<file>
        self.styles.mkdir(exist_ok=True)
        self._db, self._lock = db, db.lock

    def _style_dir(self, style_id: str) -> Path:
        if not valid_id(style_id):
            raise ValueError(f"not a personal style id: {style_id!r}")
        return self.styles / style_id

    def put(
        self, style: PersonalStyle, files: Mapping[str, bytes], *, most: int | None = None
    ) -> bool:
        folder = self._style_dir(style.id)
        db = self._db.connection
        try:
            with store_errors():
                folder.mkdir(exist_ok=True)
                for name, data in files.items():
                    if name not in FILES:
                        raise ValueError(f"not a personal style file: {name!r}")
                    partial = folder / f".{name}.{threading.get_ident()}"
                    partial.write_bytes(data)
                    os.replace(partial, folder / name)
            with self._lock, store_errors():
                if most is not None:
                    (others,) = db.execute(
                        "SELECT COUNT(*) FROM personal WHERE owner = ? AND id != ?",
                        (style.owner_sha256, style.id),
                    ).fetchone()
                    if others >= most:
                        shutil.rmtree(folder, ignore_errors=True)
                        return False
                db.execute(
                    "INSERT INTO personal VALUES (?, ?, ?, ?, ?)",
                    (
                        style.id,
                        style.owner_sha256,
                        style.model_dump_json(),
                        style.created_at,
                        style.expires_at,
                    ),
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return True

    def get(self, style_id: str) -> PersonalStyle | None:
        with self._lock:
            row = self._db.connection.execute(
                "SELECT record FROM personal WHERE id = ?", (style_id,)
            ).fetchone()
        return PersonalStyle.model_validate_json(row[0]) if row else None

    def of_owner(self, owner_sha256: str) -> list[PersonalStyle]:
        with self._lock:
            rows = self._db.connection.execute(
                "SELECT record FROM personal WHERE owner = ? ORDER BY created_at", (owner_sha256,)
            ).fetchall()
        return [PersonalStyle.model_validate_json(r[0]) for r in rows]

    def update(self, style_id: str, **fields: Any) -> PersonalStyle | None:
        db = self._db.connection
        with self._lock:
            row = db.execute("SELECT record FROM personal WHERE id = ?", (style_id,)).fetchone()
            if row is None:
                return None
            style = PersonalStyle.model_validate(
                {**PersonalStyle.model_validate_json(row[0]).model_dump(), **fields}
            )
            with store_errors():
                db.execute(
                    "UPDATE personal SET record = ?, expires_at = ? WHERE id = ?",
                    (style.model_dump_json(), style.expires_at, style_id),
                )
        return style

    def delete(self, style_id: str) -> None:
        with self._lock, store_errors():
            self._db.connection.execute("DELETE FROM personal WHERE id = ?", (style_id,))
        shutil.rmtree(self._style_dir(style_id), ignore_errors=True)

    def file(self, style_id: str, name: str) -> bytes | None:
        if name not in FILES:
            raise ValueError(f"not a personal style file: {name!r}")
        try:
            return (self._style_dir(style_id) / name).read_bytes()
        except FileNotFoundError:
            return None

    def expired(self, now: float) -> list[str]:
        with self._lock:
            rows = self._db.connection.execute(
                "SELECT id FROM personal WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
            ).fetchall()
        return [r[0] for r in rows]

    def model_path(self, style: PersonalStyle) -> Path:
        return self._style_dir(style.id) / "model.safetensors"
