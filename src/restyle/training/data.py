"""Training photos: random square crops, decoded and augmented in data-loader worker processes.

Every crop is fully determined by (seed, process rank, step, slot in the batch), so a run
repeats exactly and a resumed run draws the same batches it would have drawn without the
interruption. Decoding, resizing and cropping run in worker processes (Pillow releases the GIL
little), and batches travel as uint8 to cut the copy to the GPU by four.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler

from restyle.errors import InvalidParameterError
from restyle.training.config import MAX_SCALE_JITTER

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """Image files under `root`, recursively, in a stable (sorted) order."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidParameterError(f"data: {str(root)!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InvalidParameterError(f"data: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    # Reading every header costs about a millisecond per file and turns a broken file into an
    # error before training starts, not hours into it.
    for path in files:
        try:
            with Image.open(path) as image:
                image.size  # noqa: B018 - parsing the header is the check
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidParameterError(
                f"data: {path} is not a readable image ({exc}); remove or replace it"
            ) from exc
    return files


def centre_crops(files: list[Path], size: int) -> torch.Tensor:
    """(N, 3, size, size) in [0, 1]: each photo scaled and centre-cropped to a square, the same
    every run (a training's samples, a refinement's preview)."""
    from restyle.imaging import image_to_tensor

    crops = []
    for path in files:
        with Image.open(path) as image:
            fitted = ImageOps.fit(image.convert("RGB"), (size, size))
        crops.append(image_to_tensor(fitted))
    return torch.cat(crops)


def data_digest(root: str | os.PathLike[str], files: list[Path]) -> str:
    """sha256 over every file's relative path and bytes: names the exact data a run saw.

    Two runs with the same digest, command and seed train the same weights, so a shipped
    model can be checked against its recorded recipe.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def random_crop(
    image: Image.Image, size: int, rng: random.Random, *, zoom: float = MAX_SCALE_JITTER
) -> Image.Image:
    """A `size`² crop after scaling the short side to `size`×[1, zoom], flipped half the time.

    A large `zoom` shows the network photos at the scale of large outputs (a crop of a quarter
    of the short side at zoom 4), where a network trained on whole photos only can draw
    patterns it never learnt to avoid.
    """
    image = ImageOps.exif_transpose(image)
    scale = size * rng.uniform(1.0, zoom) / min(image.size)
    width = max(size, round(image.width * scale))
    height = max(size, round(image.height * scale))
    # draft() lets the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding: far cheaper.
    image.draft("RGB", (width, height))
    image = image.convert("RGB").resize(
        (width, height), Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    left = rng.randint(0, width - size)
    top = rng.randint(0, height - size)
    image = image.crop((left, top, left + size, top + size))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


class PhotoCrops(Dataset[torch.Tensor]):
    """Indexed by (file index, crop seed); returns a (3, size, size) uint8 tensor."""

    def __init__(self, files: list[Path], *, size: int, zoom: float = MAX_SCALE_JITTER) -> None:
        self.files = files
        self.size = size
        self.zoom = zoom

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, crop_seed = key
        # A file whose header parsed but whose pixels do not decode (truncated) is replaced by
        # the next one, deterministically, rather than stopping a long run.
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                with Image.open(path) as image:
                    crop = random_crop(image, self.size, random.Random(crop_seed), zoom=self.zoom)
            except (OSError, ValueError, Image.DecompressionBombError):
                continue
            return torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)
        raise InvalidParameterError("data: none of the training images decodes")


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Batches of (file index, crop seed) for steps `start_step`..`steps - 1`, deterministically."""

    def __init__(
        self, *, files: int, batch_size: int, steps: int, start_step: int, seed: int, rank: int
    ) -> None:
        self.files = files
        self.batch_size = batch_size
        self.steps = steps
        self.start_step = start_step
        self.seed = seed
        self.rank = rank

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.steps):
            yield self.batch(step)

    def batch(self, step: int) -> list[tuple[int, int]]:
        # Epoch-wise permutations, so every photo is seen once per epoch on each process.
        per_epoch = max(1, self.files // self.batch_size)
        epoch, position = divmod(step, per_epoch)
        order = random.Random(f"{self.seed}/{self.rank}/{epoch}").sample(
            range(self.files), self.files
        )
        out = []
        for slot in range(self.batch_size):
            index = order[(position * self.batch_size + slot) % self.files]
            crop_seed = random.Random(f"{self.seed}/{self.rank}/{step}/{slot}").getrandbits(63)
            out.append((index, crop_seed))
        return out


def photo_loader(
    files: list[Path],
    *,
    size: int,
    batch_size: int,
    steps: int,
    start_step: int,
    seed: int,
    rank: int,
    workers: int,
    pin_memory: bool,
    zoom: float = MAX_SCALE_JITTER,
) -> DataLoader[torch.Tensor]:
    """A loader yielding (B, 3, size, size) uint8 batches, one per remaining step."""
    sampler = StepBatches(
        files=len(files),
        batch_size=batch_size,
        steps=steps,
        start_step=start_step,
        seed=seed,
        rank=rank,
    )
    return DataLoader(
        PhotoCrops(files, size=size, zoom=zoom),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
