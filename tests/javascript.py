"""Running the browser client's JavaScript under node, for the tests that compare it with ppml."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def node_json(arguments: list[str], *, stdin: str | None = None, timeout: float = 300) -> Any:
    """The JSON text node prints when run with ``arguments`` from the repository root.

    A missing node or a failing script fails the test (``make jstest`` installs node)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; `make jstest` installs it")
    completed = subprocess.run(
        [node, *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)
