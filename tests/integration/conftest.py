"""pytest fixtures for the kolabfs integration tests (root, real btrfs + FUSE).

    work       a fresh world-traversable directory under /tmp (removed after)
    btrfs      a loop-file btrfs with subvolumes spool, imap, mysql (kfs.Btrfs)
    tree       the test tree built into those subvolumes (kfs.Tree)
    reference  read-only btrfs snapshots of the volumes taken by the test
               itself just before kolabfs mounts: {volume: path}
    copy_paths the [copy:etc] source paths
    config     path of a good kolabfs.conf for all of the above
    kolabfs    kolabfs mounted with that config (kfs.Kolabfs), unmounted after
    kolabfs_factory  make more Kolabfs objects; each is cleaned up after
    foreground make kfs.Foreground objects (kolabfs -f, its log and exit
               status kept); each is cleaned up after

Set KOLABFS_BUILDDIR if kolabfs was built outside the source tree.
"""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kfs  # noqa: E402


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("the integration tests must run as root")


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="kfs-it-", dir="/tmp")
    os.chmod(d, 0o755)          # user nobody must reach the mountpoint
    yield d
    left = kfs.mounts_under(d)
    if left:
        pytest.fail("still mounted under %s: %s" % (d, left))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def btrfs(work):
    fs = kfs.Btrfs(work)
    try:
        fs.setup()
        yield fs
    finally:
        errors = fs.teardown()
    if errors:
        pytest.fail("btrfs teardown: " + "; ".join(errors))


@pytest.fixture
def tree(btrfs):
    return kfs.build_tree(btrfs.mnt)


@pytest.fixture
def reference(btrfs, tree):
    refdir = btrfs.path("reference")
    os.mkdir(refdir)
    refs = {}
    for v in kfs.VOLUMES:
        refs[v] = os.path.join(refdir, v)
        btrfs.snapshot_ro(btrfs.path(v), refs[v])
    return refs


@pytest.fixture
def copy_paths(work):
    return kfs.make_copy_sources(work)


@pytest.fixture
def config(work, btrfs, copy_paths):
    path = os.path.join(work, "kolabfs.conf")
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, copies=copy_paths))
    return path


def _need_binary():
    if not os.access(kfs.KOLABFS, os.X_OK):
        pytest.fail("kolabfs is not built: %s (run tests/run, or set KOLABFS_BUILDDIR)"
                    % kfs.KOLABFS)


@pytest.fixture
def kolabfs_factory(work):
    made = []

    def make(config, mountpoint=None):
        _need_binary()
        k = kfs.Kolabfs(work, config, mountpoint or os.path.join(work, "mnt"))
        made.append(k)
        return k

    yield make
    for k in made:
        k.cleanup()


@pytest.fixture
def foreground(work):
    made = []

    def make(config, **kw):
        _need_binary()
        k = kfs.Foreground(work, config, **kw)
        made.append(k)
        return k

    yield make
    for k in made:
        k.cleanup()


@pytest.fixture
def kolabfs(work, config, tree, reference, kolabfs_factory):
    k = kolabfs_factory(config)
    k.start()
    k.check_started()
    yield k
    k.stop()
