"""The customer's copy of their personal information (PIPL art. 45): one readable folder per request.

`recordkeeper export --customer NUMBER` and the customer file's Copy key write, into the data
directory's export folder, a JSON file and a plain-text summary of everything the office holds
on the person (every field, dates, labels, the history of changes, documents as files), audited
before anything is decrypted. The folder is private to the service account; hand it over and
delete it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from models import audit, clock, customers, keystore, office
from models.errors import NotFound
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, GROUPS
from models.history import _history_of
from models.labels import _labels_of
from models.permissions import Actor, Perm, service

PURPOSE = "customer's copy of their personal information (PIPL art. 45)"
GROUP_TITLES = {"identity": ("Identity", "身份信息"), "contact": ("Contact", "联系方式"),
                "address": ("Address", "地址"), "work": ("Work", "工作"),
                "relationship": ("Relationship with us", "客户关系"), "consent": ("Consent", "授权同意")}
DATE_FIELDS = (("created_at", "Record created", "建档时间"), ("approved_at", "Approved", "审核通过"),
               ("last_verified", "Last verified", "最近核实"), ("next_verification_due", "Next verification", "下次核实"),
               ("terminated_on", "Relationship ended", "终止日期"),
               ("retention_until", "Kept until", "保存期限"), ("legal_hold", "Legal hold", "法律保全"))


# Codes in words the customer reads (the text summary; the JSON keeps the codes too).
CHOICE_WORDS = {
    "male": "male / 男", "female": "female / 女", "resident_id": "resident ID card / 居民身份证",
    "passport": "passport / 护照", "hkmo_permit": "HK/Macau permit / 港澳居民来往内地通行证",
    "taiwan_permit": "Taiwan permit / 台湾居民来往大陆通行证", "other": "other / 其他",
    "prospect": "prospective customer / 潜在客户", "active": "current customer / 在保客户",
    "terminated": "former customer / 已终止客户", "phone": "phone / 电话", "sms": "SMS / 短信",
    "email": "email / 电子邮件", "post": "post / 邮寄", "visit": "visit / 上门", "counter": "counter / 柜面",
    "agent": "agent / 代理人", "online": "online / 线上", "referral": "referral / 转介绍",
    "bancassurance": "bank / 银保",
}


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, cells: int) -> str:
    return text + " " * max(cells - _cells(text), 1)


@dataclass(frozen=True)
class DataCopy:
    customer_no: str
    folder: Path
    json_path: Path
    text_path: Path
    documents: int


def _text(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes / 是" if value else "no / 否"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(sep=" ", timespec="minutes") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _documents(actor: Actor, customer_id: str, folder: Path) -> list[dict]:
    """Each document's details, and the document itself decrypted into the folder (its SHA-256 checked)."""
    try:
        from models import documents
    except ImportError:
        return []
    out = []
    for number, doc in enumerate(documents.list_documents(actor, "customer", customer_id), start=1):
        exported = documents.export_document(actor, doc.document_id, PURPOSE)
        suffix = Path(exported.path).suffix
        target = folder / f"document-{number:02d}{suffix}"
        os.replace(exported.path, target)
        out.append({"file": target.name, "type": doc.doc_type, "content_type": doc.content_type,
                    "size": doc.size, "sha256": exported.sha256, "original_name": doc.name,
                    "added_at": _text(doc.added_at)})
    return out


def _change_requests(customer_id: str, notes: list[str]) -> list[dict]:
    """Every change request on the person: when, by whom, what was asked (decrypted), the outcome."""
    try:
        from models import change_requests as cr
    except ImportError:
        return []
    out = []
    try:
        for req in cr.ChangeRequest.select().where(cr.ChangeRequest.customer_id == customer_id).order_by(
                cr.ChangeRequest.requested_at):
            key = keystore.load_data_key(req.key_id)
            out.append({"requested_at": _text(req.requested_at), "requested_by": req.requester,
                        "source": req.source, "channel": req.channel, "status": req.status,
                        "decided_by": req.decider, "decided_at": _text(req.decided_at),
                        "proposed": cr._open(key, req.key_id, req.id, "proposed", req.proposed),
                        "reason": cr._open(key, req.key_id, req.id, "reason", req.reason)})
    except Exception as exc:  # one section failing must not withhold the rest of the copy
        notes.append(f"change requests could not be read ({type(exc).__name__})")
    return out


def _intake_revisions(customer_id: str, notes: list[str]) -> list[dict]:
    """The intake form as submitted, revision by revision (what was collected and when)."""
    try:
        from models import intake
    except ImportError:
        return []
    out = []
    try:
        for submission in intake._submissions_of_customer(customer_id):
            key = keystore.load_data_key(submission.key_id)
            for rev in intake.IntakeRevision.select().where(intake.IntakeRevision.submission == submission.id) \
                    .order_by(intake.IntakeRevision.number):
                out.append({"revision": rev.number, "submitted_at": _text(rev.submitted_at), "outcome": rev.outcome,
                            "values": intake._revision_values(rev, submission.key_id, key)})
    except Exception as exc:
        notes.append(f"intake revisions could not be read ({type(exc).__name__})")
    return out


@service(Perm.CUSTOMER_REVEAL)
def export_customer_copy(actor: Actor, customer_no: str) -> DataCopy:
    """Write the customer's copy (JSON and text) into a new private folder in the export folder."""
    from models.training import require_training

    require_training(actor, "data_copy")  # lapsed data-protection training blocks exporting
    row = customers._row(customer_no)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="DATA_COPY",
                 object_type="customer", object_id=row["customer_no"], fields=customers.PERSONAL_FIELDS,
                 purpose=PURPOSE)
    try:
        key = keystore.load_data_key(row["key_id"])
    except Exception as exc:
        raise NotFound("this customer's data can no longer be read (its key was destroyed)") from exc
    values = customers.decrypt_fields(row["id"], row["key_id"], key, row)
    values.update({name: row[name] for name in customers.PLAIN_FIELDS})
    settings = office.current().settings
    office.ensure_private_dir(settings.export_dir)
    stamp = clock.now().astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = settings.export_dir / f"{row['customer_no']}-copy-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = settings.export_dir / f"{row['customer_no']}-copy-{stamp}-{suffix}"
    folder.mkdir(mode=0o700)
    labels = _labels_of([row["id"]])[row["id"]]
    history = _history_of(row["id"])
    documents = _documents(actor, row["id"], folder)
    notes: list[str] = []
    requests = _change_requests(row["id"], notes)
    revisions = _intake_revisions(row["id"], notes)
    made_at = clock.now().astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    data = {
        "customer_no": row["customer_no"],
        "made_at": made_at,
        "made_by": actor.username,
        "purpose": PURPOSE,
        "fields": {spec.name: {"label_en": spec.label_en, "label_zh": spec.label_zh, "group": spec.group,
                               "value": values.get(spec.name, ""),
                               **({"in_words": CHOICE_WORDS[str(values.get(spec.name))]}
                                  if str(values.get(spec.name)) in CHOICE_WORDS else {})}
                   for spec in CUSTOMER_FIELDS},
        "dates": {name: _text(row.get(name)) for name, _en, _zh in DATE_FIELDS},
        "responsible_clerk": row.get("clerk") or "",
        "labels": [{"name": label.name, "description": label.description} for label in labels],
        "history": [{"at": _text(event.at), "by": event.actor, "what": event.kind, "fields": list(event.fields)}
                    for event in history],
        "documents": documents,
        "change_requests": requests,
        "intake_revisions": revisions,
        "imported": bool(row.get("import_batch")),
        "not_included": notes,
    }
    json_path = folder / "customer-data.json"
    _write_private(json_path, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))
    text_path = folder / "customer-data.txt"
    _write_private(text_path, _summary(data).encode("utf-8"))
    return DataCopy(row["customer_no"], folder, json_path, text_path, len(documents))


def _summary(data: dict) -> str:
    """The plain-text summary: every field by group, in English and Chinese, then dates, labels, history."""
    lines = [f"Personal information held on customer {data['customer_no']} / 客户个人信息副本",
             f"Made {data['made_at']} by {data['made_by']} — {data['purpose']}", ""]
    width = 34
    for group in GROUPS:
        english, chinese = GROUP_TITLES[group]
        lines.append(f"{english} / {chinese}")
        for spec in CUSTOMER_FIELDS:
            if spec.group == group:
                entry = data["fields"][spec.name]
                shown = entry.get("in_words") or _text(entry["value"])
                lines.append("  " + _pad(f"{spec.label_en} / {spec.label_zh}", width) + shown)
        lines.append("")
    lines.append("Dates / 日期")
    for name, english, chinese in DATE_FIELDS:
        lines.append("  " + _pad(f"{english} / {chinese}", width) + data["dates"][name])
    lines.append("  " + _pad("Responsible clerk / 负责人", width) + data["responsible_clerk"])
    lines += ["", "Labels / 标签"]
    lines += [f"  {label['name']}  {label['description']}" for label in data["labels"]] or ["  (none / 无)"]
    lines += ["", "History of changes / 变更记录"]
    lines += [f"  {event['at']}  {event['by']}  {event['what']}  "
              + ", ".join(FIELDS_BY_NAME[f].label_en if f in FIELDS_BY_NAME else f for f in event["fields"])
              for event in data["history"]] or ["  (none / 无)"]
    lines += ["", "Documents / 证明材料"]
    lines += [f"  {doc['file']}  {doc['type']}  {doc['size']} bytes  sha256 {doc['sha256']}"
              for doc in data["documents"]] or ["  (none / 无)"]
    lines += ["", "Requests to change the record / 变更申请"]
    lines += [f"  {req['requested_at']}  {req['requested_by']}  {req['status']}  "
              + ", ".join(f"{FIELDS_BY_NAME[k].label_en if k in FIELDS_BY_NAME else k}: {_text(v)}"
                          for k, v in (req["proposed"] or {}).items())
              for req in data["change_requests"]] or ["  (none / 无)"]
    lines += ["", "Intake form as collected / 录入记录"]
    lines += [f"  revision {rev['revision']}  {rev['submitted_at']}  {rev['outcome']}"
              for rev in data["intake_revisions"]] or ["  (none / 无)"]
    if data["not_included"]:
        lines += ["", "Not included (tell the records officer) / 未能读取:"] + [f"  {n}" for n in data["not_included"]]
    if data["imported"]:
        lines += ["", "This record was imported from the office's earlier system. / 本记录由原系统迁入。"]
    return "\n".join(lines) + "\n"
