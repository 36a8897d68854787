"""tools/run_notebooks.py (`make outputs`) on a scratch notebook: nbdev_test's skip rules, no stale or volatile
output, nbdev-clean result, a rerun that changes nothing, and a failing notebook left as it was."""
import base64, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT/'tools'/'run_notebooks.py'
CELLS = [('markdown', '# Scratch\n\n> a notebook for the tool'),
         ('code', "print('shown')"),
         ('code', "#| notest\nprint('skipped: notest')"),
         ('code', "#| eval: false\nprint('skipped: eval false')"),
         ('code', 'import matplotlib.pyplot as plt\nimport warnings, tempfile'),
         ('code', 'plt.plot([0, 1, 4]); plt.show()'),
         ('code', "warnings.warn('to stderr, not stored')"),
         ('code', 'class Thing: pass\nThing()'),
         ('code', 'import numpy as np, torch, random\nprint(np.random.rand(), torch.rand(1).item(), random.random())'),
         ('code', "print(tempfile.mkdtemp())"),
         ('code', "print('done in 0.29 s, 96.5 img/s, 3 images')"),
         ('code', "#| output: false\nprint('a timing table')"),
         ('code', '#| hide\nimport nbdev; nbdev.nbdev_export()')]


def scratch(path: Path, cells=CELLS) -> Path:
    nb = {'cells': [{'cell_type': t, 'id': f'{i:08x}', 'metadata': {'tags': ['x']}, 'source': s.splitlines(True),
                     **({'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['stale\n']}], 'execution_count': 7}
                        if t == 'code' else {})} for i, (t, s) in enumerate(cells)],
          'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}, 'widgets': {}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb, indent=1))
    return path


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_outputs_stored_clean_and_stable(tmp_path):
    nb = scratch(tmp_path/'scratch.ipynb')
    r = run(nb)
    assert r.returncode == 0 and 'scratch.ipynb: changed' in r.stdout, r.stdout + r.stderr
    cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    outs = [c['outputs'] for c in cells]
    text = lambda o: ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
    assert [text(o) for o in outs[0]] == ['shown\n']
    assert outs[1] == outs[2] == [] and outs[3] == [] and outs[5] == []   # skipped, nothing printed
    png = outs[4][0]['data']['image/png']
    assert base64.b64decode(''.join(png))[:4] == b'\x89PNG'
    assert text(outs[6][0]) == '<__main__.Thing>'                            # nbdev_clean's id removal
    assert text(outs[7][0]).split()[0] == '0.5488135039273248'               # numpy seeded with 0
    assert text(outs[8][0]).strip() == '<tmp>'                               # temporary folders scrubbed
    assert text(outs[9][0]) == 'done in … s, … img/s, 3 images\n'          # durations scrubbed, counts kept
    assert outs[10] == [] and outs[11] == []                                  # `output: false` runs, keeps nothing; export
    assert all(c['execution_count'] is None and c['metadata'] == {} for c in cells)
    assert not any(o.get('name') == 'stderr' for c in cells for o in c['outputs'])
    first = nb.read_bytes()
    r = run(nb, '--check')
    assert r.returncode == 0 and 'scratch.ipynb: unchanged' in r.stdout, r.stdout + r.stderr
    assert nb.read_bytes() == first
    # nbdev_clean leaves the result as it is
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(nb)], cwd=ROOT, check=True, capture_output=True)
    assert nb.read_bytes() == first


def test_failing_notebook_left_alone(tmp_path):
    nb = scratch(tmp_path/'broken.ipynb', [CELLS[0], ('code', "print('before')"), ('code', '1 / 0')])
    before = nb.read_bytes()
    r = run(nb)
    assert r.returncode == 1 and 'broken.ipynb: failed' in r.stdout and 'ZeroDivisionError' in r.stdout, r.stdout
    assert 'While Executing Cell #' in r.stdout
    assert nb.read_bytes() == before and not list(tmp_path.glob('.*.run.ipynb'))
    r = run(tmp_path/'missing.ipynb')
    assert r.returncode != 0 and 'missing.ipynb is not a notebook' in r.stderr
