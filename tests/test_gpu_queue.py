"""The GPU queue (model-zoo/gpu_queue.md) rehearsed on the CPU at a tiny size.

Each job's script runs as its queue entry says (`TINY=1`), in a folder shaped like a fresh
checkout with the inputs staged by `stage.py --tiny`, and must hand back at most 8 files, flat,
whose weights load and whose numbers are the networks' own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
QUEUE = REPO / "model-zoo" / "gpu_queue.md"
MICROAST_MACS_512 = 7_280_263_168  # the shipped MicroAST's convolutions, one 512² frame

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model-zoo/ copied (its scripts find the checkout from their own path), src/ and
    benchmarks/ linked, the tiny inputs staged in its zoo-runs/gpu-inputs/."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(
        REPO / "model-zoo", root / "model-zoo", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("src", "benchmarks"):
        (root / name).symlink_to(REPO / name)
    stage = [sys.executable, "model-zoo/gpu/stage.py", "--tiny", "--shared", str(SHARED)]
    subprocess.run(stage, cwd=root, check=True, capture_output=True, timeout=60)
    return root


def run_job(checkout: Path, command: list[str], out: Path) -> dict[str, Path]:
    """Runs a job with TINY=1 and OUT=out; returns what came back, by name."""
    env = {**os.environ, "TINY": "1", "OUT": str(out), "PYTHON": sys.executable}
    env["PYTHONPATH"] = str(checkout / "src")
    done = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = sorted(out.rglob("*"))
    assert all(p.is_file() and p.parent == out for p in found), found  # flat
    assert 0 < len(found) <= 8
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in found)
    return {p.name: p for p in found}


def test_the_staged_inputs_are_the_manifests_and_small(checkout: Path) -> None:
    import hashlib

    from PIL import Image

    inputs = checkout / "zoo-runs" / "gpu-inputs"
    manifest = json.loads((inputs / "MANIFEST.json").read_text())
    assert manifest["tiny"] is True and manifest["settings"]["photos"] == 6
    for name, record in manifest["files"].items():
        data = (inputs / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
    for photo in (inputs / "photos").iterdir():
        with Image.open(photo) as image:
            assert min(image.size) <= 320
    # Paintings travel byte for byte: a checkpoint's painting sha256 is the original's.
    starry = (inputs / "zoo-styles" / "starry_night.jpg").read_bytes()
    assert starry == (SHARED / "styles" / "starry_night.jpg").read_bytes()


def test_the_gpu_profiles_read_what_stage_writes() -> None:
    sys.path.insert(0, str(REPO / "model-zoo"))
    from recipes import load_recipes

    recipes = load_recipes()
    for profile in ("gpu-standard", "gpu-lite"):
        argv = recipes.command(recipes.style("starry-night"), profile)
        assert argv[argv.index("--data") + 1] == "zoo-runs/gpu-inputs/photos"
        assert argv[argv.index("--style") + 1] == "zoo-runs/gpu-inputs/zoo-styles/starry_night.jpg"
        assert "--styles-dir" not in argv and argv[argv.index("--steps") + 1] == "2000"
    rehearsal = recipes.command(recipes.style("the-scream"), "gpu-lite", {"steps": 2})
    assert rehearsal[rehearsal.index("--steps") + 1] == "2"


def test_every_queue_entry_fits_a_call() -> None:
    """Each job in gpu_queue.md: a command within the 2000 characters a call takes, a script
    that exists, and the carried paths that stage.py sizes for it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_stage", REPO / "model-zoo/gpu/stage.py")
    assert spec is not None and spec.loader is not None
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    text = QUEUE.read_text()
    runs = re.findall(r"^\| run \| `(.+)` \|$", text, flags=re.M)
    carries = re.findall(r"^\| carry \| (.+) \|$", text, flags=re.M)
    assert len(runs) == len(carries) == 4
    jobs = ["train_zoo", "train_zoo", "distil_student", "gatys_vs_pastiche"]
    for command, carry, job in zip(runs, carries, jobs, strict=True):
        assert len(command) <= 2000 and f"model-zoo/gpu/{job}." in command
        script = re.search(r"model-zoo/gpu/\S+\.(sh|py)", command)
        assert script is not None and (REPO / script.group(0)).is_file()
        paths = re.findall(r"`([^`]+)`", carry)
        assert paths == [f"zoo-runs/gpu-inputs/{part}" for part in stage.JOBS[job]]
        assert len(paths) <= 8


def _lite_run(checkout: Path, tmp_path: Path, run: str) -> None:
    from restyle.models.checkpoint import load_fast_network
    from restyle.models.transform_net import TransformNet, size_config

    profile = {"1": "gpu-standard", "2": "gpu-lite"}[run]
    size = profile.removeprefix("gpu-")
    files = run_job(checkout, ["bash", "model-zoo/gpu/train_zoo.sh", run], tmp_path / "out")
    assert {f"train_zoo-{run}.log", f"zoo-{profile}.json", "MANIFEST.json"} <= set(files)
    # The packed runs restore exactly, and every network loads with its recipe's shape.
    sys.path.insert(0, str(REPO / "model-zoo"))
    from pack_runs import unpack

    restored = unpack(tmp_path / "out", tmp_path / "runs")
    models = sorted(p for p in restored if p.endswith("model.safetensors"))
    assert models == [f"{profile}/starry-night/model.safetensors",
                      f"{profile}/the-scream/model.safetensors"]  # fmt: skip
    for name in models:
        net, info = load_fast_network(tmp_path / "runs" / name)
        assert isinstance(net, TransformNet) and net.config == size_config(size)
        command = info["training"]["command"]
        assert command.startswith("restyle train fast --style zoo-runs/gpu-inputs/zoo-styles/")
        assert f"--size {size} " in command and info["training"]["steps"] == 2
    # Shipped in float16, as `build.py package` stores them.
    from safetensors import safe_open

    with safe_open(str(tmp_path / "runs" / models[0]), framework="pt") as handle:
        assert all(handle.get_tensor(k).dtype == torch.float16 for k in handle.keys())  # noqa: SIM118
    # The scores are the networks' own: finite, and a network's multiply-adds are its shape's.
    record = json.loads(files[f"zoo-{profile}.json"].read_text())
    assert record["profile"] == profile and set(record["styles"]) == {"starry-night", "the-scream"}
    macs = {"standard": 40_315_650_048, "lite": 5_309_988_864}[size]
    for style in record["styles"].values():
        assert style["steps"] == style["total_steps"] == 2 and not style["is_recipe_command"]
        assert style["network"]["macs_512"] == macs
        assert style["arbitrary"]["macs_512"] == MICROAST_MACS_512
        for who in ("network", "arbitrary"):
            assert 0 < style[who]["content"] < 10 and 0 < style[who]["style"] < 100


def test_train_zoo_lite_rehearsal(checkout: Path, tmp_path: Path) -> None:
    _lite_run(checkout, tmp_path, "2")


@pytest.mark.slow
def test_train_zoo_standard_rehearsal(checkout: Path, tmp_path: Path) -> None:
    _lite_run(checkout, tmp_path, "1")


def test_distil_student_rehearsal(checkout: Path, tmp_path: Path) -> None:
    command = [sys.executable, "model-zoo/gpu/distil_student.py", "--out", str(tmp_path / "out")]
    files = run_job(checkout, command, tmp_path / "out")
    names = {"student.safetensors", "distil.json", "distil_log.jsonl", "distil_sheet.jpg"}
    assert names | {"distil.log"} == set(files)
    sys.path.insert(0, str(REPO / "model-zoo" / "gpu"))
    from distil_student import Student, StudentConfig, load_student

    student, info = load_student(files["student.safetensors"])
    assert isinstance(student, Student) and student.config == StudentConfig()
    assert info["steps"] == 3 and info["command"].startswith("python model-zoo/gpu/distil_student")
    with torch.no_grad():
        out = student(torch.rand(1, 3, 64, 48), torch.rand(1, 3, 40, 56))
    assert out.shape == (1, 3, 64, 48) and torch.isfinite(out).all()
    result = json.loads(files["distil.json"].read_text())
    macs = result["macs_per_frame_512"]
    assert macs["teacher"] == MICROAST_MACS_512 and macs["student"] == 2_173_173_760
    assert result["verdict"]["three_times_fewer_macs"] is True
    assert result["pairs"] == 2 and {"zoo", "held-out", "all"} <= set(result)
    # Three steps from random weights are far from the teacher: the comparison must say so.
    assert result["all"]["l1"] > 0.05 and result["verdict"]["met"] is False
    log = [json.loads(line) for line in files["distil_log.jsonl"].read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]


@pytest.mark.slow
def test_gatys_vs_pastiche_rehearsal(checkout: Path, tmp_path: Path) -> None:
    files = run_job(checkout, ["bash", "model-zoo/gpu/gatys_vs_pastiche.sh"], tmp_path / "out")
    assert set(files) == {"gatys_vs_pastiche.log", "gatys-vs-pastiche-32.json"}
    result = json.loads(files["gatys-vs-pastiche-32.json"].read_text())
    assert result["size"] == 32 and result["pastiche_iterations"] == 2
    assert [row["schedule"] for row in result["restyle"]] == ["single", "single"]
    assert "start-up: torch and a first cpu tensor" in files["gatys_vs_pastiche.log"].read_text()
