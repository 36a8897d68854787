"""SIGTERM in the second epoch of a 2-epoch run: the step finishes, checkpoint_last.pth is written, the command exits
with 128 + 15; resumed with nothing but `--output-dir DIR --resume auto`, the run ends with the weights, the log and
the epoch means of a run that was never stopped (bit for bit)."""
import signal, subprocess, sys, time
from pathlib import Path
import torch

from clustercam.synthetic import make_synthetic_voc
from clustercam.train import train
from test_train_ddp import argv, env

CFG = dict(epochs=2, seg_start_epoch=1, warmup_epochs=1, input_size=64, embed_dim=48, depth=2, num_heads=2, st_depth=2,
           decoder_width=32, drop_path=0.1, num_workers=2, progress=False, save_epochs=False, log_every=1,
           device='cpu', batch_size=4, val_split='val')          # 16 images: 4 steps an epoch, the second with pseudo labels


def steps_logged(d: Path) -> int:
    p = d/'metrics.jsonl'
    return sum('"kind": "step"' in l for l in p.read_text().splitlines()) if p.exists() else 0


def test_sigterm_saves_and_resumes_exactly(tmp_path):
    data = make_synthetic_voc(tmp_path/'data', n_train=16, n_val=4, size=64, seed=0)
    straight, stopped = tmp_path/'straight', tmp_path/'stopped'
    p = subprocess.Popen([sys.executable, '-m', 'clustercam.train', *argv(data_path=data, output_dir=stopped, **CFG)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path)
    t0 = time.time()
    while steps_logged(stopped) < 5 and p.poll() is None and time.time() - t0 < 300: time.sleep(0.02)
    assert p.poll() is None, 'the run ended before it could be stopped'
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err[-2000:])
    assert err.count('stopped by SIGTERM after step') == 1, err[-2000:]
    ck = torch.load(stopped/'checkpoint_last.pth', map_location='cpu', weights_only=True)
    s = ck['step']
    assert ck['epoch'] == 1 and 0 < ck['batch'] < 4 and s == 4 + ck['batch'], (ck['epoch'], ck['batch'], s)   # in the second epoch
    assert f'after step {s};' in err and steps_logged(stopped) == s
    print(f'stopped after step {s} (epoch {ck["epoch"]}, batch {ck["batch"]})')

    r = subprocess.run([sys.executable, '-m', 'clustercam.train', '--output-dir', str(stopped), '--resume', 'auto'],
                       capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'resumed from {stopped/"checkpoint_last.pth"}: epoch 1, batch {ck["batch"]}/4, step {s}' in r.stdout, r.stdout
    train(data_path=str(data), output_dir=str(straight), **CFG)
    a, b = (torch.load(d/'checkpoint_last.pth', map_location='cpu', weights_only=True) for d in (straight, stopped))
    assert a['step'] == b['step'] == 8
    diff = max((a['model'][k] - b['model'][k]).abs().max().item() for k in a['model'])
    print(f'max |weight difference| stopped+resumed vs straight: {diff:.3g}')
    assert diff == 0, diff
    assert (straight/'metrics.jsonl').read_text() == (stopped/'metrics.jsonl').read_text()   # steps, epoch means, validation
