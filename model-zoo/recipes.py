"""Reading model-zoo/recipes.toml: styles, training profiles and the commands they make."""

from __future__ import annotations

import csv
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "model-zoo" / "recipes.toml"
RUNS = ROOT / "zoo-runs"
# Recipe keys that describe the run rather than being `restyle train fast` options.
NOT_OPTIONS = {"provisional", "variant", "artefacts", "recipe"}
# Profile keys that replace the recipes' input folders (a GPU machine reads a staged copy).
INPUT_KEYS = {"data", "styles-dir"}


@dataclass(frozen=True)
class Style:
    id: str
    painting: str
    title: str
    artist: str
    year: str
    overrides: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Recipes:
    data: str
    styles_dir: str
    profiles: dict[str, dict[str, Any]]
    styles: list[Style]
    arbitrary_profiles: dict[str, dict[str, Any]]

    def style(self, style_id: str) -> Style:
        for style in self.styles:
            if style.id == style_id:
                return style
        raise SystemExit(f"unknown style {style_id!r}; known: {', '.join(self.ids)}")

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.styles]

    def profile(self, name: str) -> dict[str, Any]:
        if name not in self.profiles:
            raise SystemExit(f"unknown profile {name!r}; known: {', '.join(self.profiles)}")
        return self.profiles[name]

    def settings(self, style: Style, profile: str) -> dict[str, Any]:
        return {**self.profile(profile), **style.overrides.get(profile, {})}

    def run_dir(self, style: Style, profile: str) -> Path:
        return RUNS / profile / style.id

    def command(
        self, style: Style, profile: str, overrides: dict[str, Any] | None = None
    ) -> list[str]:
        """The `restyle train fast` argv for one style, with paths relative to the repository.

        `overrides` replace profile settings (a rehearsal at a tiny size: never shipped, since
        `build.py package` accepts only the recipe's own command). A profile's `data` and
        `styles-dir` replace the recipes' input folders."""
        settings = {**self.settings(style, profile), **(overrides or {})}
        argv = [
            "restyle", "train", "fast",
            "--style", f"{settings.get('styles-dir', self.styles_dir)}/{style.painting}",
            "--data", settings.get("data", self.data),
            "--out", self.run_dir(style, profile).relative_to(ROOT).as_posix(),
        ]  # fmt: skip
        if "recipe" in settings:
            # As `restyle train` records a recipe: its options spelt out first.
            from restyle.cli.train import REFINE_RECIPES

            argv[3:3] = REFINE_RECIPES[settings["recipe"]].train_arguments()
        for key, value in settings.items():
            if key not in NOT_OPTIONS | INPUT_KEYS:
                argv += [f"--{key}", str(value)]
        return argv

    def arbitrary_command(self, profile: str) -> list[str]:
        """The `restyle train arbitrary` argv of an [arbitrary.NAME] profile."""
        if profile not in self.arbitrary_profiles:
            known = ", ".join(self.arbitrary_profiles)
            raise SystemExit(f"unknown arbitrary profile {profile!r}; known: {known}")
        argv = [
            "restyle", "train", "arbitrary",
            "--styles", self.styles_dir,
            "--data", self.data,
            "--out", (RUNS / f"arbitrary-{profile}").relative_to(ROOT).as_posix(),
        ]  # fmt: skip
        for key, value in self.arbitrary_profiles[profile].items():
            if key not in NOT_OPTIONS:
                argv += [f"--{key}", str(value)]
        return argv

    def painting_path(self, style: Style) -> Path:
        return ROOT / self.styles_dir / style.painting

    def manifest_row(self, style: Style) -> dict[str, str]:
        """The painting's row of the data set's manifest; only a PD painting may ship."""
        manifest = ROOT / self.styles_dir / "MANIFEST.tsv"
        with manifest.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                if row["file"] == style.painting:
                    if not row["license_notes"].startswith("PD |"):
                        raise SystemExit(f"{style.id}: {style.painting} is not public domain")
                    return row
        raise SystemExit(f"{style.id}: {style.painting} is not in {manifest}")


def load_recipes(path: Path = RECIPES) -> Recipes:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    styles = [
        Style(
            id=s["id"],
            painting=s["painting"],
            title=s["title"],
            artist=s["artist"],
            year=s.get("year", ""),
            overrides=s.get("overrides", {}),
        )
        for s in raw["style"]
    ]
    return Recipes(raw["data"], raw["styles_dir"], raw["profile"], styles, raw.get("arbitrary", {}))


def shell_command(argv: list[str]) -> str:
    return shlex.join(argv)
