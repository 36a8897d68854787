"""The package's layout (DEVELOPERS.md, *Layout*): no import cycle between its modules, the library never
imports the harness (`clustercam.harness`) or the test support (`clustercam.testing`), and no module hides
an import inside a function, where a reader of the module's first lines would not see the dependency."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/'clustercam'
# Imported where used, on purpose: optional or heavy packages a run may never need, and a module importing
# its own function by name (a spawned worker process unpickles it from there, not from a notebook's __main__).
LAZY_OK = {'pydensecrf': 'optional: the dense CRF', 'pycocotools': 'COCO only', 'safetensors': 'export only',
           'torch.utils.flop_counter': 'the benchmark only', 'tqdm': 'progress bars only', 'resource': 'Unix only',
           'timm.data': 'the training transforms only', 'timm.scheduler': 'training only',
           'timm.models.vision_transformer': 'the backbone pretraining only', 'timm': 'DeiT weights only',
           'torch.utils.tensorboard': 'optional: --tensorboard'}
# The authors' modules, importable only once `clustercam_bench --reference-dir` has put their checkout on the path.
REFERENCE_CODE = {'clustercam.harness.bench': ('models', 'utils', 'PAR', 'seg')}

def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def imports(tree: ast.AST, name: str, is_pkg: bool):
    "(imported module, inside a function or class?) for every import statement in `tree`."
    def walk(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names: yield a.name, nested
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split('.') if is_pkg else name.split('.')[:-1]
                    base = base[:len(base) - child.level + 1]
                    mod = '.'.join(base + ([child.module] if child.module else []))
                else: mod = child.module
                yield mod, nested
                for a in child.names:   # `from . import fastpaths`: the submodule
                    if f'{mod}.{a.name}' in MODULES: yield f'{mod}.{a.name}', nested
            yield from walk(child, inner)
    yield from walk(tree, False)

FILES = {module_name(p): p for p in sorted(PKG.rglob('*.py'))}
MODULES = set(FILES)

def graph():
    "{module: [(imported clustercam module or third-party name, nested)]}"
    out = {}
    for name, path in FILES.items():
        out[name] = list(imports(ast.parse(path.read_text()), name, path.name == '__init__.py'))
    return out

def internal_edges(g):
    return {m: {t for t, _ in deps if t in MODULES and t != m} for m, deps in g.items()}

def find_cycle(edges):
    state = {}
    def visit(m, path):
        state[m] = 'open'
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 'open': return path + [m, t]
            if t not in state:
                c = visit(t, path + [m])
                if c: return c
        state[m] = 'done'
    for m in sorted(edges):
        if m not in state:
            c = visit(m, [])
            if c: return c

def is_library(m): return not (m.startswith('clustercam.harness') or m == 'clustercam.testing' or m == 'clustercam._modidx')

def test_no_import_cycle():
    cycle = find_cycle(internal_edges(graph()))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"

def test_library_never_imports_harness_or_testing():
    bad = [(m, t) for m, ts in internal_edges(graph()).items() if is_library(m)
           for t in ts if t.startswith('clustercam.harness') or t == 'clustercam.testing']
    assert not bad, f"library modules importing the harness or the test support: {bad}"

def test_no_hidden_imports():
    bad = []
    for m, deps in graph().items():
        for t, nested in deps:
            if not nested or t == m or t.split('.')[0] in REFERENCE_CODE.get(m, ()): continue
            if t in MODULES or not any(t == ok or t.startswith(ok + '.') for ok in LAZY_OK): bad.append(f'{m}: {t}')
    assert not bad, "imports inside functions (move them to the module's imports): " + ', '.join(bad)

def test_harness_is_a_package():
    assert (PKG/'harness'/'__init__.py').is_file()
    assert {'clustercam.harness.bench', 'clustercam.harness.demo', 'clustercam.harness.gpucheck',
            'clustercam.harness.pretrain', 'clustercam.harness.study'} <= MODULES
    assert 'clustercam.core' not in MODULES

def test_the_checker_catches_what_it_should():
    "The checks on a made-up graph: a cycle, an upward import, a hidden one."
    test_edges = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}}
    assert find_cycle(test_edges) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None
    tree = ast.parse("import os\ndef f():\n    from .model import X\n    import json\n")
    assert list(imports(tree, 'clustercam.train', False)) == [('os', False), ('clustercam.model', True), ('json', True)]
