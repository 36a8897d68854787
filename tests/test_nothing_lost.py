"""Nothing lost, nothing false. Every numeric option of every command refuses a value outside its range in one
line; bad checkpoint files are named for what they are; a command never writes over an earlier run's results;
a run folder holds one run (a lock, a refusal, a resume that refuses changed settings); Ctrl-C ends a command
with status 130 and one line, its workers with it.

Ctrl-C as a terminal sends it: to the whole process group of a child that has SIGINT at its default (a script's
background jobs start with it ignored, hence the `preexec_fn`)."""
import contextlib, importlib, io, os, re, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch

from clustercam.model import ClusterCAM
from clustercam.synthetic import make_synthetic_voc
from test_commands import COMMANDS, TINY_TRAIN, env

ROOT = Path(__file__).resolve().parents[1]
POSITIONAL = {'clustercam_synth': ['OUT'], 'clustercam_pretrain': ['OUT.pth']}   # their required arguments


def command(name: str):
    module, function = COMMANDS[name].split(':')
    return getattr(importlib.import_module(module), function)


def stopped(f, *argv) -> tuple:
    "`(exit code, stderr)` of `f(argv=argv)` in this process; the exit code is the one-line message for `sys.exit(text)`."
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try: f(argv=[str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, err.getvalue()


def outside(spec: str) -> list:
    "Values just outside the range `spec` ('[0, 1]', '(0, 4]', '>= 1', ...)."
    num = lambda t: int(t) if re.fullmatch(r'-?\d+', t) else float(t)
    if m := re.fullmatch(r'\s*(>=|>|<=|<)\s*(\S+)\s*', spec):
        op, b = m.group(1), num(m.group(2))
        return [{'>=': b - 1, '>': b, '<=': b + 1, '<': b}[op]]
    m = re.fullmatch(r'\s*([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])\s*', spec)
    lo, hi = num(m.group(2)), num(m.group(3))
    return [lo if m.group(1) == '(' else lo - 1, hi if m.group(4) == ')' else hi + 1]


def numeric_options(name: str):
    "`(option string, action)` of every option of `name` that takes numbers."
    p = command(name).parser()
    for a in p._actions:
        if a.option_strings and getattr(a.type, '__name__', None) in ('int', 'float'): yield a.option_strings[0], a


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_every_numeric_option_refuses_values_outside_its_range(name):
    f, unranged, tried = command(name), [], 0
    helptext = ' '.join(f.parser().format_help().split())   # as wrapped lines read
    for opt, action in numeric_options(name):
        spec = getattr(action.type, 'range', None)
        if spec is None: unranged.append(opt); continue
        assert spec in helptext, f"{name} --help does not show the range {spec} of {opt}"
        for v in outside(spec):
            code, err = stopped(f, *POSITIONAL.get(name, []), opt, v)
            assert code == 2, f"{name} {opt} {v}: exit {code!r}, stderr {err!r}"
            lines = err.strip().splitlines()
            assert len(lines) == 1 and 'Traceback' not in err, err
            assert f"argument {opt}" in lines[0] and "must be" in lines[0], lines[0]
            tried += 1
    assert not unranged, f"{name}: numeric options without a range: {unranged}"
    print(f"{name}: {tried} out-of-range values refused")


# ---------------------------------------------------------------- a tiny data set and checkpoint

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp('lost')
    data = make_synthetic_voc(d/'data', n_train=8, n_val=2, size=64, seed=0, n_classes=3)
    torch.manual_seed(0)
    net = ClusterCAM(3, embed_dim=32, depth=2, num_heads=2, st_depth=2, patch_size=16, decoder_width=16)
    torch.save({'model': net.state_dict(), 'config': {'num_heads': 2, 'classes': ['disc', 'square', 'triangle']}}, d/'net.pth')
    full = (d/'net.pth').read_bytes()
    bad = {'empty': b'', 'truncated': full[:len(full) // 3], 'text': b'epoch 3, mIoU 0.5\n',
           'foreign': (data/'JPEGImages'/sorted(os.listdir(data/'JPEGImages'))[0]).read_bytes()}
    for kind, content in bad.items(): (d/f'{kind}.pth').write_bytes(content)
    return dict(dir=d, data=data, ck=d/'net.pth', bad={k: d/f'{k}.pth' for k in bad})


SAYS = {'empty': 'is empty (0 bytes)', 'truncated': 'is truncated or damaged', 'text': 'is not a checkpoint',
        'foreign': 'is not a checkpoint'}


@pytest.mark.parametrize('kind', sorted(SAYS))
def test_a_bad_checkpoint_file_is_named_in_one_line(kind, world):
    "Each door a weight file comes in by: the flag it came from, the file, what it is not; no advice to unpickle."
    f, data, out = world['bad'][kind], world['data'], world['dir']/f'ck_{kind}'
    tiny = [*TINY_TRAIN, '--data-path', data]
    doors = [('clustercam_infer', '--weights', ['--weights', f, '--data-path', data, '--dataset', 'synthetic']),
             ('clustercam_cams', '--weights', ['--weights', f, '--data-path', data, '--dataset', 'synthetic']),
             ('clustercam_export', '--weights', ['--weights', f, '--out', out/'x.safetensors']),
             ('clustercam_train', '--finetune', [*tiny, '--output-dir', out/'ft', '--finetune', f]),
             ('clustercam_train', '--init', [*tiny, '--output-dir', out/'init', '--init', f]),
             ('clustercam_train', '--resume', [*tiny, '--output-dir', out/'resume', '--resume', f])]
    for name, flag, argv in doors:
        code, err = stopped(command(name), *argv)
        assert isinstance(code, str) and '\n' not in code and not err, (name, code, err)
        assert code.startswith(f"{name}: {flag}") and str(f) in code and SAYS[kind] in code, (name, code)
        assert 'weights_only' not in code and 'pickle' not in code, code


def test_a_checkpoint_of_another_width_says_so_in_one_line(world):
    code, _ = stopped(command('clustercam_train'), *TINY_TRAIN, '--data-path', world['data'], '--output-dir',
                      world['dir']/'wide', '--finetune', world['ck'])
    assert isinstance(code, str) and '\n' not in code, code
    assert 'does not fit the model: checkpoint has width 32, model 16' in code and len(code) < 400, code


# ---------------------------------------------------------------- outputs are never mixed with earlier ones

def test_outputs_are_not_written_over_earlier_ones(world, tmp_path):
    synth = command('clustercam_synth')
    assert stopped(synth, tmp_path/'set', '--n-train', 2, '--n-val', 1, '--size', 32)[0] == 0
    before = {p: p.read_bytes() for p in (tmp_path/'set').rglob('*') if p.is_file()}
    code, _ = stopped(synth, tmp_path/'set', '--n-train', 3, '--n-val', 1, '--size', 48, '--seed', 1)
    assert isinstance(code, str) and 'already holds files' in code and str(tmp_path/'set') in code, code
    assert {p: p.read_bytes() for p in (tmp_path/'set').rglob('*') if p.is_file()} == before   # nothing rewritten, nothing added

    for name in ('clustercam_infer', 'clustercam_cams'):
        out = tmp_path/name; out.mkdir(); (out/'results.json').write_text('{"miou": 0.5}')
        code, _ = stopped(command(name), '--weights', world['ck'], '--data-path', world['data'], '--dataset', 'synthetic',
                          '--out', out)
        assert isinstance(code, str) and f"--out {out} already holds files (results.json)" in code, code

    umask = os.umask(0o022)
    try:
        export = command('clustercam_export')
        assert stopped(export, '--weights', world['ck'], '--out', tmp_path/'net.safetensors')[0] == 0
        assert (tmp_path/'net.safetensors').stat().st_mode & 0o777 == 0o644   # the umask's mode, not mkstemp's 0600
        assert (tmp_path/'net.json').stat().st_mode & 0o777 == 0o644
        code, _ = stopped(export, '--weights', world['ck'], '--out', tmp_path/'net.safetensors')
        assert isinstance(code, str) and 'exists; give a new file name' in code, code
    finally: os.umask(umask)

    (tmp_path/'file').write_text('x')
    code, _ = stopped(command('clustercam_pretrain'), tmp_path/'file'/'vit.pth', '--steps', 2, '--n-images', 610, '--image-size', 32)
    assert isinstance(code, str) and 'is a file, not a folder' in code, code    # before training, not after


# ---------------------------------------------------------------- one run, one folder; Ctrl-C

def terminal_child(argv, **kw) -> subprocess.Popen:
    "A child as a terminal starts it: SIGINT at its default, in a process group of its own (which Ctrl-C signals)."
    def setup(): signal.signal(signal.SIGINT, signal.SIG_DFL); os.setpgrp()
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), preexec_fn=setup, **kw)


def train_argv(run: Path, *extra):
    code = "import sys; from clustercam.train import clustercam_train; sys.exit(clustercam_train())"
    return [sys.executable, '-c', code, *map(str, [*TINY_TRAIN, '--output-dir', run, *extra])]


def wait_for(cond, p, what, timeout=300):
    t0 = time.time()
    while not cond():
        assert p.poll() is None, f"ended before {what}: {p.communicate()[1][-2000:]}"
        assert time.time() - t0 < timeout, f"no {what} after {timeout} s"
        time.sleep(0.05)


def test_a_run_folder_holds_one_run(world):
    run = world['dir']/'one_run'
    a = terminal_child(train_argv(run, '--data-path', world['data'], '--epochs', 100, '--save-every-steps', 1))
    try: first_run_stopped(a, run, world)
    finally:
        if a.poll() is None: os.killpg(a.pid, signal.SIGKILL); a.wait()
    ck, config = (run/'checkpoint_last.pth').read_bytes(), (run/'config.json').read_text()

    c = subprocess.run(train_argv(run, '--data-path', world['data']), capture_output=True, text=True, env=env(), timeout=300)
    assert c.returncode == 1 and 'it holds a run: continue it with --resume auto, or replace it with --overwrite' in c.stderr, c.stderr
    d = subprocess.run(train_argv(run, '--resume', 'auto', '--lr', 0.5), capture_output=True, text=True, env=env(), timeout=300)
    assert d.returncode == 1 and len(d.stderr.strip().splitlines()) == 1, d.stderr
    assert "--lr 0.5 (the run's: 0.032) differ" in d.stderr, d.stderr
    assert (run/'checkpoint_last.pth').read_bytes() == ck and (run/'config.json').read_text() == config   # nothing touched


def first_run_stopped(a: subprocess.Popen, run: Path, world):
    "While run `a` trains: a second run into its folder stops at once; then Ctrl-C stops `a` with status 130, one line."
    wait_for(lambda: (run/'checkpoint_last.pth').exists(), a, 'checkpoint_last.pth')
    b = subprocess.run(train_argv(run, '--data-path', world['data']), capture_output=True, text=True, env=env(), timeout=300)
    assert b.returncode == 1 and b.stderr.strip() == b.stderr.strip().splitlines()[0], b.stderr
    assert f"{run} is in use by process {a.pid}" in b.stderr, b.stderr            # the second run: at once, naming the first
    os.killpg(a.pid, signal.SIGINT)                                               # Ctrl-C
    _, err = a.communicate(timeout=300)
    assert a.returncode == 130 and 'Traceback' not in err, (a.returncode, err[-2000:])
    assert re.search(r"stopped by SIGINT after step \d+; resume with --resume \S+checkpoint_last.pth$", err.strip()), err
    assert not (run/'.lock').exists()


def children(pid: int) -> list:
    try: return (Path(f'/proc/{pid}/task/{pid}/children').read_text()).split()
    except OSError: return []


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='needs /proc to see the workers')
def test_ctrl_c_ends_inference_and_its_crf_workers_in_one_line(world):
    # the CRF workers start at once (8 images would not pay for them), and each prediction takes a second longer, so
    # the run is still going when the signal comes, however busy the machine
    code = ("import sys, time, clustercam.infer as infer; infer.POOL_START_SECONDS = 0\n"
            "plain = infer.predictions\n"
            "def slow(*a, **k):\n"
            "    for p in plain(*a, **k): time.sleep(1.0); yield p\n"
            "infer.predictions = slow\n"
            "sys.exit(infer.clustercam_infer())")
    p = terminal_child([sys.executable, '-c', code, '--weights', world['ck'], '--data-path', world['data'], '--dataset', 'synthetic',
                        '--split', 'train', '--crf', 'on', '--workers', '2', '--scales', '1', '--progress', 'false'])
    try:
        wait_for(lambda: len(children(p.pid)) >= 2, p, 'CRF workers')
        workers = children(p.pid)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode == 130, (p.returncode, err[-3000:])
    assert err.strip() == "clustercam_infer: stopped by Ctrl-C; the files written so far are whole", err[-3000:]
    time.sleep(0.5)
    assert not [w for w in workers if Path(f'/proc/{w}').exists() and 'Z' not in Path(f'/proc/{w}/stat').read_text().split()[2]]


def stopped_by_ctrl_c(argv, ready, what, timeout=120) -> tuple:
    "Start `argv` as a terminal does, wait for `ready()`, press Ctrl-C; `(exit code, stderr, the workers seen)`."
    p = terminal_child(argv)
    try:
        wait_for(ready(p), p, what)
        workers = children(p.pid)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.wait()
    return p.returncode, err, workers


def alive(pids) -> list:
    "The processes of `pids` still running (not zombies)."
    def running(w):
        try: return 'Z' not in Path(f'/proc/{w}/stat').read_text().split()[2]
        except OSError: return False
    time.sleep(0.5)
    return [w for w in pids if running(w)]


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='needs /proc to see the workers')
def test_ctrl_c_ends_cams_in_one_line(world, tmp_path):
    # each image's files take a second longer, so the run is still going when the signal comes
    code = ("import sys, time, clustercam.cams as cams\n"
            "plain = cams._save_image\n"
            "def slow(*a, **k): plain(*a, **k); time.sleep(1.0)\n"
            "cams._save_image = slow\n"
            "sys.exit(cams.clustercam_cams())")
    out = tmp_path/'cams'
    argv = [sys.executable, '-c', code, '--weights', world['ck'], '--data-path', world['data'], '--dataset', 'synthetic',
            '--split', 'train', '--out', out, '--scales', '1', '--progress', 'false']
    rc, err, _ = stopped_by_ctrl_c(argv, lambda p: lambda: (out/'seeds').is_dir() and any((out/'seeds').iterdir()), 'a seed file')
    assert rc == 130, (rc, err[-3000:])
    assert err.strip() == "clustercam_cams: stopped by Ctrl-C; the files written so far are whole", err[-3000:]


# the arms train side by side (quick runs them one after another) for 1000 epochs: only Ctrl-C ends them in time
TRAINING_ARMS = "\n".join(["import sys, clustercam.harness.demo as demo, clustercam.harness.study as study",
                           "def side_by_side(plain): return lambda *a, **k: plain(*a, **{**k, 'parallel': True})",
                           "demo.run_demo, study.run_study = side_by_side(demo.run_demo), side_by_side(study.run_study)",
                           "demo.QUICK_OVERRIDES['epochs'] = study.STUDY_CONDITIONS['baseline']['training']['epochs'] = 1000"])


def sigint_ignored(pid) -> bool:
    "Whether process `pid` ignores SIGINT (bit 2 of its SigIgn mask)."
    return bool(int(Path(f'/proc/{pid}/status').read_text().split('SigIgn:')[1].split()[0], 16) & (1 << (signal.SIGINT - 1)))


def arm_workers(ignoring: dict):
    """Ready when a child has started its two arm workers and given them a second to start importing; `ignoring`:
    worker -> whether it ignored SIGINT when first seen (from its start; training's own handler comes seconds later)."""
    def ready_for(p):
        t = []
        def ready():
            for w in children(p.pid):
                try:
                    if w not in ignoring and '--multiprocessing-fork' in Path(f'/proc/{w}/cmdline').read_text(): ignoring[w] = sigint_ignored(w)
                except OSError: pass
            if len(ignoring) < 2: return False
            t.append(time.time()); return t[-1] - t[0] > 1.0
        return ready
    return ready_for


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='needs /proc to see the workers')
def test_ctrl_c_ends_the_demo_and_its_arm_workers_in_one_line(tmp_path):
    code = TRAINING_ARMS + "\ndemo.main()"
    ignoring = {}
    rc, err, workers = stopped_by_ctrl_c([sys.executable, '-c', code, tmp_path/'demo', '--quick'], arm_workers(ignoring), 'arm workers', timeout=60)
    assert len(ignoring) == 2 and all(ignoring.values()), ignoring   # a terminal's Ctrl-C reaches them too: the parent answers
    assert rc == 130, (rc, err[-3000:])
    assert err.strip() == ("clustercam.harness.demo: stopped by Ctrl-C; the files written so far are whole; "
                           "run it again to start over"), err[-3000:]
    assert not alive([*workers, *ignoring])


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='needs /proc to see the workers')
def test_ctrl_c_ends_the_study_and_its_arm_workers_in_one_line(tmp_path):
    code = TRAINING_ARMS + "\nsys.exit(study.clustercam_study())"
    argv = [sys.executable, '-c', code, '--out', tmp_path/'study', '--quick', '--n-seeds', '1']
    ignoring = {}
    rc, err, workers = stopped_by_ctrl_c(argv, arm_workers(ignoring), 'arm workers', timeout=60)
    assert len(ignoring) == 2 and all(ignoring.values()), ignoring   # a terminal's Ctrl-C reaches them too: the parent answers
    assert rc == 130, (rc, err[-3000:])
    assert err.strip() == "clustercam_study: stopped by Ctrl-C; the files written so far are whole", err[-3000:]
    assert not alive([*workers, *ignoring])
