"""Numbers a reader can trust, end to end on a tiny run: the run folder records itself (`run.json`), every results
file carries its label (what was measured, split, images, scales, flip, CRF, which weights, the command), the weights
selected on val say so, and a run with gradient accumulation resumes exactly at an optimiser step."""
import json
import torch

from clustercam.synthetic import make_synthetic_voc
from clustercam.train import train
from test_commands import run

TINY = ['--epochs', 2, '--seg-start-epoch', 1, '--batch-size', 2, '--accum-steps', 2, '--input-size', 32, '--patch-size', 8,
        '--embed-dim', 16, '--depth', 2, '--num-heads', 2, '--st-depth', 1, '--decoder-width', 8, '--scales', 1.0,
        '--par-iters', 2, '--num-workers', 0, '--device', 'cpu', '--progress', 'false', '--warmup-epochs', 1]


def test_tiny_run_records_itself_and_labels_its_numbers(tmp_path):
    data = make_synthetic_voc(tmp_path/'data', n_train=8, n_val=2, size=64, seed=0, n_classes=3)
    out = tmp_path/'run'
    r = run('clustercam_train', '--data-path', data, '--output-dir', out, *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((out/'run.json').read_text())
    assert (rec['kind'], rec['world_size'], rec['accum_steps'], rec['global_batch'], rec['seed']) == ('train', 1, 2, 4, 0)
    assert sorted(rec['epoch_seconds']) == ['0', '1'] and all(s > 0 for s in rec['epoch_seconds'].values())
    assert rec['command'].startswith('clustercam_train --preset synthetic ') and '--accum-steps 2' in rec['command']
    assert rec['argv'][0] == '-c' or rec['argv'][1:3] == ['--data-path', str(data)]
    env = rec['environment']
    assert env['torch'] == torch.__version__ and 'cudnn' in env and 'devices' in env and 'git_commit' in env
    conf = json.loads((out/'config.json').read_text())
    assert 'no CRF' in conf['measures']['val_miou'] and 'val (2 images)' in conf['measures']['val_miou']

    for weights, expected in (('checkpoint_last.pth', 'last epoch (epoch 1 of 0..1)'),
                              ('checkpoint_best.pth', 'selected on val, so its val number is not held out')):
        res = tmp_path/weights.split('.')[0]
        r = run('clustercam_infer', '--weights', out/weights, '--dataset', 'synthetic', '--data-path', data, '--out', res,
                '--scales', 1.0, '--crf', 'off', '--progress', 'false')
        assert r.returncode == 0, r.stderr[-2000:]
        label = json.loads((res/'results.json').read_text())['label']
        assert expected in label['checkpoint'], label
        assert (label['measured'], label['split'], label['images'], label['scales'], label['flip'], label['crf']) == \
               ('segmentation (decoder)', 'synthetic val', 2, [1.0], False, ['no_crf'])
        assert label['command'].startswith(f'clustercam_infer --weights {out/weights}'), label['command']
        md = (res/'results.md').read_text()
        assert md.startswith('segmentation (decoder), synthetic val (2 images), scales 1, no flip, no CRF; weights: ') and expected in md
        assert r.stdout.startswith('segmentation (decoder), synthetic val (2 images)'), r.stdout
        assert json.loads((res/'run.json').read_text())['label'] == label

    r = run('clustercam_cams', '--weights', out/'checkpoint_last.pth', '--dataset', 'synthetic', '--data-path', data,
            '--split', 'val', '--out', tmp_path/'cams', '--scales', 1.0, '--progress', 'false')
    assert r.returncode == 0, r.stderr[-2000:]
    label = json.loads((tmp_path/'cams'/'cams.json').read_text())['label']
    assert label['measured'].startswith('CAM seeds') and label['images'] == 2 and label['checkpoint'].startswith('last epoch')
    assert not (tmp_path/'cams'/'cams').exists()             # CAM arrays only with --npz: label maps (PNGs) by default
    assert json.loads((tmp_path/'cams'/'run.json').read_text())['kind'] == 'cams'


CFG = dict(epochs=2, seg_start_epoch=1, warmup_epochs=1, input_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2,
           st_depth=1, decoder_width=8, drop_path=0.1, num_workers=0, progress=False, save_epochs=False, log_every=1,
           device='cpu', batch_size=2, accum_steps=2, scales=(1.0,), par_iters=2)   # 8 images: 2 optimiser steps an epoch


def test_resume_with_accumulation_is_exact(tmp_path):
    data = str(make_synthetic_voc(tmp_path/'data', n_train=8, n_val=2, size=64, seed=0, n_classes=3))
    straight, stopped = tmp_path/'straight', tmp_path/'stopped'
    train(data_path=data, output_dir=str(straight), **CFG)
    train(data_path=data, output_dir=str(stopped), stop_at_step=3, **CFG)      # inside the second epoch, at a step boundary
    ck = torch.load(stopped/'checkpoint_last.pth', map_location='cpu', weights_only=True)
    assert (ck['epoch'], ck['batch'], ck['step'], ck['sampler']['global_batch']) == (1, 1, 3, 4)
    train(data_path=data, output_dir=str(stopped), resume='auto', **CFG)
    a, b = (torch.load(d/'checkpoint_last.pth', map_location='cpu', weights_only=True) for d in (straight, stopped))
    assert a['step'] == b['step'] == 4
    diff = max((a['model'][k] - b['model'][k]).abs().max().item() for k in a['model'])
    assert diff == 0, diff                                                     # the same code path on the same data: exact
    assert (straight/'metrics.jsonl').read_text() == (stopped/'metrics.jsonl').read_text()
    rec = json.loads((stopped/'run.json').read_text())
    assert sorted(rec['epoch_seconds']) == ['0', '1'] and rec['resumed_from'].endswith('checkpoint_last.pth')
