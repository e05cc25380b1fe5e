"""Self-tests of the harness (no kolabfs): the loop btrfs, the tree builder,
and the reference filter agree with each other.  If these fail, the other
tests' verdicts mean nothing."""
import os

import kfs


def test_btrfs_fixture_has_three_subvolumes(btrfs):
    assert btrfs.subvolumes() == set(kfs.VOLUMES)
    assert kfs.is_mounted(btrfs.mnt)


def test_tree_and_reference_filter_agree(btrfs, tree, reference):
    for v in kfs.VOLUMES:
        full = kfs.walk(reference[v], content=False, xattr=False)
        shown = kfs.reference_walk(reference[v], v, content=False, xattr=False)
        for rel in tree.hidden[v]:
            assert rel in full, "builder did not create %s/%s" % (v, rel)
            assert rel not in shown, "filter keeps %s/%s" % (v, rel)
        for rel in tree.kept[v]:
            assert rel in shown, "filter hides near-miss %s/%s" % (v, rel)
        hidden_found = set(full) - set(shown)
        assert hidden_found <= set(tree.hidden[v]) | {
            r for r in full if any(r.startswith(h + "/") for h in tree.hidden[v])}


def test_two_snapshots_compare_equal(btrfs, tree, reference):
    """The comparator sees two btrfs snapshots of one origin as equal in
    every field the mount is held to (incl. atime, ctime, link groups)."""
    os.mkdir(btrfs.path("again"))
    for v in kfs.VOLUMES:
        btrfs.snapshot_ro(btrfs.path(v), btrfs.path("again", v))
        a = kfs.reference_walk(reference[v], v)
        b = kfs.reference_walk(btrfs.path("again", v), v)
        kfs.assert_same_tree(a, b, kfs.ALL_FIELDS)
    # and it does notice a difference
    a = kfs.walk(reference["spool"])
    b = dict(a)
    b["feat/text.txt"] = dict(b["feat/text.txt"], mtime_ns=1)
    assert kfs.diff_trees(a, b, kfs.ALL_FIELDS)


def _ref_set(btrfs, reference):
    """Walks of the reference snapshots, as a set directory would hold them."""
    return {v: kfs.walk(reference[v]) for v in kfs.VOLUMES}


def test_tools_copy_a_btrfs_tree_faithfully(work, btrfs, tree, reference):
    """Calibrates the tool tests: on a plain btrfs directory, each tool's
    copy passes the same comparison the mount is held to."""
    src = btrfs.path("reference")
    exp = _ref_set(btrfs, reference)
    for tool in ("rsync", "tar", "restic"):
        dst = os.path.join(work, "out-" + tool)
        if tool == "rsync":
            err = kfs.rsync_copy(src, dst)
        elif tool == "tar":
            err = kfs.tar_copy(src, dst, work)
        else:
            err = kfs.restic_copy(src, dst, work)
        assert err == "", "%s: %s" % (tool, err)
        for v in kfs.VOLUMES:
            want = exp[v] if tool == "rsync" else kfs.no_sockets(exp[v])
            got = kfs.walk(os.path.join(dst, v))
            try:
                kfs.assert_same_tree(want, got, kfs.COPY_FIELDS)
            except AssertionError as e:
                raise AssertionError("%s, volume %s: %s" % (tool, v, e)) from None
