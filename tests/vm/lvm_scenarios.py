#!/usr/bin/python3
"""LVM scenarios, run INSIDE the test guest by tests/vm/test_lvm.py.

    lvm_scenarios.py setup                      PV + VG "kfs" + thin pool on /dev/vda
    lvm_scenarios.py tree KIND FS [SUBDIR]      point-in-time tree, rsync, cleanup
    lvm_scenarios.py mysql                      MariaDB under write load, restored copies
    lvm_scenarios.py overrun                    a full classic snapshot reads as EIO
    lvm_scenarios.py reap                       kill -9, then a new mount reaps
    lvm_scenarios.py badconfig                  clear errors, nothing left
    lvm_scenarios.py vgfull                     no room in the VG: at mount, mkdir, in the window

Each scenario asserts what it checks (a failure is a traceback and exit
status 1) and leaves the guest as it found it: its LVs removed, nothing
mounted.  The last line of stdout is a JSON summary (timings).  kolabfs
runs as the daemon it is; its syslog messages are caught on /dev/log.
"""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import kfs  # noqa: E402

VG = "kfs"
POOL = "pool"
STATE = "/tmp/kfs-state"
MP = "/tmp/kfs-mp"
SCRATCH = "scratch"          # an LV for copies, /mnt/scratch
# everything a snapshot shows as the origin had it, but atime (reading
# the origin for the reference moves it)
FIELDS = tuple(f for f in kfs.ALL_FIELDS if f != "atime_ns")
summary = {}


def sh(script, check=True, timeout=300):
    return kfs.run(["bash", "-c", "set -euo pipefail\n" + script], check=check, timeout=timeout)


def lvs():
    """{lv name: {attr, tags, origin}} of the VG."""
    out = sh("lvs --noheadings --separator '|' -o lv_name,lv_attr,lv_tags,origin %s" % VG).stdout
    res = {}
    for line in out.splitlines():
        if line.strip():
            name, attr, tags, origin = (f.strip() for f in line.split("|"))
            res[name] = {"attr": attr, "tags": tags.split(",") if tags else [], "origin": origin}
    return res


def dm_devices():
    out = sh("dmsetup ls").stdout
    return {line.split()[0] for line in out.splitlines() if "(" in line}


def mount_table():
    with open("/proc/self/mounts") as f:
        return sorted(line.split()[1] for line in f)


class Syslog:
    """Catch what the daemon sends to syslog (the guest has no syslogd)."""

    def __init__(self):
        if os.path.lexists("/dev/log"):
            os.unlink("/dev/log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("/dev/log")
        self.lines = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                self.lines.append(self.sock.recv(8192).decode(errors="replace"))
            except OSError:
                return

    def text(self):
        return "\n".join(self.lines)


SYSLOG = Syslog()


# --------------------------------------------------------------------------
# LVs and the data set

def make_lv(name, kind, fs, size="320M"):
    """An LV with a filesystem, mounted on /mnt/NAME (mkfs.xfs wants >= 300M)."""
    where = "-L %s %s" % (size, VG) if kind == "classic" else "-V %s -T %s/%s" % (size, VG, POOL)
    sh("lvcreate -q -y -n %s %s\nmkfs.%s -q /dev/%s/%s\nmkdir -p /mnt/%s\n"
       "mount /dev/%s/%s /mnt/%s" % (name, where, fs, VG, name, name, VG, name, name))
    return "/mnt/" + name


def drop_lv(name):
    sh("umount /mnt/%s\nlvremove -q -y %s/%s" % (name, VG, name))


def small_tree(root):
    """Every kind of entry a mail server has, small: hard links, xattrs and
    an ACL, symbolic links, a socket, a FIFO, a device, a sparse file."""
    P = lambda *p: os.path.join(root, *p)
    msg = "From: a@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n"
    for user in ("alice", "bob"):
        for i in range(1, 6):
            kfs._w(P("user", user, "%d." % i), msg % (i, i), 0o600)
    kfs._w(P("user", "alice", "10."), msg % (10, 10) * 50, 0o600)
    os.link(P("user", "alice", "10."), P("user", "bob", "20."))
    kfs._w(P("feat", "xattrs.txt"), "xattrs\n")
    os.setxattr(P("feat", "xattrs.txt"), "user.color", b"blue")
    kfs._w(P("feat", "acl.txt"), "acl\n", 0o640)
    kfs.run(["setfacl", "-m", "u:%d:rw" % kfs.OTHER_UID, P("feat", "acl.txt")])
    os.symlink("../user/alice/1.", P("feat", "rel-link"))
    os.symlink("/etc/hostname", P("feat", "abs-link"))
    os.symlink("nowhere", P("feat", "dangling"))
    kfs._sock(P("feat", "lmtp.sock"))
    os.mkfifo(P("feat", "fifo"))
    os.mknod(P("feat", "null"), 0o666 | 0o020000, os.makedev(1, 3))
    with open(P("feat", "sparse.img"), "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"middle")
    kfs._w(P("feat", "random.bin"), os.urandom((1 << 20) + 333))
    kfs._w(P("feat", "other.txt"), "other\n", 0o600, kfs.OTHER_UID, kfs.OTHER_GID)
    for i in range(200):
        kfs._w(P("many", "%03d." % i), "m%d\n" % i)
    kfs.age_tree(root)


# --------------------------------------------------------------------------
# kolabfs

def write_config(volumes, extra=()):
    """volumes: [(name, lv, snapshot_size or None, subdir or None)]."""
    lines = ["[kolabfs]", "state_dir = %s" % STATE, ""]
    for name, lv, size, subdir in volumes:
        lines += ["[volume:%s]" % name, "backend = lvm", "lv = %s" % lv]
        if size:
            lines.append("snapshot_size = %s" % size)
        if subdir:
            lines.append("subdir = %s" % subdir)
        lines.append("")
    path = "/tmp/kfs-lvm.conf"
    with open(path, "w") as f:
        f.write("\n".join(lines + list(extra)) + "\n")
    return path


def start(conf, check=True, env=None):
    """kolabfs CONF MP: it returns once the first set exists.  (rc, stderr, pid)"""
    os.makedirs(MP, exist_ok=True)
    t0 = time.monotonic()
    p = kfs.run([kfs.KOLABFS, conf, MP], check=False, timeout=300, stdin=subprocess.DEVNULL,
                env=dict(os.environ, **(env or {})))
    summary.setdefault("mount_s", []).append(round(time.monotonic() - t0, 2))
    if check:
        assert p.returncode == 0, "kolabfs exited %d: %s" % (p.returncode, p.stderr)
    pids = kfs.kolabfs_pids(MP)
    if p.returncode == 0:
        assert pids, "kolabfs returned 0 but no kolabfs process serves %s" % MP
        # the kolabfs under test (KOLABFS_BUILDDIR, from the host through the
        # guest fixture), an ASan build of it in the sanitizer pass
        kfs.assert_under_test(pids[0])
    return p.returncode, p.stderr, pids[0] if pids else None


def stop(pid):
    t0 = time.monotonic()
    kfs.run(["fusermount3", "-u", MP])
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 120, "kolabfs to exit")
    summary.setdefault("umount_s", []).append(round(time.monotonic() - t0, 2))


def status():
    with open(os.path.join(MP, "status")) as f:
        return json.load(f)


def manifest(set_name="latest"):
    with open(os.path.join(MP, "snapshots", set_name, "MANIFEST.json")) as f:
        return json.load(f)


def snapshots():
    """Our snapshot LVs now: {name: lvs entry}."""
    return {n: e for n, e in lvs().items() if "-kfs-" in n}


def assert_clean(dm_before, mounts_before):
    left = snapshots()
    assert not left, "snapshot LVs left behind: %s" % left
    assert dm_devices() == dm_before, "device-mapper devices differ: %s != %s" % (
        sorted(dm_devices()), sorted(dm_before))
    assert mount_table() == mounts_before, "mounts differ"
    assert os.listdir(os.path.join(STATE, "sets")) == [], "set records left"


# --------------------------------------------------------------------------
# scenarios

def setup():
    """The VG, its thin pool, and a scratch filesystem for copies (the
    guest's /tmp, an overlay, takes no user xattrs)."""
    sh("pvcreate -q /dev/vda\nvgcreate -q %s /dev/vda\nlvcreate -q -y -L 900M -T %s/%s"
       % (VG, VG, POOL))
    make_lv(SCRATCH, "classic", "ext4", "600M")


def tree(kind, fs, subdir=None):
    name = "%s_%s" % (kind, fs)
    origin = make_lv(name, kind, fs)
    data = os.path.join(origin, subdir) if subdir else origin
    os.makedirs(data, exist_ok=True)
    small_tree(data)
    if subdir:
        kfs._w(os.path.join(origin, "outside-subdir"), "not shown\n")
    ref = kfs.walk(data)
    dm_before, mounts_before = dm_devices(), mount_table()
    conf = write_config([("vol", "%s/%s" % (VG, name), "64M" if kind == "classic" else None,
                          subdir)])
    _, _, pid = start(conf)
    try:
        check_tree(kind, fs, name, data, ref, mounts_before)
    finally:
        stop(pid)
    assert_clean(dm_before, mounts_before)
    if kind == "classic":
        assert "used" in SYSLOG.text() and "of copy-on-write space" in SYSLOG.text(), \
            "no usage at teardown in the log:\n" + SYSLOG.text()
    drop_lv(name)


def check_tree(kind, fs, name, data, ref, mounts_before):
    snaps = snapshots()
    assert len(snaps) == 1, snaps
    (snap, e), = snaps.items()
    assert e["tags"] == ["kolabfs"] and e["origin"] == name, e
    assert e["attr"][0] == ("s" if kind == "classic" else "V"), e
    assert mount_table() == sorted(mounts_before + [MP]), "the snapshot's mount is visible"
    # the origin changes after the set was taken: the set does not
    with open(os.path.join(data, "user", "alice", "1."), "w") as f:
        f.write("changed\n")
    os.unlink(os.path.join(data, "user", "bob", "2."))
    kfs._w(os.path.join(data, "new-file"), "new\n")
    sh("sync")
    vol = os.path.join(MP, "snapshots", "latest", "vol")
    got = kfs.walk(vol)
    kfs.assert_same_tree(ref, got, FIELDS)
    kfs.assert_sizes_match(got)
    m = manifest()["volumes"]["vol"]
    assert m["backend"] == "lvm" and m["origin"] == "%s/%s" % (VG, name), m
    assert m["snapshot"] == "%s/%s" % (VG, snap) and m["filesystem"] == fs, m
    copy = "/mnt/%s/copy" % SCRATCH
    kfs.rsync_copy(vol, copy)
    kfs.assert_same_tree(ref, kfs.walk(copy), kfs.COPY_FIELDS)
    shutil.rmtree(copy)
    v = status()["sets"][0]["volumes"]["vol"]
    assert v["health"] == "ok" and v["backend"] == "lvm", v
    assert ("usage_percent" in v) == (kind == "classic"), v


def overrun():
    """A classic snapshot too small for what the origin writes meanwhile:
    once full it is invalid, and its files read as EIO, not as garbage."""
    origin = make_lv("over", "classic", "ext4")
    kfs._w(os.path.join(origin, "data.bin"), os.urandom(1 << 20))
    kfs._w(os.path.join(origin, "small.txt"), "small\n")
    dm_before, mounts_before = dm_devices(), mount_table()
    conf = write_config([("vol", "%s/over" % VG, "8M", None)])
    _, _, pid = start(conf)
    try:
        vol = os.path.join(MP, "snapshots", "latest", "vol")
        assert status()["sets"][0]["volumes"]["vol"]["health"] == "ok"
        sh("dd if=/dev/urandom of=%s/fill bs=1M count=48 conv=fsync status=none" % origin)
        # the monitor notices within its period; /status looks itself
        kfs.wait_until(lambda: status()["sets"][0]["volumes"]["vol"]["health"] == "invalid",
                       60, "the snapshot to be reported invalid")
        st = status()["sets"][0]
        assert st["health"] == "degraded", st
        for name in ("data.bin", "small.txt"):
            try:
                with open(os.path.join(vol, name), "rb") as f:
                    f.read()
                raise AssertionError("%s of a full snapshot could be read" % name)
            except OSError as e:
                assert e.errno == errno.EIO, e
        kfs.wait_until(lambda: "is invalid" in SYSLOG.text(), 30, "the log to say invalid")
    finally:
        stop(pid)
    assert_clean(dm_before, mounts_before)
    drop_lv("over")


def reap():
    """kill -9, then a new mount: the leftover snapshot LV, and only it, goes."""
    make_lv("reap", "classic", "ext4")
    sh("lvcreate -q -y -n other -L 16M %(vg)s\n"                  # an unrelated LV
       "lvcreate -q -y -s -n reap_snap -L 16M %(vg)s/reap\n"      # an unrelated snapshot
       # ours by name and tag, but in no record: not kolabfs's to remove
       "lvcreate -q -y -s -n reap-kfs-unrecorded -L 16M --addtag kolabfs %(vg)s/reap"
       % {"vg": VG})
    others = set(lvs())
    conf = write_config([("vol", "%s/reap" % VG, "32M", None)])
    _, _, pid = start(conf)
    left = set(snapshots()) - others
    assert len(left) == 1, left
    os.kill(pid, signal.SIGKILL)
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 60, "kolabfs to die")
    kfs.run(["umount", MP])             # the dead FUSE connection
    assert left <= set(lvs()), "the leftover went without a reaper"
    _, _, pid = start(conf)
    try:
        now = set(lvs())
        assert not (left & now), "leftover snapshot not reaped: %s" % (left & now)
        assert others <= now, "the reaper took %s" % (others - now)
        warnings = manifest()["warnings"]
        assert any("reaped snapshot lvm:%s/%s" % (VG, n) in w for n in left for w in warnings), \
            warnings
        rmdir_in_use()
    finally:
        stop(pid)
    assert set(lvs()) == others, lvs()
    sh("lvremove -q -y %(vg)s/reap-kfs-unrecorded %(vg)s/reap_snap %(vg)s/other" % {"vg": VG})
    drop_lv("reap")


def rmdir_in_use():
    """rmdir of a set whose files are open: the set goes, its snapshot LV
    too (kolabfs takes its descriptors back), the open file reads ESTALE."""
    before = set(snapshots())
    busy = os.path.join(MP, "snapshots", "busy")
    kfs._w("/mnt/reap/f", "x")
    os.mkdir(busy)
    assert len(set(snapshots()) - before) == 1
    f = open(os.path.join(busy, "vol", "f"), "rb")
    d = os.open(os.path.join(busy, "vol"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(busy)
        assert set(snapshots()) == before, "the busy set's snapshot stayed"
        try:
            f.read()
            raise AssertionError("a file of a dropped set could be read")
        except OSError as e:
            assert e.errno == errno.ESTALE, e
    finally:
        f.close()
        os.close(d)


def refused(conf, *fragments):
    """kolabfs --check and the mount both fail, saying FRAGMENTS; nothing is left."""
    lv_before, dm_before, mounts_before = lvs(), dm_devices(), mount_table()
    for args in (["--check", conf], [conf, MP]):
        os.makedirs(MP, exist_ok=True)
        p = kfs.run([kfs.KOLABFS] + args, check=False, stdin=subprocess.DEVNULL)
        assert p.returncode != 0, "kolabfs %s succeeded" % args
        for frag in fragments:
            assert frag in p.stderr, "%r not in: %s" % (frag, p.stderr)
    assert lvs() == lv_before and dm_devices() == dm_before and mount_table() == mounts_before
    assert not os.path.isdir(os.path.join(STATE, "sets")) or \
        os.listdir(os.path.join(STATE, "sets")) == []
    return p.stderr


def badconfig():
    make_lv("good", "classic", "ext4")
    make_lv("thin1", "thin", "ext4")
    sh("lvcreate -q -y -n blank -L 32M %s" % VG)      # no filesystem on it
    errs = {}
    errs["missing"] = refused(write_config([("vol", "%s/nope" % VG, None, None)]),
                              "[volume:vol] lv: %s/nope: no such logical volume" % VG)
    errs["room"] = refused(write_config([("vol", "%s/good" % VG, "100G", None)]),
                           "[volume:vol] snapshot_size: volume group %s has" % VG,
                           "needs 100.0 GiB (snapshot_size = 100G)")
    errs["thin-size"] = refused(write_config([("vol", "%s/thin1" % VG, "1G", None)]),
                                "[volume:vol] snapshot_size: %s/thin1 is a thin volume" % VG)
    errs["pool"] = refused(write_config([("vol", "%s/%s" % (VG, POOL), None, None)]),
                           "is a thin pool")
    # passes every check, fails after the snapshots exist: all are removed
    conf = write_config([("a", "%s/good" % VG, "16M", None), ("b", "%s/blank" % VG, "16M", None)])
    lv_before, dm_before, mounts_before = lvs(), dm_devices(), mount_table()
    rc, err, _ = start(conf, check=False)
    assert rc != 0 and "[volume:b] snapshot %s/blank-kfs-" % VG in err, err
    assert "no filesystem found" in err, err
    assert lvs() == lv_before and dm_devices() == dm_before and mount_table() == mounts_before
    errs["late"] = err
    summary["errors"] = errs
    sh("lvremove -q -y %s/blank" % VG)
    drop_lv("thin1")
    drop_lv("good")


def fill_vg(keep):
    """An LV "filler" taking all of the VG's free space but KEEP extents;
    the free space left, in bytes."""
    free = int(sh("vgs --noheadings -o vg_free_count %s" % VG).stdout)
    assert free > keep, free
    sh("lvcreate -q -y -n filler -l %d %s" % (free - keep, VG))
    return int(sh("vgs --noheadings --units b --nosuffix -o vg_free %s" % VG).stdout)


def vgfull():
    """A classic snapshot with no room in its VG (other LVs took the
    space), with [mysql]: the mount fails, so does a mkdir (checked before
    the lock), and so does a set whose VG fills up inside the lock window
    (lvcreate fails there).  Each says what the snapshot needs and what is
    free, in bytes, naming the VG and LV; no snapshot LV, record or mount
    is left, MySQL is not left locked, and with room again a set works."""
    from mariadb import MariaDB
    import test_mysql as tm
    origin = make_lv("full", "classic", "ext4", "400M")
    db = MariaDB(os.path.join(origin, "data"), "/tmp/run-full")
    db.install()
    db.start()
    try:
        db.sql("CREATE DATABASE kolab")
        db.sql("CREATE TABLE kolab.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB")
        tm.create_backup_user(db)
        pw = tm.write_password("/tmp", "mysql-full.pw", tm.PASSWORD)
        conf = write_config([("db", "%s/full" % VG, "64M", None)], extra=[
            "[mysql]", "socket = %s" % db.socket, "user = kolabfs",
            "password_file = %s" % pw, "lock = ftwrl", "lock_wait_timeout = 30"])
        vgfull_sets(db, conf)
    finally:
        db.stop()
    drop_lv("full")


def vgfull_sets(db, conf):
    from test_crash import proc_state, write_waits
    need = "needs 64.0 MiB (snapshot_size = 64M)"
    lv_before, dm_before, mounts_before = lvs(), dm_devices(), mount_table()

    # 1. the mount: refused before anything is made
    free = fill_vg(2)
    assert free == 8 << 20, free        # 2 extents of 4 MiB
    rc, err, pid = start(conf, check=False)
    assert rc == 1 and pid is None, (rc, err)
    assert "[volume:db] snapshot_size: volume group %s has 8.0 MiB free, the snapshot of " \
        "%s/full %s" % (VG, VG, need) in err, err
    assert set(lvs()) == set(lv_before) | {"filler"} and not snapshots()
    assert dm_devices() == dm_before | {"%s-filler" % VG} and mount_table() == mounts_before
    assert not os.path.isdir(os.path.join(STATE, "sets")) or \
        os.listdir(os.path.join(STATE, "sets")) == []
    assert not write_waits(db, 5), "MySQL is locked"
    sh("lvremove -q -y %s/filler" % VG)
    errors = {"mount": err.strip()}

    # with room: mounted (its set passes "locked" once; the mkdir of 3.
    # is the second time, the mkdir of 2. fails before the lock)
    _, _, pid = start(conf, env={"KOLABFS_TEST_STOP_AT": "locked@2"})
    try:
        first = set(snapshots())
        assert len(first) == 1, first
        sets = sorted(os.listdir(os.path.join(MP, "snapshots")))

        # 2. mkdir with the VG full: ENOSPC, found before the lock
        fill_vg(2)
        try:
            os.mkdir(os.path.join(MP, "snapshots", "no-room"))
            raise AssertionError("mkdir with the VG full succeeded")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        kfs.wait_until(lambda: "mkdir no-room:" in SYSLOG.text(), 30, "the mkdir's error")
        assert "mkdir no-room: [volume:db] volume group %s has 8.0 MiB free, the snapshot " \
            "of %s/full %s" % (VG, VG, need) in SYSLOG.text(), SYSLOG.text()
        assert set(snapshots()) == first
        assert sorted(os.listdir(os.path.join(MP, "snapshots"))) == sets
        assert not write_waits(db, 5), "MySQL is locked"
        sh("lvremove -q -y %s/filler" % VG)

        # 3. the VG fills up inside the lock window: lvcreate fails there
        result = {}

        def mkdir():
            try:
                os.mkdir(os.path.join(MP, "snapshots", "filled"))
            except OSError as e:
                result["error"] = e

        t = threading.Thread(target=mkdir, daemon=True)
        t.start()
        kfs.wait_until(lambda: proc_state(pid) == "T", 120, "kolabfs to stop at locked")
        assert "test point locked reached" in SYSLOG.text(), SYSLOG.text()
        assert write_waits(db, 1), "MySQL is not locked at the test point"
        fill_vg(2)
        os.kill(pid, signal.SIGCONT)
        t.join(120)
        assert not t.is_alive(), "mkdir did not return"
        e = result.get("error")
        assert e is not None and e.errno == errno.ENOSPC, e
        kfs.wait_until(lambda: "mkdir filled:" in SYSLOG.text(), 30, "the mkdir's error")
        assert "mkdir filled: [volume:db] cannot snapshot %s/full: volume group %s has " \
            "8.0 MiB free, the snapshot of %s/full %s" % (VG, VG, VG, need) in SYSLOG.text(), \
            SYSLOG.text()
        assert set(snapshots()) == first
        assert sorted(os.listdir(os.path.join(MP, "snapshots"))) == sets
        assert sorted(os.listdir(os.path.join(STATE, "sets"))) == \
            [n for n in sets if n != "latest"]
        assert not write_waits(db, 5), "MySQL was left locked"
        sh("lvremove -q -y %s/filler" % VG)
        for line in SYSLOG.lines:
            for name in ("no-room", "filled"):
                if "mkdir %s:" % name in line:
                    errors["mkdir " + name] = line.split("]: ", 1)[-1].strip()
        summary["errors"] = errors

        # room again: a set
        os.mkdir(os.path.join(MP, "snapshots", "room"))
        assert manifest("room")["mysql"]["consistency"] == "locked"
        assert len(set(snapshots()) - first) == 1
    finally:
        stop(pid)
    assert_clean(dm_before, mounts_before)
    assert lvs() == lv_before


def mysql():
    """A MariaDB datadir on an LV, writers running, [mysql] lock = ftwrl:
    every set's copy starts and is consistent, later sets hold more."""
    from mariadb import MariaDB
    import test_mysql as tm
    origin = make_lv("db", "classic", "ext4", "640M")
    db = MariaDB(os.path.join(origin, "data"), "/tmp/run-primary")
    db.install()
    db.start()
    try:
        tm.create_bank(db)
        tm.create_backup_user(db)
        pw = tm.write_password("/tmp", "mysql.pw", tm.PASSWORD)
        conf = write_config([("mysql", "%s/db" % VG, "96M", None)], extra=[
            "[mysql]", "socket = %s" % db.socket, "user = kolabfs",
            "password_file = %s" % pw, "lock = ftwrl"])
        mysql_sets(db, conf)
    finally:
        db.stop()
    drop_lv("db")


def mysql_sets(db, conf):
    import test_mysql as tm
    from mariadb import MariaDB
    dm_before, mounts_before = dm_devices(), mount_table()
    with tm.Writers(db) as w:
        _, _, pid = start(conf)
        for i in range(2):
            before = w.commits
            kfs.wait_until(lambda: w.commits > before + 10 or w.errors, 60, "more commits")
            os.mkdir(os.path.join(MP, "snapshots", "load-%d" % i))
        w.stop()
    try:
        sets = sorted(s for s in os.listdir(os.path.join(MP, "snapshots")) if s != "latest")
        assert len(sets) == 3, sets
        counts = []
        for n, name in enumerate(sets):
            m = manifest(name)["mysql"]
            assert m["lock"] == "ftwrl" and m["consistency"] == "locked", m
            summary.setdefault("lock_hold_ms", []).append(m["lock_hold_ms"])
            dst = "/mnt/%s/restore-%d" % (SCRATCH, n)
            kfs.rsync_copy(os.path.join(MP, "snapshots", name, "mysql"), dst)
            copy = MariaDB(os.path.join(dst, "data"), "/tmp/run-restore-%d" % n,
                           server_id=10 + n)
            copy.start()
            try:
                counts.append(tm.check_consistent(copy))
            finally:
                copy.stop()
            shutil.rmtree(dst)
        assert counts == sorted(counts) and counts[-1] > counts[0], counts
        summary["transfers"] = counts
    finally:
        stop(pid)
    assert_clean(dm_before, mounts_before)


def main():
    scenario = sys.argv[1]
    t0 = time.monotonic()
    {"setup": setup, "tree": tree, "overrun": overrun, "reap": reap,
     "badconfig": badconfig, "mysql": mysql, "vgfull": vgfull}[scenario](*sys.argv[2:])
    summary["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
