"""A griffe extension for the API pages: hierfit's docstrings title their examples
"Example" (one example each); numpy style spells the section "Examples"."""

from __future__ import annotations

import re

from griffe import Extension

_EXAMPLE = re.compile(r"^(\s*)Example\n(\s*)-------\n", re.MULTILINE)


class ExampleSection(Extension):
    """Read an ``Example`` section as numpy's ``Examples`` section.

    Example
    -------
    In mkdocs.yml, under the python handler's options::

        extensions:
          - docs/griffe_sections.py:ExampleSection
    """

    def on_object(self, *, obj, **kwargs) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples\n\2--------\n", obj.docstring.value)
