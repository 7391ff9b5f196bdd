"""The label set (records officer): name, a colour from the theme, a description; retire or restore.

Labelling a customer happens in the customer's file (F6) and is recorded in their history.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Select, Static

from models import browse, labels as labels_mod
from models.errors import PermissionDenied, RecordKeeperError, ValidationError
from models.labels import LABEL_COLOURS, LabelView
from models.permissions import Actor
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.field_input import FieldInput
from tui.widgets.footer import Footer

COLOUR_WORDS = {"primary": N_("blue"), "accent": N_("teal"), "state-ok": N_("green"),
                "state-warning": N_("amber"), "state-danger": N_("red"), "state-muted": N_("grey")}
ERROR_TEXT = {"bad_format": N_("Use 1 to 30 visible characters."), "duplicate": N_("Already a label with this name."),
              "bad_choice": N_("Pick a colour from the list.")}


def colour_swatch(colour: str) -> Content:
    return Content.assemble(("■ ", f"${colour}"), _(COLOUR_WORDS.get(colour, colour)))


class LabelsScreen(Screen[None]):
    """List the labels with how many customers carry each; F3 adds one, Enter edits, F6 retires."""

    CSS_PATH = "labels.tcss"
    AUTO_FOCUS = "#labels-table"
    BINDINGS = [
        Binding("f3", "new", "New label", id="labels.new", tooltip="Add a label", priority=True),
        Binding("f2", "save", "Save", id="labels.save", tooltip="Save the label being edited"),
        Binding("f6", "toggle_active", "Retire/restore", id="labels.toggle",
                tooltip="Retire a label (it stays on customers, hidden from choices) or restore it"),
        Binding("escape", "back", "Back", id="labels.back", tooltip="Close the form, or go home"),
        Binding("question_mark", "app.help", "Help", id="labels.help", tooltip="Show the keys", show=False),
    ]

    @dataclass
    class Loaded(Message):
        labels: list[LabelView]
        usage: dict[int, int]

    @dataclass
    class Saved(Message):
        label: LabelView

    @dataclass
    class Refused(Message):
        errors: dict[str, str]
        message: str = ""

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.labels: list[LabelView] = []
        self.editing: LabelView | None = None
        self.form_open = False

    def compose(self) -> ComposeResult:
        with Vertical(id="labels"):
            yield Static(Content(_("Labels · how customers are marked so they can be found")), id="labels-head",
                         classes="title")
            yield DataTable(id="labels-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="label-form"):
                yield Static("", id="label-form-title", classes="title")
                with Horizontal(classes="label-row"):
                    yield Label(_("Label name"), classes="label-label")
                    yield FieldInput(id="label-name", max_length=30)
                    yield Static("", id="label-name-error", classes="label-error")
                with Horizontal(classes="label-row"):
                    yield Label(_("Colour"), classes="label-label")
                    yield Select([(colour_swatch(c), c) for c in LABEL_COLOURS], id="label-colour",
                                 allow_blank=False, value="primary", compact=True)
                    yield Static("", id="label-colour-error", classes="label-error")
                with Horizontal(classes="label-row"):
                    yield Label(_("Description"), classes="label-label")
                    yield FieldInput(id="label-description", max_length=200)
                    yield Static("", id="label-description-error", classes="label-error")
            yield Static("", id="labels-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#labels-table", DataTable)
        for key, label, width in (("colour", N_("Colour"), 8), ("name", N_("Label name"), 16),
                                  ("description", N_("Description"), 26), ("count", N_("Customers"), 9),
                                  ("state", N_("State"), 7)):
            table.add_column(Content(_(label)), width=width, key=key)
        self.query_one("#label-form").display = False
        self.load()

    @work(thread=True, exclusive=True, group="labels", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(labels_mod.list_labels(self.actor, include_inactive=True),
                                          browse.label_usage(self.actor)))
        except RecordKeeperError:
            self.post_message(self.Refused({}, _("The labels could not be read.")))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.labels = message.labels
        table = self.query_one("#labels-table", DataTable)
        row = table.cursor_row
        table.clear()
        for label in self.labels:
            table.add_row(colour_swatch(label.colour), safe_text(label.name, 16), safe_text(label.description, 26),
                          Content(f"{message.usage.get(label.label_id, 0):>9,}"),
                          Content(_("in use") if label.active else _("retired")), key=str(label.label_id))
        if self.labels:
            table.move_cursor(row=min(max(row, 0), len(self.labels) - 1))
        self._message(_("F3: new label · Enter: edit · F6: retire or restore") if self.labels
                      else _("No labels yet. F3 adds the first."))

    def _message(self, text: str) -> None:
        self.query_one("#labels-message", Static).update(Content(text))

    def _current(self) -> LabelView | None:
        table = self.query_one("#labels-table", DataTable)
        if not self.labels or table.cursor_row < 0:
            return None
        return self.labels[min(table.cursor_row, len(self.labels) - 1)]

    # --- the form --------------------------------------------------------------------------

    def _open_form(self, label: LabelView | None) -> None:
        self.editing = label
        self.form_open = True
        self.query_one("#label-form").display = True
        self.query_one("#label-form-title", Static).update(
            Content(_("New label") if label is None else _("Edit label")))
        self.query_one("#label-name", Input).value = label.name if label else ""
        self.query_one("#label-colour", Select).value = label.colour if label else "primary"
        self.query_one("#label-description", Input).value = label.description if label else ""
        self._clear_errors()
        self.set_focus(self.query_one("#label-name", Input))  # at once: the name may be typed right after F3
        self._message(_("F2: save · Esc: close without saving"))

    def _close_form(self) -> None:
        self.form_open = False
        self.editing = None
        self.query_one("#label-form").display = False
        self.query_one("#labels-table", DataTable).focus()

    def _clear_errors(self) -> None:
        for name in ("name", "colour", "description"):
            self.query_one(f"#label-{name}-error", Static).update("")

    @on(Select.Changed, "#label-colour")
    def _colour_chosen(self) -> None:
        select = self.query_one("#label-colour", Select)
        if self.form_open and select.has_focus and not select.expanded:
            self.query_one("#label-description", Input).focus()  # a colour picked: on to the next field

    def action_new(self) -> None:
        self._open_form(None)

    @on(DataTable.RowSelected, "#labels-table")
    def _edit(self) -> None:
        label = self._current()
        if label is not None:
            self._open_form(label)

    def action_save(self) -> None:
        if not self.form_open:
            return
        name = self.query_one("#label-name", Input).value
        colour = str(self.query_one("#label-colour", Select).value)
        description = self.query_one("#label-description", Input).value
        self._message(_("Saving…"))
        self.save(self.editing, name, colour, description)

    @work(thread=True, exclusive=True, group="labels-save", exit_on_error=False)
    def save(self, editing: LabelView | None, name: str, colour: str, description: str) -> None:
        try:
            if editing is None:
                saved = labels_mod.create_label(self.actor, name, colour, description)
            else:
                saved = labels_mod.update_label(self.actor, editing.label_id, name, colour, description,
                                                editing.active)
        except ValidationError as exc:
            self.post_message(self.Refused({e.field: _(ERROR_TEXT.get(e.code, "Check this field."))
                                            for e in exc.errors}, _("Not saved: see the marked fields.")))
            return
        except PermissionDenied:
            self.post_message(self.Refused({}, _("Only the records officer manages labels.")))
            return
        except RecordKeeperError:
            self.post_message(self.Refused({}, _("The label could not be saved.")))
            return
        self.post_message(self.Saved(saved))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        if self.form_open:
            self._close_form()
        self._message(_("Saved label {name}.").format(name=safe_plain(message.label.name, 30)))
        self.load()

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self._clear_errors()
        for field_name, text in message.errors.items():
            if field_name in ("name", "colour", "description"):
                self.query_one(f"#label-{field_name}-error", Static).update(Content(text))
        self._message(message.message)

    def action_toggle_active(self) -> None:
        from screens.dialogs.confirm import ConfirmDialog

        label = self._current()
        if label is None or self.form_open:
            return
        question = (_("Retire label {name}? It stays on customers but is no longer offered.") if label.active
                    else _("Restore label {name}?")).format(name=safe_plain(label.name, 30))
        self.app.push_screen(ConfirmDialog(question), callback=lambda yes: self.save_active(label) if yes else None)

    def save_active(self, label: LabelView) -> None:
        self.set_active(label)

    @work(thread=True, exclusive=True, group="labels-save", exit_on_error=False)
    def set_active(self, label: LabelView) -> None:
        try:
            saved = labels_mod.update_label(self.actor, label.label_id, label.name, label.colour, label.description,
                                            not label.active)
        except PermissionDenied:
            self.post_message(self.Refused({}, _("Only the records officer manages labels.")))
            return
        except RecordKeeperError:
            self.post_message(self.Refused({}, _("The label could not be saved.")))
            return
        self.post_message(self.Saved(saved))

    def action_back(self) -> None:
        if self.form_open:
            self._close_form()
            self._message("")
            return
        self.dismiss(None)
