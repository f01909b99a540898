"""The architecture holds: imports point down the layers (docs/architecture.md), no import
cycles between modules, and reading a raw or developing classically imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "isplab"

#: the layers, bottom first; a unit may import its own layer and those below only
LAYERS = [
    {"errors", "formats", "registry", "checks", "sharding", "io", "weights_index", "__init__"},
    {"raw"},
    {"classic"},
    {"models", "synth", "metrics", "losses", "backbones", "sample"},
    {"data"},
    {"train", "infer", "evaluate", "report"},
    {"enhance"},
    {"commands", "cli", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, top_level_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names]
    return [m for m in found if m == "isplab" or m.startswith("isplab.")]


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in _files()}
    assert units <= set(LAYER), f"units without a layer: {sorted(units - set(LAYER))}"


def test_imports_point_down_the_layers():
    upward = []
    for path in _files():
        src = _unit(_module_name(path))
        for target in _imports(path):
            dst = _unit(target)
            if dst in LAYER and LAYER[dst] > LAYER[src]:
                upward.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not upward, "\n".join(sorted(set(upward)))


def test_no_import_cycles_between_modules():
    modules = {_module_name(p): p for p in _files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target in _imports(path, top_level_only=True):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)  # a package importing its own submodules is no cycle
        graph[name] = deps
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_modules_and_functions_stay_small():
    """No module over 600 lines and no function over 80 (docs/architecture.md): a unit a
    newcomer can read in one sitting."""
    too_long = []
    for path in _files():
        text = path.read_text()
        if text.count("\n") > 600:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n}")
    assert not too_long, "split these: " + "; ".join(too_long)


def test_reading_a_raw_imports_no_torch(tmp_path):
    code = ("import sys, numpy as np; from isplab.raw import read; "
            "np.save(sys.argv[1], np.full((8, 8), 0.5, np.float32)); "
            "r = read(sys.argv[1], white_level=1.0); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npy")], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


#: run in a fresh interpreter: `isplab develop` through the console entry point, then the
#: import set of the process
_DEVELOP_CODE = """
import sys
from isplab.cli import main
sys.argv = ["isplab", "develop", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in (
    "torch", "kornia", "torchvision",  # the model zoo's
    "typer", "click", "pydantic", "pydantic_core", "rich")  # the CLI's (rawpy.imread imports
    # multiprocessing itself: concurrent.futures.process is the process pool)
    or m.startswith(("isplab.models", "isplab.infer", "isplab.classic.pipeline",
                     "isplab.commands.develop", "concurrent.futures.process")))
assert not heavy, heavy
"""


def test_classic_develop_imports_no_torch(tmp_path):
    """``isplab develop --isp classic`` with the options of the 16-bit path (camera, user or
    no white balance, tone, gamma, brightness, 8/16 bits, orientation, a profile's 3x3) runs
    without torch, kornia or the model zoo, and (``-q``, one file, all well) without typer,
    click, pydantic, rich or a process pool (issue 19: start-up time; the console script's
    quick parser, isplab.commands._develop)."""
    import numpy as np

    from isplab.raw import RawImage, write_dng

    rng = np.random.default_rng(0)
    raw = RawImage(rng.random((64, 96), dtype=np.float32), cfa="GRBG", wb_gains=(2.0, 1.0, 1.5),
                   white_level=4095, black_level=(64,) * 4, bit_depth=12, orientation=6)
    dng = write_dng(tmp_path / "small.dng", raw)
    out = tmp_path / "out"
    for options in ([], ["--output-bps", "16", "--format", "tiff", "--tone", "filmic",
                         "--gamma", "bt709", "--bright", "1.3", "--wb", "1.8,1,1.4"],
                    ["--wb", "none", "--no-auto-bright", "--tone", "smoothstep", "--overwrite"]):
        res = subprocess.run([sys.executable, "-c", _DEVELOP_CODE, str(dng), "-o", str(out),
                              "-q", *options], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["small.png", "small.tiff"]


def test_no_package_name_is_both_a_submodule_and_a_function():
    """A package attribute ``f`` (a function) is lost when a submodule also named ``f`` is
    first imported later (the import binds the module over it): isplab.synth's ``degrade``
    and isplab.classic's lazily exported ``demosaic``/``denoise`` were shadowed this way."""
    clashes = []
    for init in PACKAGE.rglob("__init__.py"):
        subs = {p.stem for p in init.parent.glob("*.py")} | {
            p.name for p in init.parent.iterdir() if (p / "__init__.py").is_file()}
        tree = ast.parse(init.read_text())
        exported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                exported |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                exported.add(node.value)  # names listed in __all__ / lazy export tables
        for name in sorted(exported & subs - {"__init__"}):
            module = f"{_module_name(init)}.{name}"
            # safe: ``from pkg.f import f`` at import time (the submodule is loaded first and
            # the function bound over it for good); unsafe: ``f`` from another module, or
            # lazily (PEP 562), while the submodule ``f`` may be imported later
            from_elsewhere = any(
                isinstance(n, ast.ImportFrom) and n.module not in (None, module)
                and any((a.asname or a.name) == name for a in n.names) for n in tree.body)
            if from_elsewhere or name in _lazy_names(tree):
                clashes.append(module)
    assert not clashes, f"rename these submodules (a function has their name): {clashes}"


def _lazy_names(tree: ast.Module) -> set[str]:
    """Names in a PEP 562 export table ``_EXPORTS = {module: (name, ...)}``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            for value in getattr(node.value, "values", []):
                names |= {e.value for e in getattr(value, "elts", [])
                          if isinstance(e, ast.Constant)}
    return names
