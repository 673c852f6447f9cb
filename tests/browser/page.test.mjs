// Browser tests of pyexec's page (GET /) and docs (GET /docs): Debian's chromium,
// headless, driven by playwright-core. Prints TAP; exits 1 if a test failed.
//
//   PYEXEC_URL=http://127.0.0.1:18700 node tests/browser/page.test.mjs
//
// Environment: PYEXEC_URL (the server), CHROMIUM (default /usr/bin/chromium),
// PYEXEC_ARTIFACTS (screenshots; default tests/artifacts).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const base = (process.env.PYEXEC_URL || 'http://127.0.0.1:18700').replace(/\/$/, '');
const exe = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.PYEXEC_ARTIFACTS || path.resolve(here, '..', 'artifacts');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// --- a tiny TAP harness: tests run in order and share one page ---------------
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let n = 0, failed = 0;
const diag = (s) => String(s).split('\n').forEach((l) => console.log('# ' + l));

class Fail extends Error {}
function eq(got, want, what) {
	if (got !== want)
		throw new Fail(`${what || 'value'}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
function ok(cond, what) { if (!cond) throw new Fail(what); }
function match(got, re, what) {
	if (!re.test(got)) throw new Fail(`${what || 'value'}: got ${JSON.stringify(got)}, want match ${re}`);
}

// --- the browser ---------------------------------------------------------------
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyexec-chromium-'));
fs.mkdirSync(artifacts, { recursive: true });
const context = await chromium.launchPersistentContext(userDataDir, {
	executablePath: exe,
	headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
	viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(15000);

// Every request must go to the server under test: the page works offline.
const outside = [];
const baseOrigin = new URL(base).origin;
await context.route('**/*', (route) => {
	const u = route.request().url();
	if (u.startsWith('data:') || new URL(u).origin === baseOrigin) return route.continue();
	outside.push(u);
	return route.abort();
});
const consoleErrors = [];
const page = context.pages()[0] || await context.newPage();
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

const editor = page.locator('#editor');
const sessionText = () => page.locator('#session-id').innerText();
const historyCount = () => page.locator('#history li').count();

// Replaces the editor's text by typing it (so the page's key handling runs).
async function typeCode(text) {
	await editor.click();
	await page.keyboard.press('ControlOrMeta+A');
	await page.keyboard.press('Delete');
	await page.keyboard.type(text);
}

// Runs the editor's code (by button or Ctrl+Enter); waits for the history to grow.
async function run(how = 'button') {
	const before = await historyCount();
	if (how === 'button') await page.locator('#run').click();
	else { await editor.focus(); await page.keyboard.press('Control+Enter'); }
	await page.waitForFunction((b) => document.querySelectorAll('#history li').length > b, before,
	    { timeout: 20000 });
}

const visible = (id) => page.locator('#out-' + id).isVisible();
const text = (id) => page.locator(`#out-${id} pre`).textContent();

// --- the tests -------------------------------------------------------------------
let firstId;

test('page loads: title, labelled editor, Run button, server healthy', async () => {
	const r = await page.goto(base + '/');
	eq(r.status(), 200, 'GET / status');
	eq(await page.title(), 'pyexec', 'title');
	ok(await page.getByLabel('Python code').isVisible(), 'the editor has the label "Python code"');
	ok(await page.getByRole('button', { name: 'Run' }).isVisible(), 'a Run button');
	ok(await page.getByRole('button', { name: 'New session' }).isVisible(), 'a New session button');
	await page.waitForFunction(() => document.getElementById('health').dataset.state !== 'unknown');
	eq(await page.locator('#health').innerText(), 'server healthy', 'health line');
	match(await sessionText(), /^none yet/, 'no session before the first run');
});

test('typed code runs with the Run button: stdout shown, status and time', async () => {
	await typeCode('print("Hello, World!")');
	await run('button');
	ok(await visible('stdout'), 'stdout section shown');
	eq(await text('stdout'), 'Hello, World!\n', 'stdout');
	ok(!(await visible('stderr')), 'no stderr section');
	ok(!(await visible('error')), 'no error section');
	eq(await page.locator('#status').innerText(), 'HTTP 200', 'HTTP status shown');
	match(await page.locator('#elapsed').innerText(), /^\d+ ms$|^\d+\.\d\d s$/, 'time shown');
	firstId = await sessionText();
	match(firstId, UUID, 'the session id is shown');
});

test('Ctrl+Enter runs; x = 41 then print(x + 1) gives 42 in the same session', async () => {
	await typeCode('x = 41');
	await run('keys');
	eq(await page.locator('#out-empty').isVisible(), true, '"printed nothing" note for x = 41');
	ok(!(await visible('stdout')), 'no stdout section for x = 41');
	await typeCode('print(x + 1)');
	await run('keys');
	eq(await text('stdout'), '42\n', 'stdout');
	eq(await sessionText(), firstId, 'the session id did not change');
});

test('1/0 shows the traceback under stderr', async () => {
	await typeCode('1/0');
	await run();
	ok(await visible('stderr'), 'stderr section shown');
	match(await text('stderr'), /ZeroDivisionError: division by zero\n$/, 'stderr');
	ok(!(await visible('stdout')), 'no stdout section');
	eq(await page.locator('#history li').first().locator('.h-outcome').innerText(), 'stderr', 'history outcome');
});

test('while True: pass shows the timeout error after about 2 s', async () => {
	const t0 = Date.now();
	await typeCode('while True: pass');
	await run();
	const took = Date.now() - t0;
	ok(await visible('error'), 'error section shown');
	eq(await text('error'), 'execution timeout', 'error');
	ok(!(await visible('stdout')) && !(await visible('stderr')), 'no stdout, no stderr beside error');
	ok(took >= 1900, `took ${took} ms, want at least 2 s`);
	const shown = await page.locator('#elapsed').innerText();
	match(shown, /^\d\.\d\d s$/, 'time shown in seconds');
	ok(parseFloat(shown) >= 1.9, `page measured ${shown}`);
	// The loop stopped at the interrupt: the session lives on with its state.
	await typeCode('print(x)');
	await run();
	eq(await text('stdout'), '41\n', 'state kept after the timeout');
});

test('editor keys: Tab indents 4, Enter keeps the indentation, Shift+Tab dedents', async () => {
	await editor.click();
	await page.keyboard.press('ControlOrMeta+A');
	await page.keyboard.press('Delete');
	await page.keyboard.type('for i in range(3):');
	await page.keyboard.press('Enter');		// a block opens: 4 spaces
	await page.keyboard.type('if i:');
	await page.keyboard.press('Enter');		// 8 spaces
	await page.keyboard.type('print(i)');
	await page.keyboard.press('Enter');		// keeps 8
	await page.keyboard.press('Shift+Tab');	// back to 4
	await page.keyboard.press('Shift+Tab');	// back to 0
	await page.keyboard.type('print("done")');
	await page.keyboard.press('Enter');
	await page.keyboard.press('Tab');
	eq(await editor.inputValue(),
	    'for i in range(3):\n    if i:\n        print(i)\nprint("done")\n    ', 'editor text');
	await page.keyboard.press('Backspace');	// one indentation level at once
	eq(await editor.inputValue(),
	    'for i in range(3):\n    if i:\n        print(i)\nprint("done")\n', 'after Backspace');
	await run();
	eq(await text('stdout'), '1\n2\ndone\n', 'the indented program ran');
	// Esc then Tab leaves the editor (no keyboard trap).
	await editor.focus();
	await page.keyboard.press('Escape');
	await page.keyboard.press('Tab');
	eq(await page.evaluate(() => document.activeElement.id), 'new-session', 'focus after Esc, Tab');
});

test('script mode shows the result of main()', async () => {
	await page.getByRole('radio', { name: /^Script/ }).check();
	eq(await page.locator('#editor-label').innerText(), 'Python script (defines main())', 'label follows the mode');
	await editor.fill('def main():\n    print("adding")\n    return {"sum": 10 + 20}\n');
	await run();
	ok(await visible('result'), 'result section shown');
	eq(JSON.parse(await text('result')).sum, 30, 'result.sum');
	eq(await text('stdout'), 'adding\n', 'stdout beside the result');
	eq(await sessionText(), firstId, 'script mode left the session alone');
	await editor.fill('x = 1\n');
	await run();
	eq(await text('error'), 'no main() function found', 'no main(): the 422 error shown');
	eq(await page.locator('#status').innerText(), 'HTTP 422', 'status 422 shown');
});

test('screenshot of the page', async () => {
	// A pleasant state for the README: code mode, some output, a history.
	await page.getByRole('radio', { name: /^Code/ }).check();
	await editor.fill('import numpy as np\n\ndata = np.arange(1, 11)\nprint("mean:", data.mean())\nprint("squares:", (data ** 2).tolist())\n');
	await run();
	await page.locator('#editor').blur();
	await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });
	diag('screenshot: ' + path.join(artifacts, 'page.png'));
});

test('the history lists every run, newest first, and restores code on click', async () => {
	const items = page.locator('#history li');
	eq(await items.count(), 10, 'runs in the history');
	match(await items.nth(0).innerText(), /import numpy as np/, 'newest first');
	const old = items.filter({ hasText: 'print(x + 1)' });
	eq(await old.count(), 1, 'the print(x + 1) run is listed');
	match(await old.innerText(), /HTTP 200/, 'its status is listed');
	match(await old.innerText(), /\d+ ms/, 'its time is listed');
	await page.getByRole('radio', { name: /^Script/ }).check();
	await old.locator('button').click();
	eq(await editor.inputValue(), 'print(x + 1)', 'code restored');
	eq(await page.getByRole('radio', { name: /^Code/ }).isChecked(), true, 'mode restored');
	ok(await editor.evaluate((e) => e === document.activeElement), 'the editor has the focus');
});

test('New session: a new id, the old session ended, state and history fresh', async () => {
	await page.getByRole('button', { name: 'New session' }).click();
	await page.waitForFunction((old) => document.getElementById('session-id').textContent !== old, firstId);
	const id = await sessionText();
	match(id, UUID, 'new id');
	ok(id !== firstId, 'the id changed');
	eq(await historyCount(), 0, 'history cleared');
	const del = await page.request.delete(`${base}/sessions/${firstId}`);
	eq(del.status(), 404, 'the old session was ended (DELETE gives 404)');
	await typeCode('print(x)');
	await run();
	match(await text('stderr'), /NameError: name 'x' is not defined/, 'a fresh interpreter');
	eq(await sessionText(), id, 'runs went to the new session');
});

test('a session that ended: 404 is explained and a new session offered', async () => {
	const id = await sessionText();
	const del = await page.request.delete(`${base}/sessions/${id}`);
	eq(del.status(), 204, 'session deleted behind the page');
	await typeCode('print(1)');
	await run();
	eq(await page.locator('#status').innerText(), 'HTTP 404', 'status');
	eq(await text('error'), 'session not found', 'error');
	ok(await page.locator('#notice').isVisible(), 'a notice');
	match(await page.locator('#notice').innerText(), /no longer exists/, 'notice text');
	await page.locator('#notice').getByRole('button', { name: 'Start a new session' }).click();
	await page.waitForFunction((old) => !document.getElementById('session-id').textContent.startsWith(old), id);
	match(await sessionText(), UUID, 'a new session');
	ok(await page.locator('#notice').isHidden(), 'notice gone');
	await run();
	eq(await text('stdout'), '1\n', 'runs again');
});

test('small screen: no horizontal scrolling; screenshot', async () => {
	await page.setViewportSize({ width: 375, height: 800 });
	const wide = await page.evaluate(() => document.documentElement.scrollWidth);
	ok(wide <= 375, `page is ${wide} px wide at 375`);
	await page.screenshot({ path: path.join(artifacts, 'page-small.png'), fullPage: true });
	await page.setViewportSize({ width: 1280, height: 900 });
});

test('/docs renders openapi.json with the local renderer', async () => {
	const r = await page.goto(base + '/docs');
	eq(r.status(), 200, 'GET /docs status');
	await page.locator('.swagger-ui .info .title').waitFor();
	match(await page.locator('.swagger-ui .info .title').innerText(), /pyexec/, 'title');
	for (const p of ['/execute', '/health', '/sessions/{id}', '/metrics'])
		ok(await page.locator('.opblock-summary-path', { hasText: p }).first().isVisible(), `operation ${p} listed`);
	await page.screenshot({ path: path.join(artifacts, 'docs.png') });
	const spec = await page.request.get(base + '/openapi.json');
	eq(spec.status(), 200, 'GET /openapi.json');
	eq((await spec.json()).openapi, '3.1.0', 'openapi version');
});

test('no request left the server; no script errors', async () => {
	eq(outside.length, 0, 'requests to other hosts: ' + outside.join(' '));
	eq(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of 4\d\d/.test(e)).length, 0, 'console errors: ' + consoleErrors.join(' | '));
});

// --- run them --------------------------------------------------------------------
try {
	for (const t of tests) {
		n++;
		try {
			await t.fn();
			console.log(`ok ${n} - ${t.name}`);
		} catch (e) {
			failed++;
			console.log(`not ok ${n} - ${t.name}`);
			diag(e instanceof Fail ? e.message : (e && e.stack) || e);
			const shot = path.join(artifacts, `failure-${n}.png`);
			await page.screenshot({ path: shot, fullPage: true }).then(() => diag('screenshot: ' + shot), () => {});
		}
	}
} finally {
	await context.close();
	fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
