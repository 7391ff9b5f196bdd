"""The Chinese catalogue is complete and compiled, and the language switch works."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui import i18n
from tui.i18n import _, current_language, detect_language, set_language
from tui.locale.compile import PoSyntaxError, compile_catalogue, parse_po

CATALOGUE_DIR = Path(i18n.__file__).resolve().parent / "locale" / "zh" / "LC_MESSAGES"
PO_PATH = CATALOGUE_DIR / "recordkeeper.po"
MO_PATH = CATALOGUE_DIR / "recordkeeper.mo"

REQUIRED_MESSAGES = [
    "Username", "Password", "Log in", "Wrong username or password.", "Quit", "Help", "Back",
    "Screen locked", "Enter your password to unlock.", "Unlock", "Change password",
    "New password", "Repeat new password", "Current password", "Home", "Logged in as {name}",
    "Roles", "Lock", "Language", "Intake", "Review queue", "Customers", "Change requests",
    "Verification due", "Retention", "Destruction approvals", "Audit log", "Compliance",
    "Staff", "Labels", "Drafts", "Coming soon", "Password changed.", "Passwords do not match.",
    "Something went wrong. The error was logged; nothing was saved half-way.",
    "clerk", "reviewer", "supervisor", "records officer", "auditor", "admin",
    "Keys", "Press F1 for help",
]  # fmt: skip

PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    yield
    set_language("en")


def every_msgid_with_its_msgstr(po_text: str) -> list[tuple[str, str, bool]]:
    """Return (msgid, msgstr, fuzzy) for every entry, translated or not, except the header."""
    entries: list[tuple[str, str, bool]] = []
    for block in re.split(r"\n\s*\n", po_text):
        lines = [line.strip() for line in block.strip().splitlines()]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        body = "\n".join(line for line in lines if line and not line.startswith("#"))
        if not body:
            continue
        # One more empty msgstr must still be seen as untranslated, so parse this entry alone.
        translated = parse_po(body + "\n")
        msgid = re.search(r'^msgid "(.*)"', body, re.MULTILINE)
        assert msgid is not None, block
        entries.append((msgid.group(1), next(iter(translated.values()), ""), fuzzy))
    return [entry for entry in entries if entry[0] != ""]


def test_every_msgid_has_a_translation() -> None:
    entries = every_msgid_with_its_msgstr(PO_PATH.read_text(encoding="utf-8"))
    assert entries
    for msgid, msgstr, fuzzy in entries:
        assert msgstr.strip(), f"{msgid!r} has no Chinese translation"
        assert not fuzzy, f"{msgid!r} is marked fuzzy"


def test_placeholders_survive_translation() -> None:
    messages = parse_po(PO_PATH.read_text(encoding="utf-8"))
    for msgid, msgstr in messages.items():
        if msgid:
            assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


def test_required_messages_are_in_the_catalogue() -> None:
    messages = parse_po(PO_PATH.read_text(encoding="utf-8"))
    missing = [message for message in REQUIRED_MESSAGES if message not in messages]
    assert missing == []


def test_committed_mo_is_up_to_date_with_the_po(tmp_path: Path) -> None:
    fresh = compile_catalogue(PO_PATH, tmp_path / "recordkeeper.mo")
    assert fresh.read_bytes() == MO_PATH.read_bytes(), (
        "run `python tui/locale/compile.py` and commit the .mo"
    )


def test_compiler_skips_fuzzy_and_empty_and_rejects_bad_escapes() -> None:
    po_text = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        '#, fuzzy\nmsgid "Guess"\nmsgstr "猜"\n\n'
        'msgid "Empty"\nmsgstr ""\n\n'
        'msgid "Two"\n"lines"\nmsgstr "两"\n"行"\n'
    )
    assert parse_po(po_text) == {
        "": "Content-Type: text/plain; charset=UTF-8\n",
        "Twolines": "两行",
    }
    with pytest.raises(PoSyntaxError):
        parse_po('msgid "a\\q"\nmsgstr "b"\n')


def test_switching_language_translates() -> None:
    assert current_language() == "en"
    assert _("Log in") == "Log in"
    set_language("zh")
    assert current_language() == "zh"
    assert _("Log in") == "登录"
    assert _("Logged in as {name}").format(name="王芳") == "当前登录：王芳"
    assert _("A message nobody translated") == "A message nobody translated"
    set_language("zh_CN.UTF-8")
    assert current_language() == "zh"
    set_language("en")
    assert _("Log in") == "Log in"


def test_unsupported_language_is_refused() -> None:
    with pytest.raises(ValueError):
        set_language("fr")
    assert current_language() == "en"


@pytest.mark.parametrize(
    ("preferred", "environ", "expected"),
    [
        ("zh", {"LANG": "en_US.UTF-8"}, "zh"),
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LANG": "zh_TW.UTF-8"}, "zh"),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "C"}, "zh"),
        (None, {"LC_ALL": "", "LANG": "zh_CN.GB18030"}, "zh"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {}, "en"),
        ("fr", {"LANG": "zh_CN.UTF-8"}, "zh"),
        ("", {}, "en"),
    ],
)
def test_detect_language(preferred: str | None, environ: dict[str, str], expected: str) -> None:
    assert detect_language(preferred, environ) == expected
