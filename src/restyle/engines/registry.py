"""The registry of engines: their names, setups and option models, in one place.

Everything that lists engines or their options (the library's front door, the CLI's flags,
the service's form and JSON schema, the web page's controls, the docs' tables) reads it from
here. Engine classes are imported on first use, so reading the registry costs no model code.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from restyle import zoo
from restyle.engines import costs
from restyle.engines.arbitrary_config import ArbitraryOptions, ArbitrarySetup
from restyle.engines.fast_config import FastOptions, FastSetup
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.errors import InvalidParameterError
from restyle.options import OptionSpec, option_specs
from restyle.postprocess_config import PostprocessConfig

if TYPE_CHECKING:
    import torch

StyleKind = Literal["painting", "trained"]


@dataclass(frozen=True)
class EngineSpec:
    """One engine as the rest of Restyle sees it."""

    name: str
    title: str
    summary: str
    setup: type
    options: type
    styles: StyleKind
    """"painting": any image is a style; "trained": a zoo id or a checkpoint of a network."""
    interactive: bool
    """Fast enough to answer a request synchronously."""
    factory: str
    """"module:Class" of the engine, imported on first use."""
    uses_vgg: bool
    feed_forward: bool = False
    """One pass of a network prepared once per style (`engine.stylizer`): a clip's frames go
    through it in batches, and it can be exported for the browser's live mode."""
    batches: bool = False
    """Runs several photos in one style as one pass (`engine.run_batch`): the service batches
    alike queued requests."""
    steps: bool = False
    """Optimises each image over many steps: budgeted by steps and size, with previews, and
    (minutes a frame on a CPU) no whole clips."""
    takes_init_image: bool = False
    """Starts from an image the caller gives (`init_image`)."""
    starts_from_feed_forward: bool = False
    """Can start from the feed-forward engines' result (built with the holder's `first_pass`)."""
    recolours_paintings: bool = False
    """With a colour-matching `preserve_color`, the paintings take the photo's colours before
    stylizing (their textures learnt in its palette; Gatys et al. 2017)."""
    refine_source: bool = False
    """A personal style can be refined from its result: `restyle train fast --init` starts
    from this engine's network."""
    work: costs.WorkOf = costs.feed_forward_work
    """What the engine's time for one image is proportional to (its cost model's work)."""
    compute_dtype: costs.Precision = costs.feed_forward_dtype
    """The precision it computes in on a device, with a setup (which probe its cost scales)."""
    installed: Callable[[], bool] = lambda: True
    """Whether this installation has what the engine needs (the arbitrary engine's MetaNet)."""

    def estimate(
        self,
        options: Any,
        content_hw: tuple[int, int],
        device: torch.device,
        setup: Any = None,
    ) -> costs.Estimate | None:
        """Expected time of one run on `device` for a photo of `content_hw` (H, W) px (None:
        the engine's cost was never measured)."""
        dtype = self.compute_dtype(setup or self.setup(), device)
        return costs.estimate(self.name, self.work(options, content_hw), device, dtype)

    def expected(
        self, values: Mapping[str, Any], content_hw: tuple[int, int], device: torch.device
    ) -> costs.Estimate | None:
        """`estimate` from keyword options as a caller gives them (setup fields among them)."""
        setup_values, options, _ = self.split(values)
        return self.estimate(options, content_hw, device, self.setup(**(setup_values or {})))

    def accepts(self, names: Iterable[str]) -> bool:
        """Whether every name is one of the engine's options (setup, per call, finishing)."""
        return set(names) <= set().union(*self._option_names())

    def _option_names(self) -> tuple[set[str], set[str], set[str]]:
        """The names of the setup's, the per-call options' and the finishing options' fields."""

        def names(cls: type) -> set[str]:
            return {f.name for f in dataclasses.fields(cls)}

        return names(self.setup), names(self.options), names(PostprocessConfig)

    def setup_specs(self) -> tuple[OptionSpec, ...]:
        return option_specs(self.setup)

    def engine_option_specs(self) -> tuple[OptionSpec, ...]:
        return option_specs(self.options)

    def option_specs(self) -> tuple[OptionSpec, ...]:
        """Every per-call option: the engine's own, then the shared post-processing."""
        return (*option_specs(self.options), *option_specs(PostprocessConfig))

    def public_option_specs(self) -> tuple[OptionSpec, ...]:
        """The per-call options an HTTP client may set."""
        return tuple(spec for spec in self.option_specs() if spec.public)

    def engine_class(self) -> type:
        module, _, name = self.factory.partition(":")
        cls: type = getattr(importlib.import_module(module), name)
        return cls

    def split(self, values: Mapping[str, Any]) -> tuple[Any, Any, PostprocessConfig]:
        """Keyword options → (setup fields given, engine options, post-processing options).

        The setup part is a dict of only the fields given (None when none were), so a caller
        can tell "the default setup" from "this setup". Unknown names are an error that lists
        the known ones.
        """
        setup_names, option_names, post_names = self._option_names()
        unknown = set(values) - setup_names - option_names - post_names
        if unknown:
            raise InvalidParameterError(
                f"unknown option(s) {sorted(unknown)} for the {self.name} engine; options: "
                f"{sorted(option_names | post_names)}, setup: {sorted(setup_names)}"
            )
        setup = {k: v for k, v in values.items() if k in setup_names} or None
        options = self.options(**{k: v for k, v in values.items() if k in option_names})
        post = PostprocessConfig(**{k: v for k, v in values.items() if k in post_names})
        return setup, options, post

    def describe(self, *, public_only: bool = True) -> dict[str, Any]:
        """The engine and the JSON schema of its options (what the API and the page serve)."""
        specs = self.public_option_specs() if public_only else self.option_specs()
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "styles": self.styles,
            "interactive": self.interactive,
            "capabilities": {
                "feed_forward": self.feed_forward,
                "batches": self.batches,
                "steps": self.steps,
                "init_image": self.takes_init_image,
                "refine_source": self.refine_source,
            },
            "options": {
                "type": "object",
                "additionalProperties": False,
                "properties": {spec.name: spec.json_schema() for spec in specs},
            },
        }


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="fast",
            title="Fast",
            summary="a network trained for one style: a second or less",
            setup=FastSetup,
            options=FastOptions,
            styles="trained",
            interactive=True,
            factory="restyle.engines.fast:FastEngine",
            uses_vgg=False,
            feed_forward=True,
            batches=True,
        ),
        EngineSpec(
            name="arbitrary",
            title="Any painting",
            summary="one network for any painting: about a second",
            setup=ArbitrarySetup,
            options=ArbitraryOptions,
            styles="painting",
            interactive=True,
            factory="restyle.engines.arbitrary:ArbitraryEngine",
            uses_vgg=True,
            feed_forward=True,
            refine_source=True,
            installed=lambda: zoo.microast_info() is not None or zoo.arbitrary_model() is not None,
        ),
        EngineSpec(
            name="gatys",
            title="Best quality",
            summary="refines the one-pass result over many steps: seconds on a GPU, under a minute "
            "at 512 px on a CPU",
            setup=GatysSetup,
            options=GatysOptions,
            styles="painting",
            interactive=False,
            factory="restyle.engines.gatys:GatysEngine",
            uses_vgg=True,
            steps=True,
            takes_init_image=True,
            starts_from_feed_forward=True,
            recolours_paintings=True,
            work=costs.optimisation_work,
            compute_dtype=costs.optimisation_dtype,
        ),
    )
}
"""Every engine, in the order surfaces list them (the web page's default first)."""


def trained_engine() -> EngineSpec:
    """The engine that runs trained networks (zoo styles, personal styles, checkpoints)."""
    return next(spec for spec in ENGINES.values() if spec.styles == "trained")


def painting_engine(*, feed_forward: bool) -> EngineSpec | None:
    """The first installed engine that takes any painting, feed-forward or optimising (None:
    this installation has none)."""
    matching = (
        spec
        for spec in ENGINES.values()
        if spec.styles == "painting" and spec.feed_forward == feed_forward and spec.installed()
    )
    return next(matching, None)


def installed_engines() -> list[str]:
    """The engines this installation can run, in the registry's order."""
    return [name for name, spec in ENGINES.items() if spec.installed()]


def engine_spec(name: str) -> EngineSpec:
    """The engine called `name`; InvalidParameterError naming the known ones otherwise."""
    spec = ENGINES.get(name)
    if spec is None:
        raise InvalidParameterError(
            f"method: unknown engine {name!r}; available: {', '.join(ENGINES)}"
        )
    return spec
