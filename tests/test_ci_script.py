"""`.ci/run` runs the README's two commands verbatim, so that CI checks what a new user types."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in section.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_commands_verbatim_and_first():
    commands = _readme_commands()
    assert len(commands) == 2 and all(c.startswith("python3 -m venv .venv") for c in commands)
    script = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    assert script[:2] == ["set -euo pipefail", 'cd "$(dirname "$0")/.."']
    assert script[2:4] == commands, "the first commands of .ci/run must be the README's two commands, verbatim"


def test_ci_runs_the_torch_tests_and_the_linter():
    script = (ROOT / ".ci" / "run").read_text()
    assert '"torch==2.13.0"' in script and ".[test-reference]" in script
    assert '-m "torch or reference"' in script and "ruff check" in script
