"""Prompt templates, shipped as package data. One file per prompt style and part."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def template(name: str) -> Template:
    """Load prompts/<name>.txt; $placeholders are filled with string.Template (no brace escaping)."""
    return Template(files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8"))
