"""The training loop with the fast-engine task, on tiny networks, crops and synthetic photos."""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from restyle.cli import main
from restyle.engines.fast import FastStylizer
from restyle.errors import InvalidParameterError
from restyle.models.checkpoint import read_metadata
from restyle.models.transform_net import TransformNetConfig
from restyle.training.config import FastLossConfig, TrainConfig
from restyle.training.data import StepBatches, list_images, random_crop
from restyle.training.fast_task import FastStyleTask
from restyle.training.loop import LOG_FILE, MODEL_FILE, STATE_FILE, train

TINY = TransformNetConfig(channels=(8, 16, 16), residual_blocks=1, outer_kernel=3)


def _task(style: torch.Tensor, **loss: float) -> FastStyleTask:
    return FastStyleTask(
        style, network=TINY, loss=FastLossConfig(**loss), style_info={"name": "test"}
    )


def _config(**changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "steps": 4,
        "batch_size": 2,
        "image_size": 32,
        "workers": 0,
        "log_every": 1,
        "sample_every": 0,
        "checkpoint_every": 0,
    }
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _log(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


def test_a_few_steps_lower_the_loss(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    result = train(
        _task(small_style),
        _config(steps=12, learning_rate=1e-2),
        data=photo_dir,
        out_dir=tmp_path,
        device="cpu",
    )
    log = _log(tmp_path)
    assert [r["step"] for r in log] == list(range(1, 13))
    first, last = log[0], log[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["style"] < first["style"]
    assert result.steps == 12 and result.losses["loss"] == last["loss"]
    # The throughput is the photos of the steps so far (2 a step) over the time they took.
    for r in log[1:]:
        assert r["images_per_second"] == pytest.approx(2 * r["step"] / r["elapsed"], rel=0.05)


def test_resume_continues_exactly(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(_task(small_style), _config(steps=4), data=photo_dir, out_dir=straight, device="cpu")
    train(_task(small_style), _config(steps=3), data=photo_dir, out_dir=resumed, device="cpu")
    train(
        _task(small_style),
        _config(steps=4),
        data=photo_dir,
        out_dir=resumed,
        device="cpu",
        resume=True,
    )
    assert _log(resumed)[-1] == {
        **_log(straight)[-1],
        "elapsed": _log(resumed)[-1]["elapsed"],
        "images_per_second": _log(resumed)[-1]["images_per_second"],
    }
    a = load_file(str(straight / MODEL_FILE))
    b = load_file(str(resumed / MODEL_FILE))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_other_seed_other_weights(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        train(_task(small_style), _config(seed=seed), data=photo_dir, out_dir=tmp_path / name)
        runs[name] = load_file(str(tmp_path / name / MODEL_FILE))
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_outputs_samples_and_recorded_command(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    train(
        _task(small_style, style_weight=2.0),
        _config(steps=4, sample_every=2, checkpoint_every=2),
        data=photo_dir,
        out_dir=tmp_path,
        command="restyle train fast ...",
    )
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == ["step-0000000.jpg", "step-0000002.jpg", "step-0000004.jpg"]
    with Image.open(tmp_path / "samples" / samples[-1]) as grid:
        assert grid.size == (4 * 32, 2 * 32)
    info = read_metadata(tmp_path / MODEL_FILE)["info"]
    assert info["training"]["command"] == "restyle train fast ..."
    assert info["training"]["steps"] == 4
    assert info["loss"]["style_weight"] == 2.0
    assert info["training"]["data"]["images"] == 6
    out = FastStylizer(tmp_path / MODEL_FILE, device="cpu").stylize(torch.rand(1, 3, 20, 30))
    assert out.shape == (1, 3, 20, 30)


def test_resume_refuses_other_tasks_and_finished_runs(
    photo_dir: Path, small_style: torch.Tensor, small_style_2: torch.Tensor, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameterError, match="no training state"):
        train(_task(small_style), _config(), data=photo_dir, out_dir=tmp_path, resume=True)
    train(_task(small_style), _config(steps=2), data=photo_dir, out_dir=tmp_path)
    assert (tmp_path / STATE_FILE).is_file()
    with pytest.raises(InvalidParameterError, match="different style"):
        train(
            _task(small_style, style_weight=9.0),
            _config(),
            data=photo_dir,
            out_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(InvalidParameterError, match="already reached"):
        train(_task(small_style), _config(steps=2), data=photo_dir, out_dir=tmp_path, resume=True)


def test_a_state_written_before_a_loss_option_existed_resumes_at_its_default(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    train(_task(small_style), _config(steps=2), data=photo_dir, out_dir=tmp_path)
    state = tmp_path / STATE_FILE
    with safe_open(str(state), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    meta = json.loads(metadata["meta"])
    del meta["task"]["loss"]["style_balance"]  # as written before the option was added
    save_file(tensors, str(state), metadata={**metadata, "meta": json.dumps(meta)})
    with pytest.raises(InvalidParameterError, match="different style"):  # not its default
        train(
            _task(small_style, style_balance=0.5),
            _config(steps=3),
            data=photo_dir,
            out_dir=tmp_path,
            resume=True,
        )
    train(_task(small_style), _config(steps=3), data=photo_dir, out_dir=tmp_path, resume=True)
    assert [r["step"] for r in _log(tmp_path)][-1] == 3


def test_data_errors_are_clear(tmp_path: Path, small_style: torch.Tensor) -> None:
    with pytest.raises(InvalidParameterError, match="not a directory"):
        list_images(tmp_path / "missing")
    with pytest.raises(InvalidParameterError, match="no images"):
        list_images(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InvalidParameterError, match=r"broken\.jpg is not a readable image"):
        train(_task(small_style), _config(steps=1), data=tmp_path, out_dir=tmp_path / "out")
    with pytest.raises(InvalidParameterError, match="image_size"):
        TrainConfig(image_size=30)


def test_batches_are_a_pure_function_of_seed_rank_and_step() -> None:
    sampler = StepBatches(files=10, batch_size=4, steps=20, start_step=0, seed=1, rank=0)
    batches = list(sampler)
    later = StepBatches(files=10, batch_size=4, steps=20, start_step=7, seed=1, rank=0)
    assert list(later) == batches[7:]
    other_rank = StepBatches(files=10, batch_size=4, steps=20, start_step=0, seed=1, rank=1)
    assert list(other_rank) != batches
    # Within an epoch (two full batches of 4 out of 10 files) no photo repeats.
    indices = [i for batch in batches[:2] for i, _ in batch]
    assert len(set(indices)) == 8


def test_random_crop_handles_small_and_odd_images() -> None:
    import random

    rng = random.Random(0)
    for size in [(10, 300), (300, 10), (33, 33), (500, 400)]:
        crop = random_crop(Image.new("RGB", size, (10, 200, 30)), 64, rng)
        assert crop.size == (64, 64)
        assert crop.getpixel((5, 5)) == (10, 200, 30)


def _tiny_train_args(data: Path, out: Path) -> list[str]:
    """`restyle train fast` arguments for a 3-step lite run on 32 px crops."""
    return [
        "train", "fast", "--style", "starry_night", "--data", str(data), "--out", str(out),
        "--steps", "3", "--image-size", "32", "--batch-size", "2", "--size", "lite",
        "--device", "cpu", "--quiet", "--sample-every", "0",
    ]  # fmt: skip


def test_cli_trains_a_style_that_stylize_accepts(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_tiny_train_args(photo_dir, out)) == 0
    info = read_metadata(out / MODEL_FILE)["info"]
    assert info["training"]["command"].startswith("restyle train fast --style starry_night")
    assert info["style"]["name"] == "starry-night" and len(info["style"]["sha256"]) == 64
    result = tmp_path / "styled.png"
    code = main(
        [
            "stylize",
            "--method",
            "fast",
            "--style",
            str(out / MODEL_FILE),
            "parrots",
            "-o",
            str(result),
            "--size",
            "64",
            "--quiet",
        ]
    )
    assert code == 0
    with Image.open(result) as image:
        assert max(image.size) == 64
    assert (
        main(
            [
                "train",
                "fast",
                "--style",
                "starry_night",
                "--data",
                str(tmp_path / "none"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_two_processes_on_cpu(photo_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` with gloo: both ranks train, rank 0 writes the model."""
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "restyle.cli",
        *_tiny_train_args(photo_dir, out),
        "--log-every",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    info = read_metadata(out / MODEL_FILE)["info"]
    assert info["training"]["processes"] == 2
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3]  # rank 0 only
    # Two processes of 2 photos per step: the throughput counts both.
    last = log[-1]
    assert last["images_per_second"] == pytest.approx(2 * 2 * 3 / last["elapsed"], rel=0.05)


def test_a_time_limit_stops_the_run_decayed_and_saved(
    photo_dir: Path, small_style: torch.Tensor, tmp_path: Path
) -> None:
    # A first run pays the one-off costs (VGG19's weights, oneDNN's kernels), which would
    # otherwise fill the time limit of a busy machine with one step.
    train(_task(small_style), _config(steps=1), data=photo_dir, out_dir=tmp_path / "warm")
    reports: list[tuple[int, int]] = []
    LIMIT = 4.0
    result = train(
        _task(small_style),
        _config(steps=100_000, time_limit_s=LIMIT, lr_decay_to=0.1),
        data=photo_dir,
        out_dir=tmp_path,
        device="cpu",
        callback=lambda p: reports.append((p.step, p.total)),
    )
    log = _log(tmp_path)
    assert 1 <= result.steps < 100_000  # a loaded machine may manage only one step
    assert log[-1]["step"] == result.steps == reports[-1][0] == reports[-1][1]
    assert LIMIT <= log[-1]["elapsed"] < LIMIT + 10

    # The learning rate decays over the time (to 1e-4 at the limit), not over the 100,000 steps
    # (where it would stay near 1e-3): each step's rate was set as it began, after the
    # previous step's recorded time.
    def decayed(elapsed: float) -> float:
        return 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / LIMIT)))

    assert all(r["lr"] <= decayed(p["elapsed"]) + 1e-12 for p, r in itertools.pairwise(log))
    assert all(r["lr"] < 1e-3 for r in log[1:])
    # Totals are projections from the pace: far below the step limit, never below the step.
    assert all(step <= total < 100_000 for step, total in reports[1:])
    assert read_metadata(tmp_path / MODEL_FILE)["info"]["training"]["steps"] == result.steps


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    from restyle.cli.train import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "-3m", "0"])
def test_bad_durations_are_refused(text: str) -> None:
    import argparse

    from restyle.cli.train import parse_duration

    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
