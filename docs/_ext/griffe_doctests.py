"""A griffe extension for the API reference: fence the doctests of axon's docstrings.

axon's docstrings show runnable examples as bare ``>>>`` lines (pytest runs them as
doctests). Outside a Google ``Examples:`` section, Markdown would read them as prose, and
outputs like ``['kernel', 'bias']`` as link references (``mkdocs build --strict`` fails on
those). This wraps every run of ``>>>``/``...`` lines and their output (up to a blank line)
in a ```` ```pycon ```` fence, so the reference shows them as highlighted sessions.
"""

from __future__ import annotations

from typing import Any

import griffe

__all__ = ["FenceDoctests", "fence_doctests"]


def fence_doctests(text: str) -> str:
    """Wrap the doctest runs of a docstring in pycon fences (already fenced text is kept).

    >>> fence_doctests("Adds.\\n\\n>>> 1 + 1\\n2\\n\\nMore.").splitlines()
    ['Adds.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'More.']
    """
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if not in_doctest and stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence:
            out.append(line)
            continue
        if not in_doctest and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            in_doctest = True
        elif in_doctest and not stripped:
            out.append(f"{indent}```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append(f"{indent}```")
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fence the doctests of every loaded object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
