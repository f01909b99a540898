"""Every verb's help reads cleanly in an 80-column terminal (issue 20.11): no option without
a description, no description cut, flags without a value placeholder."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from isplab.cli import app
from isplab.commands import COMMANDS

runner = CliRunner()


def _help(*args: str) -> str:
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    return res.output


def test_root_help_lists_every_verb_in_full():
    text = _help()
    for entry in COMMANDS.entries():
        assert entry.name in text
        summary = " ".join(entry.description.split())
        flat = " ".join(text.split())
        assert summary in flat, f"{entry.name}: {summary!r} cut or missing"
    assert "..." not in text.split("Commands:")[1]
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("verb", COMMANDS.names())
def test_every_option_has_a_description_and_no_bool_placeholder(verb):
    text = _help(verb)
    assert max(len(line) for line in text.splitlines()) <= 80, verb
    assert "<bool>" not in text
    options = text.split("Options:")[1]
    # an option line starts with "  -x, --name" or "  --name"; its description follows on
    # the same line or the next indented one
    lines = options.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (-\w, )?--[\w-]+(/--[\w-]+)?( <[^>]+>)?(\s+(.*))?$", line)
        if not m:
            continue
        described = bool(m.group(5)) or (i + 1 < len(lines) and lines[i + 1].startswith(" " * 10)
                                         and not lines[i + 1].lstrip().startswith("-"))
        assert described, f"{verb}: option without a description: {line.strip()}"
