"""The ways programs read files: pread at odd offsets, mmap, copy_file_range
(cp), many threads at once; and what that costs the daemon in open fds."""
import errno
import hashlib
import mmap
import os
from concurrent.futures import ThreadPoolExecutor

import kfs

R = ("spool", "feat/random.bin")


def _ref_bytes(reference, vol, rel):
    with open(os.path.join(reference[vol], rel), "rb") as f:
        return f.read()


def test_pread_at_odd_offsets(reference, kolabfs):
    want = _ref_bytes(reference, *R)
    fd = os.open(kolabfs.latest(*R), os.O_RDONLY)
    try:
        for off in (0, 1, 4095, 4096, 131071, 131072, 1 << 20, len(want) - 7, len(want) - 1,
                    len(want), len(want) + 100):
            for n in (1, 7, 4096, 200000):
                assert os.pread(fd, n, off) == want[off:off + n], (off, n)
    finally:
        os.close(fd)


def test_mmap(reference, kolabfs):
    want = _ref_bytes(reference, *R)
    with open(kolabfs.latest(*R), "rb") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert len(m) == len(want)
            assert hashlib.sha256(m).digest() == hashlib.sha256(want).digest()
            assert m[len(want) - 10:] == want[-10:]


def test_copy_file_range_and_cp(work, reference, kolabfs):
    want = _ref_bytes(reference, *R)
    dst = os.path.join(work, "copy-file-range.bin")
    with open(kolabfs.latest(*R), "rb") as src, open(dst, "wb") as out:
        done = 0
        try:
            while done < len(want):
                n = os.copy_file_range(src.fileno(), out.fileno(), len(want) - done)
                if n == 0:
                    break
                done += n
        except OSError as e:
            # cross-filesystem: the kernel may refuse, and the tools fall back
            assert e.errno in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL), e
            done = None
    if done is not None:
        with open(dst, "rb") as f:
            assert f.read() == want
    dst2 = os.path.join(work, "cp.bin")
    kfs.run(["cp", kolabfs.latest(*R), dst2])
    with open(dst2, "rb") as f:
        assert f.read() == want


def test_parallel_readers_agree(reference, kolabfs):
    """The session loop is multi-threaded: 8 readers at once see what one sees."""
    root = kolabfs.latest("spool")
    want = kfs.reference_walk(reference["spool"], "spool", xattr=False)
    files = sorted(r for r, e in want.items() if e["type"] == "file")

    def one(rel):
        return rel, kfs.sha256(os.path.join(root, rel))[0], os.lstat(os.path.join(root, rel)).st_ino

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, files * 2))
    inos = {}
    for rel, sha, ino in got:
        assert sha == want[rel]["sha256"], rel
        assert inos.setdefault(rel, ino) == ino, rel


def test_daemon_keeps_no_fd_per_inode(reference, kolabfs):
    """A 1M-file spool must work under a 20,000 fd limit: looking at ~3,500
    entries, or reading them, must not leave the daemon holding fds."""
    def nfds():
        return len(os.listdir("/proc/%d/fd" % kolabfs.pid))

    base = nfds()
    walked = kfs.walk(kolabfs.latest("spool"))        # lstat + read + xattrs of all
    assert len(walked) > 3000
    assert nfds() - base < 200, "daemon fds grew from %d to %d" % (base, nfds())


def test_statfs_and_mount_options(kolabfs):
    st = os.statvfs(kolabfs.mp)                       # df, and tools that check space
    assert st.f_bsize > 0
    with open("/proc/self/mounts") as f:
        fields = [ln.split() for ln in f if ln.split()[1] == os.path.realpath(kolabfs.mp)]
    assert len(fields) == 1, fields
    assert fields[0][2] == "fuse.kolabfs", fields[0]
    opts = fields[0][3].split(",")
    assert "allow_other" in opts and "default_permissions" in opts, opts
