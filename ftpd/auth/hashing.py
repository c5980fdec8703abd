"""Password hashes for the users file: scrypt (stdlib) and, when installed, argon2id.

The scrypt format is the modular-crypt string passlib also uses (so its hashes work here)::

    $scrypt$ln=14,r=8,p=1$<salt, base64 without padding>$<32-byte hash, base64 without padding>

where ``N = 2**ln``. ``ln=14, r=8`` costs about 50 ms and 16 MiB per hash on the reference
machine (measured: ln=13 ~28 ms, ln=14 ~53 ms, ln=15 ~127 ms), inside the 30-80 ms budget for a
login. Argon2 strings (``$argon2id$...``) are verified with argon2-cffi when it is importable.

Both functions block for tens of milliseconds: the server calls them through an executor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

SCRYPT_LN = 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

# Sanity bounds for hashes read from a file: a typo must not make one login take a minute or
# allocate gigabytes (the largest accepted setting needs 1 GiB).
_MAX_LN, _MAX_R, _MAX_P = 20, 32, 16
_MAX_MEM = 1 << 30

_SCRYPT_RE = re.compile(
    r"\$scrypt\$ln=([0-9]{1,2}),r=([0-9]{1,3}),p=([0-9]{1,3})\$([A-Za-z0-9+/.]+={0,2})\$([A-Za-z0-9+/.]+={0,2})"
)
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
ARGON2_MISSING = "argon2 hashes need the argon2-cffi package (pip install 'ftpd[argon2]')"


@dataclass(frozen=True, slots=True)
class _Scrypt:
    ln: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @property
    def maxmem(self) -> int:
        # OpenSSL needs 128*r*N for V plus 128*r*p for B (and a little more); give it headroom.
        return 128 * self.r * ((1 << self.ln) + self.p + 2) + (1 << 20)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    # passlib's "adapted base64" writes "." for "+"; accept both, with or without padding.
    text = text.replace(".", "+").rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _parse_scrypt(encoded: str) -> _Scrypt:
    """Parse and sanity-check a ``$scrypt$`` string; ValueError says what is wrong."""
    match = _SCRYPT_RE.fullmatch(encoded)
    if not match:
        raise ValueError("not a $scrypt$ln=N,r=R,p=P$SALT$HASH string")
    ln, r, p = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not (1 <= ln <= _MAX_LN and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError(
            f"scrypt parameters out of range (ln 1-{_MAX_LN}, r 1-{_MAX_R}, p 1-{_MAX_P})"
        )
    try:
        salt, digest = _b64decode(match.group(4)), _b64decode(match.group(5))
    except (binascii.Error, ValueError):
        raise ValueError("salt or hash is not valid base64") from None
    if len(digest) < 16 or len(digest) > 64:
        raise ValueError("scrypt hash must be 16-64 bytes")
    parsed = _Scrypt(ln, r, p, salt, digest)
    if parsed.maxmem > _MAX_MEM:
        raise ValueError("scrypt parameters need more than 1 GiB of memory")
    return parsed


def _scrypt(password: bytes, s: _Scrypt, dklen: int) -> bytes:
    return hashlib.scrypt(
        password, salt=s.salt, n=1 << s.ln, r=s.r, p=s.p, maxmem=s.maxmem, dklen=dklen
    )


def password_bytes(password: str) -> bytes:
    """UTF-8 bytes of a password; lone surrogates (undecodable wire bytes) round-trip."""
    try:
        return password.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return password.encode("utf-8", "surrogatepass")


def hash_password(password: str, *, ln: int = SCRYPT_LN) -> str:
    """Hash ``password`` with scrypt and a fresh random salt; returns the self-describing string."""
    params = _Scrypt(ln, SCRYPT_R, SCRYPT_P, os.urandom(SALT_BYTES), b"")
    digest = _scrypt(password_bytes(password), params, HASH_BYTES)
    return (
        f"$scrypt$ln={ln},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(params.salt)}${_b64encode(digest)}"
    )


def _argon2() -> object | None:
    try:
        import argon2
    except ImportError:
        return None
    return argon2


def check_hash(encoded: str) -> None:
    """Raise ValueError (one line) if ``encoded`` is not a hash this module can verify.

    Used when the users file is loaded, so that a bad hash stops start-up rather than making
    every login of that user fail silently.
    """
    if encoded.startswith("$scrypt$"):
        _parse_scrypt(encoded)
    elif encoded.startswith(_ARGON2_PREFIXES):
        argon2 = _argon2()
        if argon2 is None:
            raise ValueError(ARGON2_MISSING)
        try:
            argon2.extract_parameters(encoded)  # type: ignore[attr-defined]
        except Exception as exc:  # argon2-cffi raises InvalidHashError (a ValueError) and kin
            raise ValueError(f"not a valid argon2 hash ({exc})") from None
    else:
        raise ValueError("unknown hash format (expected $scrypt$... or $argon2id$...)")


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``; False for a mismatch or an unusable hash."""
    if encoded.startswith("$scrypt$"):
        try:
            params = _parse_scrypt(encoded)
        except ValueError:
            return False
        candidate = _scrypt(password_bytes(password), params, len(params.digest))
        return hmac.compare_digest(candidate, params.digest)
    if encoded.startswith(_ARGON2_PREFIXES):
        argon2 = _argon2()
        if argon2 is None:
            return False
        try:
            # PasswordHasher.verify compares in constant time inside libargon2.
            return bool(argon2.PasswordHasher().verify(encoded, password))  # type: ignore[attr-defined]
        except Exception:  # VerifyMismatchError, VerificationError, InvalidHashError
            return False
    return False
