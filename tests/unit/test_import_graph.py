"""The shape of src/, read from the source with ast (nothing is imported): no import cycle between modules, the
packages' dependencies point one way, and the framework-free modules never load MindSpore when imported."""
import ast
import functools
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"

# Must import without MindSpore: the protocol (scoring, metrics, images), the ONNX path (eval_onnx.py runs
# where MindSpore is not installed), and what eval.py/test.py check before reading the checkpoint (a refused
# path or output costs no MindSpore start-up).
FRAMEWORK_FREE = sorted(f"src.protocol.{p.stem}" for p in (SRC / "protocol").glob("*.py") if p.stem != "__init__") \
    + ["src.infer.base", "src.infer.onnx_backend"] \
    + ["src.model.arch", "src.model.checkpoint", "src.infer.evaluate", "src.infer.upscale"]


def _module_name(path):
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(node, module_level):
    """Modules named by the import statements under ``node``: with ``module_level``, only those run when the
    module is imported (top level, and inside top-level if/try blocks), not those inside functions."""
    names = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Import):
            names += [alias.name for alias in current.names]
        elif isinstance(current, ast.ImportFrom) and current.module and not current.level:
            names.append(current.module)
            names += [f"{current.module}.{alias.name}" for alias in current.names]  # from package import module
        if module_level and isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if module_level and isinstance(current, ast.ClassDef):
            stack += current.body  # a class body runs at import; its methods are skipped above
            continue
        stack += ast.iter_child_nodes(current)
    return names


@functools.lru_cache(maxsize=None)  # parsed once for all the tests (treat the result as read-only)
def _graph(module_level):
    """{module: set of src modules it imports} (and every external top-level package in '<ext>' entries)."""
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        imported = _imports(tree, module_level)
        graph[name] = {i for i in imported if i in MODULES and i != name}
        graph[name] |= {f"<ext>{i.split('.')[0]}" for i in imported if not i.startswith("src")}
    return graph


def _parents(module):
    """Packages whose __init__ runs before ``module``: importing src.a.b runs src and src.a first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]


def _closure(graph, start):
    seen, stack = set(), [start]
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        if module in graph:
            stack += list(graph[module]) + _parents(module)
    return seen


def _cycles(graph):
    """Each import cycle once, as [a, b, ..., a]."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if other.startswith("<ext>"):
                continue
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return found


def test_the_graph_sees_the_imports():
    # the parser is tested on known edges, so an empty graph cannot pass the tests below
    graph = _graph(module_level=True)
    assert "src.protocol.matlab_functions" in graph["src.protocol.degradation"]
    assert "<ext>numpy" in graph["src.protocol.metrics"]
    assert "src.model_utils.config" not in graph["src.model_utils.config"]
    assert len(MODULES) > 40


def test_no_import_cycle_at_module_level():
    assert _cycles(_graph(module_level=True)) == []


def test_no_import_cycle_counting_imports_inside_functions():
    """An import inside a function only defers a cycle; the layout has none at all."""
    assert _cycles(_graph(module_level=False)) == []


def _package(module):
    """The package a module belongs to for the layering: src/<package>/ (src/model/cpu/ counts as src/model)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_packages_depend_one_way():
    edges = {}
    for module, imported in _graph(module_level=False).items():
        for other in imported:
            if not other.startswith("<ext>") and _package(module) and _package(other) \
                    and _package(module) != _package(other):
                edges.setdefault(_package(module), set()).add(_package(other))
    assert not _cycles(edges), edges
    # the bottom of the stack: utils imports no other package, protocol only utils
    assert edges.get("utils", set()) == set()
    assert edges.get("protocol", set()) <= {"utils"}


@pytest.mark.parametrize("module", FRAMEWORK_FREE)
def test_framework_free_modules_never_load_mindspore(module):
    loaded = _closure(_graph(module_level=True), module)
    heavy = sorted(name[5:] for name in loaded if name.startswith("<ext>") and name[5:] in ("mindspore", "torch"))
    assert heavy == [], f"importing {module} loads {heavy} through " \
                        f"{sorted(m for m in loaded if not m.startswith('<ext>'))}"


def test_framework_free_list_is_not_empty():
    assert len(FRAMEWORK_FREE) >= 8 and all(Path(MODULES[m]).is_file() for m in FRAMEWORK_FREE)
