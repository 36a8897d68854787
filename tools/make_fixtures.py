"""Make the reference fixtures in `tests/fixtures/` by running the authors' code.

    python tools/make_fixtures.py --reference-dir PATH [--out tests/fixtures] [--check]

PATH is a checkout of the authors' repository (github.com/DCVL-WSSS/ClusterCAM); it needs timm and
einops. Every output tensor below comes from calling the authors' functions (their network's forward
and CAM pass, `utils.multi_scale_cam2`, `utils.cam_to_label`, `utils.refine_cams_with_bkg_v2`,
`PAR.PAR`, `utils.get_seg_loss`, `seg.tool.imutils.crf_inference_inf`, `seg.tool.metrics.Evaluator`,
and the DeiT initialisation block of `main.py`, executed as it stands). This script only makes their
inputs and writes the results.

The network weights are not stored: they are uniform random numbers drawn by
`clustercam.testing.uniform_tensors` from NumPy's legacy Mersenne Twister, which gives the same numbers
on every platform and NumPy version, so a fixture stores the seed and each tensor's range (a few
kB) instead of the 20 MB of a network. `clustercam.testing.load_fixture` draws them again.

`--check` makes everything again in memory and compares it with the files in `--out` (the largest
difference per entry), instead of writing.
"""
from __future__ import annotations
import argparse, ast, contextlib, io, math, platform, subprocess, sys, warnings
from argparse import Namespace
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from clustercam.testing import uniform_tensors, load_fixture  # noqa: E402

# Two networks: the authors' head hard-wires 12 blocks of 6 heads (its input has 12*6*K attention
# channels), so what can vary is the width D and the class count K. Neither equals the head count.
CONFIGS = {
    'reference_k4_d96': dict(num_classes=4, embed_dim=96, seed=0, x=(2, 3, 64, 64), x_nonsquare=(1, 3, 64, 96),
                             x_odd=(1, 3, 80, 112), ms_scales=(1.0, 0.5, 1.5), bg_thr=0.45, ignore_delta=0.1,
                             par_in=((1, 3, 40, 56), (1, 3, 20, 28)), seg_loss_in=(2, 5, 16, 16),
                             crf_in=((24, 32), 5), miou_in=((40, 50), 5)),
    'reference_k7_d48': dict(num_classes=7, embed_dim=48, seed=1, x=(3, 3, 48, 80), x_nonsquare=(1, 3, 96, 64),
                             x_odd=(2, 3, 112, 80), ms_scales=(1.0, 0.75, 1.25), bg_thr=0.43, ignore_delta=0.1,
                             par_in=((2, 3, 33, 47), (2, 4, 11, 16)), seg_loss_in=(3, 8, 20, 12),
                             crf_in=((30, 21), 8), miou_in=((33, 27), 8)),
}
DEPTH, HEADS, PATCH, IMG_SIZE = 12, 6, 16, 224


def import_reference(path: Path):
    "The authors' modules, imported from their checkout (their prints and warnings silenced)."
    if not (path/'models.py').is_file() or not (path/'main.py').is_file():
        sys.exit(f"make_fixtures: --reference-dir {str(path)!r} is not a checkout of DCVL-WSSS/ClusterCAM (no models.py / main.py)")
    sys.path.insert(0, str(path))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        import models, utils, PAR as par_module
        from seg.tool import imutils, metrics
    return Namespace(models=models, utils=utils, PAR=par_module.PAR, imutils=imutils, metrics=metrics, path=path)


def weight_range(key: str, value: torch.Tensor) -> tuple[float, float]:
    "The uniform range each random weight is drawn from: unit-variance products, norms around 1, mu in [0,1)."
    if key.endswith('mix_param'): return (0.0, 1.0)
    if key in ('cls_token', 'pos_embed', 'dist_token'): return (-0.2, 0.2)
    if key.endswith('.bias'): return (-0.1, 0.1)
    if value.ndim == 1: return (0.5, 1.5)                          # layer-norm scales
    a = math.sqrt(3.0 / (value[0].numel()))                        # variance 1/fan_in
    return (-a, a)


def uniform_spec(state_dict: dict, seed: int) -> dict:
    "How `clustercam.testing.uniform_tensors` draws a state dict of these shapes again."
    return {'seed': seed, 'spec': [(k, tuple(v.shape), *weight_range(k, v)) for k, v in state_dict.items()]}


def reference_network(ref, K: int, D: int):
    "The authors' MCTformerV2 (their DeiT-S constructor's arguments, with width D), in eval mode, drop path 0."
    with contextlib.redirect_stdout(io.StringIO()):
        return ref.models.MCTformerV2(patch_size=PATCH, embed_dim=D, depth=DEPTH, num_heads=HEADS, mlp_ratio=4,
                                      qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=K,
                                      drop_path_rate=0.0, st_attn_depth=DEPTH).eval()


def deit_initialisation(ref, model, deit_state_dict: dict, K: int):
    "Run the DeiT block of the authors' `main.py` (`if args.finetune: ...`) as it stands, on `deit_state_dict`."
    tree = ast.parse((ref.path/'main.py').read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'main')
    block = next(n for n in ast.walk(main) if isinstance(n, ast.If) and ast.unparse(n.test) == 'args.finetune')
    code = compile(ast.Module(body=[block], type_ignores=[]), str(ref.path/'main.py'), 'exec')
    url = 'https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth'   # the URL branch does the DeiT mapping
    args = Namespace(finetune=url, model='deit_small_MCTformerV2_patch16_224', nb_classes=K, st_attn_depth=DEPTH)
    scope = {'torch': torch, 'args': args, 'model': model}
    checkpoint = {'model': {k: v.clone() for k, v in deit_state_dict.items()}}
    with mock.patch.object(torch.hub, 'load_state_dict_from_url', return_value=checkpoint), \
         contextlib.redirect_stdout(io.StringIO()):
        exec(code, scope)
    loaded = scope['checkpoint_model']
    target = model.state_dict()
    return ({k: v for k, v in loaded.items() if k in target}, sorted(k for k in target if k not in loaded))


def deit_shapes(D: int) -> dict:
    "A DeiT-S/16 state dict (timm's `deit_small_patch16_224` names) of width D, zeros."
    import timm
    deit = timm.create_model('deit_small_patch16_224', pretrained=False, embed_dim=D, num_heads=HEADS)
    return {k: torch.zeros_like(v) for k, v in deit.state_dict().items()}


def make(ref, name: str, cfg: dict) -> dict:
    K, D = cfg['num_classes'], cfg['embed_dim']
    gen = torch.Generator().manual_seed(1000 + cfg['seed'])
    rand = lambda *shape: torch.rand(*shape, generator=gen)
    randn = lambda *shape: torch.randn(*shape, generator=gen)

    model = reference_network(ref, K, D)
    weights = uniform_spec(model.state_dict(), seed=10 * cfg['seed'] + 1)
    model.load_state_dict(uniform_tensors(**weights))
    deit_weights = uniform_spec(deit_shapes(D), seed=10 * cfg['seed'] + 2)
    deit_state_dict = uniform_tensors(**deit_weights)

    fx = {'config': dict(num_classes=K, embed_dim=D, depth=DEPTH, num_heads=HEADS, st_depth=DEPTH, img_size=IMG_SIZE,
                         patch_size=PATCH),
          '_uniform': {'state_dict': weights, 'deit_state_dict': deit_weights}}
    x, x_nonsquare, x_odd = randn(*cfg['x']), randn(*cfg['x_nonsquare']), randn(*cfg['x_odd'])
    fx.update(x=x, x_nonsquare=x_nonsquare, x_odd=x_odd)
    with torch.no_grad():
        fx['forward'] = model(x)
        fx['forward_skip_seg'] = model(x, segment=False)[:2]
        fx['forward_nonsquare'] = model(x_nonsquare)
        fx['forward_odd'] = model(x_odd)
        fx['cams'] = model(x, cam_only=True)
        fx['cams_no_refine'] = model(x, cam_only=True, p2p_refine=False)
        fx['cams_n1'] = model(x, cam_only=True, n_layers=1)
        fx['cams_nonsquare'] = model(x_nonsquare, cam_only=True)
        fx['cams_odd'] = model(x_odd, cam_only=True)

    # pseudo labels, as the authors' training step makes them (engine.py)
    B = x.shape[0]
    labels = (rand(B, K) < 0.4).float()
    labels[torch.arange(B), torch.randint(K, (B,), generator=gen)] = 1.0   # every image has a class
    fx.update(ms_scales=cfg['ms_scales'], cls_labels=labels, bg_thr=cfg['bg_thr'], ignore_delta=cfg['ignore_delta'])
    fx['ms_cams'] = ref.utils.multi_scale_cam2(model, inputs=x, scales=list(cfg['ms_scales']))
    hi, lo = cfg['bg_thr'] + cfg['ignore_delta'], cfg['bg_thr'] - cfg['ignore_delta']
    fx['valid_cams'], _ = ref.utils.cam_to_label(fx['ms_cams'].clone(), cls_label=labels, ignore_mid=True, bkg_thre=cfg['bg_thr'],
                                                 high_thre=hi, low_thre=lo, ignore_index=255)
    fx['images01'] = rand(*x.shape)   # the images PAR sees (in training: the batch denormalised)
    par = ref.PAR(num_iter=10, dilations=[1, 2, 4, 8, 12, 24])
    fx['pseudo_label'] = ref.utils.refine_cams_with_bkg_v2(par, fx['images01'], cams=fx['valid_cams'], cls_labels=labels,
                                                           high_thre=hi, low_thre=lo, ignore_index=255).to(torch.uint8)

    # the parts on their own
    fx['par_in'] = (rand(*cfg['par_in'][0]), rand(*cfg['par_in'][1]))
    fx['par_out'] = par(*fx['par_in'])
    logits = randn(*cfg['seg_loss_in'])
    seg_labels = torch.randint(cfg['seg_loss_in'][1], (cfg['seg_loss_in'][0], *cfg['seg_loss_in'][2:]), generator=gen)
    seg_labels[rand(*seg_labels.shape) < 0.2] = 255
    fx['seg_loss_in'] = (logits, seg_labels)
    fx['seg_loss'] = ref.utils.get_seg_loss(logits, seg_labels, ignore_index=255)
    (ch, cw), n = cfg['crf_in']
    image = (rand(ch, cw, 3) * 255).to(torch.uint8)
    probs = randn(n, ch, cw).mul(2).softmax(0)
    out = ref.imutils.crf_inference_inf(image.numpy(), probs.numpy(), labels=n)
    fx['crf_in'], fx['crf_out'] = (image, probs), torch.from_numpy(np.asarray(out, dtype=np.float32))
    (mh, mw), n = cfg['miou_in']
    truth, pred = torch.randint(n, (mh, mw), generator=gen), torch.randint(n, (mh, mw), generator=gen)
    truth[rand(mh, mw) < 0.1] = 255
    pred[truth == n - 1] = n - 1                                  # one class predicted perfectly
    evaluator = ref.metrics.Evaluator(n)
    evaluator.add_batch(truth.numpy(), pred.numpy())
    iou, miou = evaluator.Mean_Intersection_over_Union()
    fx['miou_in'], fx['iou'], fx['miou'] = (truth, pred), torch.from_numpy(iou), float(miou)

    # ImageNet initialisation: the authors' main.py block on a DeiT state dict of width D
    loaded, not_loaded = deit_initialisation(ref, reference_network(ref, K, D), deit_state_dict, K)
    # tensors copied unchanged are stored as the name of their DeiT key (the fixture stays small)
    fx['deit_loaded'] = {k: next((s for s, t in deit_state_dict.items() if t.shape == v.shape and torch.equal(t, v)), v)
                         for k, v in loaded.items()}
    fx['deit_not_loaded'] = not_loaded
    return fx


def provenance(ref) -> dict:
    commit = subprocess.run(['git', '-C', str(ref.path), 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) \
        if Path('/proc/cpuinfo').exists() else platform.processor()
    import timm
    return {'reference_commit': commit or 'unknown', 'torch': str(torch.__version__), 'timm': str(timm.__version__),
            'numpy': str(np.__version__), 'cpu': cpu, 'threads': torch.get_num_threads(), 'python': platform.python_version(),
            'command': 'python tools/make_fixtures.py --reference-dir <checkout> --threads 2'}


def _leaves(obj, prefix=''):
    if isinstance(obj, dict):
        for k, v in obj.items(): yield from _leaves(v, f'{prefix}.{k}' if prefix else str(k))
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in obj):
        for i, v in enumerate(obj): yield from _leaves(v, f'{prefix}[{i}]')
    else: yield prefix, obj


def compare(made: dict, stored: dict) -> list[str]:
    "Entries that differ between a fixture made now and the stored one, with the largest difference."
    stored_leaves = dict(_leaves(stored))
    report = []
    for key, value in _leaves(made):
        old = stored_leaves.get(key)
        if isinstance(value, torch.Tensor) and isinstance(old, torch.Tensor):
            if value.shape != old.shape or not torch.equal(value, old):
                diff = (value.double() - old.double()).abs().max().item() if value.shape == old.shape else float('nan')
                report.append(f'{key}: largest difference {diff:.3g}')
        elif value != old: report.append(f'{key}: {old!r} -> {value!r}')
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--reference-dir', required=True, type=Path, help="a checkout of github.com/DCVL-WSSS/ClusterCAM")
    p.add_argument('--out', type=Path, default=ROOT/'tests'/'fixtures', help="where the fixture files go")
    p.add_argument('--threads', type=int, default=2, help="torch threads (the rounding of some CPU kernels depends on it)")
    p.add_argument('--check', action='store_true', help="compare with the stored fixtures instead of writing")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ref = import_reference(args.reference_dir.resolve())
    info = provenance(ref)
    failed = False
    for name, cfg in CONFIGS.items():
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fx = make(ref, name, cfg)
        if args.check:
            stored = torch.load(args.out/f'{name}.pt', weights_only=True)
            stored.pop('made_with', None)
            diffs = compare(fx, stored)
            print(f'{name}: ' + ('identical' if not diffs else f'{len(diffs)} entries differ'))
            for line in diffs: print('  ' + line)
            failed |= bool(diffs)
            continue
        fx['made_with'] = info
        args.out.mkdir(parents=True, exist_ok=True)
        tmp = args.out/f'.{name}.pt.tmp'
        torch.save(fx, tmp); tmp.replace(args.out/f'{name}.pt')
        loaded = load_fixture(name, folder=args.out)             # the loader draws the weights back
        ref_model = reference_network(ref, cfg['num_classes'], cfg['embed_dim'])
        ref_model.load_state_dict(loaded['state_dict'])
        with torch.no_grad(): assert torch.equal(ref_model(fx['x'])[0], fx['forward'][0]), 'weights drawn back differ'
        print(f"wrote {args.out/f'{name}.pt'} ({(args.out/f'{name}.pt').stat().st_size / 1e3:.0f} kB)")
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
