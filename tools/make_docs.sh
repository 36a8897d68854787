#!/usr/bin/env bash
# `make docs`: the documentation site in _docs/.
# - Quarto present (and DOCS_LOCAL unset): nbdev_docs, nbdev's own Quarto build (it also writes README.md).
# - Otherwise: the local render, tools/render_docs.py (nbdev's notebook processing, then pandoc), after
#   `make readme`'s refresh of README.md, the chapter list and nbs/sidebar.yml.
# Both render the notebooks with their stored outputs (`make outputs` refreshes them); Quarto executes
# nothing (_quarto.yml: execute enabled false) and nbdev runs only the cells it needs for show_doc.
# Environment: DOCS_LOCAL=1 forces the local render; DOCS_EXEC=1 executes the notebooks again for the
# local render instead of using the stored outputs; DOCS_JOBS=N notebooks executed at a time (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

if command -v quarto >/dev/null 2>&1 && [ -z "${DOCS_LOCAL:-}" ]; then
    "$VENV/bin/nbdev_docs"
    # nbdev_docs rewrites README.md through Quarto; keep the project's own (tests/test_readme.py checks it)
    exec "$PY" tools/make_readme.py
fi

if ! command -v pandoc >/dev/null 2>&1; then
    echo "[docs] pandoc is missing; installing pandoc and chromium (tools/install_docs_deps.sh)" >&2
    bash tools/install_docs_deps.sh || { echo "[docs] could not install pandoc: run 'apt-get install -y pandoc chromium' as root" >&2; exit 1; }
fi
"$PY" tools/make_readme.py
"$PY" tools/render_docs.py --screenshot "$@"
