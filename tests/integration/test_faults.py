"""Faults from outside kolabfs (issue #8): a server that goes away while a
set is taken, a full or read-only state_dir, a full origin filesystem, and
passwords that must not leak anywhere.

Each failing set must fail cleanly: a message naming the server or the path,
a non-zero exit (at mount) or an errno on mkdir, and nothing half-shown: no
set directory, no snapshot, no state record.  Timing is made deterministic
with the test points of test_crash.py: KOLABFS_TEST_STOP_AT=STAGE@N stops
kolabfs the Nth time it reaches STAGE (N=2: the set taken by mkdir after the
one taken at mount), the test breaks the server, then SIGCONTs kolabfs.

test_mysql.py and test_ldap.py cover servers that are down or refuse before
a set starts; these are the ones that go away half-way.
"""
import errno
import json
import os
import signal
import stat
import threading

import pytest

import kfs
from ldapservers import write_secret
# Fixtures (pytest finds them by name in this module) and helpers shared
# with the crash tests.
from test_crash import crash_config, db, records, slapd, wait_stopped, write_waits  # noqa: F401
from test_mysql import PASSWORD as MYSQL_PASSWORD
from test_mysql import create_backup_user, write_password


class Mkdir(threading.Thread):
    """mkdir in a thread: it blocks while kolabfs is stopped at a test point."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.error = path, None
        self.start()

    def run(self):
        try:
            os.mkdir(self.path)
        except OSError as e:
            self.error = e

    def result(self, timeout=120):
        self.join(timeout)
        assert not self.is_alive(), "mkdir %s did not return" % self.path
        return self.error


def set_names(k):
    return sorted(n for n in os.listdir(k.path("snapshots")) if n != "latest")


def assert_set_absent(work, btrfs, k, name, subvols, recs):
    """NAME failed: not shown, no snapshot, no record, no spooled files."""
    assert name not in os.listdir(k.path("snapshots"))
    assert os.readlink(k.path("snapshots", "latest")) != name
    assert btrfs.subvolumes() == subvols, sorted(btrfs.subvolumes() ^ subvols)
    assert records(work) == recs
    assert not os.path.exists(os.path.join(work, "state", "sets", name))


def drop_and_exit(k, btrfs, subvols):
    kfs.run(["fusermount3", "-u", k.mp])
    assert k.wait_exit(120) == 0, k.log()
    assert btrfs.subvolumes() == subvols
    assert not kfs.is_mounted(k.mp)


# --------------------------------------------------------------------------
# 1. a server goes away half-way

@pytest.mark.parametrize("stage,how", [("locked", "kill"), ("snapshot", "restart")])
def test_mysql_gone_in_the_lock_window_fails_the_set_and_a_later_one_succeeds(
        stage, how, work, btrfs, tree, db, slapd, foreground):
    """MySQL killed (SIGKILL) with the lock held before any snapshot, or
    restarted after the first volume's snapshot: the lock may have gone
    with the session, so the snapshots prove nothing and the set fails."""
    original = btrfs.subvolumes()
    # 3 volumes: the mount-time set reaches "snapshot" 3 times, "locked" once
    nth = {"locked": 2, "snapshot": 4}[stage]
    k = foreground(crash_config(work, btrfs, db, slapd),
                   env={"KOLABFS_TEST_STOP_AT": "%s@%d" % (stage, nth)}).start()
    first = os.readlink(k.path("snapshots", "latest"))
    subvols, recs = btrfs.subvolumes(), records(work)

    m = Mkdir(k.path("snapshots", "mid"))
    wait_stopped(k, stage)
    assert write_waits(db, 1), "MySQL is not locked at %s" % stage
    if stage == "snapshot":
        assert len(btrfs.subvolumes() - subvols) == 1
    if how == "kill":
        db.kill()
    else:
        db.stop()
        db.start()
    os.kill(k.pid, signal.SIGCONT)
    e = m.result()
    assert e is not None and e.errno == errno.EIO, e
    log = k.log()
    assert "mkdir mid: [mysql] %s" % db.socket in log, log
    assert "the lock was lost inside the snapshot window" in log, log
    assert_set_absent(work, btrfs, k, "mid", subvols, recs)
    assert set_names(k) == [first]

    if how == "kill":
        db.start()
    assert not write_waits(db, 10), "MySQL is still locked"
    os.mkdir(k.path("snapshots", "after"))
    with open(k.path("snapshots", "after", "MANIFEST.json")) as f:
        assert json.load(f)["mysql"]["consistency"] == "locked"
    assert set_names(k) == sorted([first, "after"])
    drop_and_exit(k, btrfs, original)
    assert records(work) == []


def test_mysql_killed_in_the_first_sets_lock_window_fails_the_mount(
        work, btrfs, tree, db, slapd, foreground):
    """The same at mount time: non-zero exit, nothing mounted or left."""
    original = btrfs.subvolumes()
    config = crash_config(work, btrfs, db, slapd)
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": "snapshot"}, name="failed")
    k.spawn()
    wait_stopped(k, "snapshot")
    db.kill()
    os.kill(k.pid, signal.SIGCONT)
    assert k.wait_exit(120) != 0, k.log()
    assert "[mysql] %s" % db.socket in k.log(), k.log()
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == original
    assert records(work) == []
    db.start()
    k2 = foreground(config, name="again").start()
    drop_and_exit(k2, btrfs, original)


def test_ldap_server_stopped_during_an_export_fails_the_set_and_a_later_one_succeeds(
        work, btrfs, tree, db, slapd, foreground):
    original = btrfs.subvolumes()
    # one base: one "ldap" test point per set
    k = foreground(crash_config(work, btrfs, db, slapd),
                   env={"KOLABFS_TEST_STOP_AT": "ldap@2"}).start()
    first = os.readlink(k.path("snapshots", "latest"))
    subvols, recs = btrfs.subvolumes(), records(work)
    m = Mkdir(k.path("snapshots", "mid"))
    wait_stopped(k, "ldap")
    # the set's LDIF file exists, its snapshots too
    assert len(btrfs.subvolumes() - subvols) == len(kfs.VOLUMES)
    try:
        slapd.stop()
        os.kill(k.pid, signal.SIGCONT)
        e = m.result()
        assert e is not None and e.errno == errno.EIO, e
        log = k.log()
        assert "mkdir mid: [ldap:ol] %s" % slapd.uri in log, log
        assert "Can't contact LDAP server" in log, log
        assert_set_absent(work, btrfs, k, "mid", subvols, recs)
        assert set_names(k) == [first]
    finally:
        if not slapd.running():
            slapd.start()
    os.mkdir(k.path("snapshots", "after"))
    assert os.path.getsize(k.path("snapshots", "after", "ol", "dc=example,dc=net.ldif")) > 0
    assert not write_waits(db, 10)
    drop_and_exit(k, btrfs, original)
    assert records(work) == []
