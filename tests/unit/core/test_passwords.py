"""SMTP AUTH password hashes: salted, slow, Django's formats, never plain text."""

from __future__ import annotations

import base64
import hashlib

import pytest

from daemon.core.passwords import (
    PasswordFormatError,
    check_format,
    hash_password,
    parse_users,
    verify_password,
    verify_user,
)


@pytest.mark.parametrize("scheme", ["scrypt", "pbkdf2_sha256"])
def test_a_hash_verifies_its_password_only(scheme: str) -> None:
    encoded = hash_password("zażółć gęślą", scheme=scheme)
    assert encoded.startswith(f"{scheme}$")
    assert "zażółć" not in encoded
    assert verify_password("zażółć gęślą", encoded)
    assert not verify_password("zażółć gęśla", encoded)
    assert hash_password("same", scheme=scheme) != hash_password("same", scheme=scheme)  # salted


def test_hashes_made_elsewhere_in_djangos_format_verify() -> None:
    key = hashlib.pbkdf2_hmac("sha256", b"letmein", b"seasalt1", 20_000)
    encoded = f"pbkdf2_sha256$20000$seasalt1${base64.b64encode(key).decode()}"
    assert verify_password("letmein", encoded)
    key = hashlib.scrypt(b"letmein", salt=b"seasalt1", n=1024, r=8, p=1, dklen=64)
    assert verify_password("letmein", f"scrypt$1024$seasalt1$8$1${base64.b64encode(key).decode()}")


@pytest.mark.parametrize(
    "encoded",
    [
        "letmein",  # plain text is never compared
        "md5$abc$def",
        "pbkdf2_sha256$1$seasalt1$AAAA",  # too few iterations
        "pbkdf2_sha256$20000$seasalt1$not-base64!",
        "scrypt$1000$seasalt1$8$1$" + "A" * 88,  # N not a power of two
        "scrypt$2147483648$seasalt1$8$1$" + "A" * 88,  # a work factor nobody can afford
        "scrypt$1024$x$8$1$" + "A" * 88,  # salt too short
    ],
)
def test_anything_else_is_refused(encoded: str) -> None:
    with pytest.raises(PasswordFormatError):
        check_format(encoded)
    assert not verify_password("letmein", encoded)


def test_the_users_file_names_each_bad_line() -> None:
    good = hash_password("pw", scheme="pbkdf2_sha256")
    users, problems = parse_users(
        f"# comment\n\nsd:{good}\nsd:{good}\nno-hash\nbad user:{good}\nx:plain\n"
    )
    assert users == {"sd": good}
    assert [line for line, _ in problems] == [4, 5, 6, 7]
    assert verify_user(users, "sd", "pw")
    assert not verify_user(users, "sd", "wrong")
    assert not verify_user(users, "nobody", "pw")
