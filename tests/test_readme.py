"""Every Python example in README.md runs, and the README's two commands are the Makefile's."""

from __future__ import annotations

import re

from tests._servers import repo_root

README = repo_root() / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_readme_examples_run() -> None:
    blocks = _BLOCK.findall(README.read_text("utf-8"))
    assert len(blocks) >= 2
    for index, block in enumerate(blocks):
        namespace: dict[str, object] = {"__name__": f"readme_example_{index}"}
        try:
            exec(compile(block, f"README.md:example-{index}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README example {index} failed:\n{block}") from exc


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    text = README.read_text("utf-8")
    assert "make run" in text
    assert "make test" in text
    makefile = (repo_root() / "Makefile").read_text("utf-8")
    assert "\nrun:" in makefile
    assert "\ntest:" in makefile
    assert "make test" in (repo_root() / ".ci" / "run").read_text("utf-8")
