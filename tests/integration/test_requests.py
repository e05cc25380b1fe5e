"""What a backup tool's walk costs the daemon, in FUSE requests (issue 7).

The daemon runs with -d, which logs every request it gets.  Once a walk has
filled the kernel's caches, walking again must not reach the daemon for the
snapshot's directories: no OPENDIR/RELEASEDIR round trip each time a walker
enters one (the kernel keeps directory handles itself), no READDIRPLUS, no
GETATTR.  And the listings read without a directory handle are the same as
those read with one (KOLABFS_OPENDIR=1 keeps the handle path, which kernels
without no-opendir support take).  A big file streams in READs of 512 KiB,
each spliced, not in the kernel's default 128 KiB; a small one is handed
to the kernel with its OPEN, and reading it sends no READ.
"""
import mmap
import os
import re
import stat
import subprocess
import time

import kfs

OPCODE = re.compile(rb"opcode: ([A-Z_]+) ")
REQUEST = re.compile(rb"unique: (\d+), opcode: ([A-Z_]+) ")
REPLY = re.compile(rb"   unique: (\d+), (?:success|error: [^,]+), outsize: (\d+)(.*)")


class DebugMount:
    """kolabfs -d in the foreground, its request log in a file."""

    def __init__(self, work, config, env=None, args=()):
        self.mp = os.path.join(work, "mnt")
        os.makedirs(self.mp, exist_ok=True)
        self.log = os.path.join(work, "debug.log")
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen([kfs.KOLABFS, "-d", config, self.mp] + list(args),
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                         env=dict(os.environ, **(env or {})))
        latest = os.path.join(self.mp, "snapshots", "latest")
        kfs.wait_until(lambda: os.path.islink(latest) or self.proc.poll() is not None,
                       120, "kolabfs -d to take its first set")
        assert self.proc.poll() is None, open(self.log, "rb").read()[-3000:]

    def latest(self, *p):
        return os.path.join(self.mp, "snapshots", "latest", *p)

    def mark(self):
        return os.path.getsize(self.log)

    def ops_since(self, mark):
        """Opcode -> count of the requests logged after MARK."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            text = f.read()
        ops = {}
        for m in OPCODE.finditer(text):
            ops[m.group(1).decode()] = ops.get(m.group(1).decode(), 0) + 1
        return ops

    def replies_since(self, mark, opcode):
        """[(outsize, rest of the line)] of the replies to OPCODE after MARK."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            text = f.read()
        asked = {m.group(1) for m in REQUEST.finditer(text) if m.group(2) == opcode.encode()}
        return [(int(m.group(2)), m.group(3).decode()) for m in REPLY.finditer(text)
                if m.group(1) in asked]

    def stop(self):
        if kfs.is_mounted(self.mp):
            kfs.run(["fusermount3", "-u", self.mp], check=False)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _dirs(entries):
    return [r for r, e in entries.items() if e["type"] == "dir"]


def test_warm_walk_reaches_the_daemon_for_no_directory(work, btrfs, tree, config):
    m = DebugMount(work, config)
    try:
        # From inside the volume, as `cd latest/spool && rsync -a . DEST`
        # and find do: the walk itself must cost nothing, whatever the
        # (short) cache times of kolabfs's own directories above it.
        cwd = os.getcwd()
        os.chdir(m.latest("spool"))
        try:
            first = kfs.walk(".", content=False, xattr=False)
            kfs.walk(".", content=False, xattr=False)
            # -d writes each request before answering it: what the third
            # walk caused is in the log once the walk returns.
            mark = m.mark()
            third = kfs.walk(".", content=False, xattr=False)
            ops = m.ops_since(mark)
        finally:
            os.chdir(cwd)
    finally:
        assert m.stop() == 0
    assert third == first
    dirs = len(_dirs(first))
    assert dirs > 50, dirs           # the tree has dozens of directories
    assert sum(ops.values()) == 0, ops


def test_listings_with_and_without_directory_handles_agree(work, btrfs, tree, reference,
                                                            config):
    seen = {}
    for mode, env in (("handleless", {}), ("handles", {"KOLABFS_OPENDIR": "1"})):
        m = DebugMount(work, config, env)
        try:
            mark = m.mark()
            seen[mode] = {v: kfs.walk(m.latest(v)) for v in kfs.VOLUMES}
            ops = m.ops_since(mark)
        finally:
            assert m.stop() == 0
        n_dirs = sum(len(_dirs(seen[mode][v])) for v in kfs.VOLUMES)
        if mode == "handles":
            assert ops.get("OPENDIR", 0) >= n_dirs, (n_dirs, ops)
        else:
            assert ops.get("OPENDIR", 0) <= 1, ops     # the one ENOSYS answer
            assert ops.get("RELEASEDIR", 0) == 0, ops
    for v in kfs.VOLUMES:
        kfs.assert_same_tree(kfs.reference_walk(reference[v], v), seen["handleless"][v],
                             kfs.ALL_FIELDS)
        kfs.assert_same_tree(seen["handles"][v], seen["handleless"][v], kfs.ALL_FIELDS)


def test_latest_and_the_listing_move_although_the_kernel_caches_them(work, btrfs, tree,
                                                                      config):
    """Symlink targets and listings are cached by the kernel; `latest` and
    /snapshots must still follow every mkdir and rmdir."""
    m = DebugMount(work, config)
    snaps = os.path.join(m.mp, "snapshots")
    try:
        first = os.readlink(os.path.join(snaps, "latest"))
        for _ in range(2):       # read twice: the second is served from the cache
            assert os.readlink(os.path.join(snaps, "latest")) == first
            assert sorted(os.listdir(snaps)) == sorted([first, "latest"])
        os.mkdir(os.path.join(snaps, "zz-next"))
        assert os.readlink(os.path.join(snaps, "latest")) == "zz-next"
        assert sorted(os.listdir(snaps)) == sorted([first, "latest", "zz-next"])
        os.rmdir(os.path.join(snaps, "zz-next"))
        assert os.readlink(os.path.join(snaps, "latest")) == first
        assert sorted(os.listdir(snaps)) == sorted([first, "latest"])
        # the last set goes: latest with it, though its entry is cached
        os.rmdir(os.path.join(snaps, first))
        assert not os.path.lexists(os.path.join(snaps, "latest"))
        assert os.listdir(snaps) == []
        os.mkdir(os.path.join(snaps, "again"))
        assert os.readlink(os.path.join(snaps, "latest")) == "again"
    finally:
        assert m.stop() == 0


def test_a_big_file_streams_in_big_spliced_reads(work, btrfs, tree, config):
    """The kernel's read-ahead of the mount is raised to 4 MiB, so a big
    file is asked for in READs of 512 KiB, several in flight; none bigger,
    or libfuse could not splice it (a READ and its header must fit the
    1 MiB pipe) and would copy it through a fresh buffer instead.  Where
    kolabfs has FUSE passthrough (libfuse >= 3.17 and a kernel offering
    it), the kernel reads the snapshot's file itself: no READ at all."""
    passthrough = kfs.passthrough_expected()
    data = os.urandom(24 << 20)
    with open(os.path.join(btrfs.path("spool"), "big.mbox"), "wb") as f:
        f.write(data)
    m = DebugMount(work, config)
    try:
        dev = os.stat(m.mp).st_dev
        knob = "/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(dev), os.minor(dev))
        # set by a thread of its own once the session runs; it logs it
        kfs.wait_until(lambda: ("%s: 4096" % knob).encode() in open(m.log, "rb").read(),
                       60, "kolabfs to set read_ahead_kb")
        with open(knob) as f:
            read_ahead_kb = int(f.read())
        mark = m.mark()
        with open(m.latest("spool", "big.mbox"), "rb") as f:
            got = b"".join(iter(lambda: f.read(1 << 20), b""))
        reads = m.replies_since(mark, "READ")
        opens = m.ops_since(mark).get("OPEN", 0)
        log = open(m.log, "rb").read()
    finally:
        assert m.stop() == 0
    assert got == data
    assert read_ahead_kb == 4096
    assert opens == 1
    assert (b"FUSE passthrough on" in log) == passthrough, log[-2000:]
    if passthrough:
        assert reads == [], reads[:8]
        return
    sizes = sorted(n - 16 for n, _ in reads)           # less the reply header
    assert sizes[-1] == 512 << 10, sizes[-8:]
    assert len(reads) <= (len(data) >> 19) + 8, len(reads)
    assert all("(splice)" in rest for n, rest in reads if n > 16), reads[:8]


def test_opens_of_one_big_file_at_once_read_alike(work, btrfs, tree, config):
    """Two descriptors on one big file, read in turns, and an mmap of it
    read the same bytes, and the file can be opened again once all are
    closed.  With passthrough the kernel refuses a second backing file for
    an inode already passed through (open fails EIO): every open must get
    the first one's, and the last close must let it go."""
    passthrough = kfs.passthrough_expected()
    data = os.urandom((8 << 20) + 4321)
    with open(os.path.join(btrfs.path("spool"), "twice.mbox"), "wb") as f:
        f.write(data)
    m = DebugMount(work, config)
    try:
        p = m.latest("spool", "twice.mbox")
        mark = m.mark()
        for _ in range(2):
            a, b = os.open(p, os.O_RDONLY), os.open(p, os.O_RDONLY)
            try:
                parts = [os.pread(fd, 1 << 20, off)
                         for off in range(0, len(data), 1 << 20) for fd in (a, b)]
                with mmap.mmap(a, 0, prot=mmap.PROT_READ) as mm:
                    mapped = mm[:]
            finally:
                os.close(a)
                os.close(b)
            assert b"".join(parts[0::2]) == data
            assert b"".join(parts[1::2]) == data
            assert mapped == data
    finally:
        assert m.stop() == 0
    ops = m.ops_since(mark)     # complete: RELEASE may follow close() late
    assert ops.get("OPEN", 0) == 4 and ops.get("RELEASE", 0) == 4, ops
    if passthrough:
        assert ops.get("READ", 0) == 0, ops


def test_small_files_are_read_without_a_read_request(work, btrfs, tree, reference, config):
    """Files under 128 KiB go to the kernel's page cache with their OPEN
    (FUSE_NOTIFY_STORE): a tar of a mail spool waits for one round trip
    per file, not two.  What is read is the file, to the last byte."""
    m = DebugMount(work, config)
    small = {}
    try:
        root = m.latest("spool")
        for d, dirs, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and 0 < st.st_size < (128 << 10) \
                        and os.access(p, os.R_OK):
                    small[os.path.relpath(p, root)] = None
        mark = m.mark()
        for rel in small:
            with open(os.path.join(root, rel), "rb") as f:
                small[rel] = f.read()
        ops = m.ops_since(mark)
    finally:
        assert m.stop() == 0
    assert len(small) >= 20, sorted(small)
    assert ops.get("OPEN", 0) == len(small), ops
    assert ops.get("READ", 0) == 0, ops
    for rel, data in small.items():
        with open(os.path.join(reference["spool"], rel), "rb") as f:
            assert data == f.read(), rel


def test_paths_through_latest_are_not_looked_up_each_time(work, btrfs, tree, config):
    """restic names every file by its full path, through latest/: the
    entries of latest and the set are kept by the kernel for a second,
    like the other virtual entries, not looked up on every path."""
    m = DebugMount(work, config)
    try:
        path = m.latest("spool", "feat", "public.txt")
        os.lstat(path)
        mark = m.mark()
        t0 = time.monotonic()
        for _ in range(200):
            os.lstat(path)
        elapsed = time.monotonic() - t0
        ops = m.ops_since(mark)
        target = os.readlink(os.path.join(m.mp, "snapshots", "latest"))
    finally:
        assert m.stop() == 0
    # snapshots, latest and the set: a LOOKUP each per second at most
    assert ops.get("LOOKUP", 0) <= 3 * (int(elapsed) + 1), (elapsed, ops)
    assert target


def test_requests_come_over_io_uring_where_the_kernel_allows_it(work, btrfs, tree, reference,
                                                                config):
    """Built with libfuse >= 3.18, kolabfs asks for FUSE over io_uring, and
    where the fuse module allows it (enable_uring) every request after
    INIT comes through the rings (libfuse's -d log marks them "cqe"); with
    -o no_io_uring, or without either, through /dev/fuse.  Either way a
    walk and a read of the tree give the snapshot's contents."""
    expected = kfs.io_uring_expected()
    for args, uring in (((), expected), (("-o", "no_io_uring"), False)):
        m = DebugMount(work, config, args=args)
        try:
            got = kfs.walk(m.latest("spool"), xattr=False)
        finally:
            assert m.stop() == 0
        log = open(m.log, "rb").read()
        assert (b"starting io-uring" in log) == uring, (args, log[:3000])
        assert (b"cqe unique:" in log) == uring, args
        kfs.assert_same_tree(kfs.reference_walk(reference["spool"], "spool", xattr=False),
                             got, ("type", "mode", "size", "mtime_ns", "target", "sha256"))


def test_a_refused_passthrough_falls_back_to_reads(work, btrfs, tree):
    """The kernel refuses a backing file on a stacked file system (here a
    copy kept in a state_dir on overlayfs: stack depth 1, kolabfs allows
    0).  The open must not fail: kolabfs warns once, turns passthrough
    off for the mount and serves the file, and every later big file, by
    READ.  Without passthrough built in there is nothing to refuse."""
    passthrough = kfs.passthrough_expected()
    ovl = os.path.join(work, "ovl")
    for d in ("lower", "upper", "work", "merged"):
        os.makedirs(os.path.join(ovl, d))
    kfs.run(["mount", "-t", "overlay", "overlay", "-o",
             "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work" % (ovl, ovl, ovl),
             os.path.join(ovl, "merged")])
    try:
        src = os.path.join(work, "etc-src", "big.conf")
        os.makedirs(os.path.dirname(src))
        data = os.urandom((1 << 20) + 77)
        with open(src, "wb") as f:
            f.write(data)
        spool = os.urandom(1 << 20)
        with open(os.path.join(btrfs.path("spool"), "after.mbox"), "wb") as f:
            f.write(spool)
        config = os.path.join(work, "kolabfs.conf")
        with open(config, "w") as f:
            f.write(kfs.config_text(work, btrfs.mnt, copies=[src],
                                    state_dir=os.path.join(ovl, "merged", "state")))
        m = DebugMount(work, config)
        try:
            copied = [os.path.join(d, f) for d, _, fs in os.walk(m.latest("etc"))
                      for f in fs if f == "big.conf"]
            assert len(copied) == 1, copied
            mark = m.mark()
            for _ in range(2):
                with open(copied[0], "rb") as f:
                    assert f.read() == data
            with open(m.latest("spool", "after.mbox"), "rb") as f:
                assert f.read() == spool
            ops = m.ops_since(mark)
        finally:
            assert m.stop() == 0
        log = open(m.log, "rb").read()
    finally:
        kfs.run(["umount", os.path.join(ovl, "merged")], check=False)
    assert log.count(b"FUSE passthrough refused") == (1 if passthrough else 0), log[-3000:]
    assert ops.get("OPEN", 0) == 3, ops
    assert ops.get("READ", 0) > 0, ops
