"""pytest runs every notebook in nbs/ as one test (through nbdev's own runner), beside tests/."""
import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).parent
SKIP_FLAGS = ['notest', 'slow']


def pytest_collect_file(parent, file_path):
    if file_path.suffix == '.ipynb' and not any(p.startswith(('.', '_')) for p in file_path.relative_to(ROOT).parts):
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self): yield NotebookItem.from_parent(self, name=self.path.name)


class NotebookItem(pytest.Item):
    def runtest(self):
        from nbdev.test import test_nb
        import torch
        torch.set_grad_enabled(True)   # notebooks share a process: undo global state a chapter may set
        ok, secs = test_nb(self.path, skip_flags=SKIP_FLAGS, showerr=True, basepath=str(ROOT))
        if not ok: raise NotebookFailed(self.path)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailed): return f'notebook {self.path.name} failed (traceback above in stderr)'
        return super().repr_failure(excinfo)

    def reportinfo(self): return self.path, 0, f'notebook: {self.path.name}'


class NotebookFailed(Exception): pass


def pytest_unconfigure(config):
    # A plain closing line `N passed, N failed` for CI, after pytest's own summary.
    tr = config.pluginmanager.get_plugin('terminalreporter')
    if tr is None or hasattr(config, 'workerinput'): return
    passed = len([r for r in tr.stats.get('passed', []) if getattr(r, 'when', 'call') == 'call'])
    failed = len(tr.stats.get('failed', [])) + len(tr.stats.get('error', []))
    skipped = len(tr.stats.get('skipped', []))
    print(f'\n{passed} passed, {failed} failed' + (f', {skipped} skipped' if skipped else ''))
