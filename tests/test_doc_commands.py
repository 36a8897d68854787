"""Every command the README and the tutorials write exists as written: the README names every console script
(settings.ini), and every `--flag` written after a command name is an option its `--help` lists."""
import ast, configparser, importlib, json, re, subprocess, sys
from functools import lru_cache
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))


def console_scripts() -> dict:
    "{command: 'module:function'} from settings.ini's console_scripts."
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return dict(line.strip().split('=', 1) for line in cfg['DEFAULT']['console_scripts'].splitlines() if line.strip())


COMMANDS = console_scripts()
MODULES = {spec.split(':')[0]: name for name, spec in COMMANDS.items()}   # `python -m clustercam.infer` / `torchrun -m`


@lru_cache(maxsize=None)
def listed_options(command: str) -> frozenset:
    "The options `command --help` lists (hidden old spellings excluded)."
    module, func = COMMANDS[command].split(':')
    parser = getattr(importlib.import_module(module), func).parser()
    return frozenset(o for a in parser._actions for o in a.option_strings)


_NAME = re.compile(r'\b(' + '|'.join(map(re.escape, sorted([*COMMANDS, *MODULES], key=len, reverse=True))) + r')\b')
_FLAG = re.compile(r'(?<![\w-])--[a-z][a-z0-9_-]*')


def _flags_after_names(line: str) -> list[tuple[str, str, str]]:
    "Each `--flag` after a command's name, up to the next command's name or a shell comment."
    hits, found = list(_NAME.finditer(line)), []
    for i, m in enumerate(hits):
        end = hits[i + 1].start() if i + 1 < len(hits) else len(line)
        span = re.split(r'\s#\s', line[m.end():end])[0]
        found += [(MODULES.get(m.group(1), m.group(1)), f, line.strip()) for f in _FLAG.findall(span)]
    return found


def flags_in_text(text: str, markdown: bool = False) -> list[tuple[str, str, str]]:
    """`(command, flag, line)` for each `--flag` written after a command's name on the same line (backslash
    continuations joined), up to the next command's name or a `#` comment. In `markdown`, only code counts:
    fenced blocks, each inline code span on its own, and table rows (a flag belongs to the command named before it in the row)."""
    found, fenced = [], False
    for line in text.replace('\\\n', ' ').splitlines():
        if markdown and line.lstrip().startswith('```'): fenced = not fenced; continue
        if not markdown or fenced: found += _flags_after_names(line); continue
        if line.lstrip().startswith('|'): found += _flags_after_names(line); continue   # a row: each flag to the command before it
        for span in re.findall(r'`([^`]+)`', line): found += _flags_after_names(span)
    return found


def flags_in_code(source: str, names: dict) -> list[tuple[str, str, str]]:
    "`(command, flag, call)` for `command(argv=[...])` calls in Python code, lists spliced in by name (`*tiny`) resolved from `names`."
    try: tree = ast.parse(source)
    except SyntaxError: return []
    def strings(node):
        if isinstance(node, ast.Starred) and isinstance(node.value, ast.Name): return names.get(node.value.id, [])
        if isinstance(node, ast.Constant) and isinstance(node.value, str): return [node.value]
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in COMMANDS:
            for kw in node.keywords:
                if kw.arg == 'argv' and isinstance(kw.value, (ast.List, ast.BinOp)):
                    parts = [kw.value] if isinstance(kw.value, ast.List) else [kw.value.left, kw.value.right]
                    for part in parts:
                        elts = part.elts if isinstance(part, ast.List) else [ast.Starred(part)] if isinstance(part, ast.Name) else []
                        for e in elts:
                            found += [(node.func.id, s, node.func.id) for s in strings(e) if _FLAG.fullmatch(s)]
    return found


def list_assignments(sources: list[str]) -> dict:
    "Names assigned a list of strings in `sources`: `tiny = ['--preset', ...]`."
    names = {}
    for src in sources:
        try: tree = ast.parse(src)
        except SyntaxError: continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List) and len(node.targets) == 1 \
               and isinstance(node.targets[0], ast.Name):
                names[node.targets[0].id] = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return names


def notebook_flags(path: Path) -> list[tuple[str, str, str]]:
    cells = json.loads(path.read_text(encoding='utf-8'))['cells']
    code = [''.join(c['source']) for c in cells if c['cell_type'] == 'code']
    names = list_assignments(code)
    found = []
    for c in cells:
        src = ''.join(c['source'])
        found += flags_in_text(src, markdown=c['cell_type'] == 'markdown')
        if c['cell_type'] == 'code': found += flags_in_code(src, names)
    return found


def unknown(found) -> list[str]:
    return sorted({f"{cmd} {flag}   (in: {line[:100]})" for cmd, flag, line in found if flag not in listed_options(cmd)})


def test_readme_names_every_command():
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    missing = [c for c in COMMANDS if not re.search(rf'`{c}\b', readme)]
    assert not missing, f"README.md does not name these console scripts (settings.ini): {missing}"


def test_readme_flags_exist():
    found = flags_in_text((ROOT/'README.md').read_text(encoding='utf-8'), markdown=True)
    assert len(found) > 20, found                 # the command table and the examples were read
    bad = unknown(found)
    assert not bad, "README.md writes options that the command's --help does not list:\n" + '\n'.join(bad)


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.name)
def test_tutorial_flags_exist(path):
    bad = unknown(notebook_flags(path))
    assert not bad, f"{path.name} writes options that the command's --help does not list:\n" + '\n'.join(bad)


def test_flag_reader():
    "The reader itself: shell lines with continuations and comments, table rows, module forms, argv lists."
    text = ("clustercam_infer --weights W \\\n    --data-path D --crf both   # --not-this\n"
            "| `clustercam_cams` | seeds | `--bg-thr` |\n| 31 | no command here | `--init` |\n"
            "torchrun --nproc-per-node 4 -m clustercam.train --preset voc && clustercam_synth out --n-train 3\n")
    got = {(c, f) for c, f, _ in flags_in_text(text)}
    md = "```sh\n" + text + "```\nIn prose, `clustercam_infer` and `--resume` are two things; `clustercam_train --epochs 3` is one.\n"
    got_md = {(c, f) for c, f, _ in flags_in_text(md, markdown=True)}
    assert got_md == got | {('clustercam_train', '--epochs')}, got_md
    assert got == {('clustercam_infer', '--weights'), ('clustercam_infer', '--data-path'), ('clustercam_infer', '--crf'), ('clustercam_cams', '--bg-thr'),
                   ('clustercam_train', '--preset'), ('clustercam_synth', '--n-train')}, got
    code = "tiny = ['--epochs', '2']\nclustercam_train(argv=tiny + ['--output-dir', str(x)])\nclustercam_cams(argv=['--weights', w, *tiny])"
    got = {(c, f) for c, f, _ in flags_in_code(code, list_assignments([code]))}
    assert got == {('clustercam_train', '--epochs'), ('clustercam_train', '--output-dir'), ('clustercam_cams', '--weights'),
                   ('clustercam_cams', '--epochs')}, got
    assert '--skip-seg' not in listed_options('clustercam_train') and '--seg-start-epoch' in listed_options('clustercam_train')


def test_help_leaves_timm_unimported():
    "`--help` of every command imports neither timm nor torchvision (1.3 s of a 1.6 s --help when it did): they load where a network is built."
    code = ("import sys, importlib\n"
            f"for spec in {sorted(COMMANDS.values())!r}:\n"
            "    module, func = spec.split(':'); getattr(importlib.import_module(module), func).parser().format_help()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'timm', 'torchvision'}))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == '[]', f"importing the commands for --help loads {r.stdout.strip()}: import them inside the functions that need them"
