"""The model layer stays headless: importing any models.* module pulls in no UI package."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import models

FORBIDDEN = ("textual", "rich", "tui", "screens")
MODELS_DIR = Path(models.__file__).resolve().parent
PROJECT_ROOT = MODELS_DIR.parent


def _model_modules() -> list[str]:
    return sorted(f"models.{m.name}" for m in pkgutil.iter_modules([str(MODELS_DIR)]))


def _is_forbidden(module_name: str) -> bool:
    return any(module_name == top or module_name.startswith(top + ".") for top in FORBIDDEN)


def test_there_are_model_modules_to_check():
    names = _model_modules()
    assert "models.customers" in names and "models.staff" in names and "models.audit" in names


def test_importing_every_model_module_loads_no_ui_package():
    script = f"""
import importlib, json, sys
for name in {_model_modules()!r}:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(_model_modules()) <= set(loaded)
    offenders = [name for name in loaded if _is_forbidden(name)]
    assert offenders == [], f"importing models pulled in UI modules: {offenders}"


def _imports_of(source: str) -> list[tuple[int, str]]:
    """Every module named by an import statement anywhere in the file (functions included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def test_no_model_source_file_imports_a_ui_package():
    offenders = []
    files = sorted(MODELS_DIR.glob("*.py"))
    assert files
    for path in files:
        for lineno, module in _imports_of(path.read_text(encoding="utf-8")):
            if _is_forbidden(module):
                offenders.append(f"{path.name}:{lineno} imports {module}")
    assert offenders == [], "models/ must stay headless:\n" + "\n".join(offenders)


def test_the_static_check_would_catch_an_offender():
    sample = "import os\nfrom textual.app import App\ndef f():\n    import rich.text\n    __import__('screens')\n"
    assert [m for _, m in _imports_of(sample) if _is_forbidden(m)] == ["textual.app", "rich.text", "screens"]
