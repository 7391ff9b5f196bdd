"""The periodic compliance report (seed §4): the dashboard's figures, the audit-chain status, the
anomalies, training, branches and staff suggestions for a period, as Markdown and HTML files.

The chain is verified in full (against the signed checkpoints) while the report is made. The
report holds no personal data: counts, codes, staff usernames and customer numbers only.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import peewee as pw

from models import audit, audit_browse, clock, dashboard, office, suggestions, training
from models.audit import AuditEntry
from models.dashboard import N_
from models.errors import FieldError, ValidationError
from models.permissions import Actor, Perm, service

MAX_PERIOD_DAYS = 366 * 2


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    bar_column: int | None = None  # a numeric column drawn as a bar in HTML


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...] = ()
    table: Table | None = None


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    chain_ok: bool
    anomalies: int


def _actions_in_period(start: dt.date, end: dt.date) -> list[tuple[str, int, int]]:
    """(action, entries, of which refused or failed) for the period."""
    conditions = audit_browse.conditions_for(audit_browse.AuditFilter(since=start, until=end))
    if conditions is None:
        return []
    not_ok = pw.fn.SUM(pw.Case(None, [(AuditEntry.outcome != "ok", 1)], 0))
    rows = (AuditEntry.select(AuditEntry.action, pw.fn.COUNT(AuditEntry.seq).alias("n"), not_ok.alias("bad"))
            .where(*conditions).group_by(AuditEntry.action).order_by(pw.fn.COUNT(AuditEntry.seq).desc()).dicts())
    return [(r["action"], r["n"], int(r["bad"] or 0)) for r in rows]


def build_sections(board: dashboard.Dashboard, chain: audit.VerifyResult, actions, people, suggestion_list,
                   t: Callable[[str], str]) -> list[Section]:
    """The report's content, shared by the Markdown and HTML writers."""
    sections: list[Section] = []
    if chain.ok:
        chain_text = t(N_("Intact: {entries} entries verified against {checkpoints} signed checkpoints.")).format(
            entries=chain.entries, checkpoints=chain.checkpoints)
    else:
        chain_text = t(N_("FAILED at entry {seq}: {reason}")).format(seq=chain.first_bad_seq, reason=chain.reason)
    paragraphs = [chain_text] + ([t(N_("Warning: {warning}")).format(warning=chain.warning)] if chain.warning else [])
    sections.append(Section(t(N_("Audit chain")), tuple(paragraphs)))
    anomaly_rows = tuple((t(N_("serious")) if a.severity == "danger" else t(N_("check")), a.text(t))
                         for a in board.anomalies)
    sections.append(Section(t(N_("Anomalies")), () if anomaly_rows else (t(N_("None found.")),),
                            Table((t(N_("Level")), t(N_("Finding"))), anomaly_rows) if anomaly_rows else None))
    for chart in board.charts:
        if not chart.available:
            sections.append(Section(t(chart.title), (t(N_("Not available in this installation.")),)))
            continue
        notes = [t(N_("Total: {total}")).format(total=chart.total)]
        if chart.threshold is not None:
            notes.append(t(N_("Flagged above {threshold} in the period.")).format(threshold=chart.threshold))
        rows = tuple((t(bar.label) if bar.translate else bar.label, str(bar.value),
                      t(N_("over threshold")) if bar.flagged and chart.threshold is not None
                      else t(N_("attention")) if bar.flagged else "") for bar in chart.bars)
        sections.append(Section(t(chart.title), tuple(notes),
                                Table((t(N_("Item")), t(N_("Count")), t(N_("Note"))), rows, bar_column=1)
                                if rows else None))
    sections.append(Section(t(N_("Branches and responsible persons")), (), Table(
        (t(N_("Branch")), t(N_("Code")), t(N_("Records person")), t(N_("Customers")),
         t(N_("Verification overdue")), t(N_("Retention ends within 90 days")), t(N_("Changes pending"))),
        tuple((b.name, b.code or "—", b.records_person or t(N_("none named")), str(b.customers),
               str(b.overdue_verifications), str(b.due_for_destruction),
               "—" if b.pending_changes is None else str(b.pending_changes)) for b in board.branches))))
    sections.append(Section(t(N_("Data-protection training")), (), Table(
        (t(N_("Staff")), t(N_("Status")), t(N_("Course")), t(N_("Expires"))),
        tuple((p.username, t(STATUS_WORDS[p.status]), p.course or "—", str(p.expires_on or "—")) for p in people))))
    sections.append(Section(t(N_("Operations recorded in the period")), (), Table(
        (t(N_("Action")), t(N_("Entries")), t(N_("Refused or failed"))),
        tuple((action, str(n), str(bad)) for action, n, bad in actions), bar_column=1)))
    sections.append(Section(t(N_("Staff suggestions for the review meeting")),
                            () if suggestion_list else (t(N_("None in this period.")),),
                            Table((t(N_("No.")), t(N_("Title")), t(N_("From")), t(N_("Status")), t(N_("Response"))),
                                  tuple((str(s.suggestion_id), s.title, s.author, t(SUGGESTION_WORDS[s.status]),
                                         s.response or "—") for s in suggestion_list))
                            if suggestion_list else None))
    return sections


STATUS_WORDS = {"current": N_("current"), "due_soon": N_("due within 30 days"), "expired": N_("expired"),
                "none": N_("no record")}
SUGGESTION_WORDS = {"open": N_("open"), "under_review": N_("under review"), "adopted": N_("adopted"),
                    "declined": N_("declined")}


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def to_markdown(title: str, subtitle: str, sections: list[Section]) -> str:
    lines = [f"# {_md_cell(title)}", "", _md_cell(subtitle), ""]
    for section in sections:
        lines += [f"## {_md_cell(section.heading)}", ""]
        for paragraph in section.paragraphs:
            lines += [_md_cell(paragraph), ""]
        if section.table:
            lines.append("| " + " | ".join(_md_cell(c) for c in section.table.columns) + " |")
            lines.append("|" + "|".join("---" for _ in section.table.columns) + "|")
            for row in section.table.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            lines.append("")
    return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #999;padding:.2em .6em;"
        "text-align:left;vertical-align:top}.bar{display:inline-block;height:.8em;background:#446;margin-right:.4em}"
        ".num{text-align:right;white-space:nowrap}")


def to_html(title: str, subtitle: str, sections: list[Section]) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>", f"<p>{e(subtitle)}</p>"]
    for section in sections:
        parts.append(f"<h2>{e(section.heading)}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in section.paragraphs]
        table = section.table
        if table:
            widest = max((int(r[table.bar_column]) for r in table.rows if table.bar_column is not None
                          and r[table.bar_column].isdigit()), default=0)
            parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr>")
            for row in table.rows:
                cells = []
                for index, cell in enumerate(row):
                    if index == table.bar_column and cell.isdigit() and widest:
                        width = round(12 * int(cell) / widest, 2)
                        cells.append(f'<td class="num"><span class="bar" style="width:{width}em"></span>'
                                     f"{e(cell)}</td>")
                    else:
                        cells.append(f"<td>{e(cell)}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


@service(Perm.REPORT)
def write_report(actor: Actor, start: dt.date, end: dt.date, directory: Path | None = None, *,
                 translate: Callable[[str], str] = lambda s: s,
                 progress: Callable[[int, int], None] | None = None) -> ReportFiles:
    """Verify the audit chain and write the period's compliance report as Markdown and HTML."""
    if end < start:
        raise ValidationError([FieldError("end", "must not be before the start", "before_start")])
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValidationError([FieldError("end", "a report covers at most two years", "too_long")])
    chain = audit_browse.verify_log(actor, progress=progress)
    board = dashboard.build(start, end)
    sections = build_sections(board, chain, _actions_in_period(start, end), training._overview(clock.today()),
                              suggestions._in_period(start, end), translate)
    the_office = office.current()
    title = translate(N_("Compliance report {start} to {end}")).format(start=start, end=end)
    subtitle = translate(N_("{office} · made {when} by {staff}")).format(
        office=the_office.settings.office_name, when=clock.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        staff=actor.username)
    folder = Path(directory) if directory else the_office.settings.export_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"compliance-report-{start:%Y%m%d}-{end:%Y%m%d}"
    markdown, page = folder / f"{stem}.md", folder / f"{stem}.html"
    _write_private(markdown, to_markdown(title, subtitle, sections))
    _write_private(page, to_html(title, subtitle, sections))
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="REPORT_WRITE", details={"start": start.isoformat(), "end": end.isoformat(),
                                                 "anomalies": len(board.anomalies), "chain_ok": chain.ok})
    return ReportFiles(markdown, page, chain.ok, len(board.anomalies))
