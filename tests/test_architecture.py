"""The package's imports run one way: the graph of ``tinyres/`` has no circle, and no module
imports from a layer above its own (docs/architecture.md draws the layers).

Every import counts, at the top of a module or inside a function: a lazy import that runs
upwards is still a dependency, only a hidden one.
"""
import ast
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

import tinyres

PACKAGE = pathlib.Path(tinyres.__file__).parent

# Low to high.  A module belongs to the first layer with a prefix of its name; a module may
# import from its own layer (without circles) and from the layers below.
LAYERS = [
    ("base", ["tinyres.errors", "tinyres.version"]),
    ("backend", ["tinyres.core.backend"]),
    ("kernels", ["tinyres.kernels"]),
    ("core", ["tinyres.core"]),
    ("services", ["tinyres.testing", "tinyres.pth", "tinyres.safetensors_io", "tinyres.serialization",
                  "tinyres.collectives", "tinyres.cuda"]),
    ("nn", ["tinyres.nn"]),
    ("library", ["tinyres.data", "tinyres.utils.data", "tinyres.vision", "tinyres.onnx", "tinyres.optim", "tinyres.models", "tinyres.torch_weights"]),
    ("parallel", ["tinyres.parallel"]),
    ("facades", ["tinyres.autograd", "tinyres.distributed", "tinyres.utils", "tinyres.backends", "tinyres.linalg"]),
    ("app", ["tinyres.app"]),
    ("root", ["tinyres.__main__", "tinyres.cli"]),
]
ROOT = "tinyres"      # tinyres/__init__.py, the top: by its exact name (as a prefix it would hold every module)

# Inside the core the order is strict too: a core module imports only the core modules before it.
CORE_ORDER = ["tinyres.core.backend", "tinyres.core.grad_mode", "tinyres.core.hooks", "tinyres.core.tensor",
              "tinyres.core.engine", "tinyres.core.ops", "tinyres.core.composite", "tinyres.core.linalg"]


def layer_of(module):
    if module == ROOT:
        return len(LAYERS) - 1
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it where it belongs")


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """The tinyres modules the file ``path`` imports."""
    return imports_in(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def imports_in(source, module, is_package=False):
    """The tinyres modules ``source``, the text of ``module``, imports anywhere in it (``from
    .x import y`` names module x.y when that is a module, else x)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tinyres"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "tinyres":
                target = node.module
            else:
                continue
            target = ALIASES.get(target, target)
            for alias in node.names:
                sub = ALIASES.get(f"{target}.{alias.name}", f"{target}.{alias.name}")
                found.add(sub if sub in MODULES else target)
    return {ALIASES.get(t, t) for t in found} - {module}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
# the old names (tinyres.train, tinyres.exercises.catalog, ...): an import by one is an import
# of the module it names, so it counts where that module sits
ALIASES = {name: m.__name__ for name, m in list(sys.modules.items())
           if name.startswith("tinyres.") and getattr(m, "__name__", name) != name and m.__name__ in MODULES}
GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    """Each module is named in LAYERS (by itself or a package above it below the root)."""
    for module in sorted(MODULES):
        layer_of(module)
    with pytest.raises(AssertionError, match="tinyres.newcomer is in no layer"):
        layer_of("tinyres.newcomer")


def upward_imports(module, targets):
    """The tinyres modules of ``targets`` that sit in a higher layer than ``module``."""
    return sorted(t for t in targets if t in MODULES and layer_of(t) > layer_of(module))


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_runs_up_a_layer(module):
    upward = upward_imports(module, GRAPH[module])
    assert not upward, (f"{module} (layer {LAYERS[layer_of(module)][0]}) imports from higher layers: "
                        + ", ".join(f"{t} ({LAYERS[layer_of(t)][0]})" for t in upward))


def find_cycle(graph):
    """One circle of ``graph`` as a list of modules, or None (an iterative depth-first search)."""
    state = {}
    for start in sorted(graph):
        if start in state:
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        state[start] = "open"
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c in graph), None)
            if child is None:
                state[node] = "done"
                stack.pop()
                path.pop()
            elif state.get(child) == "open":
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = "open"
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_no_circles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_can_fail():
    """The two checks above report what they are built to find."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("tinyres.core.tensor") > layer_of("tinyres.core.backend")
    assert layer_of("tinyres.nn.layers") > layer_of("tinyres.core.ops")


PLANTED = """
import numpy
import tinyres.core.backend as b
from tinyres.data import loader
from . import grad_mode
from .ops import add
from .. import errors
from ..kernels.im2col import im2col

def relu(x):
    from ..nn import functional        # inside a function: still an import
    return functional.relu(x)
"""


def test_the_parser_finds_every_kind_of_import():
    assert imports_in(PLANTED, "tinyres.core.tensor") == {
        "tinyres.core.backend", "tinyres.data.loader", "tinyres.core.grad_mode", "tinyres.core.ops",
        "tinyres.errors", "tinyres.kernels.im2col", "tinyres.nn.functional"}
    # in a package's __init__.py, "." is the package itself
    assert imports_in("from . import layers\nfrom .functional import conv", "tinyres.nn", is_package=True) == {
        "tinyres.nn.layers", "tinyres.nn.functional.conv"}
    assert imports_in("import tinyres\nfrom .. import nn", "tinyres.app.cli") == {"tinyres", "tinyres.nn"}


def test_an_import_by_an_old_name_counts_where_its_module_sits():
    targets = imports_in("from tinyres.train import Trainer\nimport tinyres.exercises.catalog\n"
                         "from tinyres import sanity", "tinyres.core.ops")
    assert targets == {"tinyres.app.train", "tinyres.app.exercises.catalog", "tinyres.app.sanity"}
    assert upward_imports("tinyres.core.ops", targets) == sorted(targets)


def test_a_planted_upward_import_and_a_planted_circle_are_found():
    targets = imports_in(PLANTED, "tinyres.core.tensor")
    assert upward_imports("tinyres.core.tensor", targets) == ["tinyres.data.loader", "tinyres.nn.functional"]
    graph = {m: set(t) for m, t in GRAPH.items()}
    graph["tinyres.core.tensor"] = targets
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "tinyres.core.tensor" in cycle
    planted = {"tinyres.core.tensor": imports_in("from .engine import Function", "tinyres.core.tensor"),
               "tinyres.core.engine": imports_in("from .tensor import Tensor", "tinyres.core.engine")}
    assert find_cycle(planted) == ["tinyres.core.engine", "tinyres.core.tensor", "tinyres.core.engine"]


def test_only_the_core_defines_tensor_methods():
    """tensor.py imports nothing above the backend and grad mode: ops and the engine install the rest."""
    assert GRAPH["tinyres.core.tensor"] <= {"tinyres.core.backend", "tinyres.core.grad_mode", "tinyres.errors"}


def test_the_core_imports_in_its_order():
    """backend < grad_mode < hooks < tensor < engine < ops < composite < linalg: each imports only those before it."""
    core = sorted(m for m in MODULES if m.startswith("tinyres.core."))
    assert sorted(CORE_ORDER) == core, "a new core module: give it its place in CORE_ORDER"
    for rank, module in enumerate(CORE_ORDER):
        later = sorted(t for t in GRAPH[module] if t in CORE_ORDER[rank:])
        assert not later, f"{module} imports {later}, which come after it in the core"


# ---------------------------------------------------------------------- the old import paths

OLD_NAMES = [   # (old path, new path): the same object under both
    *[(f"tinyres.backend.{name}", f"tinyres.kernels.threads.{name}")
      for name in ("parallel_for", "parallel_map", "parallel_matmul", "workspace", "empty_workspace",
                   "set_num_threads", "get_num_threads", "BLOCK")],
    ("tinyres.backend.get_array_module", "tinyres.core.backend.get_array_module"),
    ("tinyres.nn.functional.reference.Conv2dReference", "tinyres.testing.reference.Conv2dReference"),
    ("tinyres.nn.functional.reference.conv2d_loop", "tinyres.kernels.reference.conv2d_loop"),
    ("tinyres.nn.functional.reference.pool2d_loop", "tinyres.kernels.reference.pool2d_loop"),
    ("tinyres.cli.main", "tinyres.app.cli.main"),
    ("tinyres.tensor.Tensor", "tinyres.core.tensor.Tensor"),
    ("tinyres.ops.add", "tinyres.core.ops.add"),
    ("tinyres.train.Trainer", "tinyres.app.train.Trainer"),
    ("tinyres.recipes.build_model", "tinyres.app.recipes.build_model"),
    ("tinyres.checks.CASES", "tinyres.app.checks.CASES"),
    ("tinyres.viz.graph", "tinyres.app.viz.graph"),
    ("tinyres.sanity.lr_range_test", "tinyres.app.sanity.lr_range_test"),
    *[(f"tinyres.exercises.{module}.{name}", f"tinyres.app.exercises.{module}.{name}")
      for module, name in (("catalog", "EXERCISES"), ("checker", "load_solution"), ("reference", "im2col"),
                           ("cli", "add_parser"))],
]


def resolve(path):
    """``from a.b import c`` for the path a.b.c: the object, imported as a user's code would."""
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old, new", OLD_NAMES, ids=[old for old, _ in OLD_NAMES])
def test_an_old_import_path_gives_the_new_object(old, new):
    assert resolve(old) is resolve(new)


def test_the_old_modules_are_the_new_ones():
    import tinyres.backend
    import tinyres.cli
    assert tinyres.backend is tinyres.core.backend and tinyres.cli is tinyres.app.cli


def test_python_m_tinyres_cli_is_the_command():
    for command in (["-m", "tinyres.cli", "--help"], ["-m", "tinyres", "--help"]):
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60,
                                cwd=PACKAGE.parent)
        assert result.returncode == 0 and result.stdout.startswith("usage: tinyres"), result.stdout + result.stderr


# ---------------------------------------------------------------------- docs/architecture.md

def table_rows():
    """{layer: the backticked names in its "what" cell} of docs/architecture.md's layer table."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 and cells[0] in dict(LAYERS):
            rows[cells[0]] = {name.removeprefix("tinyres/") for name in re.findall(r"`([^`]+)`", cells[1])}
    return rows


def doc_names(module):
    """How the table may name ``module``: its path below tinyres/, its file's name alone (the
    folder said before it), or a folder above it -- tinyres.core.ops is core/ops.py, ops.py or core/."""
    parts = module.split(".")[1:]
    if (PACKAGE.joinpath(*parts) / "__init__.py").is_file():
        parts.append("__init__.py")
    else:
        parts[-1] += ".py"
    folders = {"/".join(parts[:i]) + "/" for i in range(1, len(parts))}
    return folders | {"/".join(parts)} | ({parts[-1]} - {"__init__.py"})


def test_the_layer_table_of_architecture_md_names_every_module_in_its_layer():
    rows = table_rows()
    assert list(rows) == [name for name, _ in LAYERS], "docs/architecture.md's table: one row per layer, in order"
    missing = sorted(f"{m} ({LAYERS[layer_of(m)][0]})" for m in MODULES
                     if not doc_names(m) & rows[LAYERS[layer_of(m)][0]])
    assert not missing, "docs/architecture.md's layer table does not name: " + ", ".join(missing)
