"""Passphrases for private key files: from the environment or a hidden prompt, never argv."""

from __future__ import annotations

import getpass
import os
import sys

from ppml.errors import PassphraseError

PASSPHRASE_ENV = "PPML_KEY_PASSPHRASE"  # noqa: S105 (the name of a variable, not a secret)


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def new_passphrase() -> str:
    """A passphrase to protect a new private key: $PPML_KEY_PASSPHRASE, or asked twice."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env
    if not _interactive():
        raise PassphraseError(None, f"set {PASSPHRASE_ENV} or run in a terminal to be asked")
    first = getpass.getpass("Passphrase for the new private key: ")
    if first != getpass.getpass("Repeat the passphrase: "):
        raise PassphraseError(None, "the two passphrases differ")
    return first


def existing_passphrase() -> str:
    """The passphrase of a protected private key: $PPML_KEY_PASSPHRASE, or asked once."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env
    if not _interactive():
        raise PassphraseError(
            None,
            f"the private key is protected: set {PASSPHRASE_ENV} or run in a terminal to be asked",
        )
    return getpass.getpass("Passphrase of the private key: ")
