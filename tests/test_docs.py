"""The local docs render (tools/render_docs.py, what `make docs` runs without Quarto): render every
notebook into _docs_test/, open the home page in headless Chromium, check its title and navigation,
check that no local href/src of any page is broken, and save _docs_test/screenshot.png.

pandoc and chromium come from Debian (`bash tools/install_docs_deps.sh`; .ci/run does it). Without
them this test fails: it does not skip."""
import html.parser, json, os, re, shutil, subprocess, sys, time
from pathlib import Path
from urllib.parse import urlsplit, unquote
import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'_docs_test'
sys.path.insert(0, str(ROOT/'tools'))
import nbdocs, render_docs  # noqa: E402


class Page(html.parser.HTMLParser):
    "The URLs (tag, attribute, value) and element ids of one HTML page."
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.urls, self.ids, self.title, self._in_title = [], set(), '', False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) is not None: self.urls.append((tag, k, a[k], a.get('rel')))
        if tag == 'title': self._in_title = True

    def handle_endtag(self, tag):
        if tag == 'title': self._in_title = False

    def handle_data(self, data):
        if self._in_title: self.title += data


def _broken_links(out: Path) -> list[str]:
    pages = {p: Page(p.read_text(encoding='utf-8')) for p in out.rglob('*.html')}
    bad = []
    for path, page in pages.items():
        where = path.relative_to(out)
        for tag, attr, url, rel in page.urls:
            parts = urlsplit(url)
            if parts.scheme in ('http', 'https') or url.startswith('//'):
                if tag != 'a': bad.append(f'{where}: <{tag} {attr}="{url}"> loads a network resource')
                continue
            if parts.scheme in ('mailto', 'data'): continue
            if parts.scheme: bad.append(f'{where}: <{tag} {attr}="{url}"> unexpected scheme'); continue
            target = path if not parts.path else (path.parent/unquote(parts.path)).resolve()
            if not target.is_file() or out.resolve() not in target.resolve().parents:
                bad.append(f'{where}: <{tag} {attr}="{url}"> points to no file in the site'); continue
            if parts.fragment and target.suffix == '.html':
                ids = pages[next(p for p in pages if p.resolve() == target.resolve())].ids
                if unquote(parts.fragment) not in ids: bad.append(f'{where}: <{tag} {attr}="{url}"> no id "{parts.fragment}" there')
    return bad


def _require_tools():
    missing = [t for t in ('pandoc', 'chromium') if not (shutil.which(t) or (t == 'chromium' and render_docs.chromium()))]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: the docs test needs them. Install with "
                    f"`bash tools/install_docs_deps.sh` (apt-get install -y pandoc chromium, as root)", pytrace=False)


def test_docs_site():
    _require_tools()
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'render_docs.py'), '--no-exec', '--out', str(OUT)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0, f"render failed:\n{r.stderr[-5000:]}"
    cfg, chapters = nbdocs.config(), nbdocs.chapters()
    for c in chapters: assert (OUT/c['out']).is_file(), f"{c['rel']} was not rendered to {c['out']}"

    # every local href/src of every page resolves to a file of the site; nothing loads from the network
    bad = _broken_links(OUT)
    assert not bad, 'broken links:\n' + '\n'.join(bad[:50])

    # the home page, as Chromium sees it: title, heading, sidebar listing every chapter in order
    dom = render_docs.chromium_run(['--dump-dom', (OUT/'index.html').as_uri()], timeout=90)
    assert dom.returncode == 0 and '</html>' in dom.stdout, f"chromium --dump-dom failed: {dom.stderr[-2000:]}"
    home = Page(dom.stdout)
    assert home.title.strip() == cfg['title'], home.title
    for css in nbdocs.quarto_html()['css']:   # the stylesheets _quarto.yml names
        assert f'href="{css}"' in dom.stdout and (OUT/css).is_file(), css
    assert re.search(r'<h1 class="title">\s*' + re.escape(cfg['title']) + r'\s*</h1>', dom.stdout)
    nav = re.search(r'<nav id="sidebar"[^>]*>(.*?)</nav>', dom.stdout, re.S)
    assert nav, 'no sidebar navigation on the home page'
    hrefs = re.findall(r'<a href="([^"]+)"', nav.group(1))
    assert hrefs == [c['out'] for c in chapters], (hrefs, [c['out'] for c in chapters])
    assert 'aria-current="page"' in nav.group(1)
    for c in chapters:
        if c['rel'] != 'index.ipynb': assert c['title'].replace('&', '&amp;') in nav.group(1), c['title']

    # the same navigation on every chapter page (the Quarto sidebar lists the same files: nbs/sidebar.yml)
    for c in chapters:
        nav = re.search(r'<nav id="sidebar"[^>]*>(.*?)</nav>', (OUT/c['out']).read_text(encoding='utf-8'), re.S)
        assert nav and len(re.findall(r'<a href="([^"]+)"', nav.group(1))) == len(chapters), c['out']
        assert re.search(r'<a href="[^"]*" class="active" aria-current="page">', nav.group(1)), c['out']

    png = OUT/'screenshot.png'
    render_docs.screenshot(OUT/'index.html', png)
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 20_000
    print(f'docs render + checks: {time.time() - t0:.0f}s, {len(chapters)} pages, screenshot {png}')


def test_render_outputs(tmp_path):
    "Figures, math, hidden cells, directives and links of one notebook (the site is rendered without executing)."
    _require_tools()
    from execnb.nbio import dict2nb
    png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='   # 1x1 PNG
    nb = dict2nb({'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5, 'cells': [
        {'cell_type': 'markdown', 'metadata': {}, 'source': 'Euler: $e^{i\\pi} + 1 = 0$. See [the model](../13_model.ipynb#the-network).'},
        {'cell_type': 'markdown', 'metadata': {}, 'source': '### ClusterCAM.cams\n\n[cams](https://example.com/docs/model.html#clustercam.cams)'},
        {'cell_type': 'code', 'metadata': {}, 'source': '#| hide\nhidden_cell()', 'outputs': [], 'execution_count': None},
        {'cell_type': 'code', 'metadata': {}, 'source': '#| eval: false\nplot()', 'execution_count': 1, 'outputs': [
            {'output_type': 'stream', 'name': 'stdout', 'text': 'hello\n'},
            {'output_type': 'display_data', 'metadata': {}, 'data': {'image/png': png, 'text/plain': '<Figure>'}}]},
    ]})
    page = {'rel': 'tutorials/99_demo.ipynb', 'out': 'tutorials/demo.html', 'title': 'Demo', 'desc': '', 'section': 'tutorials'}
    md = render_docs.notebook_md(nb, page, tmp_path/'tutorials'/'figures')
    assert 'hidden_cell' not in md and '#|' not in md and 'plot()' in md and 'hello' in md
    assert (tmp_path/'tutorials'/'figures'/'demo-1.png').read_bytes()[:4] == b'\x89PNG'
    ast = json.loads(render_docs.pandoc(['-f', render_docs.MD_FORMAT, '-t', 'json'], md))
    model = {'rel': '13_model.ipynb', 'out': 'model.html', 'title': 'M', 'desc': '', 'section': None}
    linker = render_docs.Linker([page, model], tmp_path, {'git_url': 'https://example.com/r', 'branch': 'main',
                                                          'doc_host': 'https://example.com', 'doc_baseurl': '/docs'})
    render_docs.header_ids(ast['blocks'])
    render_docs.fix_ast(ast['blocks'], lambda u: linker(u, page))
    body = render_docs.pandoc(['-f', 'json', '-t', 'html5', '--mathml'], json.dumps(ast))
    assert '<math' in body and 'src="figures/demo-1.png"' in body and 'href="../model.html#the-network"' in body
    assert '<h3 id="clustercam.cams">' in body and 'href="../model.html#clustercam.cams"' in body
