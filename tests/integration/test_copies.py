"""[copy:NAME] paths show under <set>/<NAME>/<path without leading slash>
with owner, mode, times and content of the original at snapshot time."""
import os

import kfs


def test_copies_keep_owner_mode_times_content(copy_paths, kolabfs):
    for src in copy_paths:
        shown = kolabfs.latest("etc", src.lstrip("/"))
        want = kfs.walk(src)
        got = kfs.walk(shown)
        kfs.assert_same_tree(want, got, kfs.COPY_FIELDS, links=False)
        kfs.assert_sizes_match(got, shown + "/")


def test_copies_are_taken_at_snapshot_time(copy_paths, kolabfs):
    conf = copy_paths[0]
    with open(conf) as f:
        before = f.read()
    with open(conf, "a") as f:
        f.write("changed after the snapshot\n")
    os.unlink(os.path.join(copy_paths[1], "slapd-kolab", "dse.ldif"))
    with open(kolabfs.latest("etc", conf.lstrip("/"))) as f:
        assert f.read() == before
    assert os.path.isfile(kolabfs.latest("etc", copy_paths[1].lstrip("/"), "slapd-kolab", "dse.ldif"))
    # a new set sees the change
    os.mkdir(kolabfs.path("snapshots", "after"))
    with open(kolabfs.path("snapshots", "after", "etc", conf.lstrip("/"))) as f:
        assert f.read() == before + "changed after the snapshot\n"
