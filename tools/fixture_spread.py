"""How far clustercam's outputs lie from the reference fixtures, per fixture key, under several CPU settings.

    python tools/fixture_spread.py            # every setting, each in its own process; prints a markdown table
    python tools/fixture_spread.py --here     # this process's setting only, as JSON

Each setting is a set of environment variables that change how the CPU kernels round: MKL's code path
(`MKL_CBWR`), the instruction set ATen's own kernels use (`ATEN_CPU_CAPABILITY`), the thread count. A cell is
the largest error over both fixtures and both states of the speed paths (chapter `14_fastpaths`): for tensors
max |ours - theirs| / max |theirs|; for the pseudo labels, the share of pixels whose label differs.
The tolerances of the reference tests (chapters `13_model` and `20_refine`) are set from this table."""
import argparse, json, os, subprocess, sys
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {   # column name: (environment, torch threads)
    'MKL default': ({}, 1),
    'MKL default, 2 threads': ({}, 2),
    'MKL_CBWR=AVX2': ({'MKL_CBWR': 'AVX2'}, 1),
    'MKL_CBWR=AVX512': ({'MKL_CBWR': 'AVX512'}, 1),
    'MKL_CBWR=COMPATIBLE': ({'MKL_CBWR': 'COMPATIBLE'}, 1),
    'ATEN_CPU_CAPABILITY=default': ({'ATEN_CPU_CAPABILITY': 'default'}, 1),
    'ATEN_CPU_CAPABILITY=avx2': ({'ATEN_CPU_CAPABILITY': 'avx2'}, 1),
    'AVX2 stand-in (both)': ({'MKL_CBWR': 'AVX2', 'ATEN_CPU_CAPABILITY': 'avx2'}, 1),
}


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    "max |ours - theirs| / max |theirs|: the error on the scale of the tensor."
    return ((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max()).item()


def errors_here() -> dict:
    "{key: largest error} of this process's setting, over both fixtures and both states of the speed paths."
    from clustercam.testing import load_fixture, REFERENCE_FIXTURES
    from clustercam.checkpoint import from_reference
    from clustercam.model import ClusterCAM
    from clustercam.refine import PAR, multiscale_cams, pseudo_labels
    from clustercam.losses import seg_loss
    from clustercam.crf import dense_crf
    from clustercam.metrics import ConfusionMatrix
    out = {}
    def note(key, value): out[key] = max(out.get(key, 0.0), value)
    par = PAR()
    for name in REFERENCE_FIXTURES:
        f = load_fixture(name)
        for on in (False, True):
            model = ClusterCAM(**f['config'], fastpaths=on).eval()
            model.load_state_dict(from_reference(f['state_dict']))
            with torch.no_grad():
                for x in ('', '_nonsquare', '_odd'):
                    for part, ours, theirs in zip(('cls', 'cam', 'seg'), model(f['x' + x]), f['forward' + x]):
                        note(f'forward{x} ({part} logits)', relative_error(ours, theirs))
                for part, ours, theirs in zip(('cls', 'cam'), model(f['x'], segment=False), f['forward_skip_seg']):
                    note(f'forward_skip_seg ({part} logits)', relative_error(ours, theirs))
            for key, kwargs in (('cams', {}), ('cams_no_refine', dict(refine=False)), ('cams_n1', dict(n_layers=1))):
                note(key, relative_error(model.cams(f['x'], **kwargs), f[key]))
            for x in ('_nonsquare', '_odd'): note('cams' + x, relative_error(model.cams(f['x' + x]), f['cams' + x]))
            ms = multiscale_cams(model, f['x'], f['ms_scales'])
            note('ms_cams (normalised, in [0,1])', relative_error(ms, f['ms_cams']))
            args = dict(cls_labels=f['cls_labels'], images01=f['images01'], par=par, bg_thr=f['bg_thr'], delta=f['ignore_delta'])
            note('pseudo_label from our ms_cams (share of pixels)', (pseudo_labels(ms, **args) != f['pseudo_label']).float().mean().item())
        args = dict(cls_labels=f['cls_labels'], images01=f['images01'], par=par, bg_thr=f['bg_thr'], delta=f['ignore_delta'])
        note('pseudo_label from their ms_cams (share of pixels)', (pseudo_labels(f['ms_cams'], **args) != f['pseudo_label']).float().mean().item())
        note('par_out', relative_error(par(*f['par_in']), f['par_out']))
        note('seg_loss', relative_error(seg_loss(*f['seg_loss_in']), f['seg_loss']))
        img, probs = (t.numpy() for t in f['crf_in'])
        note('crf_out', relative_error(torch.from_numpy(dense_crf(img, probs)), f['crf_out']))
        cm = ConfusionMatrix(len(f['iou'])).update(*(t.numpy() for t in f['miou_in']))
        note('iou', relative_error(torch.from_numpy(cm.iou()), f['iou']))
    return out


def table(results: dict) -> str:
    "A markdown table: a row per key, a column per setting, and the largest of the row."
    names = list(results)
    keys = list(next(iter(results.values())))
    lines = ['| key | ' + ' | '.join(names) + ' | largest |', '| --- ' * (len(names) + 2) + '|']
    for key in keys:
        row = [results[n][key] for n in names]
        lines.append(f'| {key} | ' + ' | '.join(f'{v:.1e}' for v in row) + f' | {max(row):.1e} |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--here', action='store_true', help="measure this process's setting only and print JSON")
    p.add_argument('--threads', type=int, default=1, help="torch threads (with --here)")
    args = p.parse_args(argv)
    if args.here:
        torch.set_num_threads(args.threads)
        print(json.dumps(errors_here()))
        return 0
    results = {}
    for name, (env, threads) in SETTINGS.items():
        run = subprocess.run([sys.executable, __file__, '--here', '--threads', str(threads)], capture_output=True, text=True,
                             env={**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads), **env})
        if run.returncode: sys.exit(f'fixture_spread: the setting {name!r} failed: {run.stderr.strip().splitlines()[-1]}')
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f'{name}: done', file=sys.stderr, flush=True)
    print(table(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
