"""No memory errors and no leaks in the daemon, from mount to unmount.

kolabfs runs in the foreground under valgrind while a backup-like workload
walks, reads, lists xattrs, takes and drops a set and reads /status; after
fusermount3 -u, valgrind must report no error and no definite or indirect
leak.
"""
import os
import subprocess

import kfs


def test_daemon_is_clean_under_valgrind(work, btrfs, tree, config):
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    log = os.path.join(work, "valgrind.log")
    proc = subprocess.Popen(
        ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
         "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
         "--log-file=" + log, kfs.KOLABFS, "-f", config, mp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kfs.wait_until(lambda: kfs.is_mounted(mp) or proc.poll() is not None, 300,
                       "kolabfs under valgrind to mount")
        assert proc.poll() is None, "kolabfs exited: %s" % open(log).read()
        latest = os.path.join(mp, "snapshots", "latest")
        entries = kfs.walk(latest, content=True, xattr=True)
        assert entries, "nothing in the set"
        with open(os.path.join(mp, "status")) as f:
            assert '"sets"' in f.read()
        os.mkdir(os.path.join(mp, "snapshots", "extra"))
        kfs.walk(os.path.join(mp, "snapshots", "extra"), content=False, xattr=False)
        os.rmdir(os.path.join(mp, "snapshots", "extra"))
    finally:
        if kfs.is_mounted(mp):
            kfs.run(["fusermount3", "-u", mp], check=False)
        try:
            rc = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    with open(log) as f:
        report = f.read()
    assert rc == 0, "kolabfs under valgrind exited %d:\n%s" % (rc, report[-6000:])
    assert "definitely lost" not in report and "Invalid" not in report, report[-6000:]
    assert not [s for s in btrfs.subvolumes() if ".kolabfs-snapshots" in s], btrfs.subvolumes()
