"""The key store: per-customer data keys, wrapped, in their own small database.

Keys never live in the main database, so deleting one here shreds every copy of that
customer's ciphertext, backups of the main database included.
"""

from __future__ import annotations

import datetime as dt
import uuid

import peewee as pw

from models import clock, crypto, office
from models.db import KeyStoreModel, keys_db
from models.errors import IntegrityFailure


class DataKey(KeyStoreModel):
    key_id = pw.CharField(max_length=36, primary_key=True)
    wrapped = pw.BlobField()
    created_at = pw.DateTimeField()

    class Meta:
        table_name = "data_key"


def _aad(key_id: str) -> bytes:
    return b"recordkeeper.dek.v1|" + key_id.encode()


def create_data_key() -> tuple[str, bytes]:
    """Make, wrap and store a new data key; returns its id and the key."""
    key_id = str(uuid.uuid4())
    key = crypto.new_data_key()
    wrapped = crypto.encrypt(office.current().keyring.wrapping, key, _aad(key_id))
    with keys_db.atomic():
        DataKey.create(key_id=key_id, wrapped=wrapped,
                       created_at=clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None))
    return key_id, key


def load_data_key(key_id: str) -> bytes:
    row = DataKey.get_or_none(DataKey.key_id == key_id)
    if row is None:
        raise IntegrityFailure("the customer's data key is missing from the key store (destroyed or not restored)")
    return crypto.decrypt(office.current().keyring.wrapping, bytes(row.wrapped), _aad(key_id))


def load_data_keys(key_ids: list[str]) -> dict[str, bytes]:
    wrapping = office.current().keyring.wrapping
    rows = DataKey.select().where(DataKey.key_id.in_(key_ids)) if key_ids else []
    return {r.key_id: crypto.decrypt(wrapping, bytes(r.wrapped), _aad(r.key_id)) for r in rows}


def destroy_data_key(key_id: str) -> bool:
    """Delete a data key (idempotent); returns whether one was there."""
    with keys_db.atomic():
        return DataKey.delete().where(DataKey.key_id == key_id).execute() > 0
