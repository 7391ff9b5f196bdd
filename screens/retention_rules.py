"""The retention rules (admin): each period with its legal basis; a change is audited and recomputes dates."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from models import retention
from models.permissions import Actor, Perm
from models.retention import RuleChange, RuleView
from screens.dialogs.text_prompt import TextPromptDialog
from screens.queue import QueueScreen
from tui.i18n import N_, _
from tui.safe_text import safe_text
from tui.widgets.footer import Footer


class RetentionRulesScreen(QueueScreen[None]):
    """The rules, their periods and legal minimums; F2 changes the highlighted period."""

    CSS_PATH = "retention_rules.tcss"
    AUTO_FOCUS = "#rules"
    LOAD_GROUP = "rules-load"
    MESSAGE_ID = "#rules-message"
    TABLE_ID = "#rules"
    COLUMNS = ((N_("Rule"), 40), (N_("Years"), 5), (N_("Minimum"), 7), (N_("Changed by"), 12))
    BINDINGS = [
        Binding("f2", "change", "Change", id="rules.change", tooltip="Change the highlighted rule's period"),
        Binding("f5", "refresh", "Refresh", id="rules.refresh", tooltip="Load the rules again"),
        Binding("escape", "back", "Back", id="rules.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.rules: list[RuleView] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="rules-box"):
            yield Static(Content(_("Retention rules")), classes="title")
            yield Static(Content(_("Loading…")), id="rules-message", classes="muted")
            yield DataTable(id="rules", cursor_type="row")
            yield Static("", id="rules-basis")
        yield Footer()

    def fetch(self) -> list[RuleView]:
        return retention.list_rules(self.actor)

    def show(self, rules: list[RuleView]) -> None:
        self.rules = rules
        self.refill(([Text(_(rule.label)), Text(str(rule.years)), Text(str(rule.minimum_years)),
                      Text(rule.updated_by or "—")], None) for rule in rules)
        text = _("Periods run from termination, or from the last contact for prospects.")
        if self.actor.has(Perm.RETENTION_RULES):
            text += " " + _("F2 changes one (never below the legal minimum).")
        self.query_one("#rules-message", Static).update(Content(text))
        self._show_basis()

    @on(DataTable.RowHighlighted, "#rules")
    def _show_basis(self) -> None:
        rule = self.cursor_item(self.rules)
        self.query_one("#rules-basis", Static).update(
            safe_text(_("Legal basis: {basis}").format(basis=_(rule.basis)), 200) if rule else "")

    def action_change(self) -> None:
        rule = self.cursor_item(self.rules)
        if rule is None:
            return
        question = _("{label}: keep for how many years? (legal minimum {minimum}, at most {maximum})").format(
            label=_(rule.label), minimum=rule.minimum_years, maximum=rule.maximum_years)
        self.app.push_screen(
            TextPromptDialog(question, submit=lambda text: retention.set_rule_years(self.actor, rule.code, text),
                             value=str(rule.years), max_length=2, restrict=r"[0-9]*"),
            callback=self._changed)

    def _changed(self, change: RuleChange | None) -> None:
        if change is None:
            return
        self.notify(_("{years} years from now on; {n} retention dates recomputed.").format(
            years=change.rule.years, n=change.customers_recomputed), title=_("Rule changed"))
        self.load()
