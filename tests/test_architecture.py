"""The package's shape: no import cycles between its modules, and light imports stay light."""

from __future__ import annotations

import ast
import json
import re
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


# The layers, lowest first (docs/architecture.md): a module may import its own layer and the
# ones below it, never one above. The longest matching prefix names a module's layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "restyle.errors", "restyle.options", "restyle.progress", "restyle.devices",
            "restyle.color", "restyle.imaging", "restyle.losses", "restyle.lbfgs", "restyle.vgg",
            "restyle.vgg_layers", "restyle.metrics", "restyle.postprocess",
            "restyle.postprocess_config", "restyle.onnx_export", "restyle.cpu_runtimes",
            "restyle.regions", "restyle.models", "restyle.zoo", "restyle.examples",
        ),
    ),
    ("engines", ("restyle.engines",)),
    ("library", ("restyle", "restyle.api")),
    ("video", ("restyle.video",)),
    ("training", ("restyle.training",)),
    ("service", ("restyle.service",)),
    ("cli", ("restyle.cli", "restyle.__main__")),
)  # fmt: skip


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports({"restyle.engines.x": {"restyle.video.config"}}) == [
        "restyle.engines.x (engines) imports restyle.video.config (video)"
    ]
    assert upward_imports({"restyle.cli.x": {"restyle.api", "restyle.imaging.decode"}}) == []
    arrows = upward_imports(import_graph())
    assert not arrows, "imports from a lower layer to a higher one:\n" + "\n".join(arrows)


def private_imports(root: Path = ROOT, package: str = PACKAGE) -> list[str]:
    """`from a.b import _name` where the importer is not in package `a` (the module's own
    package): a private name is its package's business."""
    found = []
    for name, path in _module_files(root, package).items():
        importer = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if not node.module.startswith(package):
                continue
            owner = node.module.rpartition(".")[0] or node.module
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and not (importer == owner or importer.startswith(owner + ".")):
                    found.append(f"{name} imports {node.module}.{alias.name}")
    return sorted(found)


def test_no_private_name_is_imported_from_another_package(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a/__init__.py": "",
        "pkg/a/x.py": "_secret = 1\n",
        "pkg/a/y.py": "from pkg.a.x import _secret\n",  # the same package: its business
        "pkg/b.py": "from pkg.a.x import _secret, __doc__\n",  # another package: refused
    }
    for file, text in files.items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(text)
    assert private_imports(tmp_path, "pkg") == ["pkg.b imports pkg.a.x._secret"]
    found = private_imports()
    assert not found, "private names imported across packages:\n" + "\n".join(found)


ENGINE_NAMES = ("gatys", "fast", "arbitrary")
_NAME_LITERAL = "|".join(ENGINE_NAMES)
_JS_NAME_BRANCH = re.compile(
    rf"""(===|!==|==|!=)\s*["']({_NAME_LITERAL})["']|["']({_NAME_LITERAL})["']\s*(===|!==|==|!=)"""
    rf"""|includes\(\s*["']({_NAME_LITERAL})["']\s*\)"""
)


def engine_name_branches(path: Path) -> list[int]:
    """Lines of a Python module that compare something with an engine's name, or pick an
    engine from the registry by a written name."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        constants: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            constants = [node.left, *node.comparators]
            constants += [
                e
                for c in node.comparators
                if isinstance(c, ast.Tuple | ast.List | ast.Set)
                for e in c.elts
            ]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            constants = [node.slice] if node.value.id == "ENGINES" else []
        if any(isinstance(c, ast.Constant) and c.value in ENGINE_NAMES for c in constants):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_behaviour_is_chosen_by_capability_not_by_an_engines_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'if method == "gatys": pass\n'
        'x = spec.name != "fast"\n'
        'y = ENGINES["arbitrary"]\n'
        'z = m in ("fast", "arbitrary")\n'
        'ok = spec.steps and {"gatys": 1}\n'
    )
    assert engine_name_branches(sample) == [1, 2, 3, 4]
    assert _JS_NAME_BRANCH.search('if (m === "arbitrary")') is not None
    assert _JS_NAME_BRANCH.search('methods.includes("gatys")') is not None
    assert _JS_NAME_BRANCH.search("caps.refine_source") is None
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if "engines" not in path.relative_to(ROOT / PACKAGE).parts
        for line in engine_name_branches(path)
    ]
    for script in sorted((ROOT / PACKAGE / "service" / "static").rglob("*.js")):
        for number, text in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
            if _JS_NAME_BRANCH.search(text):
                found.append(f"{script.relative_to(ROOT)}:{number}")
    assert not found, "engine names compared outside engines/ (ask a capability):\n" + "\n".join(
        found
    )


MAX_MODULE_LINES = 400


def test_no_module_is_over_the_size_limit() -> None:
    sources = [
        *(ROOT / PACKAGE).rglob("*.py"),
        *(ROOT / PACKAGE / "service" / "static").rglob("*.js"),
    ]
    assert len(sources) > 50
    too_long = sorted(
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in sources
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    )
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


MAX_INTERFACE_METHODS = 12


def test_no_interface_has_more_than_a_dozen_methods() -> None:
    """An abstract class (abc.ABC or a Protocol) of the package declares at most a dozen
    methods: a bigger one is several interfaces in one."""
    too_big = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(base) for base in node.bases}
            if not bases & {"abc.ABC", "ABC", "Protocol", "typing.Protocol"}:
                continue
            methods = [
                n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            if len(methods) > MAX_INTERFACE_METHODS:
                too_big.append(f"{path.relative_to(ROOT)}: {node.name} has {len(methods)}")
    assert not too_big, "interfaces over a dozen methods:\n" + "\n".join(too_big)
