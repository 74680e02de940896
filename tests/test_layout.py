"""The package's shape: the stage order of README "Layout", short functions, one names table.

* every module of ner_window/ is a row of README's Layout table, and imports only the
  modules above it (a stage never imports a later stage); kernels.py only from fast.py;
* no function is longer than 80 lines, and model.py (the reference path a reader checks
  against the lecture) stays under 500;
* the names of tasks, activations and losses are model.py's tables wherever they are
  spelled out again (the CLI, which must not import numpy for --help, and the config).
"""

import ast
import re
from pathlib import Path

import pytest

import ner_window
from ner_window import cli, config, model

PACKAGE = Path(ner_window.__file__).parent
README = PACKAGE.parent / "README.md"
MAX_FUNCTION_LINES = 80


def stage_order() -> list[str]:
    """The modules in the order of README's Layout table."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Layout"):].split("\n## ")[0]
    return re.findall(r"^\| `(\w+)\.py` \|", table, flags=re.M)


def package_imports(path: Path) -> set[str]:
    """The ner_window modules ``path`` imports, at the top or inside functions (importlib included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level == 1 or name.startswith("ner_window"):
                base = name.removeprefix("ner_window").lstrip(".")
                found |= {base.split(".")[0]} if base else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ner_window.")}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and str(arg.value).startswith("ner_window."):
                found.add(arg.value.split(".")[1])
    return found - {"__version__"}


def test_every_module_is_a_row_of_the_layout_table():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    order = stage_order()
    assert len(order) == len(set(order))
    assert sorted(order) == modules


@pytest.mark.parametrize("name", stage_order())
def test_a_stage_imports_only_the_stages_before_it(name):
    order = stage_order()
    earlier = set(order[:order.index(name)])
    later = package_imports(PACKAGE / f"{name}.py") - earlier
    assert not later, f"{name}.py imports {sorted(later)}, which README's Layout puts after it"


def test_only_the_fast_path_imports_the_kernels():
    importers = {p.stem for p in PACKAGE.glob("*.py") if "kernels" in package_imports(p)}
    assert importers == {"fast"}


def test_the_import_check_sees_every_kind_of_import(tmp_path):
    source = ("from . import metrics\nfrom .model import forward\nimport ner_window.tagger\n"
              "def f():\n    from ner_window.vocab import Vocab\n    importlib.import_module('ner_window.kernels')\n")
    (tmp_path / "m.py").write_text(source)
    assert package_imports(tmp_path / "m.py") == {"metrics", "model", "tagger", "vocab", "kernels"}


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - start + 1} lines)")
    assert not long


def test_model_py_stays_short_enough_to_read_beside_the_lecture():
    assert len((PACKAGE / "model.py").read_text(encoding="utf-8").splitlines()) < 500


def test_the_names_of_tasks_activations_and_losses_are_models():
    assert cli.ACTIVATION_NAMES == tuple(model.ACTIVATIONS)
    assert cli.BINARY_LOSS_NAMES == model.BINARY_LOSSES
    assert cli.TASK_NAMES == model.TASKS
    rules = {f"{section}.{f.name}": f.metadata.get("choices")
             for section, cls in config._SECTION_TYPES.items() for f in config.dataclasses.fields(cls)}
    assert rules["model.activation"] == tuple(model.ACTIVATIONS)
    assert rules["model.task"] == model.TASKS
    assert rules["train.loss"] == model.BINARY_LOSSES
    assert cli.OUTPUT_NAMES == config.OUTPUTS == rules["model.output"]
    assert set(model.COSTS) == {loss for losses in model.LOSSES.values() for loss in losses}
