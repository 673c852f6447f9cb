/*
 * pyexec's page: a textarea editor with Python-friendly keys, runs through
 * POST /execute, one session kept across runs, and a history of the runs.
 * Plain browser JavaScript, no library, no build step, nothing from the internet.
 */
"use strict";

(function () {
	var INDENT = "    ";
	var STORE = "pyexec-page";
	var DEFAULTS = {
		code: 'print("Hello, World!")',
		script: 'def main():\n    import numpy as np\n    a = np.array([1, 2, 3, 4, 5])\n    return {"mean": float(a.mean()), "std": float(a.std())}\n'
	};
	var HELP = {
		code: "Code runs in your session: variables, imports and functions stay for the next run.",
		script: "Script mode runs the script once in a fresh interpreter, calls its main() and shows what it returned. It does not use the session."
	};

	var $ = function (id) { return document.getElementById(id); };
	var editor = $("editor");
	var runBtn = $("run");
	var newBtn = $("new-session");
	var sessionEl = $("session-id");
	var sessionBox = $("session-box");
	var meta = $("meta");
	var notice = $("notice");
	var historyEl = $("history");

	// Everything the page remembers, kept in sessionStorage (this tab only).
	var state = {
		mode: "code",
		buffers: { code: DEFAULTS.code, script: DEFAULTS.script },
		session: null,		// the session id, or null before the first run
		sessionGone: false,	// the server said 404 session not found
		history: []		// newest last: {mode, code, outcome, kind, status, ms, at}
	};
	var running = false;

	function load() {
		try {
			var s = JSON.parse(sessionStorage.getItem(STORE) || "null");
			if (s && typeof s === "object") {
				if (s.mode === "code" || s.mode === "script") state.mode = s.mode;
				if (s.buffers) {
					if (typeof s.buffers.code === "string") state.buffers.code = s.buffers.code;
					if (typeof s.buffers.script === "string") state.buffers.script = s.buffers.script;
				}
				if (typeof s.session === "string") state.session = s.session;
				state.sessionGone = !!s.sessionGone;
				if (Array.isArray(s.history)) state.history = s.history.slice(-100);
			}
		} catch (e) { /* storage unavailable or corrupt: start afresh */ }
	}

	function save() {
		state.buffers[state.mode] = editor.value;
		try { sessionStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* ignore */ }
	}

	/* ---------- the editor ---------- */

	// Replaces [start, end) with text, keeping the browser's undo history when it can.
	function replaceRange(start, end, text, selStart, selEnd) {
		editor.focus();
		editor.setSelectionRange(start, end);
		var done = false;
		try { done = document.execCommand("insertText", false, text); } catch (e) { done = false; }
		if (!done || editor.value.substring(start, start + text.length) !== text) {
			editor.setRangeText(text, start, end, "end");
			editor.dispatchEvent(new Event("input", { bubbles: true }));
		}
		if (selStart !== undefined)
			editor.setSelectionRange(selStart, selEnd === undefined ? selStart : selEnd);
	}

	function lineStart(v, pos) { return v.lastIndexOf("\n", pos - 1) + 1; }

	// The block of whole lines covering the selection: [start, end).
	function selectedLines() {
		var v = editor.value, s = editor.selectionStart, e = editor.selectionEnd;
		if (e > s && v.charAt(e - 1) === "\n") e--;	// a selection ending at a line start
		var start = lineStart(v, s);
		var end = v.indexOf("\n", e);
		if (end === -1) end = v.length;
		return { start: start, end: end, text: v.substring(start, end) };
	}

	function indent() {
		var v = editor.value, s = editor.selectionStart, e = editor.selectionEnd;
		if (v.substring(s, e).indexOf("\n") === -1) {
			// Soft tab: spaces up to the next multiple of 4.
			var col = s - lineStart(v, s);
			var pad = INDENT.substring(0, 4 - (col % 4));
			replaceRange(s, e, pad);
			return;
		}
		var b = selectedLines();
		var out = b.text.split("\n").map(function (l) { return l.length ? INDENT + l : l; }).join("\n");
		replaceRange(b.start, b.end, out, b.start, b.start + out.length);
	}

	function dedent() {
		var b = selectedLines();
		var s = editor.selectionStart, e = editor.selectionEnd;
		var removedFirst = 0;
		var lines = b.text.split("\n").map(function (l, i) {
			var n = 0;
			if (l.charAt(0) === "\t") n = 1;
			else while (n < 4 && l.charAt(n) === " ") n++;
			if (i === 0) removedFirst = n;
			return l.substring(n);
		});
		var out = lines.join("\n");
		if (out === b.text) return;
		if (s === e) {
			var p = Math.max(b.start, s - removedFirst);
			replaceRange(b.start, b.end, out, p);
		} else
			replaceRange(b.start, b.end, out, b.start, b.start + out.length);
	}

	function newline() {
		var v = editor.value, s = editor.selectionStart, e = editor.selectionEnd;
		var before = v.substring(lineStart(v, s), s);
		var ind = before.match(/^[ \t]*/)[0];
		if (/:\s*(#.*)?$/.test(before)) ind += INDENT;	// a block opens
		replaceRange(s, e, "\n" + ind);
	}

	// Backspace in leading spaces goes back to the previous multiple of 4.
	function backspace() {
		var v = editor.value, s = editor.selectionStart;
		if (s !== editor.selectionEnd) return false;
		var ls = lineStart(v, s), before = v.substring(ls, s);
		if (!before.length || /[^ ]/.test(before)) return false;
		var n = before.length % 4 || 4;
		replaceRange(s - n, s, "");
		return true;
	}

	var escaped = false;	// Esc pressed: the next Tab leaves the editor
	editor.addEventListener("keydown", function (ev) {
		if (ev.isComposing) return;
		var wasEscaped = escaped;
		escaped = false;
		if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
			ev.preventDefault();
			run();
		} else if (ev.key === "Escape") {
			escaped = true;
		} else if (ev.key === "Tab" && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
			if (wasEscaped) return;	// let focus move on
			ev.preventDefault();
			if (ev.shiftKey) dedent(); else indent();
		} else if (ev.key === "Enter" && !ev.shiftKey && !ev.altKey) {
			ev.preventDefault();
			newline();
		} else if (ev.key === "Backspace" && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
			if (backspace()) ev.preventDefault();
		}
	});
	editor.addEventListener("input", save);

	/* ---------- mode and session ---------- */

	function setMode(mode, keepText) {
		if (!keepText) state.buffers[state.mode] = editor.value;
		state.mode = mode;
		document.querySelector('input[name="mode"][value="' + mode + '"]').checked = true;
		if (!keepText) editor.value = state.buffers[mode];
		$("editor-label").textContent = mode === "code" ? "Python code" : "Python script (defines main())";
		$("mode-help").textContent = HELP[mode];
		document.body.setAttribute("data-mode", mode);
		sessionBox.classList.toggle("unused", mode === "script");
		save();
	}

	Array.prototype.forEach.call(document.querySelectorAll('input[name="mode"]'), function (r) {
		r.addEventListener("change", function () { if (r.checked) setMode(r.value); });
	});

	function showSession() {
		if (state.session) {
			sessionEl.textContent = state.session + (state.sessionGone ? " (ended)" : "");
			sessionEl.classList.toggle("gone", state.sessionGone);
		} else {
			sessionEl.textContent = "none yet: the first run starts one";
			sessionEl.classList.remove("gone");
		}
		sessionEl.title = state.session ? "The id sent with each run in code mode" : "";
	}

	function showNotice(text, offerNew) {
		notice.textContent = "";
		var p = document.createElement("p");
		p.textContent = text;
		notice.appendChild(p);
		if (offerNew) {
			var b = document.createElement("button");
			b.type = "button";
			b.className = "secondary";
			b.textContent = "Start a new session";
			b.addEventListener("click", function () { newSession(true); });
			notice.appendChild(b);
		}
		notice.hidden = false;
	}

	function hideNotice() { notice.hidden = true; notice.textContent = ""; }

	// POST /execute with a JSON body; resolves to {status, data (or null), text, ms}.
	function post(body) {
		var t0 = performance.now();
		return fetch("/execute", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify(body),
			cache: "no-store"
		}).then(function (r) {
			return r.text().then(function (text) {
				var data = null;
				try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
				return { status: r.status, data: data, text: text, ms: performance.now() - t0 };
			});
		});
	}

	// Ends the current session (DELETE) and opens a new one (empty code).
	function newSession(fromNotice) {
		if (running) return;
		var old = state.session;
		if (old && !state.sessionGone)
			fetch("/sessions/" + encodeURIComponent(old), { method: "DELETE" }).catch(function () {});
		setBusy(true, "Starting a new session…");
		post({ code: "" }).then(function (r) {
			setBusy(false);
			if (r.status === 200 && r.data && typeof r.data.id === "string") {
				state.session = r.data.id;
				state.sessionGone = false;
				state.history = [];
				hideNotice();
				renderHistory();
				showSession();
				save();
				meta.textContent = "New session started.";
				if (fromNotice) editor.focus();
			} else {
				var err = r.data && r.data.error ? r.data.error : "HTTP " + r.status;
				showNotice("Could not start a new session: " + err + ".", false);
				meta.textContent = "HTTP " + r.status;
			}
		}, function () {
			setBusy(false);
			showNotice("Could not reach the server to start a new session.", false);
		});
	}
	newBtn.addEventListener("click", function () { newSession(false); });

	/* ---------- running ---------- */

	function setBusy(on, text) {
		running = on;
		runBtn.disabled = on;
		newBtn.disabled = on;
		runBtn.textContent = on ? "Running…" : "Run";
		document.body.classList.toggle("busy", on);
		if (on && text) meta.textContent = text;
	}

	function fmtMs(ms) {
		return ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(2) + " s";
	}

	function showOut(name, text) {
		var sec = $("out-" + name);
		if (text === undefined) { sec.hidden = true; sec.querySelector("pre").textContent = ""; return; }
		sec.hidden = false;
		sec.querySelector("pre").textContent = text;
	}

	function clearOutputs() {
		["error", "result", "stdout", "stderr"].forEach(function (n) { showOut(n, undefined); });
		$("out-empty").hidden = true;
	}

	function render(mode, r) {
		clearOutputs();
		hideNotice();
		var d = r.data && typeof r.data === "object" && !Array.isArray(r.data) ? r.data : null;
		var outcome, kind;
		if (!d) {
			showOut("error", r.text ? "The server sent something that is not JSON:\n" + r.text.slice(0, 2000) : "Empty reply.");
			outcome = "HTTP " + r.status; kind = "bad";
		} else if (r.status === 200) {
			if (typeof d.error === "string") showOut("error", d.error);
			if ("result" in d) showOut("result", JSON.stringify(d.result, null, 2));
			if (typeof d.stdout === "string") showOut("stdout", d.stdout);
			if (typeof d.stderr === "string") showOut("stderr", d.stderr);
			if (d.error) { outcome = d.error; kind = "bad"; }
			else if ("result" in d) { outcome = d.stderr ? "result, stderr" : "result"; kind = "ok"; }
			else if (typeof d.stderr === "string") { outcome = "stderr"; kind = "warn"; }
			else if (typeof d.stdout === "string") { outcome = "stdout"; kind = "ok"; }
			else { outcome = "no output"; kind = "ok"; }
			if (!d.error && !("result" in d) && d.stdout === undefined && d.stderr === undefined) {
				$("out-empty").textContent = mode === "script" ? "main() did not return (no result)." : "The code ran and printed nothing.";
				$("out-empty").hidden = false;
			}
			if (mode === "code" && typeof d.id === "string") {
				if (state.session !== d.id) { state.session = d.id; }
				state.sessionGone = false;
				if (d.error === "memory limit exceeded" || d.error === "session terminated") {
					state.sessionGone = true;
					showNotice("This session has ended (" + d.error + "): its variables are gone.", true);
				} else if (d.error === "execution timeout") {
					showNotice("The code was interrupted after the time limit. If it stopped at the interrupt, the session keeps its state; otherwise it was ended, and the next run will say so.", false);
				}
			}
		} else {
			var msg = typeof d.error === "string" ? d.error : JSON.stringify(d);
			showOut("error", msg);
			outcome = msg; kind = "bad";
			if (r.status === 404 && d.error === "session not found" && mode === "code") {
				state.sessionGone = true;
				showNotice("Session " + state.session + " no longer exists (it ended, was deleted, or sat idle too long), so nothing ran.", true);
			} else if (r.status === 503) {
				showNotice("The server is busy (" + msg + "). Try again in a moment.", false);
			}
		}
		var statusText = "HTTP " + r.status;
		meta.textContent = "";
		var st = document.createElement("span");
		st.className = "badge " + (r.status === 200 ? kind : "bad");
		st.textContent = statusText;
		st.id = "status";
		var tm = document.createElement("span");
		tm.id = "elapsed";
		tm.textContent = fmtMs(r.ms);
		var md = document.createElement("span");
		md.textContent = mode + " mode";
		meta.appendChild(st);
		meta.appendChild(document.createTextNode(" · "));
		meta.appendChild(tm);
		meta.appendChild(document.createTextNode(" · "));
		meta.appendChild(md);
		showSession();
		return { outcome: outcome, kind: kind };
	}

	function run() {
		if (running) return;
		var mode = state.mode, code = editor.value;
		var body = mode === "code" ? { code: code } : { script: code };
		if (mode === "code" && state.session) body.id = state.session;
		save();
		setBusy(true, "Running…");
		post(body).then(function (r) {
			setBusy(false);
			var o = render(mode, r);
			state.history.push({ mode: mode, code: code, outcome: o.outcome, kind: o.kind,
			    status: r.status, ms: Math.round(r.ms), at: Date.now() });
			if (state.history.length > 100) state.history.shift();
			renderHistory();
			save();
		}, function (err) {
			setBusy(false);
			clearOutputs();
			showOut("error", "Could not reach the server: " + (err && err.message ? err.message : err));
			meta.textContent = "No reply.";
		});
	}
	runBtn.addEventListener("click", run);

	/* ---------- history ---------- */

	function firstLine(code) {
		var lines = code.split("\n").filter(function (l) { return l.trim().length; });
		if (!lines.length) return "(empty)";
		var s = lines[0].trim();
		if (s.length > 60) s = s.substring(0, 59) + "…";
		if (lines.length > 1) s += "  (+" + (lines.length - 1) + " lines)";
		return s;
	}

	function renderHistory() {
		historyEl.textContent = "";
		$("history-empty").hidden = state.history.length > 0;
		for (var i = state.history.length - 1; i >= 0; i--) {
			var h = state.history[i];
			var li = document.createElement("li");
			var b = document.createElement("button");
			b.type = "button";
			b.className = "history-item";
			b.setAttribute("data-index", String(i));
			var c = document.createElement("code");
			c.className = "h-code";
			c.textContent = firstLine(h.code);
			var o = document.createElement("span");
			o.className = "h-outcome badge " + h.kind;
			o.textContent = h.outcome;
			var t = document.createElement("span");
			t.className = "h-meta";
			t.textContent = (h.mode === "script" ? "script · " : "") + "HTTP " + h.status + " · " + fmtMs(h.ms);
			b.appendChild(c);
			b.appendChild(o);
			b.appendChild(t);
			b.setAttribute("aria-label", "Restore run " + (i + 1) + ": " + firstLine(h.code) + ", " + h.outcome + ", " + fmtMs(h.ms));
			b.addEventListener("click", restore);
			li.appendChild(b);
			historyEl.appendChild(li);
		}
	}

	function restore(ev) {
		var h = state.history[Number(ev.currentTarget.getAttribute("data-index"))];
		if (!h) return;
		if (h.mode !== state.mode) setMode(h.mode);
		editor.value = h.code;
		save();
		editor.focus();
		editor.setSelectionRange(h.code.length, h.code.length);
	}

	/* ---------- health ---------- */

	function health() {
		var el = $("health");
		fetch("/health", { cache: "no-store" }).then(function (r) {
			return r.json().then(function (d) {
				el.dataset.state = r.status === 200 ? "ok" : "bad";
				el.textContent = r.status === 200 ? "server healthy" : "server unhealthy: " + (d.error || r.status);
			});
		}).catch(function () {
			el.dataset.state = "bad";
			el.textContent = "server unreachable";
		});
	}

	/* ---------- start ---------- */

	load();
	editor.value = state.buffers[state.mode];
	setMode(state.mode, true);
	showSession();
	renderHistory();
	health();
})();
