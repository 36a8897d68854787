"""Shared pieces of the documentation tools: the notebook list (in nbdev's sidebar order), chapter
titles, nbdev directives, and notebook JSON I/O. Used by `make_readme.py` and `render_docs.py`.

The chapter order comes from nbdev's own `nbdev_sidebar` (the function `nbdev_docs` uses to write
`nbs/sidebar.yml` under Quarto), so the Quarto site and the local render list the same pages in
the same order.
"""
from __future__ import annotations
import configparser, contextlib, io, json, os, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
SIDEBAR = NBS/'sidebar.yml'
DOC_EXTS = ('.ipynb',)   # pages of the site (nbdev also accepts .qmd; the project has none)


def config() -> dict:
    "settings.ini's [DEFAULT] section as a dict."
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(ROOT/'settings.ini')
    return dict(cp['DEFAULT'])


QUARTO = ROOT/'_quarto.yml'   # the site's Quarto configuration (nbs/_quarto.yml links to it for nbdev_docs)


def quarto_html() -> dict:
    "The `format: html:` options of `_quarto.yml` that the local render honours: `css` (a list, paths under nbs/) and `toc`."
    import yaml
    html = ((yaml.safe_load(QUARTO.read_text()) or {}).get('format') or {}).get('html') or {}
    css = html.get('css') or []
    return {'css': [css] if isinstance(css, str) else list(css), 'toc': bool(html.get('toc', True))}


@contextlib.contextmanager
def in_root():
    "nbdev finds settings.ini from the working directory: run nbdev calls from the repository root."
    old = os.getcwd()
    os.chdir(ROOT)
    try: yield
    finally: os.chdir(old)


def sidebar_yaml() -> str:
    "The `sidebar.yml` text nbdev would write for the notebooks in nbs/ (its own `nbdev_sidebar`)."
    from nbdev.quarto import nbdev_sidebar
    buf = io.StringIO()
    with in_root(), contextlib.redirect_stdout(buf):
        nbdev_sidebar.__wrapped__(path=NBS, printit=True, force=True)
    return buf.getvalue().rstrip('\n') + '\n'


def sidebar_tree() -> list:
    "The sidebar's `contents`: paths relative to nbs/ (str) and sections {'section', 'contents', 'href'?}."
    import yaml
    return yaml.safe_load(sidebar_yaml())['website']['sidebar']['contents']


def flatten(tree: list) -> list[str]:
    "Every page of the sidebar tree in reading order (a section's `href` page before its contents)."
    out = []
    for item in tree:
        if isinstance(item, str): out.append(item)
        else:
            if item.get('href'): out.append(item['href'])
            out += flatten(item.get('contents', []))
    return out


def read_nb(path: Path) -> dict:
    try: nb = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: raise SystemExit(f"{path}: not a readable notebook ({e})") from None
    for c in nb.get('cells', []):
        if isinstance(c.get('source'), list): c['source'] = ''.join(c['source'])
    return nb


def write_nb(nb: dict, path: Path) -> None:
    "Write like nbdev_clean does (sorted keys, indent 1, sources as lists of lines), atomically."
    nb = json.loads(json.dumps(nb))
    for c in nb.get('cells', []):
        if isinstance(c.get('source'), str): c['source'] = c['source'].splitlines(keepends=True)
    text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n'
    tmp = Path(path).with_name(f'.{Path(path).name}.tmp')
    tmp.write_text(text, encoding='utf-8')
    os.replace(tmp, path)


_DIREC = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def split_directives(source: str) -> tuple[dict, str]:
    "nbdev/Quarto directives (`#| name: value` lines at the top of a code cell) and the rest."
    lines = source.splitlines()
    direc, i = {}, 0
    while i < len(lines):
        m = _DIREC.match(lines[i])
        if m: direc[m.group(1).lower()] = m.group(2)
        elif lines[i].strip(): break
        i += 1
    return direc, '\n'.join(lines[i:]).strip('\n')


def is_false(direc: dict, key: str) -> bool: return direc.get(key, '').strip().lower() == 'false'


def title_desc(nb: dict, fallback: str = '') -> tuple[str, str]:
    "The chapter's title (`# Title`) and one-line description (`> ...`) from its first markdown cell."
    for c in nb.get('cells', []):
        if c['cell_type'] == 'raw' and c['source'].lstrip().startswith('---'):
            import yaml
            try: fm = yaml.safe_load(c['source'].strip().strip('-')) or {}
            except yaml.YAMLError: fm = {}
            if fm.get('title'): return str(fm['title']), str(fm.get('description', '') or '')
        if c['cell_type'] != 'markdown': continue
        title = desc = ''
        for line in c['source'].splitlines():
            if not title and line.startswith('# '): title = line[2:].strip()
            elif title and not desc and line.startswith('>'): desc = line.lstrip('>').strip()
        if title: return title, desc
        break
    return fallback, ''


def output_name(rel: str) -> str:
    "The page a notebook becomes, relative to the site root: nbdev's rule (`10_backbone.ipynb` -> `backbone.html`)."
    p = Path(rel)
    return (p.parent/(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.name.lower()))).with_suffix('.html').as_posix()


def chapters() -> list[dict]:
    "Every page in sidebar order: rel (path in nbs/), out (html page), title, desc, section."
    pages, seen = [], set()

    def walk(items, section):
        for item in items:
            if isinstance(item, str): add(item, section)
            else:
                if item.get('href'): add(item['href'], item['section'])
                walk(item.get('contents', []), item['section'])

    def add(rel, section):
        if rel in seen or not rel.endswith(DOC_EXTS): return
        seen.add(rel)
        title, desc = title_desc(read_nb(NBS/rel), fallback=Path(rel).stem)
        pages.append(dict(rel=rel, out=output_name(rel), title=title, desc=desc, section=section))

    walk(sidebar_tree(), None)
    return pages
