"""Export cells of the chapters: how many, their median length (non-blank lines) and the share holding three or more
definitions (functions, classes, assignments at the top level).

    python tools/cell_stats.py [NOTEBOOK ...]      # default: nbs/**/*.ipynb
"""
import ast, glob, json, statistics, sys


def export_cells(path):
    for c in json.load(open(path))['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and src.startswith('#| export'): yield src


def definitions(src: str) -> int:
    body = ast.parse('\n'.join(l for l in src.split('\n') if not l.startswith('#|'))).body
    return sum(isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)) for x in body)


def main(paths):
    cells = [src for p in paths for src in export_cells(p)]
    lengths = [sum(1 for l in src.split('\n') if l.strip()) for src in cells]
    several = sum(definitions(src) >= 3 for src in cells)
    print(f'{len(cells)} export cells in {len(paths)} notebooks: median {statistics.median(lengths):g} lines, '
          f'{100 * several / len(cells):.1f} % with 3+ definitions')


if __name__ == '__main__':
    main(sys.argv[1:] or sorted(glob.glob('nbs/**/*.ipynb', recursive=True)))
