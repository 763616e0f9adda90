"""Refinement (`restyle train fast --init arbitrary`) and the CPU's bfloat16 choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from restyle.cli import main
from restyle.devices import CPU_BF16_ENV, autocast_dtype, cpu_has_fast_bf16
from restyle.engines.arbitrary import ArbitraryEngine
from restyle.engines.fast import FastStylizer
from restyle.errors import InvalidParameterError, WeightsError
from restyle.losses import gram
from restyle.models.checkpoint import (
    STYLED_MICROAST_FORMAT,
    load_fast_network,
    load_transform_net,
    read_metadata,
)
from restyle.models.microast import StyledMicroAST
from restyle.training.config import FastLossConfig, TrainConfig
from restyle.training.fast_task import RefineStyleTask
from restyle.training.loop import LOG_FILE, MODEL_FILE, train


def _config(**changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "steps": 3,
        "batch_size": 2,
        "image_size": 32,
        "workers": 0,
        "log_every": 1,
        "sample_every": 0,
        "checkpoint_every": 0,
        "learning_rate": 1e-3,
        "precision": "float32",
    }
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _task(style: torch.Tensor, **changes: object) -> RefineStyleTask:
    return RefineStyleTask(
        style,
        loss=FastLossConfig(style_size=64),
        style_info={"name": "test"},
        signal_size=64,
        **changes,  # type: ignore[arg-type]
    )


def test_refinement_starts_from_the_arbitrary_pass(small_style: torch.Tensor) -> None:
    task = _task(small_style)
    engine = ArbitraryEngine()
    _, arbitrary = engine.network(small_style, style_size=64)
    photo = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        start = task.build_model().eval()(photo)
        assert (start - arbitrary(photo)).abs().max() < 1e-5
    model = task.build_model()
    assert all(p.requires_grad for p in model.parameters())


def test_refined_network_loads_in_the_fast_engine_and_keeps_frozen_parts(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    task = _task(small_style, frozen=("encoder",))
    before = task.build_model().state_dict()
    result = train(task, _config(), data=photo_dir, out_dir=tmp_path, device="cpu")
    metadata = read_metadata(result.model_path, kind=STYLED_MICROAST_FORMAT)
    assert metadata["info"]["init"]["frozen"] == ["encoder"]
    assert metadata["info"]["training"]["computed_in"] == "float32"
    net, _ = load_fast_network(result.model_path)
    assert isinstance(net, StyledMicroAST)
    after = net.state_dict()
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("block")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    photo = torch.rand(1, 3, 37, 45)
    out = FastStylizer(result.model_path).stylize(photo)
    assert out.shape == photo.shape and torch.isfinite(out).all()
    with pytest.raises(WeightsError, match="not a Restyle transform network"):
        load_transform_net(result.model_path)


def test_refinement_rejects_unknown_parts_and_sizes(small_style: torch.Tensor) -> None:
    with pytest.raises(InvalidParameterError, match="unknown part"):
        _task(small_style, frozen=("decoder",))
    with pytest.raises(InvalidParameterError, match="signal_size"):
        RefineStyleTask(small_style, loss=FastLossConfig(), style_info={}, signal_size=9999)


def test_cli_refines_exports_and_stylizes(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "train", "fast", "--init", "arbitrary", "--style", "starry_night", "--data",
        str(photo_dir), "--out", str(out), "--steps", "2", "--image-size", "32",
        "--batch-size", "2", "--signal-size", "64", "--style-size", "64", "--device", "cpu",
        "--quiet", "--sample-every", "0", "--precision", "float32",
    ]  # fmt: skip
    assert main(args) == 0
    info = read_metadata(out / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]
    assert "--init arbitrary" in info["training"]["command"]
    assert info["init"]["signal_size"] == 64
    onnx = tmp_path / "refined.onnx"
    assert main(["export", "onnx", "--style", str(out / MODEL_FILE), "-o", str(onnx)]) == 0
    assert onnx.stat().st_size > 100_000
    result = tmp_path / "styled.png"
    code = main(
        ["stylize", "--method", "fast", "--style", str(out / MODEL_FILE), "parrots",
         "-o", str(result), "--size", "64", "--quiet"]
    )  # fmt: skip
    assert code == 0
    with Image.open(result) as image:
        assert max(image.size) == 64


def test_cpu_bfloat16_detection_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert cpu_has_fast_bf16() and autocast_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert not cpu_has_fast_bf16() and autocast_dtype("auto", cpu) is None
    assert autocast_dtype("bfloat16", cpu) == torch.bfloat16
    assert autocast_dtype("float32", cpu) is None
    monkeypatch.delenv(CPU_BF16_ENV)
    capabilities = torch.cpu.get_capabilities()
    native = bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    assert cpu_has_fast_bf16() == native
    # oneDNN capped below bf16 emulates it: auto keeps float32 whatever the CPU has.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert not cpu_has_fast_bf16() and autocast_dtype("auto", cpu) is None
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert cpu_has_fast_bf16() == native


def test_gram_is_float32_and_differentiable_under_cpu_autocast() -> None:
    features = torch.rand(2, 8, 16, 16, requires_grad=True)
    exact = gram(features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gram(torch.nn.functional.relu(features).to(torch.bfloat16))
    assert mixed.dtype == torch.float32
    mixed.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert (mixed - exact).abs().max() < 1e-2 * exact.abs().max()


def test_bfloat16_training_tracks_float32(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    """Same weights, same batch: bf16 autocast's loss is within 2% of float32's, and both train."""
    logs = {}
    for precision in ("float32", "bfloat16"):
        train(
            _task(small_style),
            _config(precision=precision, steps=3, learning_rate=1e-3),
            data=photo_dir,
            out_dir=tmp_path / precision,
            device="cpu",
        )
        lines = (tmp_path / precision / LOG_FILE).read_text().splitlines()
        logs[precision] = [json.loads(line)["loss"] for line in lines]
    first32, first16 = logs["float32"][0], logs["bfloat16"][0]
    assert abs(first16 - first32) < 0.02 * first32
    assert logs["bfloat16"][-1] < first16 and logs["float32"][-1] < first32


def test_cli_refines_for_a_time_on_the_bundled_photos(tmp_path: Path) -> None:
    from restyle.examples import refine_photos

    out = tmp_path / "run"
    args = [
        "train", "fast", "--init", "arbitrary", "--style", "starry_night", "--out", str(out),
        "--time", "3s", "--image-size", "32", "--batch-size", "1", "--signal-size", "64",
        "--style-size", "64", "--device", "cpu", "--quiet", "--sample-every", "0",
    ]  # fmt: skip
    assert main(args) == 0
    training = read_metadata(out / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]["training"]
    photos = sorted(refine_photos().glob("*.jpg"))
    assert training["data"]["images"] == len(photos) >= 10
    assert training["config"]["time_limit_s"] == 3.0
    assert 1 <= training["steps"] < training["total_steps"]  # the time ended it
    assert training["seconds_this_run"] >= 3.0
    # Every bundled photo is credited.
    licences = (refine_photos() / "LICENSES.md").read_text()
    assert all(f"`{photo.name}`" in licences for photo in photos)


def test_a_recipe_is_spelt_out_and_the_options_given_win(tmp_path: Path) -> None:
    """`--recipe personal` runs the service's recipe: the network records every option it
    stands for, and an option given beside it overrides the recipe's."""
    from restyle.training.config import PERSONAL_CPU

    out = tmp_path / "run"
    args = [
        "train", "fast", "--init", "arbitrary", "--style", "starry_night", "--out", str(out),
        "--recipe", "personal", "--steps", "1", "--image-size", "32", "--batch-size", "1",
        "--signal-size", "64", "--style-size", "64", "--device", "cpu", "--quiet",
        "--sample-every", "0",
    ]  # fmt: skip
    assert main(args) == 0
    training = read_metadata(out / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]["training"]
    command = training["command"]
    assert "--recipe" not in command
    assert " ".join(PERSONAL_CPU.train_arguments()) in command
    assert command.endswith("--sample-every 0")
    config = training["config"]
    assert config["batch_size"] == 1 and config["image_size"] == 32  # given: they win
    assert config["learning_rate"] == PERSONAL_CPU.learning_rate  # from the recipe
    scratch = ["train", "fast", "--style", "starry_night", "--out", str(tmp_path / "x")]
    assert main([*scratch, "--recipe", "personal", "--quiet"]) != 0  # recipes refine only
    with pytest.raises(SystemExit):  # argparse's own error, exit status 2
        main([*args[:-2], "--recipe", "nope"])


def test_a_refinement_without_a_recipe_runs_the_personal_one(tmp_path: Path) -> None:
    """`--init arbitrary` alone is the personal recipe (the loop's plain defaults took a good
    start further from the painting); `--recipe none` is the plain defaults."""
    from restyle.training.config import PERSONAL_CPU

    base = [
        "train", "fast", "--init", "arbitrary", "--style", "starry_night", "--steps", "1",
        "--image-size", "32", "--signal-size", "64", "--style-size", "64", "--device", "cpu",
        "--quiet", "--sample-every", "0",
    ]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "default")]) == 0
    assert main([*base, "--out", str(tmp_path / "plain"), "--recipe", "none"]) == 0
    default, plain = (
        read_metadata(tmp_path / name / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]
        for name in ("default", "plain")
    )
    assert " ".join(PERSONAL_CPU.train_arguments()) in default["training"]["command"]
    assert default["training"]["config"]["learning_rate"] == PERSONAL_CPU.learning_rate
    assert default["loss"]["content_target"] == PERSONAL_CPU.content_target
    assert default["loss"]["grid_weight"] == PERSONAL_CPU.grid_weight
    assert "--content-target" not in plain["training"]["command"]
    assert plain["loss"]["content_target"] == 0.0
    assert plain["training"]["config"]["learning_rate"] != PERSONAL_CPU.learning_rate


def test_only_a_refinement_may_leave_out_the_photos(tmp_path: Path) -> None:
    args = ["train", "fast", "--style", "starry_night", "--out", str(tmp_path), "--quiet"]
    assert main(args) != 0


def test_the_zoo_refines_with_the_personal_recipe_and_the_service_runs_it() -> None:
    """The zoo's profile names PERSONAL_CPU (holding the arbitrary pass's content distance
    instead of a number) and its command spells the recipe out; the service's settings take the
    recipe's sizes from it (`training.config`, which loads no training code: below)."""
    import sys
    import tomllib

    from restyle.service.settings import ServiceSettings
    from restyle.training.config import PERSONAL_CPU

    sys.path.insert(0, str(Path(__file__).parents[1] / "model-zoo"))
    from recipes import load_recipes

    path = Path(__file__).parents[1] / "model-zoo" / "recipes.toml"
    profile = tomllib.loads(path.read_text())["profile"]["refine-cpu"]
    assert profile["recipe"] == "personal" and profile["init"] == "arbitrary"
    assert profile["content-target"] == 0 and profile["content-hold"] > 0
    recipes = load_recipes()
    command = recipes.command(recipes.styles[0], "refine-cpu")
    assert command[3 : 3 + len(PERSONAL_CPU.train_arguments())] == PERSONAL_CPU.train_arguments()
    assert "--grid-weight" in command and "--recipe" not in command
    settings = ServiceSettings.model_fields
    assert settings["refine_crop_size"].default == PERSONAL_CPU.image_size
    assert settings["refine_batch_size"].default == PERSONAL_CPU.batch_size
    assert settings["refine_style_size"].default == PERSONAL_CPU.style_size


def test_the_training_configs_load_no_training_code_and_no_pytorch() -> None:
    """The service's settings read the personal recipe from `restyle.training.config`: that
    must cost the API process no PyTorch and none of the training loop."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "import restyle.training.config\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'numpy', 'PIL') or m.startswith('restyle.training'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == ["restyle.training", "restyle.training.config"]


def test_style_balance_evens_out_what_each_layer_holds(small_style: torch.Tensor) -> None:
    """Balance 0 is the plain Gram MSE; balance 1 scales every layer's term so the painting's
    own Gram energy weighs the same at each layer; the knob is range-checked."""
    from restyle.training.fast_task import balance_scales

    task = _task(small_style)
    task.setup(torch.device("cpu"), image_size=32, channels_last=False)
    grams = task.target_grams
    assert balance_scales(grams, 0.0) == {}
    full = balance_scales(grams, 1.0)
    weighed = [full[layer] * float(g.square().mean()) for layer, g in grams.items()]
    assert max(weighed) / min(weighed) == pytest.approx(1.0, rel=1e-4)
    half = balance_scales(grams, 0.5)
    assert min(half.values()) == pytest.approx(1.0) and max(half.values()) > 2
    assert all(half[k] == pytest.approx(full[k] ** 0.5) for k in grams)
    with pytest.raises(InvalidParameterError, match="style_balance"):
        FastLossConfig(style_balance=1.5)


def test_content_control_raises_the_weight_above_the_target_and_lowers_it_below() -> None:
    from restyle.training.content_control import HIGHEST, LOWEST, ContentControl

    above, below = ContentControl(0.9), ContentControl(0.9)
    for _ in range(20):
        above.update(1.2)
        below.update(0.6)
    assert above.factor > 1.5 and below.factor < 0.7
    factor = above.factor
    above.update(float("nan"))  # a diverged step says nothing about the distance: no move
    assert above.factor == factor and above.average == pytest.approx(1.2)
    runaway = ContentControl(0.1)
    for _ in range(2000):
        runaway.update(5.0)
    assert runaway.factor == HIGHEST
    resumed = ContentControl(0.9)
    resumed.restore(below.state())
    assert resumed.state() == below.state()
    resumed.restore({"factor": 1e9, "average": "x"})  # a damaged state is not taken
    assert resumed.state() == below.state() and resumed.factor > LOWEST
    with pytest.raises(InvalidParameterError, match="content_target"):
        FastLossConfig(content_target=-1)
    with pytest.raises(InvalidParameterError, match="content weight"):
        RefineStyleTask(
            torch.rand(1, 3, 64, 64),
            loss=FastLossConfig(content_weight=0, content_target=0.5),
            style_info={},
        )


def test_content_hold_takes_the_first_steps_distance_as_its_target() -> None:
    """`content_hold` N: the mean of the first N distances is the target, the factor stays 1
    meanwhile; then the distance is held there as with a given target; the state resumes."""
    from restyle.training.content_control import ContentControl

    hold = ContentControl(0.0, warmup=4)
    for distance in (0.5, 0.7, 0.6, 0.6):
        hold.update(distance)
        assert hold.factor == 1.0
    assert hold.target == pytest.approx(0.6)
    for _ in range(10):
        hold.update(0.9)  # the network drifts from the photo: the content weight rises
    assert hold.factor > 1.3
    resumed = ContentControl(0.0, warmup=4)
    resumed.restore(hold.state())
    assert resumed.target == pytest.approx(0.6) and resumed.seen == 4
    with pytest.raises(InvalidParameterError, match="not both"):
        FastLossConfig(content_target=0.5, content_hold=10)
    with pytest.raises(InvalidParameterError, match="content weight"):
        FastLossConfig(content_weight=0, content_hold=10)


def test_a_content_target_adapts_the_weight_and_resumes_with_it(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    """A target far below what the batches measure raises the content weight's factor every
    step; the state keeps the factor, and a resumed run goes on from it, not from 1."""
    from restyle.training.state import load_state

    def task() -> RefineStyleTask:
        loss = FastLossConfig(style_size=64, content_layers=("relu2_2",), content_target=0.01)
        return RefineStyleTask(small_style, loss=loss, style_info={"name": "t"}, signal_size=64)

    train(task(), _config(steps=3), data=photo_dir, out_dir=tmp_path, device="cpu")
    records = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    factors = [r["content_factor"] for r in records]
    assert factors[0] == 1.0 and factors[0] < factors[1] < factors[2]
    assert all(r["content_distance"] > 0.01 for r in records)  # relu4_2, measured as metrics do
    fresh = task()
    _, meta = load_state(
        tmp_path / "train_state.safetensors",
        model=fresh.build_model(),
        optimizer=torch.optim.Adam(fresh.build_model().parameters()),
    )
    saved = meta["task_state"]["content"]["factor"]
    assert saved > factors[2]  # the factor after the last step's update
    train(task(), _config(steps=5), data=photo_dir, out_dir=tmp_path, device="cpu", resume=True)
    records = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert records[3]["step"] == 4
    assert records[3]["content_factor"] == pytest.approx(saved, rel=1e-6)


def test_a_recorded_refinement_command_runs_again_as_it_is(tmp_path: Path) -> None:
    """A recorded command has its recipe spelt out: run again, it is not spelt out twice."""
    from restyle.training.config import PERSONAL_CPU

    first = tmp_path / "first"
    args = [
        "train", "fast", "--init", "arbitrary", "--style", "starry_night", "--out", str(first),
        "--steps", "1", "--image-size", "32", "--signal-size", "64", "--style-size", "64",
        "--device", "cpu", "--quiet", "--sample-every", "0",
    ]  # fmt: skip
    assert main(args) == 0
    recorded = read_metadata(first / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]
    command = recorded["training"]["command"]
    assert command.count(" ".join(PERSONAL_CPU.train_arguments())) == 1
    again = command.split()[1:]
    again[again.index("--out") + 1] = str(tmp_path / "again")
    assert main(again) == 0
    rerun = read_metadata(tmp_path / "again" / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"]
    assert rerun["training"]["command"] == command.replace(str(first), str(tmp_path / "again"))
