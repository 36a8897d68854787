"""Pyflakes' rules (ruff's `F`: unused imports and variables, undefined names, redefinitions) hold over the package,
the notebooks, the tests and the tools. The package is generated from the notebooks, so an import that only a
chapter's tests use belongs in a plain cell of that chapter, not in its export cell."""
import shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLACES = ['clustercam', 'tools', 'tests', 'nbs']


def ruff() -> list[str]:
    exe = Path(sys.executable).parent / 'ruff'
    if exe.exists(): return [str(exe)]
    if shutil.which('ruff'): return ['ruff']
    pytest.fail('ruff is not installed: it is a dev dependency (settings.ini), `make test` installs it')


def test_pyflakes_clean():
    run = subprocess.run([*ruff(), 'check', '--select', 'F', '--output-format', 'concise', *PLACES],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
