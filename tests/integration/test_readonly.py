"""Everything is read-only (EROFS), except mkdir/rmdir directly under
snapshots/ by root, which take and drop a whole set."""
import errno
import os

import pytest

import kfs

F = "spool/feat/text.txt"           # a regular file in the set
X = "spool/feat/xattrs.txt"


def _open(flags):
    return lambda s: os.close(os.open(os.path.join(s, F), flags))


WRITES = {
    "open-wronly": _open(os.O_WRONLY),
    "open-rdwr": _open(os.O_RDWR),
    "open-trunc": _open(os.O_RDONLY | os.O_TRUNC),
    "open-append": _open(os.O_WRONLY | os.O_APPEND),
    "create": lambda s: os.close(os.open(os.path.join(s, "spool/new"), os.O_CREAT | os.O_WRONLY, 0o644)),
    "create-excl": lambda s: os.close(os.open(os.path.join(s, "spool/feat/new"),
                                              os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)),
    "unlink": lambda s: os.unlink(os.path.join(s, F)),
    "unlink-symlink": lambda s: os.unlink(os.path.join(s, "spool/feat/rel-link")),
    "rename": lambda s: os.rename(os.path.join(s, F), os.path.join(s, "spool/feat/moved")),
    "rename-over": lambda s: os.rename(os.path.join(s, F), os.path.join(s, "spool/feat/empty")),
    "chmod": lambda s: os.chmod(os.path.join(s, F), 0o600),
    "chown": lambda s: os.chown(os.path.join(s, F), 1, 1),
    "utime": lambda s: os.utime(os.path.join(s, F), ns=(1, 1)),
    "truncate": lambda s: os.truncate(os.path.join(s, F), 0),
    "setxattr": lambda s: os.setxattr(os.path.join(s, X), "user.new", b"v"),
    "setxattr-replace": lambda s: os.setxattr(os.path.join(s, X), "user.color", b"red"),
    "removexattr": lambda s: os.removexattr(os.path.join(s, X), "user.color"),
    "mkdir-in-volume": lambda s: os.mkdir(os.path.join(s, "spool/newdir")),
    "rmdir-in-volume": lambda s: os.rmdir(os.path.join(s, "spool/feat/subdir-target")),
    "rmdir-volume": lambda s: os.rmdir(os.path.join(s, "spool")),
    "symlink": lambda s: os.symlink("x", os.path.join(s, "spool/newlink")),
    "hardlink": lambda s: os.link(os.path.join(s, F), os.path.join(s, "spool/feat/newlink")),
    "mkfifo": lambda s: os.mkfifo(os.path.join(s, "spool/newfifo")),
    "write-manifest": lambda s: os.close(os.open(os.path.join(s, "MANIFEST.json"), os.O_WRONLY)),
    "unlink-manifest": lambda s: os.unlink(os.path.join(s, "MANIFEST.json")),
    "create-in-set": lambda s: os.close(os.open(os.path.join(s, "new"), os.O_CREAT | os.O_WRONLY, 0o644)),
    "mkdir-in-set": lambda s: os.mkdir(os.path.join(s, "newdir")),
    "mkdir-in-copy": lambda s: os.mkdir(os.path.join(s, "etc", "x")),
}
TOP = {
    "write-status": lambda m: os.close(os.open(os.path.join(m, "status"), os.O_WRONLY)),
    "unlink-status": lambda m: os.unlink(os.path.join(m, "status")),
    "unlink-latest": lambda m: os.unlink(os.path.join(m, "snapshots", "latest")),
    "symlink-in-snapshots": lambda m: os.symlink("x", os.path.join(m, "snapshots", "mine")),
    "create-in-snapshots": lambda m: os.close(os.open(os.path.join(m, "snapshots", "f"),
                                                      os.O_CREAT | os.O_WRONLY, 0o644)),
    "create-in-root": lambda m: os.close(os.open(os.path.join(m, "f"), os.O_CREAT | os.O_WRONLY, 0o644)),
    "mkdir-in-root": lambda m: os.mkdir(os.path.join(m, "d")),
    "rename-set": lambda m: os.rename(os.path.realpath(os.path.join(m, "snapshots", "latest")),
                                      os.path.join(m, "snapshots", "renamed")),
}


@pytest.mark.parametrize("op", sorted(WRITES))
def test_write_in_set_gets_erofs(op, tree, kolabfs):
    s = os.path.realpath(kolabfs.latest())
    with open(os.path.join(s, F), "rb") as f:
        before = f.read()
    with pytest.raises(OSError) as e:
        WRITES[op](s)
    assert e.value.errno == errno.EROFS, "%s: %s" % (op, e.value)
    with open(os.path.join(s, F), "rb") as f:
        assert f.read() == before
    assert os.getxattr(os.path.join(s, X), "user.color") == b"blue"


@pytest.mark.parametrize("op", sorted(TOP))
def test_write_outside_sets_gets_erofs(op, kolabfs):
    with pytest.raises(OSError) as e:
        TOP[op](kolabfs.mp)
    assert e.value.errno == errno.EROFS, "%s: %s" % (op, e.value)
    assert os.path.isfile(kolabfs.latest("MANIFEST.json"))


def _rel_subvols(btrfs, manifest):
    return {os.path.relpath(manifest["volumes"][v]["snapshot"], btrfs.mnt) for v in kfs.VOLUMES}


def test_mkdir_takes_a_set_rmdir_drops_it(btrfs, kolabfs):
    snaps = kolabfs.path("snapshots")
    first = os.path.basename(os.readlink(os.path.join(snaps, "latest")))
    subvols = btrfs.subvolumes()
    os.mkdir(os.path.join(snaps, "second"))
    assert sorted(os.listdir(snaps)) == sorted([first, "second", "latest"])
    m = kolabfs.manifest("second")
    assert m["name"] == "second"
    assert os.path.basename(os.readlink(os.path.join(snaps, "latest"))) == "second"
    new = _rel_subvols(btrfs, m)
    assert btrfs.subvolumes() == subvols | new and not new & subvols
    for v in kfs.VOLUMES:
        assert os.path.isdir(os.path.join(snaps, "second", v))
    os.rmdir(os.path.join(snaps, "second"))
    assert sorted(os.listdir(snaps)) == sorted([first, "latest"])
    assert not os.path.lexists(os.path.join(snaps, "second"))
    assert btrfs.subvolumes() == subvols
    assert os.path.basename(os.readlink(os.path.join(snaps, "latest"))) == first


def test_mkdir_of_an_existing_name_fails(btrfs, kolabfs):
    subvols = btrfs.subvolumes()
    for name in (os.path.realpath(kolabfs.latest()), kolabfs.path("snapshots", "latest")):
        with pytest.raises(FileExistsError):
            os.mkdir(name)
    assert btrfs.subvolumes() == subvols


def _as_nobody(code):
    p = kfs.run(["runuser", "-u", kfs.NOBODY, "--", "/usr/bin/python3", "-c",
                 "import os, sys\ntry:\n %s\n print('ok')\nexcept OSError as e:\n print(e.errno)" % code])
    return p.stdout.strip()


def test_only_root_takes_and_drops_sets(btrfs, kolabfs):
    snaps = kolabfs.path("snapshots")
    before, subvols = sorted(os.listdir(snaps)), btrfs.subvolumes()
    r = _as_nobody("os.mkdir(%r)" % os.path.join(snaps, "by-nobody"))
    assert r in (str(errno.EPERM), str(errno.EACCES)), r
    assert sorted(os.listdir(snaps)) == before
    assert btrfs.subvolumes() == subvols
    r = _as_nobody("os.rmdir(%r)" % os.path.realpath(kolabfs.latest()))
    assert r in (str(errno.EPERM), str(errno.EACCES)), r
    assert sorted(os.listdir(snaps)) == before
    assert btrfs.subvolumes() == subvols
