"""Service-layer validation of customer records (no screen)."""

from __future__ import annotations

from datetime import date

import pytest

from models.errors import ValidationError
from models.fields import CUSTOMER_FIELDS
from models.validation import (
    ERROR_CODES,
    ResidentId,
    age_on,
    check_valid,
    fill_from_resident_id,
    forbidden_characters,
    is_chinese_mobile,
    parse_date,
    parse_resident_id,
    region_warning,
    validate_customer,
    validate_field,
)

TODAY = date(2025, 6, 1)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(region: str = "110105", born: str = "19850714", seq: str = "123") -> str:
    """Return a valid 18-digit resident ID, computing the check digit independently."""
    body = region + born + seq
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]


def wrong_check(number: str) -> str:
    """Return `number` with a check character that is certainly wrong."""
    return number[:17] + ("0" if number[17] != "0" else "1")


MALE_ID = make_id()  # sequence 123: odd -> male
FEMALE_ID = make_id(seq="124")


def full_width(text: str) -> str:
    """Return `text` with ASCII digits and letters in their full-width forms."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def record(**overrides: object) -> dict[str, object]:
    """Return a complete, valid customer record with `overrides` applied."""
    base: dict[str, object] = {
        "full_name": "张三",
        "gender": "male",
        "date_of_birth": "1985-07-14",
        "id_type": "resident_id",
        "id_number": MALE_ID,
        "mobile": "13812345678",
        "category": "prospect",
        "consent_date": "2025-05-01",
        "consent_scope": "policy service",
    }
    base.update(overrides)
    return base


def codes(errors) -> set[tuple[str, str]]:
    """Return the (field, code) pairs of `errors`."""
    return {(e.field, e.code) for e in errors}


def field(name: str, value: object, rec: dict[str, object] | None = None):
    """Validate one field against `rec` (a valid record by default)."""
    return validate_field(name, value, record() if rec is None else rec, today=TODAY)


# --- resident ID parsing -------------------------------------------------------------


def test_valid_18_digit_id():
    parsed = parse_resident_id(MALE_ID, today=TODAY)
    assert parsed == ResidentId(MALE_ID, date(1985, 7, 14), "male", "110105", False)


def test_even_sequence_digit_is_female():
    assert parse_resident_id(FEMALE_ID, today=TODAY).sex == "female"


def test_standard_example_with_x():
    parsed = parse_resident_id("11010519491231002x", today=TODAY)
    assert parsed.number == "11010519491231002X"
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "female"


def test_full_width_spaces_and_dashes_accepted():
    raw = full_width(MALE_ID[:6]) + " - " + full_width(MALE_ID[6:14]) + "\u3000" + MALE_ID[14:]
    assert parse_resident_id(raw, today=TODAY).number == MALE_ID


def test_legacy_15_digit_id_is_converted():
    parsed = parse_resident_id("110105850714123", today=TODAY)
    assert parsed.number == MALE_ID
    assert parsed.legacy is True
    assert parsed.birth_date == date(1985, 7, 14)
    assert parsed.sex == "male"


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("1101051985071412", "bad_format", "18 characters"),
        ("11010519850714123456", "bad_format", "18 characters"),
        ("11010519850714A234", "bad_format", "17 digits"),
        ("11010585071412A", "bad_format", "digits only"),
        (wrong_check(MALE_ID), "bad_check_digit", "check digit"),
        (make_id(born="19850230"), "bad_date", "does not exist"),
        ("110105850230123", "bad_date", "does not exist"),
        (make_id(born="20300101"), "future_date", "future"),
        (make_id(born="18991231"), "bad_date", "1900"),
    ],
)
def test_invalid_ids_say_why(raw, code, words):
    with pytest.raises(ValueError) as info:
        parse_resident_id(raw, today=TODAY)
    assert info.value.code == code
    assert words in str(info.value)
    assert raw not in str(info.value)


def test_region_warning_only_for_unknown_province():
    assert region_warning("110105") is None
    assert region_warning("810000") is None
    assert region_warning("999999") is not None
    assert region_warning("001234") is not None


def test_unknown_province_is_a_warning_not_an_error():
    number = make_id(region="991234")
    cleaned, error, warning = field("id_number", number)
    assert (cleaned, error) == (number, None)
    assert warning is not None and "region" in warning and number[:6] not in warning


# --- small helpers -------------------------------------------------------------------


def test_is_chinese_mobile():
    assert is_chinese_mobile("13812345678")
    assert is_chinese_mobile("19912345678")
    assert not is_chinese_mobile("12812345678")
    assert not is_chinese_mobile("1381234567")
    assert not is_chinese_mobile("+8613812345678")


def test_age_uses_the_full_date():
    birth = date(2011, 6, 2)
    assert age_on(birth, date(2025, 6, 1)) == 13  # the day before the 14th birthday
    assert age_on(birth, date(2025, 6, 2)) == 14
    assert age_on(date(2012, 2, 29), date(2026, 2, 28)) == 13
    assert age_on(date(2012, 2, 29), date(2026, 3, 1)) == 14


def test_age_before_birth_is_an_error():
    with pytest.raises(ValueError):
        age_on(date(2020, 1, 2), date(2020, 1, 1))


@pytest.mark.parametrize("raw", ["1985-07-14", "19850714", full_width("1985-07-14"), " 19850714 "])
def test_parse_date_forms(raw):
    assert parse_date(raw) == date(1985, 7, 14)


@pytest.mark.parametrize(("raw", "words"), [("1985/07/14", "YYYY-MM-DD"), ("1985-7-14", "YYYY-MM-DD"),
                                            ("1985-02-30", "real date"), ("20250230", "real date")])
def test_parse_date_rejects(raw, words):
    with pytest.raises(ValueError, match=words):
        parse_date(raw)


@pytest.mark.parametrize(
    "char", ["\x1b", "\x00", "\u202e", "\u200b", "\u2028", "\ue000", "\ud800", "\U000e0001"]
)
def test_forbidden_characters(char):
    assert forbidden_characters(f"张{char}三")


def test_newline_allowed_only_when_asked():
    assert forbidden_characters("a\nb")
    assert not forbidden_characters("a\nb", allow_newline=True)
    assert forbidden_characters("a\tb", allow_newline=True)


def test_rare_ideographs_are_not_forbidden():
    # U+31350 is CJK Extension H: unassigned in older Unicode data, but a real name character.
    assert not forbidden_characters("张\U00020000\U00031350")


# --- single fields -------------------------------------------------------------------------


def test_strings_are_stripped():
    assert field("full_name", "  张三  ") == ("张三", None, None)


def test_empty_optional_becomes_empty_string():
    assert field("email", "   ") == ("", None, None)
    assert field("nationality", None) == ("", None, None)


def test_required_missing():
    cleaned, error, _ = field("full_name", " ")
    assert cleaned == "" and error.code == "required" and error.field == "full_name"
    assert error.message == "Full name is required"


def test_too_long_names_the_limit():
    value = "张" * 61
    _, error, _ = field("full_name", value)
    assert error.code == "too_long" and "60" in error.message and value not in error.message


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\u202e", "\u200b"])
def test_control_characters_rejected(char):
    value = f"张{char}三"
    _, error, _ = field("full_name", value)
    assert error.code == "control_chars"
    assert "contains control or invisible characters" in error.message
    assert value not in error.message


def test_newline_only_in_notes():
    assert field("notes", "line one\r\nline two") == ("line one\nline two", None, None)
    assert field("street", "line one\nline two")[1].code == "control_chars"


@pytest.mark.parametrize(("value", "expected"), [("male", "male"), ("Female", "female"), (" MALE ", "male")])
def test_choices(value, expected):
    assert field("gender", value) == (expected, None, None)


def test_bad_choice_lists_the_choices():
    _, error, _ = field("gender", "unknown")
    assert error.code == "bad_choice" and "male, female" in error.message and "unknown" not in error.message


def test_int_code_choice_from_spreadsheet():
    assert field("occupation_class", 3) == ("3", None, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("YES", True), ("1", True), ("是", True), (True, True), (1, True),
     ("false", False), ("no", False), ("0", False), ("否", False), (False, False), ("", False)],
)
def test_bools(value, expected):
    assert field("consent_marketing", value) == (expected, None, None)


def test_bad_bool():
    assert field("consent_marketing", "maybe")[1].code == "bad_format"


def test_dates_become_iso():
    assert field("date_of_birth", "19850714", record(id_type="passport"))[0] == "1985-07-14"
    assert field("consent_date", date(2025, 5, 1))[0] == "2025-05-01"


@pytest.mark.parametrize(("value", "code"), [("2025-02-30", "bad_date"), ("14/07/1985", "bad_date"),
                                             ("2025-06-02", "future_date"), ("1899-12-31", "bad_date")])
def test_bad_dates(value, code):
    _, error, _ = field("date_of_birth", value)
    assert error.code == code and value not in error.message and "Date of birth" in error.message


def test_today_is_not_the_future():
    assert field("consent_date", "2025-06-01") == ("2025-06-01", None, None)


def test_resident_id_field_is_cleaned_to_18_digits():
    raw = MALE_ID[:17] + " " + MALE_ID[17:]
    assert field("id_number", raw) == (MALE_ID, None, None)


def test_lowercase_x_in_field():
    assert field("id_number", "11010519491231002x")[0] == "11010519491231002X"


def test_legacy_id_in_field_warns_about_conversion():
    cleaned, error, warning = field("id_number", "110105850714123")
    assert (cleaned, error) == (MALE_ID, None)
    assert "15-digit" in warning


def test_bad_check_digit_in_field():
    value = wrong_check(MALE_ID)
    _, error, _ = field("id_number", value)
    assert error.code == "bad_check_digit" and error.field == "id_number"
    assert error.message.startswith("ID number ") and value not in error.message


def test_impossible_birth_date_in_id_field():
    value = make_id(born="19850230")
    _, error, _ = field("id_number", value)
    assert error.code == "bad_date" and value not in error.message


def test_other_id_types():
    rec = record(id_type="passport")
    assert field("id_number", " e1234567 ", rec) == ("E1234567", None, None)
    assert field("id_number", "AB-123", rec)[1] is None
    assert field("id_number", "E12", rec)[1].code == "bad_format"
    assert field("id_number", "E123 4567", rec)[1].code == "bad_format"


@pytest.mark.parametrize(
    "raw",
    ["+86 138 1234 5678", "0086-138-1234-5678", "86 13812345678", "138 1234 5678", full_width("13812345678")],
)
def test_mobile_normalised(raw):
    assert field("mobile", raw) == ("13812345678", None, None)


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "+44 7911 123456", "010-65123456"])
def test_bad_mainland_mobile(raw):
    _, error, _ = field("mobile", raw)
    assert error.code == "bad_format" and raw not in error.message and "Mobile phone" in error.message


def test_international_mobile():
    rec = record(mobile_international="yes")
    assert field("mobile", "+44 7911 123456", rec) == ("+447911123456", None, None)
    assert field("mobile", "+86 138 1234 5678", rec) == ("+8613812345678", None, None)


@pytest.mark.parametrize("raw", ["07911 123456", "+44 12", "+999 123456789"])
def test_bad_international_mobile(raw):
    _, error, _ = field("mobile", raw, record(mobile_international=True))
    assert error.code == "bad_format" and raw not in error.message


def test_international_landline_is_a_warning():
    cleaned, error, warning = field("mobile", "+44 20 7946 0958", record(mobile_international=True))
    assert cleaned == "+442079460958" and error is None and "mobile" in warning


@pytest.mark.parametrize("raw", ["010-6512 3456", "(010) 65123456 ext 12", "+86 10 6512 3456 转 8", "6512345"])
def test_other_phone_ok(raw):
    assert field("other_phone", raw)[1] is None


@pytest.mark.parametrize("raw", ["1234", "call 6512345", "010#65123456", "((( )))"])
def test_other_phone_bad(raw):
    assert field("other_phone", raw)[1].code == "bad_format"


def test_other_phone_too_long():
    assert field("other_phone", "1" * 31)[1].code == "too_long"


@pytest.mark.parametrize(
    "raw", ["a@example.com", "zhang.san+ins@mail.example.cn", "李@例子.中国", "a\uff20example.com"]
)
def test_email_ok(raw):
    assert field("email", raw)[1] is None


@pytest.mark.parametrize("raw", ["a@b", "a@@example.com", "a b@example.com", "@example.com", "a@example."])
def test_email_bad(raw):
    _, error, _ = field("email", raw)
    assert error.code == "bad_format" and raw not in error.message


def test_postcode():
    assert field("postcode", full_width("100000")) == ("100000", None, None)
    assert field("postcode", "10000")[1].code == "bad_format"
    assert field("postcode", 100000) == ("100000", None, None)


def test_wrong_type_rejected():
    assert field("full_name", 3.5)[1].code == "bad_type"


def test_unknown_field():
    _, error, _ = field("favourite_colour", "blue")
    assert error.code == "unknown_field"


# --- whole records ---------------------------------------------------------------------


def test_valid_record():
    cleaned, errors, warnings = validate_customer(record(), today=TODAY)
    assert errors == [] and warnings == []
    assert set(cleaned) == {f.name for f in CUSTOMER_FIELDS}
    assert cleaned["id_number"] == MALE_ID
    assert cleaned["mobile_international"] is False and cleaned["email"] == ""


def test_every_error_code_is_declared():
    bad = record(full_name="\x1b", gender="x", date_of_birth="2030-01-01", id_number="1", extra=1)
    _, errors, _ = validate_customer(bad, today=TODAY)
    assert {e.code for e in errors} <= set(ERROR_CODES)


def test_missing_required_fields_reported():
    _, errors, _ = validate_customer({}, today=TODAY)
    required = {f.name for f in CUSTOMER_FIELDS if f.required}
    assert codes(errors) == {(name, "required") for name in required}


def test_unknown_keys_rejected():
    _, errors, _ = validate_customer(record(shoe_size="42"), today=TODAY)
    assert codes(errors) == {("shoe_size", "unknown_field")}


def test_dob_mismatch_reported_on_id_number():
    _, errors, _ = validate_customer(record(date_of_birth="1985-07-15"), today=TODAY)
    assert codes(errors) == {("id_number", "dob_mismatch")}
    assert "Date of birth" in errors[0].message
    assert "1985" not in errors[0].message and MALE_ID not in errors[0].message


def test_sex_mismatch_reported_on_id_number():
    _, errors, _ = validate_customer(record(gender="female"), today=TODAY)
    assert codes(errors) == {("id_number", "sex_mismatch")}
    assert "Sex" in errors[0].message


def test_both_mismatches_reported():
    _, errors, _ = validate_customer(record(gender="female", date_of_birth="1990-01-01"), today=TODAY)
    assert codes(errors) == {("id_number", "dob_mismatch"), ("id_number", "sex_mismatch")}


def test_no_mismatch_check_for_other_id_types():
    _, errors, _ = validate_customer(record(id_type="passport", id_number="E1234567", gender="female"),
                                     today=TODAY)
    assert errors == []


def test_consent_before_birth():
    _, errors, _ = validate_customer(record(consent_date="1980-01-01"), today=TODAY)
    assert codes(errors) == {("consent_date", "consent_before_birth")}


def child(**overrides: object) -> dict[str, object]:
    """Return a valid record of a child who turns 14 on 2025-06-02."""
    return record(date_of_birth="2011-06-02", id_number=make_id(born="20110602"), **overrides)


def test_under_14_needs_guardian():
    _, errors, _ = validate_customer(child(consent_date="2025-06-01"), today=TODAY)
    assert codes(errors) == {("guardian_name", "guardian_required")}
    assert "14" in errors[0].message


def test_under_14_with_guardian_is_valid():
    _, errors, _ = validate_customer(child(consent_date="2025-06-01", guardian_name="张大"), today=TODAY)
    assert errors == []


def test_age_counted_on_consent_date_not_today():
    later = date(2025, 7, 1)
    _, errors, _ = validate_customer(child(consent_date="2025-06-02"), today=later)
    assert errors == []
    _, errors, _ = validate_customer(child(consent_date="2025-06-01"), today=later)
    assert codes(errors) == {("guardian_name", "guardian_required")}


def test_invalid_guardian_name_is_not_reported_twice():
    _, errors, _ = validate_customer(child(guardian_name="张\x1b"), today=TODAY)
    assert codes(errors) == {("guardian_name", "control_chars")}


def test_check_valid_raises_with_every_error():
    with pytest.raises(ValidationError) as info:
        check_valid(record(full_name="", mobile="123"), today=TODAY)
    assert set(info.value.by_field()) == {"full_name", "mobile"}


def test_check_valid_returns_cleaned():
    assert check_valid(record(mobile="+86 138-1234-5678"), today=TODAY)["mobile"] == "13812345678"


# --- partial (change requests) ----------------------------------------------------------


def test_partial_checks_only_present_fields():
    cleaned, errors, _ = validate_customer({"email": " a@example.com "}, today=TODAY, partial=True)
    assert (cleaned, errors) == ({"email": "a@example.com"}, [])


def test_partial_unknown_field():
    _, errors, _ = validate_customer({"nickname": "x"}, today=TODAY, partial=True)
    assert codes(errors) == {("nickname", "unknown_field")}


def test_partial_uses_existing_record_for_cross_field_rules():
    existing = check_valid(record(), today=TODAY)
    _, errors, _ = validate_customer({"gender": "female"}, today=TODAY, partial=True, existing=existing)
    assert codes(errors) == {("id_number", "sex_mismatch")}


def test_partial_rechecks_id_number_when_id_type_changes():
    existing = check_valid(record(id_type="passport", id_number="E1234567"), today=TODAY)
    cleaned, errors, _ = validate_customer({"id_type": "resident_id"}, today=TODAY, partial=True,
                                           existing=existing)
    assert cleaned == {"id_type": "resident_id"}
    assert codes(errors) == {("id_number", "bad_format")}


def test_partial_ignores_old_problems_it_does_not_touch():
    existing = dict(check_valid(record(), today=TODAY), gender="female")  # stored before the rule existed
    _, errors, _ = validate_customer({"email": "a@example.com"}, today=TODAY, partial=True, existing=existing)
    assert errors == []


def test_partial_without_existing_does_not_invent_required_errors():
    _, errors, _ = validate_customer({"id_type": "passport"}, today=TODAY, partial=True)
    assert errors == []


# --- filling from the ID ------------------------------------------------------------------


def test_fill_from_resident_id_fills_empty_fields():
    data = {"id_type": "resident_id", "id_number": FEMALE_ID, "date_of_birth": "", "gender": None}
    assert fill_from_resident_id(data, today=TODAY) == {"date_of_birth": "1985-07-14", "gender": "female"}


def test_fill_does_not_overwrite():
    data = {"id_type": "resident_id", "id_number": FEMALE_ID, "date_of_birth": "1985-07-14", "gender": ""}
    assert fill_from_resident_id(data, today=TODAY) == {"gender": "female"}


@pytest.mark.parametrize(
    "data",
    [{"id_type": "passport", "id_number": FEMALE_ID},
     {"id_type": "resident_id", "id_number": wrong_check(FEMALE_ID)},
     {"id_type": "resident_id"}],
)
def test_fill_needs_a_valid_resident_id(data):
    assert fill_from_resident_id(data, today=TODAY) == {}


# --- privacy of messages ---------------------------------------------------------------------


def test_no_message_or_warning_echoes_the_value():
    secret_name = "秘密名字\x1b"
    bad = record(
        full_name=secret_name, id_number=wrong_check(MALE_ID), mobile="19999999", email="secret@@example.com",
        postcode="12a456", other_phone="secret-phone", notes="秘" * 501, date_of_birth="2099-12-31",
    )
    _, errors, warnings = validate_customer(bad, today=TODAY)
    assert len(errors) >= 8
    text = " ".join([e.message for e in errors] + warnings)
    for value in (secret_name, "秘密", wrong_check(MALE_ID), "19999999", "secret", "12a456", "2099"):
        assert value not in text
