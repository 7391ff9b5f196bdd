"""The customer store: personal fields encrypted per field under the customer's data key.

Lookups by resident ID, phone and name go through truncated blind indexes; candidates are
decrypted and compared exactly. Every view, reveal and search is audited before decryption.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import operator
import os
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

import peewee as pw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models import audit, clock, crypto, history, keystore, normalise, office, validation
from models.db import BaseModel, write
from models.errors import FieldError, IntegrityFailure, NotFound, RecordKeeperError, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, ID_TYPES, PERSONAL_FIELDS, PLAIN_FIELDS, Kind
from models.permissions import Actor, Perm, service
from models.staff import Staff

TABLE = "customer"
VERIFY_MONTHS = {"active": 12, "prospect": 6}


def _customer_columns() -> dict[str, pw.Field]:
    columns: dict[str, pw.Field] = {
        "id": pw.CharField(max_length=36, primary_key=True),
        "customer_no": pw.CharField(max_length=16, unique=True),
        "key_id": pw.CharField(max_length=36),
        "id_bidx": pw.IntegerField(null=True, index=True),
        "mobile_bidx": pw.IntegerField(null=True, index=True),
        "name_bidx": pw.IntegerField(null=True, index=True),
        # Keyed fingerprint of (ID type, normalised ID number): finds an existing customer on import
        # without decrypting a bucket. An ID belongs to one person, so it reveals no equalities.
        "id_fp": pw.CharField(max_length=32, null=True, index=True),
        "import_batch": pw.CharField(max_length=36, null=True),  # set on imported customers (not indexed)
        "index_version": pw.SmallIntegerField(default=1),
        "responsible_clerk": pw.ForeignKeyField(Staff, null=True, backref="customers", on_delete="SET NULL"),
        "created_by": pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL"),
        "created_at": pw.DateTimeField(),
        "approved_at": pw.DateTimeField(null=True),
        "last_verified": pw.DateField(null=True),
        "next_verification_due": pw.DateField(null=True, index=True),
        "last_contact": pw.DateField(null=True),
        "terminated_on": pw.DateField(null=True),
        "long_policy": pw.BooleanField(null=True),
        "retention_until": pw.DateField(null=True, index=True),
        "legal_hold": pw.BooleanField(default=False),
        "version": pw.IntegerField(default=1),
    }
    for spec in CUSTOMER_FIELDS:
        if spec.personal:
            columns[spec.name] = pw.BlobField()
        elif spec.kind is Kind.BOOL:
            columns[spec.name] = pw.BooleanField(default=False)
        else:
            columns[spec.name] = pw.CharField(max_length=max(spec.max_length, 16), default="",
                                              index=spec.name in ("category", "branch"))
    return columns


class _Meta:
    table_name = TABLE


Customer = type("Customer", (BaseModel,), {"__module__": __name__, "Meta": _Meta, **_customer_columns()})


class CustomerNumberSequence(BaseModel):
    year = pw.IntegerField(primary_key=True)
    last = pw.IntegerField(default=0)

    class Meta:
        table_name = "customer_number_sequence"


# --- masking -------------------------------------------------------------------------


def mask_name(value: str) -> str:
    """The first character and one star, whatever the length (the length would give the name away)."""
    return value[:1] + "*" if value else ""


def mask_tail(value: str, keep: int = 4) -> str:
    return "*" * max(len(value) - keep, 0) + value[-keep:] if value else ""


def mask_value(field_name: str, value: object) -> str:
    """How a field shows before it is revealed."""
    if value in ("", None):
        return ""
    if field_name in PLAIN_FIELDS:
        return str(value)
    if field_name in ("full_name", "guardian_name"):
        return mask_name(str(value))
    if field_name in ("id_number", "mobile", "other_phone"):
        return mask_tail(str(value))
    if field_name == "gender":
        return str(value)
    return "***"


# --- encryption ----------------------------------------------------------------------


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # the same text as json.dumps(v, ensure_ascii=False)
_LP_FIELDS = {name: crypto._lp(name.encode()) for name in PERSONAL_FIELDS}


def _aad_parts(table: str, record_id: str, key_id: str) -> tuple[bytes, bytes]:
    """The AAD of a record's fields is head + length-prefixed field name + tail (== crypto.field_aad)."""
    return crypto.AAD_DOMAIN + crypto._lp(table.encode()) + crypto._lp(record_id.encode()), \
        crypto._lp(key_id.encode())


def _json_text(value: object) -> str:
    # json.dumps(value, ensure_ascii=False) for the common case (a str) without building an encoder.
    return _JSON_STRING(value) if type(value) is str else _JSON_ENCODE(value)


_JSON_STRING = json.encoder.encode_basestring  # what JSONEncoder(ensure_ascii=False) uses for a str
_NONCE_SLICES = tuple(slice(i * crypto.NONCE_BYTES, (i + 1) * crypto.NONCE_BYTES) for i in range(len(PERSONAL_FIELDS)))


def encrypt_fields(record_id: str, key_id: str, key: bytes, values: dict[str, object],
                   table: str = TABLE) -> dict[str, bytes]:
    return dict(zip(PERSONAL_FIELDS, _encrypt_in_order(record_id, key_id, key, values, table)))


def _encrypt_in_order(record_id: str, key_id: str, key: bytes, values: dict[str, object],
                      table: str = TABLE) -> list[bytes]:
    """The PERSONAL_FIELDS' ciphertexts, in that order (the bulk path's hot loop)."""
    # One AESGCM object and one random read per record; each field still gets its own nonce and
    # exactly the ciphertext crypto.encrypt(key, ..., crypto.field_aad(...)) would give.
    encrypt = AESGCM(key).encrypt
    head, tail = _aad_parts(table, record_id, key_id)
    nonces = os.urandom(crypto.NONCE_BYTES * len(PERSONAL_FIELDS))
    get = values.get
    fmt = crypto.FORMAT_V1
    out = []
    for name, part, label in _FIELD_PLAN:
        value = get(name, "")
        nonce = nonces[part]
        kind = type(value)
        plaintext = _EMPTY_JSON if value == "" else _JSON_STRING(value).encode() if kind is str else \
            _JSON_BOOL[value] if kind is bool else _JSON_ENCODE(value).encode()
        out.append(fmt + nonce + encrypt(nonce, plaintext, head + label + tail))
    return out


_EMPTY_JSON = b'""'  # json.dumps("")
_JSON_BOOL = {True: b"true", False: b"false"}
_FIELD_PLAN = tuple(zip(PERSONAL_FIELDS, _NONCE_SLICES, (_LP_FIELDS[name] for name in PERSONAL_FIELDS)))


def decrypt_fields(record_id: str, key_id: str, key: bytes, row: dict, names=PERSONAL_FIELDS,
                   table: str = TABLE) -> dict[str, object]:
    if len(names) == 1:
        name = names[0]
        return {name: json.loads(crypto.decrypt(key, bytes(row[name]),
                                                crypto.field_aad(table, record_id, name, key_id)))}
    aes = AESGCM(key)
    head, tail = _aad_parts(table, record_id, key_id)
    out = {}
    for name in names:
        blob = bytes(row[name])
        if not blob or blob[:1] != crypto.FORMAT_V1 or len(blob) < 1 + crypto.NONCE_BYTES + 16:
            raise IntegrityFailure("ciphertext has an unknown format or is truncated")
        try:
            plaintext = aes.decrypt(blob[1:1 + crypto.NONCE_BYTES], blob[1 + crypto.NONCE_BYTES:],
                                    head + crypto._lp(name.encode()) + tail)
        except InvalidTag:
            raise IntegrityFailure("ciphertext failed its integrity check (altered, or moved from another "
                                   "field or record)") from None
        out[name] = json.loads(plaintext)
    return out


@functools.lru_cache(maxsize=64)
def _index_key(root: bytes, info: str) -> bytes:
    """A blind-index sub-key, derived once per office and index (KeyRing.blind_index derives it per call)."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=info.encode()).derive(root)


def _blind(root: bytes, index_name: str, normalised: str, bits: int) -> int:
    """The same number as KeyRing.blind_index(index_name, normalised, bits), with the sub-key cached."""
    digest = crypto.hmac_sha256(_index_key(root, f"bidx|v1|customer|{index_name}"), normalised.encode("utf-8"))
    return int.from_bytes(digest[:4], "big") >> (32 - bits)


def _fingerprint(root: bytes, values: dict[str, object], normalised_id: str | None = None) -> str | None:
    """Keyed fingerprint of the ID document (type and normalised number); None without a number."""
    if not values.get("id_number"):
        return None
    text = f"{values.get('id_type', 'resident_id')}|{normalised_id or _norm_id(values)}"
    return crypto.hmac_sha256(_index_key(root, "idfp|v1|customer"), text.encode("utf-8"))[:16].hex()


def _indexes_with(root: bytes, bits: int, values: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {"id_bidx": None, "mobile_bidx": None, "name_bidx": None, "id_fp": None}
    if values.get("id_number"):
        normalised_id = _norm_id(values)
        out["id_bidx"] = _blind(root, _id_index_name(values), normalised_id, bits)
        out["id_fp"] = _fingerprint(root, values, normalised_id)
    if values.get("mobile"):
        out["mobile_bidx"] = _blind(root, "mobile", normalise.normalise_phone(str(values["mobile"])), bits)
    if values.get("full_name"):
        out["name_bidx"] = _blind(root, "full_name", normalise.normalise_name(str(values["full_name"])), bits)
    return out


def blind_indexes(values: dict[str, object]) -> dict[str, int | None]:
    """The three blind indexes of a record and the ID fingerprint (None where the value is empty)."""
    return _indexes_with(office.current().keyring.blind_index_root, office.current().settings.blind_index_bits,
                         values)


def _id_index_name(values: dict[str, object]) -> str:
    return "id_number" if values.get("id_type", "resident_id") == "resident_id" else f"id_number|{values['id_type']}"


def _norm_id(values: dict[str, object]) -> str:
    raw = str(values["id_number"])
    if values.get("id_type", "resident_id") == "resident_id":
        return normalise.normalise_resident_id(raw)
    return normalise.normalise_customer_number(raw)


# --- results handed to the UI --------------------------------------------------------


@dataclass(frozen=True)
class CustomerSummary:
    customer_id: str
    customer_no: str
    masked_name: str
    category: str
    branch: str
    responsible_clerk: str
    next_verification_due: dt.date | None
    retention_until: dt.date | None
    legal_hold: bool


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    customer_no: str
    version: int
    values: dict[str, object]  # masked, unless revealed
    revealed: frozenset[str] = field(default_factory=frozenset)
    created_at: dt.datetime | None = None
    approved_at: dt.datetime | None = None
    last_verified: dt.date | None = None
    next_verification_due: dt.date | None = None
    terminated_on: dt.date | None = None
    retention_until: dt.date | None = None
    legal_hold: bool = False
    responsible_clerk: str = ""


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in range(day.day, 27, -1):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    return dt.date(year, month, min(day.day, 28))


def verify_months() -> dict[str, int]:
    """Months between periodic verifications per category (the office's settings, else the defaults)."""
    try:
        settings = office.current().settings
    except Exception:  # no office open (pure date arithmetic in tests and tools)
        return VERIFY_MONTHS
    return {"active": settings.verify_months_active, "prospect": settings.verify_months_prospect}


def next_verification(category: str, from_day: dt.date) -> dt.date | None:
    months = verify_months().get(category)
    return _add_months(from_day, months) if months else None


def _next_customer_no(year: int) -> str:
    return format_customer_no(year, _reserve_customer_numbers(year, 1))


def format_customer_no(year: int, serial: int) -> str:
    """C, the year and six digits; past 999,999 in a year a letter comes before the six digits.

    C2026A000000 follows C2026999999 in text order (a letter sorts after a digit), so numbers keep
    the order customers arrived in, which the browser's paging relies on, even when a legacy import
    brings millions of customers in one year.
    """
    block, rest = divmod(serial, 1_000_000)
    if block == 0:
        return f"C{year}{rest:06d}"
    if block > 26:
        raise RecordKeeperError(f"the customer numbers of {year} are used up (27 million)")
    return f"C{year}{chr(ord('A') + block - 1)}{rest:06d}"


def _insert_customer(actor: Actor, cleaned: dict[str, object], *, responsible_clerk_id: int | None,
                    approved: bool = True, data_key: tuple[str, bytes] | None = None) -> tuple[str, str]:
    """Write a validated record inside the caller's transaction; returns (customer id, number).

    `data_key` (key id, key) reuses an existing data key: intake hands over the submission's key.
    """
    customer_id = str(uuid.uuid4())
    key_id, key = data_key if data_key is not None else keystore.create_data_key()
    today = clock.today()
    plain = {name: cleaned.get(name, False if FIELDS_BY_NAME[name].kind is Kind.BOOL else "")
             for name in PLAIN_FIELDS}
    with write():
        customer_no = _next_customer_no(today.year)
        now = clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)
        Customer.insert(
            id=customer_id, customer_no=customer_no, key_id=key_id,
            **encrypt_fields(customer_id, key_id, key, cleaned), **plain, **blind_indexes(cleaned),
            responsible_clerk=responsible_clerk_id, created_by=actor.staff_id, created_at=now,
            approved_at=now if approved else None, last_contact=today,
            next_verification_due=next_verification(str(cleaned.get("category", "")), today),
        ).execute()
        history._record_event(actor, customer_id, "created",
                              [s.name for s in CUSTOMER_FIELDS if cleaned.get(s.name) not in ("", None)])
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="CUSTOMER_CREATE", object_type=TABLE, object_id=customer_no,
                     fields=[s.name for s in CUSTOMER_FIELDS if cleaned.get(s.name) not in ("", None)])
    return customer_id, customer_no


# --- bulk insertion: import and the benchmark generator ---------------------------------
#
# Same ciphertext format, blind indexes and key-store rows as _insert_customer, but sealed
# (possibly in worker processes) ahead of the write, and written a batch at a time: the keys
# in one key-store transaction, then the customers, their history events and ONE audit entry
# in one main transaction. If the main transaction fails, the batch's keys are deleted again.


@dataclass(frozen=True)
class SealKeys:
    """What sealing a record needs; plain bytes, so import workers in other processes can seal too."""

    wrapping: bytes
    index_root: bytes
    bits: int


def seal_keys() -> SealKeys:
    current = office.current()
    return SealKeys(current.keyring.wrapping, current.keyring.blind_index_root, current.settings.blind_index_bits)


def time_ordered_id(ms: int | None = None, rand: bytes | None = None) -> str:
    """A random UUID whose first 48 bits are the time in ms (RFC 9562 v7): bulk inserts append to the index."""
    ms = (int(clock.now().timestamp() * 1000) if ms is None else ms) & 0xFFFFFFFFFFFF
    rand = os.urandom(10) if rand is None else rand
    text = f"{ms:012x}7{rand[:2].hex()[1:]}{(rand[2] & 0x3F | 0x80):02x}{rand[3:10].hex()}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=4)
def _wrapper(wrapping: bytes) -> AESGCM:
    return AESGCM(wrapping)


# What a sealed record carries, in this order (the rest of a row is set when it is written).
SEALED_COLUMNS: tuple[str, ...] = (*PERSONAL_FIELDS, "id_bidx", "mobile_bidx", "name_bidx", "id_fp", *PLAIN_FIELDS)
_SEALED_INDEX = {name: index for index, name in enumerate(SEALED_COLUMNS)}
# Per-row columns the caller of _insert_sealed may give (dates, clerk, batch); others take their defaults.
RECORD_COLUMNS: tuple[str, ...] = ("created_at", "approved_at", "last_contact", "last_verified",
                                   "next_verification_due", "terminated_on", "long_policy", "retention_until",
                                   "legal_hold", "responsible_clerk", "import_batch")


class SealedCustomer(NamedTuple):
    """A validated record, encrypted under its own new data key, ready to insert (a tuple: cheap to pickle)."""

    customer_id: str
    key_id: str
    wrapped_key: bytes
    values: tuple  # SEALED_COLUMNS: ciphertexts, blind indexes, fingerprint, plain fields

    def column(self, name: str) -> object:
        return self.values[_SEALED_INDEX[name]]


def seal_customer(cleaned: dict[str, object], keys: SealKeys, customer_id: str | None = None) -> SealedCustomer:
    """Encrypt a cleaned record under a new data key and compute its indexes; touches no database."""
    return seal_customers([cleaned], keys, [customer_id])[0]


def seal_customers(records: list[dict[str, object]], keys: SealKeys,
                   customer_ids: list[str | None] | None = None) -> list[SealedCustomer]:
    """seal_customer for many records, done a step at a time over all of them.

    The same results as sealing one by one, about a third faster: alternating AES-GCM and HMAC
    calls record by record costs OpenSSL far more than doing all of one, then all of the other.
    """
    ms = int(clock.now().timestamp() * 1000)
    wrap = _wrapper(keys.wrapping).encrypt
    made = []
    for number, given in enumerate(customer_ids or [None] * len(records)):
        fresh = os.urandom(20 + 32 + crypto.NONCE_BYTES)  # two ids, the data key and its wrapping nonce at once
        key_id = time_ordered_id(ms, fresh[10:20])
        key, nonce = fresh[20:52], fresh[52:]
        made.append((given or time_ordered_id(ms, fresh[:10]), key_id, key,
                     crypto.FORMAT_V1 + nonce + wrap(nonce, key, keystore._aad(key_id))))
    root, bits = keys.index_root, keys.bits
    indexes = [_indexes_with(root, bits, cleaned) for cleaned in records]
    sealed = []
    for (customer_id, key_id, key, wrapped), cleaned, index in zip(made, records, indexes, strict=True):
        get = cleaned.get
        sealed.append(SealedCustomer(customer_id, key_id, wrapped, (
            *_encrypt_in_order(customer_id, key_id, key, cleaned), index["id_bidx"], index["mobile_bidx"],
            index["name_bidx"], index["id_fp"], *map(get, _PLAIN_NAMES, _PLAIN_DEFAULTS))))
    return sealed


_PLAIN_EMPTY = {name: False if FIELDS_BY_NAME[name].kind is Kind.BOOL else "" for name in PLAIN_FIELDS}
_PLAIN_NAMES, _PLAIN_DEFAULTS = tuple(_PLAIN_EMPTY), tuple(_PLAIN_EMPTY.values())


def _reserve_customer_numbers(year: int, count: int) -> int:
    """Reserve `count` consecutive numbers of `year` inside the caller's transaction; returns the first."""
    audit._lock_chain()  # PostgreSQL: serialise with other writers, or two could both create the year's row
    updated = (CustomerNumberSequence.update(last=CustomerNumberSequence.last + count)
               .where(CustomerNumberSequence.year == year).execute())
    if not updated:
        CustomerNumberSequence.insert(year=year, last=count).execute()
    return CustomerNumberSequence.get_by_id(year).last - count + 1


def _field_default(model_field: pw.Field) -> object:
    default = model_field.default
    return default() if callable(default) else default


def _insert_sql(database, model: type[BaseModel], first: tuple[str, ...]) -> tuple[str, tuple, list[str]]:
    """INSERT for `first` columns then every other column (but an auto id); returns (sql, defaults, fields)."""
    fields = {f.name: f for f in model._meta.sorted_fields if not isinstance(f, pw.AutoField)}
    rest = [name for name in fields if name not in first]
    names = [*first, *rest]
    sql = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
        model._meta.table_name, ", ".join(f'"{fields[n].column_name}"' for n in names),
        ", ".join([database.param] * len(names)))
    return sql, tuple(_field_default(fields[n]) for n in rest), names


def _executemany(database, model: type[BaseModel], rows: list[dict[str, object]]) -> None:
    """Insert many rows (dicts by field name) with one prepared statement, defaults for missing fields."""
    if not rows:
        return
    sql, _defaults, names = _insert_sql(database, model, ())
    defaults = {f.name: _field_default(f) for f in model._meta.sorted_fields}
    values_of = operator.itemgetter(*names)
    database.cursor().executemany(sql, [values_of({**defaults, **row}) for row in rows])


BULK_CACHE_KIB = 262144
BULK_CHECKPOINT_PAGES = 65536  # 256 MB of WAL between checkpoints during a bulk job


@contextlib.contextmanager
def bulk_cache():
    """A big SQLite page cache for this connection while a bulk job runs: a million rows' random index
    pages (blind indexes, fingerprints) then stay in memory instead of being read again and again."""
    from models.db import db, is_sqlite

    if not is_sqlite():
        yield
        return
    before = db.execute_sql("PRAGMA cache_size").fetchone()[0]
    checkpoint_pages = db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.execute_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    # Checkpoint the WAL every BULK_CHECKPOINT_PAGES instead of every 1000: each batch dirties the same
    # blind-index pages, and copying them into the database after every batch copied them many times.
    db.execute_sql(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
    try:
        yield
    finally:
        db.execute_sql(f"PRAGMA cache_size={int(before)}")
        db.execute_sql(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _time_adapter():
    """SQLite gets dates and times as the text its adapters would make (made once per distinct value)."""
    from models.db import is_sqlite

    if not is_sqlite():
        return lambda value: value
    made: dict = {}

    def adapt(value):
        if isinstance(value, dt.date):
            text = made.get(value)
            if text is None:
                text = made[value] = value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
            return text
        return value

    return adapt


def _insert_sealed(actor: Actor, batch: list[SealedCustomer] | list[tuple], records: list[dict[str, object]], *,
                   event_kind: str | None, event_details: dict, audit_action: str, audit_object_type: str,
                   audit_object_id: str, audit_details: dict) -> list[str]:
    """Write sealed customers (their RECORD_COLUMNS in `records`) in one transaction; returns their numbers.

    `batch` holds SealedCustomers or plain tuples of the same four parts (the import's workers send
    tuples: a named tuple costs twice as much to pass between processes).
    Each record needs created_at (naive UTC); numbers are given per year of creation, in order.
    `event_kind` None writes no history event per customer (an import's batch id says it instead).
    """
    with SealedBatch(actor, event_kind=event_kind, event_details=event_details, audit_action=audit_action,
                     audit_object_type=audit_object_type, audit_object_id=audit_object_id,
                     audit_details=audit_details) as writing:
        return writing.add(batch, records)


class SealedBatch:
    """One write transaction of sealed customers, added a part at a time, with ONE audit entry at its end.

    The batch's data keys are stored just before the commit, in one key-store transaction (a key
    must never be missing for a committed row); if the batch then does not commit, they are deleted
    again, so a failed batch leaves nothing behind.
    The import adds each chunk as the workers hand it over, so writing overlaps their sealing.
    """

    def __init__(self, actor: Actor, *, audit_action: str, audit_object_type: str, audit_object_id: str,
                 audit_details: dict, event_kind: str | None = None, event_details: dict | None = None):
        self.actor = actor
        self.audit = (audit_action, audit_object_type, audit_object_id, audit_details)
        self.event_kind = event_kind
        self.event_json = json.dumps(event_details or {}, sort_keys=True, ensure_ascii=False)
        self.numbers: list[str] = []
        self.keys: list[tuple[str, bytes, str]] = []  # data-key rows, stored just before the commit
        self.stored_keys = False

    def __enter__(self) -> "SealedBatch":
        from models.db import db

        self._write = write()
        self._write.__enter__()
        self._sql, rest, _names = _insert_sql(db, Customer, ("id", "key_id", *SEALED_COLUMNS, "customer_no",
                                                             "created_by", *RECORD_COLUMNS))
        self._rest = tuple(rest)
        self._record_defaults = {f.name: _field_default(f) for f in Customer._meta.sorted_fields
                                 if f.name in RECORD_COLUMNS}
        self._adapt = _time_adapter()
        return self

    def add(self, batch: list[SealedCustomer] | list[tuple], records: list[dict[str, object]]) -> list[str]:
        """Write the rows inside the open transaction (their keys wait for the commit); returns their numbers."""
        from models.db import db

        created = clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
        self.keys += [(key_id, wrapped, created) for _id, key_id, wrapped, _values in batch]
        per_year: dict[int, int] = {}
        for record in records:
            year = record["created_at"].year
            per_year[year] = per_year.get(year, 0) + 1
        next_number = {year: _reserve_customer_numbers(year, count) for year, count in sorted(per_year.items())}
        record_values = operator.itemgetter(*RECORD_COLUMNS)
        adapt, defaults, rest = self._adapt, self._record_defaults, self._rest
        staff_id = (self.actor.staff_id,)
        numbers, rows, events = [], [], []
        made: dict[int, tuple] = {}  # the columns of each distinct record dict (callers may share one)
        for (customer_id, key_id, _wrapped, values), record in zip(batch, records, strict=True):
            year = record["created_at"].year
            customer_no = format_customer_no(year, next_number[year])
            next_number[year] += 1
            numbers.append(customer_no)
            extra = made.get(id(record))
            if extra is None:
                extra = made[id(record)] = tuple(map(adapt, record_values({**defaults, **record})))
            rows.append((customer_id, key_id) + values + (customer_no,) + staff_id + extra + rest)
            if self.event_kind:
                events.append((customer_id, extra[0], self.actor.staff_id, self.actor.username, self.event_kind, "",
                               self.event_json))
        db.cursor().executemany(self._sql, rows)
        if events:
            db.cursor().executemany(
                'INSERT INTO "customer_event" ("customer_id", "at", "actor_id", "actor", "kind", "fields", '
                '"details") VALUES ({})'.format(", ".join([db.param] * 7)), events)
        self.numbers += numbers
        return numbers

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        failure = exc_value
        if failure is None and self.numbers:
            action, object_type, object_id, details = self.audit
            try:
                self._store_keys()  # durable before the rows that need them commit
                audit.append(actor_id=self.actor.staff_id, actor=self.actor.username,
                             session_id=self.actor.session_id, action=action, object_type=object_type,
                             object_id=object_id, details={**details, "count": len(self.numbers),
                                                           "first": self.numbers[0], "last": self.numbers[-1]})
            except BaseException as error:
                failure = error
        try:
            if failure is None:
                self._write.__exit__(None, None, None)  # commits
            else:
                self._write.__exit__(type(failure), failure, failure.__traceback__)  # rolls back
        except BaseException:
            self._forget_keys()
            raise
        if failure is not None:
            self._forget_keys()
            if failure is not exc_value:
                raise failure  # the audit entry could not be written: nothing of the batch stays
        return False

    def _store_keys(self) -> None:
        from models.db import keys_db

        with keys_db.atomic():
            keys_db.cursor().executemany('INSERT INTO "data_key" ("key_id", "wrapped", "created_at") VALUES (?, ?, ?)',
                                         self.keys)
        self.stored_keys = True

    def _forget_keys(self) -> None:
        from models.db import keys_db

        if not self.stored_keys:
            return
        with keys_db.atomic():
            for start in range(0, len(self.keys), 500):
                part = [key_id for key_id, _wrapped, _created in self.keys[start:start + 500]]
                keystore.DataKey.delete().where(keystore.DataKey.key_id.in_(part)).execute()


def _backfill_fingerprints(batch: int = 1000) -> int:
    """Give every customer written without an ID fingerprint one (rows older than migration 4)."""
    try:
        root = office.current().keyring.blind_index_root
    except Exception:  # no office open: nothing can be decrypted, and a new database has no rows
        return 0
    done, last_id = 0, ""
    while True:
        rows = list(Customer.select(Customer.id, Customer.key_id, Customer.id_type, Customer.id_number)
                    .where(Customer.id_fp.is_null() & (Customer.id > last_id)).order_by(Customer.id)
                    .limit(batch).dicts())
        if not rows:
            return done
        keys = keystore.load_data_keys([r["key_id"] for r in rows])
        with write():
            for r in rows:
                if r["key_id"] in keys:  # a destroyed customer's key is gone: nothing to fingerprint
                    values = decrypt_fields(r["id"], r["key_id"], keys[r["key_id"]], r, ("id_type", "id_number"))
                    Customer.update(id_fp=_fingerprint(root, values)).where(Customer.id == r["id"]).execute()
                    done += 1
        last_id = rows[-1]["id"]


@service(Perm.CUSTOMER_CREATE)
def create_customer(actor: Actor, data: dict[str, object]) -> CustomerSummary:
    """Validate and store a customer directly (import and demo); intake goes through review."""
    cleaned = validation.check_valid(data, today=clock.today())
    _, customer_no = _insert_customer(actor, cleaned, responsible_clerk_id=actor.staff_id)
    return _summaries(Customer.select().where(Customer.customer_no == customer_no))[0]


def _summaries(query) -> list[CustomerSummary]:
    rows = list(query.select(Customer.id, Customer.customer_no, Customer.key_id, Customer.full_name,
                             Customer.category, Customer.branch, Customer.next_verification_due,
                             Customer.retention_until, Customer.legal_hold, Staff.username.alias("clerk"))
                .join(Staff, pw.JOIN.LEFT_OUTER, on=(Customer.responsible_clerk == Staff.id)).dicts())
    keys = keystore.load_data_keys([r["key_id"] for r in rows])
    out = []
    for r in rows:
        key = keys.get(r["key_id"])
        # A customer whose key is gone (destruction interrupted before its rows went) lists without a name.
        name = mask_name(str(decrypt_fields(r["id"], r["key_id"], key, r, ("full_name",))["full_name"])) \
            if key is not None else "(key destroyed)"
        out.append(CustomerSummary(r["id"], r["customer_no"], name, r["category"], r["branch"],
                                   r["clerk"] or "", r["next_verification_due"], r["retention_until"],
                                   r["legal_hold"]))
    return out


def _row(customer_no: str) -> dict:
    row = (Customer.select(Customer, Staff.username.alias("clerk"))
           .join(Staff, pw.JOIN.LEFT_OUTER, on=(Customer.responsible_clerk == Staff.id))
           .where(Customer.customer_no == normalise.normalise_customer_number(customer_no)).dicts().first())
    if row is None:
        raise NotFound("no customer with that customer number")
    return row


def _record(row: dict, values: dict[str, object], revealed: frozenset[str]) -> CustomerRecord:
    shown = {name: (values[name] if name in revealed else mask_value(name, values[name]))
             for name in PERSONAL_FIELDS}
    shown.update({name: row[name] for name in PLAIN_FIELDS})
    return CustomerRecord(
        row["id"], row["customer_no"], row["version"], shown, revealed, row["created_at"], row["approved_at"],
        row["last_verified"], row["next_verification_due"], row["terminated_on"], row["retention_until"],
        row["legal_hold"], row["clerk"] or "",
    )


@service(Perm.CUSTOMER_VIEW)
def get_customer(actor: Actor, customer_no: str) -> CustomerRecord:
    """A customer's record, masked; the view is audited before anything is decrypted."""
    row = _row(customer_no)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="VIEW", object_type=TABLE, object_id=row["customer_no"], fields=PERSONAL_FIELDS)
    values = decrypt_fields(row["id"], row["key_id"], keystore.load_data_key(row["key_id"]), row)
    return _record(row, values, frozenset())


@service(Perm.CUSTOMER_REVEAL)
def reveal_fields(actor: Actor, customer_no: str, field_names: list[str], purpose: str) -> CustomerRecord:
    """Unmask some fields for a stated purpose; audited (with the purpose) before decryption."""
    purpose_text = purpose.strip()
    if len(purpose_text) < 4 or validation.forbidden_characters(purpose_text):
        raise ValidationError([FieldError("purpose", "state why you need to see this (at least 4 characters)",
                                          "required")])
    unknown = [n for n in field_names if n not in PERSONAL_FIELDS]
    if unknown or not field_names:
        raise ValidationError([FieldError("fields", "name one or more personal fields", "bad_choice")])
    from models.training import require_training

    require_training(actor, "reveal")  # lapsed data-protection training blocks unmasking
    row = _row(customer_no)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="REVEAL", object_type=TABLE, object_id=row["customer_no"], fields=field_names,
                 purpose=purpose_text[:200])
    values = decrypt_fields(row["id"], row["key_id"], keystore.load_data_key(row["key_id"]), row)
    return _record(row, values, frozenset(field_names))


SEARCH_KINDS = ("customer_no", "id_number", "mobile", "full_name")


@service(Perm.CUSTOMER_SEARCH)
def find_customers(actor: Actor, kind: str, term: str, limit: int = 50) -> list[CustomerSummary]:
    """Exact search by customer number (or prefix), resident ID, mobile or full name; results masked."""
    if kind not in SEARCH_KINDS:
        raise ValidationError([FieldError("kind", "must be one of " + ", ".join(SEARCH_KINDS), "bad_choice")])
    if not term.strip() or len(term) > 120 or validation.forbidden_characters(term):
        raise ValidationError([FieldError("term", "type what to search for (at most 120 characters)", "bad_format")])
    keyring, bits = office.current().keyring, office.current().settings.blind_index_bits
    if kind == "customer_no":
        norm = normalise.normalise_customer_number(term)
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="SEARCH", details={"kind": kind, "term_hmac": keyring.term_hmac(kind, norm)})
        query = Customer.select().where(Customer.customer_no.startswith(norm)).order_by(Customer.customer_no)
        return _summaries(query.limit(limit))
    if kind == "id_number":
        return _find_by_id_number(actor, term, limit)
    if kind == "mobile":
        norm, column, index_name = normalise.normalise_phone(term), Customer.mobile_bidx, "mobile"
    else:
        norm, column, index_name = normalise.normalise_name(term), Customer.name_bidx, "full_name"
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="SEARCH", details={"kind": kind, "term_hmac": keyring.term_hmac(kind, norm)})
    normaliser = {"mobile": normalise.normalise_phone, "full_name": normalise.normalise_name}[kind]
    bucket = _blind(keyring.blind_index_root, index_name, norm, bits)
    matches = _matching(Customer.select(Customer.id, Customer.key_id, getattr(Customer, kind))
                        .where(column == bucket).order_by(Customer.customer_no),
                        lambda values: normaliser(str(values[kind])) == norm, (kind,), limit)
    if not matches:
        return []
    return _summaries(Customer.select().where(Customer.id.in_(matches)).order_by(Customer.customer_no))


def _matching(query, matches_term, names: tuple[str, ...], limit: int, chunk: int = 128) -> list[str]:
    """Ids of the candidates (in the query's order) whose decrypted values match, up to `limit`.

    Candidates are decrypted a chunk at a time, so a common name stops at the first `limit` hits
    instead of decrypting the whole bucket.
    """
    found: list[str] = []
    rows = query.tuples().iterator()
    while len(found) < limit:
        batch = [dict(zip(("id", "key_id", *names), r)) for r in itertools.islice(rows, chunk)]
        if not batch:
            break
        keys = _unwrap_keys([c["key_id"] for c in batch])
        for c in batch:
            key = keys.get(c["key_id"])
            if key is not None and matches_term(decrypt_fields(c["id"], c["key_id"], key, c, names)):
                found.append(c["id"])
                if len(found) >= limit:
                    break
    return found


def _unwrap_keys(key_ids: list[str]) -> dict[str, bytes]:
    """keystore.load_data_keys without a model object and a fresh cipher per key (search decrypts hundreds)."""
    from models.db import keys_db

    if not key_ids:
        return {}
    wrapper = _wrapper(office.current().keyring.wrapping)
    cursor = keys_db.execute_sql('SELECT key_id, wrapped FROM data_key WHERE key_id IN ({})'.format(
        ", ".join("?" * len(key_ids))), key_ids)
    out = {}
    for key_id, wrapped in cursor.fetchall():
        blob = bytes(wrapped)
        if blob[:1] != crypto.FORMAT_V1 or len(blob) < 1 + crypto.NONCE_BYTES + 16:
            raise IntegrityFailure("a wrapped data key has an unknown format or is truncated")
        try:
            out[key_id] = wrapper.decrypt(blob[1:1 + crypto.NONCE_BYTES], blob[1 + crypto.NONCE_BYTES:],
                                          keystore._aad(key_id))
        except InvalidTag:
            raise IntegrityFailure("a wrapped data key failed its integrity check") from None
    return out


def _find_by_id_number(actor: Actor, term: str, limit: int) -> list[CustomerSummary]:
    """ID search across every document type's index; candidates are checked against their own type."""
    keyring, bits = office.current().keyring, office.current().settings.blind_index_bits
    probes = {id_type: _norm_id({"id_type": id_type, "id_number": term}) for id_type in ID_TYPES}
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="SEARCH",
                 details={"kind": "id_number", "term_hmac": keyring.term_hmac("id_number", probes["resident_id"])})
    buckets = sorted({keyring.blind_index(_id_index_name({"id_type": t}), n, bits) for t, n in probes.items()})
    # The fingerprints narrow each bucket to the exact document (rows without one are still checked).
    prints = sorted({_fingerprint(keyring.blind_index_root, {"id_type": t, "id_number": term}, n)
                     for t, n in probes.items() if n})
    query = (Customer.select(Customer.id, Customer.key_id, Customer.id_type, Customer.id_number)
             .where(Customer.id_bidx.in_(buckets) & (Customer.id_fp.in_(prints) | Customer.id_fp.is_null()))
             .order_by(Customer.customer_no))
    matches = _matching(query, lambda v: v["id_type"] in probes and _norm_id(v) == probes[str(v["id_type"])],
                        ("id_type", "id_number"), limit)
    if not matches:
        return []
    return _summaries(Customer.select().where(Customer.id.in_(matches)).order_by(Customer.customer_no))


def count_customers() -> int:
    return Customer.select().count()


def all_tables() -> list[type[BaseModel]]:
    return [Customer, CustomerNumberSequence]


