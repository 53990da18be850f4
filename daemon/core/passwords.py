"""Password hashes for SMTP AUTH users: made, parsed and checked, never compared in clear.

The users file has one `user:hash` line each (blank lines and `#` comments
allowed). Hashes use Django's formats, so an admin can make them with this
module (`spocd passwd`) or with any tool that writes those formats:

    scrypt$N$SALT$R$P$BASE64          hashlib.scrypt, 64-byte key
    pbkdf2_sha256$ITERATIONS$SALT$BASE64   hashlib.pbkdf2_hmac, 32-byte key

Checking always derives a key, even for an unknown user, and compares with
`hmac.compare_digest`, so neither timing nor errors tell which users exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_ITERATIONS = 600_000
_SCRYPT_DKLEN, _PBKDF2_DKLEN = 64, 32
#: Upper bounds on the work factors a users file may ask for: a typo (or a
#: hostile file) must not make every login cost gigabytes or minutes.
_MAX_SCRYPT_N, _MAX_PBKDF2_ITERATIONS = 2**20, 10_000_000
USER_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,128}$")
_SALT_RE = re.compile(r"^[A-Za-z0-9./+=_\-]{8,128}$")


class PasswordFormatError(ValueError):
    """A hash this module cannot read."""


def hash_password(password: str, *, scheme: str = "scrypt") -> str:
    """A new salted hash of `password` in the named scheme."""
    salt = secrets.token_urlsafe(16)
    if scheme == "scrypt":
        key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return f"scrypt${SCRYPT_N}${salt}${SCRYPT_R}${SCRYPT_P}${_b64(key)}"
    if scheme == "pbkdf2_sha256":
        key = _pbkdf2(password, salt, PBKDF2_ITERATIONS)
        return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${_b64(key)}"
    raise PasswordFormatError(f"unknown scheme {scheme!r}: use scrypt or pbkdf2_sha256")


def check_format(encoded: str) -> None:
    """Raise PasswordFormatError unless `encoded` is a hash we can verify."""
    _decode(encoded)


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (constant-time comparison)."""
    try:
        derive, expected = _decode(encoded)
    except PasswordFormatError:
        return False
    return hmac.compare_digest(derive(password), expected)


#: A well-formed hash nobody's password matches, checked when the user is
#: unknown, so that an unknown user costs the same as a wrong password.
_DUMMY = f"scrypt${SCRYPT_N}$spocd-unknown-user${SCRYPT_R}${SCRYPT_P}$" + base64.b64encode(
    bytes(_SCRYPT_DKLEN)
).decode("ascii")


def verify_user(users: dict[str, str], user: str, password: str) -> bool:
    """Check a login against the users table; unknown users take as long."""
    encoded = users.get(user)
    if encoded is None:
        verify_password(password, _DUMMY)
        return False
    return verify_password(password, encoded)


def parse_users(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """`user:hash` lines -> ({user: hash}, [(line number, problem)])."""
    users: dict[str, str] = {}
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not encoded:
            problems.append((number, "expected user:hash"))
            continue
        if not USER_RE.match(user):
            problems.append((number, f"{user!r} is not a user name (letters, digits, ._@+-)"))
            continue
        if user in users:
            problems.append((number, f"user {user!r} is listed twice"))
            continue
        try:
            check_format(encoded)
        except PasswordFormatError as exc:
            problems.append((number, f"user {user!r}: {exc}"))
            continue
        users[user] = encoded
    return users, problems


# --- internals --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt.encode("ascii"),
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r * p + 1024 * 1024,
        dklen=_SCRYPT_DKLEN,
    )


def _pbkdf2(password: str, salt: str, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), salt.encode("ascii"), iterations, _PBKDF2_DKLEN
    )


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise PasswordFormatError(f"{what} must be a whole number {low}..{high}")
    return int(text)


def _key(text: str, length: int) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise PasswordFormatError("the key is not base64") from exc
    if len(key) != length:
        raise PasswordFormatError(f"the key must be {length} bytes")
    return key


def _decode(encoded: str):  # type: ignore[no-untyped-def]
    """(password -> derived key, expected key) for a stored hash."""
    fields = encoded.strip().split("$")
    scheme = fields[0]
    if scheme == "scrypt" and len(fields) == 6:
        _, n_text, salt, r_text, p_text, key_text = fields
        n = _number(n_text, "scrypt N", 2, _MAX_SCRYPT_N)
        if n & (n - 1):
            raise PasswordFormatError("scrypt N must be a power of two")
        r = _number(r_text, "scrypt r", 1, 32)
        p = _number(p_text, "scrypt p", 1, 16)
        _salt(salt)
        expected = _key(key_text, _SCRYPT_DKLEN)
        return (lambda pw: _scrypt(pw, salt, n, r, p)), expected
    if scheme == "pbkdf2_sha256" and len(fields) == 4:
        _, iterations_text, salt, key_text = fields
        iterations = _number(iterations_text, "iterations", 10_000, _MAX_PBKDF2_ITERATIONS)
        _salt(salt)
        expected = _key(key_text, _PBKDF2_DKLEN)
        return (lambda pw: _pbkdf2(pw, salt, iterations)), expected
    raise PasswordFormatError(
        "not a known hash: expected scrypt$N$SALT$R$P$KEY or pbkdf2_sha256$ITERATIONS$SALT$KEY "
        "(make one with `spocd passwd USER`)"
    )


def _salt(salt: str) -> None:
    if not _SALT_RE.match(salt):
        raise PasswordFormatError("the salt must be 8-128 characters of [A-Za-z0-9./+=_-]")
