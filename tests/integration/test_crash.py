"""kolabfs killed (SIGKILL) at each stage of taking and dropping a set, then
started again: the MySQL lock died with it, the next start reaps exactly what
the killed one made (nothing foreign), and takes a complete set.

The stages are reached deterministically: KOLABFS_TEST_STOP_AT=STAGE makes
kolabfs stop itself (SIGSTOP) there (src/testpoint.c, doc/design.md), the
test waits until /proc says it is stopped and kills it.  A real MariaDB with
its datadir on the loop btrfs holds the lock; a real OpenLDAP slapd is
exported.  No sleeps: every wait is a bounded poll for a state.
"""
import json
import os
import re
import signal
import threading
import time

import pymysql
import pytest

import kfs
from ldapservers import DirSrv, Slapd, kolab_ldif, tricky_ldif, write_secret
from mariadb import MariaDB

SUFFIX = "dc=example,dc=net"
STAGES = ["locked", "snapshot", "ldap", "teardown"]
SIGNAME = {"SIGHUP": "Hangup", "SIGTERM": "Terminated", "SIGINT": "Interrupt"}  # strsignal(3)


@pytest.fixture(scope="module")
def slapd():
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="kfs-crash-ldap-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Slapd(os.path.join(base, "ol"), SUFFIX)
    try:
        s.create()
        s.start()
        s.add(tricky_ldif(SUFFIX, users=60))
        yield s
    finally:
        s.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def dirsrv():
    """389 Directory Server: mode = task, where the server writes the LDIF."""
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="kfs-crash-ds-", dir="/tmp")
    os.chmod(base, 0o755)
    s = DirSrv(os.path.join(base, "ds"), "kfscrash", {"userroot": "dc=example,dc=org"})
    try:
        s.create()
        s.start()
        s.add(kolab_ldif("dc=example,dc=org", 200, 10))
        yield s
    finally:
        s.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def db(work, btrfs):
    d = MariaDB(btrfs.path("mysql", "data"), os.path.join(work, "run-db"))
    d.install()
    d.start()
    d.sql("CREATE DATABASE kolab")
    d.sql("CREATE TABLE kolab.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB")
    yield d
    d.stop()


def crash_config(work, btrfs, db, slapd, name="kolabfs.conf", keys=()):
    """[ldap:ol] in search mode, and [mysql] if DB (not None)."""
    pw = write_secret(os.path.join(work, "ol.pw"), slapd.password + "\n")
    extra = []
    if db is not None:
        extra += ["[mysql]", "socket = %s" % db.socket, "lock = ftwrl",
                  "lock_wait_timeout = 30", ""]
    extra += ["[ldap:ol]", "uri = %s" % slapd.uri, "bind_dn = %s" % slapd.root_dn,
              "password_file = %s" % pw, "mode = search", "timeout = 10", ""]
    text = kfs.config_text(work, btrfs.mnt, extra=extra)
    text = text.replace("[kolabfs]\n", "[kolabfs]\n" + "".join(k + "\n" for k in keys), 1)
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def proc_state(pid):
    """The one-letter state of /proc/PID/status ("T" when stopped)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1]
    except FileNotFoundError:
        return None
    return None


def wait_stopped(k, stage):
    kfs.wait_until(lambda: proc_state(k.pid) == "T" or k.proc.poll() is not None, 120,
                   "kolabfs to stop at %s" % stage)
    assert k.proc.poll() is None, "kolabfs exited %s before %s:\n%s" % (
        k.proc.returncode, stage, k.log())
    assert "test point %s reached" % stage in k.log(), k.log()


def write_waits(db, timeout):
    """Try one INSERT from a new connection that waits at most TIMEOUT s for
    a lock.  True if it had to give up (the server is locked)."""
    c = db.connect(read_timeout=timeout + 30)
    try:
        with c.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = %d" % timeout)
            try:
                cur.execute("INSERT INTO kolab.t (v) VALUES (1)")
            except pymysql.err.OperationalError as e:
                assert e.args[0] == 1205, e     # ER_LOCK_WAIT_TIMEOUT
                return True
        return False
    finally:
        c.close()


def records(work):
    d = os.path.join(work, "state", "sets")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def snapshot_dir(btrfs):
    return btrfs.path(".kolabfs-snapshots")


def make_foreign(btrfs, name="spool@not-kolabfs"):
    """A read-only snapshot that is not kolabfs's, where kolabfs keeps its own."""
    os.makedirs(snapshot_dir(btrfs), exist_ok=True)
    btrfs.snapshot_ro(btrfs.path("spool"), os.path.join(snapshot_dir(btrfs), name))
    return os.path.relpath(os.path.join(snapshot_dir(btrfs), name), btrfs.mnt)


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_a_stage_then_the_next_start_reaps_exactly_that(
        stage, work, btrfs, tree, db, slapd, foreground):
    config = crash_config(work, btrfs, db, slapd)
    foreign = make_foreign(btrfs)
    before = btrfs.subvolumes()
    assert foreign in before
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": stage}, name="killed")
    if stage == "teardown":
        k.start()
        name = os.readlink(k.path("snapshots", "latest"))
        kfs.run(["fusermount3", "-u", k.mp])        # teardown begins after the unmount
    else:
        k.spawn()
    wait_stopped(k, stage)
    made = btrfs.subvolume_ids()
    made = {p: i for p, i in made.items() if p not in before}
    left = records(work)
    assert len(left) == 1, left
    if stage == "locked":
        assert not made, "a snapshot before the lock's test point: %s" % made
    elif stage == "teardown":
        # the first snapshot is gone, the others are still there
        assert len(made) == 2 and all(("@" + name) in p for p in made), made
    else:
        assert made and all(("@" + left[0]) in p for p in made), made
    if stage in ("locked", "snapshot"):
        assert write_waits(db, 1), "the server is not locked at %s" % stage

    os.kill(k.pid, signal.SIGKILL)
    assert k.wait_exit(60) == -signal.SIGKILL
    if kfs.is_mounted(k.mp):                      # killed while mounted: a dead mount
        kfs.run(["fusermount3", "-u", k.mp])
    # The lock died with its connection: writers go on.
    assert not write_waits(db, 10), "MySQL is still locked after kolabfs was killed"
    assert records(work) == left, "the record must outlive the killed process"

    k2 = foreground(config, name="restarted").start()
    new = os.readlink(k2.path("snapshots", "latest"))
    now = btrfs.subvolume_ids()
    # by ID: the new set may have the killed one's name (same second)
    assert not set(made.values()) & set(now.values()), \
        "not reaped: %s" % sorted(p for p, i in made.items() if i in now.values())
    assert foreign in now, "the reaper removed a snapshot that is not kolabfs's"
    mine = {p for p in now if p not in before}
    assert mine and all(p.endswith("@" + new) for p in mine), sorted(now)
    assert set(now) == before | mine
    assert records(work) == [new]
    # The next set is complete, and says what was reaped.
    m = k2.path("snapshots", new)
    assert os.path.isfile(os.path.join(m, "MANIFEST.json"))
    with open(os.path.join(m, "MANIFEST.json")) as f:
        manifest = json.load(f)
    assert manifest["mysql"]["consistency"] == "locked"
    assert manifest["ldap"]["ol"][0]["entries"] > 50
    for p in made:
        assert any(p in w for w in manifest["warnings"]), (p, manifest["warnings"])
    assert not write_waits(db, 10)
    k2.cleanup()
    assert k2.proc.returncode == 0, k2.log()
    assert btrfs.subvolumes() == before
    assert records(work) == []


# --------------------------------------------------------------------------
# Snapshots that are not kolabfs's, under a name kolabfs would use

def test_a_set_that_fails_on_a_taken_name_leaves_that_snapshot_alone(work, btrfs, tree, kolabfs):
    """mkdir of a set whose snapshot name is taken by somebody else's
    snapshot fails; tearing the failed set down removes what it made, not
    the other one."""
    foreign = make_foreign(btrfs, "mysql@clash")      # the last volume's name
    subvols = btrfs.subvolumes()
    with pytest.raises(OSError):
        os.mkdir(kolabfs.path("snapshots", "clash"))
    assert "clash" not in os.listdir(kolabfs.path("snapshots"))
    assert foreign in btrfs.subvolumes(), "kolabfs destroyed a snapshot it had not made"
    assert btrfs.subvolumes() == subvols, "the failed set left snapshots behind"
    assert "clash" not in records(work)


def test_the_reaper_leaves_a_snapshot_older_than_the_record_alone(
        work, btrfs, tree, db, slapd, foreground):
    """A set is recorded before its snapshots are taken.  Killed before it
    reached one of them, the record still names it; if somebody else's
    snapshot sits under that name, it was there before the record, and the
    reaper must leave it alone.  (The set is taken by mkdir, so its name is
    known in advance; the test point stops at that set's first snapshot.)"""
    name = "clash"
    config = crash_config(work, btrfs, db, slapd)
    foreign = make_foreign(btrfs, "mysql@" + name)
    before = btrfs.subvolumes()
    # the test point is passed once per volume: the mount's set, then ours
    stop = "snapshot@%d" % (len(kfs.VOLUMES) + 1)
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": stop}, name="killed").start()
    first = os.readlink(k.path("snapshots", "latest"))
    errors = []

    def mkdir():
        try:
            os.mkdir(k.path("snapshots", name))
        except OSError as e:
            errors.append(e.errno)
    t = threading.Thread(target=mkdir)
    t.start()
    wait_stopped(k, "snapshot")
    assert sorted(records(work)) == sorted([first, name])
    made = {p for p in set(btrfs.subvolumes()) - before if p.endswith("@" + name)}
    assert made == {os.path.relpath(btrfs.path(".kolabfs-snapshots", "spool@" + name), btrfs.mnt)}
    os.kill(k.pid, signal.SIGKILL)
    k.wait_exit(60)
    t.join(60)
    assert not t.is_alive() and errors, "mkdir did not fail when kolabfs was killed"
    if kfs.is_mounted(k.mp):
        kfs.run(["fusermount3", "-u", k.mp])

    k2 = foreground(config, name="restarted").start()
    now = btrfs.subvolumes()
    assert foreign in now, "the reaper destroyed a snapshot older than the record"
    assert not made & now, "the killed set's snapshot was not reaped"
    assert "mysql@%s" % name in k2.log() and "left alone" in k2.log(), k2.log()
    k2.cleanup()
    assert btrfs.subvolumes() == before


# --------------------------------------------------------------------------
# SIGHUP, SIGTERM, SIGINT while the first set is taken

@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM"])
def test_a_signal_while_the_first_set_is_taken_is_held_until_it_is_complete(
        sig, work, btrfs, tree, db, slapd, foreground):
    """Dying half-way would leave snapshots for the next start to reap and,
    for a moment, the MySQL lock: the signal waits until the set is
    complete, then kolabfs unmounts and drops it as after umount."""
    before = btrfs.subvolumes()
    k = foreground(crash_config(work, btrfs, db, slapd),
                   env={"KOLABFS_TEST_STOP_AT": "snapshot"})
    k.spawn()
    wait_stopped(k, "snapshot")              # inside the lock window
    os.kill(k.pid, getattr(signal, sig))
    os.kill(k.pid, signal.SIGCONT)
    rc = k.wait_exit(120)
    log = k.log()
    assert rc == 0, log
    # finished, mounted, and only then unmounted for the signal
    m = re.search(r"^kolabfs: set (\S+) taken$", log, re.M)
    assert m, log
    order = [log.index(x) for x in (m.group(0), "mounted on", "%s: unmounting" % SIGNAME[sig],
                                    "set %s dropped" % m.group(1))]
    assert order == sorted(order), log
    assert btrfs.subvolumes() == before
    assert records(work) == []
    assert not kfs.is_mounted(k.mp)
    assert not write_waits(db, 10)


# --------------------------------------------------------------------------
# mode = task: the server writes the LDIF into its own directory

def test_sigkill_during_a_task_export_then_the_reaper_removes_the_servers_file(
        work, btrfs, tree, dirsrv, foreground):
    """Killed while 389-ds exports for it, kolabfs leaves the server's file
    kolabfs-BACKEND-PID-N.ldif in the server's LDIF directory (the server
    finishes the task): the next start removes it, as it does the
    snapshots."""
    ds = dirsrv
    pw = write_secret(os.path.join(work, "ds.pw"), ds.password + "\n")
    config = os.path.join(work, "kolabfs.conf")
    with open(config, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, extra=[
            "[ldap:ds]", "uri = %s" % ds.uri, "bind_dn = %s" % ds.root_dn,
            "password_file = %s" % pw, "mode = task", "timeout = 10", ""]))
    before = btrfs.subvolumes()
    assert ds.ldifdir_leftovers() == []
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": "ldap"}, name="killed")
    k.spawn()
    wait_stopped(k, "ldap")
    pid = k.pid
    os.kill(pid, signal.SIGKILL)
    k.wait_exit(60)
    ds.wait_no_tasks()                      # the task has run to its end
    left = ds.ldifdir_leftovers()
    assert len(left) == 1 and "-%d-" % pid in left[0], left
    path = os.path.join(ds.ldifdir, left[0])

    k2 = foreground(config, name="restarted").start()
    assert ds.ldifdir_leftovers() == [], "the server's file was not reaped"
    assert path in k2.log(), k2.log()
    new = os.readlink(k2.path("snapshots", "latest"))
    with open(k2.path("snapshots", new, "MANIFEST.json")) as f:
        manifest = json.load(f)
    assert any(path in w for w in manifest["warnings"]), manifest["warnings"]
    assert manifest["ldap"]["ds"][0]["entries"] > 200
    k2.cleanup()
    assert k2.proc.returncode == 0, k2.log()
    assert btrfs.subvolumes() == before
    assert records(work) == []
    ds.wait_no_tasks()
    assert ds.ldifdir_leftovers() == []


def test_a_second_signal_does_not_stop_the_teardown(work, btrfs, tree, config, foreground):
    """A supervisor that signals kolabfs and then its process group sends
    two SIGTERMs: the second, arriving while the sets are being dropped,
    must not kill kolabfs half-way (it would leave snapshots behind)."""
    before = btrfs.subvolumes()
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": "teardown"}, name="twice").start()
    os.kill(k.pid, signal.SIGTERM)                  # the first: teardown begins
    wait_stopped(k, "teardown")
    os.kill(k.pid, signal.SIGTERM)                  # the second, mid-teardown
    os.kill(k.pid, signal.SIGCONT)
    assert k.wait_exit(120) == 0, k.log()
    assert btrfs.subvolumes() == before, sorted(btrfs.subvolumes() - before)
    assert records(work) == []
    assert not kfs.is_mounted(k.mp)
