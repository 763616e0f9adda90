"""The `restyle` command end to end, in a real subprocess, on small images."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from restyle.cli import parse_style
from restyle.examples import example_path


def _restyle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restyle.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_stylize_end_to_end_writes_image(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    done = _restyle(
        "stylize",
        "parrots",
        "-s",
        "starry_night:2",
        "-s",
        "great_wave:1",
        "-o",
        str(out),
        "--size",
        "40",
        "--iterations",
        "3",
        "--coarse-iterations",
        "0",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--preserve-color",
        "--strength",
        "0.8",
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (40, 40)
        assert image.mode == "RGB"
    assert "step" in done.stderr  # the progress bar was drawn on stderr
    assert "Traceback" not in done.stderr


def test_sixteen_bit_png_output(tmp_path: Path) -> None:
    out = tmp_path / "out16.png"
    done = _restyle(
        "stylize",
        "cat",
        "-s",
        "the_scream",
        "-o",
        str(out),
        "--size",
        "32",
        "--iterations",
        "1",
        "--scales",
        "1",
        "--bit-depth",
        "16",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (32, 21)
    assert out.read_bytes()[24] == 16  # IHDR bit depth


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--size", "0"], 2, "size"),
        (["--strength", "1.5"], 2, "strength"),
        (["--iterations", "999999"], 2, "iterations"),
        (["--style-layers", "relu9_1"], 2, "relu9_1"),
        (["--device", "cuda:7"], 5, "cuda"),
        (["--device", "tpu"], 5, "device"),
    ],
)
def test_bad_parameters_give_exit_codes_and_one_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    done = _restyle(
        "stylize",
        "parrots",
        "-s",
        "starry_night",
        "-o",
        str(tmp_path / "o.png"),
        "--iterations",
        "1",
        "--quiet",
        *args,
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o.png").exists()


def test_bad_image_files_exit_3(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    for content in (str(corrupt), str(tmp_path / "missing.jpg")):
        done = _restyle(
            "stylize", content, "-s", "starry_night", "-o", str(tmp_path / "o.png"), "--quiet"
        )
        assert done.returncode == 3, done.stderr
        assert "restyle: error:" in done.stderr
        assert "Traceback" not in done.stderr


def test_unwritable_output_suffix_is_rejected_before_work(tmp_path: Path) -> None:
    done = _restyle(
        "stylize",
        "parrots",
        "-s",
        "starry_night",
        "-o",
        str(tmp_path / "o.xyz"),
        "--iterations",
        "1",
        "--size",
        "32",
        "--quiet",
    )
    assert done.returncode == 2
    assert ".xyz" in done.stderr


def test_examples_lists_bundled_images() -> None:
    done = _restyle("examples")
    assert done.returncode == 0
    assert "starry-night" in done.stdout and "parrots" in done.stdout


def test_parse_style_weights() -> None:
    assert parse_style("a.jpg:0.5") == ("a.jpg", 0.5)
    assert parse_style("a.jpg") == ("a.jpg", 1.0)
    assert parse_style(r"C:\art\b.jpg") == (r"C:\art\b.jpg", 1.0)
    assert parse_style("x:y.jpg") == ("x:y.jpg", 1.0)


def test_the_readmes_first_example_is_quick_and_names_its_engine(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    line = next(line for line in readme.splitlines() if "restyle stylize" in line)
    command = shlex.split(line.split("#")[0])
    assert command[0].endswith("restyle") and command[1] == "stylize", line
    output = command[command.index("-o") + 1]
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "restyle.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert (tmp_path / output).is_file()
    assert "engine: fast" in done.stderr  # which engine ran, and why, before it ran
    assert "trained style" in done.stderr
    # A zoo style on the fast engine: 3-6 s on a 2-core CPU, with room for a busy machine.
    assert elapsed < 60, f"the README's first example took {elapsed:.0f} s"


def test_auto_with_a_painting_at_a_small_size_runs_gatys_and_names_the_quick_alternative(
    tmp_path: Path,
) -> None:
    # 128 px: the default gatys run (20 steps from the arbitrary pass) takes seconds here.
    done = _restyle(
        "stylize",
        "cat",
        "-s",
        str(example_path("the-scream")),
        "-o",
        str(tmp_path / "o.jpg"),
        "--device",
        "cpu",
        "--size",
        "128",
    )
    assert done.returncode == 0, done.stderr
    assert "engine: gatys" in done.stderr and "--method arbitrary" in done.stderr
    quiet = _restyle(
        "stylize",
        "cat",
        "-s",
        "the-scream",
        "-o",
        str(tmp_path / "q.jpg"),
        "--quiet",
        "--size",
        "64",
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_long_run_says_its_expected_time_before_it_starts(tmp_path: Path) -> None:
    # A gatys run of a few minutes: stopped as soon as the estimate is on stderr.
    command = [sys.executable, "-m", "restyle.cli", "stylize", "parrots", "-s", "the-scream"]
    command += ["--method", "gatys", "-o", str(tmp_path / "o.png"), "--device", "cpu"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        lines = [process.stderr.readline(), process.stderr.readline()]
        process.kill()
    assert lines[0].startswith("engine: gatys"), lines
    assert lines[1].startswith("expected time: about ") and "CPU" in lines[1], lines


def test_the_bar_projects_the_time_left_from_pixels_not_steps() -> None:
    # The default ladder: 150 steps at 128 px, 150 at 256, 300 at 512. After the first scale
    # (10 s) a step-rate projection says 40 s; the pixels say about six minutes.
    from restyle.cli.common import ProgressBar
    from restyle.progress import Progress

    ladder = [((128, 128), 150), ((256, 256), 150), ((512, 512), 300)]
    work = sum(steps * h * w / 1e6 for (h, w), steps in ladder)
    with ProgressBar(disabled=False, work_megapixels=work) as bar:
        for step in range(1, 151):
            report = Progress(step, 600, 1.0, step / 15, scale=1, scales=3, size=(128, 128))
            bar.update(report)
        left = bar.bar.postfix
    assert "left=about 6 min" in left, left
    with ProgressBar(disabled=False, work_megapixels=None) as plain:
        plain.update(Progress(1, 10, 1.0, 0.1, size=(64, 64)))
        assert plain.time_left(Progress(2, 10, 1.0, 0.2, size=(64, 64))) is None


def test_a_time_limit_is_a_duration_and_picks_gatys(tmp_path: Path) -> None:
    out = tmp_path / "timed.png"
    done = _restyle(
        "stylize", "cat", "-s", "the-scream", "--time", "4s", "--size", "64", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "engine: gatys" in done.stderr  # --time is gatys's alone: auto runs gatys
    with Image.open(out) as image:
        assert max(image.size) == 64
    bad = _restyle("stylize", "cat", "-s", "the-scream", "--time", "4x", "-o", str(out))
    assert bad.returncode == 2 and "time_limit_s: expected a duration" in bad.stderr
