"""A shared checkpoint cannot run code: a `.pth` whose pickle calls `os.system` is refused by every door a
user can open it through (the commands, as a user runs them, and the Python API), naming the file, and the
command in it never runs. The authors' release format (their `args` as an `argparse.Namespace`) loads
without the opt-in, and the commands that read it exit 0."""
import argparse, os, subprocess, sys
from pathlib import Path
import pytest
import torch

from clustercam.model import ClusterCAM
from clustercam.synthetic import make_synthetic_voc
from clustercam.checkpoint import (CheckpointError, REFERENCE_NAMES, read_checkpoint, load_checkpoint,
                                   model_from_checkpoint, imagenet_weights)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = dict(embed_dim=32, depth=2, num_heads=2, st_depth=2, patch_size=16, decoder_width=16)


class Payload:
    "Unpickling this runs `touch marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def _env():
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): e.pop(k, None)
    return e


def _run(cmd, *args, cwd):
    return subprocess.run([str(BIN/cmd), *map(str, args)], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=600)


def _as_released(model: ClusterCAM) -> dict:
    "`model` saved as the authors' training script saves: DataParallel's `module.`, their block names, their args."
    theirs = {new: old for old, new in REFERENCE_NAMES.items()}
    sd = {}
    for k, v in model.state_dict().items():
        parts = k.split('.')
        if k.startswith('blocks.') and int(parts[1]) >= model.depth - model.st_depth:   # a clustering block
            rest = '.'.join(parts[2:])
            for ours, ref in theirs.items():
                if rest.startswith(ours): rest = ref + rest[len(ours):]; break
            k = f'blocks.{parts[1]}.{rest}'
        sd['module.' + k] = v
    sd['module.norm.weight'], sd['module.norm.bias'] = torch.ones(model.embed_dim), torch.zeros(model.embed_dim)
    return {'model': sd, 'epoch': 79, 'args': argparse.Namespace(model='deit_small_MCTformerV2_patch16_224', nb_classes=model.num_classes)}


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('safe')
    data = make_synthetic_voc(tmp/'data', n_train=4, n_val=2, size=64, seed=1, n_classes=3)
    torch.manual_seed(0)
    evil = tmp/'shared_on_the_web.pth'
    torch.save({'model': ClusterCAM(3, **TINY).state_dict(), 'args': Payload(tmp/'PWNED')}, evil)
    released = tmp/'ClusterCAM_released.pth'
    torch.save(_as_released(ClusterCAM(3, **TINY)), released)
    return tmp, data, evil, released


DOORS = [('clustercam_infer', ['--weights', '{evil}', '--data-path', '{data}', '--progress', 'false', '--crf', 'off']),
         ('clustercam_cams', ['--weights', '{evil}', '--data-path', '{data}', '--dataset', 'synthetic', '--split', 'val', '--progress', 'false']),
         ('clustercam_train', ['--init', '{evil}', '--data-path', '{data}', '--output-dir', '{tmp}/run_init', '--epochs', '1', '--seg-start-epoch', '0', '--num-workers', '0', '--progress', 'false']),
         ('clustercam_train', ['--finetune', '{evil}', '--data-path', '{data}', '--output-dir', '{tmp}/run_ft', '--epochs', '1', '--seg-start-epoch', '0', '--num-workers', '0', '--progress', 'false']),
         ('clustercam_train', ['--resume', '{evil}', '--data-path', '{data}', '--output-dir', '{tmp}/run_resume', '--epochs', '1', '--num-workers', '0', '--progress', 'false']),
         ('clustercam_export', ['--weights', '{evil}', '--out', '{tmp}/evil.safetensors'])]


@pytest.mark.parametrize('cmd,args', DOORS, ids=[f"{c} {a[0]}" for c, a in DOORS])
def test_commands_refuse_a_malicious_checkpoint(setup, cmd, args):
    tmp, data, evil, _ = setup
    r = _run(cmd, *[a.format(evil=evil, data=data, tmp=tmp) for a in args], cwd=tmp)
    assert r.returncode != 0, f"{cmd} accepted the file:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert str(evil) in r.stderr and 'a safe load refuses' in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]     # one clear line, not a stack
    assert not (tmp/'PWNED').exists(), 'the code in the checkpoint ran'


def test_python_api_refuses_a_malicious_checkpoint(setup):
    tmp, _, evil, _ = setup
    net = ClusterCAM(3, **TINY)
    for door in (lambda: read_checkpoint(evil), lambda: load_checkpoint(net, evil), lambda: model_from_checkpoint(evil),
                 lambda: load_checkpoint(net, evil, init=True), lambda: imagenet_weights(evil)):
        with pytest.raises(CheckpointError, match='a safe load refuses'): door()
    assert not (tmp/'PWNED').exists()


def test_the_authors_release_format_loads_in_the_commands(setup):
    tmp, data, _, released = setup
    assert read_checkpoint(released)['args'].nb_classes == 3
    r = _run('clustercam_infer', '--weights', released, '--data-path', data, '--dataset', 'synthetic', '--progress', 'false',
             '--crf', 'off', '--scales', '1.0', '1.5', '--out', tmp/'infer_out', cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sum(l.startswith('mIoU') for l in r.stdout.splitlines()) == 1, r.stdout            # the report, once
    r = _run('clustercam_cams', '--weights', released, '--data-path', data, '--dataset', 'synthetic', '--split', 'val',
             '--scales', '1.0', '1.5', '--progress', 'false', '--out', tmp/'cams_out', cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp/'cams_out'/'cams.json').is_file()
