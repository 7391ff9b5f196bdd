"""Intake: the clerk's list of drafts and returned forms, and the customer data form itself.

The form is saved as an encrypted draft at every field exit and every couple of seconds of
typing (in a thread worker), so a dropped link loses at most the last two seconds; on SIGHUP
the app calls `save_draft_now()`. Field rules run when a field is left and again in the
service on submit; a bad field says why beside it and keeps what was typed.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList, Suggester
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from models import clock, documents, intake, labels, validation
from models.errors import Conflict, FieldError, RecordKeeperError, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, GROUPS, FieldSpec, Kind
from models.permissions import Actor
from screens.dialogs.confirm import ConfirmDialog
from tui.i18n import N_, _, current_language
from tui.safe_text import safe_plain, safe_text
from tui.widgets.field_input import FieldInput
from tui.widgets.footer import Footer

DRAFT_SAVE_SECONDS = 2.0
SAVE_LOCK_TIMEOUT = 5.0

GROUP_TITLES = {
    "identity": N_("Identity"), "contact": N_("Contact"), "address": N_("Address"), "work": N_("Work"),
    "relationship": N_("Relationship"), "consent": N_("Consent"),
}
# Tab order inside the identity group: a valid resident ID fills in sex and date of birth.
IDENTITY_ORDER = ("full_name", "id_type", "id_number", "gender", "date_of_birth", "nationality")
CHOICE_WORDS = {"male": "男", "female": "女", "resident_id": "身份证", "passport": "护照"}
DEFAULTS = {"id_type": "resident_id", "mobile_international": "no", "consent_marketing": "no"}

_RESIDENT_ID_CHARS = r"[0-9Xx０-９Ｘｘ \-]*"
_OTHER_ID_CHARS = r"[A-Za-z0-9０-９Ａ-Ｚａ-ｚ\- ]*"
RESTRICT = {
    "mobile": r"[0-9０-９+＋\-() ]*",
    "other_phone": r"[0-9０-９+＋\-() extEXT.转]*",
    "postcode": r"[0-9０-９]*",
    "email": r"[^\s]*",
}
HINTS = {
    "id_number": N_("18 digits, the last may be X; a 15-digit old ID is converted"),
    "mobile": N_("11-digit mainland mobile; for others set Intl. mobile to y and type +country"),
    "other_phone": N_("Digits, spaces, + - ( ) and ext"),
    "postcode": N_("6 digits"),
    "paper_location": N_("Cabinet-drawer-folder, e.g. 柜3-屉2-夹15"),
    "guardian_name": N_("Needed when the customer was under 14 on the consent date"),
    "email": N_("name@example.com"),
}
CROSS_FIELD_CODES = ("dob_mismatch", "sex_mismatch", "consent_before_birth", "guardian_required")
CUSTOMER_KINDS_CLEANED = (Kind.CHOICE, Kind.DATE, Kind.BOOL, Kind.ID_NUMBER, Kind.EMAIL)


def ordered_fields() -> list[FieldSpec]:
    """Every form field in tab order: the groups of DESIGN.md §2, identity reordered for the ID fill-in."""
    out: list[FieldSpec] = []
    for group in GROUPS:
        specs = [s for s in CUSTOMER_FIELDS if s.group == group]
        if group == "identity":
            specs.sort(key=lambda s: IDENTITY_ORDER.index(s.name) if s.name in IDENTITY_ORDER else 99)
        out += specs
    return out


def field_label(spec: FieldSpec) -> str:
    return spec.label_zh if current_language() == "zh" else spec.label_en


def field_hint(spec: FieldSpec, label_names: list[str] | None = None) -> str:
    if spec.kind is Kind.CHOICE:
        numbered = not all(c.isdigit() for c in spec.choices)
        parts = [f"{i} {c}" if numbered else c for i, c in enumerate(spec.choices, start=1)]
        words = [f"{w}={c}" for c, w in CHOICE_WORDS.items() if c in spec.choices]
        return _("Type the number or the first letters: ") + "  ".join(parts) + (
            "  (" + " ".join(words) + ")" if words else "")
    if spec.kind is Kind.DATE:
        return _("YYYY-MM-DD or YYYYMMDD")
    if spec.kind is Kind.BOOL:
        return _("y or n")
    if spec.name in HINTS:
        return _(HINTS[spec.name])
    return _("At most {n} characters").format(n=spec.max_length)


def pad(text: str, width: int) -> str:
    """`text` cut and padded to `width` terminal cells (Chinese characters take two)."""
    text = safe_plain(text, width) if cell_len(text) > width else text
    return text + " " * max(width - cell_len(text), 0)


def local_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.replace(tzinfo=dt.timezone.utc).astimezone().strftime("%m-%d %H:%M")


def waited(since: dt.datetime | None) -> str:
    """How long ago, in the largest unit that fits (min, h, d)."""
    if since is None:
        return ""
    seconds = max((clock.now() - since.replace(tzinfo=dt.timezone.utc)).total_seconds(), 0)
    if seconds < 3600:
        return _("{n} min").format(n=int(seconds // 60))
    if seconds < 86400 * 2:
        return _("{n} h").format(n=int(seconds // 3600))
    return _("{n} d").format(n=int(seconds // 86400))


class LabelSuggester(Suggester):
    """Completes the last of the comma-separated label names."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names = names

    async def get_suggestion(self, value: str) -> str | None:
        head, sep, last = value.rpartition(",")
        stem = last.lstrip()
        if not stem:
            return None
        for name in self.names:
            if name.casefold().startswith(stem.casefold()) and name != stem:
                return value[: len(value) - len(stem)] + name
        return None


# --- the landing list -----------------------------------------------------------------------------


class IntakeScreen(Screen[None]):
    """The clerk's intake work: a new form, returned forms to correct, drafts to finish."""

    CSS_PATH = "intake.tcss"
    AUTO_FOCUS = "#intake-list"
    BINDINGS = [
        Binding("escape", "back", "Back", id="intake.back", tooltip="Back to the home screen"),
        Binding("n", "new", "New form", id="intake.new", tooltip="Start a new customer form"),
        Binding("delete,d", "discard", "Discard", id="intake.discard",
                tooltip="Throw away the highlighted draft (asks first)"),
        Binding("f5", "refresh", "Refresh", id="intake.refresh", tooltip="Reload the list"),
    ]

    @dataclass
    class ListLoaded(Message):
        unfinished: list[intake.SubmissionSummary]
        submitted: list[intake.SubmissionSummary]

    @dataclass
    class ListFailed(Message):
        message: str

    @dataclass
    class DraftDiscarded(Message):
        ref: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.items: dict[str, intake.SubmissionSummary] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="intake-landing"):
            yield Static(_("Intake"), classes="title", id="intake-title")
            yield OptionList(id="intake-list")
            yield Static(_("Enter: open · N: new form · D: discard a draft"), classes="muted", id="intake-keys")
        yield Footer()

    def on_mount(self) -> None:
        self._show([], [])

    def on_screen_resume(self) -> None:  # also sent when the screen is first shown
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="intake-list", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.ListLoaded(intake.list_unfinished(self.actor), intake.list_submitted(self.actor)))
        except RecordKeeperError as error:
            self.post_message(self.ListFailed(str(error)))

    @on(ListFailed)
    def _failed(self, message: ListFailed) -> None:
        self.notify(_(message.message), severity="error")

    @on(ListLoaded)
    def _loaded(self, message: ListLoaded) -> None:
        self._show(message.unfinished, message.submitted)

    def _show(self, unfinished: list[intake.SubmissionSummary], submitted: list[intake.SubmissionSummary]) -> None:
        menu = self.query_one("#intake-list", OptionList)
        keep = menu.highlighted
        menu.clear_options()
        self.items = {s.submission_id: s for s in unfinished}
        menu.add_option(Option(Content("＋ " + _("New customer form")), id="new"))
        for item in unfinished:
            if item.status == "returned":
                state = _("RETURNED") + f" r{item.revision}"
                when = waited(item.updated_at)
            else:
                state = _("DRAFT")
                when = _("saved {time}").format(time=local_time(item.updated_at))
            name = pad(safe_plain(item.masked_name or _("(no name yet)"), 16), 18)
            menu.add_option(Option(Content(f"{pad(state, 14)}{item.ref:<12}{name}{when}"), id=item.submission_id))
        if submitted:
            menu.add_option(None)
            for item in submitted:
                state = _("APPROVED") if item.status == "approved" else _("WITH REVIEWER")
                detail = item.customer_no or waited(item.submitted_at)
                name = pad(safe_plain(item.masked_name, 16), 18)
                menu.add_option(Option(Content(f"{pad(state, 14)}{item.ref:<12}{name}{detail}"),
                                       id=f"done-{item.submission_id}", disabled=True))
        menu.highlighted = keep if keep is not None and keep < menu.option_count else 0

    @on(OptionList.OptionSelected, "#intake-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id
        if option_id == "new":
            self.action_new()
        elif option_id in self.items:
            self.app.push_screen(IntakeFormScreen(self.actor, option_id))

    def action_new(self) -> None:
        self.app.push_screen(IntakeFormScreen(self.actor))

    def action_discard(self) -> None:
        menu = self.query_one("#intake-list", OptionList)
        if menu.highlighted is None:
            return
        option_id = menu.get_option_at_index(menu.highlighted).id
        item = self.items.get(option_id or "")
        if item is None or item.status != "draft":
            self.notify(_("Only a draft that was never submitted can be discarded."), severity="warning")
            return
        question = _("Discard draft {ref}? What was typed and its documents are destroyed.").format(ref=item.ref)

        def answered(yes: bool | None) -> None:
            if yes:
                self.discard(item.submission_id, item.ref)

        self.app.push_screen(ConfirmDialog(Content(question)), callback=answered)

    @work(thread=True, exclusive=True, group="intake-discard", exit_on_error=False)
    def discard(self, submission_id: str, ref: str) -> None:
        try:
            intake.discard_draft(self.actor, submission_id)
        except RecordKeeperError as error:
            self.post_message(self.ListFailed(str(error)))
            return
        self.post_message(self.DraftDiscarded(ref))

    @on(DraftDiscarded)
    def _discarded(self, message: DraftDiscarded) -> None:
        self.notify(_("Draft {ref} discarded.").format(ref=message.ref))
        self.load()


# --- the form -------------------------------------------------------------------------------------


class IntakeFormScreen(Screen[None]):
    """The customer data form: grouped fields in tab order, encrypted drafts, submit for review."""

    CSS_PATH = "intake.tcss"
    BINDINGS = [
        Binding("f2", "save", "Save", id="intake.save", tooltip="Save the draft now"),
        Binding("f10", "submit", "Submit", id="intake.submit", tooltip="Check every field, send for review"),
        Binding("f4", "attach", "Attach", id="intake.attach", tooltip="Attach a scan from the inbox"),
        Binding("delete", "remove_document", "Remove document", id="intake.remove_document", show=False,
                tooltip="Remove the highlighted document (asks first)"),
        Binding("escape", "back", "Back", id="intake.back", tooltip="Leave the form; the draft is kept"),
    ]

    # --- messages (posted by workers) ---

    @dataclass
    class FormLoaded(Message):
        form: intake.IntakeForm

    @dataclass
    class DraftSaved(Message):
        saved: intake.DraftSaved

    @dataclass
    class DraftSaveFailed(Message):
        message: str

    @dataclass
    class DuplicatesFound(Message):
        field: str
        hits: list[intake.DuplicateHit]

    @dataclass
    class SubmissionSent(Message):
        summary: intake.SubmissionSummary

    @dataclass
    class SubmissionRefused(Message):
        errors: list[FieldError]

    @dataclass
    class ActionFailed(Message):
        message: str

    @dataclass
    class DocumentsChanged(Message):
        documents: list[documents.DocumentView]
        note: str

    @dataclass
    class LabelNamesLoaded(Message):
        names: list[str]

    def __init__(self, actor: Actor, submission_id: str | None = None) -> None:
        super().__init__()
        self.actor = actor
        self.submission_id = submission_id
        self.ref = intake.ref_of(submission_id) if submission_id else ""
        self.status = "draft"
        self.fields = ordered_fields()
        self.values: dict[str, str] = {s.name: "" for s in self.fields}
        self.labels_text = ""
        if submission_id is None:
            self.values.update(DEFAULTS)
            self.values["consent_date"] = clock.today().isoformat()
        self.generation = 0  # bumped on every edit
        self.saved_generation = 0
        self.saved_at: dt.datetime | None = None
        self.save_error = ""
        self.submitted = False
        self.leaving = False
        self.loaded = submission_id is None
        self.visited: set[str] = set()
        self.errors: dict[str, str] = {}  # a field's own rule
        self.conflicts: dict[str, str] = {}  # rules across fields (ID against birth date and sex, consent)
        self.warnings: dict[str, str] = {}
        self.infos: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.returned_note = ""
        self.documents: list[documents.DocumentView] = []
        self.label_names: list[str] = []
        self._save_lock = threading.Lock()
        self.sending = False
        self._shown: dict[str, str] = {}

    # --- layout ---

    def compose(self) -> ComposeResult:
        with Vertical(id="intake-form-screen"):
            with Horizontal(id="form-top"):
                yield Static(Content(self._heading()), id="form-heading", classes="title")
                yield Static("", id="form-unsaved")  # "*": typed since the last save
                yield Static("", id="form-status")
            yield Static("", id="form-returned")
            with VerticalScroll(id="form-body"):
                group = ""
                for spec in self.fields:
                    if spec.group != group:
                        group = spec.group
                        yield Static(_(GROUP_TITLES[group]), classes="group-title")
                    yield from self._row(spec.name, field_label(spec), self._input_for(spec))
                    if spec.name == "paper_location":
                        yield from self._row("labels", _("Labels"), FieldInput(
                            self.labels_text, id="f-labels", classes="field", max_length=200,
                            suggester=LabelSuggester(self.label_names)))
                yield Static(_("Documents"), classes="group-title")
                yield OptionList(id="docs")
                yield Static("", id="msg-documents", classes="msg")
            yield Static("", id="form-hint", classes="muted")
        yield Footer()

    def _row(self, name: str, label: str, widget: Input):
        with Horizontal(classes="row", id=f"row-{name}"):
            yield Label(Content(safe_plain(label, 19)), classes="field-label")
            yield widget
            yield Static("", id=f"side-{name}", classes="side")
        yield Static("", id=f"msg-{name}", classes="msg")

    def _input_for(self, spec: FieldSpec) -> FieldInput:
        restrict = RESTRICT.get(spec.name)
        if spec.name == "id_number":
            restrict = _RESIDENT_ID_CHARS if self.values.get("id_type", "resident_id") == "resident_id" \
                else _OTHER_ID_CHARS
        elif spec.kind is Kind.DATE:
            restrict = r"[0-9０-９\-]*"
        suggester = None
        if spec.kind is Kind.CHOICE and not all(c.isdigit() for c in spec.choices):
            suggester = SuggestFromList(spec.choices, case_sensitive=False)
        max_length = max(spec.max_length, 12) if spec.kind in (Kind.CHOICE, Kind.BOOL) else spec.max_length
        return FieldInput(self.values.get(spec.name, ""), id=f"f-{spec.name}", classes="field",
                          max_length=max_length, restrict=restrict, suggester=suggester)

    def _heading(self) -> str:
        parts = [_("Customer form")]
        if self.ref:
            parts.append(self.ref)
        parts.append(_("returned for correction") if self.status == "returned" else _("draft"))
        return " · ".join(parts)

    def _save_state(self) -> str:
        if self.sending:
            return _("checking and sending…")
        if self.save_error:
            return _("NOT SAVED: {reason}").format(reason=_(self.save_error))
        if self.saved_at is not None:
            return _("saved {time}").format(
                time=self.saved_at.replace(tzinfo=dt.timezone.utc).astimezone().strftime("%H:%M:%S"))
        return ""

    def _show_heading(self) -> None:
        """Redraw the title and the save state, each only when it changed (every byte crosses the link)."""
        unsaved = "*" if self.loaded and self.generation != self.saved_generation and not self.sending else ""
        for widget_id, text in (("#form-heading", self._heading()), ("#form-status", self._save_state()),
                                ("#form-unsaved", unsaved)):
            if self._shown.get(widget_id) != text:
                self._shown[widget_id] = text
                self.query_one(widget_id, Static).update(Content(text))

    def on_mount(self) -> None:
        self.set_interval(DRAFT_SAVE_SECONDS, self._autosave, name="draft-autosave")
        self.load_label_names()
        if self.submission_id is not None:
            self.load_form()
        else:
            self._update_age()
            for name in DEFAULTS:  # the preset codes, in words
                self._show_choice_word(name, validation.validate_field(
                    name, DEFAULTS[name], DEFAULTS, today=clock.today())[0])
            self.query_one("#f-full_name", Input).focus()
        self._show_documents()

    # --- loading ---

    @work(thread=True, exclusive=True, group="intake-load", exit_on_error=False)
    def load_form(self) -> None:
        try:
            self.post_message(self.FormLoaded(intake.open_submission(self.actor, self.submission_id)))
        except RecordKeeperError as error:
            self.post_message(self.ActionFailed(str(error)))

    @work(thread=True, exclusive=True, group="intake-labels", exit_on_error=False)
    def load_label_names(self) -> None:
        try:
            self.post_message(self.LabelNamesLoaded([v.name for v in labels.list_labels(self.actor)]))
        except RecordKeeperError:
            pass

    @on(LabelNamesLoaded)
    def _label_names_loaded(self, message: LabelNamesLoaded) -> None:
        self.label_names[:] = message.names

    @on(FormLoaded)
    def _form_loaded(self, message: FormLoaded) -> None:
        form = message.form
        self.status, self.ref = form.status, form.ref
        for name, value in form.values.items():
            if name in self.values:
                self.values[name] = value
                self.query_one(f"#f-{name}", Input).value = value
        self.labels_text = form.labels
        self.query_one("#f-labels", Input).value = form.labels
        self._set_id_restriction()
        if form.returned is not None:
            self.reasons = dict(form.returned.fields)
            self.returned_note = form.returned.note
            for name in self.reasons:
                self._render_message(name)
            note = _("Returned by {who} on {time}").format(who=safe_plain(form.returned.reviewer, 20),
                                                              time=local_time(form.returned.at))
            if form.returned.note:
                note += ": " + safe_plain(form.returned.note, 300)
            returned = self.query_one("#form-returned", Static)
            returned.update(Content(note))
            returned.add_class("-shown")
        self.documents = list(form.documents)
        self._show_documents()
        self._update_age()
        self.loaded = True
        for spec in self.fields:  # show at once what is still wrong in a resumed form
            if self.values.get(spec.name):
                self.visited.add(spec.name)
                self._check_field(spec.name)
        self._check_identity("date_of_birth", quiet=True)
        self._check_consent()
        self._show_heading()
        first_reason = next((s.name for s in self.fields if s.name in self.reasons), None)
        self.query_one(f"#f-{first_reason or 'full_name'}", Input).focus()

    # --- typing ---

    def _name_of(self, widget) -> str | None:
        widget_id = widget.id or ""
        return widget_id[2:] if widget_id.startswith("f-") else None

    @on(Input.Changed, ".field")
    def _changed(self, event: Input.Changed) -> None:
        name = self._name_of(event.input)
        if name is None:
            return
        if name == "labels":
            if event.value == self.labels_text:
                return
            self.labels_text = event.value
        else:
            if self.values.get(name) == event.value:
                return
            self.values[name] = event.value
        if self.generation == self.saved_generation and self.loaded:  # once per save, not per key
            self.generation += 1
            self._show_heading()
        else:
            self.generation += 1
        if name in self.infos and event.input.has_focus:  # "filled in" or "duplicate" no longer holds
            self.infos.pop(name)
            self._render_message(name)
        if name == "date_of_birth":
            self._update_age()

    def on_descendant_focus(self, event) -> None:
        name = self._name_of(event.widget)
        hint = ""
        if name == "labels":
            known = ", ".join(self.label_names[:8]) or _("none defined yet")
            hint = _("Label names separated by commas; known: {names}").format(names=known)
        elif name in FIELDS_BY_NAME:
            hint = field_hint(FIELDS_BY_NAME[name])
        elif event.widget.id == "docs":
            hint = _("Delete: remove the highlighted document · F4: attach another")
        self.query_one("#form-hint", Static).update(safe_text(hint, 78))

    @on(Input.Blurred, ".field")
    def _left_field(self, event: Input.Blurred) -> None:
        name = self._name_of(event.input)
        if name is None or not self.loaded:
            return
        self.visited.add(name)
        if name != "labels":
            self._check_field(name)
            if name in ("id_type", "id_number", "gender", "date_of_birth"):
                self._check_identity(name)
            if name in ("date_of_birth", "consent_date", "guardian_name"):
                self._check_consent()
            if name in ("id_number", "mobile") and name not in self.errors and self.values.get(name):
                self.check_duplicates(name, dict(self.values))
        if self.generation != self.saved_generation:
            self.save_in_background()

    def _set_value(self, name: str, value: str) -> None:
        self.values[name] = value
        self.generation += 1
        widget = self.query_one(f"#f-{name}", Input)
        widget.value = value
        if widget.has_focus:
            widget.select_all()  # filled in under the cursor: typing replaces it, as after Tab

    def _check_field(self, name: str) -> None:
        spec = FIELDS_BY_NAME[name]
        raw = self.values.get(name, "")
        expanded = intake.expand_shorthand(name, raw)
        record = intake.expand_all(self.values)
        cleaned, error, warning = validation.validate_field(name, expanded, record, today=clock.today())
        if error is not None:
            self.errors[name] = error.message
        else:
            self.errors.pop(name, None)
            shown = intake.display_value(name, cleaned)
            if raw and (spec.kind in CUSTOMER_KINDS_CLEANED or name in ("mobile", "postcode")) and shown != raw:
                self._set_value(name, shown)
        if warning:
            self.warnings[name] = warning
        else:
            self.warnings.pop(name, None)
        self._render_message(name)
        if spec.kind in (Kind.CHOICE, Kind.BOOL):
            self._show_choice_word(name, None if error is not None or not raw else cleaned)
        if name == "id_type":
            self._set_id_restriction()
            if self.values.get("id_number"):
                self._check_field("id_number")

    def _show_choice_word(self, name: str, cleaned: object) -> None:
        """Beside a coded field, what its value means in words (the clerk types a code or a number)."""
        if cleaned is None:
            word = ""
        elif isinstance(cleaned, bool):
            word = _("yes") if cleaned else _("no")
        else:
            from screens.change_request import choice_label

            word = choice_label(str(cleaned))
        self.query_one(f"#side-{name}", Static).update(safe_text(word, 15))

    def _check_identity(self, left: str, quiet: bool = False) -> None:
        record = intake.expand_all(self.values)
        today = clock.today()
        if left in ("id_number", "id_type") and "id_number" not in self.errors:
            filled = validation.fill_from_resident_id(record, today=today)
            # Type-ahead safe: a field the clerk has already typed into is never overwritten.
            filled = {n: v for n, v in filled.items() if not self.query_one(f"#f-{n}", Input).value}
            for name, value in filled.items():
                self._set_value(name, intake.display_value(name, value))
                self.errors.pop(name, None)
                self.infos[name] = _("Filled in from the resident ID")
                self._render_message(name)
            if filled:
                self._update_age()
                record = intake.expand_all(self.values)
        data = {n: record.get(n, "") for n in ("id_type", "id_number", "gender", "date_of_birth")}
        _cleaned, errors, _warnings = validation.validate_customer(data, today=today, partial=True, existing=record)
        conflicts = [e for e in errors if e.code in ("dob_mismatch", "sex_mismatch")]
        if conflicts:
            text = " ".join(_(e.message) for e in conflicts)
            if self.conflicts.get("id_number") != text and not quiet:  # loudly once, then beside the field
                self.notify(_("The resident ID disagrees with the form: ") + _(conflicts[0].message),
                            severity="error")
            self.conflicts["id_number"] = text
        else:
            self.conflicts.pop("id_number", None)
        self._render_message("id_number")

    def _check_consent(self) -> None:
        record = intake.expand_all(self.values)
        data = {n: record.get(n, "") for n in ("date_of_birth", "consent_date", "guardian_name")}
        _cleaned, errors, _warnings = validation.validate_customer(data, today=clock.today(), partial=True,
                                                                   existing=record)
        for name, code in (("consent_date", "consent_before_birth"), ("guardian_name", "guardian_required")):
            found = [e for e in errors if e.code == code]
            if found:
                self.conflicts[name] = found[0].message
            else:
                self.conflicts.pop(name, None)
            self._render_message(name)

    def _set_id_restriction(self) -> None:
        resident = intake.expand_shorthand("id_type", self.values.get("id_type", "")) in ("resident_id", "")
        self.query_one("#f-id_number", Input).restrict = _RESIDENT_ID_CHARS if resident else _OTHER_ID_CHARS

    def _update_age(self) -> None:
        side = self.query_one("#side-date_of_birth", Static)
        try:
            birth = validation.parse_date(self.values.get("date_of_birth", ""))
            age = validation.age_on(birth, clock.today())
        except ValueError:
            side.update("")
            return
        side.update(Content(_("age {n}").format(n=age)))

    def _render_message(self, name: str) -> None:
        """The line under a field: its error, warning, note and the reviewer's reason, each with a word."""
        lines = []
        if name in self.errors:
            lines.append("✗ " + _(self.errors[name]))
        if name in self.conflicts:
            lines.append("✗ " + _(self.conflicts[name]))
        if name in self.warnings:
            lines.append("! " + _(self.warnings[name]))
        if name in self.infos:
            lines.append("i " + self.infos[name])
        if name in self.reasons:
            lines.append("↩ " + _("Reviewer: ") + safe_plain(self.reasons[name], 200))
        try:
            widget = self.query_one(f"#msg-{name}", Static)
        except Exception:  # noqa: BLE001 - a reason may name a field this form does not show
            return
        widget.update(safe_text("\n".join(lines), 600, multiline=True))
        widget.set_class(bool(lines), "-shown")
        invalid = name in self.errors or name in self.conflicts
        widget.set_class(invalid, "-error")
        widget.set_class(not invalid and (name in self.warnings or name in self.reasons), "-warning")
        if name != "documents":
            self.query_one(f"#row-{name}").set_class(name in self.errors or name in self.conflicts, "-invalid")

    # --- duplicates ---

    @work(thread=True, exclusive=True, group="intake-duplicates", exit_on_error=False)
    def check_duplicates(self, name: str, values: dict[str, str]) -> None:
        try:
            hits = intake.check_duplicates(self.actor, self.submission_id, values)
        except RecordKeeperError:
            return
        self.post_message(self.DuplicatesFound(name, [h for h in hits if h.field == name]))

    @on(DuplicatesFound)
    def _duplicates(self, message: DuplicatesFound) -> None:
        name = message.field
        if not message.hits:
            self.infos.pop(name, None)
            self._render_message(name)
            return
        what = _("ID number") if name == "id_number" else _("Mobile phone")
        parts = []
        for hit in message.hits[:3]:
            if hit.where == "customer":
                parts.append(_("customer {no}").format(no=hit.reference))
            else:
                parts.append(_("form {ref} ({status})").format(ref=hit.reference, status=_(hit.status)))
        text = _("{what} already on {places}").format(what=what, places=", ".join(parts))
        self.infos[name] = text
        self._render_message(name)
        self.notify(text, severity="warning", timeout=8)

    # --- saving ---

    def _snapshot(self) -> tuple[dict[str, str], str, int]:
        return dict(self.values), self.labels_text, self.generation

    def _autosave(self) -> None:
        if self.loaded and not self.submitted and self.generation != self.saved_generation:
            self.save_in_background()

    def action_save(self) -> None:
        if not self.loaded or self.submitted:
            return
        self.save_in_background(announce=True)

    @work(thread=True, exclusive=False, group="intake-save", exit_on_error=False)
    def save_in_background(self, announce: bool = False) -> None:
        try:
            saved = self._save()
        except RecordKeeperError as error:
            self.post_message(self.DraftSaveFailed(str(error)))
            return
        except Exception:  # noqa: BLE001 - a failed save must say so, not crash the form
            self.post_message(self.DraftSaveFailed("the database did not answer"))
            return
        if saved is not None:
            self.post_message(self.DraftSaved(saved))
            if announce:
                self.app.call_from_thread(self.notify, _("Draft saved."))
        elif self.leaving:
            self.app.call_from_thread(self._leave)

    def _save(self) -> intake.DraftSaved | None:
        """Save the latest snapshot (callable from any thread); None when nothing was new."""
        if not self._save_lock.acquire(timeout=SAVE_LOCK_TIMEOUT):
            raise Conflict("another save is still running")
        try:
            if self.submitted:
                return None
            values, labels_text, generation = self._snapshot()
            if generation == self.saved_generation and self.submission_id is not None:
                return None
            saved = intake.save_draft(self.actor, self.submission_id, values, labels_text)
            self.submission_id = saved.submission_id
            self.saved_generation = generation
            return saved
        finally:
            self._save_lock.release()

    def save_draft_now(self) -> None:
        """Save synchronously (the app calls this on SIGHUP before it exits)."""
        if self.loaded and not self.submitted and self.generation != self.saved_generation:
            self._save()

    @on(DraftSaved)
    def _saved(self, message: DraftSaved) -> None:
        self.ref = message.saved.ref
        self.saved_at = message.saved.saved_at
        self.save_error = ""
        self._show_heading()
        if self.leaving and self.generation == self.saved_generation:
            self._leave()

    @on(DraftSaveFailed)
    def _save_failed(self, message: DraftSaveFailed) -> None:
        self.save_error = message.message
        self._show_heading()
        if self.leaving:
            self.leaving = False
            self.notify(_("The draft could not be saved; stay on the form and try F2 again."), severity="error")

    # --- leaving ---

    def action_back(self) -> None:
        if not self.loaded or self.submitted or self.generation == self.saved_generation:
            self._leave()
            return
        self.leaving = True
        self.save_in_background()

    def _leave(self) -> None:
        if self.is_current or self.app.screen is self:
            self.dismiss(None)

    # --- submitting ---

    def action_submit(self) -> None:
        if not self.loaded or self.submitted:
            return
        focused = self.focused
        if isinstance(focused, Input) and (name := self._name_of(focused)) and name in FIELDS_BY_NAME:
            self._check_field(name)
        self.sending = True
        self._show_heading()
        self.submit_form()

    @work(thread=True, exclusive=True, group="intake-submit", exit_on_error=False)
    def submit_form(self) -> None:
        if not self._save_lock.acquire(timeout=SAVE_LOCK_TIMEOUT):
            self.post_message(self.ActionFailed("another save is still running; try again"))
            return
        try:
            values, labels_text, generation = self._snapshot()
            summary = intake.submit(self.actor, self.submission_id, values, labels_text)
            self.submission_id = summary.submission_id
            self.saved_generation = generation
            self.submitted = True
        except ValidationError as error:
            self.post_message(self.SubmissionRefused(error.errors))
            return
        except RecordKeeperError as error:
            self.post_message(self.ActionFailed(str(error)))
            return
        finally:
            self._save_lock.release()
        self.post_message(self.SubmissionSent(summary))

    @on(SubmissionSent)
    def _sent(self, message: SubmissionSent) -> None:
        self.notify(_("Sent for review: {ref}").format(ref=message.summary.ref), title=_("Submitted"))
        self.dismiss(None)

    @on(SubmissionRefused)
    def _refused(self, message: SubmissionRefused) -> None:
        self.errors, self.conflicts = {}, {}
        for error in message.errors:
            target = self.conflicts if error.code in CROSS_FIELD_CODES else self.errors
            target.setdefault(error.field, error.message)
        for name in list(FIELDS_BY_NAME) + ["labels"]:
            self._render_message(name)
        self.sending = False
        self._show_heading()
        order = [s.name for s in self.fields] + ["labels"]
        first = next((n for n in order if n in self.errors or n in self.conflicts), None)
        if first:
            self.query_one(f"#f-{first}", Input).focus()
        count = len(set(self.errors) | set(self.conflicts))
        self.notify(_("{n} field(s) need attention; nothing was sent.").format(n=count), severity="error")

    @on(ActionFailed)
    def _action_failed(self, message: ActionFailed) -> None:
        self.sending = False
        self._show_heading()
        self.notify(_(message.message), severity="error")

    # --- documents ---

    def _show_documents(self) -> None:
        docs = self.query_one("#docs", OptionList)
        docs.clear_options()
        for view in self.documents:
            kind = _(documents.DOC_TYPE_LABELS.get(view.doc_type, view.doc_type))
            from screens.dialogs.attach_document import size_text

            docs.add_option(Option(Content(f"{pad(kind, 18)}{pad(safe_plain(view.name, 30), 32)}"
                                           f"{size_text(view.size):>9}"),
                                   id=view.document_id))
        if not self.documents:
            docs.add_option(Option(Content(_("(none yet: F4 attaches a file from the scanner inbox)")),
                                   id="none", disabled=True))
        self._render_message("documents")

    def action_attach(self) -> None:
        if not self.loaded or self.submitted:
            return
        from screens.dialogs.attach_document import AttachDocumentDialog

        def picked(choice: tuple[str, str] | None) -> None:
            if choice:
                self.attach(*choice)

        self.app.push_screen(AttachDocumentDialog(self.actor), callback=picked)

    @work(thread=True, exclusive=True, group="intake-documents", exit_on_error=False)
    def attach(self, inbox_name: str, doc_type: str) -> None:
        try:
            if self.submission_id is None or self.generation != self.saved_generation:
                saved = self._save()
                if saved is not None:
                    self.post_message(self.DraftSaved(saved))
            view = documents.attach_document(self.actor, "submission", self.submission_id, inbox_name, doc_type)
            listed = documents.list_documents(self.actor, "submission", self.submission_id)
        except ValidationError as error:
            self.post_message(self.ActionFailed(_("The file ") + _(error.errors[0].message)))
            return
        except RecordKeeperError as error:
            self.post_message(self.ActionFailed(str(error)))
            return
        note = "" if view.inbox_copy_removed else _("The inbox copy changed while attaching and was kept.")
        self.post_message(self.DocumentsChanged(listed, note or _("Document attached.")))

    @on(DocumentsChanged)
    def _documents_changed(self, message: DocumentsChanged) -> None:
        self.documents = message.documents
        self._show_documents()
        if message.note:
            self.notify(message.note)

    def action_remove_document(self) -> None:
        docs = self.query_one("#docs", OptionList)
        if self.focused is not docs or docs.highlighted is None or not self.documents:
            return
        document_id = docs.get_option_at_index(docs.highlighted).id
        view = next((d for d in self.documents if d.document_id == document_id), None)
        if view is None:
            return
        kind = _(documents.DOC_TYPE_LABELS.get(view.doc_type, view.doc_type))

        def answered(yes: bool | None) -> None:
            if yes:
                self.remove_document(view.document_id)

        self.app.push_screen(ConfirmDialog(Content(_("Remove the document “{kind}” from this form?").format(
            kind=kind))), callback=answered)

    @work(thread=True, exclusive=True, group="intake-documents", exit_on_error=False)
    def remove_document(self, document_id: str) -> None:
        try:
            documents.remove_document(self.actor, document_id)
            listed = documents.list_documents(self.actor, "submission", self.submission_id)
        except RecordKeeperError as error:
            self.post_message(self.ActionFailed(str(error)))
            return
        self.post_message(self.DocumentsChanged(listed, _("Document removed.")))
