#!/bin/bash
# servers: one
# The page (GET /) and the docs (GET /docs) in a real browser: Debian's
# chromium, headless, driven by playwright-core (tests/browser/page.test.mjs).
# Skips with the reason when chromium or node is absent, or when the web server
# does not serve deploy/www yet.  Screenshots go to tests/artifacts/.
. "$(dirname "$0")/../lib.sh"

dir=$PYEXEC_TOP/tests/browser
chromium=${CHROMIUM:-/usr/bin/chromium}

skip_all() { skip "browser tests: $*"; t_done; exit 0; }

[ -x "$chromium" ] || skip_all "$chromium is missing (apt-get install -y chromium)"
need_cmd node npm || skip_all "node or npm is missing (apt-get install -y nodejs npm)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
    || skip_all "node $(node --version) is too old (18 or later)"
want=$(cd "$dir" && node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
have=$(cd "$dir" && node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')
if [ "$want" != "$have" ]; then
	"$dir/setup.sh" >"$T_TMP/setup.log" 2>&1 \
	    || skip_all "could not install playwright-core (offline?): $(grep -m1 "^npm error" "$T_TMP/setup.log" || tail -n 1 "$T_TMP/setup.log")"
fi
code=$(curl -s -o "$T_TMP/page" -w '%{http_code}' --max-time 10 "$PYEXEC_URL/") || code=000
if [ "$code" != 200 ] || ! grep -q '<textarea id="editor"' "$T_TMP/page"; then
	skip_all "GET / is not the page (status $code): the web server does not serve deploy/www yet"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$PYEXEC_URL/vendor/swagger-ui/swagger-ui-bundle.js") || code=000
[ "$code" = 200 ] || diag "GET /vendor/swagger-ui/swagger-ui-bundle.js: $code (run deploy/www/fetch-vendor.sh): the /docs test will fail"

# The node script prints TAP of its own; it is the whole output of this test.
PYEXEC_URL=$PYEXEC_URL CHROMIUM=$chromium PYEXEC_ARTIFACTS=$PYEXEC_TOP/tests/artifacts \
    timeout --kill-after=10 300 node "$dir/page.test.mjs"
