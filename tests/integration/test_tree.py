"""What the mount shows is the origin as it was at mount time, entry by entry,
filtered by the presets: nothing more, nothing less, nothing changed."""
import errno
import os
import stat

import pytest

import kfs


def change_origin(mnt):
    """Modify, add and delete files in the origin volumes after the mount."""
    sp, im, my = (os.path.join(mnt, v) for v in kfs.VOLUMES)
    with open(os.path.join(sp, "user/alice/1."), "a") as f:           # modify
        f.write("appended after the snapshot\n")
    with open(os.path.join(sp, "user/alice/10."), "r+b") as f:       # hard-linked, in place
        f.write(b"XXXX")
    os.unlink(os.path.join(sp, "user/bob/2."))                       # delete
    os.unlink(os.path.join(sp, "user/bob/20."))                      # break a link group
    os.makedirs(os.path.join(sp, "user/dave"))                       # add
    with open(os.path.join(sp, "user/dave/1."), "w") as f:
        f.write("new user\n")
    os.rename(os.path.join(sp, "feat/text.txt"), os.path.join(sp, "feat/renamed.txt"))
    os.chmod(os.path.join(sp, "feat/public.txt"), 0o600)
    os.chown(os.path.join(sp, "feat/empty"), kfs.OTHER_UID, kfs.OTHER_GID)
    os.setxattr(os.path.join(sp, "feat/xattrs.txt"), "user.color", b"red")
    os.utime(os.path.join(sp, "feat/binary.bin"), ns=(1, 2))
    os.truncate(os.path.join(sp, "feat/sparse.img"), 1)
    for i in range(0, 3000, 7):
        os.unlink(os.path.join(sp, "many", "%05d." % i))
    os.unlink(os.path.join(im, "mailboxes.db"))
    with open(os.path.join(my, "ibdata1"), "ab") as f:
        f.write(b"more innodb pages")
    os.link(os.path.join(my, "ib_logfile0"), os.path.join(my, "new-link"))


def test_mount_equals_origin_at_mount_time(btrfs, tree, reference, kolabfs):
    change_origin(btrfs.mnt)
    for v in kfs.VOLUMES:
        # the change is real: the origin no longer matches the reference
        assert kfs.diff_trees(kfs.reference_walk(reference[v], v, xattr=False),
                              kfs.reference_walk(btrfs.path(v), v, xattr=False),
                              ("size", "mtime_ns", "mode", "uid"))
        expected = kfs.reference_walk(reference[v], v)
        actual = kfs.walk(kolabfs.latest(v))
        kfs.assert_same_tree(expected, actual, kfs.ALL_FIELDS)
        kfs.assert_sizes_match(actual, v + "/")


def test_preset_names_are_gone_and_near_misses_stay(tree, kolabfs):
    for v in kfs.VOLUMES:
        for rel in tree.hidden[v]:
            p = kolabfs.latest(v, rel)
            with pytest.raises(FileNotFoundError):
                os.lstat(p)
            parent, name = os.path.split(p)
            if os.path.isdir(parent):
                assert name not in os.listdir(parent), "%s/%s listed by readdir" % (v, rel)
        for rel in tree.kept[v]:
            assert os.path.lexists(kolabfs.latest(v, rel)), "near-miss %s/%s hidden" % (v, rel)
        assert ".kolabfs-snapshots" not in os.listdir(kolabfs.latest(v))
        with pytest.raises(FileNotFoundError):
            os.lstat(kolabfs.latest(v, ".kolabfs-snapshots"))


def test_special_files(tree, reference, kolabfs):
    f = lambda rel: kolabfs.latest("spool", "feat", rel)
    assert stat.S_ISSOCK(os.lstat(f("unix.sock")).st_mode)
    assert stat.S_ISFIFO(os.lstat(f("fifo")).st_mode)
    st = os.lstat(f("null-dev"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert os.readlink(f("rel-link")) == "../user/alice/1."
    assert os.readlink(f("abs-link")) == "/etc/hostname"
    assert os.readlink(f("dangling-link")) == "nowhere/missing"
    with open(f("rel-link"), "rb") as fh:          # a relative link resolves inside the set
        assert fh.read().startswith(b"From: ")
    # sparse: full size, few blocks, holes read as zeros
    st = os.stat(f("sparse.img"))
    assert st.st_size == 32 << 20
    assert st.st_blocks * 512 < (1 << 20), "sparse file is not sparse through the mount"
    with open(f("sparse.img"), "rb") as fh:
        fh.seek(10 << 20)
        assert fh.read(17) == b"middle of nowhere"
        fh.seek(5 << 20)
        assert fh.read(4096) == b"\0" * 4096
    assert os.getxattr(f("xattrs.txt"), "user.color") == b"blue"
    assert os.getxattr(f("xattrs.txt"), "user.binary") == b"\x00\x01\x02\xff"
    assert sorted(os.listxattr(f("xattrs.txt"))) == ["user.binary", "user.color"]
    with pytest.raises(OSError) as e:
        os.getxattr(f("xattrs.txt"), "user.nonexistent")
    assert e.value.errno == errno.ENODATA
    acl = kfs.run(["getfacl", "-cpn", f("acl.txt")]).stdout
    assert "user:%d:rw-" % kfs.OTHER_UID in acl
    ref_acl = kfs.run(["getfacl", "-cpn", os.path.join(reference["spool"], "feat/acl.txt")]).stdout
    assert acl == ref_acl
    dacl = kfs.run(["getfacl", "-cpn", f("acl-dir")]).stdout
    assert "default:user:%d:r-x" % kfs.OTHER_UID in dacl
    st = os.lstat(f("other-owner.txt"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (kfs.OTHER_UID, kfs.OTHER_GID, 0o600)
    names = os.listdir(f("names"))
    for n in ("Grüße aus Köln.eml", "name with spaces.txt", "日本語のメール", "emoji ✉ 📬",
              "  leading and trailing  ", "dir with space ü"):
        assert n in names
    with open(os.path.join(f("names"), "dir with space ü", "inner file")) as fh:
        assert fh.read() == "inner"


def test_big_directory_and_deep_chain(tree, kolabfs):
    many = os.listdir(kolabfs.latest(*tree.big_dir))
    assert len(many) == 3000 and len(set(many)) == 3000
    assert sorted(many) == ["%05d." % i for i in range(3000)]
    with open(kolabfs.latest(*tree.deep_leaf)) as fh:
        assert fh.read() == "bottom\n"


def test_hard_links_share_inode_and_count(tree, kolabfs):
    for v, group in tree.links:
        sts = [os.lstat(kolabfs.latest(v, r)) for r in group]
        assert len({s.st_ino for s in sts}) == 1, "%s: %s not one inode" % (v, group)
        assert all(s.st_nlink == len(group) for s in sts), [s.st_nlink for s in sts]


def test_permissions_are_enforced_for_other_users(tree, kolabfs):
    """allow_other + default_permissions: every user sees the tree, and the
    kernel applies each file's own owner/mode/ACL."""
    root_only = kolabfs.latest(*tree.root_only)
    public = kolabfs.latest(*tree.public)
    read = "import sys\ntry:\n open(sys.argv[1]).read(); print('ok')\nexcept OSError as e:\n print(e.errno)"
    nobody = ["runuser", "-u", kfs.NOBODY, "--", "/usr/bin/python3", "-c", read]
    other = ["setpriv", "--reuid=%d" % kfs.OTHER_UID, "--regid=%d" % kfs.OTHER_GID,
             "--clear-groups", "/usr/bin/python3", "-c", read]
    r = lambda cmd, p: kfs.run(cmd + [p]).stdout.strip()
    assert r(nobody, public) == "ok"                        # control: nobody gets in at all
    assert r(nobody, root_only) == str(errno.EACCES)
    with open(root_only) as fh:                             # root can
        assert fh.read() == "root's secret\n"
    owned = kolabfs.latest("spool", "feat", "other-owner.txt")
    assert r(nobody, owned) == str(errno.EACCES)
    assert r(other, owned) == "ok"                          # its owner can
    acl = kolabfs.latest("spool", "feat", "acl.txt")
    assert r(other, acl) == "ok"                            # granted by the ACL only
    assert r(nobody, acl) == str(errno.EACCES)
