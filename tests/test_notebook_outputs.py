"""The notebooks are committed with their outputs (`make outputs`, tools/run_notebooks.py), as nbdev's own are:
the chapters show their figures on GitHub and on the site without being run again. What is stored must be
what any rerun stores: no memory addresses, machine paths or timings, no execution counts, nothing in cells
the test runner skips (`notest`, `slow`)."""
import base64, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if not any(s.startswith(('.', '_')) for s in p.relative_to(ROOT/'nbs').parts))
# the chapters whose idea needs a picture: model (10-13), labels and losses (20-23), inference, CAMs, figures (40-42)
FIGURE_CHAPTERS = tuple(f'{n:02d}_' for n in (10, 11, 12, 13, 20, 21, 22, 23, 40, 41, 42))
VOLATILE = {
    'a memory address': re.compile(r'0x[0-9a-fA-F]{6,}'),
    'a temporary path': re.compile(r'/tmp/|/var/folders/|\\Temp\\'),
    'a path of this machine': re.compile(r'/work/|/home/|/root/|/Users/'),
    'a duration': re.compile(r'(?<![\w.])\d+(\.\d+)?\s?(ms|s|sec|secs|seconds|it/s|s/it)\b(?![-\w])|\b\d+:\d\d:\d\d\b'),
}
MAX_BYTES = 1_000_000   # stored outputs of one notebook (all notebooks together stay under a few MB)


def cells(path):
    return json.loads(path.read_text(encoding='utf-8'))['cells']


def text_of(output) -> str:
    "The text a reader sees of one output (streams, text reprs, HTML, errors); images excluded."
    parts = [output.get('text', '')] + [v for k, v in output.get('data', {}).items() if k.startswith('text/')]
    parts += [output.get('evalue', '')] + output.get('traceback', [])
    return ''.join(''.join(p) if isinstance(p, list) else str(p) for p in parts)


def images(path) -> list[str]:
    return [k for c in cells(path) for o in c.get('outputs', []) for k in o.get('data', {}) if k in ('image/png', 'image/svg+xml')]


def flags(src: str) -> set:
    return {w for line in src.splitlines() if line.startswith('#|') for w in line[2:].split()}


@pytest.mark.parametrize('path', [p for p in NBS if p.name.startswith(FIGURE_CHAPTERS)], ids=lambda p: p.name)
def test_chapter_shows_a_figure(path):
    assert images(path), f"{path.name}: no stored figure; add one and run `make outputs NB=nbs/{path.name}`"


@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_outputs_are_clean(path):
    bad, size = [], 0
    for i, c in enumerate(cells(path)):
        if c.get('execution_count') is not None: bad.append(f'cell {i}: execution_count {c["execution_count"]} (run nbdev_clean)')
        outs = c.get('outputs', [])
        if outs and flags(''.join(c['source'])) & {'notest', 'slow'}: bad.append(f'cell {i}: a notest/slow cell with stored output')
        for o in outs:
            if o.get('execution_count') is not None: bad.append(f'cell {i}: output with an execution_count (run nbdev_clean)')
            if o.get('output_type') == 'error': bad.append(f'cell {i}: a stored error: {o.get("ename")}')
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr': bad.append(f'cell {i}: stored stderr')
            text = text_of(o)
            for what, rx in VOLATILE.items():
                m = rx.search(text)
                if m: bad.append(f'cell {i}: {what} in the output: ...{text[max(0, m.start() - 40):m.end() + 20]!r}...')
            size += sum(len(''.join(v) if isinstance(v, list) else str(v)) for v in o.get('data', {}).values()) + len(text)
    assert size <= MAX_BYTES, f"{path.name}: {size} bytes of stored output (> {MAX_BYTES}); smaller figures (figsize, dpi)"
    assert not bad, f"{path.name}: " + '\n'.join(bad[:20])


def test_png_outputs_are_pngs():
    for path in NBS:
        for c in cells(path):
            for o in c.get('outputs', []):
                png = o.get('data', {}).get('image/png')
                if png: assert base64.b64decode(''.join(png))[:8] == b'\x89PNG\r\n\x1a\n', path.name
