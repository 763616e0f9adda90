"""Personal styles: fast-engine networks that a refinement job made for one client.

A refinement (`POST /api/refines`) fine-tunes the arbitrary network's pass for one painting
(`restyle.training.fast_task.RefineStyleTask`) within a time budget; its network becomes a style
owned by the token that asked for it. The store keeps the token's SHA-256, never the token.
Only that token lists, uses, keeps or deletes the style: to any other request the style does
not exist (404), so its id tells nothing. A style expires `personal_style_ttl_s` after it was
made unless it is kept.

Ids are `my-` and 24 random hex digits: they fit `STYLE_ID_PATTERN` (every route that takes a
style id takes them) and never name a zoo style (no zoo id starts with `my-`).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time

from pydantic import BaseModel, Field

from restyle.service.jobs import token_hash

PREFIX = "my-"
PERSONAL_ID_PATTERN = r"^my-[0-9a-f]{24}$"
FILES = ("model.safetensors", "thumbnail.jpg", "preview.jpg")
"""A personal style's files: the network (safetensors), the painting and a stylized photo
(JPEG)."""


class PersonalStyle(BaseModel):
    """A personal style as stored."""

    id: str
    owner_sha256: str
    name: str
    created_at: float = Field(default_factory=time.time)
    expires_at: float | None = None  # None: kept
    model_sha256: str = ""
    source: str = ""  # the zoo style whose painting it refines, or "" for an upload
    job_id: str = ""
    steps: int = 0
    loss: float | None = None

    def owned_by(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token_hash(token), self.owner_sha256)


def new_style_id() -> str:
    return PREFIX + secrets.token_hex(12)


def is_personal(style: str | None) -> bool:
    """Whether a style id (with or without a network variant) names a personal style."""
    return style is not None and style.startswith(PREFIX)


def valid_id(style_id: str) -> bool:
    return re.fullmatch(PERSONAL_ID_PATTERN, style_id) is not None


def default_name(source: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(now or time.time()))
    return f"{source or 'my painting'} ({stamp})"


def quota_full(owned: int, most: int) -> str | None:
    """Why a token that has `owned` personal styles may make no other (None while it may): one
    rule and one wording for the API's refusal and the worker's own check."""
    if owned < most:
        return None
    return (
        f"this token has {owned} personal styles, the most this server keeps "
        "(RESTYLE_MAX_PERSONAL_STYLES); delete one first"
    )
