"""Two processes (torchrun, gloo on the CPU) with batch 2 (or 1, accumulated over 2 micro-batches) end with the
weights of one process with batch 4.

Both phases are covered (an epoch without and an epoch with pseudo labels) and augmentation stays on
(it is seeded per sample, so the two ranks see exactly the global batches of the single process).
Stochastic depth is off: each rank has its own random stream for it, so it could not match."""
import json, os, subprocess, sys
import pytest
from pathlib import Path
import torch

from clustercam.synthetic import make_synthetic_voc
from clustercam.train import train

ROOT = Path(__file__).resolve().parents[1]
COMMON = dict(epochs=2, seg_start_epoch=1, warmup_epochs=1, input_size=64, embed_dim=48, depth=2, num_heads=2, st_depth=2,
              decoder_width=32, drop_path=0.0, num_workers=0, progress=False, save_epochs=False, log_every=1,
              device='cpu', lr=0.005)


def argv(**kw):
    "Command-line options for `kw`, spelled with dashes."
    out = []
    for k, v in kw.items(): out += [f"--{k.replace('_', '-')}", str(v).lower() if isinstance(v, bool) else str(v)]
    return out


def env():
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'): e.pop(k, None)
    return e


def epochs_of(d: Path) -> list:
    return [r for r in map(json.loads, (d/'metrics.jsonl').read_text().splitlines()) if r['kind'] == 'epoch']


@pytest.mark.parametrize('batch_size,accum_steps', [(2, 1), (1, 2)])   # 2 x 2, and 2 x 1 x 2 micro-batches (no_sync)
def test_ddp_two_processes_match_one(tmp_path, batch_size, accum_steps):
    data = make_synthetic_voc(tmp_path/'data', n_train=16, n_val=4, size=64, seed=0)
    one, two = tmp_path/'one', tmp_path/'two'
    train(data_path=str(data), output_dir=str(one), batch_size=4, **COMMON)       # one process, in this one
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2',
                        '-m', 'clustercam.train', *argv(data_path=data, output_dir=two, batch_size=batch_size, accum_steps=accum_steps, **COMMON)],
                       capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    c1, c2 = (json.loads((d/'config.json').read_text()) for d in (one, two))
    assert (c1['world_size'], c2['world_size']) == (1, 2)
    assert c1['global_batch'] == c2['global_batch'] == 4 and c1['lr_scaled'] == c2['lr_scaled']
    a, b = (torch.load(d/'checkpoint_last.pth', map_location='cpu', weights_only=False) for d in (one, two))
    assert a['step'] == b['step'] == 8 and len(b['rng']) == 2
    diff = max((a['model'][k] - b['model'][k]).abs().max().item() for k in a['model'])
    print(f'max |weight difference|, one process vs two, after 8 steps: {diff:.3g}')
    assert diff <= 1e-5, diff
    # the logged epoch losses (reduced over the ranks) and the validation metrics (gathered) agree too
    e1, e2 = epochs_of(one), epochs_of(two)
    assert len(e1) == len(e2) == 2 and e1[1]['seg'] > 0 and e1[1]['val_miou'] is not None
    for x, y in zip(e1, e2):
        for k in ('loss', 'cls', 'pat', 'seg', 'val_map', 'val_map_classes'): assert abs(x[k] - y[k]) < 1e-5, (k, x[k], y[k])
    assert abs(e1[1]['val_miou'] - e2[1]['val_miou']) < 1e-4
