"""Collect every message the interface translates, by reading the source (ast), never by running it.

Messages are: the string literal in every `_("…")` and `N_("…")` call in `tui/`, `screens/` and
`models/` (models mark the English they hand the UI with `N_`, or keep it in tables: `*_TEMPLATES`
dictionaries and the retention rules' labels and legal bases); the description and tooltip of
every `Binding` in `tui/` and `screens/` (the footer and F1 help translate them); the home menu
labels of `models/home.py`; and the values of every `*_LABELS` / `*_TITLES` dictionary of string
literals anywhere in those folders (role names, states, document types, group titles); and, in
`models/`, the message of every `FieldError` / `FieldProblem` and of every error raised with a
message (`NotFound("…")`, `Conflict("…")`, `ValueError("…")`…), which screens show through `_()`.
An f-string message becomes a template with `{0}`, `{1}`… for its values; `tui.i18n._` matches a
message against those templates and translates the values it recognises (labels, categories).
The descriptions of the keys Textual's own widgets bind (shown by F1 help: "Page Down", "Select
all"…) are messages too, read from the installed (pinned) Textual, its demo and command palette
left out. Customer field labels are not messages: `models/fields.py` has both languages (`tui.i18n.field_label`).

Run `python tui/locale/extract.py` to list what the Chinese catalogue lacks (exit 1 if anything),
or `--update` to append the missing messages to it, untranslated, with where each is used.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ROOT", "SOURCE_DIRS", "collect", "missing_messages", "main"]

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("tui", "screens", "models")
PO_PATH = Path(__file__).resolve().parent / "zh" / "LC_MESSAGES" / "recordkeeper.po"
_TRANSLATING_CALLS = {"_", "N_"}
_BINDING_POSITIONS = {"description": 2, "tooltip": 6}  # Binding(key, action, description, show, key_display, priority, tooltip)
_LABEL_DICT_SUFFIXES = ("_LABELS", "_TITLES", "_TEMPLATES")
_MODEL_TEXT_CALLS = {"RuleDefault": (6, 7)}  # models' tables of English text: positions of the msgids
_MODEL_MESSAGE_CALLS = {"FieldError": 1, "FieldProblem": 1, "_error": 2}  # call -> position of the message
_MODEL_ERRORS = {"NotFound", "Conflict", "IntegrityFailure", "PermissionDenied", "RecordKeeperError",
                 "ValueError", "ResidentIdError"}
_CODE = re.compile(r"[a-z_]+")  # an error code such as "bad_format", not a message
_ONLY_PLACEHOLDERS = re.compile(r"(\{\d+\}|\W)*")


def source_files(root: Path = ROOT) -> list[Path]:
    """Every Python file whose messages the interface shows (this extractor itself excluded)."""
    files = [path for folder in SOURCE_DIRS for path in sorted((root / folder).rglob("*.py"))]
    return [path for path in files if path.resolve() != Path(__file__).resolve()]


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _call_name(node: ast.Call) -> str:
    function = node.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return ""


def _argument(node: ast.Call, name: str, position: int) -> ast.AST | None:
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value
    return node.args[position] if len(node.args) > position else None


def _message_template(node: ast.AST | None) -> str | None:
    """A literal message as it is, an f-string as a template with {0}, {1}… for its values."""
    text = _literal(node)
    if text is not None:
        return text if not _CODE.fullmatch(text) else None
    if not isinstance(node, ast.JoinedStr):
        return None
    parts, index = [], 0
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
        else:
            parts.append("{%d}" % index)
            index += 1
    template = "".join(parts)
    return None if _ONLY_PLACEHOLDERS.fullmatch(template) else template


def _model_messages(tree: ast.AST, relative: str) -> Iterable[tuple[str, str]]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        for position in _MODEL_TEXT_CALLS.get(name, ()):
            text = _literal(node.args[position]) if len(node.args) > position else None
            if text:
                yield text, f"{relative}:{node.lineno}"
        position = _MODEL_MESSAGE_CALLS.get(name, 0 if name in _MODEL_ERRORS else None)
        if position is None:
            continue
        template = _message_template(_argument(node, "message", position))
        if template:
            yield template, f"{relative}:{node.lineno}"


def _messages_in(tree: ast.AST, relative: str) -> Iterable[tuple[str, str]]:
    """(msgid, "path:line") for every message in one parsed module."""
    if relative.startswith("models/"):
        yield from _model_messages(tree, relative)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in _TRANSLATING_CALLS and node.args:
                text = _literal(node.args[0])
                if text:
                    yield text, f"{relative}:{node.lineno}"
            elif name == "Binding" and not relative.startswith("models/"):
                for field, position in _BINDING_POSITIONS.items():
                    text = _literal(_argument(node, field, position))
                    if text:
                        yield text, f"{relative}:{node.lineno}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [target.id for target in targets if isinstance(target, ast.Name)]
            if relative.endswith("models/home.py") and "MENU" in names and isinstance(node.value, ast.Tuple):
                for entry in node.value.elts:  # (entry id, label, permission, screen)
                    if isinstance(entry, ast.Tuple) and len(entry.elts) > 1 and _literal(entry.elts[1]):
                        yield _literal(entry.elts[1]), f"{relative}:{entry.lineno}"
            if any(name.endswith(_LABEL_DICT_SUFFIXES) for name in names) and isinstance(node.value, ast.Dict):
                for value in node.value.values:
                    text = _literal(value)
                    if text:
                        yield text, f"{relative}:{value.lineno}"


def _textual_key_descriptions() -> Iterable[tuple[str, str]]:
    """The descriptions of the bindings in Textual's widgets and containers."""
    import textual

    package = Path(textual.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("demo/") or relative == "command.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) == "Binding":
                text = _literal(_argument(node, "description", 2))
                if text:
                    yield text, f"textual/{relative}:{node.lineno}"


def collect(root: Path = ROOT, *, include_textual: bool = True) -> dict[str, list[str]]:
    """Every msgid the interface uses, with the places it is used, in first-seen order."""
    found: dict[str, list[str]] = {}
    for path in source_files(root):
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        for msgid, where in _messages_in(tree, relative):
            found.setdefault(msgid, []).append(where)
    if include_textual:
        for msgid, where in _textual_key_descriptions():
            found.setdefault(msgid, []).append(where)
    return found


def catalogue_entries(po_path: Path = PO_PATH) -> dict[str, str]:
    """msgid -> msgstr for every entry of the catalogue; "" when untranslated or fuzzy (gettext ignores those)."""
    from tui.locale.compile import _unquote

    entries: dict[str, str] = {}
    text = po_path.read_text(encoding="utf-8")
    for block_number, block in enumerate(re.split(r"\n\s*\n", text)):
        parts: dict[str, list[str]] = {}
        section = ""
        fuzzy = False
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("#,") and "fuzzy" in stripped:
                fuzzy = True
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith('"'):
                parts.setdefault(section, []).append(_unquote(stripped, f"{po_path} block {block_number}"))
                continue
            section, _space, rest = stripped.partition(" ")
            parts.setdefault(section, []).append(_unquote(rest, f"{po_path} block {block_number}"))
        msgid = "".join(parts.get("msgid", []))
        if msgid:
            entries[msgid] = "" if fuzzy else "".join(parts.get("msgstr", parts.get("msgstr[0]", [])))
    return entries


def missing_messages(root: Path = ROOT, po_path: Path = PO_PATH, *,
                     include_textual: bool = True) -> dict[str, list[str]]:
    """The msgids the interface uses that the catalogue lacks or leaves untranslated."""
    entries = catalogue_entries(po_path)
    return {msgid: places for msgid, places in collect(root, include_textual=include_textual).items()
            if not entries.get(msgid, "").strip()}


def _po_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def append_missing(missing: dict[str, list[str]], po_path: Path = PO_PATH) -> int:
    """Append untranslated entries for messages the catalogue does not have at all; return how many."""
    present = catalogue_entries(po_path)
    blocks = []
    for msgid, places in missing.items():
        if msgid in present:
            continue
        blocks.append(f"#: {' '.join(places[:3])}\nmsgid {_po_quote(msgid)}\nmsgstr \"\"\n")
    if blocks:
        with po_path.open("a", encoding="utf-8") as po_file:
            po_file.write("\n" + "\n".join(blocks))
    return len(blocks)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    missing = missing_messages()
    if "--update" in arguments:
        print(f"appended {append_missing(missing)} message(s) to {PO_PATH}")
        return 0
    for msgid, places in missing.items():
        print(f"{places[0]}: {msgid!r}")
    print(f"{len(missing)} message(s) missing or untranslated in {PO_PATH.relative_to(ROOT)}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
