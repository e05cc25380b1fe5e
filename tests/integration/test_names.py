"""Names and paths that stress backup tools: newlines, tabs, bytes that are
not UTF-8, leading dashes, 255-byte names, paths near and beyond PATH_MAX,
names that look like the presets' excluded names but are not.  Through the
mount they are listed byte for byte, and rsync copies a set exactly; the
reference is a read-only snapshot of each volume read directly.

Trees deeper than PATH_MAX are walked through directory descriptors (as
find and rsync do it one directory at a time): no path argument given to
the kernel is ever longer than PATH_MAX, but kolabfs itself must reach
entries whose path from the volume's root is."""
import errno
import hashlib
import json
import os
import signal
import stat

import pytest

import kfs

PATH_MAX = 4096          # with the NUL: a path argument has at most 4095 bytes
NAME_MAX = 255
T_BASE = 1_400_000_000_111_222_333

# Names (bytes) of files, each also used for a directory holding one file.
ODD_NAMES = [
    b"new\nline", b"\nleading-newline", b"trailing-newline\n", b"two\n\nnewlines",
    b"tab\there", b"\ttab-first", b"carriage\rreturn", b"bell\x07and\x1bescape",
    b"del\x7fchar",
    b"latin1-\xe9t\xe9", b"\xff\xfe", b"broken-\xc3(", b"surrogate-\xed\xa0\x80",
    b"overlong-\xc0\xaf", b"\x80lone-continuation",
    b"-", b"--", b"-rf", b"--delete", b"-e ssh", b"--files-from=x", b"-\n-",
    b" leading space", b"trailing space ", b"*", b"?", b"[a-z]", b"\\", b"'\"`$(x)",
    b"n" * NAME_MAX,
    "é".encode() * 127 + b"x",                       # 255 bytes of UTF-8
    b"\xff" * NAME_MAX,                             # 255 bytes, none of them UTF-8
    b"-" + b"\n" * 253 + b"-",
]

# Like the excluded names of the presets (and the imap volume's exclude
# globs *.tmp;cache/) but not equal: all of these are shown.
NEAR = {
    "spool": {
        "file": [b"cyrus.squat\n", b"\ncyrus.squat", b"cyrus.squat ", b"cyrus.squat\xff",
                 b"Cyrus.squat", b"cyrus.squat\t", b"cyrus.index.NEW\n", b"cyrus.cache.NEW ",
                 b"-cyrus.expunge.NEW"],
        "dir": [b"stage.\n", b"stage. ", b"sync.\t", b"\nsync.", b"stage.\xff", b"Stage."],
    },
    "imap": {
        "file": [b"x.lok\n", b"x.tmp\n", b"x.tmp ", b"x.TMP", b"x.tm\xff"],
        "dir": [b"socket\n", b"socket ", b" socket", b"socket\xff", b"cache\n", b"cache ",
                b"Cache"],
    },
}
# ... and the excluded names themselves, with odd neighbours: hidden.
EQUAL = {
    "spool": {"file": [b"cyrus.squat", b"cyrus.index.NEW"], "dir": [b"stage.", b"sync."]},
    "imap": {"file": [b"x\n.lock", b"-\t.lock\xff", b"\xff.tmp", b"new\nline.tmp"],
             "dir": [b"socket", b"cache"]},
}


# --------------------------------------------------------------------------
# building and walking trees through directory descriptors

def _write_at(dfd, name, data, mode=0o644):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dfd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(name, mode, dir_fd=dfd)


def _mkdir_at(dfd, name, mode=0o755):
    os.mkdir(name, mode, dir_fd=dfd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)


def _open_dir(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def fresh_listdir(dfd):
    """The names in the directory dfd, as bytes, from a new open of it: on
    btrfs a directory opened before entries were added does not list them."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dfd)
    try:
        return sorted(os.fsencode(n) for n in os.listdir(fd))
    finally:
        os.close(fd)


def age_tree_fd(dfd, k=0):
    """Distinct past times on everything below dfd, directories after
    their content (rsync leaves a directory's mtime alone when it matches
    to the second, which a tree made a moment ago would)."""
    for name in fresh_listdir(dfd):
        st = os.lstat(name, dir_fd=dfd)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
            try:
                k = age_tree_fd(sub, k)
            finally:
                os.close(sub)
        k += 1
        os.utime(name, ns=(T_BASE + k * 1_000_003_007, T_BASE - k * 999_983_011),
                 dir_fd=dfd, follow_symlinks=False)
    return k


def _sha256_at(dfd, name):
    h = hashlib.sha256()
    n = 0
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    finally:
        os.close(fd)
    return h.hexdigest(), n


def _xattrs_at(dfd, name):
    # no *xattr call takes a dir_fd: name the entry through /proc
    p = b"/proc/self/fd/%d/%s" % (dfd, name)
    try:
        return {n: os.getxattr(p, n, follow_symlinks=False)
                for n in os.listxattr(p, follow_symlinks=False)}
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise


def walk_fd(dfd, hide=None, xattr=True):
    """{relative path (bytes): attributes} of everything below the
    directory dfd, at any depth: every call names one entry relative to its
    directory's descriptor.  hide(rel, name, st) leaves an entry out."""
    entries = {}

    def rec(d, rel):
        for name in sorted(os.fsencode(n) for n in os.listdir(d)):
            st = os.lstat(name, dir_fd=d)
            r = rel + b"/" + name if rel else name
            if hide and hide(r, name, st):
                continue
            e = kfs._attrs(st)
            if stat.S_ISREG(st.st_mode):
                e["sha256"], e["bytes_read"] = _sha256_at(d, name)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(name, dir_fd=d)
            if xattr:
                e["xattrs"] = _xattrs_at(d, name)
            entries[r] = e
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=d)
                try:
                    rec(sub, r)
                finally:
                    os.close(sub)

    rec(dfd, b"")
    return entries


def walk_path(path, **kw):
    fd = _open_dir(path)
    try:
        return walk_fd(fd, **kw)
    finally:
        os.close(fd)


def contract_hide(vol):
    return lambda rel, name, st: kfs.hidden_by_contract(vol, os.fsdecode(name), st)


def listdir_at(root_fd, rel):
    """os.listdir with bytes of the directory rel below root_fd: by its
    path when the kernel takes it in one piece, else one directory at a time."""
    if len(rel) < PATH_MAX:
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        os.fchdir(root_fd)
        try:
            return sorted(os.listdir(rel or b"."))
        finally:
            os.fchdir(here)
            os.close(here)
    fd = open_below(root_fd, rel)
    try:
        return sorted(os.fsencode(n) for n in os.listdir(fd))
    finally:
        os.close(fd)


def deep_chain(dfd, length, comp=230):
    """Directories below dfd whose path (from dfd) is LENGTH bytes, COMP
    bytes a name; returns (descriptor of the last one, its relative path)."""
    rel = b""
    fd = os.dup(dfd)
    i = 0
    while len(rel) < length:
        room = length - len(rel) - (1 if rel else 0)       # for the next name
        # never leave room for a '/' but no name after it
        n = room if room <= comp else comp - 1 if room == comp + 1 else comp
        name = bytes([ord("a") + i % 26]) * n
        nfd = _mkdir_at(fd, name)
        os.close(fd)
        fd = nfd
        rel = rel + b"/" + name if rel else name
        i += 1
    assert len(rel) == length, (len(rel), length)
    return fd, rel


def open_below(dfd, rel):
    """A descriptor of the directory rel below dfd, one directory at a time."""
    fd = os.dup(dfd)
    for c in rel.split(b"/") if rel else []:
        nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd


# --------------------------------------------------------------------------
# the tree for rsync: odd names everywhere, paths up to what rsync takes

# rsync's own limits (MAXPATHLEN 4096 with the NUL), on any filesystem: a
# file's path from the transfer's root at most 4094 bytes; a directory it
# lists, with the source directory's absolute path before it, at most 4094
# too (rsync 3.5 opens directories by that path).
RSYNC_FILE_PATH = 4094


def rsync_dir_path(src):
    """The longest directory path below SRC that rsync lists, less a margin."""
    return PATH_MAX - 2 - len(src) - 1 - 16


def build_odd_tree(root, deep_dir):
    """Fill volumes spool and imap below root: odd names, near-misses of
    the presets, and in spool a chain of directories DEEP_DIR bytes long
    from the set's root, with a file RSYNC_FILE_PATH bytes long in it.
    Returns the set-relative paths of that directory and that file."""
    long_paths = []
    for vol in ("spool", "imap"):
        top = _open_dir(os.path.join(root, vol))
        try:
            names = _mkdir_at(top, b"names")
            for i, n in enumerate(ODD_NAMES):
                _write_at(names, n, b"content of " + n + b"\n", 0o600 if i % 2 else 0o644)
            dirs = _mkdir_at(names, b"dirs")
            for n in ODD_NAMES:
                d = _mkdir_at(dirs, n, 0o750)
                _write_at(d, n, b"inside " + n)
                os.symlink(b"../" + n, b"link-" + n[:NAME_MAX - 5], dir_fd=d)
                os.close(d)
            os.close(dirs)
            # a hard link pair with odd names (rsync -H keeps it)
            os.link(ODD_NAMES[0], b"-hard\nlink", src_dir_fd=names, dst_dir_fd=names)
            os.mkfifo(b"fifo\n-", dir_fd=names)
            os.setxattr(b"/proc/self/fd/%d/%s" % (names, ODD_NAMES[1]), "user.odd", b"\n\xff")
            os.close(names)
            near = _mkdir_at(top, b"near")
            for kind, table in (("near", NEAR), ("equal", EQUAL)):
                for n in table[vol]["file"]:
                    _write_at(near, n, b"%s file %s" % (kind.encode(), n))
                for n in table[vol]["dir"]:
                    d = _mkdir_at(near, n)
                    _write_at(d, b"inner", b"%s dir %s" % (kind.encode(), n))
                    os.close(d)
            os.close(near)
            if vol == "spool":
                # set-relative: "spool/" + path; the longest rsync copies
                prefix = len(b"spool/")
                fd, rel = deep_chain(top, deep_dir - prefix)
                leaf = b"f" * (RSYNC_FILE_PATH - prefix - len(rel) - 1)
                _write_at(fd, leaf, b"at the bottom\n")
                os.close(fd)
                long_paths = [b"spool/" + rel, b"spool/" + rel + b"/" + leaf]
            age_tree_fd(top)
        finally:
            os.close(top)
    return long_paths


def _config(work, mnt, volumes):
    path = os.path.join(work, "kolabfs.conf")
    with open(path, "w") as f:
        f.write(kfs.config_text(work, mnt, volumes=volumes))
    return path


def _reference(btrfs, volumes):
    refdir = btrfs.path("reference")
    os.mkdir(refdir)
    refs = {}
    for v in volumes:
        refs[v] = os.path.join(refdir, v)
        btrfs.snapshot_ro(btrfs.path(v), refs[v])
    return refs


MOUNT_FIELDS = ("type", "mode", "uid", "gid", "size", "nlink", "mtime_ns", "rdev",
                "target", "sha256", "xattrs")
RSYNC_FIELDS = ("type", "mode", "uid", "gid", "size", "mtime_ns", "rdev", "target", "sha256")


def _assert_same(expected, actual, fields, what):
    d = kfs.diff_trees(expected, actual, fields)
    ge, ga = kfs.link_groups(expected), kfs.link_groups(actual)
    d += ["link group missing: %r" % sorted(g) for g in ge - ga]
    d += ["link group unexpected: %r" % sorted(g) for g in ga - ge]
    assert not d, "%s differs from the reference:\n  %s" % (what, "\n  ".join(d[:40]))


@pytest.fixture
def odd(work, btrfs, kolabfs_factory):
    vols = ("spool", "imap")
    k = kolabfs_factory(_config(work, btrfs.mnt, vols))
    long_paths = build_odd_tree(btrfs.mnt, rsync_dir_path(k.latest()))
    refs = _reference(btrfs, vols)
    k.start()
    k.check_started()
    yield k, refs, long_paths
    k.stop()


def test_odd_names_are_listed_byte_for_byte(odd):
    k, refs, long_paths = odd
    set_fd = _open_dir(k.latest())
    try:
        for vol, ref in refs.items():
            want = walk_path(ref, hide=contract_hide(vol))
            vol_fd = os.open(vol, os.O_RDONLY | os.O_DIRECTORY, dir_fd=set_fd)
            try:
                got = walk_fd(vol_fd)
            finally:
                os.close(vol_fd)
            _assert_same(want, got, MOUNT_FIELDS, "the mount's %s" % vol)
            kfs.assert_sizes_match(got, vol + "/")
            # every directory listed by os.listdir(bytes), exactly
            for rel in [b""] + [r for r, e in want.items() if e["type"] == "dir"]:
                expected = sorted(r.rsplit(b"/", 1)[-1] for r in want
                                  if r and r.rpartition(b"/")[0] == rel)
                path = vol.encode() + (b"/" + rel if rel else b"")
                assert listdir_at(set_fd, path) == expected, path[:200]
        # the odd names and the near-misses are there; the equal ones not
        names = listdir_at(set_fd, b"spool/names")
        assert set(ODD_NAMES) <= set(names)
        for vol in refs:
            listed = set(listdir_at(set_fd, vol.encode() + b"/near"))
            assert set(NEAR[vol]["file"] + NEAR[vol]["dir"]) <= listed, vol
            assert not set(EQUAL[vol]["file"] + EQUAL[vol]["dir"]) & listed, vol
            for n in EQUAL[vol]["file"] + EQUAL[vol]["dir"]:
                with pytest.raises(FileNotFoundError):
                    os.lstat(b"%s/near/%s" % (vol.encode(), n), dir_fd=set_fd)
        # the longest paths, given whole (relative to the set: < PATH_MAX)
        d, f = long_paths
        assert len(f) == RSYNC_FILE_PATH
        assert stat.S_ISDIR(os.lstat(d, dir_fd=set_fd).st_mode)
        fd = os.open(f, os.O_RDONLY, dir_fd=set_fd)
        try:
            assert os.read(fd, 100) == b"at the bottom\n"
        finally:
            os.close(fd)
        # a name longer than NAME_MAX is ENAMETOOLONG, as on the snapshot,
        # in kolabfs's own directories too
        for base in (k.latest("spool"), k.latest("spool", "names"), refs["spool"],
                     k.path(), k.path("snapshots"), k.latest()):
            with pytest.raises(OSError) as e:
                os.lstat(os.path.join(base, "x" * (NAME_MAX + 1)))
            assert e.value.errno == errno.ENAMETOOLONG, base
    finally:
        os.close(set_fd)


@pytest.mark.parametrize("how", ["plain", "from0"])
def test_rsync_copies_odd_names_exactly(how, odd, work):
    k, refs, _ = odd
    src = k.latest()
    dst = os.path.join(work, "copy-" + how)
    if how == "plain":
        p = kfs.run(["rsync", "-aH", src + "/", dst + "/"], check=False)
    else:
        # the file list through a pipe, NUL-separated: names with newlines
        # survive only this way
        lst = kfs.run(["find", ".", "-mindepth", "1", "-printf", "%P\\0"], cwd=src,
                      text=False, check=False)
        assert lst.returncode == 0, lst.stderr
        assert lst.stdout.count(b"\0") > 100
        os.makedirs(dst)
        p = kfs.run(["rsync", "-aH", "--from0", "--files-from=-", "./", dst + "/"],
                    cwd=src, input=lst.stdout, text=False, check=False)
    assert p.returncode == 0, "rsync exit %d: %s" % (p.returncode, p.stderr)
    assert not p.stderr, p.stderr
    for vol, ref in refs.items():
        want = walk_path(ref, hide=contract_hide(vol), xattr=False)
        got = walk_path(os.path.join(dst, vol), xattr=False)
        # rsync sets no time on the volume's top directory for --files-from
        want.pop(b"", None)
        got.pop(b"", None)
        _assert_same(want, got, RSYNC_FIELDS, "rsync's copy (%s) of %s" % (how, vol))
    with open(os.path.join(src, "MANIFEST.json"), "rb") as a, \
         open(os.path.join(dst, "MANIFEST.json"), "rb") as b:
        assert a.read() == b.read()


# --------------------------------------------------------------------------
# deeper than PATH_MAX inside a volume

DEEP_PATH = 3 * PATH_MAX + 123      # from the volume's root to the bottom directory
AT_SET_MAX = PATH_MAX - 1 - len(b"mysql/")      # 4095 bytes from the set's root
# path lengths of the files left on the way (from the volume's root)
MARKS = (PATH_MAX - 200, AT_SET_MAX, PATH_MAX + 50, 2 * PATH_MAX, DEEP_PATH + 40)


def build_deep_tree(root):
    """In the mysql volume: a chain of directories DEEP_PATH bytes long,
    and at chosen path lengths (from the volume's root) a file, a symlink
    and a hard link to it, an xattr, a pid file the preset hides and a
    near-miss it does not: one just short of PATH_MAX, one exactly 4095
    bytes from the set's root, the others beyond.  Returns the chain's
    path and {length: path of the file}."""
    top = _open_dir(os.path.join(root, "mysql"))
    marks = {}
    try:
        fd, rel = deep_chain(top, DEEP_PATH)
        os.close(fd)
        comps = rel.split(b"/")
        ends = [len(b"/".join(comps[:i + 1])) for i in range(len(comps))]
        for want in MARKS:
            # the deepest directory leaving a name of 16 to 246 bytes
            i = max(j for j, e in enumerate(ends) if e <= want - 17)
            parent = b"/".join(comps[:i + 1])
            name = (b"leaf-%d-" % want).ljust(want - len(parent) - 1, b"x")
            fd = open_below(top, parent)
            try:
                _write_at(fd, name, b"depth %d\n" % want)
                os.symlink(b"../" + comps[i], name[:-1] + b"L", dir_fd=fd)
                os.setxattr(b"/proc/self/fd/%d/%s" % (fd, name), "user.depth", b"%d" % want)
                os.link(name, name[:-1] + b"H", src_dir_fd=fd, dst_dir_fd=fd)
                if b"mysqld.pid" not in fresh_listdir(fd):
                    _write_at(fd, b"mysqld.pid", b"4242\n")        # hidden by the preset
                    _write_at(fd, b"mysqld.pid\n", b"kept\n")       # not quite: shown
            finally:
                os.close(fd)
            marks[want] = parent + b"/" + name
            assert len(marks[want]) == want
        age_tree_fd(top)
    finally:
        os.close(top)
    return rel, marks


@pytest.fixture
def deep(work, btrfs, kolabfs_factory):
    rel, marks = build_deep_tree(btrfs.mnt)
    refs = _reference(btrfs, ("mysql",))
    k = kolabfs_factory(_config(work, btrfs.mnt, ("mysql",)))
    k.start()
    k.check_started()
    yield k, refs, rel, marks
    k.stop()


def test_deeper_than_path_max(deep):
    k, refs, rel, marks = deep
    assert len(rel) > 3 * PATH_MAX
    vol_fd = _open_dir(k.latest("mysql"))
    try:
        # first straight down, each directory looked up by name (no listing
        # before it), opened, and the entries at each mark read
        fd = os.dup(vol_fd)
        here = b""
        try:
            for c in rel.split(b"/"):
                nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nfd
                here = here + b"/" + c if here else c
                for depth, path in marks.items():
                    parent, _, name = path.rpartition(b"/")
                    if parent != here:
                        continue
                    st = os.lstat(name, dir_fd=fd)
                    assert stat.S_ISREG(st.st_mode) and st.st_nlink == 2, path[-80:]
                    rfd = os.open(name, os.O_RDONLY, dir_fd=fd)
                    try:
                        assert os.read(rfd, 100) == b"depth %d\n" % depth
                    finally:
                        os.close(rfd)
                    assert os.readlink(name[:-1] + b"L", dir_fd=fd) == b"../" + parent.rsplit(b"/", 1)[-1]
                    assert os.getxattr(b"/proc/self/fd/%d/%s" % (fd, name), "user.depth") == \
                        b"%d" % depth
                    assert os.lstat(name[:-1] + b"H", dir_fd=fd).st_ino == st.st_ino
                    with pytest.raises(FileNotFoundError):
                        os.lstat(b"mysqld.pid", dir_fd=fd)
                    assert os.lstat(b"mysqld.pid\n", dir_fd=fd)
        finally:
            os.close(fd)
        # then the whole tree against the snapshot read directly
        want = walk_path(refs["mysql"], hide=contract_hide("mysql"))
        got = walk_fd(vol_fd)
        assert max(len(r) for r in got) > 3 * PATH_MAX
        _assert_same(want, got, MOUNT_FIELDS, "the mount's mysql")
        kfs.assert_sizes_match(got, "mysql/")
        # the listing of the deepest directory, and of the one exactly
        # PATH_MAX - 1 bytes from the set's root
        for path in (rel, marks[AT_SET_MAX].rpartition(b"/")[0]):
            expected = sorted(r.rsplit(b"/", 1)[-1] for r in want
                              if r.rpartition(b"/")[0] == path)
            assert expected and listdir_at(vol_fd, path) == expected
    finally:
        os.close(vol_fd)
    # the set's root gives the exactly PATH_MAX - 1 bytes long path whole
    set_fd = _open_dir(k.latest())
    try:
        p = b"mysql/" + marks[AT_SET_MAX]
        assert len(p) == PATH_MAX - 1
        assert os.lstat(p, dir_fd=set_fd).st_size == len(b"depth %d\n" % AT_SET_MAX)
        with pytest.raises(OSError) as e:       # one more byte: the kernel refuses it
            os.lstat(p + b"x", dir_fd=set_fd)
        assert e.value.errno == errno.ENAMETOOLONG
    finally:
        os.close(set_fd)


# --------------------------------------------------------------------------
# names too long: lookups anywhere, and sets whose snapshot name would be

FUSE_NAME_MAX = 1024        # the longest name the kernel passes to kolabfs


def test_too_long_names_are_enametoolong(work, btrfs, tree, config, foreground):
    k = foreground(config).start()
    snaps = k.path("snapshots")
    first = os.path.realpath(k.path("snapshots", "latest"))
    state_sets = os.path.join(work, "state", "sets")
    # Lookups: kolabfs answers names up to FUSE_NAME_MAX itself, the kernel
    # longer ones; both as a file system would, in every kind of directory.
    for base in (k.path(), snaps, first, os.path.join(first, "spool"),
                 os.path.join(first, "etc"), os.path.join(first, "spool", "user")):
        assert os.path.isdir(base), base
        for n in (NAME_MAX + 1, FUSE_NAME_MAX, FUSE_NAME_MAX + 1):
            with pytest.raises(OSError) as e:
                os.lstat(os.path.join(base, "x" * n))
            assert e.value.errno == errno.ENAMETOOLONG, (base, n)
    # A set name longer than NAME_MAX, and set names that are file names
    # but whose snapshot "VOLUME@NAME" is not: the longest volume name here
    # is 5 bytes, so 249 is the longest set name that fits.
    longest = max(len(v) for v in kfs.VOLUMES)
    fits = NAME_MAX - longest - 1
    before = (sorted(os.listdir(snaps)), btrfs.subvolumes(), sorted(os.listdir(state_sets)))
    for n in (NAME_MAX + 1, NAME_MAX, fits + 1):
        with pytest.raises(OSError) as e:
            os.mkdir(os.path.join(snaps, "s" * n))
        assert e.value.errno == errno.ENAMETOOLONG, n
        # nothing half-made: no set, no snapshot, no state, no record
        assert (sorted(os.listdir(snaps)), btrfs.subvolumes(),
                sorted(os.listdir(state_sets))) == before, n
    log = k.log()
    assert "with this volume a set name may have at most %d bytes" % fits in log
    assert "cannot destroy" not in log and "reap" not in log
    # one byte less is a set like any other
    name = "s" * fits
    os.mkdir(os.path.join(snaps, name))
    with open(os.path.join(snaps, name, "MANIFEST.json")) as f:
        assert json.load(f)["name"] == name
    assert os.path.basename(os.readlink(os.path.join(snaps, "latest"))) == name
    assert len(btrfs.subvolumes()) == len(before[1]) + len(kfs.VOLUMES)
    os.rmdir(os.path.join(snaps, name))
    assert (sorted(os.listdir(snaps)), btrfs.subvolumes(),
            sorted(os.listdir(state_sets))) == before
    os.kill(k.pid, signal.SIGTERM)
    assert k.wait_exit() == 0, k.log()
