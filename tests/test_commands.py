"""Every console command in settings.ini, run as a user runs it: a subprocess doing what the installed script does
(`sys.exit(function())`), on tiny synthetic data. Success: status 0 and the report printed once. Failure, on a bad
option or on a bad value found while running: a non-zero status and one line on stderr, no traceback.

A command added to settings.ini without a case here fails `test_every_command_is_covered`."""
import configparser, io, os, re, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image

from clustercam.model import ClusterCAM
from clustercam.synthetic import make_synthetic_voc

ROOT = Path(__file__).resolve().parents[1]


def console_scripts() -> dict:
    "`{command: 'module:function'}` from settings.ini, as pip installs them."
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return dict(l.strip().split('=', 1) for l in cfg['DEFAULT']['console_scripts'].splitlines() if l.strip())


COMMANDS = console_scripts()


def env():
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'): e.pop(k, None)
    return e


def run(command: str, *args, cwd=None) -> subprocess.CompletedProcess:
    "`command ARGS` as its console script runs it."
    module, function = COMMANDS[command].split(':')
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, env=env(),
                          cwd=cwd, timeout=600)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A tiny data set, a checkpoint for it, and a folder of pictures in every mode with one truncated JPEG."
    d = tmp_path_factory.mktemp('commands')
    data = make_synthetic_voc(d/'data', n_train=8, n_val=2, size=64, seed=0, n_classes=3)
    torch.manual_seed(0)
    net = ClusterCAM(3, embed_dim=32, depth=2, num_heads=2, st_depth=2, patch_size=16, decoder_width=16)
    torch.save({'model': net.state_dict(), 'config': {'num_heads': 2, 'classes': ['disc', 'square', 'triangle']}}, d/'net.pth')
    pics, rng = d/'pictures', np.random.default_rng(0)
    pics.mkdir()
    picture = lambda h, w: Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    picture(70, 90).save(pics/'photo.jpg'); picture(81, 65).convert('L').save(pics/'grey.png')
    picture(96, 72).convert('RGBA').save(pics/'alpha.png'); picture(72, 72).convert('CMYK').save(pics/'print.jpg')
    picture(200, 120).convert('P').save(pics/'large.png')
    Image.fromarray(rng.integers(0, 65536, (67, 75)).astype(np.uint16)).save(pics/'deep.png')
    buf = io.BytesIO(); picture(60, 80).save(buf, format='JPEG'); (pics/'broken.jpg').write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    return dict(dir=d, data=data, ck=d/'net.pth', pics=pics)


TINY_TRAIN = ['--epochs', 1, '--seg-start-epoch', 0, '--batch-size', 4, '--input-size', 32, '--patch-size', 8, '--embed-dim', 16,
              '--depth', 2, '--num-heads', 2, '--st-depth', 1, '--decoder-width', 8, '--scales', 1.0, '--par-iters', 2,
              '--num-workers', 0, '--device', 'cpu', '--progress', 'false', '--save-epochs', 'false']

# command: (its arguments in `world` w, a line its report prints once)
SUCCEEDS = {
    'clustercam_synth': (lambda w: [w['dir']/'synth', '--n-train', 4, '--n-val', 2, '--size', 32, '--n-classes', 2], 'wrote 4 train'),
    'clustercam_train': (lambda w: ['--data-path', w['data'], '--output-dir', w['dir']/'run', *TINY_TRAIN], 'done: best val mIoU'),
    'clustercam_pretrain': (lambda w: [w['dir']/'vit.pth', '--steps', 2, '--n-images', 24, '--n-val', 8, '--image-size', 32,
                                       '--progress', 'false'], 'held-out accuracy'),
    'clustercam_infer': (lambda w: ['--weights', w['ck'], '--data-path', w['data'], '--scales', 1.0, '--workers', 0,
                                    '--progress', 'false', '--out', w['dir']/'infer'], ': mIoU '),
    'clustercam_cams': (lambda w: ['--weights', w['ck'], '--data-path', w['data'], '--scales', 1.0, '--sweep', 0.3, 0.5,
                                   '--progress', 'false', '--out', w['dir']/'cams'], 'best seed threshold'),
    'clustercam_bench': (lambda w: ['--config', 'tiny', '--size', 64, '--tasks', 'par', '--repeats', 1, '--threads', 1,
                                    '--flops', 'false', '--out', w['dir']/'bench.json'], 'par'),
    'clustercam_export': (lambda w: ['--weights', w['ck'], '--out', w['dir']/'net.safetensors'], 'wrote'),
    'clustercam_gpu_check': (lambda w: ['--device', 'cpu', '--size', 'tiny', '--out', w['dir']/'gpu_check.json'], 'no check failed'),
    'clustercam_study': (lambda w: ['--out', w['dir']/'study', '--quick', '--n-seeds', 1], 'seed mIoU gap'),
}

# command: its last line (issue 31: the headline number in % where it has one, and the wall time, `metrics.duration`)
WALL = r"in (\d+\.\d s|\d+ min \d\d s|\d+ h \d\d min)"
END_LINES = {
    'clustercam_synth': rf"wrote 4 train \+ 2 val images \(2 classes, 32 px, world shapes\) to .*synth {WALL}",
    'clustercam_bench': rf"bench: our time per task: par \d+\.\d+ s; {WALL}",
    'clustercam_export': rf"wrote .*net\.safetensors and .*net\.json {WALL}",
    'clustercam_gpu_check': rf"\d+ passed, \d+ skipped, 0 failed {WALL}: no check failed.*",
    'clustercam_study': rf"condition baseline: seed mIoU gap [+-]\d+\.\d ± \d+\.\d points \(ClusterCAM \d+\.\d %, st_depth=0 \d+\.\d %; "
                        rf"goal \+\d+: (not )?met\) {WALL}; report at .*report\.md",
}

# command: (arguments with a bad value, what the one line says)
FAILS = {
    'clustercam_synth': (lambda w: [w['data']], 'already holds files'),
    'clustercam_train': (lambda w: ['--preset', 'voc'], "--data-path is needed for dataset 'voc'"),
    'clustercam_pretrain': (lambda w: [w['dir']/'bad.pth', '--n-images', 10], 'must exceed --n-val (600)'),
    'clustercam_infer': (lambda w: ['--weights', w['dir']/'missing.pth', '--data-path', w['data']], 'missing.pth'),
    'clustercam_cams': (lambda w: ['--weights', w['ck'], '--data-path', w['dir']/'nowhere'], 'nowhere'),
    'clustercam_bench': (lambda w: ['--config', 'huge'], 'huge'),
    'clustercam_export': (lambda w: ['--weights', w['ck'], '--out', w['dir']/'net.bin'], 'must end in .safetensors'),
    'clustercam_gpu_check': (lambda w: ['--device', 'cpu', '--size', 'huge'], '--size must be one of'),
    'clustercam_study': (lambda w: ['--out', w['ck'], '--quick'], 'is a file, not a folder'),
}


def test_every_command_is_covered():
    assert set(COMMANDS) == set(SUCCEEDS) == set(FAILS), sorted(set(COMMANDS) ^ set(SUCCEEDS) | set(COMMANDS) ^ set(FAILS))


def one_line(r: subprocess.CompletedProcess, command: str) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in r.stderr, f"{command}: expected one line on stderr, got:\n{r.stderr[-3000:]}"
    assert lines[0].startswith(command), lines[0]
    return lines[0]


@pytest.mark.parametrize('command', sorted(SUCCEEDS))
def test_command_succeeds(command, world):
    args, report = SUCCEEDS[command]
    r = run(command, *args(world))
    assert r.returncode == 0, f"{command} exited {r.returncode}:\n{r.stderr[-3000:]}"
    assert r.stdout.count(report) >= 1, r.stdout
    if command != 'clustercam_bench': assert r.stdout.count(report) == 1, f"{command} printed its report more than once:\n{r.stdout}"
    if command in END_LINES: assert re.fullmatch(END_LINES[command], r.stdout.strip().splitlines()[-1]), r.stdout[-2000:]
    assert "<clustercam" not in r.stdout and "object at 0x" not in r.stdout, r.stdout   # no result object printed by the script


@pytest.mark.parametrize('command', sorted(FAILS))
def test_command_fails_in_one_line(command, world):
    args, says = FAILS[command]
    r = run(command, *args(world))
    assert r.returncode == 1, f"{command} exited {r.returncode}:\n{r.stderr[-3000:]}"
    assert says in one_line(r, command)
    positional = {'clustercam_synth': 1, 'clustercam_pretrain': 1}.get(command, 0)   # their required arguments
    r = run(command, *args(world)[:positional], '--no-such-option', 3)
    assert r.returncode == 2, r.stderr
    assert 'unrecognized arguments: --no-such-option' in one_line(r, command)


def test_infer_a_folder_of_pictures(world):
    "Mixed formats and modes, one truncated file: the others written, the bad one named, status 3; without it, status 0."
    out = world['dir']/'mine'
    r = run('clustercam_infer', '--weights', world['ck'], '--images', world['pics'], '--out', out, '--scales', 1.0, 0.75,
            '--flip', '--crf', 'both', '--workers', 0, '--progress', 'false', '--max-side', 128)
    assert r.returncode == 3, r.stderr[-3000:]
    assert [l for l in r.stderr.splitlines() if 'skipped' in l] == [l for l in r.stderr.splitlines() if str(world['pics']/'broken.jpg') in l]
    assert r.stdout.count('6 of 7 pictures') == 1, r.stdout
    for name in ('photo', 'grey', 'alpha', 'print', 'large', 'deep'):
        size = next(Image.open(p).size for p in world['pics'].glob(f'{name}.*'))
        for variant in ('no_crf', 'crf'):
            mask = Image.open(out/variant/'masks'/f'{name}.png')
            over = Image.open(out/variant/'overlays'/f'{name}.jpg').size                 # the picture, its legend below
            assert (mask.mode, mask.size) == ('P', size) and over[0] >= size[0] and over[1] > size[1]
    assert not list(out.rglob('broken*')) and not [p for p in out.rglob('.*')]
    (world['pics']/'broken.jpg').rename(world['dir']/'broken.jpg')
    try:
        r = run('clustercam_infer', '--weights', world['ck'], '--images', world['pics'], '--out', world['dir']/'mine2', '--scales', 1.0,
                '--crf', 'off', '--progress', 'false')
    finally: (world['dir']/'broken.jpg').rename(world['pics']/'broken.jpg')
    assert (r.returncode, r.stderr) == (0, ''), r.stderr[-3000:]


def test_gpu_check_without_cuda():
    "Where CUDA is missing, clustercam_gpu_check says so in one line and exits 77 (skipped), not 0 and not 1."
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA: `make gpu-check` runs the real thing')
    r = run('clustercam_gpu_check')
    assert r.returncode == 77, r.stderr[-2000:]
    assert 'no CUDA device here' in one_line(r, 'clustercam_gpu_check')


def documented_flags() -> dict:
    "`{(command, --flag): where}` for every command line written in the docs: README.md, DEVELOPERS.md and the notebooks' prose."
    import json, re
    texts = [(p.name, p.read_text(encoding='utf-8')) for p in (ROOT/'README.md', ROOT/'DEVELOPERS.md')]
    for nb in sorted((ROOT/'nbs').rglob('*.ipynb')):
        cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
        texts.append((str(nb.relative_to(ROOT)), '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')))
    found = {}
    for where, text in texts:
        text = text.replace('\\\n', ' ')   # a command continued on the next line
        for m in re.finditer(r'\b(clustercam_[a-z_]+)\b([^`\n]*)', text):
            if m.group(1) not in COMMANDS: continue
            rest = re.split(r'\bclustercam_[a-z_]+\b|[;&|]', m.group(2))[0]
            for flag in re.findall(r'(?<![\w-])--[a-z][a-z0-9_-]*', rest): found.setdefault((m.group(1), flag), where)
    return found


def listed_flags(command: str) -> set:
    "The options `command --help` lists."
    import importlib, re
    module, function = COMMANDS[command].split(':')
    return set(re.findall(r'--[a-z][a-z0-9_-]*', getattr(importlib.import_module(module), function).parser().format_help()))


def test_documented_flags_are_listed():
    "Every option a doc passes to a command is one that command's --help lists (an old or unlisted spelling is not)."
    docs = documented_flags()
    assert ('clustercam_train', '--preset') in docs   # the scan finds the quick start's commands
    listed = {c: listed_flags(c) for c in {c for c, _ in docs}}
    bad = sorted(f"{where}: {command} {flag}" for (command, flag), where in docs.items() if flag not in listed[command])
    assert not bad, "options the docs use that --help does not list:\n" + '\n'.join(bad)
