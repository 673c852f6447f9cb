#!/bin/bash
# Installs the browser tests' npm packages (package-lock.json: exact versions)
# into tests/browser/node_modules.  playwright-core downloads no browser: the
# tests drive Debian's chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null 2>&1 || { echo "setup: npm is missing (apt-get install -y nodejs npm)" >&2; exit 1; }
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
