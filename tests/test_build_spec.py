"""build.spec stays valid, fast: the spec is executed with stand-ins for PyInstaller's build steps (Analysis,
PYZ, EXE, COLLECT, BUNDLE), so no PyInstaller and no minutes-long analysis are needed. It fails when a data
file or the entry script it names is missing, when the shipped ONNX graphs are stale (the bundle would have to
export at start), when it excludes or drops something the code imports or loads, or when it no longer makes
the two commands. With PyInstaller installed, the arguments are also checked against PyInstaller's own.
The installer scripts run against a fake bundle. The real build and its smoke test: scripts/build_installer,
scripts/smoke_installed (minutes; not part of this suite).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "build.spec"

# Files the bundle must keep (paths inside it), and files it must leave out.
MUST_KEEP = [
    "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libtorch_python.so", "torch/lib/libgomp.so.1",
    "torch/_C.cpython-311-x86_64-linux-gnu.so", "torch/nn/modules/linear.py", "torch/bin/torch_shm_manager",
    "torch/_inductor/config.py",  # its source is read when the optimizer imports torch._dynamo "torch/distributed/__init__.py",
    "onnxruntime/capi/onnxruntime_pybind11_state.so", "onnx/onnx_cpp2py_export.cpython-311-x86_64-linux-gnu.so",
    "PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/lib/libQt6Gui.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/Qt/lib/libQt6Test.so.6", "PySide6/Qt/lib/libQt6XcbQpa.so.6", "PySide6/Qt/lib/libQt6WaylandClient.so.6",
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/libqminimal.so",
    "PySide6/Qt/plugins/platforms/qwindows.dll", "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/Qt/plugins/imageformats/libqpng.so", "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
    "pypinyin/phrases_dict.json", "opencc/dictionary/TSCharacters.txt", "libxcb-icccm.so.4", "libxcb-keysyms.so.1",
]
MUST_DROP = [
    "torch/test/op_registration_test", "torch/bin/test_jit", "torch/bin/protoc", "torch/include/ATen/ATen.h",
    "torch/lib/libtorch_cpu.a", "torch/lib/libtorchbind_test.so", "torch/share/cmake/Torch/TorchConfig.cmake",
    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/qml/QtQuick/qmldir",
    "PySide6/Qt/plugins/imageformats/libqpdf.so", "PySide6/Qt/lib/libQt6Pdf.so.6", "PySide6/Qt/lib/libQt6Quick.so.6",
    "onnx/backend/test/data/node/test_abs/model.onnx",
]


class Built:
    """What the spec asked PyInstaller to do."""

    def __init__(self):
        self.analysis: dict = {}
        self.exes: list[dict] = []
        self.collect: dict = {}
        self.bundle: dict | None = None


def pyinstaller_checks():
    """PyInstaller's own argument names, when it is installed (else None: the stand-ins accept anything)."""
    try:
        from PyInstaller.building import api, build_main, osx
    except ImportError:
        return None
    exe_keys = set(re.findall(r"kwargs\.get\(\s*['\"](\w+)['\"]", inspect.getsource(api.EXE)))
    collect_keys = set(re.findall(r"kwargs\.get\(\s*['\"](\w+)['\"]", inspect.getsource(api.COLLECT)))
    bundle_keys = set(re.findall(r"kwargs\.get\(\s*['\"](\w+)['\"]", inspect.getsource(osx.BUNDLE)))
    return inspect.signature(build_main.Analysis.__init__), exe_keys, collect_keys, bundle_keys


def run_spec(tmp_path: Path, platform: str, monkeypatch, fake_binaries=()) -> tuple[Built, dict]:
    built, checks = Built(), pyinstaller_checks()

    class Analysis:
        def __init__(self, scripts, **kw):
            if checks:
                checks[0].bind(self, scripts, **kw)  # TypeError on an argument PyInstaller does not take
            built.analysis = dict(kw, scripts=scripts)
            self.scripts = [("pyi_rth_multiprocessing", "/hooks/pyi_rth_multiprocessing.py", "PYSOURCE")] + [
                (Path(s).stem, s, "PYSOURCE") for s in scripts]
            self.pure = [("engine.lexicon", str(REPO / "engine/lexicon.py"), "PYMODULE")]
            self.datas = [(f"{dest}/{Path(src).name}", src, "DATA") for src, dest in kw["datas"]]
            self.datas += [(p, f"/site/{p}", "DATA") for p in MUST_KEEP + MUST_DROP if not p.endswith((".so", ".so.6"))]
            self.binaries = [(p, f"/site/{p}", "BINARY") for p in MUST_KEEP + MUST_DROP if p.endswith((".so", ".so.6"))]
            self.binaries += list(fake_binaries)

    def PYZ(pure, *rest, **kw):  # noqa: N802
        return ("PYZ", len(pure))

    def EXE(pyz, scripts, *rest, **kw):  # noqa: N802
        if checks:
            assert set(kw) <= checks[1], f"EXE arguments PyInstaller does not know: {set(kw) - checks[1]}"
        built.exes.append(dict(kw, scripts=scripts))
        return ("EXE", kw["name"])

    def COLLECT(*items, **kw):  # noqa: N802
        if checks:
            assert set(kw) <= checks[2], f"COLLECT arguments PyInstaller does not know: {set(kw) - checks[2]}"
        built.collect = dict(kw, items=items)
        (tmp_path / "dist" / kw["name"]).mkdir(parents=True, exist_ok=True)
        return ("COLLECT", kw["name"])

    def BUNDLE(coll, **kw):  # noqa: N802
        if checks:
            assert set(kw) <= checks[3], f"BUNDLE arguments PyInstaller does not know: {set(kw) - checks[3]}"
        built.bundle = kw

    ns = {"SPECPATH": str(REPO), "DISTPATH": str(tmp_path / "dist"), "workpath": str(tmp_path / "build"),
          "Analysis": Analysis, "PYZ": PYZ, "EXE": EXE, "COLLECT": COLLECT, "BUNDLE": BUNDLE,
          "__name__": "__main__"}
    monkeypatch.setattr(sys, "platform", platform)
    try:
        exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), ns)
    finally:
        monkeypatch.undo()
    return built, ns


@pytest.fixture()
def linux(tmp_path, monkeypatch):
    return run_spec(tmp_path, "linux", monkeypatch)


def test_entry_script_and_every_data_file_exist(linux):
    built, ns = linux
    scripts = built.analysis["scripts"]
    assert scripts == [str(REPO / "packaging" / "launch.py")]
    assert all(Path(s).is_file() for s in scripts)
    for src, dest in built.analysis["datas"]:
        assert Path(src).is_file(), f"build.spec ships {src}, which does not exist"
        assert Path(src).suffix != ".py" and Path(src).relative_to(REPO).parent == Path(dest)
    shipped = {Path(src).resolve() for src, _ in built.analysis["datas"]}
    model = REPO / "assets" / "model"
    required = [REPO / p for p in ns["REQUIRED_DATA"]]
    for needed in [*required, REPO / "assets" / "chars.tsv", model / "model.safetensors",
                   *sorted((model / "onnx").iterdir())]:
        assert needed.is_file(), f"{needed} is missing"
        assert needed.resolve() in shipped, f"{needed} is not in the bundle"


def test_shipped_onnx_graphs_match_the_weights():
    """The bundle types with the shipped graphs; stale ones would make it export (torch) on first start."""
    from engine.runtime.onnx_backend import is_current

    assert is_current(REPO / "assets" / "model"), "assets/model/onnx is stale: run python -m assets.build_model"


def test_hidden_imports_resolve_and_cover_our_packages(linux):
    built, _ = linux
    hidden = built.analysis["hiddenimports"]
    pathex = built.analysis["pathex"]
    assert pathex[0] == str(REPO) and all(Path(p).is_dir() for p in pathex)
    for name in hidden:
        found = importlib.util.find_spec(name) or importlib.machinery.PathFinder.find_spec(name, pathex[1:])
        assert found is not None, f"hidden import {name} does not exist"
    assert {"onnxruntime.quantization", "fusion_utils"} <= set(hidden)  # exporting a model you trained
    for package in ("engine", "trainer", "ime_app"):
        for path in (REPO / package).rglob("*.py"):  # subpackages' modules too (engine.store.database, ...)
            parts = path.relative_to(REPO).with_suffix("").parts
            assert ".".join(parts[:-1] if parts[-1] == "__init__" else parts) in hidden


def _imported_modules() -> set[str]:
    """Every module our code imports (top-level names, and PySide6.X)."""
    found = set()
    for package in ("engine", "trainer", "ime_app"):  # not assets/: its build scripts are not shipped
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    parts = name.split(".")
                    found.add(".".join(parts[:2]) if parts[0] == "PySide6" else parts[0])
    return found


def test_nothing_our_code_imports_is_excluded(linux):
    built, _ = linux
    excludes = set(built.analysis["excludes"])
    imported = _imported_modules()
    assert {"torch", "onnxruntime", "PySide6.QtWidgets", "PySide6.QtTest", "pypinyin"} <= imported
    for name in imported | {"multiprocessing", "unittest", "sympy", "numpy"}:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            assert ".".join(parts[:i]) not in excludes, f"build.spec excludes {name}, which the code imports"
    # build-time only (jieba rebuilds assets/), GUI toolkits and Qt modules we do not use stay out
    assert "jieba" in excludes and "tkinter" in excludes and "PySide6.QtQml" in excludes


def test_drop_keeps_what_runs_and_leaves_out_tests_headers_translations(linux):
    built, ns = linux
    for path in MUST_KEEP:
        assert not ns["dropped"](path), f"build.spec drops {path}, which the bundle needs"
    for path in MUST_DROP:
        assert ns["dropped"](path), f"build.spec keeps {path}"
    kept = {d for d, _, _ in built.collect["items"][1]} | {d for d, _, _ in built.collect["items"][2]}
    assert set(MUST_KEEP) <= kept and not kept & set(MUST_DROP)
    assert {f"{dest}/{Path(src).name}" for src, dest in built.analysis["datas"]} <= kept


def test_drop_keeps_every_torch_library_but_the_test_ones():
    torch_spec = importlib.util.find_spec("torch")
    if torch_spec is None:
        pytest.skip("torch is not installed")
    lib = Path(torch_spec.origin).parent / "lib"
    ns: dict = {"SPECPATH": str(REPO)}
    source = SPEC.read_text(encoding="utf-8")
    exec(compile(source[: source.index("\na = Analysis(")], str(SPEC), "exec"), ns)  # definitions only
    for f in lib.iterdir():
        if ns["dropped"](f"torch/lib/{f.name}"):
            assert "test" in f.name or f.suffix == ".a" or "backend_with_compiler" in f.name or "aoti" in f.name, f


def test_orphaned_system_libraries_are_dropped_and_needed_ones_kept(tmp_path, monkeypatch):
    """On Linux the spec drops libraries only dropped files needed, and refuses to drop one a kept file needs."""
    if not sys.platform.startswith("linux") or subprocess.run(["which", "objdump"], capture_output=True).returncode:
        pytest.skip("needs Linux and objdump")
    sqlite_ext = importlib.util.find_spec("_sqlite3").origin
    sqlite_lib = next((line.split()[1] for line in subprocess.run(["objdump", "-p", sqlite_ext], capture_output=True,
                       text=True).stdout.splitlines() if "NEEDED" in line and "sqlite" in line), None)
    if sqlite_lib is None:
        pytest.skip("this Python's _sqlite3 has libsqlite3 built in")
    ext = ("lib-dynload/_sqlite3.so", sqlite_ext, "EXTENSION")
    lib = (sqlite_lib, f"/usr/lib/{sqlite_lib}", "BINARY")
    built, ns = run_spec(tmp_path, "linux", monkeypatch, [ext, lib])
    kept = {d for d, _, _ in built.collect["items"][1]}
    assert sqlite_lib in kept  # a kept extension needs it
    after = ns["drop_orphans"]([ext, lib], [lib])  # the extension dropped: its library goes too
    assert after == []
    with pytest.raises(SystemExit, match="DROP removed"):
        ns["drop_orphans"]([ext, lib], [ext])  # kept extension, its library dropped: refuse


def test_linux_one_executable_and_the_app_as_a_symlink(linux, tmp_path):
    built, ns = linux
    assert [e["name"] for e in built.exes] == ["pinyin-ime"]
    assert built.exes[0]["exclude_binaries"] is True  # one folder
    assert [s[0] for s in built.exes[0]["scripts"]][-1] == "launch"
    link = tmp_path / "dist" / "pinyin-ime" / "pinyin-ime-app"
    assert link.is_symlink() and os.readlink(link) == "pinyin-ime"
    assert built.bundle is None


@pytest.mark.parametrize("platform,icon", [("win32", "pinyin-ime.ico"), ("darwin", "pinyin-ime.icns")])
def test_windows_and_macos_two_executables_with_icons(tmp_path, monkeypatch, platform, icon):
    built, _ = run_spec(tmp_path, platform, monkeypatch)
    exes = {e["name"]: e for e in built.exes}
    assert set(exes) == {"pinyin-ime-app", "pinyin-ime"}
    assert exes["pinyin-ime-app"]["console"] is False and exes["pinyin-ime"]["console"] is True
    assert all(Path(e["icon"]).name == icon and Path(e["icon"]).is_file() for e in exes.values())
    assert (built.bundle is not None) == (platform == "darwin")
    if built.bundle:
        assert Path(built.bundle["icon"]).is_file()


def test_launcher_calls_freeze_support_first_and_dispatches_by_name():
    path = REPO / "packaging" / "launch.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    main_block = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    assert ast.unparse(main_block.body[0]) == "multiprocessing.freeze_support()"
    spec = importlib.util.spec_from_file_location("launch", path)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)  # no side effects outside __main__
    assert launch.command_name("/opt/x/PINYIN-IME-APP.EXE").startswith("pinyin-ime-app")
    assert launch.command_name("/home/u/.local/bin/pinyin-ime-app").startswith("pinyin-ime-app")
    assert not launch.command_name("pinyin-ime").startswith("pinyin-ime-app")
    source = ast.unparse(main_block)
    assert "from ime_app.main import main" in source and "from ime_app.cli import main" in source
    for module in ("ime_app/main.py", "ime_app/cli.py"):
        defs = {n.name for n in ast.parse((REPO / module).read_text(encoding="utf-8")).body
                if isinstance(n, ast.FunctionDef)}
        assert "main" in defs, f"{module} has no main()"


def test_pyproject_build_extra_and_ignored_outputs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(r.lower().startswith("pyinstaller") for r in project["optional-dependencies"]["build"])
    assert "torch==2.13.0" in project["dependencies"]
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert "build/" in ignored and "dist/" in ignored


def test_install_and_uninstall_scripts_on_a_fake_bundle(tmp_path):
    """install.sh puts the app, symlinks, .desktop entry and icon under PREFIX, without root; uninstall.sh
    removes exactly that."""
    linux = REPO / "packaging" / "linux"
    pkg = tmp_path / "pkg"
    (pkg / "pinyin-ime" / "_internal").mkdir(parents=True)
    exe = pkg / "pinyin-ime" / "pinyin-ime"
    exe.write_text("#!/bin/sh\necho fake \"$(basename \"$0\")\" \"$@\"\n")
    exe.chmod(0o755)
    (pkg / "pinyin-ime" / "pinyin-ime-app").symlink_to("pinyin-ime")
    for f in ("install.sh", "uninstall.sh", "pinyin-ime.desktop.in"):
        (pkg / f).write_bytes((linux / f).read_bytes())
    (pkg / "pinyin-ime.png").write_bytes((REPO / "packaging" / "pinyin-ime.png").read_bytes())
    prefix, home = tmp_path / "prefix", tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PREFIX": str(prefix)}
    r = subprocess.run(["sh", str(pkg / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    opt = prefix / "opt" / "pinyin-ime"
    assert (opt / "pinyin-ime-app").is_symlink() and (opt / "uninstall.sh").is_file()
    out = subprocess.run([str(prefix / "bin" / "pinyin-ime-app"), "--x"], capture_output=True, text=True).stdout
    assert out.split() == ["fake", "pinyin-ime-app", "--x"]  # the name survives both symlinks
    desktop = (prefix / "share" / "applications" / "pinyin-ime.desktop").read_text(encoding="utf-8")
    assert f"Exec={opt}/pinyin-ime-app\n" in desktop and "Icon=pinyin-ime\n" in desktop
    assert (prefix / "share" / "icons" / "hicolor" / "256x256" / "apps" / "pinyin-ime.png").is_file()
    r = subprocess.run(["sh", str(pkg / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr  # again: an upgrade in place
    (prefix / "bin" / "other-tool").write_text("keep me")
    r = subprocess.run(["sh", str(opt / "uninstall.sh")], env={k: v for k, v in env.items() if k != "PREFIX"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not opt.exists() and not (prefix / "bin" / "pinyin-ime-app").exists()
    assert not (prefix / "share" / "applications" / "pinyin-ime.desktop").exists()
    assert (prefix / "bin" / "other-tool").exists() and home.exists()
