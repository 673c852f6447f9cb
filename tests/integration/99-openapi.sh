#!/bin/bash
# servers: one
# The OpenAPI description (deploy/www/openapi.json) against the contract and
# against what the server was seen to answer:
#   - it is valid OpenAPI 3.1 (@readme/openapi-parser from npm, when it can be
#     installed; skipped with the reason otherwise);
#   - each example in it validates against its schema (ajv, JSON Schema
#     2020-12);
#   - every error string of api.md is described, with its status;
#   - every (path template, method, status) and error string the integration
#     tests observed (PYEXEC_OBSERVED, written by lib.sh's req) is described:
#     /sessions/<anything> is /sessions/{id}; a path that matches no template
#     is described by the document's x-pyexec-fallbacks.unknownPath, a listed
#     path with a method it does not serve by x-pyexec-fallbacks.methodNotAllowed;
#     HEAD counts as GET.  Without PYEXEC_OBSERVED (running this script alone)
#     it makes a few requests of its own and checks those, their bodies
#     against the schemas too;
#   - GET /openapi.json on the server is the file, byte for byte.
. "$(dirname "$0")/../lib.sh"
# (jq, node and sed programs in single quotes: their $ and ` are theirs.)
# shellcheck disable=SC2016

www=$PYEXEC_TOP/deploy/www
spec=$www/openapi.json

# --- the file ---------------------------------------------------------------
if jq -e '.openapi == "3.1.0" and (.paths | type == "object")' "$spec" >/dev/null 2>&1; then
	ok "openapi.json parses, OpenAPI 3.1.0"
else
	not_ok "openapi.json parses, OpenAPI 3.1.0"
	t_done
	exit 1
fi

# The whole document with every local $ref replaced by its target.
JQ_DEREF='
def deref($root):
  if type == "object" then
    if has("$ref") and (.["$ref"] | type == "string" and startswith("#/")) then
      .["$ref"] as $ref
      | ($root | getpath($ref[2:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~"))) | deref($root))
        + (del(.["$ref"]) | map_values(deref($root)))
    else map_values(deref($root)) end
  elif type == "array" then map(deref($root))
  else . end;
'
full=$T_TMP/openapi-deref.json
if ! jq "$JQ_DEREF"' . as $r | deref($r)' "$spec" > "$full" || [ ! -s "$full" ]; then
	not_ok "openapi.json: every local \$ref resolves"
	t_done
	exit 1
fi

# --- validation with an npm validator ---------------------------------------
validator_ready() {
	[ -f "$www/node_modules/@readme/openapi-parser/package.json" ] &&
	    [ -f "$www/node_modules/ajv/package.json" ]
}
if ! need_cmd node npm; then
	skip "OpenAPI 3.1 validation: node or npm is missing"
else
	validator_ready || "$www/fetch-vendor.sh" --with-dev >"$T_TMP/npm.log" 2>&1 || true
	if ! validator_ready; then
		skip "OpenAPI 3.1 validation: could not install @readme/openapi-parser (offline?): $(grep -m1 "^npm error" "$T_TMP/npm.log" || tail -n 1 "$T_TMP/npm.log")"
	elif out=$(cd "$www" && node --input-type=module -e '
		import { validate } from "@readme/openapi-parser";
		const r = await validate(process.argv[1]);
		if (!r.valid) { console.log(JSON.stringify(r.errors, null, 1)); process.exit(1); }
		for (const w of r.warnings || []) console.log("warning: " + JSON.stringify(w));
	' "$spec" 2>&1); then
		ok "openapi.json is valid OpenAPI 3.1 (@readme/openapi-parser)"
		[ -n "$out" ] && diag "$out"
	else
		not_ok "openapi.json is valid OpenAPI 3.1 (@readme/openapi-parser)"
		diag "$(printf '%s\n' "$out" | head -n 40)"
	fi
fi

# --- examples and real bodies against their schemas (ajv, JSON Schema 2020-12) ---
# schema_check [REPLIES.jsonl]: one line per check, "name TAB why" (why empty
# when it holds): every example of every media type validates against its
# schema, and each kept reply body (self-check mode) against its response's.
schema_check() {
	(cd "$www" && node --input-type=module -e '
		import fs from "node:fs";
		import Ajv2020 from "ajv/dist/2020.js";
		const doc = JSON.parse(fs.readFileSync(process.argv[1]));
		const ajv = new Ajv2020({ strict: false, allErrors: true });
		const say = (name, why) => console.log(name + "\t" + (why || ""));
		const why = (v) => ajv.errorsText(v.errors, { separator: "; " });
		const ops = [];
		for (const [p, item] of Object.entries(doc.paths))
			for (const [m, op] of Object.entries(item))
				if (op && op.responses) ops.push([p, m, op]);
		let n = 0;
		const bad = [];
		for (const [p, m, op] of ops)
			for (const [st, resp] of Object.entries(op.responses))
				for (const [mt, media] of Object.entries(resp.content || {})) {
					if (!media.schema) continue;
					const v = ajv.compile(media.schema);
					const ex = [];
					if ("example" in media) ex.push(["example", media.example]);
					for (const [k, e] of Object.entries(media.examples || {})) ex.push([k, e.value]);
					for (const [k, e] of ex) {
						n++;
						if (!v(e)) bad.push(`${m.toUpperCase()} ${p} ${st} ${mt} example ${k}: ${why(v)}`);
					}
				}
		say(`the ${n} response examples validate against their schemas`, bad.join(" | "));
		if (!process.argv[2]) process.exit(0);
		const re = (t) => new RegExp("^" + t.replace(/\{[^}/]+\}/g, "[^/]+") + "$");
		for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
			if (!line) continue;
			const r = JSON.parse(line);
			const t = Object.keys(doc.paths).find((t) => t === r.path) ||
			    Object.keys(doc.paths).find((t) => re(t).test(r.path));
			const op = t && doc.paths[t][r.method.toLowerCase()];
			const resp = op && op.responses[r.status];
			const media = resp && resp.content && resp.content["application/json"];
			if (!media || r.body === null) continue;
			const v = ajv.compile(media.schema);
			say(`reply to ${r.method} ${t} ${r.status} ${JSON.stringify(r.body).slice(0, 70)} matches its schema`,
			    v(r.body) ? "" : why(v));
		}
	' "$full" "$@")
}
if need_cmd node && validator_ready; then
	while IFS=$'\t' read -r name why; do
		if [ -z "$why" ]; then ok "$name"; else not_ok "$name"; diag "$why"; fi
	done < <(schema_check 2>&1)
else
	skip "examples against their schemas: node or ajv is missing"
fi

# --- replies: described? ------------------------------------------------------
# Reads observed lines (method TAB path TAB status TAB error) and prints, for
# each distinct (method, path template, status, error), one line:
# the test name TAB "" when the document describes that reply, else why not.
# Lines with status 000 (curl got no reply) print "-" TAB the request.
JQ_EXPLAIN='
def tmpl_re: "^" + (gsub("\\{[^}/]+\\}"; "[^/]+")) + "$";
$doc[0] as $d
| [$d.paths | keys[] | {t: ., re: tmpl_re}] as $tmpls
| [inputs | split("\t") | select(length >= 3 and .[0] != "")
   | {method: .[0], path: (.[1] | split("?")[0]), status: .[2], error: (.[3] // "")}]
| map(. as $o
    | ([$tmpls[] | select(.t == $o.path)] + [$tmpls[] | select(.t != $o.path) | select(.re as $re | $o.path | test($re))])
      as $m
    | . + {tmpl: (if ($m | length) > 0 then $m[0].t else null end)})
| unique_by([.method, .tmpl // .path, .status, .error])[]
| . as $o
| if .status == "000" then "-\t\(.method) \(.path)" else
  (.method | ascii_downcase) as $m
  | (if .tmpl == null then {where: "x-pyexec-fallbacks.unknownPath (no path template matches)",
                           responses: $d["x-pyexec-fallbacks"].unknownPath}
     elif $d.paths[.tmpl][$m] != null then {where: "\(.method) \(.tmpl)", responses: $d.paths[.tmpl][$m].responses}
     elif $m == "head" and $d.paths[.tmpl].get != null then
       {where: "GET \(.tmpl) (for HEAD)", responses: $d.paths[.tmpl].get.responses}
     else {where: "x-pyexec-fallbacks.methodNotAllowed (\(.tmpl) has no \(.method))",
           responses: $d["x-pyexec-fallbacks"].methodNotAllowed} end) as $c
  | ($c.responses[$o.status] // $c.responses.default) as $resp
  | "observed \(.method) \(.tmpl // "(unknown path \(.path))") -> \(.status)"
    + (if .error != "" then " \"\(.error)\"" else "" end) + " is described"
    + (if .tmpl != null and .tmpl != .path then " (e.g. \(.path))" else "" end)
    + "\t"
    + (if $resp == null then "status \(.status) is not described in \($c.where)"
       elif .error != "" and ([$resp | .. | strings] | index($o.error)) == null then
         "error \"\(.error)\" is not described in \($c.where), status \(.status)"
       else "" end)
  end
'

# --- every error string of api.md is described ---------------------------------
apimd=""
for f in "$PYEXEC_TOP/../shared/docs/api.md" "$PYEXEC_TOP/shared/docs/api.md"; do
	[ -f "$f" ] && { apimd=$f; break; }
done
if [ -z "$apimd" ]; then
	skip "api.md's error strings: api.md not found beside the repository"
else
	# Request errors: "| 404 | `session not found` |" rows; execution errors:
	# the rows of the section "Execution errors"; script mode: {"error": "..."}.
	missing=""
	nstr=0
	while IFS=$'\t' read -r st err; do
		[ -n "$err" ] || continue
		nstr=$((nstr + 1))
		jq -e --arg s "$st" --arg e "$err" '
		    [(.paths[][] | objects | .responses? // empty), (.["x-pyexec-fallbacks"][] | objects)]
		    | map(to_entries[] | select(.key == $s) | .value | [.. | strings] | index($e) != null)
		    | any' "$full" >/dev/null || missing="$missing [$st $err]"
	done < <(
		sed -n 's/^| \([0-9][0-9][0-9]\) | `\([^`]*\)`.*/\1\t\2/p' "$apimd"
		sed -n '/^### Execution errors/,/^#/p' "$apimd" | sed '1,/^|---/d' | sed -n 's/^| `\([^`]*\)` |.*/200\t\1/p'
		grep -o '[0-9][0-9][0-9] `{"error": "[^"]*"}`' "$apimd" | sed 's/^\([0-9]*\) `{"error": "\([^"]*\)"}`$/\1\t\2/'
	)
	if [ "$nstr" -lt 15 ]; then
		not_ok "api.md's error strings are described with their status"
		diag "only $nstr strings read from $apimd: has its layout changed?"
	else
		assert_eq "api.md's $nstr error strings are described with their status" "$missing" ""
	fi
fi

# --- what the server was seen to answer --------------------------------------
observed=${PYEXEC_OBSERVED:-}
if [ -z "$observed" ] || [ ! -s "$observed" ]; then
	diag "PYEXEC_OBSERVED unset or empty: checking requests of this script's own"
	export PYEXEC_OBSERVED=$T_TMP/observed
	: > "$PYEXEC_OBSERVED"
	# Keep each reply's body too, to check it against its schema below.
	replies=$T_TMP/replies.jsonl
	eval "$(declare -f req | sed '1s/^req /lib_req /')"
	req() {
		lib_req "$@"
		local b
		b=$(printf '%s' "$BODY" | jq -c . 2>/dev/null) || b=null
		[ -n "$b" ] || b=null
		jq -cn --arg m "$1" --arg p "${2%%\?*}" --arg s "$STATUS" --argjson b "$b" \
		    '{method: $m, path: $p, status: $s, body: $b}' >> "$replies"
	}
	exec_code 'print("hi")'
	sid=$(jget .id)
	exec_code 'x = 1' "$sid"
	exec_code '1 / 0' "$sid"
	exec_code 'while True: pass' "$sid"
	exec_json '{"code": "print(1)"}' -H "Pyexec-Session: $sid"
	exec_json "{\"code\": \"1\", \"id\": \"$sid\"}" -H "Pyexec-Session: $(cat /proc/sys/kernel/random/uuid)"
	exec_json '{"script": "def main():\n    return {\"sum\": 30}"}'
	exec_json '{"script": "x = 1"}'
	exec_json '{"script": "def main():\n    return {1}"}'
	exec_json 'not json'
	exec_json '[1]'
	exec_json '{}'
	exec_json '{"code": 1}'
	exec_json '{"code": "1", "script": "1"}'
	req POST /execute -H 'Content-Type: text/plain' --data-binary '{"code": "1"}'
	exec_code 'print(1)' "$(cat /proc/sys/kernel/random/uuid)"
	req GET /execute
	req GET /health
	req GET /metrics
	req POST /metrics
	req DELETE "/sessions/$sid"
	req DELETE "/sessions/$sid"
	req GET /nope
	# The site's pages, once the web server serves deploy/www (else pyexec's 404).
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$PYEXEC_URL/openapi.json")" = 200 ]; then
		req GET /
		req GET /docs
		req GET /openapi.json
	fi
	observed=$PYEXEC_OBSERVED
	if need_cmd node && validator_ready; then
		while IFS=$'\t' read -r name why; do
			case "$name" in reply\ to*) ;; *) continue ;; esac
			if [ -z "$why" ]; then ok "$name"; else not_ok "$name"; diag "$why"; fi
		done < <(schema_check "$replies" 2>&1)
	fi
fi

# One test per distinct (method, path template, status, error).
nobs=0
while IFS=$'\t' read -r name why; do
	if [ "$name" = - ]; then
		diag "no reply to $why (curl failed): no status to check"
		continue
	fi
	nobs=$((nobs + 1))
	if [ -z "$why" ]; then ok "$name"; else not_ok "$name"; diag "$why"; fi
done < <(jq -nrR --slurpfile doc "$full" "$JQ_EXPLAIN" "$observed")
[ "$nobs" -gt 0 ] || not_ok "some replies were observed (in $observed)"

# --- the server serves the file ------------------------------------------------
req GET /openapi.json
if [ "$STATUS" = 404 ] && [ "$(jget .error)" = "not found" ]; then
	skip "GET /openapi.json is the file: the web server does not serve deploy/www yet (404 \"not found\" from pyexec)"
else
	if [ "$STATUS" = 200 ] && cmp -s "$T_TMP/body" "$spec"; then
		ok "GET /openapi.json serves deploy/www/openapi.json byte for byte"
	else
		not_ok "GET /openapi.json serves deploy/www/openapi.json byte for byte"
		diag "status $STATUS, $(wc -c < "$T_TMP/body") bytes (the file: $(wc -c < "$spec"))"
	fi
	assert_match "GET /openapi.json: Content-Type JSON" "$(header content-type)" '^application/json'
fi

t_done
