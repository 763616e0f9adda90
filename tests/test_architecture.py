"""The package's shape: no import cycles between its modules, and light imports stay light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "restyle"


def _module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package by dotted name; a package is its `__init__`."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _imports(name: str, modules: dict[str, Path], root: Path) -> set[str]:
    """The package's modules that module `name` imports, anywhere in it (functions included).

    `from a.b import c` counts as importing `a.b.c` when that is a module, else `a.b`; a
    relative import is resolved against the module's package. Importing `a.b.c` also runs
    `a` and `a.b`, but those are not edges here: a cycle needs a module that imports back.
    """
    tree = ast.parse(modules[name].read_text(encoding="utf-8"), filename=str(modules[name]))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    top = name.partition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # The deepest module the dotted name reaches (an attribute path stops at its module).
        while target and target not in modules:
            if (root / target.replace(".", "/")).is_dir():
                return  # a namespace package (no __init__): importing it runs no code
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source != top and not source.startswith(top + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                add(submodule if submodule in modules else source)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module → the package's modules it imports (see `_imports`)."""
    modules = _module_files(root, package)
    return {name: _imports(name, modules, root) for name in modules}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a → ... → a) per strongly connected component with one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:  # Tarjan's algorithm; the graph is small
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(component, graph) for component in components]


def _cycle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start} in {component}")


def test_the_import_graph_is_read_correctly(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.api import run\n",
        "pkg/api.py": "import os\nfrom pkg import sub\nfrom pkg.sub.deep import thing\n",
        "pkg/sub/__init__.py": "from . import deep\nfrom .. import api as _api\n",
        "pkg/sub/deep.py": "def f():\n    import pkg.api\n    from ..api import run\n",
        "pkg/ns/leaf.py": "import pkg.ns\nfrom pkg.ns import leaf\nfrom pkg.sub.deep import f\n",
        "pkg/other.py": "import pkg.sub.deep.f\nimport pkgx\nfrom pkg import api, other\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_graph(tmp_path, "pkg") == {
        "pkg": {"pkg.api"},  # a package is its __init__
        "pkg.api": {"pkg.sub", "pkg.sub.deep"},  # `from pkg import sub`: the submodule
        "pkg.sub": {"pkg.sub.deep", "pkg.api"},  # relative imports, one and two levels up
        "pkg.sub.deep": {"pkg.api"},  # local imports inside a function count
        "pkg.ns.leaf": {"pkg.sub.deep"},  # a namespace package runs no code; self is no edge
        "pkg.other": {"pkg.sub.deep", "pkg.api"},  # an attribute path stops at its module
    }
    real = import_graph()
    assert "restyle" in real and "restyle.engines.gatys_config" in real["restyle.engines.gatys"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_the_package() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


HEAVY = ("restyle.training", "restyle.service", "fastapi", "onnx")


def test_the_library_imports_no_training_service_or_export_code() -> None:
    """`import restyle` and its front door load no training, service, web or ONNX-export code."""
    script = (
        "import json, sys\n"
        "import restyle, restyle.api\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
        "for h in heavy))\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


VIDEO_CODE = ("av", "cv2")


def test_the_api_process_loads_no_video_code_until_a_video_arrives() -> None:
    """The service, its app and the video options' declarations (which the API's form and
    /api/engines read) load neither PyAV nor OpenCV: a photo-only server never pays for them."""
    script = (
        "import json, sys\n"
        "import restyle.video, restyle.video.config, restyle.cli.options_doc\n"
        "from restyle.service.app import create_app\n"
        "from restyle.service import requests, runner\n"
        f"video = {VIDEO_CODE!r}\n"
        "loaded = sorted(m for m in sys.modules if any(m == v or m.startswith(v + '.') "
        "for v in video))\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_command_lines_parser_loads_no_pytorch() -> None:
    """`restyle --help`, argument errors and the parser's flags (generated from the option
    declarations) need no PyTorch, PyAV or OpenCV: they answer in a tenth of a second rather
    than the seconds PyTorch takes to import. A photo's path is told from a video's without
    PyAV too."""
    script = (
        "import contextlib, io, json, sys\n"
        "from restyle.cli import main\n"
        "from restyle.cli.stylize import _is_video\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    with contextlib.suppress(SystemExit):\n"
        "        main(['stylize', '--help'])\n"
        "assert not _is_video('photo.jpg') and _is_video('clip.mp4')\n"
        "heavy = ('torch', 'av', 'cv2', 'numpy')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
