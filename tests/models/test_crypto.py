"""AES-256-GCM with bound associated data, HKDF sub-keys, blind indexes, and the master key file."""

from __future__ import annotations

import os
import stat
from dataclasses import fields as dc_fields

import pytest

from models import crypto, office as office_mod
from models.errors import IntegrityFailure, KeyFileError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MASTER = b"\x42" * 32


def aad(table="customer", record="rec-1", field="full_name", key_id="key-1") -> bytes:
    return crypto.field_aad(table, record, field, key_id)


# --- AES-GCM ---------------------------------------------------------------------------


def test_round_trip():
    for plaintext in (b"", b"x", "张三".encode(), os.urandom(5000)):
        blob = crypto.encrypt(KEY, plaintext, aad())
        assert blob[:1] == crypto.FORMAT_V1
        assert crypto.decrypt(KEY, blob, aad()) == plaintext


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param({"field": "street"}, id="another-field"),
        pytest.param({"record": "rec-2"}, id="another-record"),
        pytest.param({"table": "intake_draft"}, id="another-table"),
        pytest.param({"key_id": "key-2"}, id="another-key-id"),
    ],
)
def test_ciphertext_moved_elsewhere_fails(moved):
    blob = crypto.encrypt(KEY, "张三".encode(), aad())
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(KEY, blob, aad(**moved))


def test_aad_parts_cannot_be_shifted_between_each_other():
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    assert crypto.field_aad("t", "ab", "c", "k") != crypto.field_aad("t", "a", "bc", "k")
    blob = crypto.encrypt(KEY, b"v", crypto.field_aad("t", "ab", "c", "k"))
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(KEY, blob, crypto.field_aad("t", "a", "bc", "k"))


def test_wrong_key_fails():
    blob = crypto.encrypt(KEY, b"secret", aad())
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(OTHER_KEY, blob, aad())


def test_every_flipped_bit_fails():
    blob = crypto.encrypt(KEY, b"a personal value", aad())
    for position in range(len(blob)):
        for bit in (0, 7):
            tampered = bytearray(blob)
            tampered[position] ^= 1 << bit
            with pytest.raises(IntegrityFailure):
                crypto.decrypt(KEY, bytes(tampered), aad())


@pytest.mark.parametrize("cut", [0, 1, 5, 13, 28, 29, -1])
def test_truncated_blob_fails(cut):
    blob = crypto.encrypt(KEY, b"a personal value", aad())
    short = blob[:cut]
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(KEY, short, aad())


def test_unknown_format_byte_fails():
    blob = crypto.encrypt(KEY, b"value", aad())
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(KEY, b"\x02" + blob[1:], aad())
    with pytest.raises(IntegrityFailure):
        crypto.decrypt(KEY, blob + b"\x00", aad())


def test_nonces_are_unique_over_ten_thousand_encryptions():
    nonces = {crypto.encrypt(KEY, b"same", aad())[1 : 1 + crypto.NONCE_BYTES] for _ in range(10_000)}
    assert len(nonces) == 10_000


def test_same_plaintext_never_gives_the_same_ciphertext():
    assert crypto.encrypt(KEY, b"same", aad()) != crypto.encrypt(KEY, b"same", aad())


def test_ciphertext_does_not_contain_the_plaintext():
    plaintext = "测试哨兵甲 110105198001010012".encode()
    assert plaintext not in crypto.encrypt(KEY, plaintext, aad())


def test_data_keys_are_random_256_bit():
    keys = {crypto.new_data_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 32 for k in keys)


# --- HKDF and the key ring -------------------------------------------------------------


def test_hkdf_sub_keys_are_distinct_per_purpose_and_deterministic():
    ring = crypto.KeyRing.from_master(MASTER)
    sub_keys = [getattr(ring, f.name) for f in dc_fields(ring)]
    assert all(len(k) == 32 for k in sub_keys)
    assert MASTER not in sub_keys
    assert len(set(sub_keys)) == len(sub_keys)
    assert crypto.KeyRing.from_master(MASTER) == ring
    assert crypto.derive(MASTER, "wrap") != crypto.derive(MASTER, "wrap2")
    other = crypto.KeyRing.from_master(b"\x43" * 32)
    assert all(getattr(other, f.name) != getattr(ring, f.name) for f in dc_fields(ring))


def test_blind_index_is_deterministic_and_in_range():
    ring = crypto.KeyRing.from_master(MASTER)
    for bits in (8, 12, 16, 24):
        values = [ring.blind_index("mobile", f"139{n:08d}", bits) for n in range(300)]
        assert values == [ring.blind_index("mobile", f"139{n:08d}", bits) for n in range(300)]
        assert all(isinstance(v, int) and 0 <= v < 2**bits for v in values)
        # A real spread, not a constant.
        assert len(set(values)) > min(2**bits, 300) // 2


def test_blind_index_differs_across_index_names_and_master_keys():
    ring = crypto.KeyRing.from_master(MASTER)
    values = ["110105198001010012", "13912345678", "张三", "C2026000001", "x"]
    for value in values:
        per_name = {name: ring.blind_index(name, value, 24) for name in ("id_number", "mobile", "full_name")}
        assert len(set(per_name.values())) == 3, per_name
    other = crypto.KeyRing.from_master(b"\x43" * 32)
    assert [ring.blind_index("mobile", v, 24) for v in values] != [other.blind_index("mobile", v, 24) for v in values]


def test_term_hmac_is_keyed_and_hides_the_term():
    ring = crypto.KeyRing.from_master(MASTER)
    fingerprint = ring.term_hmac("mobile", "13912345678")
    assert "13912345678" not in fingerprint
    assert fingerprint == ring.term_hmac("mobile", "13912345678")
    assert fingerprint != ring.term_hmac("full_name", "13912345678")
    assert fingerprint != crypto.KeyRing.from_master(b"\x43" * 32).term_hmac("mobile", "13912345678")


# --- the master key file ---------------------------------------------------------------


@pytest.fixture
def key_path(tmp_path):
    path = tmp_path / "home" / "keys" / "master.key"
    crypto.create_master_key(path)
    return path


def test_master_key_is_created_0600_in_a_0700_directory(key_path):
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert key_path.stat().st_size == crypto.MASTER_KEY_BYTES
    crypto.check_key_path(key_path)
    assert len(crypto.load_master_key(key_path)) == crypto.MASTER_KEY_BYTES


def test_master_key_is_created_private_even_under_a_loose_umask(tmp_path):
    old = os.umask(0o000)
    try:
        path = tmp_path / "loose" / "keys" / "master.key"
        crypto.create_master_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_master_keys_are_random_and_never_overwritten(tmp_path, key_path):
    other = tmp_path / "other" / "master.key"
    crypto.create_master_key(other)
    assert key_path.read_bytes() != other.read_bytes()
    before = key_path.read_bytes()
    with pytest.raises(FileExistsError):
        crypto.create_master_key(key_path)
    assert key_path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o660])
def test_check_refuses_a_file_readable_by_others(key_path, mode):
    os.chmod(key_path, mode)
    with pytest.raises(KeyFileError) as caught:
        crypto.check_key_path(key_path)
    message = str(caught.value)
    assert str(key_path) in message and "chmod 600" in message
    with pytest.raises(KeyFileError):
        crypto.load_master_key(key_path)


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o755, 0o777])
def test_check_refuses_a_directory_open_to_others(key_path, mode):
    os.chmod(key_path.parent, mode)
    try:
        with pytest.raises(KeyFileError) as caught:
            crypto.check_key_path(key_path)
    finally:
        os.chmod(key_path.parent, 0o700)
    message = str(caught.value)
    assert str(key_path.parent) in message and "chmod 700" in message


def test_check_refuses_a_symlinked_file(tmp_path, key_path):
    real = tmp_path / "elsewhere" / "master.key"
    crypto.create_master_key(real)
    link = key_path.parent / "linked.key"
    link.symlink_to(real)
    with pytest.raises(KeyFileError) as caught:
        crypto.check_key_path(link)
    assert "symbolic link" in str(caught.value) and str(link) in str(caught.value)
    with pytest.raises(KeyFileError):
        crypto.load_master_key(link)


def test_check_refuses_a_symlinked_directory(tmp_path, key_path):
    link_dir = tmp_path / "linked-keys"
    link_dir.symlink_to(key_path.parent)
    with pytest.raises(KeyFileError):
        crypto.check_key_path(link_dir / "master.key")


def test_check_refuses_a_missing_file_and_a_missing_directory(tmp_path, key_path):
    missing = key_path.parent / "absent.key"
    with pytest.raises(KeyFileError) as caught:
        crypto.check_key_path(missing)
    assert str(missing) in str(caught.value) and "missing" in str(caught.value)
    with pytest.raises(KeyFileError) as caught:
        crypto.load_master_key(tmp_path / "no-dir" / "master.key")
    assert "missing" in str(caught.value)


def test_check_refuses_a_directory_in_place_of_the_file(key_path):
    not_a_file = key_path.parent / "dir.key"
    not_a_file.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        crypto.check_key_path(not_a_file)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_load_refuses_a_key_of_the_wrong_length(key_path, size):
    key_path.write_bytes(os.urandom(size))
    os.chmod(key_path, 0o600)
    with pytest.raises(KeyFileError) as caught:
        crypto.load_master_key(key_path)
    assert "wrong length" in str(caught.value) and str(key_path) in str(caught.value)


def test_open_office_refuses_a_world_readable_master_key(settings):
    office_mod.create_office_files(settings)
    os.chmod(settings.master_key_path, 0o644)
    try:
        with pytest.raises(KeyFileError) as caught:
            office_mod.open_office(settings, check_schema=False)
        assert "chmod 600" in str(caught.value)
        assert not settings.database_path.exists(), "no database may be opened with an unsafe key"
    finally:
        office_mod.close_office()


def test_create_office_files_never_replaces_a_master_key(settings):
    office_mod.create_office_files(settings)
    before = settings.master_key_path.read_bytes()
    with pytest.raises(KeyFileError):
        office_mod.create_office_files(settings)
    assert settings.master_key_path.read_bytes() == before
