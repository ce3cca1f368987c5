"""Thin faces: the command line parses, calls the library and reports. No function in src/greenless/cli/ runs
over 60 lines (signature, docstring and body together); longer work belongs in pipeline/ or media/."""

from __future__ import annotations

import ast

from conftest import REPO

LIMIT = 60


def test_no_cli_function_is_over_60_lines() -> None:
    files = sorted((REPO / "src" / "greenless" / "cli").glob("*.py"))
    assert len(files) >= 10, "the cli package moved?"
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - start + 1
                if lines > LIMIT:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}() is {lines} lines")
    assert not long, "over 60 lines (move the work into the library): " + "; ".join(long)
