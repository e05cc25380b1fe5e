"""pytest fixtures for the tests that need a guest with device-mapper.

    guest   one booted guest (guest.Guest) per test MODULE: every test of the
            module runs its commands in the same boot (a boot costs ~15 s).
            The module sets GUEST = dict(disks=["1G"], mem=2048, ...) for
            Guest()'s arguments.  The console log is kept (path on stderr)
            when a test of the module failed.

    kolabfs_bin  path of the built kolabfs (the same inside the guest);
            KOLABFS_BUILDDIR if it was built outside the source tree

Every guest command gets KOLABFS_BUILDDIR, ASAN_OPTIONS and UBSAN_OPTIONS
from this process (the guest's commands start from the guest's own
environment): a script in the guest that runs kfs.KOLABFS runs the kolabfs
under test, and in tests/run's sanitizer pass with its options.  The
directory of a sanitizer option's log_path is shared read-write into the
guest at the same path, so a report from a kolabfs in the guest lands where
tests/run looks for reports; the guest's file names get ".vm-MODULE"
(asan.vm-test_lvm.PID): the guest's pids would otherwise collide with this
machine's and another guest's, and a report would overwrite another.

Boot times are listed at the end of the run.
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest as vm  # noqa: E402

_boots = []     # (module, boot seconds, seconds the guest lived)
PASS_ENV = ("KOLABFS_BUILDDIR", "ASAN_OPTIONS", "UBSAN_OPTIONS")


def guest_env(module):
    """(env, shares) for the Guest of test module MODULE: see above."""
    env, shares = {}, []
    for k in PASS_ENV:
        v = os.environ.get(k)
        if not v:
            continue
        if k == "KOLABFS_BUILDDIR":
            v = os.path.abspath(v)
        else:
            opts = []
            for o in v.split(":"):
                name, _, path = o.partition("=")
                if name == "log_path" and path.startswith("/"):
                    d = os.path.dirname(path)
                    os.makedirs(d, exist_ok=True)
                    if d not in shares:
                        shares.append(d)
                    o = "log_path=%s.vm-%s" % (path, module)
                opts.append(o)
            v = ":".join(opts)
        env[k] = v
    return env, shares


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("the VM tests must run as root")


@pytest.fixture(scope="module")
def guest(request):
    opts = dict(getattr(request.module, "GUEST", {}))
    env, shares = guest_env(request.module.__name__.rpartition(".")[2])
    opts["env"] = dict(env, **opts.get("env", {}))
    opts["shares"] = list(opts.get("shares", ())) + shares
    failed_before = request.session.testsfailed
    g = vm.Guest(**opts)
    t0 = time.monotonic()
    try:
        g.start()
    except vm.GuestError as e:
        pytest.fail("guest did not boot: %s" % e, pytrace=False)
    try:
        yield g
    finally:
        g.stop(keep_log=request.session.testsfailed > failed_before)
        _boots.append((request.module.__name__, g.boot_seconds, time.monotonic() - t0))


@pytest.fixture(scope="session")
def kolabfs_bin():
    srcdir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(os.path.abspath(os.environ.get("KOLABFS_BUILDDIR") or srcdir), "kolabfs")
    if not os.access(path, os.X_OK):
        pytest.fail("kolabfs is not built: %s (run tests/run, or set KOLABFS_BUILDDIR)" % path)
    return path


def pytest_terminal_summary(terminalreporter):
    for name, boot, total in _boots:
        terminalreporter.write_line("vm: %s: guest booted in %.1f s, lived %.1f s"
                                    % (name, boot, total))
