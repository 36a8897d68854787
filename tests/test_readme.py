"README.md is generated from nbs/index.ipynb (tools/make_readme.py, `make readme`) and must be in step with it."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import make_readme  # noqa: E402


def test_readme_in_step_with_index():
    "README.md is what tools/make_readme.py makes of nbs/index.ipynb as it is now."
    want = make_readme.readme_text(make_readme.read_nb(make_readme.INDEX))
    have = make_readme.README.read_text(encoding='utf-8') if make_readme.README.exists() else ''
    assert have == want, "README.md is out of step with nbs/index.ipynb: run `make readme` and commit README.md"


def test_chapter_list_current():
    "index.ipynb's chapter list and nbs/sidebar.yml list the notebooks in nbs/ (a new chapter needs `make readme`)."
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_readme_conversion():
    nb = {'cells': [
        {'cell_type': 'markdown', 'source': '# title\n\n> what\n\nSee [the model](13_model.ipynb) and [the rules](../DEVELOPERS.md#tests).'},
        {'cell_type': 'code', 'source': '#| hide\nsecret = 1', 'outputs': []},
        {'cell_type': 'code', 'source': '#| include: false\nalso_hidden = 1', 'outputs': []},
        {'cell_type': 'code', 'source': '#| eval: false\nshown(1)', 'outputs': []},
        {'cell_type': 'code', 'source': 'print(2)', 'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['2\n']}]},
        {'cell_type': 'markdown', 'source': '```python\nx = [a](b.ipynb)\n```'},
    ]}
    md = make_readme.readme_text(nb)
    assert md.startswith('<!-- Generated from nbs/index.ipynb')
    assert '# title\n\n> what' in md
    assert '[the model](nbs/13_model.ipynb)' in md and '[the rules](DEVELOPERS.md#tests)' in md
    assert 'secret' not in md and 'also_hidden' not in md and '#|' not in md
    assert '```python\nshown(1)\n```' in md and '```python\nprint(2)\n```\n\n```\n2\n```' in md
    assert 'x = [a](b.ipynb)' in md      # code blocks are left alone


def test_links_rewritten_over_the_whole_text():
    "A link whose text holds inline code, or breaks across lines, is one link (both once escaped the rewriting); code is left alone."
    md = make_readme.rewrite_links(
        "| 43 | [The demo: `make demo`](43_demo.ipynb) | ... |\n"
        "[Training and evaluating on MS COCO\n2014](tutorials/03_coco.ipynb) give the data layouts\n"
        "not a link: `[x](y.ipynb)`, ``a `[q](r.ipynb)` b``; <img src=\"images/a.png\">")
    assert '[The demo: `make demo`](nbs/43_demo.ipynb)' in md
    assert '[Training and evaluating on MS COCO\n2014](nbs/tutorials/03_coco.ipynb)' in md
    assert '`[x](y.ipynb)`' in md and '``a `[q](r.ipynb)` b``' in md and 'src="nbs/images/a.png"' in md


def test_readme_links_resolve():
    "Every relative link in README.md names a file of the repository."
    import re
    text = make_readme.README.read_text(encoding='utf-8')
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    links = [m.group('url') for m in make_readme._PROSE.finditer(text) if m.group('md')]
    missing = [u for u in links if not re.match(r'^([a-z][a-z0-9+.-]*:|#)', u, re.I) and not (ROOT/u.partition('#')[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
