"""Imports go one way: models <- monitor <- dashboard."""

from __future__ import annotations

import subprocess
import sys


def _modules_after_import(name: str) -> set[str]:
    code = f"import sys, {name}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {line.split(".")[0] for line in out.split()}


def test_models_imports_neither_monitor_nor_dashboard_nor_io_frameworks() -> None:
    loaded = _modules_after_import("models")
    assert not loaded & {"monitor", "dashboard", "flask", "sqlalchemy", "httpx"}


def test_monitor_does_not_import_dashboard() -> None:
    assert "dashboard" not in _modules_after_import("monitor.pipeline.collect")
