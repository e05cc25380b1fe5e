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
from ldapservers import Slapd, tricky_ldif, write_secret
# Fixtures (pytest finds them by name in this module) and helpers shared
# with the crash tests.
from test_crash import (crash_config, db, dirsrv, records, slapd, wait_stopped,  # noqa: F401
                        write_waits)
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


PAGED_SUFFIX = "dc=example,dc=paged"
PAGE_SIZE = 1000                # kolabfs's page size (snap/ldap-search.c)


@pytest.fixture
def paged_slapd(work):
    """slapd with enough entries under one base for three pages."""
    s = Slapd(os.path.join(work, "paged-ol"), PAGED_SUFFIX)
    try:
        s.create()
        s.start()
        s.add(tricky_ldif(PAGED_SUFFIX, users=2 * PAGE_SIZE + 300, depth=3))
        yield s
    finally:
        s.stop()


def ldif_files(top):
    return sorted(os.path.relpath(os.path.join(d, n), top)
                  for d, _, files in os.walk(top) for n in files if n.endswith(".ldif"))


def kill_server(server, reset=False):
    """SIGKILL: a server that dies, no goodbye to its clients.  Its
    connections end with a FIN, unless RESET: then they are reset first
    (ss -K: the server's end destroyed, an RST to the client), as when the
    server died with a request unread or a firewall dropped the connection;
    the client's next write then fails with EPIPE (and SIGPIPE)."""
    if reset:
        kfs.run(["ss", "-K", "-tn", "state", "established", "( sport = :%d )" % server.port])
    server.proc.kill()
    server.proc.wait(timeout=60)
    server.proc = None


def ldif_entries(path):
    with open(path) as f:
        return sum(1 for line in f if line.startswith("dn:"))


# (when, how, with [mysql]).  Without [mysql], nothing but kolabfs itself
# keeps a reset connection's SIGPIPE from killing it during the first set:
# libmariadb ignores SIGPIPE when it starts, libfuse once mounted.
PAGED_CASES = [("mkdir", "kill", True), ("mount", "kill", True),
               ("mount", "reset", False), ("mkdir", "reset", False)]


@pytest.mark.parametrize("when,how,mysql", PAGED_CASES,
                         ids=["-".join((w, h, "mysql" if m else "ldap")) for w, h, m in PAGED_CASES])
def test_ldap_server_killed_between_pages_fails_the_set_and_leaves_no_half_file(
        when, how, mysql, request, work, btrfs, tree, paged_slapd, foreground):
    """mode = search: slapd dies (SIGKILL) after the first page of the
    paged search has been written, before the next is asked for, its
    connection closed or reset.  The set fails naming the server (the
    process is not killed by SIGPIPE: exit status 1 at mount), no LDIF or
    set is left anywhere, MySQL is not locked, and a set taken once the
    server is back is complete."""
    db = request.getfixturevalue("db") if mysql else None
    ol = paged_slapd
    entries = ol.count(PAGED_SUFFIX)
    pages = -(-entries // PAGE_SIZE)
    assert pages >= 3 and entries % PAGE_SIZE, entries
    original = btrfs.subvolumes()
    state = os.path.join(work, "state")
    config = crash_config(work, btrfs, db, ol, name="kolabfs-paged.conf")
    # the first page of the set taken at mount, or of the one after it
    nth = 1 if when == "mount" else pages + 1
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": "ldap-page@%d" % nth}, name=when)
    if when == "mount":
        k.spawn()
        name = None
        subvols, recs, ldifs = original, [], []
    else:
        k.start()
        first = os.readlink(k.path("snapshots", "latest"))
        assert ldif_entries(k.path("snapshots", first, "ol", PAGED_SUFFIX + ".ldif")) == entries
        name = "mid"
        subvols, recs, ldifs = btrfs.subvolumes(), records(work), ldif_files(state)
        m = Mkdir(k.path("snapshots", name))
    wait_stopped(k, "ldap-page")
    # half-way: the set's snapshots and its LDIF file exist
    assert len(btrfs.subvolumes() - subvols) == len(kfs.VOLUMES)
    assert len(ldif_files(state)) == len(ldifs) + 1, ldif_files(state)
    try:
        kill_server(ol, reset=how == "reset")
        os.kill(k.pid, signal.SIGCONT)
        if when == "mount":
            # 1: a failure reported, not a death by a signal (SIGPIPE)
            assert k.wait_exit(120) == 1, k.log()
            assert not kfs.is_mounted(k.mp)
        else:
            e = m.result()
            assert e is not None and e.errno == errno.EIO, e
        log = k.log()
        assert "[ldap:ol] %s: base %s: " % (ol.uri, PAGED_SUFFIX) in log, log
        assert "Can't contact LDAP server" in log, log
        if when == "mkdir":
            assert "mkdir mid: [ldap:ol] %s" % ol.uri in log, log
            assert_set_absent(work, btrfs, k, name, subvols, recs)
            assert set_names(k) == [first]
        assert btrfs.subvolumes() == subvols
        assert records(work) == recs
        assert ldif_files(state) == ldifs
        if db:
            assert not write_waits(db, 10), "MySQL is still locked"
    finally:
        if not ol.running():
            ol.start()
    if when == "mount":
        k = foreground(config, name="again").start()
    os.mkdir(k.path("snapshots", "after"))
    ldif = k.path("snapshots", "after", "ol", PAGED_SUFFIX + ".ldif")
    assert ldif_entries(ldif) == entries
    with open(k.path("snapshots", "after", "MANIFEST.json")) as f:
        assert json.load(f)["ldap"]["ol"][0]["entries"] == entries
    drop_and_exit(k, btrfs, original)
    assert records(work) == []


def test_389ds_stopped_during_an_export_task_fails_the_set_and_leaves_no_file(
        work, btrfs, tree, dirsrv, foreground):
    """mode = task: the server writes the LDIF into its own directory; it
    goes down while kolabfs waits for the task.  No file of kolabfs's is
    left there, and the next set (server back) is complete."""
    ds = dirsrv
    original = btrfs.subvolumes()
    pw = write_secret(os.path.join(work, "ds.pw"), ds.password + "\n")
    config = os.path.join(work, "kolabfs-ds.conf")
    with open(config, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, extra=[
            "[ldap:ds]", "uri = %s" % ds.uri, "bind_dn = %s" % ds.root_dn,
            "password_file = %s" % pw, "mode = task", "timeout = 10", ""]))
    k = foreground(config, env={"KOLABFS_TEST_STOP_AT": "ldap@2"}).start()
    first = os.readlink(k.path("snapshots", "latest"))
    subvols, recs = btrfs.subvolumes(), records(work)
    m = Mkdir(k.path("snapshots", "mid"))
    wait_stopped(k, "ldap")                 # the export task has been added
    try:
        ds.stop()
        os.kill(k.pid, signal.SIGCONT)
        e = m.result()
        assert e is not None and e.errno == errno.EIO, e
        log = k.log()
        assert "mkdir mid: [ldap:ds] %s" % ds.uri in log, log
        assert_set_absent(work, btrfs, k, "mid", subvols, recs)
        assert ds.ldifdir_leftovers() == [], "the server's file of the failed set is left"
    finally:
        if not ds.running():
            ds.start()
    os.mkdir(k.path("snapshots", "after"))
    assert os.path.getsize(k.path("snapshots", "after", "ds", "userroot.ldif")) > 0
    drop_and_exit(k, btrfs, original)
    assert records(work) == []
    assert ds.ldifdir_leftovers() == []


# --------------------------------------------------------------------------
# 2. state_dir full or read-only, the origin filesystem full

@pytest.fixture
def statefs(work):
    """A 2 MiB tmpfs as state_dir's parent; state_dir is <it>/state."""
    d = os.path.join(work, "statefs")
    os.mkdir(d)
    kfs.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", d])
    yield d
    kfs.run(["umount", d], check=False)


def state_config(work, btrfs, copy_paths, state_dir):
    path = os.path.join(work, "kolabfs-state.conf")
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, copies=copy_paths, state_dir=state_dir))
    return path


def fill(directory):
    """Write into DIRECTORY until its filesystem says ENOSPC; the file."""
    path = os.path.join(directory, "filler")
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return path


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_read_only_or_full_state_dir_fails_the_mount_naming_it(
        how, work, btrfs, tree, copy_paths, statefs, kolabfs_factory):
    state = os.path.join(statefs, "state")
    os.mkdir(state, 0o700)
    if how == "read-only":
        kfs.run(["mount", "-o", "remount,ro", statefs])
        why = "Read-only file system"
    else:
        fill(statefs)
        why = "No space left on device"
    k = kolabfs_factory(state_config(work, btrfs, copy_paths, state))
    assert k.start() != 0, k.err
    print("refused as expected:", k.err.strip())
    assert state in k.err and why in k.err, k.err
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == set(kfs.VOLUMES)
    sets = os.path.join(state, "sets")
    assert not os.path.exists(sets) or os.listdir(sets) == []


def test_full_state_dir_fails_mkdir_with_enospc_and_leaves_nothing(
        work, btrfs, tree, copy_paths, statefs, foreground):
    state = os.path.join(statefs, "state")
    k = foreground(state_config(work, btrfs, copy_paths, state)).start()
    first = os.readlink(k.path("snapshots", "latest"))
    subvols = btrfs.subvolumes()
    filler = fill(statefs)
    with pytest.raises(OSError) as e:
        os.mkdir(k.path("snapshots", "full"))
    assert e.value.errno == errno.ENOSPC, e.value
    log = k.log()
    assert "mkdir full: " in log and os.path.join(state, "sets", "full") in log, log
    assert "No space left on device" in log, log
    assert set_names(k) == [first]
    assert btrfs.subvolumes() == subvols
    assert sorted(os.listdir(os.path.join(state, "sets"))) == [first]
    os.unlink(filler)
    os.mkdir(k.path("snapshots", "room-again"))
    assert set_names(k) == sorted([first, "room-again"])
    drop_and_exit(k, btrfs, set(kfs.VOLUMES))
    assert os.listdir(os.path.join(state, "sets")) == []


def test_state_dir_gone_read_only_fails_mkdir_with_eio_and_leaves_nothing(
        work, btrfs, tree, copy_paths, statefs, foreground):
    """EIO, not EROFS: EROFS on mkdir would read as kolabfs refusing it.

    kolabfs keeps its lock file open for writing, so the tmpfs cannot be
    remounted read-only under it ("busy"): a read-only bind mount over
    state_dir/sets stands in for a filesystem the kernel turned read-only."""
    state = os.path.join(statefs, "state")
    sets = os.path.join(state, "sets")
    k = foreground(state_config(work, btrfs, copy_paths, state)).start()
    first = os.readlink(k.path("snapshots", "latest"))
    subvols = btrfs.subvolumes()
    kfs.run(["mount", "--bind", sets, sets])
    try:
        kfs.run(["mount", "-o", "remount,bind,ro", sets])
        with pytest.raises(OSError) as e:
            os.mkdir(k.path("snapshots", "ro"))
        assert e.value.errno == errno.EIO, e.value
        log = k.log()
        assert "mkdir ro: %s: Read-only file system" % os.path.join(state, "sets", "ro") \
            in log, log
        assert set_names(k) == [first]
        assert btrfs.subvolumes() == subvols
    finally:
        kfs.run(["umount", sets])
    assert sorted(os.listdir(os.path.join(state, "sets"))) == [first]
    os.mkdir(k.path("snapshots", "rw-again"))
    drop_and_exit(k, btrfs, set(kfs.VOLUMES))


@pytest.fixture
def small_btrfs(work):
    """A 128 MiB loop btrfs (the smallest mkfs.btrfs makes) with the volumes."""
    base = os.path.join(work, "small")
    os.mkdir(base)
    fs = kfs.Btrfs(base, size="128M")
    try:
        fs.setup()
        kfs.build_tree(fs.mnt)
        yield fs
    finally:
        errors = fs.teardown()
    assert not errors, errors


def fill_btrfs(fs):
    """Fill data, then metadata (empty directories), until ENOSPC."""
    fill(fs.path("spool"))
    d = fs.path("spool", "meta")
    os.mkdir(d)
    i = 0
    try:
        while True:
            os.mkdir(os.path.join(d, "%07d" % i))
            i += 1
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    kfs.run(["sync", "-f", fs.mnt])


def test_full_origin_fails_the_mount_naming_the_volume(work, small_btrfs, kolabfs_factory):
    """A full btrfs still takes snapshots (metadata comes from the global
    reserve, see the next test); what fails is the first set's mkdir of
    .kolabfs-snapshots beside the volumes."""
    fill_btrfs(small_btrfs)
    config = os.path.join(work, "kolabfs-small.conf")
    with open(config, "w") as f:
        f.write(kfs.config_text(work, small_btrfs.mnt))
    k = kolabfs_factory(config)
    assert k.start() != 0, k.err
    assert "[volume:spool] cannot snapshot %s" % small_btrfs.path("spool") in k.err, k.err
    assert "No space left on device" in k.err, k.err
    assert not kfs.is_mounted(k.mp)
    assert small_btrfs.subvolumes() == set(kfs.VOLUMES)
    assert not os.path.exists(small_btrfs.path(".kolabfs-snapshots"))
    assert os.listdir(os.path.join(work, "state", "sets")) == []


def test_a_full_origin_is_still_snapshotted(work, small_btrfs, foreground):
    """Once .kolabfs-snapshots exists, a snapshot of a full btrfs succeeds
    (btrfs takes it from its reserve): the set is complete and readable."""
    config = os.path.join(work, "kolabfs-small.conf")
    with open(config, "w") as f:
        f.write(kfs.config_text(work, small_btrfs.mnt))
    k = foreground(config).start()
    fill_btrfs(small_btrfs)
    os.mkdir(k.path("snapshots", "full"))
    with open(k.path("snapshots", "full", "spool", "feat", "public.txt")) as f:
        assert f.read() == "anyone may read\n"
    assert os.path.isdir(k.path("snapshots", "full", "spool", "meta"))
    drop_and_exit(k, small_btrfs, set(kfs.VOLUMES))


# --------------------------------------------------------------------------
# 3. secrets

def descendants(pid):
    """PID and every live process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    res, todo = [], [pid]
    while todo:
        p = todo.pop()
        res.append(p)
        todo += children.get(p, [])
    return res


def assert_no_password(secrets, where, data):
    if isinstance(data, str):
        data = data.encode(errors="surrogateescape")
    for s in secrets:
        assert s.encode() not in data, "a password in %s" % where


def assert_tree_has_no_password(secrets, top):
    for d, dirs, files in os.walk(top):
        for n in files:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    assert_no_password(secrets, p, f.read())


def test_passwords_appear_nowhere(work, btrfs, tree, db, slapd, foreground):
    """[mysql] and [ldap:ol] with password_file, real servers, kolabfs -d:
    not in state_dir, the set (MANIFEST, LDIF), /status, the log with
    libfuse's debug output, or the command line of kolabfs or a child."""
    create_backup_user(db)
    secrets = [MYSQL_PASSWORD, slapd.password]
    my_pw = write_password(work, "mysql.pw", MYSQL_PASSWORD)
    ol_pw = write_secret(os.path.join(work, "ol.pw"), slapd.password + "\n")
    extra = ["[mysql]", "socket = %s" % db.socket, "user = kolabfs",
             "password_file = %s" % my_pw, "lock = ftwrl", "lock_wait_timeout = 30", "",
             "[ldap:ol]", "uri = %s" % slapd.uri, "bind_dn = %s" % slapd.root_dn,
             "password_file = %s" % ol_pw, "mode = search", "timeout = 10", ""]
    config = os.path.join(work, "kolabfs-secrets.conf")
    with open(config, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, extra=extra))
    state = os.path.join(work, "state")

    def check_processes(k, when):
        for pid in descendants(k.pid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    assert_no_password(secrets, "/proc/%d/cmdline %s" % (pid, when), f.read())
            except FileNotFoundError:
                pass

    # -d: libfuse's debug output, and kolabfs's own debug messages
    k = foreground(config, args=["-d"], env={"KOLABFS_TEST_STOP_AT": "ldap"})
    k.spawn()
    wait_stopped(k, "ldap")             # both servers connected and bound
    check_processes(k, "during the first set")
    os.kill(k.pid, signal.SIGCONT)
    kfs.wait_until(lambda: k.proc.poll() is not None or
                   os.path.isfile(k.path("snapshots", "latest", "MANIFEST.json")), 120,
                   "kolabfs -d to mount")
    assert k.proc.poll() is None, k.log()
    os.mkdir(k.path("snapshots", "second"))
    check_processes(k, "mounted")
    name = os.readlink(k.path("snapshots", "latest"))

    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(state, "sets")).st_mode) == 0o700
    with open(k.path("snapshots", name, "MANIFEST.json"), "rb") as f:
        manifest = f.read()
    assert json.loads(manifest)["mysql"]["consistency"] == "locked"
    assert_no_password(secrets, "MANIFEST.json", manifest)
    with open(k.path("status"), "rb") as f:
        assert_no_password(secrets, "/status", f.read())
    for set_name in set_names(k):
        # the generated parts (the volumes are the servers' own data)
        with open(k.path("snapshots", set_name, "MANIFEST.json"), "rb") as f:
            assert_no_password(secrets, set_name + "/MANIFEST.json", f.read())
        for n in ("ol", "etc"):
            if os.path.isdir(k.path("snapshots", set_name, n)):
                assert_tree_has_no_password(secrets, k.path("snapshots", set_name, n))
    assert_tree_has_no_password(secrets, state)
    os.rmdir(k.path("snapshots", "second"))
    drop_and_exit(k, btrfs, set(kfs.VOLUMES))
    log = k.log()
    assert "unique:" in log, "no libfuse debug output with -d:\n" + log[-2000:]
    assert_no_password(secrets, "the kolabfs -d log", log)
    assert_tree_has_no_password(secrets, state)
