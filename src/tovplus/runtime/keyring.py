"""The keyring: AES-256-GCM keys by id, the key file, and sealing/opening one value.

Encrypts with the first (newest) key; decrypts with whichever key a ciphertext names. What a
ciphertext is bound to (its associated data) is the credentials service's business.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tovplus.db.private_files import make_private_dir
from tovplus.db.types import utcnow
from tovplus.errors import ConfigurationError, TovPlusError

KEY_FILE_NAME = "secret.keys"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
log = logging.getLogger(__name__)


class DecryptionFailed(TovPlusError):
    """A ciphertext did not authenticate: wrong key, tampered bytes or swapped rows."""

    code = "decryption_failed"


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def generate_key() -> str:
    """A new ``key_id:base64url-key`` entry for ``TOVPLUS_SECRET_KEYS`` or the key file."""
    key_id = "k" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class Keyring:
    """Encrypts with the first (newest) key; decrypts with whichever key a ciphertext names."""

    def __init__(self, entries: list[tuple[str, bytes]]) -> None:
        if not entries:
            raise ConfigurationError("the keyring has no keys")
        ids = [key_id for key_id, _ in entries]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("the keyring names a key id twice")
        self._keys = {key_id: AESGCM(key) for key_id, key in entries}
        self.primary_id = entries[0][0]

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``id:base64url,id:base64url`` (newest first; newlines and ``#`` comments allowed)."""
        entries: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in spec.replace("\n", ",").split(",")):
            if not part or part.startswith("#"):
                continue
            key_id, sep, encoded = part.partition(":")
            if not sep or not key_id:
                raise ConfigurationError("secret keys must look like key_id:base64url-key")
            if not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"a secret key id must be 1 to 64 letters, digits, '.', '_' or '-' (got {key_id[:70]!r})"
                )
            try:
                key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"secret key {key_id!r} is not valid base64") from None
            if len(key) != 32:
                raise ConfigurationError(f"secret key {key_id!r} must be 32 bytes (AES-256)")
            entries.append((key_id, key))
        return cls(entries)

    @classmethod
    def load(cls, spec: str | None, data_dir: Path) -> Keyring:
        """From ``spec`` when given, else from the data dir's key file (created 0600 on first use)."""
        if spec:
            return cls.parse(spec)
        path = data_dir / KEY_FILE_NAME
        if not path.exists():
            make_private_dir(data_dir)
            _create_key_file(path, generate_key() + "\n")
        _warn_if_open_to_others(path)
        return cls.parse(path.read_text())

    def seal(self, plaintext: str, aad: str) -> Sealed:
        nonce = os.urandom(12)
        ciphertext = self._keys[self.primary_id].encrypt(nonce, plaintext.encode(), aad.encode())
        return Sealed(self.primary_id, nonce, ciphertext)

    def open(self, sealed: Sealed, aad: str) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise DecryptionFailed(f"no key {sealed.key_id!r} in the keyring")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, aad.encode()).decode()
        except InvalidTag:
            raise DecryptionFailed("a stored secret failed to authenticate") from None


def _warn_if_open_to_others(path: Path) -> None:
    """Log a warning, with the command that fixes it, when others may read or change the key file."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        quoted = shlex.quote(str(path.absolute()))
        log.warning(
            "the key file %s has mode %04o: other users of this machine may read or change it; "
            "fix it with: chmod 600 %s",
            path.absolute(),
            mode,
            quoted,
        )


def _write_private(path: Path, text: str) -> None:
    """Write a new 0600 file and flush it to disk (a key lost to a crash loses every secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_key_file(path: Path, text: str) -> None:
    """Create the key file atomically: complete or absent, and never replaced if it appeared meanwhile.

    Two processes starting at once both write a temporary file; only the first link wins,
    and both then read the winner's key.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_private(tmp, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    _sync_dir(path.parent)


def add_key_to_file(data_dir: Path) -> str:
    """Prepend a new key to the data dir's key file; returns the new key id."""
    path = data_dir / KEY_FILE_NAME
    make_private_dir(data_dir)
    old = path.read_text() if path.exists() else ""
    entry = generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_private(tmp, entry + "\n" + old)
    tmp.replace(path)
    _sync_dir(data_dir)
    return entry.split(":", 1)[0]
