"""st_ino: unique across the mount, shared by hard links, stable from set to
set and from mount to mount (doc/design.md "Inode numbers")."""
import os

import kfs


def _inos(root):
    return {r: e["ino"] for r, e in kfs.walk(root, content=False, xattr=False).items()}


def test_inode_numbers_unique_across_volumes_and_copies(tree, kolabfs):
    owner = {}
    clashes = []
    latest = kolabfs.latest()
    for top in sorted(os.listdir(latest)):
        p = os.path.join(latest, top)
        if os.path.isdir(p) and not os.path.islink(p):
            walked = _inos(p)
        else:
            walked = {"": os.lstat(p).st_ino}
        seen_here = {}
        for r, ino in walked.items():
            seen_here.setdefault(ino, r)
            if ino in owner and owner[ino][0] != top:
                clashes.append("%s/%s and %s/%s: st_ino %d" % (owner[ino] + (top, r, ino)))
        for ino, r in seen_here.items():
            owner.setdefault(ino, (top, r))
    assert set(kfs.VOLUMES) <= set(os.listdir(latest))
    assert not clashes, "\n".join(clashes[:20])


def test_inode_numbers_within_a_volume_follow_the_origin(reference, kolabfs):
    """Two entries share st_ino in the mount iff they do on the snapshot."""
    for v in kfs.VOLUMES:
        ref = kfs.reference_walk(reference[v], v, content=False, xattr=False)
        got = kfs.walk(kolabfs.latest(v), content=False, xattr=False)
        assert kfs.link_groups(ref) == kfs.link_groups(got)
        dirs = [e["ino"] for e in got.values() if e["type"] == "dir"]
        files = {e["ino"] for e in got.values() if e["type"] != "dir"}
        assert len(dirs) == len(set(dirs)) and not set(dirs) & files


def test_same_file_same_inode_in_two_sets(kolabfs):
    first = os.readlink(kolabfs.path("snapshots", "latest"))
    os.mkdir(kolabfs.path("snapshots", "second"))
    m1, m2 = kolabfs.manifest(os.path.basename(first)), kolabfs.manifest("second")
    for v in kfs.VOLUMES:
        assert m1["volumes"][v]["snapshot"] != m2["volumes"][v]["snapshot"]
        a = _inos(kolabfs.path("snapshots", os.path.basename(first), v))
        b = _inos(kolabfs.path("snapshots", "second", v))
        assert a == b


def test_inode_numbers_stable_across_remount(config, tree, kolabfs, kolabfs_factory):
    before = {v: _inos(kolabfs.latest(v)) for v in kfs.VOLUMES}
    kolabfs.stop()
    k2 = kolabfs_factory(config)
    k2.start()
    k2.check_started()
    try:
        for v in kfs.VOLUMES:
            assert _inos(k2.latest(v)) == before[v]
    finally:
        k2.stop()
