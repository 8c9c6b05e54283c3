"""Every guide and cheatsheet under docs/ runs: its ```python blocks are executed in order.

One test per Markdown file. The file's ``python`` blocks run one after another in one fresh
namespace, in a fresh temporary working directory (guides may write files). A ``text`` block
that directly follows a ``python`` block (only blank lines between) is that block's expected
printed output, compared like a doctest (whitespace normalized, ``...`` matches anything).
A block preceded by the line ``<!-- docs: no-run -->`` is illustrative and skipped (it needs
data the guide does not make, several processes or a GPU). A block preceded by the line
``<!-- docs: requires MODULE [MODULE ...] -->`` runs only when those optional libraries can be
imported; the same line anywhere else in a file (not directly before a fence) makes the whole
file need them: it is skipped without them. A file that needs torch is marked ``torch``, one
that needs another optional library ``reference``, like the tests that take those fixtures,
so the CI step that installs the test-reference extra runs them. The rules are in
docs/README.md.

The mkdocs site is built with ``mkdocs build --strict`` when mkdocs is installed.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NO_RUN = "<!-- docs: no-run -->"
_REQUIRES = re.compile(r"^<!-- docs: requires ([A-Za-z_][\w.]*(?:(?:\s*,\s*|\s+)[A-Za-z_][\w.]*)*) -->$")
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@dataclass
class Block:
    """A fenced code block: its language, source, first line (1-based) and expected output."""

    lang: str
    source: str
    line: int
    run: bool = True
    expected: str | None = None
    requires: tuple[str, ...] = ()


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with ``text`` outputs attached to their ``python`` block.

    >>> md = "```python\\nprint(1)\\n```\\n\\n```text\\n1\\n```\\n"
    >>> [(b.lang, b.source, b.expected) for b in parse_blocks(md)]
    [('python', 'print(1)\\n', '1\\n')]
    """
    lines = text.splitlines(keepends=True)
    blocks: list[Block] = []
    gaps: list[str] = []  # the lines between the previous block and this one
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i].rstrip("\n"))
        if not m:
            gaps.append(lines[i])
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        lang = m["info"].strip().split(" ")[0].lower()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"unclosed code fence opened at line {start + 1}")
        i += 1
        source = "".join(body)
        previous = [g.strip() for g in gaps if g.strip()]
        between_blank = not previous
        run = not (previous and previous[-1] == NO_RUN)
        requires = _REQUIRES.match(previous[-1]) if previous else None
        if lang == "text" and between_blank and blocks and blocks[-1].lang == "python" and blocks[-1].expected is None:
            blocks[-1].expected = source
        else:
            blocks.append(Block(lang, source, start + 1, run, requires=_modules(requires[1]) if requires else ()))
        gaps = []
    return [b for b in blocks if b.lang == "python"]


_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def output_matches(expected: str, got: str) -> bool:
    """Doctest's comparison: whitespace normalized, ``...`` matches any text.

    >>> output_matches("loss: ...\\n[1, 2]", "loss: 0.25\\n[1,\\n 2]\\n")
    True
    >>> output_matches("3", "4")
    False
    """
    return _CHECKER.check_output(expected.strip() + "\n", got.strip() + "\n", _FLAGS)


def _importable(module: str) -> bool:
    """Whether ``module`` imports (not only whether it is installed: with torch hidden by
    ``AXON_TEST_BLOCK_TORCH=1``, a library that imports torch when it is installed fails)."""
    try:
        if importlib.util.find_spec(module) is None:
            return False
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _modules(names: str) -> tuple[str, ...]:
    """The module names of a ``requires`` marker (separated by spaces or commas)."""
    return tuple(m for m in re.split(r"[,\s]+", names) if m)


def run_markdown(path: Path, workdir: Path) -> int:
    """Run the ``python`` blocks of ``path`` in order in one namespace; return how many ran.

    Raises:
        AssertionError: a block raised, or printed something other than its ``text`` block.
    """
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    previous_cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for block in parse_blocks(path.read_text()):
            if not block.run or not all(_importable(m) for m in block.requires):
                continue
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{block.line}"
            out = io.StringIO()
            try:
                code = compile(textwrap.dedent(block.source), where, "exec")
                with contextlib.redirect_stdout(out):
                    exec(code, namespace)
            except Exception as e:
                raise AssertionError(
                    f"{where}: the block raised {type(e).__name__}: {e}\n--- block ---\n{block.source}"
                    f"--- printed before the error ---\n{out.getvalue()}"
                ) from e
            if block.expected is not None and not output_matches(block.expected, out.getvalue()):
                raise AssertionError(
                    f"{where}: printed output differs from the text block\n--- expected ---\n"
                    f"{block.expected}--- got ---\n{out.getvalue()}"
                )
            ran += 1
    finally:
        os.chdir(previous_cwd)
    return ran


MARKDOWN = sorted(DOCS.rglob("*.md"))


def page_requirements(text: str) -> list[str]:
    """The optional packages a whole Markdown file needs: those named by a
    ``<!-- docs: requires ... -->`` line that does not directly precede a code fence.

    >>> page_requirements("# Guide\\n<!-- docs: requires onnx torch -->\\n\\nText.\\n")
    ['onnx', 'torch']
    >>> page_requirements("<!-- docs: requires grain -->\\n```python\\npass\\n```\\n")
    []
    """
    lines = text.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        m = _REQUIRES.match(line.strip())
        if not m:
            continue
        following = next((nxt.strip() for nxt in lines[i + 1:] if nxt.strip()), "")
        if not _FENCE.match(following):
            found += m[1].split()
    return found


def _markdown_param(path: Path) -> object:
    text = path.read_text()
    modules = set(page_requirements(text))
    modules.update(m for b in parse_blocks(text) for m in b.requires)
    marks = [pytest.mark.torch] if "torch" in modules else []
    marks += [pytest.mark.reference] if modules - {"torch"} else []
    return pytest.param(path, marks=marks, id=str(path.relative_to(DOCS)))


@pytest.mark.parametrize("path", [_markdown_param(p) for p in MARKDOWN])
def test_markdown_runs(path: Path, tmp_path: Path) -> None:
    for module in page_requirements(path.read_text()):
        pytest.importorskip(module)
    run_markdown(path, tmp_path)


def test_every_guide_and_cheatsheet_has_running_code() -> None:
    """A guide whose blocks are all marked no-run would be tested by nothing.

    The distributed guide is the exception: its blocks need several devices or processes
    (tests/test_distributed*.py run the same calls).
    """
    exempt = ("README.md", "index.md", "distributed.md")
    for path in MARKDOWN:
        if path.parent.name in ("guides", "cheatsheets") and path.name not in exempt:
            blocks = parse_blocks(path.read_text())
            assert any(b.run for b in blocks), f"{path}: no runnable python block"


def test_a_broken_example_fails(tmp_path: Path) -> None:
    md = tmp_path / "broken.md"
    md.write_text("```python\nimport axon\naxon.dense_that_does_not_exist\n```\n")
    with pytest.raises(AssertionError, match=r"broken.md:1: the block raised AttributeError"):
        run_markdown(md, tmp_path)


def test_a_wrong_output_fails(tmp_path: Path) -> None:
    md = tmp_path / "wrong.md"
    md.write_text("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n")
    with pytest.raises(AssertionError, match="printed output differs"):
        run_markdown(md, tmp_path)


def test_output_and_no_run_markers(tmp_path: Path) -> None:
    md = tmp_path / "ok.md"
    md.write_text(
        "Intro.\n\n```python\nx = [1.0, 2.5]\nprint(x)\n```\n\n```text\n[1.0, ...]\n```\n\n"
        f"{NO_RUN}\n```python\nraise SystemExit('never runs')\n```\n\n"
        "A text block after prose is not an output:\n\n```text\nanything\n```\n"
        "```python\nprint(len(x))\n```\n\n```text\n2\n```\n"
    )
    assert [(b.run, b.expected) for b in parse_blocks(md.read_text())] == [
        (True, "[1.0, ...]\n"), (False, None), (True, "2\n")
    ]
    assert run_markdown(md, tmp_path) == 2


def test_requires_marker_runs_a_block_only_with_its_module(tmp_path: Path) -> None:
    md = tmp_path / "requires.md"
    md.write_text(
        "<!-- docs: requires json -->\n```python\nimport json\nprint(json.dumps(1))\n```\n\n```text\n1\n```\n\n"
        "<!-- docs: requires a_module_that_is_not_installed -->\n```python\nraise SystemExit('never runs')\n```\n"
    )
    assert [b.requires for b in parse_blocks(md.read_text())] == [("json",), ("a_module_that_is_not_installed",)]
    assert run_markdown(md, tmp_path) == 1


def test_requires_marker_skips_blocks_whose_modules_are_missing(tmp_path: Path) -> None:
    md = tmp_path / "requires.md"
    md.write_text(
        "<!-- docs: requires json, no_such_module_xyz -->\n```python\nraise SystemExit('never runs')\n```\n\n"
        "<!-- docs: requires json -->\n```python\nimport json\nprint(json.dumps(1))\n```\n\n```text\n1\n```\n"
    )
    assert [b.requires for b in parse_blocks(md.read_text())] == [("json", "no_such_module_xyz"), ("json",)]
    assert run_markdown(md, tmp_path) == 1


def _reference_pages() -> dict[str, object]:
    import importlib

    import axon

    return {"axon": axon, **{m: importlib.import_module(f"axon.{m}") for m in axon._PUBLIC_MODULES}}


def test_reference_has_a_page_per_public_module() -> None:
    """One page per public module in docs/reference/ and in mkdocs.yml's nav."""
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in _reference_pages():
        assert (DOCS / "reference" / f"{page}.md").exists(), f"docs/reference/{page}.md is missing"
        assert f"reference/{page}.md" in nav, f"mkdocs.yml's nav lacks reference/{page}.md"


def test_reference_axon_page_lists_all_of_axon_all() -> None:
    """The axon page names its members explicitly (griffe cannot read the computed
    ``axon.__all__``, and the activation layers are generated): it must list them all."""
    import axon
    from axon import activations

    text = (DOCS / "reference" / "axon.md").read_text()
    members = set(re.findall(r"^ {8}- (\w+)$", text, re.M))
    table = set(re.findall(r'<a id="axon\.(\w+)"></a>', text))
    expected = set(axon.__all__) - set(axon._PUBLIC_MODULES)
    assert table == set(activations.ACTIVATIONS)
    assert members | table == expected, (
        f"missing: {sorted(expected - members - table)}; unknown: {sorted((members | table) - expected)}"
    )


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` passes, and every public name of ``axon.__all__`` and of
    each public submodule's ``__all__`` has an anchor in the reference."""
    import inspect

    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page, module in _reference_pages().items():
        ids = set(re.findall(r'id="([^"]+)"', (site / "reference" / page / "index.html").read_text()))
        prefix = "axon" if page == "axon" else f"axon.{page}"
        names = getattr(module, "__all__", [])
        missing = [
            n for n in names
            if not inspect.ismodule(getattr(module, n))
            and f"{prefix}.{n}" not in ids and f"{prefix}.{n}.{n}" not in ids
        ]
        assert not missing, f"reference/{page}: no entry for {missing}"
