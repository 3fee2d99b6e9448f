"""The package's import structure: the layers its folders name import only the
layers below them, no cycles, no lazy import that hides one, and the modules
prepare's workers load stay free of TensorFlow."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "facepars"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str, names: set[str]) -> list[str]:
    """The facepars modules an AST node imports (``from facepars.x import y`` counts
    y when y is a module, else facepars.x)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("facepars")]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("facepars"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append(sub if sub in names else node.module)
    return [m for m in found if m != module and m != "facepars"]


def _graph():
    """(top-level edges, function-level edges): module -> the facepars modules it imports."""
    paths = sorted(PACKAGE.rglob("*.py"))
    names = {_module_name(p) for p in paths}
    top, lazy = {}, {}
    for path in paths:
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inner = {id(i) for f in functions for i in ast.walk(f)}
        body = [n for n in ast.walk(tree) if id(n) not in inner
                and isinstance(n, (ast.Import, ast.ImportFrom))]
        top[module] = set(_imports(ast.Module(body=body, type_ignores=[]), module, names))
        lazy[module] = {m for f in functions for m in _imports(f, module, names)} - top[module]
    return top, lazy


def _reaches(top, start: str, goal: str) -> list[str] | None:
    """A top-level import path from start to goal, or None."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in sorted(top.get(path[-1], ())):
            if nxt == goal:
                return path + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append(path + [nxt])
    return None


def test_module_level_imports_have_no_cycle():
    top, _ = _graph()
    for module in top:
        cycle = _reaches(top, module, module)
        assert cycle is None, " -> ".join(cycle)


def test_no_lazy_import_hides_a_cycle():
    """An import inside a function is for weight (TensorFlow, an optional extra), never
    to dodge a cycle: moved to the top of its module, none would close one."""
    top, lazy = _graph()
    assert any(lazy.values())  # the check sees function-level imports at all
    for module, targets in lazy.items():
        for target in targets:
            back = _reaches(top, target, module)
            assert back is None, f"{module} imports {target} lazily: " + " -> ".join(back)


# What each folder may import, module-level or inside a function. The commands
# (facepars/<command>.py and the <command>_lib.py each runs) sit on top and may
# import any layer; no layer imports a command. configs (the training config's
# schema) is read by the stages and loads without TensorFlow; data never reaches
# training or inference; inference never training.
MAY_IMPORT = {
    "core": {"core"},
    "configs": {"core", "configs"},
    "models": {"core", "models"},
    "faces": {"core", "faces"},
    "data": {"core", "configs", "faces", "data"},
    "training": {"core", "configs", "models", "data", "training"},
    "inference": {"core", "models", "faces", "data", "inference"},
}


def _layer(module: str) -> str:
    """facepars.<layer>.x -> layer; a top-level module (and the package's own
    __init__, which runs before a command) is a command."""
    parts = module.split(".") + [""]
    return parts[1] if parts[1] in MAY_IMPORT else "commands"


COMMANDS = ("prepare", "verify", "train", "evaluate", "predict", "export")


def test_every_module_lives_in_a_layer_or_is_a_command():
    top, _ = _graph()
    assert {m for m in top if _layer(m) == "commands"} == \
        {"facepars"} | {f"facepars.{c}" for c in COMMANDS} | \
        {f"facepars.{c}_lib" for c in COMMANDS if c != "prepare"}


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_each_layer_imports_only_the_layers_below_it(layer):
    top, lazy = _graph()
    wrong = sorted(f"{module} imports {target}" for module in top if _layer(module) == layer
                   for target in top[module] | lazy[module]
                   if _layer(target) not in MAY_IMPORT[layer])
    assert not wrong, wrong


@pytest.mark.parametrize("module", ["facepars.data.convert", "facepars.data.sources",
                                    "facepars.prepare", "facepars.core.imaging",
                                    "facepars.faces.alignment", "facepars.faces.detection"])
def test_what_conversion_workers_import_stays_free_of_tensorflow(module):
    """prepare's worker processes load these; TensorFlow would cost them seconds and
    hundreds of MB each."""
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", module


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_and_its_config_files_load_without_tensorflow(command):
    """A command parses and checks its flags (a config file and its overrides too)
    before TensorFlow's seconds of start-up: its module, the configs and what its
    flags need import no TensorFlow; its main imports facepars.<command>_lib."""
    code = (f"import sys, facepars.{command}, facepars.configs.common, "
            "facepars.configs.smoke, facepars.configs.pspnet_resnet50; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", command
