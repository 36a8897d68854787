"""The model modules read as the paper: short functions, and no CPU speed path of their own.

Every speed path lives in `clustercam.fastpaths` (chapter 14_fastpaths); the model modules only call its hooks, and
only under the switch they resolved when they were built (`self.fastpaths`): no switch or environment read per call."""
import ast, re
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'clustercam'
MODEL_MODULES = ('backbone.py', 'class_attention.py', 'model.py')
METHOD_MODULES = MODEL_MODULES + ('clustering.py', 'refine.py')


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


def hook_calls_outside_switch(tree):
    "Lines of calls `fastpaths.<hook>(...)` not under a test of `self.fastpaths` (an `if` or a conditional expression)."
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    def switched(node):
        while node in parents:
            node, parent = parents[node], parents[node]
            if isinstance(parent, (ast.If, ast.IfExp)) and 'self.fastpaths' in ast.unparse(parent.test): return True
        return False
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id == 'fastpaths' and not switched(node)]


@pytest.mark.parametrize('name', METHOD_MODULES)
def test_switch_resolved_once(name):
    "The method's modules read no switch or environment per call; every speed-path hook runs under `self.fastpaths`."
    source = (PKG/name).read_text()
    bad = [f"{i}: {line.strip()}" for i, line in enumerate(source.splitlines(), 1)
           if re.search(r'os\.environ|getenv|use_fastpaths|contextvar|fastpaths\.(enabled|disabled)\b', line)]
    assert not bad, f"{name}: reads a switch per call: {bad}"
    outside = hook_calls_outside_switch(ast.parse(source))
    assert not outside, f"{name}: fastpaths hooks called outside `if self.fastpaths` on lines {outside}"
