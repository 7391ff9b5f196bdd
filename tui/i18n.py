"""The interface language (Chinese or English) and `_()`, which translates an English message into it.

Uses stdlib gettext with the catalogue in `tui/locale`; English text is the msgid, so English needs no catalogue.
Messages that models build from parts ("Full name is too long (at most 60 characters)") are
translated by parts: a catalogue template with {0}, {1}… for the values, and a customer field's
label in front of a reason ("Full name" + "is too long (at most {0} characters)").
"""

from __future__ import annotations

import gettext
import os
import re
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
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_templates: list[tuple[re.Pattern[str], str]] = []  # (message pattern, translation) for {0}-style msgids
_field_labels: list[tuple[str, str]] = []  # (English label, Chinese label), longest first


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
    _templates[:] = _message_templates(translations)


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
    translated = _translations.gettext(message)
    if translated != message or _language == "en" or not message:
        return translated
    return _by_parts(message)


def _message_templates(translations: gettext.NullTranslations) -> list[tuple[re.Pattern[str], str]]:
    """Patterns for the catalogue's msgids with {0}, {1}… (models' f-string messages), most specific first."""
    catalogue = getattr(translations, "_catalog", {})
    found = []
    for msgid, msgstr in catalogue.items():
        if not isinstance(msgid, str) or not _PLACEHOLDER.search(msgid):
            continue
        pieces = _PLACEHOLDER.split(msgid)  # text, number, text, number, …, text
        pattern = "".join(re.escape(piece) if index % 2 == 0 else f"(?P<v{piece}>.+?)"
                          for index, piece in enumerate(pieces))
        found.append((re.compile(pattern, re.DOTALL), msgstr))
    found.sort(key=lambda item: -len(item[0].pattern))
    return found


def _value(text: str) -> str:
    """A value inside a templated message: a number stays, a field label or known word is translated."""
    for english, chinese in _labels():
        if text == english:
            return chinese
    return _translations.gettext(text)


def _labels() -> list[tuple[str, str]]:
    if not _field_labels:
        from models.fields import CUSTOMER_FIELDS

        _field_labels.extend(sorted(((spec.label_en, spec.label_zh) for spec in CUSTOMER_FIELDS),
                                    key=lambda pair: -len(pair[0])))
    return _field_labels


def _by_parts(message: str) -> str:
    """Translate a message built from parts, or return it unchanged."""
    for pattern, translated in _templates:
        match = pattern.fullmatch(message)
        if match:
            values = {name[1:]: _value(value) for name, value in match.groupdict().items()}
            return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), translated)
    for english, chinese in _labels():  # "<field label> <reason>", as models.validation writes it
        if message.startswith(english + " "):
            reason = message[len(english) + 1:]
            translated_reason = _(reason)
            if translated_reason != reason:
                return chinese + translated_reason
    return message


def field_label(spec) -> str:
    """The label of a customer field (`models.fields.FieldSpec`) in the current language.

    Field labels are not catalogue messages: the field table holds both languages.
    """
    return spec.label_zh if _language == "zh" else spec.label_en


def N_(message: str) -> str:
    """Mark `message` for translation without translating it now (for text defined at import time)."""
    return message
