"""Notebook hygiene that nbdev's docs build relies on.

nbdev executes every cell that contains an import (to render `show_doc`), so a cell mixing imports
with other code runs out of context there and can break the whole site build. Keep imports in
cells of their own (exported cells are fine: they only depend on other exported cells)."""
import ast, json
from pathlib import Path
import pytest

NBS = sorted(p for p in (Path(__file__).resolve().parents[1]/'nbs').rglob('*.ipynb')
             if not any(part.startswith(('.', '_')) for part in p.parts))
EXPORTS = ('#| export', '#|export', '#| exports', '#| exporti', '#| exec_doc', '#| eval: false', '#|eval: false')


def _mixed_cells(path):
    for i, cell in enumerate(json.loads(path.read_text())['cells']):
        src = ''.join(cell['source'])
        if cell['cell_type'] != 'code' or 'nbdev_export()' in src: continue
        if any(line.strip().startswith(EXPORTS) for line in src.splitlines()): continue
        lines = [l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))]
        try: tree = ast.parse('\n'.join(lines))
        except SyntaxError: continue
        # nbdev runs the cell if an import appears anywhere in it; that is harmless when the cell
        # only imports and defines (a def's body runs later), harmful when it runs other code
        has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        runs_code = any(not isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                        for n in tree.body)
        if has_import and runs_code: yield i, src.splitlines()[0]


@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_imports_in_own_cells(path):
    bad = list(_mixed_cells(path))
    assert not bad, f"{path.name}: cells mixing imports with other code (nbdev's docs build runs them): {bad}"
