"""Helpers shared by the tests/bench scripts (make bench skips files named
_*.py).  The caller puts tests/integration on sys.path first (kfs)."""
import os
import shutil
import signal
import subprocess

import kfs


class Terminated(Exception):
    pass


def _terminate(signum, frame):
    raise Terminated("signal %d" % signum)


def catch_signals():
    """SIGTERM and SIGHUP raise Terminated, SIGINT KeyboardInterrupt (also
    when started with SIGINT ignored, as a shell's background job is), so
    that the caller's finally tears down."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default); None
    for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def failure(e, log, k=None, db=None):
    """Say why a run failed: E, kolabfs K's stderr, MariaDB DB's log tail,
    and the traceback unless it was a signal."""
    log("FAILED: %r" % (e,))
    if k is not None and (k.err or "").strip():
        log("kolabfs stderr:\n" + k.err)
    if db is not None:
        log("mariadbd log tail:\n" + db.log_tail())
    if not isinstance(e, (Terminated, KeyboardInterrupt)):
        import traceback
        traceback.print_exc()


def teardown(work, fs, keep, log, *cleanups):
    """The end of a run, with signals ignored: each of CLEANUPS (callables;
    None is skipped) called, whatever is still mounted under WORK/mnt
    lazily unmounted, the loop btrfs FS torn down, WORK removed unless KEEP.
    Returns False if the teardown left something behind."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    log("tearing down")
    for c in cleanups:
        if c is None:
            continue
        try:
            c()
        except Exception as e:
            log("teardown: %r" % (e,))
    for t in kfs.mounts_under(os.path.join(work, "mnt")):
        subprocess.run(["umount", "-l", t], capture_output=True)
    errors = fs.teardown()
    if errors:
        log("teardown: " + "; ".join(errors))
    if keep:
        log("work dir kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return not errors
