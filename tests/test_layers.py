"""The package's imports point down its layers only, with no cycle: every ``import`` and
``from ... import`` of a gankit module, function-level ones included, is read with ``ast``
and checked against ``LAYERS``."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gankit"

# Bottom to top. A module may import modules of a lower layer, and modules of its own
# layer only inside the same top-level package (gankit.training.loop -> .step).
LAYERS = [
    ["version", "errors", "startup"],  # leaves (startup: Ctrl-C while importing)
    ["io", "seeds", "autodiff", "limits"],  # utilities
    ["losses"],  # pure: objectives, penalties, MMD, information and K+1 terms
    ["data"],  # datasets (registry)
    ["nets"],  # networks (registry) and heads
    ["rules"],  # which fields go together, from the registries' declared properties
    ["config"],  # the schema
    ["build", "generate"],  # config -> objects; sampling a generator
    ["training"],  # costs, state, step, tricks, loop, guard, distributed
    ["metrics"],
    ["plots"],
    ["callbacks"],  # hooks into a run: JSONL, TensorBoard
    ["evaluate"],
    ["sampling"],  # DRS / MH (pure) and their density-ratio fits
    ["adagan"],
    ["runs"],  # train (a GAN or an AdaGAN mixture), load_run
    ["report", "theory", "bench"],  # user-facing
    ["cli"],
    ["__main__", "__init__"],  # python -m gankit; the public API
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top(module: str) -> str:
    """The layer key of a gankit module: its first component below ``gankit``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def gankit_imports(source: str, module: str, modules: set[str], package: str) -> set[str]:
    """Every gankit module ``source`` (of ``module``, in ``package``) imports, wherever
    the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upward
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "gankit":
                continue
            for alias in node.names:  # `from gankit import io` imports gankit.io
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found - {module}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    return {m: gankit_imports(p.read_text(encoding="utf-8"), m, modules,
                              m if p.name == "__init__.py" else m.rpartition(".")[0])
            for m, p in files.items()}


def problems(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, same-layer imports across packages, unknown layers and cycles."""
    out = []
    for m, targets in sorted(graph.items()):
        if top(m) not in LAYER_OF:
            out.append(f"{m}: not in any layer of tests/test_layers.py")
            continue
        for t in sorted(targets):
            if top(t) not in LAYER_OF:
                continue  # reported as a module of its own
            a, b = LAYER_OF[top(m)], LAYER_OF[top(t)]
            if b > a or (b == a and top(m) != top(t)):
                out.append(f"{m} imports {t}: layer {b} ({top(t)}) is not below layer {a}")
    # cycles among modules (within a package too), by depth-first search
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                out.append("cycle: " + " -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return out


def test_imports_point_down_the_layers_with_no_cycle():
    assert problems(import_graph()) == []


def test_every_package_module_is_seen():
    graph = import_graph()
    assert {"gankit.training.loop", "gankit.losses.objectives", "gankit.cli"} <= set(graph)
    # function-level imports are read too (the walk covers every node)
    assert "gankit.training.step" in gankit_imports(
        "def f():\n    from gankit.training import step\n", "gankit.metrics.modes", set(graph),
        "gankit.metrics")


@pytest.mark.parametrize("module, line", [
    # an upward import at the top of a leaf
    ("gankit/losses/objectives.py", "from gankit.training.loop import train_loop\n"),
    # hidden inside a function, as the old package did 66 times
    ("gankit/nets/stacked.py", "def f():\n    from gankit.evaluate import finish\n"),
    # a cycle inside one package
    ("gankit/training/guard.py", "from gankit.training.loop import Run\n"),
    # a sibling of the same layer
    ("gankit/report.py", "from gankit.bench.modes import modes_table\n"),
])
def test_an_upward_or_circular_import_fails(tmp_path, module, line):
    import shutil

    copy = tmp_path / "gankit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module.removeprefix("gankit/")
    target.write_text(target.read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    found = problems(import_graph(copy))
    assert found, f"adding {line!r} to {module} was not caught"
