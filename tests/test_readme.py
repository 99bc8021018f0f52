"""The README's Python example runs as written and learns; its test command is what CI runs."""

import re

from tests.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs_and_learns(capsys):
    block = re.search(r"## From Python\s+```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    last = namespace["history"].rows[-1]
    assert last["val_mae"] < 0.2 and last["val_loss"] < namespace["history"].rows[0]["val_loss"]
    assert "val_mae" in capsys.readouterr().out


def test_readme_opens_with_the_two_commands():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)[:2]
    assert commands[0].endswith("rnnkit demo")
    assert "pip install torch==2.13.0" in commands[1] and "pytest" in commands[1]
    assert "<!-- test-command -->" in README.split(commands[1])[0]  # the block .ci/run executes
