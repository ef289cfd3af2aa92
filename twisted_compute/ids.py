"""Identifiers and random strings, cheap to make on the reactor thread.

``uuid.uuid4()`` and ``secrets.choice`` each make a ``getrandom``
system call, during which CPython releases the GIL; with a busy database
thread the reactor then waits to get it back (up to the switch interval)
several times per request.  Identifiers that need to be unique, not
secret (request ids, message ids, instance uuids), come from a PRNG
seeded by the kernel; secrets (passwords) still come from the kernel, in
one call per string.
"""

from __future__ import annotations

import os
import random
import uuid

_rng = random.Random(os.urandom(32))


def reseed() -> None:
    """A fresh seed (after a fork, or in tests)."""
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reseed)


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, unique but not unpredictable."""
    return uuid.UUID(int=_rng.getrandbits(128), version=4)


def uuid4_str() -> str:
    return str(uuid4())


def hex_id(length: int = 32) -> str:
    """``length`` random hex digits (unique, not secret)."""
    return f"{_rng.getrandbits(length * 4):0{length}x}"


def unique_string(alphabet: str, length: int) -> str:
    """``length`` characters of ``alphabet`` (unique, not secret)."""
    return "".join(_rng.choices(alphabet, k=length))


def secret_string(alphabet: str, length: int) -> str:
    """``length`` characters of ``alphabet`` (at most 256 of them) drawn
    uniformly from the kernel's randomness, in one call per 64 bytes."""
    if not 0 < len(alphabet) <= 256:
        raise ValueError("alphabet must have 1 to 256 characters")
    limit = 256 - 256 % len(alphabet)  # rejection keeps it uniform
    out: list[str] = []
    while len(out) < length:
        for byte in os.urandom(64):
            if byte < limit:
                out.append(alphabet[byte % len(alphabet)])
                if len(out) == length:
                    break
    return "".join(out)
