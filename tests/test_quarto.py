"""The site's Quarto configuration is one file at the top level, `_quarto.yml`: `nbdev_docs` (where Quarto is
installed) finds it through `nbs/_quarto.yml`, a link to it, and the local render (`make docs` without Quarto)
reads its stylesheets and table-of-contents setting."""
import shutil, sys
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import nbdocs  # noqa: E402


def test_one_config_at_the_top():
    top, link = ROOT/'_quarto.yml', ROOT/'nbs'/'_quarto.yml'
    assert top.is_file() and not top.is_symlink()
    assert link.resolve() == top.resolve(), f"nbs/_quarto.yml must link to ../_quarto.yml, it resolves to {link.resolve()}"
    cfg = yaml.safe_load(top.read_text())
    assert cfg['project']['type'] == 'website' and cfg['metadata-files'] == ['nbdev.yml', 'sidebar.yml']
    for css in nbdocs.quarto_html()['css']: assert (ROOT/'nbs'/css).is_file(), css


def test_nbdev_docs_reads_it(tmp_path):
    "nbdev_docs' own steps that touch the config, on a copy of the tree: kept by refresh_quarto_yml, copied into _proc/."
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import _proc_file
    from fastcore.xtras import working_directory
    for name in ('settings.ini', '_quarto.yml'): shutil.copy2(ROOT/name, tmp_path/name)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', symlinks=True)
    with working_directory(tmp_path):
        refresh_quarto_yml()                      # what nbdev_docs runs first; it must not replace ours
        _proc_file(tmp_path/'nbs'/'_quarto.yml', cache=tmp_path/'_proc', path=tmp_path/'nbs')
    text = (ROOT/'_quarto.yml').read_text()
    assert (tmp_path/'nbs'/'_quarto.yml').read_text() == text
    assert (tmp_path/'_proc'/'_quarto.yml').read_text() == text and not (tmp_path/'_proc'/'_quarto.yml').is_symlink()


def test_local_render_reads_it(tmp_path, monkeypatch):
    (tmp_path/'q.yml').write_text('format:\n  html:\n    css: [a.css, b/c.css]\n    toc: false\n')
    monkeypatch.setattr(nbdocs, 'QUARTO', tmp_path/'q.yml')
    assert nbdocs.quarto_html() == {'css': ['a.css', 'b/c.css'], 'toc': False}
    (tmp_path/'q.yml').write_text('format:\n  html:\n    css: one.css\n')
    assert nbdocs.quarto_html() == {'css': ['one.css'], 'toc': True}
