#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, with warnings as errors: the user guide
# (docs/*.md), the API reference (docs/api/, from the docstrings) and the gallery (every
# docs/examples/plot_*.py runs, about 1-2 minutes on two cores). Before the build, the guides'
# code blocks run and the site's sources are checked (tests/test_docs.py, test_docs_site.py).
#
#   bash scripts/docs.sh              set up (setup.sh + the docs extra), test, build
#   bash scripts/docs.sh --no-tests   skip the tests (CI runs them in the suite just before)
#   bash scripts/docs.sh --no-gallery build without running the examples (a quick look)
#
# DOCS_PYTHON=/path/to/python uses an existing environment that has the docs extra instead
# of setting up .venv. The build needs no network (see docs/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests=1
sphinx_options=()
for arg in "$@"; do
    case "$arg" in
        --no-tests) run_tests=0 ;;
        --no-gallery) sphinx_options+=(-D plot_gallery=0) ;;
        *) echo "unknown option $arg (use --no-tests, --no-gallery)" >&2; exit 2 ;;
    esac
done

if [ -n "${DOCS_PYTHON:-}" ]; then
    PY=$DOCS_PYTHON
else
    bash scripts/setup.sh
    PY=.venv/bin/python
    if ! "$PY" -c "import sphinx, sphinx_gallery, numpydoc, myst_parser, pydata_sphinx_theme" \
            2>/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check -e ".[deep,dev,docs]"
    fi
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MPLBACKEND=Agg

if [ "$run_tests" = 1 ]; then
    "$PY" -m pytest -p no:cacheprovider -q tests/test_docs.py tests/test_docs_site.py
fi

# A clean build, so that every example runs again (sphinx-gallery skips unchanged ones).
rm -rf docs/_build/html docs/_build/doctrees docs/auto_examples docs/api/generated \
    docs/sg_execution_times.rst
start=$(date +%s)
"$PY" -m sphinx -b html -W --keep-going -q ${sphinx_options[@]+"${sphinx_options[@]}"} \
    docs docs/_build/html
echo "site built in $(( $(date +%s) - start )) s: docs/_build/html/index.html"
# What a reader would notice without looking: missing images, raw Markdown, no theme.
"$PY" scripts/check_site.py docs/_build/html index.html api/index.html \
    api/generated/skmetric.NCA.html auto_examples/index.html user_guide.html choosing.html
if [ -f docs/sg_execution_times.rst ]; then
    grep -o '\*\*[0-9:.]*\*\* total execution time.*' docs/sg_execution_times.rst || true
fi
