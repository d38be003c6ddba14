"""The package's imports run one way: the graph of ``tinyres/`` has no circle, and no module
imports from a layer above its own (docs/architecture.md draws the layers).

Every import counts, at the top of a module or inside a function: a lazy import that runs
upwards is still a dependency, only a hidden one.
"""
import ast
import pathlib

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
    ("facades", ["tinyres.autograd", "tinyres.distributed", "tinyres.utils", "tinyres.backends"]),
    ("app", ["tinyres.app"]),
    ("root", ["tinyres.__main__", "tinyres"]),
]


def layer_of(module):
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it where it belongs")


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """The tinyres modules ``path`` imports (``from .x import y`` names module x.y when that is a module)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found - {module}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_runs_up_a_layer(module):
    upward = sorted(t for t in GRAPH[module] if t in MODULES and layer_of(t) > layer_of(module))
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


def test_only_the_core_defines_tensor_methods():
    """tensor.py imports nothing above the backend and grad mode: ops and the engine install the rest."""
    assert GRAPH["tinyres.core.tensor"] <= {"tinyres.core.backend", "tinyres.core.grad_mode", "tinyres.errors"}
