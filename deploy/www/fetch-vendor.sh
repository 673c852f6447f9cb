#!/bin/bash
# Installs the npm packages of deploy/www/package.json (exact versions, from
# package-lock.json) and copies the files the site serves into deploy/www/vendor/
# (not committed).  Run at install time; needs node and npm, and the npm
# registry or npm's cache.
#
#   deploy/www/fetch-vendor.sh             runtime packages only (swagger-ui-dist)
#   deploy/www/fetch-vendor.sh --with-dev  also the OpenAPI validator the tests use
#
# Package install scripts are never run (--ignore-scripts): swagger-ui-dist
# depends on @scarf/scarf, whose install script reports the download home.
set -euo pipefail

www=$(cd "$(dirname "$0")" && pwd)
dev=0
case "${1:-}" in
--with-dev) dev=1 ;;
'') ;;
*) echo "usage: $0 [--with-dev]" >&2; exit 2 ;;
esac

for c in node npm; do
	command -v "$c" >/dev/null 2>&1 || { echo "fetch-vendor: $c is missing (apt-get install -y nodejs npm)" >&2; exit 1; }
done

export SCARF_ANALYTICS=false npm_config_fund=false npm_config_audit=false \
    npm_config_update_notifier=false

cd "$www"
# npm ci only when node_modules does not hold what the lock file names.
want=$(node -p 'require("./package-lock.json").packages["node_modules/swagger-ui-dist"].version')
have=$(node -p 'try { require("./node_modules/swagger-ui-dist/package.json").version } catch (e) { "" }')
need=0
[ "$want" = "$have" ] || need=1
if [ $dev = 1 ]; then
	for p in @readme/openapi-parser ajv; do [ -f "node_modules/$p/package.json" ] || need=1; done
fi
if [ $need = 1 ]; then
	if [ $dev = 1 ]; then
		npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
	else
		npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error --omit=dev
	fi
fi

src=node_modules/swagger-ui-dist
rm -rf vendor.new
mkdir -p vendor.new/swagger-ui
cp "$src/swagger-ui-bundle.js" "$src/swagger-ui.css" "$src/LICENSE" "$src/NOTICE" \
    vendor.new/swagger-ui/
echo "swagger-ui-dist $want" > vendor.new/VERSIONS
rm -rf vendor
mv vendor.new vendor
echo "fetch-vendor: vendor/ holds swagger-ui-dist $want"
