"""Service-layer validation of customer records: intake form, CLI, import and change requests.

Every rule lives here so that no entry path can store what another would refuse.
Messages name the field by its English label and say why; they never repeat the
value, because the value is personal data and messages end up in logs and audit.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers

from models.errors import FieldError, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, FieldSpec, Kind
from models.normalise import (
    clean_resident_id,
    convert_legacy_resident_id,
    normalise_phone,
    resident_id_check_char,
    strip_phone_separators,
)

FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# Stable codes the UI translates; FieldError.code is always one of these.
ERROR_CODES: tuple[str, ...] = (
    "required", "too_long", "control_chars", "bad_type", "bad_format", "bad_choice",
    "bad_check_digit", "bad_date", "future_date", "dob_mismatch", "sex_mismatch",
    "consent_before_birth", "guardian_required", "unknown_field",
)

PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
     50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91}
)
EARLIEST_DATE = date(1900, 1, 1)
GUARDIAN_AGE = 14  # PIPL art. 31: personal information of a minor under 14 needs a guardian's consent.
NEWLINE_FIELDS = frozenset({"notes"})

_TRUE_WORDS = frozenset({"true", "yes", "1", "是"})
_FALSE_WORDS = frozenset({"false", "no", "0", "否"})
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_COMPACT_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_OTHER_ID = re.compile(r"[A-Za-z0-9-]{5,30}")
_OTHER_PHONE_WORDS = re.compile(r"ext\.?|转", re.IGNORECASE)
_OTHER_PHONE_CHARS = frozenset("0123456789 +-()")
_POSTCODE = re.compile(r"[0-9]{6}")
_EMAIL = re.compile(
    r"[^\s@]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
)
# A narrower, faster shape for everyday addresses: whatever it matches, _EMAIL matches too
# (ASCII local part without space or @; labels of 1-63 letters or digits; a 2-63 letter TLD).
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9]{1,63}\.)+[A-Za-z]{2,63}")
_NOT_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
     phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST,
     phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.UAN}
)


class FieldProblem(ValueError):
    """A value failed one rule; carries the stable code and a reason that reads after the field's label."""

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(reason)


class ResidentIdError(FieldProblem):
    """A resident ID failed one rule of GB 11643-1999."""

    def __init__(self, code: str, reason: str):
        super().__init__(code, reason)
        self.args = (f"resident ID {reason}",)


@dataclass(frozen=True)
class ResidentId:
    """A parsed mainland resident ID and what it encodes."""

    number: str
    birth_date: date
    sex: str
    region_code: str
    legacy: bool


# --- characters --------------------------------------------------------------


def _allowed_unassigned(char: str) -> bool:
    """Return True for a code point in the ideographic planes that this Python's Unicode data lacks."""
    # Python 3.11 ships Unicode 14, so CJK Extensions H/I (rare name characters,
    # 生僻字) read as unassigned (Cn); planes 2 and 3 only ever hold ideographs.
    return 0x20000 <= ord(char) <= 0x3FFFF


def forbidden_characters(value: str, *, allow_newline: bool = False) -> bool:
    """Return True when `value` holds a control, format, private-use, unassigned or separator character."""
    if value.isprintable():
        # Fast path (bulk import): printable excludes every category above (Cc Cf Cs Co Cn Zl Zp).
        return False
    for char in value:
        if char == "\n" and allow_newline:
            continue
        category = unicodedata.category(char)
        if category in FORBIDDEN_CATEGORIES and not (category == "Cn" and _allowed_unassigned(char)):
            return True
    return False


# --- resident ID ---------------------------------------------------------------


def _split_resident_id(raw: str) -> tuple[str, bool]:
    """Return the 18-character ID from `raw` and whether it was a 15-digit legacy ID."""
    text = clean_resident_id(raw)
    if not text:
        raise ResidentIdError("required", "is empty")
    if len(text) not in (15, 18):
        raise ResidentIdError(
            "bad_format", f"must be 18 characters long (15 for an old-style ID), not {len(text)}"
        )
    if len(text) == 15:
        if not _all_ascii_digits(text):
            raise ResidentIdError("bad_format", "must contain digits only (15-digit old-style ID)")
        return convert_legacy_resident_id(text), True
    if not _all_ascii_digits(text[:17]) or not (_all_ascii_digits(text[17]) or text[17] == "X"):
        raise ResidentIdError("bad_format", "must be 17 digits followed by a digit or X")
    return text, False


def _all_ascii_digits(text: str) -> bool:
    """Return True when `text` is non-empty and only ASCII 0-9."""
    # isdigit() alone accepts other scripts' digits; on ASCII it is exactly 0-9, and False for "".
    return text.isascii() and text.isdigit()


def _embedded_birth_date(number: str, today: date) -> date:
    """Return the birth date encoded in an 18-character ID, checking it is real and plausible."""
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ResidentIdError("bad_date", "contains a birth date that does not exist") from None
    if birth > today:
        raise ResidentIdError("future_date", "contains a birth date in the future")
    if birth < EARLIEST_DATE:
        raise ResidentIdError("bad_date", "contains a birth date before 1900")
    return birth


def parse_resident_id(raw: str, *, today: date) -> ResidentId:
    """Return the parsed resident ID, or raise ValueError (ResidentIdError) saying what is wrong."""
    return _parse_resident_id(raw, today)


@functools.lru_cache(maxsize=64)
def _parse_resident_id(raw: str, today: date) -> ResidentId:
    # Cached: a record's ID is parsed by its own check and again by the cross-field rules (bulk import).
    number, legacy = _split_resident_id(raw)
    # The check digit comes before the date: a typo in the date digits almost always
    # breaks it too, and "check digit wrong" tells the clerk to re-read the whole card.
    if not legacy and resident_id_check_char(number[:17]) != number[17]:
        raise ResidentIdError("bad_check_digit", "has a wrong check digit; please re-check every digit")
    birth = _embedded_birth_date(number, today)
    sex = "male" if int(number[16]) % 2 else "female"  # GB 11643: odd sequence digit = male
    return ResidentId(number=number, birth_date=birth, sex=sex, region_code=number[:6], legacy=legacy)


def region_warning(region_code: str) -> str | None:
    """Return a warning when the region code's first two digits are not a PRC province code, else None."""
    # Only the province is checked: county codes change every year and the
    # published tables disagree, so a finer check would reject real people.
    prefix = region_code[:2]
    if len(prefix) == 2 and _all_ascii_digits(prefix) and int(prefix) in PROVINCE_CODES:
        return None
    return "the region code does not start with a known province code; please check the number"


# --- phones, ages, dates --------------------------------------------------------


def is_chinese_mobile(normalised: str) -> bool:
    """Return True when `normalised` is an 11-digit mainland mobile number."""
    return _CN_MOBILE.fullmatch(normalised) is not None


def parse_international_mobile(raw: str) -> tuple[str, bool]:
    """Return (E.164 form, looks like a mobile) for an international number, or raise FieldProblem."""
    # Separators only: normalise_phone would drop the +86 that phonenumbers needs.
    text = strip_phone_separators(raw)
    if not text.startswith("+"):
        raise FieldProblem("bad_format", "must start with + and the country code")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise FieldProblem("bad_format", "is not a phone number that can be read") from None
    if not (phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)):
        raise FieldProblem("bad_format", "is not a valid international phone number")
    looks_mobile = phonenumbers.number_type(number) not in _NOT_MOBILE_TYPES
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), looks_mobile


def age_on(birth: date, on: date) -> int:
    """Return the age in whole years on `on` of someone born on `birth`."""
    if on < birth:
        raise ValueError("the date is before the birth date")
    # Full-date comparison: subtracting years alone adds a year before the birthday.
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def parse_date(raw: str) -> date:
    """Return the date written as YYYY-MM-DD or YYYYMMDD, or raise ValueError with the reason."""
    if type(raw) is str and raw.isascii() and _ISO_DATE.fullmatch(raw):
        # Fast path: ASCII is NFKC-stable, a full match leaves nothing to strip, and on exactly
        # YYYY-MM-DD fromisoformat builds the same date (or refuses the same non-dates).
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(_NOT_A_REAL_DATE) from None
    text = unicodedata.normalize("NFKC", raw).strip()
    match = _ISO_DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if match is None:
        raise ValueError("must be written as YYYY-MM-DD or YYYYMMDD")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ValueError(_NOT_A_REAL_DATE) from None


_NOT_A_REAL_DATE = "is not a real date (check the month and day)"


def parse_bool(value: object) -> bool:
    """Return the bool meant by `value` (true/false/yes/no/1/0/是/否, a bool), or raise ValueError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = unicodedata.normalize("NFKC", value).strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError("must be yes or no")


def _lenient_bool(value: object) -> bool:
    """Return the bool meant by `value`, or False when it cannot be read (its own field reports that)."""
    if value is None:
        return False  # Fast path (an empty column): parse_bool refuses None.
    try:
        return parse_bool(value)
    except ValueError:
        return False


def _record_choice(record: Mapping[str, object], name: str) -> str:
    """Return a choice field of `record` as its stripped, case-folded code."""
    value = record.get(name)
    return value.strip().casefold() if isinstance(value, str) else ""


# --- one field -------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """What a kind checker may read besides the value: the whole record and today."""

    spec: FieldSpec
    record: Mapping[str, object]
    today: date
    warning: str | None = None


def _is_empty(value: object) -> bool:
    """Return True for None or a string of only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(value: object) -> str:
    """Return `value` as a stripped string (integers too: spreadsheets turn codes into numbers)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FieldProblem("bad_type", "must be text")


def _check_text(text: str, ctx: _Context) -> object:
    """Return plain text unchanged."""
    return text


def _check_choice(text: str, ctx: _Context) -> object:
    """Return the canonical choice matching `text`, ignoring case."""
    for choice in ctx.spec.choices:
        if choice.casefold() == text.casefold():
            return choice
    raise FieldProblem("bad_choice", "must be one of: " + ", ".join(ctx.spec.choices))


def _check_date_text(text: str, ctx: _Context) -> object:
    """Return the ISO form of a real, past date written as text."""
    try:
        return _check_date(parse_date(text), ctx)
    except FieldProblem:
        raise
    except ValueError as exc:
        raise FieldProblem("bad_date", str(exc)) from None


def _check_date(value: date, ctx: _Context) -> str:
    """Return the ISO form of `value` after checking it is not in the future nor before 1900."""
    if value > ctx.today:
        raise FieldProblem("future_date", "is in the future")
    if value < EARLIEST_DATE:
        raise FieldProblem("bad_date", "is before 1900")
    return value.isoformat()


def _check_id_number(text: str, ctx: _Context) -> object:
    """Return the ID number cleaned for its ID type (18-digit resident ID, else upper-case letters/digits)."""
    if _record_choice(ctx.record, "id_type") == "resident_id":
        parsed = parse_resident_id(text, today=ctx.today)
        warning = region_warning(parsed.region_code)
        if parsed.legacy:
            legacy = "an old 15-digit ID was converted to the 18-digit form"
            warning = f"{warning}; {legacy}" if warning else legacy
        ctx.warning = warning
        return parsed.number
    cleaned = unicodedata.normalize("NFKC", text).upper()
    if _OTHER_ID.fullmatch(cleaned) is None:
        raise FieldProblem("bad_format", "must be 5 to 30 letters, digits or '-'")
    return cleaned


def _check_mobile(text: str, ctx: _Context) -> object:
    """Return a mainland mobile as 11 digits, or an international one in E.164 form."""
    if _lenient_bool(ctx.record.get("mobile_international")):
        number, looks_mobile = parse_international_mobile(text)
        if not looks_mobile:
            ctx.warning = "the number does not look like a mobile number"
        return number
    number = normalise_phone(text)
    if is_chinese_mobile(number):
        return number
    raise FieldProblem(
        "bad_format",
        "must be an 11-digit mainland mobile number starting with 1 "
        "(tick Intl. mobile for a number outside mainland China)",
    )


def _check_other_phone(text: str, ctx: _Context) -> object:
    """Return a free-form phone number made of digits, spaces, + - ( ) and 'ext'/'转'."""
    cleaned = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))
    rest = _OTHER_PHONE_WORDS.sub("", cleaned)
    digits = sum(c.isdigit() for c in rest)
    if not set(rest) <= _OTHER_PHONE_CHARS or len(cleaned) < 5 or digits < 5:
        raise FieldProblem(
            "bad_format", "must be 5 to 30 characters of digits, spaces, + - ( ) and 'ext' or '转'"
        )
    return cleaned


def _check_phone(text: str, ctx: _Context) -> object:
    """Return the phone field cleaned by the rule for mobiles or for other phones."""
    if ctx.spec.name == "mobile":
        return _check_mobile(text, ctx)
    return _check_other_phone(text, ctx)


def _check_email(text: str, ctx: _Context) -> object:
    """Return the email address when it has a sane shape."""
    # NFKC folds the full-width ＠ and ． that Chinese input methods type.
    cleaned = unicodedata.normalize("NFKC", text)
    if _PLAIN_EMAIL.fullmatch(cleaned) is None and _EMAIL.fullmatch(cleaned) is None:
        raise FieldProblem("bad_format", "is not a valid email address")
    return cleaned


def _check_int(text: str, ctx: _Context) -> object:
    """Return the whole number written in `text`."""
    cleaned = unicodedata.normalize("NFKC", text)
    if not re.fullmatch(r"-?[0-9]+", cleaned):
        raise FieldProblem("bad_format", "must be a whole number")
    return int(cleaned)


def _check_postcode(text: str, ctx: _Context) -> object:
    """Return a six-digit mainland postcode."""
    cleaned = unicodedata.normalize("NFKC", text)
    if _POSTCODE.fullmatch(cleaned) is None:
        raise FieldProblem("bad_format", "must be 6 digits")
    return cleaned


_KIND_CHECKS: dict[Kind, Callable[[str, _Context], object]] = {
    Kind.TEXT: _check_text,
    Kind.CHOICE: _check_choice,
    Kind.DATE: _check_date_text,
    Kind.ID_NUMBER: _check_id_number,
    Kind.PHONE: _check_phone,
    Kind.EMAIL: _check_email,
    Kind.INT: _check_int,
}
_NAME_CHECKS: dict[str, Callable[[str, _Context], object]] = {"postcode": _check_postcode}
_BOOL, _DATE = Kind.BOOL, Kind.DATE  # module globals: reading an Enum member off its class is slow


def _clean_present(value: object, ctx: _Context) -> object:
    """Return the cleaned form of a non-empty value, or raise FieldProblem."""
    spec = ctx.spec
    if spec.kind is _BOOL:
        try:
            return parse_bool(value)
        except ValueError as exc:
            raise FieldProblem("bad_format", str(exc)) from None
    if spec.kind is _DATE and isinstance(value, date):
        return _check_date(value.date() if isinstance(value, datetime) else value, ctx)
    text = _as_text(value)
    if spec.name in NEWLINE_FIELDS:
        # Pasted Windows text carries \r\n; only the bare \n is allowed and kept.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if forbidden_characters(text, allow_newline=spec.name in NEWLINE_FIELDS):
        raise FieldProblem("control_chars", "contains control or invisible characters")
    cleaned = _NAME_CHECKS.get(spec.name, _KIND_CHECKS[spec.kind])(text, ctx)
    if isinstance(cleaned, str) and len(cleaned) > spec.max_length:
        raise _too_long(spec)
    return cleaned


def _too_long(spec: FieldSpec) -> FieldProblem:
    """Return the problem of a cleaned value longer than the field allows."""
    return FieldProblem("too_long", f"is too long (at most {spec.max_length} characters)")


def _error(spec: FieldSpec, code: str, reason: str) -> FieldError:
    """Return the FieldError for `spec` with a message that starts with its English label."""
    return FieldError(spec.name, f"{spec.label_en} {reason}", code)


def validate_field(
    name: str, value: object, record: Mapping[str, object], *, today: date
) -> tuple[object, FieldError | None, str | None]:
    """Return (cleaned value, error or None, warning or None) for one customer field."""
    spec = FIELDS_BY_NAME.get(name)
    if spec is None:
        # repr() escapes any control characters a hostile import header might carry.
        return value, FieldError(str(name), f"Unknown field {name!r}", "unknown_field"), None
    plan = _PLANS.get(name)
    if plan is None or plan.spec is not spec:
        return _validate_general(spec, value, record, today)
    return _validate_planned(plan, value, record, today)


class _FieldPlan:
    """What the fast path needs to know about one field, worked out once instead of per value."""

    __slots__ = ("spec", "empty", "optional_empty", "check", "choices")

    def __init__(self, spec: FieldSpec):
        self.spec = spec
        self.empty: object = False if spec.kind is Kind.BOOL else ""  # a checkbox has no third state
        # validate_field's whole result for an empty value when the field is optional.
        self.optional_empty = None if spec.required else (self.empty, None, None)
        # The check _clean_present picks for text; a checkbox reads the raw value instead.
        self.check: Callable[[str, _Context], object] | None = (
            None if spec.kind is Kind.BOOL else _NAME_CHECKS.get(spec.name, _KIND_CHECKS.get(spec.kind))
        )
        # A choice by its case-folded form; setdefault keeps the first, as _check_choice's loop does.
        self.choices: dict[str, str] = {}
        for choice in spec.choices:
            self.choices.setdefault(choice.casefold(), choice)


_PLANS: dict[str, _FieldPlan] = {name: _FieldPlan(spec) for name, spec in FIELDS_BY_NAME.items()}


def _validate_planned(
    plan: _FieldPlan, value: object, record: Mapping[str, object], today: date
) -> tuple[object, FieldError | None, str | None]:
    """Return validate_field's result, taking a fast path for None and for printable text."""
    spec = plan.spec
    check = plan.check
    if value is None:
        return plan.optional_empty or (plan.empty, _error(spec, "required", "is required"), None)
    if type(value) is not str or check is None:
        return _validate_general(spec, value, record, today)
    text = value.strip()
    if not text:
        return plan.optional_empty or (plan.empty, _error(spec, "required", "is required"), None)
    if not text.isprintable():
        return _validate_general(spec, value, record, today)
    # What _clean_present does with printable text: it holds no \r to fold and no forbidden
    # character, so only the field's check and the length limit remain.
    warning = None
    if check is _check_text:
        cleaned: object = text
    elif check is _check_choice and text.casefold() in plan.choices:
        cleaned = plan.choices[text.casefold()]  # a miss takes the check below, for its error
    else:
        ctx = _Context(spec, record, today)
        try:
            cleaned = check(text, ctx)
        except FieldProblem as exc:
            return "", _error(spec, exc.code, exc.reason), None
        warning = ctx.warning
    if isinstance(cleaned, str) and len(cleaned) > spec.max_length:
        problem = _too_long(spec)
        return "", _error(spec, problem.code, problem.reason), None
    return cleaned, None, (f"{spec.label_en}: {warning}" if warning else None)


def _validate_general(
    spec: FieldSpec, value: object, record: Mapping[str, object], today: date
) -> tuple[object, FieldError | None, str | None]:
    """Return validate_field's result for any value of the field `spec`."""
    if _is_empty(value):
        empty: object = False if spec.kind is Kind.BOOL else ""  # a checkbox has no third state
        error = _error(spec, "required", "is required") if spec.required else None
        return empty, error, None
    ctx = _Context(spec, record, today)
    try:
        cleaned = _clean_present(value, ctx)
    except FieldProblem as exc:
        return "", _error(spec, exc.code, exc.reason), None
    warning = f"{spec.label_en}: {ctx.warning}" if ctx.warning else None
    return cleaned, None, warning


# --- the whole record --------------------------------------------------------------

_ALL_FIELD_NAMES: tuple[str, ...] = tuple(spec.name for spec in CUSTOMER_FIELDS)

# Fields whose check reads another field: when the other one changes, re-check this one.
_DEPENDANTS: dict[str, tuple[str, ...]] = {
    "id_type": ("id_number",),
    "mobile_international": ("mobile",),
}


def _as_date(value: object) -> date | None:
    """Return `value` (an ISO string or a date) as a date, or None when it is not one."""
    if isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _identity_errors(record: Mapping[str, object], today: date) -> list[FieldError]:
    """Return errors where the resident ID disagrees with the date of birth or the sex."""
    number = record.get("id_number")
    if _record_choice(record, "id_type") != "resident_id" or not isinstance(number, str):
        return []
    try:
        parsed = parse_resident_id(number, today=today)
    except ValueError:
        return []
    spec = FIELDS_BY_NAME["id_number"]
    errors = []
    birth = _as_date(record.get("date_of_birth"))
    if birth is not None and birth != parsed.birth_date:
        errors.append(_error(spec, "dob_mismatch", "does not match Date of birth: the birth dates differ"))
    gender = record.get("gender")
    if gender in ("male", "female") and gender != parsed.sex:
        errors.append(_error(spec, "sex_mismatch", "does not match Sex: the ID number encodes the other sex"))
    return errors


def _consent_errors(record: Mapping[str, object], today: date) -> list[FieldError]:
    """Return errors where the consent date precedes birth or an under-14 customer lacks a guardian."""
    birth, consent = _as_date(record.get("date_of_birth")), _as_date(record.get("consent_date"))
    if birth is None or consent is None:
        return []
    if consent < birth:
        return [_error(FIELDS_BY_NAME["consent_date"], "consent_before_birth", "is before Date of birth")]
    guardian = record.get("guardian_name")
    if age_on(birth, consent) < GUARDIAN_AGE and not (isinstance(guardian, str) and guardian.strip()):
        reason = "is required: the customer was under 14 on the Consent date (PIPL art. 31)"
        return [_error(FIELDS_BY_NAME["guardian_name"], "guardian_required", reason)]
    return []


_Rule = Callable[[Mapping[str, object], date], list[FieldError]]

# (fields whose change triggers the rule, fields that must have passed their own check, rule).
# Failed fields are cleaned to "", which the rules read as "unknown" and skip, except where
# "" means something: a failed guardian_name is not a missing one.
_CROSS_RULES: tuple[tuple[frozenset[str], frozenset[str], _Rule], ...] = (
    (frozenset({"id_type", "id_number", "date_of_birth", "gender"}),
     frozenset({"id_type", "id_number"}), _identity_errors),
    (frozenset({"date_of_birth", "consent_date", "guardian_name"}),
     frozenset({"guardian_name"}), _consent_errors),
)


def _fields_to_check(
    data: Mapping[str, object], record: Mapping[str, object], partial: bool
) -> tuple[list[str], list[str]]:
    """Return the fields whose cleaned values are returned, and dependants that are only re-checked."""
    if not partial:
        return list(_ALL_FIELD_NAMES), []
    present = [spec.name for spec in CUSTOMER_FIELDS if spec.name in data]
    dependants = [
        d for name in present for d in _DEPENDANTS.get(name, ())
        if d not in data and not _is_empty(record.get(d))
    ]
    return present, dependants


def validate_customer(
    data: Mapping[str, object],
    *,
    today: date,
    partial: bool = False,
    existing: Mapping[str, object] | None = None,
) -> tuple[dict[str, object], list[FieldError], list[str]]:
    """Return (cleaned fields, errors, warnings) for a record or, with partial=True, a change to one."""
    # For a change request `existing` is the stored record: it supplies id_type,
    # date_of_birth etc. to rules whose other fields did not change.
    record: dict[str, object] = {**(existing or {}), **data} if partial else dict(data)
    cleaned: dict[str, object] = {}
    errors = [
        FieldError(str(key), f"Unknown field {key!r}", "unknown_field")
        for key in data if key not in FIELDS_BY_NAME
    ]
    warnings: list[str] = []
    fields, dependants = _fields_to_check(data, record, partial)
    # Every name here is a CUSTOMER_FIELDS name, so its plan is the one validate_field would use.
    for name in fields:
        value = record.get(name)
        plan = _PLANS[name]
        if value is None and plan.optional_empty is not None:
            cleaned[name] = plan.optional_empty[0]  # Fast path: an optional field left out.
            continue
        value, error, warning = _validate_planned(plan, value, record, today)
        cleaned[name] = value
        if error is not None:
            errors.append(error)
        if warning:
            warnings.append(warning)
    for name in dependants:  # re-checked only: their errors count, their values are not returned
        _value, error, warning = _validate_planned(_PLANS[name], record.get(name), record, today)
        if error is not None:
            errors.append(error)
        if warning:
            warnings.append(warning)
    errors += _cross_field_errors(record, cleaned, errors, data if partial else None, today)
    return cleaned, errors, warnings


def _cross_field_errors(
    record: Mapping[str, object],
    cleaned: Mapping[str, object],
    errors: Iterable[FieldError],
    changed: Mapping[str, object] | None,
    today: date,
) -> list[FieldError]:
    """Return the errors of every cross-field rule whose fields are valid (and, for a change, touched)."""
    failed = {e.field for e in errors}
    merged = {**record, **cleaned}
    found: list[FieldError] = []
    for triggers, needed, rule in _CROSS_RULES:
        # A change that touches none of a rule's fields must not fail on old data it did not alter.
        if failed & needed or (changed is not None and not triggers & changed.keys()):
            continue
        found += rule(merged, today)
    return found


def check_valid(
    data: Mapping[str, object],
    *,
    today: date,
    partial: bool = False,
    existing: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Return the cleaned fields, or raise ValidationError listing every error."""
    cleaned, errors, _warnings = validate_customer(data, today=today, partial=partial, existing=existing)
    if errors:
        raise ValidationError(errors)
    return cleaned


def fill_from_resident_id(data: Mapping[str, object], *, today: date) -> dict[str, object]:
    """Return date_of_birth and gender derived from a valid resident ID, for those that are empty."""
    number = data.get("id_number")
    if _record_choice(data, "id_type") != "resident_id" or not isinstance(number, str):
        return {}
    try:
        parsed = parse_resident_id(number, today=today)
    except ValueError:
        return {}
    derived = {"date_of_birth": parsed.birth_date.isoformat(), "gender": parsed.sex}
    return {name: value for name, value in derived.items() if _is_empty(data.get(name))}
