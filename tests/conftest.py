"""Shared fixtures: small keys for speed (made with the explicit test-only switch)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from ppml.crypto import PrivateKey, PublicKey, generate_keypair

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=1000)
# `make test` and CI: the same examples on every run, and nothing written to .hypothesis/.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def keypair() -> tuple[PublicKey, PrivateKey]:
    """A 512-bit key pair: far too small for real use, quick for tests."""
    return generate_keypair(512, insecure_test_key=True)


@pytest.fixture(scope="session")
def public_key(keypair: tuple[PublicKey, PrivateKey]) -> PublicKey:
    return keypair[0]


@pytest.fixture(scope="session")
def private_key(keypair: tuple[PublicKey, PrivateKey]) -> PrivateKey:
    return keypair[1]


@pytest.fixture(scope="session")
def other_keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(512, insecure_test_key=True)


@pytest.fixture(scope="session")
def real_keypair() -> tuple[PublicKey, PrivateKey]:
    """A 2048-bit key pair, the smallest size accepted outside tests."""
    return generate_keypair(2048)
