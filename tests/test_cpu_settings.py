"""The numeric chapters again under CPU settings other than the default, so that no test can come to depend on
the last bits of one BLAS on one instruction set unseen.

MKL picks its code path by CPU (`MKL_CBWR=COMPATIBLE` forces its most portable one) and ATen picks the vector
width of its own kernels (`ATEN_CPU_CAPABILITY=default`: none); both move results in the last bits. The tolerances
of the reference tests come from the spread over eight such settings (`tools/fixture_spread.py`, the table in
chapter 13_model). The chapters run in a subprocess, since both variables are read when torch loads."""
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = ['nbs/10_backbone.ipynb', 'nbs/11_clustering.ipynb', 'nbs/12_class_attention.ipynb', 'nbs/13_model.ipynb',
           'nbs/14_fastpaths.ipynb', 'nbs/20_refine.ipynb', 'nbs/21_losses.ipynb', 'nbs/22_metrics.ipynb',
           'nbs/23_crf.ipynb', 'tests/test_precision.py']
SETTING = {'MKL_CBWR': 'COMPATIBLE', 'ATEN_CPU_CAPABILITY': 'default'}


def test_numeric_chapters_under_another_cpu_setting():
    env = {**os.environ, **SETTING, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    run = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-x', *NUMERIC],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # keep the parent's closing `N passed, N failed` line the only one of its kind
    log = re.sub(r'(?m)^(\d+) passed, (\d+) failed', r'(subprocess) \1 passed, \2 failed', run.stdout + run.stderr)
    assert run.returncode == 0, f"under {SETTING}:\n{log[-6000:]}"
