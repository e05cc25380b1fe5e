"""pytest fixtures for the tests that need a guest with device-mapper.

    guest   one booted guest (guest.Guest) per test MODULE: every test of the
            module runs its commands in the same boot (a boot costs ~15 s).
            The module sets GUEST = dict(disks=["1G"], mem=2048, ...) for
            Guest()'s arguments.  The console log is kept (path on stderr)
            when a test of the module failed.

    kolabfs_bin  path of the built kolabfs (the same inside the guest);
            KOLABFS_BUILDDIR if it was built outside the source tree

Boot times are listed at the end of the run.
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest as vm  # noqa: E402

_boots = []     # (module, boot seconds, seconds the guest lived)


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("the VM tests must run as root")


@pytest.fixture(scope="module")
def guest(request):
    opts = getattr(request.module, "GUEST", {})
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
