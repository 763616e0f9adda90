"""`Engines`: the loaded engines of one process (a CLI run, a service worker, a script).

Models are loaded here and only here: an engine is built the first time it is asked for (or at
`setup()`, which a service worker calls at start) and then serves every call, whatever its
size, style or options. Engines that read VGG19 (gatys, arbitrary) share one network per
device and weights file.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

import torch

from restyle.devices import resolve_device
from restyle.engines.base import BatchEngine, Engine, FeedForwardEngine
from restyle.engines.first_pass import feed_forward_start
from restyle.engines.registry import ENGINES, engine_spec
from restyle.errors import InvalidParameterError
from restyle.vgg import VGG19Features
from restyle.vgg_layers import LAYER_NAMES


class Engines:
    """A holder of loaded engines on one device.

    >>> engines = Engines(device="cpu")
    >>> engines.get("fast").run(photo, ["starry-night"])

    `setups` gives an engine's setup (e.g. `{"fast": FastSetup(runtime="torch")}`); an engine
    asked for with another setup is built once for it too. `loads` counts what was built, by
    kind ("vgg19", "gatys", "fast", ...): tests and benchmarks check that nothing is built twice.
    """

    def __init__(
        self,
        *,
        device: str | torch.device | None = None,
        setups: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self._setups = dict(setups or {})
        for name, setup in self._setups.items():
            _check_setup(name, setup)
        self._engines: dict[tuple[str, Any], Engine] = {}
        self._vggs: dict[str | None, VGG19Features] = {}
        self._lock = threading.RLock()
        self.loads: Counter[str] = Counter()

    def setup_of(self, name: str) -> Any:
        """The setup `name` is built with unless a call asks for another."""
        return self._setups.get(name) or engine_spec(name).setup()

    def get(self, name: str, setup: Any = None) -> Engine:
        """The engine `name` with `setup` (default: this holder's), built on first use."""
        spec = engine_spec(name)
        setup = setup if setup is not None else self.setup_of(name)
        _check_setup(name, setup)
        key = (name, setup)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                kwargs: dict[str, Any] = {"device": self.device}
                if spec.uses_vgg:  # built when the engine first needs it, once per device
                    weights = getattr(setup, "weights_path", None)
                    kwargs["vgg"] = lambda: self.vgg(weights)
                if spec.starts_from_feed_forward:  # its start runs this holder's engines
                    kwargs["first_pass"] = functools.partial(feed_forward_start, self)
                engine = spec.engine_class()(setup, **kwargs)
                self.loads[name] += 1
                self._engines[key] = engine
            return engine

    def configured(self, name: str, values: Mapping[str, Any] | None) -> Engine:
        """The engine `name` with this holder's setup changed by `values` (setup fields given
        with a call; None: the holder's own setup)."""
        if values is None:
            return self.get(name)
        return self.get(name, dataclasses.replace(self.setup_of(name), **values))

    def feed_forward(self, name: str, values: Mapping[str, Any] | None = None) -> FeedForwardEngine:
        """`configured`, typed as an engine that prepares a network per style."""
        if not engine_spec(name).feed_forward:
            raise InvalidParameterError(f"method: the {name} engine has no feed-forward pass")
        return cast(FeedForwardEngine, self.configured(name, values))

    def batcher(self, name: str, values: Mapping[str, Any] | None = None) -> BatchEngine:
        """`configured`, typed as an engine that runs several photos in one pass."""
        if not engine_spec(name).batches:
            raise InvalidParameterError(f"method: the {name} engine does not run batches")
        return cast(BatchEngine, self.configured(name, values))

    def vgg(self, weights_path: str | None = None) -> VGG19Features:
        """The full VGG19 (to relu5_4) on this device, built once per weights file."""
        with self._lock:
            network = self._vggs.get(weights_path)
            if network is None:
                network = VGG19Features(LAYER_NAMES, weights_path=weights_path).to(self.device)
                self.loads["vgg19"] += 1
                self._vggs[weights_path] = network
            return network

    def setup(self, names: Iterable[str] | None = None) -> list[str]:
        """Build engines now (a worker at start); returns the names built.

        Engines whose weights are not installed (no MetaNet, say) are skipped, not fatal: the
        jobs that need them fail with the engine's own clear error.
        """
        from restyle.errors import WeightsError

        built = []
        for name in names if names is not None else ENGINES:
            try:
                self.get(name)
            except WeightsError:
                continue
            built.append(name)
        return built


def _check_setup(name: str, setup: Any) -> None:
    expected = engine_spec(name).setup
    if not isinstance(setup, expected):
        raise TypeError(f"setup of {name!r}: a {expected.__name__}, got {setup!r}")
