/*
 * A session child: forked from the zygote, which has placed it in its cgroup
 * (zygote.c), it enters the sandbox, and then serves executions
 * from the daemon over its control socket (SESS_CHILD_CTL_FD) for as long as
 * the session lives.  From the first byte of user code on, everything this
 * process does is untrusted: the daemon believes nothing it says beyond its
 * own session.
 *
 * Code mode runs the code like `python3 < file`: compiled as "<stdin>" in
 * exec mode, in the persistent namespace of __main__, tracebacks printed by
 * the interpreter itself.  Script mode runs a script once, calls its main()
 * and returns the JSON of what main() returned.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "proto.h"
#include "sbx.h"
#include "sess.h"

static const struct cfg	*ccfg;
static struct proto_msg	 crx;
static PyObject		*c_compile;	/* builtins.compile */
static PyObject		*c_main_dict;	/* __main__.__dict__: the session's state */

static void __attribute__((noreturn))
child_die(void)
{
	_exit(1);
}

static void
child_send(uint8_t type, uint16_t flags, const void *p, size_t len)
{
	/* The daemon reads at once; failing to reach it means it is gone. */
	if (proto_send(SESS_CHILD_CTL_FD, type, flags, 0, p, len, NULL, 0) == -1)
		child_die();
}

static void
child_fail(const char *why)
{
	child_send(PROTO_CHILD_FAIL, PROTO_F_END, why, strlen(why));
	child_die();
}

/* Flushes what Python buffered for fds 1 and 2, ignoring errors. */
static void
child_flush(void)
{
	static const char *const names[] = { "stdout", "stderr", "__stdout__", "__stderr__" };
	PyObject *f, *r;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((f = PySys_GetObject(names[i])) == NULL || f == Py_None)
			continue;
		if ((r = PyObject_CallMethod(f, "flush", NULL)) == NULL)
			PyErr_Clear();
		else
			Py_DECREF(r);
	}
}

/*
 * SystemExit ends the execution, not the session.  As the interpreter does at
 * its top level, a code that is neither None nor an integer is printed.
 */
static void
child_system_exit(void)
{
	PyObject *type, *value, *tb, *code = NULL, *f;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value != NULL && (code = PyObject_GetAttrString(value, "code")) == NULL)
		PyErr_Clear();
	if (code != NULL && code != Py_None && !PyLong_Check(code)) {
		f = PySys_GetObject("stderr");
		if (f != NULL && f != Py_None &&
		    (PyFile_WriteObject(code, f, Py_PRINT_RAW) == -1 ||
		    PyFile_WriteString("\n", f) == -1))
			PyErr_Clear();
	}
	Py_XDECREF(code);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

/* Prints the pending exception as python3 would; notes a MemoryError. */
static void
child_report(int *memerr)
{
	if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
		child_system_exit();
		return;
	}
	if (PyErr_ExceptionMatches(PyExc_MemoryError))
		*memerr = 1;
	PyErr_PrintEx(0);	/* 0: keep no sys.last_* references */
}

static PyObject *
child_compile(const char *code, size_t len, const char *filename)
{
	PyObject *src, *co;

	if ((src = PyUnicode_DecodeUTF8(code, (Py_ssize_t)len, "replace")) == NULL)
		return NULL;
	co = PyObject_CallFunction(c_compile, "Oss", src, filename, "exec");
	Py_DECREF(src);
	return co;
}

static int
child_run_code(const char *code, size_t len, PyObject *globals)
{
	PyObject *co, *r = NULL;
	int memerr = 0;

	if ((co = child_compile(code, len, "<stdin>")) != NULL) {
		r = PyEval_EvalCode(co, globals, globals);
		Py_DECREF(co);
	}
	if (r == NULL)
		child_report(&memerr);
	Py_XDECREF(r);
	return memerr ? PROTO_D_MEMERR : PROTO_D_OK;
}

/*
 * Script mode, in a module of its own (named __script__, so that an
 * `if __name__ == "__main__"` block does not call main() a second time).
 * Returns the DONE status; on PROTO_D_RESULT *json holds main()'s value.
 */
static int
child_run_script(const char *code, size_t len, PyObject **json)
{
	PyObject *mod = NULL, *dict, *co = NULL, *r = NULL, *fn, *res = NULL,
	    *jmod = NULL, *kw = NULL;
	int status = PROTO_D_OK, memerr = 0;

	*json = NULL;
	if ((co = child_compile(code, len, "<script>")) == NULL) {
		/* A script that does not parse has no main() to call. */
		PyErr_Clear();
		return PROTO_D_NO_MAIN;
	}
	if ((mod = PyImport_AddModule("__script__")) == NULL)
		goto fail;
	dict = PyModule_GetDict(mod);
	if (PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) == -1)
		goto fail;
	if ((r = PyEval_EvalCode(co, dict, dict)) == NULL)
		goto fail;
	fn = PyDict_GetItemString(dict, "main");	/* borrowed */
	if (fn == NULL || !PyCallable_Check(fn)) {
		status = PROTO_D_NO_MAIN;
		goto out;
	}
	if ((res = PyObject_CallNoArgs(fn)) == NULL)
		goto fail;
	if ((jmod = PyImport_ImportModule("json")) == NULL ||
	    (kw = Py_BuildValue("{s:O}", "allow_nan", Py_False)) == NULL)
		goto fail;
	{
		PyObject *dumps = PyObject_GetAttrString(jmod, "dumps"), *args;

		if (dumps == NULL)
			goto fail;
		args = PyTuple_Pack(1, res);
		*json = args ? PyObject_Call(dumps, args, kw) : NULL;
		Py_XDECREF(args);
		Py_DECREF(dumps);
	}
	if (*json == NULL) {
		/* TypeError, ValueError (NaN, cycles), RecursionError...: not JSON. */
		if (PyErr_ExceptionMatches(PyExc_MemoryError))
			goto fail;
		PyErr_Clear();
		status = PROTO_D_NOT_JSON;
		goto out;
	}
	status = PROTO_D_RESULT;
	goto out;
fail:
	child_report(&memerr);
	status = memerr ? PROTO_D_MEMERR : PROTO_D_OK;
out:
	Py_XDECREF(co);
	Py_XDECREF(r);
	Py_XDECREF(res);
	Py_XDECREF(jmod);
	Py_XDECREF(kw);
	return status;
}

/* Receives one PROTO_RUN and its code.  Returns the code (malloc'd). */
static char *
child_recv_run(struct proto_run *run)
{
	char *code;
	uint32_t got = 0;
	int r, whole;

	do
		r = proto_recv(SESS_CHILD_CTL_FD, &crx);
	while (r == -1 && errno == EINTR);
	if (r != 1 || crx.pm_hdr.ph_type != PROTO_RUN || crx.pm_hdr.ph_len < sizeof(*run))
		child_die();	/* the daemon closed the link, or spoke nonsense */
	memcpy(run, crx.pm_payload, sizeof(*run));
	if (run->prn_code_len > ccfg->max_body ||
	    (whole = proto_msg_whole(&crx, sizeof(*run), run->prn_code_len)) == -1)
		child_die();
	if ((code = malloc(run->prn_code_len + 1)) == NULL)
		child_die();
	if (whole) {
		memcpy(code, crx.pm_payload + sizeof(*run), run->prn_code_len);
		got = run->prn_code_len;
	}
	while (got < run->prn_code_len) {
		do
			r = proto_recv(SESS_CHILD_CTL_FD, &crx);
		while (r == -1 && errno == EINTR);
		if (r != 1 || crx.pm_hdr.ph_type != PROTO_DATA ||
		    crx.pm_hdr.ph_len > run->prn_code_len - got)
			child_die();
		memcpy(code + got, crx.pm_payload, crx.pm_hdr.ph_len);
		got += crx.pm_hdr.ph_len;
		if (!!(crx.pm_hdr.ph_flags & PROTO_F_END) != (got == run->prn_code_len))
			child_die();
	}
	code[got] = '\0';
	return code;
}

/*
 * A little generic code (compiler, evaluation loop, printing, a traceback,
 * numpy's common paths), run once in the zygote so that what those set up
 * on first use is there in every child (a fresh child's first execution
 * took twice as long without it), and again in children for the warm pool.
 * In a scratch namespace.
 */
static const char c_warm_code[] =
    "import sys\n"
    "x = [i * 2 for i in range(64)]\n"
    "print(len(x), sum(x), {'k': x[:3]}, 'txt'.upper(), 1.5)\n"
    "np = sys.modules.get('numpy')\n"
    "if np is not None:\n"
    "    a = np.arange(64, dtype=np.int64)\n"
    "    print(int((a * 2).sum()), float(a.mean()), a[:3])\n"
    "1 / 0\n";

/*
 * In the zygote only: pandas' common paths (a DataFrame built, a column
 * summed, a group-by, a description), whose first use imports and sets up
 * more of pandas.  What that leaves behind is shared by every child; a pool
 * child does not run it again (its pages would be private to each session).
 */
static const char c_warm_zygote_code[] =
    "import sys\n"
    "pd = sys.modules.get('pandas')\n"
    "if pd is not None:\n"
    "    df = pd.DataFrame({'i': range(16), 'f': [i / 4 for i in range(16)],\n"
    "                       's': [str(i % 3) for i in range(16)]})\n"
    "    print(df['i'].sum(), df['f'].mean(), len(df[df['i'] > 3]))\n"
    "    print(df.groupby('s')['i'].sum().to_dict(), df.describe().shape)\n"
    "    print(df.head(2))\n";

/* Runs warm-up code in a scratch namespace; 0, or -1 out of memory. */
static int
child_warm_run(const char *code, size_t len)
{
	PyObject *d;

	if ((d = PyDict_New()) == NULL ||
	    PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) == -1) {
		Py_XDECREF(d);
		return -1;
	}
	(void)child_run_code(code, len, d);
	Py_DECREF(d);
	child_flush();
	return 0;
}

/* In the zygote: the warm-up, its output on devnull. */
static void
child_warm_up(int devnull)
{
	int o, e;

	if ((o = dup(1)) == -1 || (e = dup(2)) == -1 || dup2(devnull, 1) == -1 ||
	    dup2(devnull, 2) == -1)
		fatal("warm-up: cannot redirect its output");
	if (child_warm_run(c_warm_code, sizeof(c_warm_code) - 1) == -1 ||
	    child_warm_run(c_warm_zygote_code, sizeof(c_warm_zygote_code) - 1) == -1)
		fatalx("warm-up: out of memory");
	if (dup2(o, 1) == -1 || dup2(e, 2) == -1)
		fatal("warm-up: cannot restore stdout and stderr");
	close(o);
	close(e);
}

/*
 * A child for the warm pool runs the warm-up again before it says ready.
 * On this kind of virtual machine a page's first touch in a process costs
 * even after the page was copied: a child that has not run the compiler yet
 * took two to three times as long over its first execution, and without
 * numpy's common paths (which numpy.random.seed() used to touch as a side
 * effect) a first DataFrame took 5 ms longer.  A child made for a waiting
 * request, or for a pool that cannot keep up, goes straight to work.  What
 * it prints reaches the daemon before the child is ready, and is dropped.
 */
static void
child_warm_up_pooled(void)
{
	if (child_warm_run(c_warm_code, sizeof(c_warm_code) - 1) == -1)
		child_fail("warm-up: out of memory");
}

/*
 * numpy's global generator (numpy.random.seed, rand, ...): a legacy
 * RandomState over MT19937, whose state a fork copies, so every session would
 * draw the same numbers.  Its key is rewritten from getrandom(2) in each
 * child, straight in memory: the 624-word key and position of numpy's C
 * struct, located through the documented "BitGenerator" capsule and checked
 * in the zygote against get_state().  Reseeding through Python instead
 * (numpy.random.seed()) costs a fresh child a few milliseconds of
 * copy-on-write faults; it remains the fallback should the check fail.
 * Python's own random module is reseeded by its at-fork hook.
 */
#define MT_KEY_LEN	624
struct mt_state {
	uint32_t	key[MT_KEY_LEN];
	int		pos;
};
static struct mt_state	*c_np_mt;	/* numpy's key, when checked */
static PyObject		*c_np_reseed;	/* else: compiled numpy.random.seed() */

/* In the zygote: the address of numpy's MT19937 state, or NULL. */
static struct mt_state *
child_find_np_state(PyObject *mtrand)
{
	PyObject *rs = NULL, *bg = NULL, *cap = NULL, *st = NULL, *name;
	struct mt_state *ms = NULL, *found = NULL;
	Py_buffer key = { 0 };
	void **bitgen;

	if ((rs = PyObject_GetAttrString(mtrand, "_rand")) == NULL ||
	    (bg = PyObject_GetAttrString(rs, "_bit_generator")) == NULL ||
	    strcmp(Py_TYPE(bg)->tp_name, "numpy.random._mt19937.MT19937") != 0 ||
	    (cap = PyObject_GetAttrString(bg, "capsule")) == NULL ||
	    (bitgen = PyCapsule_GetPointer(cap, "BitGenerator")) == NULL ||
	    (ms = bitgen[0]) == NULL ||	/* bitgen_t: the state pointer first */
	    (st = PyObject_CallMethod(rs, "get_state", NULL)) == NULL ||
	    !PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 5)
		goto out;
	/* ('MT19937', key uint32[624], pos, has_gauss, cached_gaussian) */
	name = PyTuple_GET_ITEM(st, 0);
	if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "MT19937") != 0 ||
	    PyObject_GetBuffer(PyTuple_GET_ITEM(st, 1), &key, PyBUF_SIMPLE) == -1)
		goto out;
	if (key.len == (Py_ssize_t)sizeof(ms->key) &&
	    memcmp(key.buf, ms->key, sizeof(ms->key)) == 0 &&
	    PyLong_AsLong(PyTuple_GET_ITEM(st, 2)) == ms->pos &&
	    PyLong_AsLong(PyTuple_GET_ITEM(st, 3)) == 0)
		found = ms;
	PyBuffer_Release(&key);
out:
	PyErr_Clear();
	Py_XDECREF(st);
	Py_XDECREF(cap);
	Py_XDECREF(bg);
	Py_XDECREF(rs);
	return found;
}

void
child_prepare(int devnull)
{
	PyObject *mtrand, *m;

	if ((m = PyImport_ImportModule("builtins")) == NULL ||
	    (c_compile = PyObject_GetAttrString(m, "compile")) == NULL)
		fatalx("no builtins.compile");
	Py_DECREF(m);
	child_warm_up(devnull);
	mtrand = PyDict_GetItemString(PyImport_GetModuleDict(), "numpy.random.mtrand");
	if (mtrand == NULL)
		return;		/* numpy not preloaded: a later import seeds afresh */
	if ((c_np_mt = child_find_np_state(mtrand)) != NULL)
		return;
	log_warn("event=numpy_reseed_fallback why=\"MT19937 state not where expected\"");
	if ((c_np_reseed = Py_CompileString("import numpy.random\nnumpy.random.seed()\n",
	    "<reseed>", Py_file_input)) == NULL) {
		PyErr_Print();
		fatalx("cannot compile numpy's reseed");
	}
}

/* Each session gets its own random state, not the zygote's copy. */
static void
child_reseed(void)
{
	PyObject *d, *r;

	if (c_np_mt != NULL) {
		if (getrandom(c_np_mt->key, sizeof(c_np_mt->key), 0) !=
		    (ssize_t)sizeof(c_np_mt->key))
			child_fail("cannot reseed numpy: getrandom failed");
		c_np_mt->key[0] |= 0x80000000u;	/* never an all-zero key */
		c_np_mt->pos = MT_KEY_LEN;	/* regenerate before the first draw */
		return;
	}
	if (c_np_reseed == NULL)
		return;
	if ((d = PyDict_New()) == NULL ||
	    PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) == -1 ||
	    (r = PyEval_EvalCode(c_np_reseed, d, d)) == NULL) {
		PyErr_Clear();
		Py_XDECREF(d);
		child_fail("cannot reseed numpy");
	}
	Py_DECREF(r);
	Py_DECREF(d);
}

/*
 * Degraded mode only (no cgroup): the address space may grow by the memory
 * limit beyond what the zygote's image already maps.  A coarse stand-in: it
 * counts reservations, not resident pages, and the kernel does not kill on
 * it; an allocation refused here raises MemoryError, reported as the limit.
 */
static void
child_limit_as(const struct cfg *c)
{
	unsigned long long pages = 0;
	struct rlimit rl;
	FILE *f;

	if ((f = fopen("/proc/self/statm", "re")) == NULL ||
	    fscanf(f, "%llu", &pages) != 1)
		child_fail("degraded mode: cannot read /proc/self/statm");
	fclose(f);
	rl.rlim_cur = rl.rlim_max = pages * (unsigned long long)sysconf(_SC_PAGESIZE) +
	    ((unsigned long long)c->memory_limit_mb << 20);
	if (setrlimit(RLIMIT_AS, &rl) == -1)
		child_fail("degraded mode: setrlimit RLIMIT_AS failed");
}

/* The interpreter's side of a child's start: __main__, its own random state. */
static void
child_start_python(void)
{
	PyObject *m;

	if ((m = PyImport_AddModule("__main__")) == NULL)
		child_fail("no __main__");
	c_main_dict = PyModule_GetDict(m);
	child_reseed();
}

void
child_probe(const struct cfg *c)
{
	static const char first[] = "x = 1\nprint(x)\n";

	ccfg = c;
	child_start_python();
	(void)child_run_code(first, sizeof(first) - 1, c_main_dict);
	child_flush();
}

void
child_main(const struct cfg *c, const struct sbx *sbx, unsigned uid, int no_cgroup,
    int warm)
{
	char err[512];
	struct proto_run run;
	struct proto_done d;
	PyObject *json;
	sigset_t none;
	char *code;
	pid_t self;

	ccfg = c;
	/* The zygote blocks SIGCHLD for its signalfd; user code gets defaults. */
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_NAME, "pyexec-session");
	if (setsid() == -1)
		child_fail("setsid failed");
	if (no_cgroup)
		child_limit_as(c);
	if (sbx_enter(sbx, (uid_t)uid, (gid_t)uid, SESS_CHILD_CTL_FD, err, sizeof(err)) == -1)
		child_fail(err);

	/* From here on: sandboxed, no privilege, and the code is the user's. */
	child_start_python();
	if (warm)
		child_warm_up_pooled();
	self = getpid();
	child_send(PROTO_CHILD_READY, PROTO_F_END, NULL, 0);

	for (;;) {
		code = child_recv_run(&run);
		/* A SIGINT that came after the last run finished must not hit this one. */
		if (PyErr_CheckSignals() == -1)
			PyErr_Clear();
		json = NULL;
		memset(&d, 0, sizeof(d));
		if (run.prn_mode == PROTO_MODE_SCRIPT)
			d.pd_status = (uint8_t)child_run_script(code, run.prn_code_len, &json);
		else
			d.pd_status = (uint8_t)child_run_code(code, run.prn_code_len,
			    c_main_dict);
		free(code);
		child_flush();
		/*
		 * A process the code forked and that did not exit ends here, as
		 * it would at the end of `python3 < file`; only the session's own
		 * process answers the daemon.
		 */
		if (getpid() != self)
			_exit(0);
		if (d.pd_status == PROTO_D_RESULT) {
			Py_ssize_t jlen;
			const char *js = PyUnicode_AsUTF8AndSize(json, &jlen);

			if (js == NULL || (size_t)jlen > c->output_limit) {
				PyErr_Clear();
				d.pd_status = PROTO_D_NOT_JSON;
			} else {
				struct proto_part part = { PROTO_STREAM_RESULT, js, (size_t)jlen };

				d.pd_res_len = (uint32_t)jlen;
				if (proto_send_msg(SESS_CHILD_CTL_FD, PROTO_DONE, 0, &d, sizeof(d),
				    &part, 1) == -1)
					child_die();
				Py_DECREF(json);
				continue;
			}
		}
		Py_XDECREF(json);
		child_send(PROTO_DONE, PROTO_F_END, &d, sizeof(d));
	}
}
