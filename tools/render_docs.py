"""The documentation site without Quarto: nbdev's notebook processing, then pandoc, into _docs/.

    python tools/render_docs.py                 # render the notebooks with their stored outputs (`make outputs`)
    python tools/render_docs.py --exec          # execute the notebooks again (cached) for their outputs, then render
    python tools/render_docs.py --out DIR --screenshot

Steps, for every notebook in nbs/ (subfolders included, nbdev's sidebar order):
1. (--exec) run it like `make test` does (cells flagged notest/slow and `eval: false` skipped) in its
   own process, to get outputs and figures; results are cached in _docs_cache/ by the hash of the
   notebook and the package, so an unchanged chapter is not run again.
2. nbdev's processors (`FilterDefaults`, what `nbdev_proc_nbs` applies): front matter, show_doc
   for every export, hidden cells and exported code removed, directives. The processed notebooks
   are written to _proc/ as nbdev_proc_nbs does. A notebook whose processing fails is rendered
   without its API entries and with a warning on the page instead of stopping the site.
3. Each processed notebook -> markdown -> pandoc (JSON AST, links fixed) -> standalone HTML with the
   shared template (tools/site/template.html): sidebar of all chapters, table of contents, MathML
   for math, figures as PNG files beside the pages. No network resources.
The site is built in a new folder and swapped in whole.
"""
from __future__ import annotations
import argparse, base64, concurrent.futures as cf, contextlib, hashlib, html, io, json, os, posixpath, re, shutil
import subprocess, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbdocs import ROOT, NBS, config, chapters, split_directives, is_false, quarto_html, read_nb as read_json

SITE = Path(__file__).resolve().parent/'site'
CACHE = ROOT/'_docs_cache'
PROC = ROOT/'_proc'
EXEC_TIMEOUT = int(os.environ.get('DOCS_EXEC_TIMEOUT', '1200'))
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--disable-dev-shm-usage']


def log(*a): print('[docs]', *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- 1. execution (optional, cached)

def _package_hash() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT/'clustercam').rglob('*.py')) + [ROOT/'settings.ini']:
        h.update(str(p.relative_to(ROOT)).encode()); h.update(p.read_bytes())
    return h.hexdigest()


def exec_one(src: Path, dst: Path, key: str) -> None:
    "Run one notebook as the tests do, keeping outputs (this runs in a process of its own)."
    from execnb.shell import CaptureShell
    from execnb.nbio import read_nb, write_nb
    from fastcore.xtras import working_directory
    sys.path.insert(0, str(ROOT))
    os.environ['IN_TEST'] = '1'
    flags = set(config().get('tst_flags', '').split())
    nb = read_nb(src)

    def skip(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export(' in cell.source: return True
        direc, _ = split_directives(cell.source)
        return is_false(direc, 'eval') or bool(flags & set(direc))

    shell = CaptureShell(src)
    with working_directory(src.parent): shell.run_all(nb, exc_stop=False, preproc=skip)
    errors = sum(o.get('output_type') == 'error' for c in nb.cells for o in c.get('outputs', []))
    nb.metadata['clustercam_docs'] = {'key': key, 'errors': errors}
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)


def execute_all(pages: list[dict], jobs: int) -> dict[str, Path]:
    "Executed copies of the notebooks, from the cache when the notebook and the package are unchanged."
    pkg = _package_hash()
    todo, res = [], {}
    for p in pages:
        src = NBS/p['rel']
        key = hashlib.sha256(src.read_bytes() + pkg.encode()).hexdigest()
        dst = CACHE/'exec'/p['rel']
        try: ok = json.loads(dst.read_text())['metadata']['clustercam_docs']['key'] == key
        except Exception: ok = False
        res[p['rel']] = dst
        if not ok: todo.append((p['rel'], src, dst, key))
    log(f"executing {len(todo)} notebook(s) ({len(pages) - len(todo)} cached), {jobs} at a time")

    def run(item):
        rel, src, dst, key = item
        t = time.time()
        cmd = [sys.executable, __file__, '--exec-one', str(src), str(dst), key]
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=EXEC_TIMEOUT,
                               env={**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')})
            msg = f"{rel}: {time.time() - t:.0f}s"
            if r.returncode: msg += f", FAILED to execute (rendered as stored): {r.stderr.strip().splitlines()[-1:]}"
            else:
                n = json.loads(dst.read_text())['metadata']['clustercam_docs']['errors']
                if n: msg += f", {n} cell(s) raised (tracebacks shown on the page)"
        except subprocess.TimeoutExpired: msg = f"{rel}: timed out after {EXEC_TIMEOUT}s (rendered as stored)"
        log(msg)

    with cf.ThreadPoolExecutor(max(1, jobs)) as ex: list(ex.map(run, todo))
    return {rel: (dst if dst.exists() and json.loads(dst.read_text())['metadata'].get('clustercam_docs', {}).get('key')
                  else NBS/rel) for rel, dst in res.items()}


# ---------------------------------------------------------------- 2. nbdev processing

def process(rel: str, src: Path, proc_dir: Path = PROC):
    "nbdev's docs processors on one notebook (in this process); returns (nb, warning or None)."
    from execnb.nbio import read_nb, write_nb
    from nbdev.processors import FilterDefaults, exec_show_docs
    from fastcore.xtras import working_directory

    skipped = []

    class lenient_exec_show_docs(exec_show_docs):
        "nbdev also runs cells that mix imports with other code; one failing there (a test needing state"
        "from cells nbdev does not run) no longer costs the chapter all its API entries."
        def __call__(self, cell):
            try: return super().__call__(cell)
            except Exception as e:
                direc = getattr(cell, 'directives_', {}) or {}
                if direc.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or 'show_doc' in cell.source: raise
                self.k.exc = None
                cause = e.__cause__ or e
                skipped.append(f"cell {cell.idx_} ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})")

    class Lenient(FilterDefaults):
        def base_procs(self): return [lenient_exec_show_docs if p is exec_show_docs else p for p in super().base_procs()]

    class NoShowDocExec(FilterDefaults):
        def base_procs(self): return [p for p in super().base_procs() if p is not exec_show_docs]

    def run(filt):
        nb = read_nb(src)
        nb.path_ = str(NBS/rel)              # names, output-file and links as for the source notebook
        noise = io.StringIO()                # tracebacks the show_doc shell prints; the failure is logged below
        with working_directory((NBS/rel).parent), contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            filt()(nb)
        return nb

    warning = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try: nb = run(Lenient)
        except Exception as e: nb, warning = None, e
    mixed = sum('imports and other code' in str(w.message) for w in caught)
    if mixed: log(f"{rel}: nbdev: {mixed} cell(s) mix imports and other code (nbdev runs them for show_doc)"
                  + (f"; failed there and ignored: {', '.join(skipped)}" if skipped else ''))
    if warning is not None:
        e = warning
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        cause = e.__cause__ or getattr(e, '__context__', None)
        warning = (f"The API entries of this chapter could not be generated (nbdev's show_doc step failed: "
                   f"{first}{': ' + type(cause).__name__ + ': ' + str(cause) if cause else ''}). "
                   "The page shows the notebook without them.")
        log(f"{rel}: {warning}")
        try: nb = run(NoShowDocExec)
        except Exception as e2:     # not even nbdev's other processors: show the cells as stored
            log(f"{rel}: nbdev could not process it at all ({type(e2).__name__}: {e2}); rendered as stored")
            nb = read_nb(src)
    dst = proc_dir/rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)
    return nb, warning


# ---------------------------------------------------------------- 3. notebook -> markdown

_ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
_IMG_EXT = {'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/svg+xml': 'svg'}
PAGE = '__page__/'   # marks URLs already relative to the output page
MD_FORMAT = 'commonmark_x-yaml_metadata_block-gfm_auto_identifiers'   # Jupyter's markdown; ids set as Quarto does


def _fence(text: str, attrs: str = '') -> str:
    ticks = max([3] + [len(t) + 1 for t in re.findall(r'`{3,}', text)])
    return f"{'`' * ticks}{(' ' + attrs) if attrs else ''}\n{text.rstrip()}\n{'`' * ticks}"


def _div(classes: str, body: str) -> str: return f"::: {{{classes}}}\n{body}\n:::"


def _text(x) -> str: return ''.join(x) if isinstance(x, list) else str(x)


def outputs_md(outputs, page: dict, fig_dir: Path, counter: list, asis: bool) -> list[str]:
    res, stream = [], None
    # execnb captures an exception twice: IPython's coloured traceback on stdout and an `error` output;
    # keep the first (it shows the code around each frame), styled as an error
    tb_in_stream = any(o.get('output_type') == 'stream' and 'Traceback (most recent call last)' in _ANSI.sub('', _text(o.get('text', '')))
                       for o in outputs)
    for o in outputs:
        if o.get('output_type') == 'error' and tb_in_stream: continue
        t = o.get('output_type')
        if t == 'stream':
            txt = _ANSI.sub('', _text(o.get('text', '')))
            if stream and stream[0] == o.get('name'): stream[1] += txt; continue
            stream = [o.get('name', 'stdout'), txt]; res.append(stream); continue
        stream = None
        if t == 'error':
            tb = _ANSI.sub('', '\n'.join(o.get('traceback', [])) or f"{o.get('ename')}: {o.get('evalue')}")
            res.append(_div('.cell-output .cell-output-error', _fence(tb)))
            continue
        data = o.get('data', {})
        img = next((m for m in _IMG_EXT if m in data), None)
        if img:
            counter[0] += 1
            name = f"{Path(page['out']).stem}-{counter[0]}.{_IMG_EXT[img]}"
            fig_dir.mkdir(parents=True, exist_ok=True)
            raw = _text(data[img])
            (fig_dir/name).write_bytes(raw.encode() if img == 'image/svg+xml' else base64.b64decode(raw))
            alt = _text(data.get('text/plain', 'figure')).strip().replace('[', '(').replace(']', ')').replace('\n', ' ')
            meta = (o.get('metadata') or {}).get(img, {}) or {}
            size = f"{{width={meta['width']}}}" if isinstance(meta, dict) and meta.get('width') else ''
            res.append(_div('.cell-output .cell-output-display', f"![{alt[:80]}]({PAGE}figures/{name}){size}"))
        elif 'text/markdown' in data:
            md = _text(data['text/markdown']).strip()
            res.append(md if asis else _div('.cell-output .cell-output-markdown', md))
        elif 'text/html' in data:
            res.append(_div('.cell-output .cell-output-display', _fence(_text(data['text/html']), '{=html}')))
        elif 'text/latex' in data:
            res.append(_div('.cell-output .cell-output-display', _text(data['text/latex'])))
        elif 'text/plain' in data:
            txt = _ANSI.sub('', _text(data['text/plain']))
            res.append(txt if asis else _div('.cell-output .cell-output-result', _fence(txt)))
    def kind(x): return 'error' if 'Traceback (most recent call last)' in x[1] else 'stderr' if x[0] == 'stderr' else 'stdout'
    return [x if isinstance(x, str) else _div(f'.cell-output .cell-output-{kind(x)}', _fence(x[1])) for x in res]


def fallback_doc(body: str, module: str | None) -> str | None:
    "A plain API entry (name, signature, docstring) for a `show_doc(name)` cell whose show_doc failed."
    m = re.fullmatch(r'\s*show_doc\(\s*([\w.]+)\s*\)\s*', body)
    if not (m and module): return None
    import importlib, inspect
    try:
        obj = importlib.import_module(module)
        for part in m.group(1).split('.'): obj = getattr(obj, part)
    except Exception: return None
    class _Short:
        def __init__(self, r): self.r = r
        def __repr__(self): return self.r
    try:
        sg = inspect.signature(obj)
        sg = sg.replace(parameters=[q.replace(default=_Short(' '.join(repr(q.default).split())[:30] + '…'))
                                    if q.default is not q.empty and len(' '.join(repr(q.default).split())) > 40 else q
                                    for q in sg.parameters.values()])
        sig = str(sg)
    except (TypeError, ValueError): sig = ''
    doc = (inspect.getdoc(obj) or '').strip().split('\n\n')[0]
    return f"---\n\n### {m.group(1)}\n\n{_fence(m.group(1) + sig, 'python')}\n\n" + (f"*{doc}*" if doc else '')


def notebook_md(nb, page: dict, fig_dir: Path, module: str | None = None) -> str:
    blocks, counter = [], [0]
    for c in nb.cells:
        src = c.source if isinstance(c.source, str) else ''.join(c.source)
        if c.cell_type == 'markdown':
            if src.strip() and '<!-- WARNING: THIS FILE WAS AUTOGENERATED' not in src: blocks.append(src.strip('\n'))
        elif c.cell_type == 'raw':
            fmt = (c.get('metadata') or {}).get('format', '') or (c.get('metadata') or {}).get('raw_mimetype', '')
            if src.lstrip().startswith('---'): continue          # front matter
            if 'html' in fmt: blocks.append(_fence(src, '{=html}'))
        elif c.cell_type == 'code':
            direc, body = split_directives(src)
            if 'hide' in direc or is_false(direc, 'include'): continue
            parts = []
            outs = c.get('outputs', [])
            if 'show_doc(' in body and not any('text/markdown' in (o.get('data') or {}) for o in outs):
                fb = fallback_doc(body, module)
                if fb:
                    log(f"{page['rel']}: nbdev's {body.strip()} failed; a plain entry is shown instead")
                    blocks.append(fb); continue
            if body.strip() and not is_false(direc, 'echo'): parts.append(_fence(body, '{.python .cell-code}'))
            if not is_false(direc, 'output'):
                parts += outputs_md(outs, page, fig_dir, counter, direc.get('output') == 'asis')
            if parts: blocks.append(_div('.cell', '\n\n'.join(parts)))
    return '\n\n'.join(blocks) + '\n'


# ---------------------------------------------------------------- 4. links and pandoc

class Linker:
    "Rewrites a page's relative URLs: notebooks -> their pages, files in nbs/ -> copied, repo files -> GitHub."
    def __init__(self, pages: list[dict], out: Path, cfg: dict):
        self.by_src = {(NBS/p['rel']).resolve(): p for p in pages}
        self.out, self.cfg = out, cfg
        self.repo = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}/"
        host = cfg.get('doc_host', '').rstrip('/')
        self.site = f"{host}{cfg.get('doc_baseurl', '').rstrip('/')}/" if host else ''
        self.outs = {p['out'] for p in pages}

    def __call__(self, url: str, page: dict) -> str:
        if url.startswith(PAGE): return url[len(PAGE):]
        if self.site and url.startswith(self.site):     # nbdev's links to the published docs -> this site
            path, _, frag = url[len(self.site):].partition('#')
            path = path or 'index.html'
            if path in self.outs:
                return posixpath.relpath(path, posixpath.dirname(page['out']) or '.') + (f'#{frag}' if frag else '')
        if not url or re.match(r'^([a-z][a-z0-9+.-]*:|#|//)', url, re.I): return url
        path, hashmark, frag = url.partition('#')
        path, _, query = path.partition('?')
        base = (NBS/page['rel']).parent
        target = (NBS/path.lstrip('/')) if path.startswith('/') else (base/path)
        target = Path(os.path.normpath(target))
        page_dir = posixpath.dirname(page['out'])
        tail = (f'#{frag}' if hashmark else '')
        if target.resolve() in self.by_src:
            return posixpath.relpath(self.by_src[target.resolve()]['out'], page_dir or '.') + tail
        try: in_nbs = target.resolve().relative_to(NBS.resolve())
        except ValueError: in_nbs = None
        if in_nbs is not None and target.is_file():
            dst = self.out/in_nbs
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists(): shutil.copy2(target, dst)
            return posixpath.relpath(in_nbs.as_posix(), page_dir or '.') + tail
        try: in_repo = target.resolve().relative_to(ROOT.resolve())
        except ValueError: in_repo = None
        if in_repo is not None and target.exists() and self.cfg.get('git_url'):
            return self.repo + in_repo.as_posix() + tail
        return url   # left as written: the link check of tests/test_docs.py reports it


_RAW_URL = re.compile(r'''((?:href|src)\s*=\s*["'])([^"']*)(["'])''', re.I)


def _stringify(inlines) -> str:
    out = []
    for x in inlines:
        t, c = x.get('t'), x.get('c')
        if t == 'Str': out.append(c)
        elif t in ('Space', 'SoftBreak', 'LineBreak'): out.append(' ')
        elif t in ('Code', 'Math'): out.append(c[1])
        elif t in ('Emph', 'Strong', 'Strikeout', 'Superscript', 'Subscript', 'SmallCaps', 'Underline'): out.append(_stringify(c))
        elif t in ('Link', 'Span', 'Quoted', 'Cite'): out.append(_stringify(c[1]))
    return ''.join(out)


def header_ids(blocks) -> None:
    "Pandoc's (and Quarto's) identifiers on headings without one: `ClusterCAM.cams` -> `clustercam.cams`, as nbdev links them."
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get('t') == 'Header':
                attr = node['c'][1]
                if attr[0]: seen.add(attr[0])
                else:
                    s = re.sub(r'[^\w\s.-]', '', _stringify(node['c'][2]), flags=re.U).strip().lower()
                    s = re.sub(r'\s+', '-', s)
                    s = re.sub(r'^[^a-z]+', '', s) or 'section'
                    base, i = s, 0
                    while s in seen: i += 1; s = f'{base}-{i}'
                    seen.add(s); attr[0] = s
            for v in node.values(): walk(v)
        elif isinstance(node, list):
            for v in node: walk(v)
    walk(blocks)


def fix_ast(node, fix):
    "Walk pandoc's JSON AST, rewriting Link/Image targets and URLs in raw HTML."
    if isinstance(node, dict):
        t = node.get('t')
        if t in ('Link', 'Image'):
            node['c'][2][0] = fix(node['c'][2][0])
        elif t in ('RawBlock', 'RawInline') and node['c'][0] == 'html':
            node['c'][1] = _RAW_URL.sub(lambda m: m.group(1) + fix(html.unescape(m.group(2))) + m.group(3), node['c'][1])
        for v in node.values(): fix_ast(v, fix)
    elif isinstance(node, list):
        for v in node: fix_ast(v, fix)


def pandoc(args: list[str], text: str) -> str:
    r = subprocess.run(['pandoc', *args], input=text, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"pandoc {' '.join(args[:4])}... failed: {r.stderr.strip()}")
    return r.stdout


def nav_html(pages: list[dict], current: dict, root: str, title: str) -> str:
    esc = html.escape
    out = ['<div class="site-title">Chapters</div>', '<ul class="chapters">']
    section = None
    for p in pages:
        if p['section'] != section:
            if section is not None: out.append('</ul></li>')
            section = p['section']
            if section is not None:
                out.append(f'<li class="section"><span class="section-title">{esc(section.replace("_", " ").capitalize())}</span><ul>')
        num = re.match(r'^(\d+)_', Path(p['rel']).name)
        label = 'Home' if p['rel'] == 'index.ipynb' else p['title']
        cls = ' class="active" aria-current="page"' if p is current else ''
        numhtml = f'<span class="num">{num.group(1)}</span>' if num else ''
        out.append(f'<li><a href="{root}{p["out"]}"{cls}>{numhtml}<span class="label">{esc(label)}</span></a></li>')
    if section is not None: out.append('</ul></li>')
    out.append('</ul>')
    return '\n'.join(out)


def prevnext_html(pages: list[dict], i: int, root: str) -> str:
    esc, parts = html.escape, []
    if i > 0:
        p = pages[i - 1]
        parts.append(f'<a class="prev" href="{root}{p["out"]}"><span class="dir">&larr; Previous</span>'
                     f'<span class="t">{esc("Home" if p["rel"] == "index.ipynb" else p["title"])}</span></a>')
    else: parts.append('<span></span>')
    if i + 1 < len(pages):
        p = pages[i + 1]
        parts.append(f'<a class="next" href="{root}{p["out"]}"><span class="dir">Next &rarr;</span>'
                     f'<span class="t">{esc(p["title"])}</span></a>')
    return '\n'.join(parts)


def render_page(pages, i, nb, warning, out: Path, linker: Linker, cfg: dict) -> None:
    page = pages[i]
    fm = getattr(nb, 'frontmatter_', None) or {}
    title = str(fm.get('title') or page['title'])
    desc = str(fm.get('description') or page['desc'] or '')
    depth = page['out'].count('/')
    root = '../' * depth
    dest = out/page['out']
    dest.parent.mkdir(parents=True, exist_ok=True)
    exp = next((split_directives(c['source'])[0].get('default_exp') for c in read_json(NBS/page['rel']).get('cells', [])
                if c['cell_type'] == 'code' and 'default_exp' in split_directives(c['source'])[0]), None)
    module = f"{cfg.get('lib_name', 'clustercam')}.{exp.strip()}" if exp else None
    md = notebook_md(nb, page, dest.parent/'figures', module)
    if warning: md = _div('.callout-warning', html.escape(warning)) + '\n\n' + md
    ast = json.loads(pandoc(['-f', MD_FORMAT, '-t', 'json'], md))
    header_ids(ast['blocks'])
    fix_ast(ast['blocks'], lambda u: linker(u, page))
    is_home = page['rel'] == 'index.ipynb'
    src_url = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}/nbs/{page['rel']}"
    site = quarto_html()
    args = ['-f', 'json', '-t', 'html5', '--standalone', '--template', str(SITE/'template.html'),
            '--mathml', '--toc-depth=3', '--highlight-style=pygments', *(['--toc'] if site['toc'] else []),
            *[a for css in site['css'] for a in ('-V', f'css={css}')],
            '-M', f"title={title}", '-M', f"pagetitle={title if is_home else title + ' – ' + cfg.get('title', '')}",
            '-V', f"root={root}", '-V', f"site-title={cfg.get('title', '')}",
            '-V', f"nav={nav_html(pages, page, root, cfg.get('title', ''))}",
            '-V', f"prevnext={prevnext_html(pages, i, root)}",
            '-V', f"source-url={src_url}", '-V', f"repo-url={cfg.get('git_url', '')}",
            '-V', f"lang={'en'}"]
    if desc: args += ['-M', f"description={desc}"]
    if is_home: args += ['-V', 'home=1']
    dest.write_text(pandoc(args, json.dumps(ast)), encoding='utf-8')


# ---------------------------------------------------------------- 5. the site

def render(out: Path, do_exec: bool, jobs: int) -> list[dict]:
    for tool in ('pandoc',):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed: `apt-get install -y pandoc` (or `bash tools/install_docs_deps.sh`)")
    t0 = time.time()
    cfg = config()
    pages = chapters()
    if not pages: raise SystemExit(f"no notebooks in {NBS}")
    sources = execute_all(pages, jobs) if do_exec else {p['rel']: NBS/p['rel'] for p in pages}
    sys.path.insert(0, str(ROOT))
    new = out.with_name(out.name + '.new')
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    linker = Linker(pages, new, cfg)
    # processed notebooks: _proc/ beside _docs/ as nbdev_proc_nbs writes them; OUT_proc/ for other outputs
    proc_dir = PROC if out == (ROOT/'_docs').resolve() else out.with_name(out.name + '_proc')
    processed = {}
    for p in pages:
        t = time.time()
        processed[p['rel']] = process(p['rel'], sources[p['rel']], proc_dir)
        log(f"processed {p['rel']} ({time.time() - t:.1f}s)")
    for i, p in enumerate(pages):
        nb, warning = processed[p['rel']]
        render_page(pages, i, nb, warning, new, linker, cfg)
    for css in quarto_html()['css']:   # the stylesheets _quarto.yml names, from nbs/ as Quarto finds them
        (new/css).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(NBS/css, new/css)
    shutil.copy2(SITE/'site.css', new/'site.css')
    (new/'.nojekyll').touch()
    old = out.with_name(out.name + '.old')
    shutil.rmtree(old, ignore_errors=True)
    if out.exists(): out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    log(f"rendered {len(pages)} page(s) into {out} in {time.time() - t0:.0f}s")
    return pages


def chromium() -> str | None:
    return shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')


def chromium_run(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    "Headless Chromium with a fresh profile, no network services; returns the finished process."
    exe = chromium()
    if not exe: raise RuntimeError('chromium is not installed: `apt-get install -y chromium` (or `bash tools/install_docs_deps.sh`)')
    with tempfile.TemporaryDirectory(prefix='chromium-profile-') as prof:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f'--user-data-dir={prof}', *args],
                              capture_output=True, text=True, timeout=timeout)


def screenshot(page: Path, png: Path, size=(1400, 1000)) -> None:
    png.unlink(missing_ok=True)
    r = chromium_run([f'--window-size={size[0]},{size[1]}', f'--screenshot={png}', page.resolve().as_uri()])
    if not png.exists(): raise RuntimeError(f"chromium made no screenshot (exit {r.returncode}): {r.stderr[-2000:]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'_docs'), help='output folder (default _docs/)')
    ap.add_argument('--exec', dest='do_exec', action=argparse.BooleanOptionalAction,
                    default=os.environ.get('DOCS_EXEC', '0') not in ('0', 'false', 'no', ''),
                    help='execute the notebooks again for their outputs and figures (default off: the stored outputs, '
                         'which `make outputs` refreshes; env DOCS_EXEC=1 turns it on)')
    ap.add_argument('--jobs', type=int, default=int(os.environ.get('DOCS_JOBS', '2')), help='notebooks executed at a time')
    ap.add_argument('--screenshot', action='store_true', help='save OUT/screenshot.png of the home page (needs chromium)')
    ap.add_argument('--exec-one', nargs=3, metavar=('SRC', 'DST', 'KEY'), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.exec_one:
        src, dst, key = args.exec_one
        return exec_one(Path(src), Path(dst), key)
    out = Path(args.out).resolve()
    render(out, args.do_exec, args.jobs)
    if args.screenshot:
        if chromium():
            screenshot(out/'index.html', out/'screenshot.png')
            log(f"screenshot: {out/'screenshot.png'}")
        else: log('chromium not installed: no screenshot')
    print(f"docs: {out/'index.html'}", flush=True)
    sys.stderr.flush()
    os._exit(0)     # everything is written; skip tearing down torch and the show_doc shells (seconds)


if __name__ == '__main__': main()
