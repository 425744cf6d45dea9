"""The layers, checked on the source: no import cycles between modules and no import against the layering.

    engine    keystroke → candidates, the model runtime, the store: imports none of the others
    trainer   corpus, training, evaluation, jobs: imports engine
    ime_app   the Qt app, the CLI, the IBus engine: imports engine and trainer
    assets    the scripts that build what ships: import engine and trainer
    benchmarks: import engine, trainer and ime_app (never assets: build scripts and benchmarks share code
              through trainer)

Inside engine, the sub-packages are layers too (``engine/__init__.py`` says what each holds), lowest first:

    engine.pinyin, engine.lexicon, engine.candidate  →  engine.store  →  engine.runtime  →  engine.lm
    →  engine.ime  →  engine.personal

Every import counts, also one inside a function (a lazy import still ties the modules together); for the
layers, so does starting another layer's module as a program (``-m ime_app.cli`` from trainer).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "trainer", "ime_app", "assets", "benchmarks")
MAY_IMPORT = {
    "engine": set(),
    "trainer": {"engine"},
    "ime_app": {"engine", "trainer"},
    "assets": {"engine", "trainer"},
    "benchmarks": {"engine", "trainer", "ime_app"},
}

ENGINE_LAYERS = ("engine", "engine.store", "engine.runtime", "engine.lm", "engine.ime", "engine.personal")


def engine_layer(module: str) -> int:
    """The engine layer of an engine module: its sub-package's place in ``ENGINE_LAYERS`` (0: the modules
    directly in engine)."""
    parts = module.split(".")
    sub = ".".join(parts[:2]) if len(parts) > 2 or module in ENGINE_LAYERS else "engine"
    return ENGINE_LAYERS.index(sub) if sub in ENGINE_LAYERS else 0


def import_graph(root: Path, packages=PACKAGES, launches: bool = True) -> dict[str, set[str]]:
    """module → the project modules it imports (anywhere in it) and, with ``launches``, those it starts as a
    program (``-m`` and a module name)."""
    modules = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif launches and isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                    and node.value.split(".")[0] in packages and " " not in node.value:
                targets = [node.value]  # a module name as a string: "-m", "ime_app.cli"
            for t in targets:
                while t and t not in modules:  # ``from engine import store``: the module engine.store
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def against_layers(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, deps in sorted(graph.items()):
        layer = module.split(".")[0]
        for dep in sorted(deps):
            other = dep.split(".")[0]
            if other != layer and other not in MAY_IMPORT[layer]:
                bad.append(f"{module} → {dep}")
            elif layer == other == "engine" and engine_layer(dep) > engine_layer(module):
                bad.append(f"{module} → {dep}")
    return bad


def private_imports(root: Path, packages=PACKAGES) -> list[str]:
    """``from engine.x import _name`` between the project's modules: a private name used outside its module."""
    bad = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
                    bad += [f"{path.relative_to(root)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    return bad


def test_the_project_has_no_import_cycles_and_keeps_its_layers():
    imports = import_graph(REPO, launches=False)
    assert "engine.runtime.onnx_backend" in imports["engine.ime.converter"]  # lazy imports count
    assert cycles(imports) == []
    assert against_layers(import_graph(REPO)) == []
    assert private_imports(REPO) == []


def test_the_check_finds_a_new_cycle_and_a_layer_broken(tmp_path):
    for pkg, files in {"engine": {"a.py": "from engine import b\n",
                                  "b.py": "def f():\n    from engine.a import x\n",
                                  "c.py": "import trainer.t\n"},
                       "trainer": {"t.py": "ARGV = ['-m', 'ime_app.cli']\n"},
                       "ime_app": {"cli.py": ""}}.items():
        (tmp_path / pkg).mkdir()
        for name, text in files.items():
            (tmp_path / pkg / name).write_text(text)
    graph = import_graph(tmp_path, ("engine", "trainer", "ime_app"))
    assert cycles(import_graph(tmp_path, ("engine", "trainer", "ime_app"), launches=False)) == [
        ["engine.a", "engine.b"]]  # the lazy import inside f() closes it
    assert against_layers(graph) == ["engine.c → trainer.t", "trainer.t → ime_app.cli"]


def test_the_check_finds_an_engine_layer_broken(tmp_path):
    """Inside engine: the runtime may read the store, never the IME pipeline above it (a lazy import too)."""
    for path, text in {"engine/__init__.py": "", "engine/pinyin.py": "",
                       "engine/store/__init__.py": "", "engine/store/commits.py": "from engine import pinyin\n",
                       "engine/runtime/__init__.py": "",
                       "engine/runtime/decoder.py": "from engine.store import commits\n"
                                                    "def f():\n    from engine.ime import pipeline\n",
                       "engine/ime/__init__.py": "", "engine/ime/pipeline.py": "from engine.runtime import decoder\n",
                       "engine/personal/__init__.py": "", "engine/personal/loading.py": "import engine.ime.pipeline\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    graph = import_graph(tmp_path, ("engine",))
    assert against_layers(graph) == ["engine.runtime.decoder → engine.ime",  # the package, then its module
                                     "engine.runtime.decoder → engine.ime.pipeline"]
    assert engine_layer("engine.pinyin") == 0 and engine_layer("engine.store") == 1
    assert engine_layer("engine.personal.loading") == 5
