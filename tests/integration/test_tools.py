"""Real backup tools copy snapshots/latest/ out: exit 0, no warnings, and the
copy equals the snapshot (owners, modes, mtimes, content, xattrs/ACLs,
symlinks, special files, hard links)."""
import os

import pytest

import kfs


def _check_copy(kolabfs, reference, copy_paths, dst, drop_sockets):
    for v in kfs.VOLUMES:
        want = kfs.reference_walk(reference[v], v)
        if drop_sockets:
            want = kfs.no_sockets(want)
        kfs.assert_same_tree(want, kfs.walk(os.path.join(dst, v)), kfs.COPY_FIELDS)
    # the generated files come along too, byte for byte
    with open(kolabfs.latest("MANIFEST.json"), "rb") as a, \
         open(os.path.join(dst, "MANIFEST.json"), "rb") as b:
        assert a.read() == b.read()
    copied = kfs.walk(os.path.join(dst, "etc"))
    shown = kfs.walk(kolabfs.latest("etc"))
    # the directories leading to a copied path (tmp/, tmp/kfs-it-*/ ...) are
    # scaffolding: only their type counts.  /tmp's mtime moves all the time,
    # and rsync does not set a directory mtime equal to the second.
    ancestors = {r for r in shown if any(c.lstrip("/").startswith(r + "/") for c in copy_paths)}
    kfs.assert_same_tree(shown, copied, kfs.COPY_FIELDS,
                         skip=lambda r, f: (r == "" or r in ancestors) and f != "type")


@pytest.mark.parametrize("tool", ["rsync", "tar", "restic"])
def test_backup_tool_copies_the_set(tool, work, tree, reference, copy_paths, kolabfs):
    dst = os.path.join(work, "restore-" + tool)
    src = kolabfs.latest()
    if tool == "rsync":
        err = kfs.rsync_copy(src, dst)
    elif tool == "tar":
        err = kfs.tar_copy(src, dst, work)
    else:
        err = kfs.restic_copy(src, dst, work)
    assert err == "", "%s warned:\n%s" % (tool, err)
    # rsync -D recreates sockets; tar and restic leave them out by design
    _check_copy(kolabfs, reference, copy_paths, dst, drop_sockets=(tool != "rsync"))
