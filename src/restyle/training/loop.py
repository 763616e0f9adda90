"""The training loop shared by every engine that learns a network.

A *task* (e.g. `FastStyleTask`) says what is learnt: it builds the model, sets up its loss
network and returns the loss of a batch. The loop does the rest: seeding, data, mixed precision,
DDP under `torchrun`, the learning-rate schedule, logs, samples, checkpoints and resume (the
files and their checks in `checkpoints.py`; what a task provides in `task.py`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from restyle.devices import autocast_dtype as resolved_autocast
from restyle.devices import resolve_device
from restyle.errors import NumericalError
from restyle.imaging import save_image
from restyle.progress import Progress, ProgressCallback
from restyle.training.checkpoints import (
    MODEL_FILE,
    STATE_FILE,
    resume_step,
    save_training_state,
)
from restyle.training.config import TrainConfig, as_dict
from restyle.training.data import centre_crops, data_digest, list_images, photo_loader
from restyle.training.task import TrainingTask

__all__ = ["LOG_FILE", "MODEL_FILE", "STATE_FILE", "TrainResult", "TrainingTask", "train"]

LOG_FILE = "train_log.jsonl"
SAMPLE_PHOTOS = 4


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    steps: int
    losses: dict[str, float]
    elapsed: float
    images_per_second: float


@dataclass(frozen=True)
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _distributed_from_env() -> _Distributed:
    """torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; a plain run has none of them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return _Distributed()
    return _Distributed(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def train(
    task: TrainingTask,
    config: TrainConfig,
    *,
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    device: str | torch.device | None = None,
    resume: bool = False,
    command: str | None = None,
    callback: ProgressCallback | None = None,
) -> TrainResult:
    """Train `task`'s model on the photos under `data`; write everything to `out_dir`.

    `out_dir` receives `model.safetensors` (what `--style` loads), `train_state.safetensors`
    (what `resume` continues from), `train_log.jsonl` and `samples/`. `command` is recorded in
    the model so a run can be reproduced.
    """
    run = _Run(task, config, data=Path(data), out_dir=Path(out_dir), device=device)
    try:
        return run.execute(resume=resume, command=command, callback=callback)
    finally:
        run.close()


class _Run:
    def __init__(
        self,
        task: TrainingTask,
        config: TrainConfig,
        *,
        data: Path,
        out_dir: Path,
        device: str | torch.device | None,
    ) -> None:
        self.task, self.config, self.data, self.out_dir = task, config, data, out_dir
        self.dist = _distributed_from_env()
        self.owns_process_group = False
        self.device = self._device(device)
        self.files = list_images(data)
        self.data_sha256 = data_digest(data, self.files)
        self.steps = self._steps()
        self.computed_in = "float32"

    def _device(self, device: str | torch.device | None) -> torch.device:
        if self.dist.world_size == 1:
            return resolve_device(device)
        use_cuda = torch.cuda.is_available() and device != "cpu"
        resolved = torch.device("cuda", self.dist.local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(resolved)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            self.owns_process_group = True
        return resolved

    def _steps(self) -> int:
        if self.config.epochs <= 0:
            return self.config.steps
        per_step = self.config.batch_size * self.dist.world_size
        return max(1, math.ceil(self.config.epochs * len(self.files) / per_step))

    def close(self) -> None:
        if self.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()

    def execute(
        self, *, resume: bool, command: str | None, callback: ProgressCallback | None
    ) -> TrainResult:
        config, device = self.config, self.device
        cuda = device.type == "cuda"
        autocast_dtype = resolved_autocast(config.precision, device)
        self.computed_in = "bfloat16" if autocast_dtype is not None else "float32"
        channels_last = cuda or bool(getattr(self.task, "channels_last_on_cpu", False))
        # Setup first: a task may initialise its model from its data (the MetaNet's input scale).
        self.task.setup(device, image_size=config.image_size, channels_last=channels_last)
        torch.manual_seed(config.seed)
        model = self.task.build_model().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        start = 0
        if resume:
            start = resume_step(self.out_dir, self.task, model, optimizer, steps=self.steps)
        trained: nn.Module = model
        if self.dist.world_size > 1:
            trained = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if cuda else None
            )
        samples = self._sample_photos() if self.dist.is_main else None
        loader = photo_loader(
            self.files,
            size=config.image_size,
            batch_size=config.batch_size,
            steps=self.steps,
            start_step=start,
            seed=config.seed,
            rank=self.dist.rank,
            workers=self._workers(cuda),
            pin_memory=cuda,
            zoom=config.zoom,
        )
        log = (self.out_dir / LOG_FILE).open("a", encoding="utf-8") if self.dist.is_main else None
        last: dict[str, float] = {}
        began = time.perf_counter()
        step = start
        try:
            if samples is not None and start == 0 and config.sample_every:
                self._write_samples(model, samples, step=0)
            for step, batch in enumerate(_batches(loader, device), start=start + 1):
                self._set_learning_rate(optimizer, step, time.perf_counter() - began)
                photos = batch.float().div_(255)
                if channels_last:
                    photos = photos.contiguous(memory_format=torch.channels_last)
                context = (
                    torch.autocast(device.type, dtype=autocast_dtype)
                    if autocast_dtype is not None
                    else contextlib.nullcontext()
                )
                with context:
                    loss, terms = self.task.loss(trained, photos, step=step, rank=self.dist.rank)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                out_of_time = self._out_of_time(time.perf_counter() - began)
                final = out_of_time or step == self.steps
                if step % max(config.log_every, 1) == 0 or final or step == start + 1:
                    last = self._log(log, step, loss, terms, optimizer, began, start)
                if callback is not None and self.dist.is_main:
                    callback(
                        Progress(
                            step=step,
                            total=step if final else self._projected_total(step, start, began),
                            loss=last.get("loss", math.nan),
                            elapsed=time.perf_counter() - began,
                            losses={k: last[k] for k in terms if k in last},
                            size=(config.image_size, config.image_size),
                        )
                    )
                if samples is not None and config.sample_every and step % config.sample_every == 0:
                    self._write_samples(model, samples, step=step)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    self._checkpoint(model, optimizer, step, command, last, began, start)
                if out_of_time:
                    break
        except KeyboardInterrupt:
            # Keep what was learnt: the next run with --resume continues from here.
            if step > start:
                self._checkpoint(model, optimizer, step, command, last, began, start)
            raise
        finally:
            if log is not None:
                log.close()
        elapsed = time.perf_counter() - began
        if samples is not None and config.sample_every and step % config.sample_every:
            self._write_samples(model, samples, step=step)
        path = self._checkpoint(model, optimizer, step, command, last, began, start)
        images = (step - start) * config.batch_size * self.dist.world_size
        return TrainResult(
            model_path=path,
            steps=step,
            losses=last,
            elapsed=elapsed,
            images_per_second=images / elapsed if elapsed > 0 else 0.0,
        )

    def _workers(self, cuda: bool) -> int:
        if self.config.workers >= 0:
            return self.config.workers
        # On a GPU, decode in worker processes so the GPU never waits; on the CPU the training
        # itself needs every core, and workers fighting it for them slow both down.
        return min(8, os.cpu_count() or 1) if cuda else 0

    def _out_of_time(self, elapsed: float) -> bool:
        """Whether the time limit is reached; every process stops at the same step."""
        limit = self.config.time_limit_s
        if not limit:
            return False
        over = elapsed >= limit
        if self.dist.world_size > 1:  # one process's clock decides for all, or DDP would hang
            flag = torch.tensor([float(over)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            over = bool(flag.item())
        return over

    def _projected_total(self, step: int, start: int, began: float) -> int:
        """The steps the run will end at: `steps`, or fewer at this pace within the time limit."""
        limit = self.config.time_limit_s
        elapsed = time.perf_counter() - began
        if not limit or elapsed <= 0:
            return self.steps
        pace = (step - start) / elapsed
        return max(step, min(self.steps, start + round(pace * limit)))

    def _set_learning_rate(
        self, optimizer: torch.optim.Optimizer, step: int, elapsed: float
    ) -> None:
        config = self.config
        progress = (step - 1) / max(self.steps - 1, 1)
        if config.time_limit_s:
            progress = max(progress, min(1.0, elapsed / config.time_limit_s))
        floor = config.lr_decay_to
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * factor

    def _log(
        self,
        log: Any,
        step: int,
        loss: torch.Tensor,
        terms: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
        began: float,
        start: int,
    ) -> dict[str, float]:
        values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
        if not math.isfinite(values["loss"]):
            raise NumericalError(
                f"training diverged at step {step} (loss {values['loss']}); lower the "
                "learning rate or the style weight"
            )
        elapsed = time.perf_counter() - began
        images = (step - start) * self.config.batch_size * self.dist.world_size
        if log is not None:
            record = {
                "step": step,
                **values,
                "lr": optimizer.param_groups[0]["lr"],
                "elapsed": round(elapsed, 3),
                "images_per_second": round(images / elapsed, 2) if elapsed > 0 else None,
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
        return values

    def _checkpoint(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        step: int,
        command: str | None,
        losses: dict[str, float],
        began: float,
        start: int,
    ) -> Path:
        path = self.out_dir / MODEL_FILE
        if not self.dist.is_main:
            return path
        save_training_state(
            self.out_dir, self.task, model, optimizer, step=step, config=self.config
        )
        info = {
            "training": {
                "command": command,
                "steps": step,
                "total_steps": self.steps,
                "config": as_dict(self.config),
                "data": {
                    "directory": self.data.name,
                    "images": len(self.files),
                    "sha256": self.data_sha256,
                },
                "processes": self.dist.world_size,
                "device": self.device.type,
                "computed_in": self.computed_in,
                "losses": losses,
                "seconds_this_run": round(time.perf_counter() - began, 1),
                "resumed_from_step": start,
                "torch": torch.__version__,
            }
        }
        return self.task.save_model(path, model, info)

    def _sample_photos(self) -> torch.Tensor:
        """The first photos, centre-cropped: the same every run, so samples compare over time."""
        return centre_crops(self.files[:SAMPLE_PHOTOS], self.config.image_size).to(self.device)

    def _write_samples(self, model: nn.Module, photos: torch.Tensor, *, step: int) -> None:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            stylized = self.task.sample(model, photos).float().clamp(0, 1)
        model.train(was_training)
        # One row of photos over one row of their stylizations.
        grid = torch.cat([torch.cat(list(photos.float()), -1), torch.cat(list(stylized), -1)], -2)
        folder = self.out_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        save_image(grid.unsqueeze(0).cpu(), folder / f"step-{step:07d}.jpg")


def _batches(loader: Any, device: torch.device) -> Iterator[torch.Tensor]:
    for batch in loader:
        yield batch.to(device, non_blocking=True)
