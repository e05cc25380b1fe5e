"""No memory errors and no leaks in the daemon, from mount to unmount.

kolabfs runs in the foreground under valgrind while a backup-like workload
walks, reads, lists xattrs, takes and drops a set and reads /status; after
fusermount3 -u, valgrind must report no error and no definite or indirect
leak.
"""
import os

import kfs


def test_daemon_is_clean_under_valgrind(work, btrfs, tree, config):
    mp = os.path.join(work, "mnt")
    with kfs.UnderValgrind(config, mp, os.path.join(work, "valgrind.log")) as v:
        v.wait_mounted()
        latest = os.path.join(mp, "snapshots", "latest")
        entries = kfs.walk(latest, content=True, xattr=True)
        assert entries, "nothing in the set"
        with open(os.path.join(mp, "status")) as f:
            assert '"sets"' in f.read()
        os.mkdir(os.path.join(mp, "snapshots", "extra"))
        kfs.walk(os.path.join(mp, "snapshots", "extra"), content=False, xattr=False)
        os.rmdir(os.path.join(mp, "snapshots", "extra"))
    report = v.report()
    assert v.rc == 0, "kolabfs under valgrind exited %d:\n%s" % (v.rc, report[-6000:])
    assert "definitely lost" not in report and "Invalid" not in report, report[-6000:]
    assert not [s for s in btrfs.subvolumes() if ".kolabfs-snapshots" in s], btrfs.subvolumes()
