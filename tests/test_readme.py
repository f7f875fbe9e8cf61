"""The README: short, its first screen as a newcomer needs it, and every link in it resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_at_most_1000_words():
    assert len(README.split()) <= 1000


def test_the_first_screen_says_what_labviz_is_and_shows_the_three_commands_and_the_explorer():
    first = "\n".join(README.splitlines()[:20])
    assert "how labels shape trained classifiers" in first
    assert "![" in first and "docs/explorer.png" in first
    for command in ("make lab", "make test", "make app"):
        assert re.search(rf"^{command}\b", first, re.M), command


def test_the_own_model_example_ends_in_explore_and_the_report_example_follows():
    python = re.search(r"```python\n(.*?)```", README, re.S)
    assert python is not None
    lines = python.group(1).strip().splitlines()
    assert len(lines) <= 5 and lines[-1].startswith("labviz.explore(")
    bash = [block for block in re.findall(r"```bash\n(.*?)```", README, re.S) if "labviz report" in block]
    assert bash and len(bash[0].strip().splitlines()) <= 3


def test_every_relative_link_resolves():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links into the docs"
    assert [link for link in local if not (ROOT / link).exists()] == []
