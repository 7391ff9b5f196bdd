"""Signed audit checkpoints outside the database: written after commit only, and checked by verify."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from models import audit, checkpoints, office as office_mod
from models.audit import AuditEntry
from models.db import db, write
from tests.models.test_audit import disable_guards, entries, fill, tamper_update


def head_file(office) -> dict:
    """The newest slot of the head file."""
    slots = checkpoints._read_slots(office.settings.home / "checkpoints")
    return max((slot for slot in slots if slot), key=checkpoints._slot_seq)


def interval_lines(office) -> list[dict]:
    path = office.settings.home / "checkpoints" / checkpoints.LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def newest() -> AuditEntry:
    return AuditEntry.select().order_by(AuditEntry.seq.desc()).get()


def test_each_commit_signs_the_new_head_outside_the_database(office):
    fill(3)
    signed = head_file(office)["checkpoint"]
    assert (signed["seq"], signed["head"]) == (newest().seq, newest().hash)
    assert checkpoints.signature_ok(checkpoints.public_key_hex(), signed)
    assert not checkpoints.signature_ok(checkpoints.public_key_hex(), {**signed, "seq": signed["seq"] - 1})
    directory = office.settings.home / "checkpoints"
    assert directory.stat().st_mode & 0o077 == 0
    assert (directory / checkpoints.HEAD_NAME).stat().st_mode & 0o077 == 0
    result = audit.verify_chain()
    assert result.ok and result.checkpoints >= 1 and not result.warning


def test_the_key_is_derived_from_the_master_key_and_stable(office, settings):
    first = checkpoints.public_key_hex()
    office_mod.close_office()
    office_mod.open_office(settings)
    assert checkpoints.public_key_hex() == first and len(first) == 64
    assert checkpoints.key_id_of(first) == head_file(office)["checkpoint"]["key_id"]


def test_a_rolled_back_entry_is_never_signed(office):
    fill(2)
    before = head_file(office)["checkpoint"]
    with pytest.raises(RuntimeError):
        with write():
            audit.append(actor_id=1, actor="admin", action="TEST")
            raise RuntimeError("the change failed")
    assert head_file(office)["checkpoint"] == before
    fill(1)
    assert audit.verify_chain().ok


def test_a_rolled_back_savepoint_inside_a_committed_transaction_is_not_signed(office):
    fill(1)
    with write():
        try:
            with write():
                audit.append(actor_id=1, actor="admin", action="TEST", details={"kept": False})
                raise ValueError
        except ValueError:
            pass
        audit.append(actor_id=1, actor="admin", action="TEST", details={"kept": True})
    assert head_file(office)["checkpoint"]["head"] == newest().hash
    assert json.loads(newest().details) == {"kept": True}
    assert audit.verify_chain().ok


def test_several_entries_in_one_transaction_give_one_signature(office, monkeypatch):
    calls = []
    real = checkpoints.write_checkpoint
    monkeypatch.setattr(checkpoints, "write_checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    with write():
        fill(5)
    assert len(calls) == 1
    assert head_file(office)["checkpoint"]["seq"] == newest().seq


def test_interval_checkpoints_every_n_entries_and_every_m_minutes(office, monkeypatch, frozen_clock):
    monkeypatch.setattr(checkpoints, "INTERVAL_ENTRIES", 4)
    fill(9)
    seqs = [line["seq"] for line in interval_lines(office)]
    assert seqs and all(b - a >= 4 for a, b in zip(seqs, seqs[1:]))
    assert all(line["kind"] == "interval" for line in interval_lines(office))
    monkeypatch.setattr(checkpoints, "INTERVAL_ENTRIES", 1000)
    count = len(seqs)
    fill(1)
    assert len(interval_lines(office)) == count
    frozen_clock.advance(dt.timedelta(minutes=checkpoints.INTERVAL_MINUTES))
    fill(1)
    assert len(interval_lines(office)) == count + 1 and interval_lines(office)[-1]["seq"] == newest().seq
    result = audit.verify_chain()
    assert result.ok and result.checkpoints == count + 3  # every interval line and both head slots


def test_an_old_rewrite_is_caught_by_an_interval_checkpoint_even_with_a_forged_head_file(office, monkeypatch):
    """Rewriting entries 2.. and deleting the head file: the interval line still holds."""
    monkeypatch.setattr(checkpoints, "INTERVAL_ENTRIES", 5)
    fill(12)
    seqs = [line["seq"] for line in interval_lines(office)]
    assert seqs[0] == 1  # the first entry is signed at once, then every 5
    disable_guards()
    rows = entries()
    prev = rows[0]["hash"]
    with db.atomic():
        for row in rows[1:]:
            row["action"] = "REWRITTEN" if row["seq"] == 2 else row["action"]
            row["prev_hash"], row["hash"] = prev, audit.chain_hash(prev, row)
            tamper_update(row["seq"], action=row["action"], prev_hash=prev, hash=row["hash"])
            prev = row["hash"]
    (office.settings.home / "checkpoints" / checkpoints.HEAD_NAME).unlink()
    result = audit.verify_chain()
    # Entry 1 still matches its checkpoint; the next checkpoint (seq 6) no longer does.
    assert not result.ok and result.first_bad_seq == 2 and "rewritten" in result.reason
    assert f"2–{seqs[1]}" in result.reason and result.checkpoints == 1


def test_a_whole_log_rewritten_from_genesis_is_detected(office):
    fill(6)
    disable_guards()
    rows = entries()
    prev = audit.GENESIS
    with db.atomic():
        for row in rows:
            row["actor"] = "someone-else"
            row["prev_hash"], row["hash"] = prev, audit.chain_hash(prev, row)
            tamper_update(row["seq"], actor=row["actor"], prev_hash=prev, hash=row["hash"])
            prev = row["hash"]
    assert audit.verify_chain(checkpoints=False).ok  # the chain alone cannot tell
    assert not audit.verify_chain().ok


def test_a_forged_checkpoint_line_fails_verification(office):
    fill(2)
    path = office.settings.home / "checkpoints" / checkpoints.LOG_NAME
    forged = {"seq": 1, "head": "ab" * 32, "ts": "2026-11-25T02:00:00.000+00:00", "kind": "interval",
              "key_id": checkpoints.key_id_of(checkpoints.public_key_hex()), "sig": "00" * 64}
    with open(path, "a") as handle:
        handle.write(json.dumps(forged) + "\n")
    result = audit.verify_chain()
    assert not result.ok and "bad signature" in result.reason


def test_a_damaged_head_file_fails_verification(office):
    fill(2)
    (office.settings.home / "checkpoints" / checkpoints.HEAD_NAME).write_text("{not json")
    result = audit.verify_chain()
    assert not result.ok and "damaged" in result.reason


def test_a_torn_slot_leaves_the_other_and_is_a_warning(office):
    fill(3)
    path = office.settings.home / "checkpoints" / checkpoints.HEAD_NAME
    raw = bytearray(path.read_bytes())
    assert len(raw) == 2 * checkpoints.SLOT_BYTES
    newest = max((0, 1), key=lambda i: checkpoints._slot_seq(checkpoints._read_slots(path.parent)[i]))
    raw[newest * checkpoints.SLOT_BYTES + 5] = ord("#")  # a write cut short by a crash
    path.write_bytes(bytes(raw))
    result = audit.verify_chain()
    assert result.ok and "damaged" in result.warning and result.checkpoints >= 1
    fill(1)  # the next commit writes the damaged slot again
    result = audit.verify_chain()
    assert result.ok and not result.warning


def test_the_two_slots_take_turns(office):
    fill(1)
    slots = checkpoints._read_slots(office.settings.home / "checkpoints")
    before = [checkpoints._slot_seq(slot) for slot in slots]
    fill(1)
    after = [checkpoints._slot_seq(slot) for slot in checkpoints._read_slots(office.settings.home / "checkpoints")]
    changed = [i for i in (0, 1) if before[i] != after[i]]
    assert len(changed) == 1 and before[changed[0]] == min(before) and max(after) == max(before) + 1


def test_missing_checkpoints_are_a_warning_not_a_pass_in_silence(office):
    fill(2)
    for path in (office.settings.home / "checkpoints").iterdir():
        path.unlink()
    result = audit.verify_chain()
    assert result.ok and "no signed checkpoints" in result.warning


def test_writers_in_several_threads_keep_the_chain_and_checkpoints_consistent(office):
    errors = []

    def writer(number: int) -> None:
        try:
            for i in range(10):
                audit.append(actor_id=1, actor="admin", action="TEST", details={"t": number, "i": i})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert head_file(office)["checkpoint"]["seq"] == newest().seq
    result = audit.verify_chain()
    assert result.ok and result.entries == newest().seq


def test_a_failing_checkpoint_write_does_not_fail_the_change_and_is_retried(office, monkeypatch):
    fill(1)
    real = checkpoints._write_slot

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "_write_slot", broken)
    seq = audit.append(actor_id=1, actor="admin", action="TEST")
    assert newest().seq == seq
    monkeypatch.setattr(checkpoints, "_write_slot", real)
    fill(1)
    assert head_file(office)["checkpoint"]["seq"] == seq + 1


def test_a_checkpoint_from_another_office_is_named_as_such(office, tmp_path):
    """Another office (another master key) writing into this office's checkpoint folder."""
    from models import crypto

    fill(2)
    other = crypto.KeyRing.from_master(b"\x07" * 32)
    foreign_key = checkpoints.Ed25519PrivateKey.from_private_bytes(other.checkpoint)
    public = foreign_key.public_key().public_bytes(checkpoints.Encoding.Raw, checkpoints.PublicFormat.Raw).hex()
    line = {"seq": 1, "head": newest().hash, "ts": "2026-11-25T02:00:00.000+00:00", "kind": "interval",
            "key_id": checkpoints.key_id_of(public)}
    line["sig"] = foreign_key.sign(checkpoints.signed_bytes(1, line["head"], line["ts"], "interval")).hex()
    with open(office.settings.home / "checkpoints" / checkpoints.LOG_NAME, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    result = audit.verify_chain()
    assert not result.ok and "another key" in result.reason and result.first_bad_seq is None


def test_a_process_of_a_replaced_office_does_not_write_into_the_new_ones_folder(office, monkeypatch):
    from models import crypto

    fill(2)
    before = (office.settings.home / "checkpoints" / checkpoints.HEAD_NAME).read_bytes()
    other = crypto.KeyRing.from_master(b"\x07" * 32)
    monkeypatch.setattr(office, "keyring", other)  # this process now holds another office's keys
    with pytest.raises(RuntimeError, match="another office"):
        checkpoints.write_checkpoint()
    audit.append(actor_id=1, actor="admin", action="TEST")  # the entry is kept; only the signing is refused
    assert (office.settings.home / "checkpoints" / checkpoints.HEAD_NAME).read_bytes() == before
    monkeypatch.undo()
    fill(1)
    assert audit.verify_chain().ok


def test_a_deleted_office_folder_is_not_created_again_by_a_late_checkpoint(office, tmp_path, monkeypatch):
    fill(1)
    gone = tmp_path / "gone" / "office"
    monkeypatch.setattr(checkpoints, "checkpoint_dir", lambda: gone / checkpoints.DIR_NAME)
    with pytest.raises(FileNotFoundError):
        checkpoints.write_checkpoint()
    assert not gone.exists()
