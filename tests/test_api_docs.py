"""Every exported function and class has a docstring (nbdev renders it as the symbol's documentation),
and every notebook opens with a title and a one-line description (the chapter lists use them)."""
import importlib, inspect, json, pkgutil
from pathlib import Path
import pytest
import clustercam

ROOT = Path(__file__).resolve().parents[1]
# every module, the harness's included (`harness.bench`); a package's __init__ exports nothing
MODULES = sorted(m.name.removeprefix('clustercam.') for m in pkgutil.walk_packages(clustercam.__path__, 'clustercam.')
                 if not m.ispkg and not m.name.rsplit('.', 1)[-1].startswith('_'))
NBS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if not any(part.startswith(('.', '_')) for part in p.parts))


def _undocumented(module):
    for name in getattr(module, '__all__', []):
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)): continue      # constants, presets, ...
        if getattr(obj, '__module__', None) != module.__name__: continue        # re-exported from elsewhere
        if not (obj.__doc__ or '').strip(): yield name


@pytest.mark.parametrize('name', MODULES)
def test_exports_have_docstrings(name):
    module = importlib.import_module(f'clustercam.{name}')
    assert getattr(module, '__all__', None), f"clustercam.{name} exports nothing (__all__ is missing or empty)"
    missing = list(_undocumented(module))
    assert not missing, f"clustercam.{name}: exported without a docstring: {missing}"


@pytest.mark.parametrize('path', NBS, ids=[p.relative_to(ROOT/'nbs').as_posix() for p in NBS])
def test_notebook_opens_with_title_and_description(path):
    cells = json.loads(path.read_text())['cells']
    first = next(c for c in cells if c['cell_type'] == 'markdown')
    lines = ''.join(first['source']).splitlines()
    assert lines and lines[0].startswith('# '), f"{path.name}: the first markdown cell must start with '# Title'"
    assert any(l.startswith('> ') for l in lines[1:]), f"{path.name}: the first markdown cell needs a '> one-line description'"
