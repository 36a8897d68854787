"""`clustercam_infer` under torchrun (two processes, gloo on the CPU): each rank predicts its shard of the
images, rank 0 gathers the confusion matrices; the table and the PNGs equal those of one process."""
import json, os, subprocess, sys
from pathlib import Path
import torch

from clustercam.model import ClusterCAM
from clustercam.synthetic import make_synthetic_voc
from clustercam.infer import clustercam_infer

ROOT = Path(__file__).resolve().parents[1]


def env():
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'): e.pop(k, None)
    return e


def test_infer_torchrun_matches_one_process(tmp_path):
    data = make_synthetic_voc(tmp_path/'data', n_train=2, n_val=5, size=64, seed=3, n_classes=3)
    torch.manual_seed(0)
    net = ClusterCAM(3, embed_dim=32, depth=2, num_heads=2, st_depth=2, patch_size=16, decoder_width=16)
    ck = tmp_path/'net.pth'; torch.save({'model': net.state_dict(), 'config': {'num_heads': 2}}, ck)
    common = ['--weights', str(ck), '--data-path', str(data), '--scales', '1.0', '1.5', '--progress', 'false', '--device', 'cpu']
    one = clustercam_infer(argv=common + ['--out', str(tmp_path/'one'), '--workers', '0'])
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2',
                        '-m', 'clustercam.infer', *common, '--out', str(tmp_path/'two')],
                       capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sum(l.startswith('mIoU') for l in r.stdout.splitlines()) == 1, r.stdout          # rank 0 alone prints the table
    a, b = (json.loads((tmp_path/d/'results.json').read_text()) for d in ('one', 'two'))
    assert (a['images'], b['images'], b['processes']) == (5, 5, 2)
    for v in ('no_crf', 'crf'):
        assert a['results'][v]['confusion'] == b['results'][v]['confusion'], v
    assert abs(one.miou('crf') - b['results']['crf']['miou']) < 1e-12
    for v in ('no_crf', 'crf'):
        assert sorted(p.name for p in (tmp_path/'two'/v/'raw').glob('*.png')) == sorted(p.name for p in (tmp_path/'one'/v/'raw').glob('*.png'))
