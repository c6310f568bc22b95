#!/bin/sh
# Installs the web page's pinned npm packages (web/package-lock.json: the
# chart library; playwright-core for the browser tests; @redocly/cli, which
# lints openapi.json in ctest web_openapi_lint) and copies the
# files the page loads into web/vendor/.  No build step: the page is plain
# HTML, CSS and ES modules.  Safe to run again: npm ci runs only when the
# lock file is newer than what node_modules holds.
set -eu
cd "$(dirname "$0")/../web"
if [ ! -f node_modules/.package-lock.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p vendor
cp node_modules/chart.js/dist/chart.umd.min.js vendor/chart.umd.min.js
cp node_modules/chart.js/LICENSE.md vendor/chart.js.LICENSE.md
