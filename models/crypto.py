"""Master key, HKDF sub-keys, AES-256-GCM field encryption with bound AAD, blind indexes.

Every ciphertext carries its format byte and nonce; its associated data names the table,
record, field and data-key id, so a ciphertext moved anywhere else fails to decrypt.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models.errors import IntegrityFailure, KeyFileError

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
MASTER_KEY_BYTES = 32
AAD_DOMAIN = b"recordkeeper.v1"


def _lp(part: bytes) -> bytes:
    """Length-prefix one AAD part so that concatenations are unambiguous."""
    return len(part).to_bytes(4, "big") + part


def field_aad(table: str, record_id: str, field: str, key_id: str) -> bytes:
    return AAD_DOMAIN + b"".join(_lp(p.encode()) for p in (table, record_id, field, key_id))


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if not blob or blob[:1] != FORMAT_V1 or len(blob) < 1 + NONCE_BYTES + 16:
        raise IntegrityFailure("ciphertext has an unknown format or is truncated")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise IntegrityFailure(
            "ciphertext failed its integrity check (altered, or moved from another field or record)"
        ) from None


def derive(master_key: bytes, purpose: str, length: int = 32) -> bytes:
    """An HKDF-SHA256 sub-key of the master key for one named purpose."""
    return HKDF(hashes.SHA256(), length, salt=None, info=f"recordkeeper|v1|{purpose}".encode()).derive(
        master_key
    )


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@functools.lru_cache(maxsize=64)
def _hmac_pads(key: bytes) -> tuple:
    """SHA-256 states after HMAC's inner and outer key blocks (RFC 2104), to copy for each message."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block))


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """hmac.digest(key, message, "sha256"), four times faster for a reused key: OpenSSL's one-shot HMAC
    looks the algorithm up on every call, which costs more than the hashing of a short message."""
    inner, outer = _hmac_pads(key)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.digest()


@dataclass(frozen=True)
class KeyRing:
    """The sub-keys derived from the master key at start-up."""

    wrapping: bytes
    blind_index_root: bytes
    audit: bytes
    checkpoint: bytes
    drafts: bytes

    @classmethod
    def from_master(cls, master_key: bytes) -> "KeyRing":
        return cls(
            wrapping=derive(master_key, "wrap"),
            blind_index_root=derive(master_key, "bidx-root"),
            audit=derive(master_key, "audit"),
            checkpoint=derive(master_key, "checkpoint"),
            drafts=derive(master_key, "drafts"),
        )

    def blind_index(self, index_name: str, normalised: str, bits: int) -> int:
        """Truncated keyed HMAC of a normalised value (CipherSweet style): equal values collide on purpose."""
        field_key = HKDF(
            hashes.SHA256(), 32, salt=None, info=f"bidx|v1|customer|{index_name}".encode()
        ).derive(self.blind_index_root)
        digest = hmac.new(field_key, normalised.encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") >> (32 - bits)

    def term_hmac(self, kind: str, normalised: str) -> str:
        """A keyed fingerprint of a search term for the audit log (never the term itself)."""
        return hmac.new(self.audit, f"{kind}|{normalised}".encode(), hashlib.sha256).hexdigest()[:32]


# --- the master key file -------------------------------------------------------------


def _fix_hint(path: Path, mode: int) -> str:
    return f"fix with: chmod {mode:o} {path}"


def check_key_path(path: Path, *, want_file_mode: int = 0o600, want_dir_mode: int = 0o700) -> None:
    """Refuse a missing, symlinked, or group/world-accessible key file or directory (like sshkey_perm_ok)."""
    directory = path.parent
    if directory.is_symlink():
        raise KeyFileError(f"key directory {directory} is a symbolic link; use a real directory")
    if not directory.exists():
        raise KeyFileError(f"key directory {directory} is missing; run `recordkeeper init` first")
    dmode = stat.S_IMODE(directory.stat().st_mode)
    if dmode & 0o077:
        raise KeyFileError(
            f"key directory {directory} is accessible by others (mode {dmode:o}); "
            + _fix_hint(directory, want_dir_mode)
        )
    if path.is_symlink():
        raise KeyFileError(f"key file {path} is a symbolic link; keep the real file there")
    if not path.exists():
        raise KeyFileError(f"key file {path} is missing; restore it from your key backup or run `recordkeeper init`")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    fmode = stat.S_IMODE(st.st_mode)
    if fmode & 0o077:
        raise KeyFileError(
            f"key file {path} is readable by others (mode {fmode:o}); " + _fix_hint(path, want_file_mode)
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyFileError(f"key file {path} belongs to another user; it must belong to the service account")


def create_master_key(path: Path) -> None:
    """Write a new random master key (0600 in a 0700 directory); never overwrite one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, os.urandom(MASTER_KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_master_key(path: Path) -> bytes:
    check_key_path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = os.read(fd, MASTER_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != MASTER_KEY_BYTES:
        raise KeyFileError(f"key file {path} has the wrong length; it is damaged or not a RecordKeeper key")
    return data
