"""Blind-index normalisation: one person typed many ways yields one string."""

from __future__ import annotations

import pytest

from models.normalise import (
    convert_legacy_resident_id,
    normalise_customer_number,
    normalise_name,
    normalise_phone,
    normalise_resident_id,
    resident_id_check_char,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_char(body: str) -> str:
    """Compute the GB 11643 check character independently of the code under test."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]


def full_width(text: str) -> str:
    """Return `text` with ASCII digits and letters in their full-width forms."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


# --- resident ID -------------------------------------------------------------------


def test_check_char_matches_standard_example():
    assert resident_id_check_char("11010519491231002") == "X"  # the example in GB 11643-1999


def test_check_char_needs_17_digits():
    with pytest.raises(ValueError):
        resident_id_check_char("1234")


def test_lowercase_trailing_x_is_upper_cased():
    assert normalise_resident_id("11010519491231002x") == "11010519491231002X"


def test_full_width_digits_and_x_are_folded():
    assert normalise_resident_id(full_width("11010519491231002x")) == "11010519491231002X"


def test_spaces_dashes_and_ideographic_spaces_are_removed():
    assert normalise_resident_id(" 110105-19491231\u3000002X \t") == "11010519491231002X"


def test_legacy_15_digit_id_becomes_18_digits():
    legacy = "110105850714123"
    body = "11010519850714123"
    assert normalise_resident_id(legacy) == body + check_char(body)
    assert convert_legacy_resident_id(legacy) == body + check_char(body)


def test_legacy_with_separators_is_converted():
    body = "11010519850714123"
    assert normalise_resident_id("110105 850714 123") == body + check_char(body)


def test_does_not_validate_beyond_cleaning():
    assert normalise_resident_id("12ab-34") == "12ab34"
    assert normalise_resident_id("1234567890123x") == "1234567890123X"


def test_convert_legacy_rejects_wrong_input():
    with pytest.raises(ValueError):
        convert_legacy_resident_id("11010585071412X")


# --- phone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "0086 13812345678",
        "8613812345678",
        "(+86) 138.1234/5678",
        "138 1234 5678",
        "138-1234-5678",
        full_width("13812345678"),
        "\uff0b\uff18\uff16\u3000" + full_width("13812345678"),  # ＋８６ and an ideographic space
    ],
)
def test_mainland_mobile_forms_normalise_to_11_digits(raw):
    assert normalise_phone(raw) == "13812345678"


def test_landline_keeps_its_country_code():
    assert normalise_phone("+86 10 6512 3456") == "+861065123456"


def test_international_number_keeps_plus():
    assert normalise_phone("+44 7911 123456") == "+447911123456"


def test_prefix_not_stripped_when_rest_is_not_a_mobile():
    assert normalise_phone("86 23456789012") == "8623456789012"


# --- name --------------------------------------------------------------------------


def test_spaces_between_cjk_are_removed():
    assert normalise_name("张 三") == "张三"
    assert normalise_name(" 欧阳\u3000 娜娜 ") == "欧阳娜娜"


@pytest.mark.parametrize("dot", ["\u00b7", "\u30fb", "\u2022", "\u2027", "\uff65", "\u2219", "\u22c5"])
def test_middle_dot_variants_unify(dot):
    assert normalise_name(f"阿卜杜拉{dot}买买提") == "阿卜杜拉\u00b7买买提"


def test_spaces_around_middle_dot_are_removed():
    assert normalise_name("阿卜杜拉 · 买买提") == "阿卜杜拉\u00b7买买提"


def test_latin_is_casefolded_and_spaces_collapsed():
    assert normalise_name("  John   SMITH ") == "john smith"
    assert normalise_name("Strauß") == "strauss"


def test_full_width_latin_is_folded():
    assert normalise_name(full_width("Wang")) == "wang"


def test_space_between_cjk_and_latin_is_kept_as_one():
    assert normalise_name("王  Lily") == "王 lily"


def test_non_latin_letters_keep_their_case():
    assert normalise_name("ΑΛΕΞ") == "ΑΛΕΞ"


def test_traditional_and_simplified_stay_distinct():
    assert normalise_name("張 三") == "張三"
    assert normalise_name("張三") != normalise_name("张三")


def test_invisible_and_control_characters_are_removed():
    assert normalise_name("张\u200b三") == "张三"
    assert normalise_name("\u202e李四\u200d") == "李四"
    assert normalise_name("王\x00五\x1b") == "王五"


def test_tabs_and_line_breaks_separate_words():
    assert normalise_name("John\tSmith") == "john smith"
    assert normalise_name("John\u2028Smith") == "john smith"
    assert normalise_name("张\n三") == "张三"


def test_rare_extension_b_character_is_kept():
    assert normalise_name("\U00020000 三") == "\U00020000三"


# --- customer number -----------------------------------------------------------------


def test_customer_number_folded_unspaced_upper():
    assert normalise_customer_number(" rk-" + full_width("00a12") + " 3") == "RK-00A123"
