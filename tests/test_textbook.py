"""The model modules read as the paper: short functions, and no CPU speed path of their own.

Every speed path lives in `clustercam.fastpaths` (chapter 14_fastpaths); the model modules only call its hooks."""
import ast, re
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'clustercam'
MODEL_MODULES = ('backbone.py', 'class_attention.py', 'model.py')


def function_lengths(path):
    "{qualified name: lines} of every function and method in `path` (decorators and docstring included)."
    tree, out = ast.parse(path.read_text()), {}
    def visit(node, prefix=''):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                out[prefix + child.name] = child.end_lineno - start + 1
                visit(child, prefix + child.name + '.')
            elif isinstance(child, ast.ClassDef): visit(child, prefix + child.name + '.')
    visit(tree)
    return out


@pytest.mark.parametrize('name', MODEL_MODULES)
def test_short_functions(name):
    long = {f: n for f, n in function_lengths(PKG/name).items() if n > 40}
    assert not long, f"{name}: functions over 40 lines: {long}"


def test_token_attention_forward_is_short():
    n = function_lengths(PKG/'backbone.py')['TokenAttention.forward']
    assert n <= 25, f"TokenAttention.forward is {n} lines (at most 25)"


@pytest.mark.parametrize('name', MODEL_MODULES)
def test_no_cpu_speed_code(name):
    bad = [f"{i}: {line.strip()}" for i, line in enumerate((PKG/name).read_text().splitlines(), 1)
           if re.search(r'onednn|bf16|bfloat16|num_threads|get_num_threads', line, re.I)]
    assert not bad, f"{name}: CPU speed code belongs in clustercam/fastpaths.py: {bad}"
