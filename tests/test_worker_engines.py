"""A service worker loads its models once, then serves jobs of any size, style and option.

Counted at the source: every construction of VGG19, every read of a trained network or a
MetaNet from disk (spies that wrap the real functions; the jobs run for real).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from restyle.engines.holder import Engines
from restyle.examples import example_path
from restyle.service import runner
from restyle.service.jobs import JobOptions, JobRecord, JobStatus, new_job_id
from restyle.service.settings import ServiceSettings
from restyle.service.stores.embedded import EmbeddedBackend


def _png(name: str, side: int) -> bytes:
    with Image.open(example_path(name)) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()


@pytest.fixture()
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts VGG19 constructions and network reads from disk, wherever they happen."""
    import restyle.engines.arbitrary as arbitrary_module
    import restyle.engines.fast as fast_module
    import restyle.vgg as vgg_module

    counted: Counter[str] = Counter()

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return real(*args, **kwargs)

        return wrapper

    real_init = vgg_module.VGG19Features.__init__
    monkeypatch.setattr(vgg_module.VGG19Features, "__init__", spy("vgg19", real_init))
    monkeypatch.setattr(
        fast_module, "load_fast_network", spy("network", fast_module.load_fast_network)
    )
    # A zoo style served by its recorded signals reads the MicroAST weights to fold them into.
    monkeypatch.setattr(fast_module, "load_microast", spy("network", fast_module.load_microast))
    monkeypatch.setattr(
        arbitrary_module, "load_meta_net", spy("metanet", arbitrary_module.load_meta_net)
    )
    monkeypatch.setattr(
        arbitrary_module, "load_microast", spy("microast", arbitrary_module.load_microast)
    )
    return counted


def test_one_worker_loads_each_model_once_across_sizes_and_options(
    tmp_path: Path, loads: Counter[str]
) -> None:
    settings = ServiceSettings(data_dir=tmp_path)
    engines = Engines(device="cpu")
    backend = EmbeddedBackend(settings, engines)
    engines.setup()  # what a worker does at start
    assert loads == {"vgg19": 1, "microast": 1}  # the arbitrary engine's default network

    def run_job(method: str, style: str | None, painting: bytes | None, **options: Any) -> None:
        job_options = JobOptions(method=method, style=style, options=options)
        record = JobRecord(
            id=new_job_id(),
            token_sha256="",
            client="c",
            options=job_options,
            style_upload=painting is not None,
        )
        blobs = {"content": _png("cat", 96)}
        if painting is not None:
            blobs["style"] = painting
        backend.jobs.submit(record, blobs)
        runner.run(backend, record.id, settings, engines)
        final = backend.jobs.get(record.id)
        assert final is not None and final.status == JobStatus.SUCCEEDED, final
        result = Image.open(io.BytesIO(backend.blobs.get(record.id, "result") or b""))
        if "size" in options:
            assert max(result.size) == options["size"]

    painting = _png("starry_night", 128)
    try:
        for size in (32, 48, 64):
            run_job("gatys", "great-wave", None, size=size, iterations=2, seed=size)
            run_job("fast", "starry-night", None, size=size, strength=0.5)
            run_job("arbitrary", None, painting, size=size, preserve_color="luminance")
        assert loads == {"vgg19": 1, "microast": 1, "network": 1}
        # Other styles load their own network once; nothing else is loaded again.
        run_job("fast", "the-scream", None, size=40)
        run_job("fast", "the-scream", None, size=56)
        run_job("gatys", None, painting, size=40, iterations=2, style_weight=10.0)
        assert loads == {"vgg19": 1, "microast": 1, "network": 2}
        assert engines.loads == {"vgg19": 1, "gatys": 1, "fast": 1, "arbitrary": 1}
    finally:
        backend.stop()


def test_live_mode_exports_load_each_network_once(
    tmp_path: Path, loads: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live-mode routes export from the serving process's engines (in embedded mode the
    workers' own), so an export loads nothing a job loaded, and nothing twice."""
    from restyle.imaging import DEFAULT_LIMITS
    from restyle.service.live_models import painting_onnx, zoo_style_onnx

    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    engines = Engines(device="cpu")
    first = zoo_style_onnx(engines, "starry-night", cache_bytes=10**9)
    again = zoo_style_onnx(engines, "starry-night", cache_bytes=10**9)
    assert first == again and first.is_file() and first.is_relative_to(tmp_path)
    exported = painting_onnx(
        engines, _png("great_wave", 96), limits=DEFAULT_LIMITS, cache_bytes=10**9
    )
    painting_onnx(engines, _png("great_wave", 96), limits=DEFAULT_LIMITS, cache_bytes=10**9)
    assert exported.is_file()
    assert loads == {"microast": 1, "network": 1}  # MicroAST needs no VGG19


def test_the_arbitrary_network_is_a_service_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().engines(device="cpu").setup_of("arbitrary").network == "microast"
    monkeypatch.setenv("RESTYLE_ARBITRARY_NETWORK", "metanet")
    engines = ServiceSettings().engines(device="cpu")
    assert engines.setup_of("arbitrary").network == "metanet"
    monkeypatch.setenv("RESTYLE_ARBITRARY_NETWORK", "vgg")
    with pytest.raises(ValueError, match="arbitrary_network"):
        ServiceSettings()
