"""Many readers at once while sets come and go (issue #8, "Concurrency").

Eight backup-like readers (rsync -a into a directory, tar -cf - | sha256,
find -printf with sizes) work on sets that stay, while the main thread
takes and drops other sets with mkdir/rmdir for a fixed number of rounds.
No reader may fail, the daemon must live, and every copy must equal the
snapshot subvolume read directly (the reference fixture; no volume
changes after it, so every set holds the same data).  One more reader
works on a set that is dropped under it: it may only see ESTALE or ENOENT,
never wrong data.

The same workload, smaller, runs once with the daemon under valgrind's
helgrind (test_no_races_under_helgrind): no report may come from
kolabfs's own code (tests/helgrind.supp says what is suppressed and why).
"""
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import threading

import pytest

import kfs

TESTS_DIR = os.path.dirname(kfs.HERE)

# What a copy made with rsync -a (no -H, -A, -X) must keep.  Hard links
# become separate files without -H.
RSYNC_FIELDS = ("type", "mode", "uid", "gid", "size", "mtime_ns", "rdev", "target", "sha256")
# A gnu-format tar keeps mtimes to the second only.
TAR_FIELDS = ("type", "mode", "uid", "gid", "size", "rdev", "target", "sha256")
FIND_TYPES = {"file": "f", "dir": "d", "symlink": "l", "socket": "s", "fifo": "p",
              "chardev": "c", "blockdev": "b"}
FIND_FORMAT = "%y/%s/%m/%U/%G/%P\\0%l\\0"


def tar_digest(src):
    """sha256 of `tar -cf - .` of SRC (gnu format, numeric owners, names sorted)."""
    p = subprocess.Popen(["tar", "--format=gnu", "--numeric-owner", "--sort=name",
                          "-cf", "-", "-C", src, "."],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h = hashlib.sha256()
    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
        h.update(chunk)
    err = p.stderr.read().decode(errors="replace")
    rc = p.wait(timeout=600)
    err = "\n".join(l for l in err.splitlines() if not l.endswith(kfs.TAR_SOCKET_IGNORED))
    assert rc == 0 and not err, "tar -c %s: exit %d: %s" % (src, rc, err)
    return h.hexdigest()


def find_listing(src):
    """`find SRC -printf` of every entry: {rel: (type, size, mode, uid, gid, target)};
    directory sizes are left out (kolabfs does not promise them)."""
    p = kfs.run(["find", src, "-mindepth", "1", "-printf", FIND_FORMAT], text=False)
    fields = p.stdout.split(b"\0")
    assert fields[-1] == b"" and len(fields) % 2 == 1, fields[-3:]
    res = {}
    for head, target in zip(fields[0:-1:2], fields[1:-1:2]):
        y, size, mode, uid, gid, rel = head.split(b"/", 5)
        res[os.fsdecode(rel)] = (y.decode(), None if y == b"d" else int(size),
                                 int(mode, 8), int(uid), int(gid), os.fsdecode(target))
    return res


def expected_listing(ref):
    res = {}
    for r, e in ref.items():
        if r:
            res[r] = (FIND_TYPES[e["type"]], e.get("size") if e["type"] != "dir" else None,
                      int(e["mode"], 8), e["uid"], e["gid"], e.get("target", ""))
    return res


class Workload:
    """Readers on the sets STABLE (one thread each) and one on DOOMED,
    while sets are taken and dropped ROUNDS times.  VOLS: the volumes read."""

    def __init__(self, mp, reference, work, vols, rounds, min_iterations=1):
        self.mp, self.work, self.vols = mp, work, vols
        self.rounds, self.min_iterations = rounds, min_iterations
        self.snaps = os.path.join(mp, "snapshots")
        self.ref = {v: kfs.reference_walk(reference[v], v, xattr=False) for v in vols}
        self.errors = []
        self.lock = threading.Lock()
        self.churn_done = threading.Event()
        self.iterations = {}
        self.doomed_errnos = set()
        self.doomed_files_read = 0

    def fail(self, what, e):
        with self.lock:
            self.errors.append("%s: %s: %s" % (what, type(e).__name__, e))

    def set_path(self, name, *p):
        return os.path.join(self.snaps, name, *p)

    # ---- readers (each repeats until the churn is over, at least min_iterations)
    def repeat(self, what, job):
        n = 0
        try:
            while n < self.min_iterations or not self.churn_done.is_set():
                job(n)
                n += 1
        except Exception as e:          # noqa: BLE001 -- reported by the test
            self.fail(what, e)
        with self.lock:
            self.iterations[threading.current_thread().name] = n

    def rsync_reader(self, name, vol, k):
        def job(n):
            dst = os.path.join(self.work, "r%d-%d" % (k, n))       # one per reader
            err = kfs.rsync_copy(self.set_path(name, vol), dst)
            assert err == "", "rsync warned: %s" % err
            got = kfs.walk(dst, xattr=False)
            # rsync sets the mtime of the top directory too; only its type counts
            kfs.assert_same_tree(self.ref[vol], got, RSYNC_FIELDS, links=False,
                                 skip=lambda r, f: r == "" and f != "type")
            shutil.rmtree(dst)
        return lambda: self.repeat("rsync %s/%s" % (name, vol), job)

    def tar_reader(self, name, vol, want):
        def job(n):
            got = tar_digest(self.set_path(name, vol))
            assert got == want[vol], "tar of %s/%s: sha256 %s, expected %s" % (
                name, vol, got, want[vol])
        return lambda: self.repeat("tar %s/%s" % (name, vol), job)

    def find_reader(self, name, vol):
        want = expected_listing(self.ref[vol])

        def job(n):
            got = find_listing(self.set_path(name, vol))
            bad = sorted(r for r in set(want) | set(got) if want.get(r) != got.get(r))
            assert not bad, "find %s/%s differs: %s" % (
                name, vol, ["%r: want %s got %s" % (r, want.get(r), got.get(r))
                            for r in bad[:10]])
        return lambda: self.repeat("find %s/%s" % (name, vol), job)

    def doomed_reader(self, name, vol, started):
        """Walk and read the set until it is gone: only ESTALE/ENOENT, and
        every file read whole equals the reference."""
        ref = self.ref[vol]
        ok_errnos = (errno.ESTALE, errno.ENOENT)

        def one_pass():
            root = self.set_path(name, vol)
            for r, e in sorted(ref.items()):
                p = os.path.join(root, r) if r else root
                if e["type"] == "dir":
                    names = set(os.listdir(p))
                    want = {os.path.basename(x) for x in ref
                            if x and os.path.dirname(x) == r}
                    assert names == want, "listing of %s: %s" % (r, names ^ want)
                elif e["type"] == "file":
                    digest, _ = kfs.sha256(p)
                    assert digest == e["sha256"], "%s: wrong data" % r
                    self.doomed_files_read += 1
                started.set()

        def run():
            try:
                for _ in range(1000):           # bounded: until the set is gone
                    one_pass()
                    if self.churn_done.is_set():
                        break
            except OSError as e:
                if e.errno not in ok_errnos:
                    self.fail("reader on dropped set %s" % name, e)
                else:
                    self.doomed_errnos.add(e.errno)
            except Exception as e:      # noqa: BLE001
                self.fail("reader on dropped set %s" % name, e)
            finally:
                started.set()
        return run

    # ---- the churn: take and drop sets
    def churn(self, doomed, doomed_started):
        try:
            for i in range(self.rounds):
                name = "churn-%d" % i
                os.mkdir(os.path.join(self.snaps, name))
                assert name in os.listdir(self.snaps)
                os.listdir(os.path.join(self.snaps, name, self.vols[0]))
                os.rmdir(os.path.join(self.snaps, name))
                if i == self.rounds // 2 and doomed:
                    doomed_started.wait(300)
                    # a file open in it may refuse the drop for a moment (EBUSY)
                    kfs.wait_until(lambda: self._try_rmdir(doomed), 120, "rmdir " + doomed)
        except Exception as e:          # noqa: BLE001
            self.fail("mkdir/rmdir loop", e)
        finally:
            self.churn_done.set()

    def _try_rmdir(self, name):
        try:
            os.rmdir(os.path.join(self.snaps, name))
            return True
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            return False

    def run(self, stable, readers, doomed=None):
        """Take the STABLE sets and DOOMED, run READERS (list of (kind, set, vol))
        and the churn; return after every thread has ended."""
        for name in list(stable) + ([doomed] if doomed else []):
            os.mkdir(os.path.join(self.snaps, name))
        want_tar = {v: tar_digest(self.set_path(stable[0], v))
                    for v in {vol for kind, _, vol in readers if kind == "tar"}}
        for v in want_tar:      # the expected archive is itself checked once
            dst = os.path.join(self.work, "tar-baseline-" + v)
            os.makedirs(dst)
            subprocess.run("tar --numeric-owner -cf - -C '%s' . | tar -xpf - -C '%s'"
                           % (self.set_path(stable[0], v), dst), shell=True, check=True,
                           stderr=subprocess.DEVNULL)
            kfs.assert_same_tree(kfs.no_sockets(self.ref[v]), kfs.walk(dst, xattr=False),
                                 TAR_FIELDS, links=False, skip=lambda r, f: r == "")
            shutil.rmtree(dst)
        threads = []
        for k, (kind, name, vol) in enumerate(readers):
            if kind == "rsync":
                fn = self.rsync_reader(name, vol, k)
            elif kind == "tar":
                fn = self.tar_reader(name, vol, want_tar)
            else:
                fn = self.find_reader(name, vol)
            threads.append(threading.Thread(target=fn, name="#%d %s %s/%s" % (k, kind, name, vol)))
        doomed_started = threading.Event()
        if doomed:
            threads.append(threading.Thread(
                target=self.doomed_reader(doomed, self.vols[0], doomed_started),
                name="doomed"))
        threads.append(threading.Thread(target=self.churn, args=(doomed, doomed_started),
                                        name="churn"))
        for t in threads:
            t.start()
        for t in threads:
            t.join(1800)
            if t.is_alive():
                self.fail(t.name, AssertionError("still running after 30 min"))

    def check(self, stable, doomed=None):
        assert not self.errors, "\n".join(self.errors)
        names = set(os.listdir(self.snaps))
        assert set(stable) <= names, names
        assert not {n for n in names if n.startswith("churn-")}, names
        if doomed:
            assert doomed not in names, names


def mix(stable, vols):
    """Eight readers: rsync, tar and find, spread over the stable sets and volumes."""
    a, b = stable[0], stable[-1]
    spool, imap, mysql = vols
    return [("rsync", a, spool), ("tar", b, spool), ("find", a, spool), ("rsync", b, imap),
            ("tar", a, mysql), ("find", b, imap), ("rsync", a, mysql), ("tar", a, spool)]


def with_handles(config_path, work):
    """A copy of the config with idle_timeout: kolabfs then counts open
    directories, so the kernel keeps OPENDIR/RELEASEDIR and readers use
    directory handles instead of the per-node stream (fs/dir.c)."""
    with open(config_path) as f:
        text = f.read()
    path = os.path.join(work, "kolabfs-handles.conf")
    with open(path, "w") as f:
        f.write(text.replace("[kolabfs]\n", "[kolabfs]\nidle_timeout = 3600\n", 1))
    return path


@pytest.mark.parametrize("dirs", ["handleless", "handles"])
def test_readers_while_sets_come_and_go(dirs, work, btrfs, tree, reference, config,
                                        kolabfs_factory):
    k = kolabfs_factory(config if dirs == "handleless" else with_handles(config, work))
    k.start()
    k.check_started()
    stable = ("stable-a", "stable-b")
    vols = kfs.VOLUMES
    w = Workload(k.mp, reference, work, vols, rounds=12, min_iterations=1)
    before = btrfs.subvolumes()
    w.run(stable, mix(stable, vols), doomed="doomed")
    assert kfs.pid_alive(k.pid), "kolabfs died"
    w.check(stable, doomed="doomed")
    assert w.doomed_files_read > 0, "the reader on the dropped set read nothing"
    assert w.doomed_errnos, "the reader on the dropped set never noticed the drop"
    print("iterations per reader:", w.iterations, "dropped set:", w.doomed_errnos)
    for name, n in sorted(w.iterations.items()):
        assert n >= 1, name
    # every churn set and the dropped one are gone from disk too
    left = {s for s in btrfs.subvolumes() - before if "@churn-" in s or "@doomed" in s}
    assert not left, left
    k.stop()


# --------------------------------------------------------------------------
# the same under helgrind

SUPP = os.path.join(TESTS_DIR, "helgrind.supp")
# GLib's GMutex/GCond are futexes to helgrind: this shim reports them (see it)
SHIM_SRC = os.path.join(TESTS_DIR, "helgrind-glib.c")


def helgrind_reports(log):
    """The error blocks of a valgrind log, as text."""
    blocks, cur = [], None
    with open(log, errors="replace") as f:
        for line in f:
            if not line.startswith("=="):
                continue
            body = line.split("== ", 1)[1] if "== " in line else ""
            if body.startswith(("Possible data race", "Lock order", "Thread #")) \
                    and "was created" not in body and "is the program's root" not in body:
                cur = [body.rstrip()]
                blocks.append(cur)
            elif cur is not None and body.strip():
                cur.append(body.rstrip())
            elif cur is not None:
                cur = None
    return ["\n".join(b) for b in blocks]


def test_no_races_under_helgrind(work, btrfs, tree, reference):
    vols = ("imap", "mysql")          # small: helgrind slows everything ~100x
    config = os.path.join(work, "kolabfs.conf")
    # idle_timeout and max_age start src/expire.c's thread, which follows
    # every open and close and every set taken (far in the future: it only
    # waits here, it never fires)
    text = kfs.config_text(work, btrfs.mnt, volumes=vols)
    text = text.replace("[kolabfs]\n", "[kolabfs]\nidle_timeout = 3600\nmax_age = 86400\n", 1)
    with open(config, "w") as f:
        f.write(text)
    mp = os.path.join(work, "mnt")
    log = os.path.join(work, "helgrind.log")
    shim = os.path.join(work, "helgrind-glib.so")
    kfs.run(["sh", "-c", 'gcc -shared -fPIC -O1 -o "$1" "$2" $(pkg-config --cflags --libs '
             'glib-2.0) -ldl', "cc", shim, SHIM_SRC])
    helgrind = ["--tool=helgrind", "--error-exitcode=99", "--suppressions=" + SUPP,
                "--gen-suppressions=all", "--history-level=approx"]
    with kfs.UnderValgrind(config, mp, log, helgrind,
                           env=dict(os.environ, LD_PRELOAD=shim)) as v:
        v.wait_mounted(lambda: os.path.isfile(os.path.join(mp, "snapshots", "latest",
                                                           "MANIFEST.json")),
                       "kolabfs under helgrind to mount")
        stable = ("stable-a", "stable-b")
        w = Workload(mp, reference, work, vols, rounds=4, min_iterations=1)
        # the eight readers of the main test, on the two small volumes
        readers = [(kind, name, "mysql" if vol == "spool" else vol)
                   for kind, name, vol in mix(stable, kfs.VOLUMES)]
        w.run(stable, readers, doomed="doomed")
        assert v.proc.poll() is None, "kolabfs died under helgrind"
        w.check(stable, doomed="doomed")
    if os.environ.get("KFS_HELGRIND_LOG"):         # keep it, for writing suppressions
        shutil.copy(log, os.environ["KFS_HELGRIND_LOG"])
    # Nothing at all: what libfuse does by design is suppressed (see the
    # file), so any report left is kolabfs's.
    reports = helgrind_reports(log)
    assert not reports, "helgrind: %d report(s):\n\n%s" % (
        len(reports), "\n\n".join(reports)[:20000])
    assert v.rc == 0, "kolabfs under helgrind exited %d:\n%s" % (v.rc, v.report()[-8000:])


def _pinned(cpu, code, pass_fds=()):
    """A python3 child on CPU alone running CODE (the FUSE request of a task
    goes to the io_uring queue of the CPU it runs on)."""
    return subprocess.Popen(["/usr/bin/python3", "-c",
                             "import os, sys; os.sched_setaffinity(0, {%d}); %s" % (cpu, code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            pass_fds=pass_fds)


def test_readers_are_served_while_a_set_is_taken(work, btrfs, tree, kolabfs_factory):
    """Taking a set can take long (a MySQL lock, LDIF exports, LVM).  A
    reader must not wait for it, also not one on the CPU the mkdir came
    from: with FUSE over io_uring one thread serves each CPU's requests in
    order, so kolabfs answers mkdir from a thread of its own.  The take is
    held up here by a copy source on a second kolabfs that is stopped
    (SIGSTOP): its /status is read anew each time.  The reader is inside
    the set already, as a backup tool is: a path lookup through /snapshots
    that the kernel's cache cannot answer waits for the mkdir whatever
    kolabfs does (the kernel holds the directory's lock for it)."""
    other_cfg = os.path.join(work, "other.conf")
    with open(other_cfg, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=("imap",),
                                state_dir=os.path.join(work, "other-state")))
    other = kolabfs_factory(other_cfg, os.path.join(work, "other-mnt"))
    other.start()
    other.check_started()
    cfg = os.path.join(work, "kolabfs.conf")
    with open(cfg, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=("spool",),
                                copies=[other.path("status")]))
    k = kolabfs_factory(cfg)
    k.start()
    k.check_started()
    cpu = sorted(os.sched_getaffinity(0))[0]
    inside = os.open(k.latest("spool", "feat"), os.O_PATH | os.O_DIRECTORY)
    os.kill(other.pid, signal.SIGSTOP)
    try:
        mkdir = _pinned(cpu, "os.mkdir(%r)" % k.path("snapshots", "slow"))
        # the take has begun once its record is in state_dir
        kfs.wait_until(lambda: os.path.isdir(os.path.join(work, "state", "sets", "slow")),
                       60, "the take of set slow to begin")
        reader = _pinned(cpu, "sys.stdout.write(open(os.open('public.txt', os.O_RDONLY, "
                              "dir_fd=%d)).read())" % inside, pass_fds=(inside,))
        try:
            out, err = reader.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            reader.kill()
            raise AssertionError("a reader waited for the take of a set")
        assert out == "anyone may read\n", err
        assert mkdir.poll() is None, "the take was not held up: %s" % (mkdir.communicate(),)
    finally:
        os.kill(other.pid, signal.SIGCONT)
        os.close(inside)
    assert mkdir.wait(timeout=120) == 0, mkdir.communicate()
    assert "slow" in os.listdir(k.path("snapshots"))
    k.stop()
    other.stop()
