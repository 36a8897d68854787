"""SIGTERM in the middle of a run: the step finishes, checkpoint_last.pth is written, the command exits with
128 + 15; resumed, the run ends with the weights of a run that was never stopped."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import torch

from clustercam.synthetic import make_synthetic_voc
from clustercam.train import train
from test_train_ddp import argv, env

CFG = dict(epochs=6, skip_seg=2, warmup_epochs=1, input_size=64, embed_dim=48, depth=2, num_heads=2, st_depth=2,
           decoder_width=32, drop_path=0.1, num_workers=2, progress=False, save_epochs=False, log_every=1,
           device='cpu', batch_size=4, val_split='none')


def steps_logged(d: Path) -> int:
    p = d/'metrics.jsonl'
    return sum('"kind": "step"' in l for l in p.read_text().splitlines()) if p.exists() else 0


def test_sigterm_saves_and_resumes_exactly(tmp_path):
    data = make_synthetic_voc(tmp_path/'data', n_train=16, n_val=4, size=64, seed=0)
    straight, stopped = tmp_path/'straight', tmp_path/'stopped'
    p = subprocess.Popen([sys.executable, '-m', 'clustercam.train', *argv(data_path=data, output_dir=stopped, **CFG)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path)
    t0 = time.time()
    while steps_logged(stopped) < 2 and p.poll() is None and time.time() - t0 < 120: time.sleep(0.02)
    assert p.poll() is None, 'the run ended before it could be stopped'
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err[-2000:])
    assert 'stopped by SIGTERM after step' in err, err[-2000:]
    ck = torch.load(stopped/'checkpoint_last.pth', map_location='cpu', weights_only=False)
    s = ck['step']
    assert 2 <= s < 24 and f'after step {s};' in err and steps_logged(stopped) == s
    print(f'stopped after step {s} (epoch {ck["epoch"]}, batch {ck["batch"]})')

    train(data_path=str(data), output_dir=str(stopped), resume='auto', **CFG)
    train(data_path=str(data), output_dir=str(straight), **CFG)
    a, b = (torch.load(d/'checkpoint_last.pth', map_location='cpu', weights_only=False) for d in (straight, stopped))
    assert a['step'] == b['step'] == 24
    diff = max((a['model'][k] - b['model'][k]).abs().max().item() for k in a['model'])
    print(f'max |weight difference| stopped+resumed vs straight: {diff:.3g}')
    assert diff <= 1e-6, diff
    ea, eb = ([json.loads(l) for l in (d/'metrics.jsonl').read_text().splitlines() if '"kind": "epoch"' in l] for d in (straight, stopped))
    assert [e['loss'] for e in ea] == [e['loss'] for e in eb]
