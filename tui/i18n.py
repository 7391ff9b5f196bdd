"""The interface language (Chinese or English) and `_()`, which translates an English message into it.

Uses stdlib gettext with the catalogue in `tui/locale`; English text is the msgid, so English needs no catalogue.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "SUPPORTED_LANGUAGES",
    "N_",
    "_",
    "current_language",
    "detect_language",
    "field_label",
    "set_language",
]

DOMAIN = "recordkeeper"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SUPPORTED_LANGUAGES = ("zh", "en")
_DEFAULT_LANGUAGE = "en"
# POSIX precedence: LC_ALL overrides LC_MESSAGES, which overrides LANG.
_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")

_language = _DEFAULT_LANGUAGE
_translations: gettext.NullTranslations = gettext.NullTranslations()


def _language_code(value: str | None) -> str | None:
    """Return 'zh' or 'en' for a language tag or locale name such as 'zh_CN.UTF-8' or 'en-GB', else None."""
    if not value:
        return None
    primary = value.strip().lower().replace("-", "_").split("_", 1)[0].split(".", 1)[0]
    return primary if primary in SUPPORTED_LANGUAGES else None


def set_language(code: str) -> None:
    """Make `code` ('zh' or 'en'; 'zh_CN' and the like are accepted) the language `_()` translates into.

    Raises ValueError for another language and OSError if the Chinese catalogue is missing.
    """
    global _language, _translations
    language = _language_code(code)
    if language is None:
        raise ValueError(f"unsupported language {code!r}; expected one of {SUPPORTED_LANGUAGES}")
    if language == "en":
        translations = gettext.NullTranslations()
    else:
        translations = gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language])
    _translations = translations
    _language = language


def current_language() -> str:
    """Return the language `_()` currently translates into: 'zh' or 'en'."""
    return _language


def detect_language(preferred: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the staff member's saved language if it is supported, else 'zh' if the locale is Chinese, else 'en'."""
    chosen = _language_code(preferred)
    if chosen is not None:
        return chosen
    variables = os.environ if environ is None else environ
    for name in _LOCALE_VARIABLES:
        value = variables.get(name, "")
        if value:
            return "zh" if value.strip().lower().startswith("zh") else "en"
    return _DEFAULT_LANGUAGE


def _(message: str) -> str:
    """Return `message` (English) in the current language; unknown messages come back unchanged."""
    return _translations.gettext(message)


def field_label(spec) -> str:
    """The label of a customer field (`models.fields.FieldSpec`) in the current language.

    Field labels are not catalogue messages: the field table holds both languages.
    """
    return spec.label_zh if _language == "zh" else spec.label_en


def N_(message: str) -> str:
    """Mark `message` for translation without translating it now (for text defined at import time)."""
    return message
