"""Staff management for admins: add, disable (ending that person's sessions), roles, unlock,
reset password, training and branches with their records persons. Every change is audited by
the service it calls.

Also `FormDialog`, the small form the supervision screens share, and `poll_session`, which the
app runs every few seconds so a disabled account's open sessions end within 30 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import ContentSwitcher, DataTable, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from models import branches, staff, training
from models.branches import BranchView
from models.errors import FieldError, RecordKeeperError, ValidationError
from models.permissions import ROLES, Actor
from models.staff import StaffSummary
from screens.dialogs.confirm import ConfirmDialog
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.field_input import FieldInput
from tui.widgets.footer import Footer

ROLE_WORDS = {"clerk": N_("clerk"), "reviewer": N_("reviewer"), "supervisor": N_("supervisor"),
              "records_officer": N_("records officer"), "auditor": N_("auditor"), "admin": N_("admin")}
TRAINING_WORDS = {"current": N_("valid"), "due_soon": N_("due soon"), "expired": N_("EXPIRED"),
                  "none": N_("none")}


# --- sessions --------------------------------------------------------------------------------


def poll_session(app: App) -> None:
    """Check in a worker that the logged-in account may still act; end the session if not."""
    actor = getattr(app, "actor", None)
    if actor is None:
        return

    def check() -> None:
        if not staff.current_roles(actor):
            app.call_from_thread(_session_revoked, app, actor)

    app.run_worker(check, thread=True, group="session-check", exclusive=True, exit_on_error=False)


def _session_revoked(app, actor: Actor) -> None:
    if app.actor is not actor:
        return  # already logged out, or someone else logged in meanwhile
    app.actor = None  # the account may no longer act, so there is nothing to log out
    app.end_session(_("An administrator ended your session (account disabled or password reset)."))


# --- a small form --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    name: str
    label: str  # English msgid
    value: str = ""
    kind: str = "text"  # text, password, multiline, choice, multi
    max_length: int = 100
    choices: tuple[tuple[str, str], ...] = ()  # (value, English label)
    placeholder: str = ""
    restrict: str | None = None


class TickList(OptionList):
    """Choices that are ticked with Space or Enter; each shows [x] or [ ], so no colour is needed."""

    BINDINGS = [Binding("space", "tick", "Tick", id="ticklist.tick", tooltip="Tick or untick the choice")]

    def __init__(self, choices: tuple[tuple[str, str], ...], ticked: set[str], **kwargs) -> None:
        self.choices = choices
        self.chosen = {value for value, _label in choices if value in ticked}
        super().__init__(*[Option(self._prompt(value, label), id=value) for value, label in choices], **kwargs)

    def on_mount(self) -> None:
        self.highlighted = 0

    def _prompt(self, value: str, label: str) -> Content:
        return Content(f"[{'x' if value in self.chosen else ' '}] {_(label)}")

    def action_tick(self) -> None:
        if self.highlighted is None:
            return
        value, label = self.choices[self.highlighted]
        self.chosen ^= {value}
        self.replace_option_prompt_at_index(self.highlighted, self._prompt(value, label))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_tick()

    def ticked(self) -> list[str]:
        return [value for value, _label in self.choices if value in self.chosen]


class FormDialog(ModalScreen[object]):
    """A few fields; F2 saves through `submit` in a worker. A refused field's reason shows beside it
    and everything typed stays; Esc cancels (dismissed with None)."""

    CSS_PATH = "staff_admin.tcss"
    BINDINGS = [
        Binding("f2", "save", "Save", id="form.save", tooltip="Save"),
        Binding("escape", "cancel", "Cancel", id="form.cancel", tooltip="Go back; nothing is saved"),
    ]

    @dataclass
    class Saved(Message):
        result: object

    @dataclass
    class Refused(Message):
        errors: dict[str, str]

    def __init__(self, title: Content | str, fields: list[FormField], submit: Callable[[dict], object],
                 note: str = "") -> None:
        super().__init__()
        self.title_text = title if isinstance(title, Content) else Content(title)
        self.fields = fields
        self.submit = submit
        self.note = note
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box"):
            yield Static(self.title_text, classes="title")
            if self.note:
                yield Static(Content(_(self.note)), classes="muted", id="form-note")
            with VerticalScroll(id="form-fields"):
                last = self.fields[-1].name
                for spec in self.fields:
                    with Horizontal(classes=f"form-row form-{spec.kind}"):
                        yield Label(_(spec.label), classes="form-label")
                        yield self._widget(spec, spec.name == last)
                    yield Static("", id=f"err-{spec.name}", classes="error form-error")
            yield Static("", id="err-", classes="error form-error")
            yield Static(Content(_("F2: save    Esc: cancel")), classes="muted", id="form-keys")

    def _widget(self, spec: FormField, last: bool):
        wid = f"in-{spec.name}"
        if spec.kind == "multiline":
            area = TextArea(spec.value, id=wid, soft_wrap=True, tab_behavior="focus", show_line_numbers=False)
            return area
        if spec.kind == "choice":
            options = [(_(label), value) for value, label in spec.choices]
            return Select(options, value=spec.value or spec.choices[0][0], allow_blank=False, id=wid, compact=True)
        if spec.kind == "multi":
            return TickList(spec.choices, set(spec.value.split(",")) if spec.value else set(), id=wid)
        return FieldInput(spec.value, id=wid, password=spec.kind == "password", max_length=spec.max_length,
                          placeholder=spec.placeholder, restrict=spec.restrict, enter_moves_on=not last)

    def on_mount(self) -> None:
        for widget in self.query(".form-row > *"):
            if widget.can_focus:
                self.set_focus(widget)
                break
        for error in self.query(".form-error"):
            error.display = False

    def values(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for spec in self.fields:
            widget = self.query_one(f"#in-{spec.name}")
            if isinstance(widget, TextArea):
                out[spec.name] = widget.text
            elif isinstance(widget, Select):
                out[spec.name] = str(widget.value)
            elif isinstance(widget, TickList):
                out[spec.name] = widget.ticked()
            else:
                out[spec.name] = widget.value
        return out

    @on(Input.Submitted, "FieldInput")
    def _entered(self, event: Input.Submitted) -> None:
        if not event.input.enter_moves_on:
            self.action_save()

    def action_save(self) -> None:
        if self.busy:
            return
        self.busy = True
        for error in self.query(".form-error"):
            error.display = False
        self.run_submit(self.values())

    @work(thread=True, exclusive=True, group="form", exit_on_error=False)
    def run_submit(self, values: dict) -> None:
        try:
            self.post_message(self.Saved(self.submit(values)))
        except ValidationError as exc:
            self.post_message(self.Refused(exc.by_field()))
        except RecordKeeperError as exc:
            self.post_message(self.Refused({"": str(exc)}))

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.busy = False
        names = {spec.name for spec in self.fields}
        labels = {spec.name: _(spec.label) for spec in self.fields}
        first = None
        for field, text in message.errors.items():
            target = field if field in names else ""
            error = self.query_one(f"#err-{target}", Static)
            prefix = "" if target else (f"{labels.get(field, field)}: " if field else "")
            error.update(safe_text(prefix + _(text), 160))
            error.display = True
            first = first or (target or None)
        if first:
            self.set_focus(self.query_one(f"#in-{first}"))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self.dismiss(message.result)

    def action_cancel(self) -> None:
        self.dismiss(None)


def check_same(values: dict, first: str, second: str) -> None:
    if values[first] != values[second]:
        raise ValidationError([FieldError(second, "does not match the password above", "mismatch")])


# --- the screen --------------------------------------------------------------------------------


class StaffAdminScreen(Screen[None]):
    """Accounts (with their training) and branches; F3 switches between them."""

    CSS_PATH = "staff_admin.tcss"
    AUTO_FOCUS = "#staff-table"
    BINDINGS = [
        Binding("a", "add", "Add", id="staff.add", tooltip="Add an account, or a branch"),
        Binding("enter", "edit", "Edit", id="staff.edit", tooltip="Change the roles, or the branch", show=False),
        Binding("r", "roles", "Roles", id="staff.roles", tooltip="Change the selected person's roles (also Enter)",
                show=False),
        Binding("d", "toggle_active", "Disable", id="staff.disable",
                tooltip="Disable the account (its sessions end within 30 s), or enable it again"),
        Binding("u", "unlock", "Unlock", id="staff.unlock", tooltip="Unlock after too many failed logins",
                show=False),
        Binding("p", "reset_password", "Password", id="staff.password",
                tooltip="Set a temporary password (must be changed at next login)"),
        Binding("t", "training", "Training", id="staff.training", tooltip="Record data-protection training"),
        Binding("f3", "switch", "Branches", id="staff.switch", tooltip="Switch between staff and branches",
                show=False),
        Binding("f5", "refresh", "Refresh", id="staff.refresh", tooltip="Load the lists again", show=False),
        Binding("escape", "back", "Back", id="staff.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        people: list[StaffSummary]
        training: dict[int, training.TrainingStatus]
        branch_list: list[BranchView]

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.people: list[StaffSummary] = []
        self.branch_list: list[BranchView] = []
        self.showing = "staff-table"

    def compose(self) -> ComposeResult:
        with Vertical(id="staff-box"):
            yield Static(Content(_("Staff")), id="staff-title", classes="title")
            with ContentSwitcher(initial="staff-table", id="staff-switcher"):
                yield DataTable(id="staff-table", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="branch-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="staff-status", classes="muted")
        yield Footer()

    def on_mount(self) -> None:
        people = self.query_one("#staff-table", DataTable)
        for header, width in ((N_("Username"), 10), (N_("Name"), 14), (N_("Roles"), 18), (N_("State"), 8),
                              (N_("Training"), 17)):
            people.add_column(Text(_(header)), width=width)
        table = self.query_one("#branch-table", DataTable)
        for header, width in ((N_("Code"), 7), (N_("Branch"), 18), (N_("Records person"), 28), (N_("State"), 8)):
            table.add_column(Text(_(header)), width=width)
        self.load()

    @work(thread=True, exclusive=True, group="staff-list", exit_on_error=False)
    def load(self) -> None:
        try:
            people = staff.list_staff(self.actor)
            status = {s.staff_id: s for s in training.training_overview(self.actor, include_inactive=True)}
            self.post_message(self.Loaded(people, status, branches.list_branches(self.actor, include_inactive=True)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#staff-status", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        from screens.audit_log import state_style

        self.people, self.branch_list = message.people, message.branch_list
        table = self.query_one("#staff-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for person in self.people:
            state = _("locked") if person.locked else _("enabled") if person.active else _("disabled")
            state_cell = Text(state) if person.active and not person.locked else Text(
                state, style=state_style(self.app, "danger"))
            status = message.training.get(person.staff_id)
            word = _(TRAINING_WORDS[status.status]) if status else ""
            if status and status.expires_on:
                word = f"{word} {status.expires_on:%y-%m-%d}"
            training_cell = Text(word, style=state_style(self.app, "danger")) if status and \
                status.status == "expired" else Text(word)
            roles = ", ".join(_(ROLE_WORDS.get(r, r)) for r in person.roles)
            table.add_row(Text(person.username), Text(safe_plain(person.display_name, 14)),
                          Text(safe_plain(roles, 18)), state_cell, training_cell, key=person.username)
        if self.people:
            table.move_cursor(row=min(keep, len(self.people) - 1))
        branch_table = self.query_one("#branch-table", DataTable)
        keep = branch_table.cursor_row
        branch_table.clear()
        for view in self.branch_list:
            person = f"{view.records_person} {view.records_person_name}" if view.records_person else _("— none —")
            branch_table.add_row(Text(view.code), Text(safe_plain(view.name, 18)), Text(safe_plain(person, 28)),
                                 Text(_("in use") if view.active else _("closed")), key=str(view.branch_id))
        if self.branch_list:
            branch_table.move_cursor(row=min(keep, len(self.branch_list) - 1))
        self._status()

    def _status(self) -> None:
        if self.showing == "staff-table":
            text = _("{n} accounts · Enter: roles · u: unlock · F3: branches · F1: keys").format(
                n=len(self.people))
            title = _("Staff")
        else:
            text = _("{n} branches · a: add · Enter: change · F3: staff").format(n=len(self.branch_list))
            title = _("Branches and their records persons")
        self.query_one("#staff-title", Static).update(Content(title))
        self.query_one("#staff-status", Static).update(Content(text))

    # --- helpers ------------------------------------------------------------------------------

    def _person(self) -> StaffSummary | None:
        if self.showing != "staff-table" or not self.people:
            return None
        table = self.query_one("#staff-table", DataTable)
        return self.people[min(table.cursor_row, len(self.people) - 1)]

    def _branch(self) -> BranchView | None:
        if self.showing != "branch-table" or not self.branch_list:
            return None
        table = self.query_one("#branch-table", DataTable)
        return self.branch_list[min(table.cursor_row, len(self.branch_list) - 1)]

    def _after(self, message: str) -> Callable[[object], None]:
        def done(result: object) -> None:
            if result is not None:
                self.notify(message)
                self.load()
        return done

    # --- actions --------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    def action_switch(self) -> None:
        self.showing = "branch-table" if self.showing == "staff-table" else "staff-table"
        self.query_one(ContentSwitcher).current = self.showing
        self.set_focus(self.query_one(f"#{self.showing}", DataTable))
        self._status()

    def action_add(self) -> None:
        if self.showing == "branch-table":
            self._branch_form(None)
            return
        role_choices = tuple((role, ROLE_WORDS[role]) for role in ROLES)
        fields = [FormField("username", N_("Username"), max_length=32, restrict=r"[A-Za-z0-9._\-]*"),
                  FormField("display_name", N_("Name"), max_length=60),
                  FormField("roles", N_("Roles"), "clerk", kind="multi", choices=role_choices),
                  FormField("password", N_("Temporary password"), kind="password", max_length=128),
                  FormField("repeat", N_("Repeat it"), kind="password", max_length=128)]

        def submit(values: dict) -> object:
            check_same(values, "password", "repeat")
            return staff.add_staff(self.actor, values["username"], values["display_name"], values["password"],
                                   values["roles"])

        self.app.push_screen(FormDialog(Content(_("Add a staff account")), fields, submit,
                                        note=N_("Space ticks a role. The person changes the password at first login.")),
                             callback=self._after(_("Account added.")))

    def action_edit(self) -> None:
        if self.showing == "branch-table":
            branch = self._branch()
            if branch:
                self._branch_form(branch)
        else:
            self.action_roles()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    def action_roles(self) -> None:
        person = self._person()
        if person is None:
            return
        role_choices = tuple((role, ROLE_WORDS[role]) for role in ROLES)
        fields = [FormField("roles", N_("Roles"), ",".join(person.roles), kind="multi", choices=role_choices)]
        self.app.push_screen(
            FormDialog(Content(_("Roles of {name}").format(name=safe_plain(person.username, 32))), fields,
                       lambda values: staff.set_roles(self.actor, person.username, values["roles"]),
                       note=N_("Space ticks or unticks a role; they apply at the person's next action.")),
            callback=self._after(_("Roles changed.")))

    def action_toggle_active(self) -> None:
        person = self._person()
        if person is None:
            return
        enable = not person.active
        question = (_("Enable {name} again?") if enable else
                    _("Disable {name}? Their open sessions end within 30 seconds.")).format(
            name=safe_plain(person.username, 32))

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(lambda: staff.set_active(self.actor, person.username, enable),
                          _("Account enabled.") if enable else _("Account disabled."))

        self.app.push_screen(ConfirmDialog(Content(question)), callback=answered)

    def action_unlock(self) -> None:
        person = self._person()
        if person is None:
            return
        if not person.locked:
            self.notify(_("This account is not locked."))
            return
        self._run(lambda: staff.unlock_account(self.actor, person.username), _("Account unlocked."))

    def action_reset_password(self) -> None:
        person = self._person()
        if person is None:
            return
        fields = [FormField("password", N_("Temporary password"), kind="password", max_length=128),
                  FormField("repeat", N_("Repeat it"), kind="password", max_length=128)]

        def submit(values: dict) -> object:
            check_same(values, "password", "repeat")
            return staff.reset_password(self.actor, person.username, values["password"])

        self.app.push_screen(
            FormDialog(Content(_("New password for {name}").format(name=safe_plain(person.username, 32))),
                       fields, submit, note=N_("Their open sessions end; they must change it at next login.")),
            callback=self._after(_("Password reset.")))

    def action_training(self) -> None:
        person = self._person()
        if person is not None:
            from screens.training import record_training_form

            self.app.push_screen(record_training_form(self.actor, person.username),
                                 callback=self._after(_("Training recorded.")))

    def _branch_form(self, branch: BranchView | None) -> None:
        fields = [FormField("code", N_("Code"), branch.code if branch else "", max_length=16),
                  FormField("name", N_("Branch name"), branch.name if branch else "", max_length=branches.NAME_MAX),
                  FormField("records_person", N_("Records person"), branch.records_person if branch else "",
                            max_length=32, placeholder=_("username"), restrict=r"[A-Za-z0-9._\-]*"),
                  FormField("active", N_("State"), "1" if branch is None or branch.active else "0", kind="choice",
                            choices=(("1", N_("in use")), ("0", N_("closed"))))]

        def submit(values: dict) -> object:
            return branches.save_branch(self.actor, values["code"], values["name"], values["records_person"],
                                        branch.branch_id if branch else None, active=values["active"] == "1")

        title = _("Change branch") if branch else _("Add a branch")
        self.app.push_screen(FormDialog(Content(title), fields, submit,
                                        note=N_("The name is as written on customer records.")),
                             callback=self._after(_("Branch saved.")))

    def _run(self, call: Callable[[], object], done: str) -> None:
        def work_() -> None:
            try:
                call()
            except RecordKeeperError as exc:
                self.app.call_from_thread(self.notify, _(str(exc)), severity="error")
                return
            self.app.call_from_thread(self.notify, done)
            self.app.call_from_thread(self.load)

        self.run_worker(work_, thread=True, group="staff-change", exit_on_error=False)

    def action_back(self) -> None:
        self.dismiss(None)
