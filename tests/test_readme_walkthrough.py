"""The README's walkthroughs, run command by command, so they cannot go stale.

The commands are the lines starting with ``$ `` in a section's console blocks (a line
ending in a backslash continues on the next). They run in order, with bash, in a fresh
folder holding the public sample the walkthrough trains on, with this environment's ``ppml``
first on the PATH; each must succeed, and the predictions file must have the columns the
spec's output names and one prediction per row the customer encrypted.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from ppml.features.spec import FeatureSpec

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PUBLIC = ROOT / "tests" / "data" / "public"
SECTIONS = ("Bring your own CSV", "Classification: iris species and their probabilities")


def section_commands(text: str, title: str) -> list[str]:
    """The ``$`` commands of the console blocks under the heading ``title``, in order."""
    lines = text.splitlines()
    headings = [i for i, line in enumerate(lines) if re.fullmatch(rf"#+ {re.escape(title)}", line)]
    assert len(headings) == 1, f"README.md needs exactly one section {title!r}"
    start = headings[0]
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    commands: list[str] = []
    fence: str | None = None  # the language of the open code block, if any
    continued = False
    for line in lines[start + 1 :]:
        if fence is None:
            heading = re.match(r"(#+) ", line)
            if heading and len(heading[1]) <= level:
                break
            if line.startswith("```"):
                fence = line[3:].strip()
            continue
        if line.startswith("```"):
            assert not continued, "a console block ends in the middle of a command"
            fence = None
            continue
        if fence != "console":
            continue
        if continued:
            commands[-1] += " " + line.strip()
        elif line.startswith("$ "):
            commands.append(line[2:].strip())
        else:
            continue  # output or a comment
        continued = commands[-1].endswith("\\")
        if continued:
            commands[-1] = commands[-1][:-1].rstrip()
    assert fence is None, "the section ends inside a code block"
    return commands


def option(command: str, name: str) -> str:
    """The value of ``name`` in a command line."""
    words = shlex.split(command)
    return words[words.index(name) + 1]


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a small CSV file in whatever delimiter it uses."""
    lines = path.read_text(encoding="utf-8").splitlines()
    delimiter = max(",;\t|", key=lines[0].count)
    rows = [row for row in csv.reader(lines, delimiter=delimiter) if row]
    return rows[0], rows[1:]


@pytest.mark.parametrize("section", SECTIONS)
def test_the_walkthrough_runs_as_written(section: str, tmp_path: Path) -> None:
    commands = section_commands(README.read_text(encoding="utf-8"), section)
    programs = [shlex.split(command)[:2] for command in commands if command.startswith("ppml ")]
    for step in ("train", "keygen", "encrypt", "predict", "decrypt"):
        assert ["ppml", step] in programs, f"the walkthrough has no 'ppml {step}'"

    # The folder the reader works in: the public sample the first training reads.
    train = next(c for c in commands if c.startswith("ppml train "))
    data = option(train, "--data")
    shutil.copy(PUBLIC / data, tmp_path / data)
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "ppml").exists(), f"no ppml next to {sys.executable}"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PPML_KEY_PASSPHRASE", None)

    for command in commands:
        completed = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert completed.returncode == 0, (
            f"$ {command}\nexit code {completed.returncode}\n{completed.stdout}{completed.stderr}"
        )

    decrypt = [c for c in commands if c.startswith("ppml decrypt ")][-1]
    predictions = tmp_path / option(decrypt, "--out")
    assert predictions.is_file(), f"{predictions.name} was not written"
    header, rows = read_table(predictions)
    _, encrypted_rows = read_table(tmp_path / option(decrypt, "--data"))
    words = shlex.split(decrypt)
    ids = [value for name, value in pairwise(words) if name == "--id-column"]
    output = FeatureSpec.load(tmp_path / option(decrypt, "--features")).output
    assert header == [*ids, *output.columns]
    assert len(rows) == len(encrypted_rows) > 0
    for row in rows:
        cells = row[len(ids) :]
        if output.task == "classification":
            label, cells = cells[0], cells[1:]
            assert label in output.classes
        numbers = [float(cell) for cell in cells]
        assert all(math.isfinite(number) for number in numbers)
        if output.has_probabilities:
            assert math.fsum(numbers) == pytest.approx(1.0, abs=1e-9)
