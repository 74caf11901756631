#!/usr/bin/env bash
# Look at the built site as a reader would: headless Chromium screenshots of the entry page,
# an API page and two gallery pages, into docs/_build/screenshots/, after checks that catch
# a broken build without looking: every image a page shows exists, no raw Markdown (``` or
# {toctree}) is left in the HTML, the theme's stylesheet is linked, and each screenshot is
# not blank. Build the site first (bash scripts/docs.sh). Needs Debian's chromium
# (installed here when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
HTML=docs/_build/html
OUT=docs/_build/screenshots
PY=${DOCS_PYTHON:-.venv/bin/python}
PAGES=(index.html api/generated/skmetric.NCA.html auto_examples/plot_nca_lmnn_wine.html
       auto_examples/plot_open_set_digits.html)

[ -f "$HTML/index.html" ] || { echo "no $HTML/index.html: run bash scripts/docs.sh" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1
    fi
fi
mkdir -p "$OUT"
"$PY" scripts/check_site.py "$HTML" "${PAGES[@]}"
for page in "${PAGES[@]}"; do
    height=1800
    case "$page" in auto_examples/*) height=4000 ;; esac  # down to the figures
    png="$OUT/$(echo "$page" | tr '/' '_' | sed 's/\.html$/.png/')"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,"$height" \
        --screenshot="$png" "file://$PWD/$HTML/$page" >/dev/null 2>&1
    echo "$png"
done
"$PY" scripts/check_site.py --screenshots "$OUT"/*.png
