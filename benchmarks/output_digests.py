"""Digests of what users get from each engine, through the CLI and the service: a refactor check.

For each eval photo and each engine (fast: a zoo style; arbitrary: a zoo painting; gatys: the
same painting at a small size and few steps, seeded), `restyle stylize` writes a PNG and a real
`restyle serve` on loopback (embedded mode, a fresh data folder) answers `POST /api/stylize`
(fast, arbitrary) or runs a job (gatys); the sha256 of every output's bytes is recorded. Run it
before and after a change that should not change behaviour, on the same machine:

    python benchmarks/output_digests.py --out /tmp/before.json
    python benchmarks/output_digests.py --compare /tmp/before.json   # exit 1 on any difference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from restyle.examples import example_path

EVAL_PHOTOS = Path(__file__).parents[2] / "shared" / "data" / "eval" / "photos"
PAINTING = "the-scream"
CASES: dict[str, dict[str, str]] = {
    "fast": {"style": "starry-night", "size": "256"},
    "arbitrary": {"size": "256"},
    "gatys": {"size": "96", "iterations": "10", "seed": "0"},
}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cli_outputs(photos: list[Path], folder: Path) -> dict[str, str]:
    painting = str(example_path(PAINTING))
    results = {}
    for photo in photos:
        for method, fields in CASES.items():
            out = folder / f"{photo.stem}-{method}.png"
            style = fields.get("style", painting)
            flags = [f"--{k}" for k in fields if k != "style"]
            values = [fields[k] for k in fields if k != "style"]
            options = [item for pair in zip(flags, values, strict=True) for item in pair]
            command = [sys.executable, "-m", "restyle", "stylize", str(photo), "-s", style]
            command += ["--method", method, "-o", str(out), "--quiet", "--device", "cpu"]
            subprocess.run(command + options, check=True)
            results[f"cli/{photo.stem}/{method}"] = digest(out.read_bytes())
            print(f"cli {photo.stem} {method}", flush=True)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_outputs(photos: list[Path], folder: Path) -> dict[str, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTYLE_")}
    env["RESTYLE_DATA_DIR"] = str(folder / "data")
    log = (folder / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "restyle", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    results = {}
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("restyle serve did not become ready")
            time.sleep(0.3)
        painting = Path(str(example_path(PAINTING))).read_bytes()
        for photo in photos:
            for method, fields in CASES.items():
                data = {"method": method, "format": "png", **fields}
                files: dict[str, Any] = {"content": (photo.name, photo.read_bytes(), "image/jpeg")}
                if "style" not in fields:
                    files["style_image"] = ("painting.jpg", painting, "image/jpeg")
                if method == "gatys":
                    output = run_job(client, data, files)
                else:
                    response = client.post("/api/stylize", data=data, files=files)
                    response.raise_for_status()
                    output = response.content
                results[f"service/{photo.stem}/{method}"] = digest(output)
                print(f"service {photo.stem} {method}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return results


def run_job(client: httpx.Client, data: dict[str, str], files: dict[str, Any]) -> bytes:
    created = client.post("/api/jobs", data=data, files=files)
    created.raise_for_status()
    job = created.json()
    headers = {"Authorization": f"Bearer {job['token']}"}
    while True:
        status = client.get(f"/api/jobs/{job['id']}", headers=headers).json()
        if status["status"] == "succeeded":
            return client.get(f"/api/jobs/{job['id']}/result", headers=headers).content
        if status["status"] in ("failed", "cancelled", "expired"):
            raise RuntimeError(f"job {job['id']}: {status}")
        time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=2, help="how many eval photos")
    parser.add_argument("--out", type=Path, help="write the digests here")
    parser.add_argument("--compare", type=Path, help="digests to compare with")
    args = parser.parse_args()
    photos = sorted(EVAL_PHOTOS.glob("*.jpg"))[: args.photos]
    with tempfile.TemporaryDirectory() as folder:
        results = cli_outputs(photos, Path(folder))
        results.update(service_outputs(photos, Path(folder)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        changed = sorted(
            k for k in before.keys() | results.keys() if before.get(k) != results.get(k)
        )
        for key in changed:
            print(f"differs: {key}")
        print(f"{len(results) - len(changed)} of {len(results)} outputs identical")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
