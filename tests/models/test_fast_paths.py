"""The fast paths of validation and normalisation give exactly what the general code gives.

Each fast path skips steps it can prove change nothing; these tests compare it with the
general path (or with the plain definition the fast path replaced) on common and odd input.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import normalise, validation
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME

TODAY = date(2025, 6, 1)

# Characters the fast paths treat specially, and their awkward neighbours.
ODD = (
    "0123456789xX-. ()/+@_%\t\n\r\x0b\x0c\x1c\x1f\x7f\x00\x85\xa0\u00b7\u30fb\uff65\u2027\u2022"
    "\u200b\u200d\u2028\u2029\u3000\ufeff\ud800\ue000\u0378\u0301\uf900\u3005\u3400\u4dbf\u4e00\u9fff"
    "\uac00\U00020000\U0002f800\U00030000\U000e0001ǰİßſKÆǅΣσς"
    "ＡＺａｚ０９－＠．\uff0e韩秀云阿卜杜拉买买提Zoëabcxyz"
)
odd_text = st.text(alphabet=st.sampled_from(ODD), max_size=24)
any_text = st.text(max_size=24)


def reference_name(raw: str) -> str:
    """normalise_name without its fast paths."""
    return normalise._normalise_name_general(raw)


def reference_clean_resident_id(raw: str) -> str:
    """clean_resident_id as first written: per-character, no fast path."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(c for c in text if not c.isspace() and c != "-")
    return text[:-1] + "X" if text.endswith("x") else text


def reference_phone(raw: str) -> str:
    """normalise_phone as first written: always fold and strip."""
    text = re.sub(r"[\s\-()./]+", "", unicodedata.normalize("NFKC", raw))
    match = re.fullmatch(r"(?:\+86|0086|86)(1[0-9]{10})", text)
    return match.group(1) if match else text


def reference_check_char(body: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, normalise.RESIDENT_ID_WEIGHTS)) % 11]


def reference_parse_date(raw: str) -> date:
    """parse_date without its fast path."""
    text = unicodedata.normalize("NFKC", raw).strip()
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", text) or re.fullmatch(
        r"([0-9]{4})([0-9]{2})([0-9]{2})", text
    )
    if match is None:
        raise ValueError("must be written as YYYY-MM-DD or YYYYMMDD")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ValueError("is not a real date (check the month and day)") from None


def outcome(function, *args, **kwargs):
    """Return what `function` returns, or the type and text of what it raises."""
    try:
        return ("returned", repr(function(*args, **kwargs)))
    except Exception as exc:  # the comparison is the point: any exception must match too
        return ("raised", type(exc).__name__, str(exc))


# --- normalise_name ---------------------------------------------------------------


def test_every_plain_han_character_is_left_alone():
    for lo, hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF)):
        for code in range(lo, hi + 1):
            char = chr(code)
            assert normalise.normalise_name(char) == reference_name(char) == char


def test_every_single_character_matches_the_general_path():
    # Every BMP code point, and a sample of the rest (the fast paths never take those).
    for code in [*range(0x10000), *range(0x10000, 0x110000, 97)]:
        for text in (chr(code), "韩" + chr(code) + "云", "a " + chr(code) + " B"):
            assert normalise.normalise_name(text) == reference_name(text), hex(code)


@pytest.mark.parametrize("raw", [
    "韩秀云", "欧阳建国", "阿卜杜拉·买买提", "·", "John Smith", "  John   SMITH ", "o'Neil-Smith", "",
    " ", "a\tb", "张 三", "张\u3000三", "Zoë", "\x7f", "ABC\x1cdef", "韩\u200b秀云",
])
def test_common_names_match_the_general_path(raw):
    assert normalise.normalise_name(raw) == reference_name(raw)


@settings(max_examples=400, deadline=None)
@given(st.one_of(odd_text, any_text, st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=24)))
def test_names_match_the_general_path(raw):
    assert normalise.normalise_name(raw) == reference_name(raw)


# --- resident ID and phone ----------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.one_of(odd_text, any_text, st.from_regex(r"[0-9]{14,17}[0-9xX]", fullmatch=True)))
def test_resident_id_cleaning_matches_the_plain_definition(raw):
    assert normalise.clean_resident_id(raw) == reference_clean_resident_id(raw)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_check_char_matches_the_plain_sum(body):
    assert normalise.resident_id_check_char(body) == reference_check_char(body)


@settings(max_examples=400, deadline=None)
@given(st.one_of(odd_text, any_text, st.from_regex(r"\+?(00)?(86)?1[0-9]{10}", fullmatch=True),
                 st.from_regex(r"[0-9]{0,16}", fullmatch=True)))
def test_phone_normalisation_matches_the_plain_definition(raw):
    assert normalise.normalise_phone(raw) == reference_phone(raw)


# --- dates and email ----------------------------------------------------------------


def test_iso_dates_match_the_general_path():
    for year in ("0000", "0001", "0999", "1900", "2024", "9999"):
        for month in range(100):
            for day in range(100):
                raw = f"{year}-{month:02d}-{day:02d}"
                assert outcome(validation.parse_date, raw) == outcome(reference_parse_date, raw), raw


@settings(max_examples=400, deadline=None)
@given(st.one_of(odd_text, st.from_regex(r"\s?[0-9]{4}-?[0-9]{2}-?[0-9]{2}\s?", fullmatch=True)))
def test_dates_match_the_general_path(raw):
    assert outcome(validation.parse_date, raw) == outcome(reference_parse_date, raw)


@settings(max_examples=400, deadline=None)
@given(st.one_of(odd_text, st.from_regex(r"[a-z0-9._%+\-]{1,70}@([a-z0-9\-_]{0,5}\.){1,3}[a-z0-9\-]{0,4}",
                                         fullmatch=True)))
def test_plain_email_shape_implies_the_full_rule(raw):
    if validation._PLAIN_EMAIL.fullmatch(raw):
        assert validation._EMAIL.fullmatch(raw)


# --- validate_field and validate_customer --------------------------------------------

VALUES = [
    None, "", "  ", "\t", "韩秀云", " 韩秀云 ", "x" * 600, "a\r\nb", "a\nb", "\u200b", "\ud800", "\U00030000",
    "male", " FEMALE ", "ＭＡＬＥ", "ſ", "resident_id", "Passport", "prospect", "1", "7",
    "1960-02-07", "19600207", "１９６０－０２－０７", "2023-02-29", "9999-12-31", "1899-12-31",
    date(1960, 2, 7), datetime(1960, 2, 7, 8, 30), 12345, 0, 1, True, 3.5,
    "yes", "是", "否", "no", "14055547597", "+86 140 5554 7597", "+44 7911 123456", "010-1234 5678 ext 9",
    "min@126.com", "ａ＠ｂ．ｃｎ", "a@b..com", "403298", "４０３２９８", "4032", "11010519491231002x",
    "110105194912310021", "110105850714123", "990105850714123", "110105-19491231-002X", "ABC-12345",
]
RECORDS = [{}, {"id_type": "resident_id"}, {"id_type": "passport"}, {"mobile_international": "yes"}]


@pytest.mark.parametrize("spec", CUSTOMER_FIELDS, ids=lambda spec: spec.name)
def test_planned_field_matches_the_general_path(spec):
    plan = validation._PLANS[spec.name]
    for value in VALUES:
        for record in RECORDS:
            fast = validation._validate_planned(plan, value, record, TODAY)
            general = validation._validate_general(spec, value, record, TODAY)
            assert repr(fast) == repr(general), (spec.name, value, record)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CUSTOMER_FIELDS), st.one_of(odd_text, any_text), st.sampled_from(RECORDS))
def test_planned_field_matches_the_general_path_on_any_text(spec, value, record):
    fast = validation._validate_planned(validation._PLANS[spec.name], value, record, TODAY)
    assert repr(fast) == repr(validation._validate_general(spec, value, record, TODAY))


def reference_validate_customer(data, *, today, partial=False, existing=None):
    """validate_customer as first written: every field through the general path, in one loop."""
    record = {**(existing or {}), **data} if partial else dict(data)
    cleaned = {}
    errors = [
        validation.FieldError(str(key), f"Unknown field {key!r}", "unknown_field")
        for key in data if key not in FIELDS_BY_NAME
    ]
    warnings = []
    fields, dependants = validation._fields_to_check(data, record, partial)
    for name in fields + dependants:
        value, error, warning = validation._validate_general(FIELDS_BY_NAME[name], record.get(name), record, today)
        if name in fields:
            cleaned[name] = value
        errors += [error] if error else []
        warnings += [warning] if warning else []
    errors += validation._cross_field_errors(record, cleaned, errors, data if partial else None, today)
    return cleaned, errors, warnings


BASE = {
    "full_name": "韩秀云", "gender": "female", "date_of_birth": "1960-02-07", "id_type": "resident_id",
    "id_number": "440106196002078788", "mobile": "14055547597", "email": "min36764@126.com",
    "province": "广西壮族自治区", "city": "淮安", "street": "潮州路x座", "postcode": "403298",
    "category": "terminated", "branch": "北京朝阳支公司", "consent_date": "2023-06-26",
    "consent_scope": "投保、核保、理赔及客户服务",
}


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from([spec.name for spec in CUSTOMER_FIELDS] + ["bogus"]),
                    st.sampled_from(VALUES), max_size=5),
    st.booleans(),
)
def test_customer_matches_the_general_path(changes, partial):
    data = changes if partial else {**BASE, **changes}
    for today in (TODAY, date(1960, 2, 7)):
        fast = validation.validate_customer(data, today=today, partial=partial, existing=BASE)
        general = reference_validate_customer(data, today=today, partial=partial, existing=BASE)
        assert repr(fast) == repr(general)
