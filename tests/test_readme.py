"""Every Python example in README.md runs, and the README's two commands are the Makefile's."""

from __future__ import annotations

from tests._docs import python_blocks, run_blocks
from tests._servers import repo_root

README = repo_root() / "README.md"


def test_readme_examples_run() -> None:
    blocks = python_blocks(README.read_text("utf-8"))
    assert len(blocks) >= 2
    run_blocks(blocks, README, shared=False)


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    text = README.read_text("utf-8")
    assert "make run" in text
    assert "make test" in text
    makefile = (repo_root() / "Makefile").read_text("utf-8")
    assert "\nrun:" in makefile
    assert "\ntest:" in makefile
    assert "make test" in (repo_root() / ".ci" / "run").read_text("utf-8")
