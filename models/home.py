"""What a person's home screen offers: the work their roles allow, with queue counts."""

from __future__ import annotations

from dataclasses import dataclass

from models.permissions import Actor, Perm, service


@dataclass(frozen=True)
class MenuEntry:
    """One item of the home menu; `screen` is "module:Class" of the screen it opens (empty: not built yet)."""

    entry_id: str
    label: str  # English msgid; the UI translates it
    count: int | None
    screen: str


@dataclass(frozen=True)
class HomeNotice:
    """A line beside the home menu: an English msgid (the UI translates it) and its non-personal fields."""

    msgid: str
    params: dict


@service(Perm.HOME)
def home_notices(actor: Actor) -> list[HomeNotice]:
    """News for this person, such as decisions on their change requests they have not looked at yet."""
    from models import change_requests

    return change_requests._home_notices(actor)


# entry id, label, permission, screen name
MENU: tuple[tuple[str, str, Perm, str], ...] = (
    ("intake", "Intake", Perm.INTAKE, "screens.intake:IntakeScreen"),
    ("review", "Review queue", Perm.REVIEW, "screens.review:ReviewQueueScreen"),
    ("customers", "Customers", Perm.CUSTOMER_SEARCH, "screens.browser:BrowserScreen"),
    ("changes", "Change requests", Perm.CHANGE_APPROVE, "screens.approvals:ApprovalQueueScreen"),
    ("verification", "Verification due", Perm.CHANGE_REQUEST, "screens.verification:VerificationQueueScreen"),
    ("my_requests", "My change requests", Perm.CHANGE_REQUEST, "screens.change_request:MyRequestsScreen"),
    ("verification_overdue", "Overdue verifications", Perm.CHANGE_APPROVE,
     "screens.verification:VerificationQueueScreen"),
    ("unreachable", "Unreachable customers", Perm.CHANGE_APPROVE, "screens.verification:UnreachableScreen"),
    ("labels", "Labels", Perm.LABEL_MANAGE, "screens.labels:LabelsScreen"),
    ("retention", "Retention", Perm.RETENTION, "screens.retention:RetentionScreen"),
    ("destruction", "Destruction approvals", Perm.DESTRUCTION_APPROVE, "screens.destruction:DestructionApprovalScreen"),
    ("holds", "Legal holds", Perm.HOLD_PLACE, "screens.holds:HoldsScreen"),
    ("register", "Destruction register", Perm.DESTRUCTION_VIEW, "screens.register:RegisterScreen"),
    ("retention_rules", "Retention rules", Perm.RETENTION_RULES, "screens.retention_rules:RetentionRulesScreen"),
    ("audit", "Audit log", Perm.AUDIT_VIEW, "screens.audit_log:AuditLogScreen"),
    ("compliance", "Compliance", Perm.REPORT, "screens.dashboard:DashboardScreen"),
    ("staff", "Staff", Perm.STAFF_MANAGE, "screens.staff_admin:StaffAdminScreen"),
    ("training", "Training", Perm.TRAINING_VIEW, "screens.training:TrainingScreen"),
    ("suggestions", "Suggestions", Perm.SUGGEST, "screens.suggestions:SuggestionsScreen"),
)


def _counts(actor: Actor) -> dict[str, int]:
    from models import change_requests, intake, verification
    from models.customers import count_customers

    return {"customers": count_customers(), **change_requests._home_counts(actor),
            **verification._home_counts(actor), **intake._home_counts(actor)}


def _retention_counts(actor: Actor) -> dict[str, int]:
    from models import destruction

    return destruction._home_counts(actor)


@service(Perm.HOME)
def home_menu(actor: Actor) -> list[MenuEntry]:
    """The menu entries the actor's roles allow, in a fixed order."""
    counts = {**_counts(actor), **_retention_counts(actor)}
    from models import suggestions, training

    counts.update({**training._home_counts(actor), **suggestions._home_counts(actor)})
    return [MenuEntry(entry_id, label, counts.get(entry_id), screen)
            for entry_id, label, permission, screen in MENU if actor.has(permission)]
