"""model-zoo/pack_runs.py: training runs packed into a few flat archives and restored exactly."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
KiB = 1024


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pack_runs", REPO / "model-zoo" / "pack_runs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


pack_runs = _load()


def _safetensors(steps: int, total: int, payload: int) -> bytes:
    """A stand-in checkpoint: a safetensors header with Restyle's training info, then bytes."""
    info = {"training": {"steps": steps, "total_steps": total}}
    header = json.dumps({"__metadata__": {"info": json.dumps(info)}}).encode()
    return len(header).to_bytes(8, "little") + header + os.urandom(payload)


def _make_runs(root: Path) -> dict[str, bytes]:
    """zoo-runs/PROFILE/STYLE/... as `build.py train` leaves it; returns what should be packed."""
    expected: dict[str, bytes] = {}
    for profile in ("standard", "lite"):
        for style in ("starry-night", "the-scream", "great-wave"):
            run = root / profile / style
            files = {
                "model.safetensors": _safetensors(2000, 2000, 20 * KiB),
                "train_log.jsonl": b'{"step": 10, "loss": 1.5}\n' * 40,
                "train.out": b"started\ndone\n",
                "samples/step-0000000.jpg": os.urandom(3 * KiB),
                "samples/step-0002000.jpg": os.urandom(3 * KiB),
            }
            for name, data in files.items():
                (run / name).parent.mkdir(parents=True, exist_ok=True)
                (run / name).write_bytes(data)
            (run / "train_state.safetensors").write_bytes(os.urandom(KiB))  # not delivered
            for name in ("model.safetensors", "train_log.jsonl", "train.out"):
                expected[f"{profile}/{style}/{name}"] = files[name]
            expected[f"{profile}/{style}/samples/step-0002000.jpg"] = files[
                "samples/step-0002000.jpg"
            ]
    # The MetaNet's run sits directly under its profile; its weights are too big for one archive.
    big = root / "arbitrary-gpu"
    big.mkdir()
    (big / "model.safetensors").write_bytes(_safetensors(15000, 15000, 300 * KiB))
    (big / "train.out").write_bytes(b"ok\n")
    for name in ("model.safetensors", "train.out"):
        expected[f"arbitrary-gpu/{name}"] = (big / name).read_bytes()
    # A failed run: no weights, but its log comes back.
    failed = root / "lite" / "edtaonisl"
    failed.mkdir()
    (failed / "train.out").write_bytes(b"Traceback: out of memory\n")
    expected["lite/edtaonisl/train.out"] = (failed / "train.out").read_bytes()
    return expected


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_pack_splits_within_the_limits_and_unpack_restores_the_runs(tmp_path: Path) -> None:
    runs, out, restored = tmp_path / "zoo-runs", tmp_path / "out", tmp_path / "restored"
    expected = _make_runs(runs)
    max_bytes, max_files = 128 * KiB, 6
    status = pack_runs.main(
        ["pack", str(runs), str(out), "--max-bytes", "128KiB", "--max-files", str(max_files)]
    )
    assert status == 0
    delivered = list(out.iterdir())
    assert all(p.is_file() for p in delivered)  # flat: no folders
    assert len(delivered) <= max_files
    assert all(p.stat().st_size <= max_bytes for p in delivered)
    assert (out / "MANIFEST.json").is_file()
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert sorted(a["name"] for a in manifest["archives"]) == sorted(
        p.name for p in delivered if p.suffix == ".tar"
    )
    parts = [m["name"] for a in manifest["archives"] for m in a["members"] if ".part" in m["name"]]
    assert len(parts) >= 3 and all(p.startswith("arbitrary-gpu/model.safetensors") for p in parts)
    steps = {run["path"]: run["steps"] for run in manifest["runs"]}
    assert steps["arbitrary-gpu"] == "15000/15000" and steps["lite/edtaonisl"] is None

    assert pack_runs.main(["unpack", str(out), str(restored)]) == 0
    assert _tree(restored) == expected
    assert not [p for p in restored.rglob(".unpack-*")]
    # build.py package reads these paths: the layout is train's own.
    assert (restored / "standard" / "great-wave" / "model.safetensors").is_file()


def test_pack_only_the_profiles_asked_for(tmp_path: Path) -> None:
    runs, out = tmp_path / "zoo-runs", tmp_path / "out"
    _make_runs(runs)
    manifest = pack_runs.pack(runs, out, profiles=["lite"])
    assert {run["path"].split("/")[0] for run in manifest["runs"]} == {"lite"}
    assert len(list(out.iterdir())) == 2  # one archive and the manifest


def test_a_file_over_the_limit_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, out = tmp_path / "zoo-runs", tmp_path / "out"
    _make_runs(runs)
    argv = ["pack", str(runs), str(out), "--max-bytes", "128KiB", "--no-split"]
    assert pack_runs.main(argv) != 0
    error = capsys.readouterr().err
    assert "arbitrary-gpu/model.safetensors" in error and "cannot be delivered" in error
    assert not out.exists() or not list(out.iterdir())


def test_runs_too_big_for_the_file_count_are_an_error(tmp_path: Path) -> None:
    runs = tmp_path / "zoo-runs"
    _make_runs(runs)
    with pytest.raises(pack_runs.PackError, match="do not fit in 2 archives"):
        pack_runs.pack(runs, tmp_path / "out", max_bytes=128 * KiB, max_files=3)


def test_unpack_refuses_a_member_outside_the_runs(tmp_path: Path) -> None:
    out, restored = tmp_path / "out", tmp_path / "sub" / "restored"
    out.mkdir()
    data = b"evil\n"
    with tarfile.open(out / "runs-1.tar", "w") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    digest = pack_runs.sha256_file(out / "runs-1.tar")
    member_sha = pack_runs.hashlib.sha256(data).hexdigest()
    manifest = {
        "format": pack_runs.FORMAT,
        "runs": [],
        "files": {"x/model.safetensors": {"size": len(data), "sha256": member_sha}},
        "archives": [
            {
                "name": "runs-1.tar",
                "bytes": (out / "runs-1.tar").stat().st_size,
                "sha256": digest,
                "members": [
                    {
                        "name": "../evil",
                        "path": "x/model.safetensors",
                        "offset": 0,
                        "size": len(data),
                        "sha256": member_sha,
                    }
                ],
            }
        ],
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_runs.PackError, match=r"refusing member '\.\./evil'"):
        pack_runs.unpack(out, restored)
    assert not (tmp_path / "sub" / "evil").exists() and not (tmp_path / "evil").exists()
    # The same through the command line: a non-zero status.
    assert pack_runs.main(["unpack", str(out), str(restored)]) != 0


def test_runs_over_the_total_are_delivered_by_the_next_pack(tmp_path: Path) -> None:
    runs, restored = tmp_path / "zoo-runs", tmp_path / "restored"
    expected = _make_runs(runs)
    limits = {"max_bytes": 128 * KiB, "max_files": 8, "max_total": 400 * KiB}
    first = pack_runs.pack(runs, tmp_path / "out1", **limits)
    assert first["left"] and first["runs"]
    assert sum(p.stat().st_size for p in (tmp_path / "out1").iterdir()) <= 400 * KiB
    second = pack_runs.pack(runs, tmp_path / "out2", **limits)
    assert not second["left"]
    assert sorted(r["path"] for r in second["runs"]) == sorted(first["left"])
    nothing = pack_runs.pack(runs, tmp_path / "out3", **limits)
    assert not nothing["runs"] and not list((tmp_path / "out3").iterdir())
    for out in ("out1", "out2"):
        pack_runs.unpack(tmp_path / out, restored)
    assert _tree(restored) == expected
    # A retrained run is new again; --again delivers everything.
    (runs / "lite" / "great-wave" / "train.out").write_bytes(b"trained again\n")
    again = pack_runs.pack(runs, tmp_path / "out4", **limits)
    assert [r["path"] for r in again["runs"]] == ["lite/great-wave"]
    everything = pack_runs.pack(runs, tmp_path / "out5", again=True, **limits)
    assert len(everything["runs"]) + len(everything["left"]) == 8


def test_pack_refuses_a_folder_holding_a_pack(tmp_path: Path) -> None:
    runs, out = tmp_path / "zoo-runs", tmp_path / "out"
    _make_runs(runs)
    pack_runs.pack(runs, out)
    with pytest.raises(pack_runs.PackError, match="already holds a pack"):
        pack_runs.pack(runs, out, again=True)
