"nbdev_export must leave clustercam/ unchanged: the notebooks and the package are in step."
import shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree(d: Path):
    return {p.relative_to(d): p.read_bytes() for p in d.rglob('*.py') if '__pycache__' not in p.parts}


def test_export_in_sync(tmp_path):
    for name in ('settings.ini', 'nbs', 'clustercam'):
        src = ROOT/name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/name)
    before = _tree(tmp_path/'clustercam')
    exe = Path(sys.executable).parent/'nbdev_export'
    subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True)
    after = _tree(tmp_path/'clustercam')
    changed = sorted(str(p) for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"nbdev_export changed {changed}: run nbdev_export and commit the package"
