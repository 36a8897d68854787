"""The low-precision paths on the CPU: training steps under fp16 (with the loss scaler) and bf16 autocast, the CAM
pass under autocast, a short `clustercam_train` run with each `--amp`, and the number of host reads per step.
A GPU runs the same code with `torch.autocast('cuda', ...)`; `clustercam_gpu_check` checks it there."""
import json, math, sys
from pathlib import Path
import pytest
import torch
from clustercam.device import autocast
from clustercam.model import ClusterCAM
from clustercam.refine import PAR, multiscale_cams, pseudo_labels
from clustercam.data import denormalize
from clustercam.synthetic import make_synthetic_voc
from clustercam.data import get_dataset
from clustercam.train import train_step, amp_setup, clustercam_train
from clustercam.learner import isolated_rng

TINY = dict(embed_dim=48, depth=2, num_heads=2, st_depth=2, decoder_width=32, drop_path_rate=0.)
PACKAGE = str(Path(sys.modules['clustercam'].__file__).parent)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_synthetic_voc(tmp_path_factory.mktemp('synth'), n_train=8, n_val=2, size=64, seed=0)


@pytest.fixture(scope='module')
def batch(data):
    ds = get_dataset('synthetic', data, 'train', kind='train', size=64)
    with isolated_rng(0): return torch.stack([ds[i][0] for i in range(4)]), torch.stack([ds[i][1] for i in range(4)]), ds.num_classes


@pytest.mark.parametrize('amp', ['fp16', 'bf16'])
def test_train_step_under_autocast(batch, amp):
    "A few steps under autocast (fp16: with the CPU loss scaler): finite terms, the weights move, the loss goes down."
    images, labels, K = batch
    dtype, scaler = amp_setup(torch.device('cpu'), amp)
    assert dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[amp]
    assert (scaler is not None and scaler.is_enabled()) == (amp == 'fp16')      # fp16 scales the loss, on the CPU too
    torch.manual_seed(0)
    model = ClusterCAM(K, img_size=64, **TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    w0 = model.head.weight.detach().clone()
    hist = [train_step(model, images, labels, opt, par=PAR(num_iter=2), scales=(1.0,), scaler=scaler, amp_dtype=dtype,
                       segment=i >= 2, clip_grad=1.0) for i in range(5)]
    assert all(math.isfinite(v) for h in hist for v in h.values()), hist
    assert hist[-1]['cls'] < hist[0]['cls'] and hist[-1]['seg'] > 0
    assert not torch.equal(model.head.weight, w0)
    if scaler is not None: assert math.isfinite(scaler.get_scale()) and scaler.get_scale() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_cam_pass_under_autocast(batch, dtype):
    "The CAM pass under autocast: finite CAMs in [0,1], and pseudo labels that mostly agree with fp32's."
    images, labels, K = batch
    torch.manual_seed(0)
    model = ClusterCAM(K, img_size=64, **TINY).eval()
    images01 = denormalize(images, through_uint8=True)
    par = PAR(num_iter=2)
    ref = multiscale_cams(model, images, (1.0, 0.75), refine=True)
    with autocast('cpu', dtype): low = multiscale_cams(model, images, (1.0, 0.75), refine=True)
    assert low.isfinite().all() and low.min() >= 0 and low.max() <= 1
    assert low.shape == ref.shape
    agree = (pseudo_labels(low.float(), labels, images01, par) == pseudo_labels(ref, labels, images01, par)).float().mean()
    # an untrained network's CAMs are nearly flat and the min-max scaling magnifies rounding, so the bar is low here
    # (bf16 keeps 8 bits of mantissa, fp16 11); a trained network's agreement is in the docs (tools/pseudo_label_agreement.py)
    print(f'{dtype}: {agree:.4f} of the pixels agree')
    assert agree > {torch.float16: 0.9, torch.bfloat16: 0.5}[dtype], agree


class HostReads:
    "Count the reads of tensor values into Python (what waits for a GPU) made by clustercam's own code."
    NAMES = ('item', 'tolist', 'numpy', 'cpu', '__bool__', '__int__', '__float__', '__index__')
    def __enter__(self):
        self.calls, self.saved = [], {n: getattr(torch.Tensor, n) for n in self.NAMES}
        for name, original in self.saved.items(): setattr(torch.Tensor, name, self._counting(name, original))
        return self
    def _counting(self, name, original):
        def read(t, *args, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(PACKAGE): self.calls.append(f'{name} in {caller.co_name}')
            return original(t, *args, **kwargs)
        return read
    def __exit__(self, *exc):
        for name, original in self.saved.items(): setattr(torch.Tensor, name, original)


def test_one_host_read_per_step(batch):
    images, labels, K = batch
    torch.manual_seed(0)
    model = ClusterCAM(K, img_size=64, **TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = dict(par=PAR(num_iter=2), scales=(1.0,), clip_grad=1.0)
    train_step(model, images, labels, opt, segment=False, **step)          # the optimiser's state made outside the count
    with HostReads() as cls_only: train_step(model, images, labels, opt, segment=False, **step)
    assert cls_only.calls == ['tolist in train_step'], cls_only.calls
    with HostReads() as seg: train_step(model, images, labels, opt, max_present=int(labels.sum(1).max()), **step)
    # the pseudo labels' one read (the most classes in an image) is gone when the caller knows it
    assert seg.calls == ['tolist in train_step'], seg.calls


def _cli_run(data, out, amp):
    res = clustercam_train(argv=['--data-path', str(data), '--output-dir', str(out), '--epochs', '1', '--seg-start-epoch', '0',
                                 '--batch-size', '4', '--input-size', '64', '--embed-dim', '48', '--depth', '2', '--num-heads', '2',
                                 '--st-depth', '2', '--decoder-width', '32', '--num-workers', '0', '--progress', 'false',
                                 '--warmup-epochs', '0', '--scales', '1.0', '--par-iters', '2', '--log-every', '1', '--device', 'cpu',
                                 '--amp', amp, '--val-split', 'none'])
    return res, [json.loads(l) for l in (out/'metrics.jsonl').read_text().splitlines()]


@pytest.mark.parametrize('amp', ['fp16', 'bf16'])
def test_cli_two_steps(data, tmp_path, amp):
    "`clustercam_train --amp fp16` and `--amp bf16` on the CPU: two steps with pseudo labels, finite losses."
    res, lines = _cli_run(data, tmp_path/amp, amp)
    steps = [l for l in lines if l['kind'] == 'step']
    assert len(steps) == 2 and all(math.isfinite(l[k]) for l in steps for k in ('loss', 'cls', 'pat', 'seg')), steps
    assert all(l['seg'] > 0 for l in steps)
    conf = json.loads((tmp_path/amp/'config.json').read_text())
    assert conf['amp_dtype'] == {'fp16': 'float16', 'bf16': 'bfloat16'}[amp]
    ck = torch.load(tmp_path/amp/'checkpoint_last.pth', weights_only=True)
    if amp == 'fp16': assert ck['scaler']['scale'] > 0           # the loss scaler ran (and is saved for a resume)
    else: assert ck['scaler'] is None


@pytest.mark.parametrize('cam_amp', [True, False])
def test_cam_pass_precision_follows_cam_amp(batch, cam_amp, monkeypatch):
    "The CAM pass for the pseudo labels runs under the step's autocast when `cam_amp` (the authors' recipe), in fp32 when not."
    import clustercam.train as train_module
    images, labels, K = batch
    seen = []
    def spy(*args, **kwargs):
        seen.append(torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else None)
        return multiscale_cams(*args, **kwargs)
    monkeypatch.setattr(train_module, 'multiscale_cams', spy)
    model = ClusterCAM(K, img_size=64, **TINY)
    train_step(model, images, labels, torch.optim.AdamW(model.parameters()), par=PAR(num_iter=1), scales=(1.0,),
               amp_dtype=torch.bfloat16, cam_amp=cam_amp)
    assert seen == [torch.bfloat16 if cam_amp else None]
