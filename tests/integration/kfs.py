"""Helpers for the kolabfs integration tests: loop-file btrfs, the test tree,
tree walking and comparison, and running the kolabfs binary.

Everything here runs as root on a real kernel (loop, btrfs, FUSE).  No sleeps
as synchronisation: waits are bounded polls on a condition (wait_until).
"""
import errno
import fnmatch
import gzip
import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.path.abspath(os.environ.get("KOLABFS_BUILDDIR") or SRCDIR)
KOLABFS = os.path.join(BUILDDIR, "kolabfs")
VERSION = "0.1.0"

# Owner of the "other user" files (no passwd entry on purpose: numeric only).
OTHER_UID, OTHER_GID = 12345, 23456
NOBODY = "nobody"

VOLUMES = ("spool", "imap", "mysql")
PRESETS = {"spool": "cyrus-spool", "imap": "cyrus-meta", "mysql": "mysql"}
# Extra exclude globs configured on a volume (beside its preset).
EXCLUDES = {"imap": "*.tmp;cache/"}


# --------------------------------------------------------------------------
# small utilities

def run(cmd, check=True, timeout=300, **kw):
    """Run cmd (a list), capture text output; raise with output on failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("command failed (%d): %s\nstdout: %s\nstderr: %s"
                             % (p.returncode, " ".join(map(str, cmd)), p.stdout, p.stderr))
    return p


def terminate(proc, timeout):
    """SIGTERM to a child server that is still running, wait (bounded), then
    SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(cond, timeout=60.0, what="condition", interval=0.02):
    """Poll cond() until it is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _unescape_mount_field(s):
    # /proc/mounts escapes space, tab, newline and backslash as octal
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and len(s[i + 1:i + 4]) == 3 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts():
    """List of (source, target, fstype) from /proc/self/mounts."""
    res = []
    with open("/proc/self/mounts") as f:
        for line in f:
            p = line.split()
            res.append((_unescape_mount_field(p[0]), _unescape_mount_field(p[1]), p[2]))
    return res


def is_mounted(path):
    path = os.path.realpath(path)
    return any(t == path for _, t, _ in mounts())


def mounts_under(path):
    path = os.path.realpath(path)
    return [t for _, t, _ in mounts() if t == path or t.startswith(path + "/")]


def pid_alive(pid):
    """True if pid exists and is not a zombie (PID 1 here may not reap)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = data.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def process_report(pid):
    """Where a process that does not exit is stuck: states, kernel stacks,
    and its threads' backtraces."""
    out = []
    for task in sorted(os.listdir("/proc/%d/task" % pid)) if pid_alive(pid) else []:
        base = "/proc/%d/task/%s/" % (pid, task)
        for name in ("stat", "wchan", "stack"):
            try:
                with open(base + name) as f:
                    out.append("%s %s: %s" % (task, name, f.read().strip()))
            except OSError:
                pass
    p = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt"],
                       capture_output=True, text=True, timeout=120)
    out.append(p.stdout[-8000:])
    return "\n".join(out)


def procs_with_arg(arg):
    """Live pids whose command line has an argument equal to (or containing) arg."""
    res = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(arg.encode() in a for a in argv) and pid_alive(int(d)):
            res.append(int(d))
    return res


def kolabfs_pids(mountpoint):
    """Live kolabfs processes serving mountpoint (argv0 is kolabfs)."""
    res = []
    real = os.path.realpath(mountpoint)
    for pid in procs_with_arg(real) + procs_with_arg(mountpoint):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if os.path.basename(argv[0]) == "kolabfs" and pid not in res:
            res.append(pid)
    return res


def sanitizer_pass():
    """True in tests/run's sanitizer pass: ASAN_OPTIONS is set (its log_path
    is where every report goes), and the kolabfs under test must be the
    ASan+UBSan build (KOLABFS_BUILDDIR=build-asan)."""
    return bool(os.environ.get("ASAN_OPTIONS"))


def assert_under_test(pid):
    """Process pid runs KOLABFS, the binary under test, and in the sanitizer
    pass an ASan build of it (libasan mapped).  Checked for every mount a
    test starts (Kolabfs.check_started) and for the daemons a script starts
    (kolabfs-hook, the sandbox), and in the qemu guest for the mounts of
    tests/vm (lvm_scenarios.start, the smoke test), which could otherwise
    run another kolabfs (PATH's, the source tree's): the sanitizer pass
    would then pass without the daemon's paths being sanitized."""
    exe = "/proc/%d/exe" % pid
    assert os.path.samefile(exe, KOLABFS), \
        "pid %d runs %s, not the kolabfs under test %s" % (pid, os.readlink(exe), KOLABFS)
    if sanitizer_pass():
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
        assert "/libasan.so" in maps, \
            "ASAN_OPTIONS is set but pid %d (%s) is no ASan build" % (pid, os.readlink(exe))


def kernel_config(option):
    """The value of a kernel build option (y, m, ...), or None if it is
    not set or the configuration is not to be found."""
    for path in ("/proc/config.gz", "/boot/config-" + os.uname().release):
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                for line in f:
                    if line.startswith(option + "="):
                        return line.strip().split("=", 1)[1]
            return None
        except OSError:
            continue
    return None


def built_in(feature):
    """Does `kolabfs --version` of the kolabfs under test say FEATURE
    ("FUSE passthrough", "FUSE over io_uring") is built in?"""
    out = subprocess.run([KOLABFS, "--version"], capture_output=True, text=True).stdout
    return "%s: built in" % feature in out


def passthrough_expected():
    """Does the kolabfs under test read big files by FUSE passthrough?  It
    does when built with libfuse >= 3.17 (its --version says) and the
    kernel offers it (CONFIG_FUSE_PASSTHROUGH, kernel >= 6.9)."""
    return built_in("FUSE passthrough") and kernel_config("CONFIG_FUSE_PASSTHROUGH") == "y"


def io_uring_expected():
    """Does the kolabfs under test get its requests over io_uring?  It does
    when built with libfuse >= 3.18 (its --version says) and the fuse
    module allows it (parameter enable_uring; tests/run sets it for the
    pass with the newer libfuse)."""
    try:
        with open("/sys/module/fuse/parameters/enable_uring") as f:
            allowed = f.read().strip() == "Y"
    except OSError:
        allowed = False
    return built_in("FUSE over io_uring") and allowed


# --------------------------------------------------------------------------
# loop-file btrfs

class Btrfs:
    """A loop-file btrfs with subvolumes spool, imap, mysql."""

    def __init__(self, base, size="1G"):
        self.base = base
        self.img = os.path.join(base, "btrfs.img")
        self.mnt = os.path.join(base, "btrfs")
        self.size = size
        self.dev = None
        self.mounted = False

    def path(self, *p):
        return os.path.join(self.mnt, *p)

    def setup(self):
        os.makedirs(self.mnt, exist_ok=True)
        run(["truncate", "-s", self.size, self.img])
        self.dev = run(["losetup", "-f", "--show", self.img]).stdout.strip()
        run(["mkfs.btrfs", "-q", "-f", self.dev])
        run(["mount", "-t", "btrfs", self.dev, self.mnt])
        self.mounted = True
        os.chmod(self.mnt, 0o755)
        for v in VOLUMES:
            run(["btrfs", "subvolume", "create", self.path(v)])
            os.chmod(self.path(v), 0o755)
        return self

    def subvolumes(self):
        """Set of subvolume paths (relative to the top level)."""
        out = run(["btrfs", "subvolume", "list", self.mnt]).stdout
        return {line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line}

    def subvolume_ids(self):
        """{subvolume path: btrfs subvolume ID} (a path can come back, an ID not)."""
        out = run(["btrfs", "subvolume", "list", self.mnt]).stdout
        res = {}
        for line in out.splitlines():
            if " path " in line:
                res[line.split(" path ", 1)[1]] = int(line.split()[1])
        return res

    def snapshot_ro(self, src, dst):
        run(["btrfs", "subvolume", "snapshot", "-r", src, dst])

    def _umount(self):
        """umount the btrfs.  With FUSE passthrough the kernel holds files of
        the snapshots itself and lets them go some 50 ms after the FUSE
        mount's last close, asynchronously: busy until then (bounded)."""
        def attempt():
            p = subprocess.run(["umount", self.mnt], capture_output=True, text=True)
            return p if p.returncode == 0 or "busy" not in p.stderr else None
        try:
            return wait_until(attempt, 10, "%s not to be busy" % self.mnt)
        except AssertionError:
            return subprocess.run(["umount", self.mnt], capture_output=True, text=True)

    def teardown(self):
        errors = []
        if self.mounted:
            # Anything still mounted below us (a kolabfs the test left) first.
            for t in sorted(mounts_under(self.base), key=len, reverse=True):
                if t == os.path.realpath(self.mnt):
                    continue
                if subprocess.run(["umount", t], capture_output=True).returncode:
                    subprocess.run(["umount", "-l", t], capture_output=True)
            # kolabfs processes started on this tree hold files open
            for pid in procs_with_arg(self.base):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            try:
                wait_until(lambda: not procs_with_arg(self.base), 30, "test processes to die")
            except AssertionError as e:
                errors.append(str(e))
            p = self._umount()
            if p.returncode:
                errors.append("umount %s: %s" % (self.mnt, p.stderr.strip()))
                subprocess.run(["umount", "-l", self.mnt], capture_output=True)
            self.mounted = False
        if self.dev:
            p = subprocess.run(["losetup", "-d", self.dev], capture_output=True, text=True)
            if p.returncode:
                errors.append("losetup -d %s: %s" % (self.dev, p.stderr.strip()))
            self.dev = None
        if os.path.exists(self.img):
            os.unlink(self.img)
        return errors


# --------------------------------------------------------------------------
# the test tree

T_OLD = 1_500_000_000_123_456_789      # a fixed past time with nanoseconds
T_OLD2 = 1_600_000_000_987_654_321


def _w(path, data, mode=0o644, uid=0, gid=0, times=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    if times:
        os.utime(path, ns=times)


def _sock(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()


class Tree:
    """What the builder made: hidden paths, near-misses, special files."""

    def __init__(self):
        self.hidden = {v: [] for v in VOLUMES}   # must be absent in the mount
        self.kept = {v: [] for v in VOLUMES}     # near-misses: must be present
        self.root_only = None                    # (vol, rel) root 0600 file
        self.public = None                       # (vol, rel) 0644 file, world-readable dirs
        self.links = []                          # (vol, [rels]) hard-link groups
        self.big_dir = None
        self.deep_leaf = None


def build_tree(mnt):
    """Fill <mnt>/{spool,imap,mysql} with everything the tests look at."""
    t = Tree()
    P = lambda *p: os.path.join(mnt, *p)

    # ---- spool (cyrus-spool): a Cyrus-like mail spool plus every file type
    sp = P("spool")
    msg = "From: a@example.org\r\nSubject: hello %d\r\n\r\nbody %d\r\n"
    for user in ("alice", "bob", "carol"):
        for uid_ in (1, 2, 3):
            _w(os.path.join(sp, "user", user, "%d." % uid_), msg % (uid_, uid_), 0o600)
        for n in ("cyrus.header", "cyrus.index", "cyrus.cache"):
            _w(os.path.join(sp, "user", user, n), n * 3, 0o600)
    # single-instance store: one message delivered to three users
    shared = os.path.join(sp, "user", "alice", "10.")
    _w(shared, msg % (10, 10) * 100, 0o600, times=(T_OLD, T_OLD2))
    os.link(shared, os.path.join(sp, "user", "bob", "20."))
    os.makedirs(os.path.join(sp, "user", "carol", "sub"))
    os.link(shared, os.path.join(sp, "user", "carol", "sub", "30."))
    t.links.append(("spool", ["user/alice/10.", "user/bob/20.", "user/carol/sub/30."]))
    _w(os.path.join(sp, "feat", "pair-a"), "pair\n")
    os.link(os.path.join(sp, "feat", "pair-a"), os.path.join(sp, "feat", "pair-b"))
    t.links.append(("spool", ["feat/pair-a", "feat/pair-b"]))

    # preset names and near-misses at several depths
    for d in ("", "user/alice", "user/bob/sub/deeper/deepest"):
        base = os.path.join(sp, d)
        rel = lambda n: os.path.join(d, n) if d else n
        for n in ("cyrus.squat", "cyrus.cache.NEW", "cyrus.expunge.NEW", "cyrus.index.NEW"):
            _w(os.path.join(base, n), "hidden " + n)
            t.hidden["spool"].append(rel(n))
        for n in ("stage.", "sync."):
            _w(os.path.join(base, n, "inside"), "hidden dir content")
            t.hidden["spool"].append(rel(n))
            t.hidden["spool"].append(rel(n + "/inside"))
        for n in ("cyrus.squatter", "cyrus.cache", "cyrus.index", "cyrus.squat.old",
                  "xcyrus.squat", "cyrus.index.new", "cyrus.cache.NEW.1", "stage", "sync"):
            _w(os.path.join(base, n), "kept " + n)
            t.kept["spool"].append(rel(n))
        for n in ("stage.old", "sync.d", "stage.."):
            _w(os.path.join(base, n, "inside"), "kept dir content")
            t.kept["spool"].append(rel(n + "/inside"))
    # a FILE named "stage." / "sync." stays: the preset hides directories
    for n in ("stage.", "sync."):
        _w(os.path.join(sp, "user", "carol", n), "a file, not a directory")
        t.kept["spool"].append("user/carol/" + n)

    f = os.path.join(sp, "feat")
    _w(os.path.join(f, "text.txt"), "hello world\n" * 50, times=(T_OLD, T_OLD2))
    _w(os.path.join(f, "binary.bin"), bytes(range(256)) * 64)
    _w(os.path.join(f, "empty"), b"")
    _w(os.path.join(f, "random.bin"), os.urandom((3 << 20) + 12345))   # spans many reads
    os.symlink("../user/alice/1.", os.path.join(f, "rel-link"))
    os.symlink("/etc/hostname", os.path.join(f, "abs-link"))
    os.symlink("nowhere/missing", os.path.join(f, "dangling-link"))
    os.symlink("subdir-target", os.path.join(f, "dir-link"))
    os.makedirs(os.path.join(f, "subdir-target"))
    _sock(os.path.join(f, "unix.sock"))
    os.mkfifo(os.path.join(f, "fifo"))
    os.mknod(os.path.join(f, "null-dev"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    sparse = os.path.join(f, "sparse.img")
    with open(sparse, "wb") as fh:
        fh.truncate(32 << 20)
        fh.seek(10 << 20)
        fh.write(b"middle of nowhere")
        fh.seek((32 << 20) - 5)
        fh.write(b"tail!")
    xa = os.path.join(f, "xattrs.txt")
    _w(xa, "has xattrs\n")
    os.setxattr(xa, "user.color", b"blue")
    os.setxattr(xa, "user.binary", b"\x00\x01\x02\xff")
    os.setxattr(os.path.join(f, "subdir-target"), "user.on-dir", b"yes")
    acl = os.path.join(f, "acl.txt")
    _w(acl, "has an acl\n", 0o640)
    run(["setfacl", "-m", "u:%d:rw,g:%d:r" % (OTHER_UID, OTHER_GID), acl])
    os.makedirs(os.path.join(f, "acl-dir"))
    run(["setfacl", "-m", "u:%d:rwx" % OTHER_UID, "-d", "-m", "u:%d:rx" % OTHER_UID,
         os.path.join(f, "acl-dir")])
    _w(os.path.join(f, "other-owner.txt"), "someone else's\n", 0o600, OTHER_UID, OTHER_GID)
    _w(os.path.join(f, "root-only.txt"), "root's secret\n", 0o600)
    _w(os.path.join(f, "public.txt"), "anyone may read\n", 0o644)
    t.root_only = ("spool", "feat/root-only.txt")
    t.public = ("spool", "feat/public.txt")
    od = os.path.join(f, "other-dir")
    os.makedirs(od)
    os.chown(od, OTHER_UID, OTHER_GID)
    os.chmod(od, 0o750)
    _w(os.path.join(f, "setuid-ish"), "#!/bin/sh\n", 0o4755)
    _w(os.path.join(f, "sticky-dir", "x"), "x")
    os.chmod(os.path.join(f, "sticky-dir"), 0o1777)
    for n in ("Grüße aus Köln.eml", "name with spaces.txt", "日本語のメール", "emoji ✉ 📬",
              "  leading and trailing  ", "quote'\"and\\backslash", "-dash-first"):
        _w(os.path.join(f, "names", n), "name: " + n)
    _w(os.fsdecode(os.path.join(os.fsencode(f), b"names", b"latin1-\xe9t\xe9-not-utf8\xff.eml")),
       "a name that is not UTF-8")
    _w(os.path.join(f, "names", "n" * 251 + ".eml"), "a 255-byte name")
    os.makedirs(os.path.join(f, "names", "dir with space ü"))
    _w(os.path.join(f, "names", "dir with space ü", "inner file"), "inner")
    big = os.path.join(sp, "many")
    os.makedirs(big)
    for i in range(3000):
        with open(os.path.join(big, "%05d." % i), "w") as fh:
            fh.write("m%d\n" % i)
    t.big_dir = ("spool", "many")
    d = os.path.join(sp, "deep")
    parts = []
    for i in range(60):
        parts.append("d%02d" % i)
        if i == 30:     # preset names deep down too
            dd = os.path.join(d, *parts)
            _w(os.path.join(dd, "cyrus.squat"), "deep squat")
            _w(os.path.join(dd, "cyrus.squatter"), "deep squatter")
            _w(os.path.join(dd, "stage.", "x"), "deep stage")
            t.hidden["spool"] += ["deep/" + "/".join(parts) + "/cyrus.squat",
                                  "deep/" + "/".join(parts) + "/stage."]
            t.kept["spool"].append("deep/" + "/".join(parts) + "/cyrus.squatter")
    _w(os.path.join(d, *parts, "leaf.txt"), "bottom\n")
    t.deep_leaf = ("spool", "deep/" + "/".join(parts) + "/leaf.txt")
    # directory times last, after their content is final
    os.utime(os.path.join(sp, "user", "alice"), ns=(T_OLD, T_OLD))

    # ---- imap (cyrus-meta): /var/lib/imap-like metadata
    im = P("imap")
    for n in ("mailboxes.db", "annotations.db", "tls_sessions.db", "deliver.db"):
        _w(os.path.join(im, n), n + " data\n" * 20, 0o600)
    _w(os.path.join(im, "user", "a", "alice.seen"), "seen", 0o600)
    _w(os.path.join(im, "user", "a", "alice.sub"), "sub", 0o600)
    _w(os.path.join(im, "quota", "a", "user.alice"), "1024", 0o600)
    for d in ("", "user/a", "db/deeper/deepest"):
        base = os.path.join(im, d)
        rel = lambda n: os.path.join(d, n) if d else n
        os.makedirs(base, exist_ok=True)
        _sock(os.path.join(base, "socket", "lmtp"))
        _w(os.path.join(base, "socket", "idle.note"), "x")
        t.hidden["imap"] += [rel("socket"), rel("socket/lmtp"), rel("socket/idle.note")]
        for n in ("mailboxes.db.lock", "x.lock", "user.alice.lock.1", "a.lock.b"):
            _w(os.path.join(base, n), "lock")
            t.hidden["imap"].append(rel(n))
        for n in ("lockfile", "unlock", "x.loc", "block"):
            _w(os.path.join(base, n), "kept")
            t.kept["imap"].append(rel(n))
        _w(os.path.join(base, "sockets", "x"), "kept dir")
        _w(os.path.join(base, "socket.d", "x"), "kept dir")
        t.kept["imap"] += [rel("sockets/x"), rel("socket.d/x")]
        # extra exclude globs: *.tmp;cache/
        _w(os.path.join(base, "x.tmp"), "tmp")
        _w(os.path.join(base, "cache", "c1"), "cache")
        t.hidden["imap"] += [rel("x.tmp"), rel("cache"), rel("cache/c1")]
        _w(os.path.join(base, "x.tmpl"), "kept")
        _w(os.path.join(base, "caches", "c1"), "kept")
        t.kept["imap"] += [rel("x.tmpl"), rel("caches/c1")]
    _w(os.path.join(im, "proc", "socket"), "a FILE named socket stays")
    t.kept["imap"].append("proc/socket")
    os.link(os.path.join(im, "mailboxes.db"), os.path.join(im, "db", "mailboxes.db.link"))
    t.links.append(("imap", ["mailboxes.db", "db/mailboxes.db.link"]))

    # ---- mysql: a MySQL-like datadir
    my = P("mysql")
    _w(os.path.join(my, "ibdata1"), b"\0" * 65536 + b"innodb", 0o660, OTHER_UID, OTHER_GID)
    _w(os.path.join(my, "ib_logfile0"), b"log" * 1000, 0o660, OTHER_UID, OTHER_GID)
    for db, tables in (("mysql", ("user", "db")), ("kolab", ("users", "domains"))):
        for tb in tables:
            _w(os.path.join(my, db, tb + ".frm"), "frm " + tb, 0o660, OTHER_UID, OTHER_GID)
            _w(os.path.join(my, db, tb + ".ibd"), "ibd " + tb * 100, 0o660, OTHER_UID, OTHER_GID)
    for d in ("", "kolab", "run/deeper"):
        base = os.path.join(my, d)
        rel = lambda n: os.path.join(d, n) if d else n
        _sock(os.path.join(base, "mysql.sock"))
        _sock(os.path.join(base, "any-name-socket"))
        _w(os.path.join(base, "mysqld.pid"), "4242\n")
        t.hidden["mysql"] += [rel("mysql.sock"), rel("any-name-socket"), rel("mysqld.pid")]
        os.mkfifo(os.path.join(base, "a.fifo"))
        for n in ("mysqld.pid.old", "pid", "pidfile", "xpid"):
            _w(os.path.join(base, n), "kept")
        _w(os.path.join(base, "notasocket.sock"), "a regular file named .sock")
        t.kept["mysql"] += [rel(n) for n in ("a.fifo", "mysqld.pid.old", "pid", "pidfile",
                                             "xpid", "notasocket.sock")]
    for v in VOLUMES:
        age_tree(P(v))
    return t


def age_tree(root, base=T_OLD):
    """Give every entry distinct past atime/mtime with nanoseconds.

    A real spool is older than the backup.  It matters: rsync does not set a
    new directory's mtime when it already matches the source's to the second
    (only seconds are compared), which it does for a tree made a moment ago.
    """
    k = 0
    for dirpath, dirs, files in os.walk(root):
        for n in [""] + sorted(dirs) + sorted(files):
            k += 1
            os.utime(os.path.join(dirpath, n) if n else dirpath,
                     ns=(base + k * 1_000_003_007, base - k * 999_983_011),
                     follow_symlinks=False)


def hidden_by_contract(vol, name, st):
    """The contract's presets (+ EXCLUDES), applied to one directory entry."""
    isdir = stat.S_ISDIR(st.st_mode)
    if name == ".kolabfs-snapshots":
        return True
    p = PRESETS[vol]
    if p == "cyrus-spool":
        if not isdir and name in ("cyrus.squat", "cyrus.cache.NEW", "cyrus.expunge.NEW",
                                  "cyrus.index.NEW"):
            return True
        if isdir and name in ("stage.", "sync."):
            return True
    elif p == "cyrus-meta":
        if isdir and name == "socket":
            return True
        if not isdir and ".lock" in name:       # *.lock*
            return True
    elif p == "mysql":
        if stat.S_ISSOCK(st.st_mode):
            return True
        if not isdir and name.endswith(".pid"):
            return True
    for g in EXCLUDES.get(vol, "").split(";"):
        if g.endswith("/"):
            if isdir and fnmatch.fnmatchcase(name, g[:-1]):
                return True
        elif g and fnmatch.fnmatchcase(name, g):
            return True
    return False


# --------------------------------------------------------------------------
# walking and comparing trees

TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFSOCK: "socket", stat.S_IFIFO: "fifo", stat.S_IFCHR: "chardev",
         stat.S_IFBLK: "blockdev"}


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    res = {}
    for n in names:
        res[n] = os.getxattr(path, n, follow_symlinks=False)
    return res


def sha256(path):
    """(hex digest, number of bytes read until EOF)"""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def walk(root, hide=None, content=True, xattr=True):
    """{relpath: dict of attributes} for everything below root ('' = root).

    hide(rel, name, st) -> True leaves an entry (and its subtree) out.
    All lstat()s happen before any file is read, so reading cannot move an
    atime before it is recorded.
    """
    entries = {}
    order = []

    def rec(dirpath, rel):
        for name in sorted(os.listdir(dirpath)):
            p = os.path.join(dirpath, name)
            r = os.path.join(rel, name) if rel else name
            st = os.lstat(p)
            if hide and hide(r, name, st):
                continue
            entries[r] = _attrs(st)
            order.append((r, p, st))
            if stat.S_ISDIR(st.st_mode):
                rec(p, r)

    st = os.lstat(root)
    entries[""] = _attrs(st)
    order.append(("", root, st))
    if stat.S_ISDIR(st.st_mode):
        rec(root, "")
    for r, p, st in order:
        e = entries[r]
        if stat.S_ISLNK(st.st_mode):
            e["target"] = os.readlink(p)
        if content and stat.S_ISREG(st.st_mode):
            e["sha256"], e["bytes_read"] = sha256(p)
        if xattr:
            e["xattrs"] = xattrs(p)
    return entries


def _attrs(st):
    e = {"type": TYPES.get(stat.S_IFMT(st.st_mode), oct(stat.S_IFMT(st.st_mode))),
         "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid,
         "mtime_ns": st.st_mtime_ns, "atime_ns": st.st_atime_ns, "ctime_ns": st.st_ctime_ns,
         "ino": st.st_ino, "dev": st.st_dev}
    if not stat.S_ISDIR(st.st_mode):
        e["size"] = st.st_size
        e["nlink"] = st.st_nlink
    if stat.S_ISREG(st.st_mode):
        e["blocks"] = st.st_blocks
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        e["rdev"] = st.st_rdev
    return e


def assert_sizes_match(entries, where=""):
    """stat's size is exactly what read() delivers (tar and rsync rely on it)."""
    bad = ["%s%s: st_size %d, read %d bytes" % (where, r, e["size"], e["bytes_read"])
           for r, e in entries.items() if "bytes_read" in e and e["bytes_read"] != e["size"]]
    assert not bad, "\n".join(bad[:20])


def link_groups(entries):
    """Partition of non-directory paths by inode number: set of frozensets."""
    by = {}
    for r, e in entries.items():
        if e["type"] != "dir":
            by.setdefault(e["ino"], set()).add(r)
    return {frozenset(g) for g in by.values()}


def diff_trees(expected, actual, fields, skip=lambda rel, field: False, limit=40):
    """Human-readable differences between two walk() results."""
    out = []
    for r in sorted(set(expected) - set(actual)):
        out.append("missing: %r (%s)" % (r, expected[r]["type"]))
    for r in sorted(set(actual) - set(expected)):
        out.append("unexpected: %r (%s)" % (r, actual[r]["type"]))
    for r in sorted(set(expected) & set(actual)):
        for fld in fields:
            if skip(r, fld):
                continue
            a, b = expected[r].get(fld), actual[r].get(fld)
            if a != b:
                out.append("%r: %s expected %r, got %r" % (r, fld, a, b))
    return out[:limit] + (["... %d more" % (len(out) - limit)] if len(out) > limit else [])


def assert_same_tree(expected, actual, fields, links=True, skip=lambda rel, field: False):
    d = diff_trees(expected, actual, fields, skip)
    if links:
        ge, ga = link_groups(expected), link_groups(actual)
        for g in sorted(ge - ga, key=sorted):
            d.append("link group differs: expected %s" % sorted(g))
        for g in sorted(ga - ge, key=sorted):
            d.append("link group differs: got %s" % sorted(g))
    assert not d, "trees differ:\n  " + "\n  ".join(d[:60])


ALL_FIELDS = ("type", "mode", "uid", "gid", "size", "nlink", "mtime_ns", "atime_ns",
              "ctime_ns", "blocks", "rdev", "target", "sha256", "xattrs")
COPY_FIELDS = ("type", "mode", "uid", "gid", "size", "mtime_ns", "rdev", "target",
               "sha256", "xattrs")


def reference_walk(ref_root, vol, **kw):
    """walk() of a reference snapshot with the volume's filter applied."""
    return walk(ref_root, hide=lambda r, n, st: hidden_by_contract(vol, n, st), **kw)


# --------------------------------------------------------------------------
# config and the kolabfs process

def config_text(work, mnt, volumes=VOLUMES, copies=None, extra=None, state_dir=None):
    """The standard config; returns the text (lines joined)."""
    lines = ["# kolabfs integration test config", "[kolabfs]",
             "state_dir = %s" % (state_dir or os.path.join(work, "state")), ""]
    for v in volumes:
        lines += ["[volume:%s]" % v, "backend = btrfs", "path = %s" % os.path.join(mnt, v),
                  "preset = %s" % PRESETS[v]]
        if v in EXCLUDES:
            lines.append("exclude = %s" % EXCLUDES[v])
        lines.append("")
    if copies:
        lines += ["[copy:etc]", "paths = %s" % ";".join(copies), ""]
    if extra:
        lines += extra
    return "\n".join(lines) + "\n"


def make_copy_sources(work):
    """Files for [copy:etc]: a file and a directory tree with odd owners/times."""
    etc = os.path.join(work, "etc-src")
    _w(os.path.join(etc, "imapd.conf"), "configdirectory: /var/lib/imap\n", 0o640,
       0, OTHER_GID, times=(T_OLD, T_OLD2))
    ds = os.path.join(etc, "dirsrv", "slapd-kolab")
    _w(os.path.join(ds, "dse.ldif"), "dn: cn=config\ncn: config\n", 0o600,
       OTHER_UID, OTHER_GID, times=(T_OLD2, T_OLD))
    _w(os.path.join(ds, "schema", "99user.ldif"), "dn: cn=schema\n", 0o440, OTHER_UID, OTHER_GID)
    os.chown(ds, OTHER_UID, OTHER_GID)
    os.chmod(ds, 0o770)
    age_tree(etc, T_OLD2)
    return [os.path.join(etc, "imapd.conf"), os.path.join(etc, "dirsrv")]


def with_kolabfs_installed(script, *args, timeout=300):
    """Run a bash script in a private mount namespace where kolabfs is on the
    default PATH (/usr/local/sbin, bind-mounted over with a directory that
    holds only a link to the built binary).  mount(8) drops PATH before it
    runs mount.fuse3, whose /bin/sh then finds helpers only in the default
    PATH: an installed kolabfs, which this stands in for without touching
    the host.  Returns the CompletedProcess."""
    bindir = os.path.join(os.path.dirname(args[0]) if args else "/tmp", "fake-sbin")
    os.makedirs(bindir, exist_ok=True)
    if not os.path.lexists(os.path.join(bindir, "kolabfs")):
        os.symlink(KOLABFS, os.path.join(bindir, "kolabfs"))
    prologue = 'mount --bind "$KFS_SBIN" /usr/local/sbin\n'
    env = dict(os.environ, KFS_SBIN=bindir)
    return run(["unshare", "-m", "--propagation", "private", "--", "/bin/bash", "-euc",
                prologue + script, "kolabfs-ns"] + list(args), check=False, env=env,
               timeout=timeout)


class Kolabfs:
    """One kolabfs mount started as `kolabfs CONFIG MOUNTPOINT`."""

    def __init__(self, work, config, mountpoint):
        self.work, self.config, self.mp = work, config, mountpoint
        self.pid = None
        self.rc = self.out = self.err = None

    def start(self, args=None, env=None, timeout=120, cmd=None):
        """Run kolabfs; it returns once the first set exists.  Returns rc."""
        os.makedirs(self.mp, exist_ok=True)
        cmd = cmd or [KOLABFS, self.config, self.mp] + list(args or [])
        # stdout/stderr go to files, not pipes: a daemon that kept them
        # open would otherwise make us wait for its exit.
        self.t0 = time.time()
        with open(os.path.join(self.work, "kolabfs.out"), "w+") as fo, \
             open(os.path.join(self.work, "kolabfs.err"), "w+") as fe:
            p = subprocess.run(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                               timeout=timeout, env=env)
            fo.seek(0)
            fe.seek(0)
            self.rc, self.out, self.err = p.returncode, fo.read(), fe.read()
        self.t1 = time.time()
        if self.rc == 0:
            pids = kolabfs_pids(self.mp)
            self.pid = pids[0] if pids else None
        return self.rc

    def check_started(self):
        assert self.rc == 0, "kolabfs %s %s exited %s\nstderr: %s\nstdout: %s" % (
            self.config, self.mp, self.rc, self.err, self.out)
        assert is_mounted(self.mp), "kolabfs returned 0 but %s is not mounted" % self.mp
        assert self.pid, "kolabfs returned 0 but no kolabfs process serves %s" % self.mp
        assert_under_test(self.pid)

    def path(self, *p):
        return os.path.join(self.mp, *p)

    def latest(self, *p):
        return self.path("snapshots", "latest", *p)

    def manifest(self, set_name="latest"):
        with open(self.path("snapshots", set_name, "MANIFEST.json")) as f:
            return json.load(f)

    def stop(self, how="fusermount", timeout=60):
        """Unmount and wait (bounded) until the process is gone."""
        pid = self.pid
        if is_mounted(self.mp):
            if how == "fusermount":
                run(["fusermount3", "-u", self.mp])
            else:
                run(["umount", self.mp])
        wait_until(lambda: not is_mounted(self.mp), timeout, "%s to be unmounted" % self.mp)
        if pid:
            try:
                wait_until(lambda: not pid_alive(pid), timeout, "kolabfs pid %d to exit" % pid)
            except AssertionError as e:
                raise AssertionError("%s\n%s" % (e, process_report(pid)))
        self.pid = None

    def cleanup(self):
        """Best effort, for fixture teardown after a failure."""
        try:
            if is_mounted(self.mp):
                if subprocess.run(["fusermount3", "-u", self.mp], capture_output=True).returncode:
                    subprocess.run(["umount", "-l", self.mp], capture_output=True)
            for pid in kolabfs_pids(self.mp):
                try:
                    wait_until(lambda: not pid_alive(pid), 30, "kolabfs to exit")
                except AssertionError:
                    os.kill(pid, 9)
        except Exception:
            pass


# valgrind's memcheck as the leak tests use it: any error or definite or
# indirect leak makes the exit status 99.
MEMCHECK = ["--quiet", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect"]


class UnderValgrind:
    """`valgrind TOOL_ARGS --log-file=LOG kolabfs -f CONFIG MOUNTPOINT`.

    A context manager: leaving it unmounts (if still mounted) and waits,
    bounded (then kills), for the exit status, kept in .rc.  OUT, if
    given, is a file for kolabfs's own messages."""

    def __init__(self, config, mountpoint, log, tool_args=MEMCHECK, out=None, env=None):
        os.makedirs(mountpoint, exist_ok=True)
        self.mp, self.log, self.out, self.rc = mountpoint, log, out, None
        with open(out or os.devnull, "w") as f:
            self.proc = subprocess.Popen(
                # -o no_io_uring: under valgrind (3.19) a kolabfs built with
                # libfuse >= 3.18 never got its first request over io_uring
                ["valgrind"] + list(tool_args) + ["--log-file=" + log, KOLABFS, "-f",
                                                  config, mountpoint, "-o", "no_io_uring"],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env)

    def report(self):
        with open(self.log) as f:
            return f.read()

    def messages(self):
        """kolabfs's own messages (OUT)."""
        with open(self.out) as f:
            return f.read()

    def wait_mounted(self, ready=None, what="kolabfs under valgrind to mount"):
        """Wait (bounded) until READY() (default: mounted), failing if it exits."""
        ready = ready or (lambda: is_mounted(self.mp))
        wait_until(lambda: ready() or self.proc.poll() is not None, 300, what)
        assert self.proc.poll() is None, "kolabfs exited: %s\n%s" % (
            self.messages() if self.out else "", self.report()[-6000:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if is_mounted(self.mp):
            run(["fusermount3", "-u", self.mp], check=False)
        try:
            self.rc = self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
        return False


class Foreground:
    """`kolabfs -f CONFIG MOUNTPOINT` as a child process, so that its exit
    status and everything it logs (stderr, kept in a file: it never goes to
    syslog) can be checked.  ENV adds environment variables, ARGS options
    (e.g. ["-d"])."""

    def __init__(self, work, config, mountpoint=None, env=None, name="kolabfs-f", args=()):
        self.work, self.config = work, config
        self.args = list(args)
        self.mp = mountpoint or os.path.join(work, "mnt")
        self.log_path = os.path.join(work, name + ".log")
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def path(self, *p):
        return os.path.join(self.mp, *p)

    def spawn(self):
        """Start it; return at once."""
        os.makedirs(self.mp, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([KOLABFS, "-f", self.config, self.mp] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env)
        return self

    def start(self, timeout=120):
        """Start it and wait (bounded) until the first set is in the mount."""
        self.spawn()
        manifest = self.path("snapshots", "latest", "MANIFEST.json")
        wait_until(lambda: self.proc.poll() is not None or os.path.isfile(manifest), timeout,
                   "kolabfs -f to mount")
        assert self.proc.poll() is None, "kolabfs exited %d:\n%s" % (self.proc.returncode,
                                                                    self.log())
        return self

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=60):
        """Wait (bounded) until a line of the log matches the regex."""
        rx = re.compile(pattern, re.M)
        try:
            return wait_until(lambda: rx.search(self.log()), timeout, "log line /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s; the log:\n%s" % (e, self.log()))

    def wait_exit(self, timeout=60):
        """Wait (bounded) for the process to end; its exit status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("kolabfs pid %d did not exit within %ds:\n%s\n%s"
                                 % (self.pid, timeout, self.log(), process_report(self.pid)))

    def cleanup(self):
        """Best effort, for fixture teardown after a failure."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)       # stopped at a test point
        if is_mounted(self.mp):
            if subprocess.run(["fusermount3", "-u", self.mp], capture_output=True).returncode:
                subprocess.run(["umount", "-l", self.mp], capture_output=True)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def as_nobody_errno(pycode):
    """Run a python snippet as user nobody; it prints an errno or 'ok'."""
    p = run(["runuser", "-u", NOBODY, "--", "/usr/bin/python3", "-c", pycode], check=False)
    return p.stdout.strip(), p.stderr


# --------------------------------------------------------------------------
# backup tools: copy a set directory out, return (stderr lines) for checking

def rsync_copy(src, dst):
    """rsync -aHAX src/ dst/.  Returns the stderr text; fails on exit != 0."""
    p = run(["rsync", "-aHAX", src.rstrip("/") + "/", dst.rstrip("/") + "/"], check=False)
    assert p.returncode == 0, "rsync exit %d: %s" % (p.returncode, p.stderr)
    return p.stderr


TAR_SOCKET_IGNORED = ": socket ignored"


def tar_copy(src, dst, work):
    """tar -c (pax: ns times, xattrs, ACLs) of src, then extract into dst.

    GNU tar cannot archive sockets: it says "socket ignored" and leaves them
    out.  Returns stderr without those lines."""
    archive = os.path.join(work, "set.tar")
    opts = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]
    p = run(["tar", "-c", "--format=posix", "-f", archive, "-C", src] + opts + ["."], check=False)
    assert p.returncode == 0, "tar -c exit %d: %s" % (p.returncode, p.stderr)
    err = [l for l in p.stderr.splitlines() if not l.endswith(TAR_SOCKET_IGNORED)]
    os.makedirs(dst, exist_ok=True)
    p = run(["tar", "-x", "-p", "--same-owner", "-f", archive, "-C", dst] + opts, check=False)
    assert p.returncode == 0, "tar -x exit %d: %s" % (p.returncode, p.stderr)
    os.unlink(archive)
    return "\n".join(err + p.stderr.splitlines())


def restic_copy(src, dst, work):
    """restic init, backup (from inside src), restore into dst.

    The password reaches restic through RESTIC_PASSWORD_FILE (mode 0600).
    restic cannot restore sockets: they are left out.  Returns stderr."""
    pw = os.path.join(work, "restic.pw")
    fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"correct horse battery staple\n")
    os.close(fd)
    env = dict(os.environ, RESTIC_REPOSITORY=os.path.join(work, "restic-repo"),
               RESTIC_PASSWORD_FILE=pw, RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"))
    env.pop("RESTIC_PASSWORD", None)
    errs = []
    for cmd, cwd in ((["restic", "init", "-q"], work),
                     (["restic", "backup", "-q", "."], src),
                     (["restic", "restore", "-q", "latest", "--target", dst], work)):
        p = run(cmd, check=False, cwd=cwd, env=env)
        assert p.returncode == 0, "%s exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr)
        errs += p.stderr.splitlines()
    return "\n".join(errs)


def no_sockets(entries):
    return {r: e for r, e in entries.items() if e["type"] != "socket"}
