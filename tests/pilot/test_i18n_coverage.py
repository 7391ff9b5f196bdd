"""Every message the interface shows is in the Chinese catalogue, translated, and the compiled .mo is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.fields import CUSTOMER_FIELDS
from tui.i18n import field_label, set_language
from tui.locale import extract
from tui.locale.compile import compile_catalogue

MO_PATH = extract.PO_PATH.with_suffix(".mo")


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    set_language("en")


def test_every_message_the_interface_uses_is_translated():
    missing = extract.missing_messages()
    listing = "\n".join(f"  {places[0]}: {msgid!r}" for msgid, places in missing.items())
    assert not missing, (f"{len(missing)} message(s) missing or untranslated in {extract.PO_PATH.name} "
                         f"(add them with `python tui/locale/extract.py --update`, translate, compile):\n{listing}")


def test_compiled_catalogue_is_current(tmp_path):
    fresh = compile_catalogue(extract.PO_PATH, tmp_path / "recordkeeper.mo")
    assert fresh.read_bytes() == MO_PATH.read_bytes(), "run `python tui/locale/compile.py` and commit the .mo"


def test_the_extractor_finds_every_kind_of_message(tmp_path):
    (tmp_path / "screens").mkdir()
    (tmp_path / "tui").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "screens" / "sample.py").write_text(
        'from textual.binding import Binding\n'
        'STATE_LABELS = {"draft": "Draft", "done": "Approved"}\n'
        'GROUP_TITLES = {"identity": N_("Identity")}\n'
        'OTHER = {"x": "not a message"}\n'
        'class S:\n'
        '    BINDINGS = [Binding("f2", "save", "Save", id="s.save", tooltip="Save the form"),\n'
        '                Binding("f3", "x", description="Extra", tooltip="")]\n'
        '    def show(self, value):\n'
        '        return _("Saved {n} fields").format(n=1) + _(value) + self.app._("Nested")\n'
        '        + _("Two " "parts")\n',
        encoding="utf-8")
    (tmp_path / "tui" / "widget.py").write_text('print(_("中文 is fine too"))\n', encoding="utf-8")
    (tmp_path / "models" / "home.py").write_text(
        'MENU = (("intake", "Intake", Perm.INTAKE, ""), ("audit", "Audit log", Perm.AUDIT_VIEW, ""))\n',
        encoding="utf-8")
    (tmp_path / "models" / "other.py").write_text(
        'X = N_("Marked in a model")\nDOC_TYPE_LABELS = {"id": "ID card copy"}\nY = "plain"\n', encoding="utf-8")
    found = extract.collect(tmp_path, include_textual=False)
    assert set(found) == {"Draft", "Approved", "Identity", "Save", "Save the form", "Extra", "Saved {n} fields",
                          "Nested", "Two parts", "中文 is fine too", "Intake", "Audit log", "Marked in a model",
                          "ID card copy"}
    assert found["Save"] == ["screens/sample.py:6"]


def test_untranslated_and_fuzzy_entries_count_as_missing(tmp_path):
    (tmp_path / "screens").mkdir()
    (tmp_path / "screens" / "s.py").write_text('_("Done"); _("Empty"); _("Guess"); _("Absent"); _("Two")\n')
    po_path = tmp_path / "catalogue.po"
    po_path.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Done"\nmsgstr "完成"\n\n'
        'msgid "Empty"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Guess"\nmsgstr "猜"\n\n'
        'msgid ""\n"Two"\nmsgstr ""\n"两个"\n',
        encoding="utf-8")
    missing = extract.missing_messages(tmp_path, po_path, include_textual=False)
    assert list(missing) == ["Empty", "Guess", "Absent"]
    assert extract.append_missing(missing, po_path) == 1  # only "Absent" is new; the others await translation
    assert 'msgid "Absent"\nmsgstr ""' in po_path.read_text(encoding="utf-8")
    assert list(extract.missing_messages(tmp_path, po_path, include_textual=False)) == ["Empty", "Guess", "Absent"]


def test_field_labels_come_from_the_field_table_in_both_languages():
    spec = next(spec for spec in CUSTOMER_FIELDS if spec.name == "id_number")
    assert field_label(spec) == "ID number"
    set_language("zh")
    assert field_label(spec) == "证件号码"
    assert all(field_label(spec) and field_label(spec) != spec.label_en for spec in CUSTOMER_FIELDS)


def test_messages_built_by_models_are_translated_by_parts():
    from models.errors import FieldError
    from models.fields import FIELDS_BY_NAME
    from models.validation import validate_field
    from tui.i18n import _

    set_language("zh")
    spec = FIELDS_BY_NAME["full_name"]
    _cleaned, error, _warning = validate_field("full_name", "王" * (spec.max_length + 1), {}, today=None)
    assert isinstance(error, FieldError) and error.message.startswith(spec.label_en)
    assert _(error.message) == f"姓名太长（最多 {spec.max_length} 个字符）"
    assert _("Category cannot change from prospect to terminated") == "客户类别不能从“潜在客户”改为“已终止”"
    assert _("no such label") == "没有该标签"
    assert _("A message no catalogue holds") == "A message no catalogue holds"
    set_language("en")
    assert _(error.message) == error.message


def test_the_keys_of_textual_widgets_are_messages_too():
    found = extract.collect()
    assert "Page Down" in found and "Select all" in found and "Focus Next" in found
    assert not any(place.startswith("textual/demo/") for places in found.values() for place in places)
