"""The code's own checks, run with the tests: the layering rules of DESIGN.md
(import-linter's contracts in pyproject.toml), ruff, and mypy --strict on the pure core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_tool(name: str, *args: str) -> None:
    tool = shutil.which(name, path=str(Path(sys.executable).parent))
    assert tool, f"{name} is part of the dev extra"
    result = subprocess.run(
        [tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_import_contracts_are_kept() -> None:
    run_tool("lint-imports")


def test_ruff_finds_nothing() -> None:
    run_tool("ruff", "check", ".")
    run_tool("ruff", "format", "--check", ".")


def test_the_pure_core_type_checks_strictly() -> None:
    run_tool("mypy")
