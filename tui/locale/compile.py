"""Compile the `.po` catalogues under this folder into the `.mo` files gettext reads, with no external tools.

Follows the logic of CPython's Tools/i18n/msgfmt.py; the output is byte-for-byte deterministic
(little-endian, sorted, no hash table, no creation date) so a test can prove the committed `.mo` is current.
Run: `python tui/locale/compile.py [file.po ...]` (default: every catalogue here).
"""

from __future__ import annotations

import struct
import sys
from email.parser import HeaderParser
from pathlib import Path

__all__ = ["LOCALE_DIR", "build_mo", "compile_catalogue", "compile_po", "main", "parse_po"]

LOCALE_DIR = Path(__file__).resolve().parent
_MO_MAGIC = 0x950412DE
_HEADER_SIZE = 7 * 4
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class PoSyntaxError(ValueError):
    """The `.po` file is malformed; the message names the file and line."""


def _unquote(literal: str, where: str) -> str:
    """Return the text of one PO string literal such as `"a\\"b"`."""
    literal = literal.strip()
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise PoSyntaxError(f"{where}: expected a quoted string, got {literal!r}")
    body = literal[1:-1]
    text: list[str] = []
    index = 0
    while index < len(body):
        character = body[index]
        if character == "\\":
            escaped = body[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise PoSyntaxError(f"{where}: unsupported escape \\{escaped}")
            text.append(_ESCAPES[escaped])
            index += 2
        elif character == '"':
            raise PoSyntaxError(f"{where}: unescaped quote")
        else:
            text.append(character)
            index += 1
    return "".join(text)


def parse_po(po_text: str, source: str = "<po>") -> dict[str, str]:
    """Return the translated, non-fuzzy messages of a UTF-8 `.po` text, keyed as gettext looks them up.

    The header (msgid "") is included; a context is joined to its msgid with EOT (U+0004) and
    plural forms are NUL-separated, exactly as in a `.mo` file.
    """
    messages: dict[str, str] = {}
    entry: dict[str, list[str]] = {}
    section: str | None = None
    fuzzy = False

    def finish_entry() -> None:
        nonlocal entry, section, fuzzy
        if "msgid" in entry:
            msgid = "".join(entry["msgid"])
            if "msgid_plural" in entry:
                msgid += "\0" + "".join(entry["msgid_plural"])
            plural_keys = sorted(
                (key for key in entry if key.startswith("msgstr[")),
                key=lambda key: int(key[7:-1]),
            )
            if plural_keys:
                msgstr = "\0".join("".join(entry[key]) for key in plural_keys)
            else:
                msgstr = "".join(entry.get("msgstr", []))
            if "msgctxt" in entry:
                msgid = "".join(entry["msgctxt"]) + "\x04" + msgid
            if msgstr and not fuzzy:
                messages[msgid] = msgstr
        entry, section, fuzzy = {}, None, False

    for line_number, line in enumerate(po_text.splitlines(), start=1):
        where = f"{source}:{line_number}"
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if section is not None and section.startswith("msgstr"):
                finish_entry()
            if stripped.startswith("#,") and "fuzzy" in stripped:
                fuzzy = True
            continue
        if stripped.startswith('"'):
            if section is None:
                raise PoSyntaxError(f"{where}: string outside an entry")
            entry[section].append(_unquote(stripped, where))
            continue
        keyword, _, rest = stripped.partition(" ")
        if keyword not in ("msgctxt", "msgid", "msgid_plural", "msgstr") and not (
            keyword.startswith("msgstr[") and keyword.endswith("]")
        ):
            raise PoSyntaxError(f"{where}: unknown keyword {keyword!r}")
        if keyword in ("msgctxt", "msgid") and section is not None and section.startswith("msgstr"):
            finish_entry()
        if keyword in entry:
            raise PoSyntaxError(f"{where}: {keyword} repeated in one entry")
        section = keyword
        entry[keyword] = [_unquote(rest, where)]
    finish_entry()

    header = messages.get("", "")
    charset = HeaderParser().parsestr(header).get_content_charset() or "utf-8"
    if charset.lower().replace("-", "") != "utf8":
        raise PoSyntaxError(f"{source}: catalogues must be UTF-8, header says {charset!r}")
    return messages


def build_mo(messages: dict[str, str]) -> bytes:
    """Return the GNU `.mo` bytes for `messages` (as returned by `parse_po`)."""
    keys = sorted(messages, key=lambda key: key.encode("utf-8"))
    encoded_ids = [key.encode("utf-8") for key in keys]
    encoded_strs = [messages[key].encode("utf-8") for key in keys]
    count = len(keys)
    ids_start = _HEADER_SIZE + 16 * count
    strs_start = ids_start + sum(len(item) + 1 for item in encoded_ids)

    key_table: list[int] = []
    value_table: list[int] = []
    offset = ids_start
    for item in encoded_ids:
        key_table += [len(item), offset]
        offset += len(item) + 1
    offset = strs_start
    for item in encoded_strs:
        value_table += [len(item), offset]
        offset += len(item) + 1

    header = struct.pack(
        "<7I",
        _MO_MAGIC,
        0,  # format revision
        count,
        _HEADER_SIZE,  # offset of the original-strings table
        _HEADER_SIZE + 8 * count,  # offset of the translations table
        0,  # hash table size: none, lookups fall back to binary search
        ids_start,  # hash table offset (unused)
    )
    tables = struct.pack(f"<{4 * count}I", *key_table, *value_table)
    strings = b"".join(item + b"\0" for item in encoded_ids + encoded_strs)
    return header + tables + strings


def compile_po(po_path: Path) -> bytes:
    """Return the `.mo` bytes for the `.po` file at `po_path`."""
    po_bytes = Path(po_path).read_bytes()
    if po_bytes.startswith(b"\xef\xbb\xbf"):
        raise PoSyntaxError(f"{po_path}: remove the UTF-8 byte-order mark")
    return build_mo(parse_po(po_bytes.decode("utf-8"), source=str(po_path)))


def compile_catalogue(po_path: Path, mo_path: Path | None = None) -> Path:
    """Write the `.mo` for `po_path` (beside it unless `mo_path` is given) and return its path."""
    po_path = Path(po_path)
    target = po_path.with_suffix(".mo") if mo_path is None else Path(mo_path)
    target.write_bytes(compile_po(po_path))
    return target


def main(argv: list[str] | None = None) -> int:
    """Compile the given `.po` files, or every catalogue under this folder."""
    arguments = sys.argv[1:] if argv is None else argv
    po_paths = [Path(argument) for argument in arguments] or sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
    for po_path in po_paths:
        print(f"compiled {compile_catalogue(po_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
