"""Execute notebooks in place and store their outputs (figures, tables, printed values), as nbdev's own
notebooks are committed; `make outputs` runs it.

    python tools/run_notebooks.py                          # every notebook in nbs/ (subfolders too)
    python tools/run_notebooks.py nbs/21_losses.ipynb ...  # only these
    python tools/run_notebooks.py --check                  # run, and exit 1 if a stored notebook would change
    python tools/run_notebooks.py --jobs 2                 # two notebooks at a time

Each notebook runs in a process of its own through nbdev's machinery (execnb's `CaptureShell`, as
`nbdev_test` runs it): cells flagged with settings.ini's `tst_flags` (`notest`, `slow`), `eval: false`
cells and the `nbdev_export()` cell are skipped and carry no output; cells with Quarto's `#| output: false`
(timings and throughputs, which change on every run) run but keep no output. A notebook that raises is left
as it was (the tool reports the cell and exits 1). The executed notebook then goes through
`nbdev_clean` (execution counts and volatile metadata dropped, `<... at 0x...>` ids removed) and is
written only when it differs from the stored one.

Deterministic, so that a rerun changes nothing:
- one thread (`OMP_NUM_THREADS=1`, `MKL_NUM_THREADS=1`, `torch.set_num_threads(1)`), `PYTHONHASHSEED=0`,
  and `random`, `numpy` and `torch` seeded with 0 before the first cell;
- figures as plain PNG at 72 dpi (not 'retina') without the `Software` metadata, so the bytes depend on
  the pixels only; then re-encoded with 256 colours (no dithering) where that is smaller (PIL, deterministic);
- stderr is not stored (warnings carry absolute paths of the machine; progress bars carry times);
- in text outputs, temporary folders (`tempfile.mkdtemp`'s) read `<tmp>` and this checkout `<repo>`.
What a notebook prints is its own business: no timings, temporary paths or memory addresses in outputs
(`tests/test_notebook_outputs.py` checks the stored notebooks).
"""
from __future__ import annotations
import argparse, concurrent.futures as cf, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
ENV = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'PYTHONHASHSEED': '0'}
SETUP = """\
import random as _r, numpy as _np, torch as _t, matplotlib as _mpl
from matplotlib_inline.backend_inline import set_matplotlib_formats as _fmt
_r.seed(0); _np.random.seed(0); _t.manual_seed(0); _t.set_num_threads(1)
_fmt('png', metadata={'Software': None})
_mpl.rcParams.update({'figure.dpi': 72, 'savefig.dpi': 72})
del _r, _np, _t, _mpl, _fmt
"""


def notebooks(args: list[str]) -> list[Path]:
    "The notebooks named in `args` (files or folders), or every notebook of nbs/ (none in folders starting with . or _)."
    paths = [Path(a) for a in args] or [NBS]
    out = []
    for p in paths:
        p = p if p.is_absolute() else Path.cwd()/p
        if p.is_dir(): out += sorted(q for q in p.rglob('*.ipynb') if not any(s.startswith(('.', '_')) for s in q.relative_to(p).parts))
        elif p.suffix == '.ipynb' and p.is_file(): out.append(p)
        else: raise SystemExit(f"run_notebooks: {p} is not a notebook or a folder")
    return out


def skip_flags() -> set[str]:
    from nbdev.config import get_config
    return set(str(get_config().get('tst_flags', '')).split())


def small_png(b64: str) -> str:
    "The PNG `b64` (base64) re-encoded smaller: 256 colours without dithering when it saves bytes, zlib at its best."
    import base64, io
    from PIL import Image
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw)); im.load()
    best = raw
    rgb = im.convert('RGBA' if 'A' in im.getbands() else 'RGB')
    pal = rgb.quantize(256, method=Image.Quantize.FASTOCTREE if rgb.mode == 'RGBA' else Image.Quantize.MEDIANCUT,
                       dither=Image.Dither.NONE)
    for cand in (rgb, pal):
        buf = io.BytesIO(); cand.save(buf, format='PNG', optimize=True)
        if len(buf.getvalue()) < len(best): best = buf.getvalue()
    return base64.b64encode(best).decode() + '\n'


def scrub(text: str) -> str:
    "What differs from run to run or machine to machine: temporary folders -> `<tmp>`, this checkout -> `<repo>`, durations -> `…`."
    import re, tempfile
    for tmp in {tempfile.gettempdir(), '/tmp'}:
        text = re.sub(re.escape(tmp.rstrip('/')) + r'/tmp[A-Za-z0-9_]{6,}', '<tmp>', text)   # tempfile.mkdtemp's folders
    text = text.replace(str(ROOT), '<repo>')
    # wall-clock figures (a command's "in 0.29 s", a bench's "12 img/s") differ on every run: stored as `…`
    text = re.sub(r'(?<![\w.])\d+(\.\d+)?(\s?)(ms|s|sec|secs|seconds|it/s|s/it|img/s)\b(?![-\w])', r'…\2\3', text)
    return re.sub(r'\b\d+:\d\d:\d\d\b', '…', text)


def _scrub_output(o: dict) -> dict:
    if 'text' in o: o['text'] = [scrub(t) for t in o['text']] if isinstance(o['text'], list) else scrub(o['text'])
    for k, v in o.get('data', {}).items():
        if k.startswith('text/'): o['data'][k] = [scrub(t) for t in v] if isinstance(v, list) else scrub(v)
    return o


def execute(src: Path) -> dict:
    "Run one notebook as `nbdev_test` does; the stored notebook with the new outputs, cleaned, as a dict (in its own process)."
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    sys.path.insert(0, str(ROOT))
    os.environ['IN_TEST'] = '1'
    flags = skip_flags()
    # nbdev_test's view of the notebook: directives parsed and removed, front matter read
    nb = NBProcessor(src, procs=FrontmatterProc, process=True).nb

    def skip(cell):
        if cell.cell_type != 'code' or 'nbdev_export(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & direc.keys())

    for c in nb.cells:
        if c.cell_type == 'code': c.outputs = []   # execnb leaves a cell's old outputs when it prints nothing
    shell = CaptureShell(src, mpl_format='png')
    shell.run_cell(SETUP)
    try:
        with working_directory(src.parent): shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception: raise SystemExit(shell.prettytb(fname=src))   # the cell and its traceback, as nbdev_test prints them
    # the outputs go into the notebook as stored (its code cells in the same order; skipped cells get none)
    stored = json.loads(src.read_text(encoding='utf-8'))
    ran, code = [c for c in nb.cells if c.cell_type == 'code'], [c for c in stored['cells'] if c['cell_type'] == 'code']
    if len(ran) != len(code): raise RuntimeError(f"{src}: {len(ran)} code cells executed, {len(code)} stored")
    for r, c in zip(ran, code):
        # `#| output: false` (Quarto's own directive): the cell runs, its output is not kept (measurements)
        hidden = (getattr(r, 'directives_', {}) or {}).get('output:', [''])[0].lower() == 'false'
        outs = [] if skip(r) or hidden else json.loads(json.dumps(r.get('outputs', [])))
        c['outputs'] = [_scrub_output(o) for o in outs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
        for o in c['outputs']:
            if 'image/png' in o.get('data', {}): o['data']['image/png'] = small_png(o['data']['image/png'])
    cfg = get_config()
    clean_nb(stored, False, cfg.get('allowed_metadata_keys', '').split(), cfg.get('allowed_cell_metadata_keys', '').split(),
             cfg.get('clean_ids', True))
    return stored


def _one(src: Path, dst: Path) -> None:
    "Child process: execute `src`, write the cleaned result to `dst` (a scratch file)."
    from execnb.nbio import write_nb, dict2nb
    write_nb(dict2nb(execute(src)), dst)   # as nbdev_clean writes


def run(path: Path, check: bool = False, timeout: int = 900) -> tuple[str, float]:
    "Execute `path` in a child process; returns (status, seconds) with status 'changed', 'unchanged' or 'failed: ...'."
    scratch = path.with_name(f'.{path.stem}.run.ipynb')
    t0 = time.time()
    try:
        r = subprocess.run([sys.executable, __file__, '--one', str(path), str(scratch)], cwd=ROOT, capture_output=True,
                           text=True, timeout=timeout, env={**os.environ, **ENV, 'PYTHONPATH': os.pathsep.join(
                               [str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])})
        if r.returncode:
            lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
            tail = [l for l in lines[:-8] if l.startswith('While Executing')] + lines[-8:]
            return 'failed:\n    ' + '\n    '.join(tail), time.time() - t0
        new, old = scratch.read_bytes(), path.read_bytes()
        if new == old: return 'unchanged', time.time() - t0
        if not check: os.replace(scratch, path)
        return 'changed', time.time() - t0
    except subprocess.TimeoutExpired: return f'failed: timed out after {timeout}s', time.time() - t0
    finally: scratch.unlink(missing_ok=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks or folders (default: nbs/)')
    ap.add_argument('--check', action='store_true', help='write nothing; exit 1 if a notebook would change or fails')
    ap.add_argument('--timeout', type=int, default=900, help='seconds per notebook')
    ap.add_argument('--jobs', type=int, default=1, help='notebooks run at a time (each on one thread)')
    ap.add_argument('--one', nargs=2, metavar=('SRC', 'DST'), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one: _one(Path(a.one[0]), Path(a.one[1])); return 0
    nbs = notebooks(a.notebooks)
    counts = {'changed': 0, 'unchanged': 0, 'failed': 0}
    with cf.ThreadPoolExecutor(max(1, a.jobs)) as pool:   # each notebook runs in a process of its own
        jobs = {pool.submit(run, p, a.check, a.timeout): p for p in nbs}
        for job in cf.as_completed(jobs):
            p, (status, secs) = jobs[job], job.result()
            counts[status.split(':')[0]] += 1
            shown = 'would change' if a.check and status == 'changed' else status
            print(f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}: {shown} ({secs:.0f} s)", flush=True)
    print(f"{len(nbs)} notebook(s): {counts['changed']} {'would change' if a.check else 'changed'}, "
          f"{counts['unchanged']} unchanged, {counts['failed']} failed")
    return 1 if counts['failed'] or (a.check and counts['changed']) else 0


if __name__ == '__main__': sys.exit(main())
