"""Mounting takes a set; every way of unmounting tears every set down; a
crash (kill -9) is cleaned up ("reaped") by the next start; mount(8) and
fstab work through mount.fuse3."""
import errno
import os
import signal
import subprocess

import pytest

import kfs


def _start(factory, config, **kw):
    k = factory(config, **kw)
    k.start()
    k.check_started()
    assert os.path.isfile(k.latest("MANIFEST.json"))
    return k


def _snapshots_of(btrfs, k, set_name="latest"):
    m = k.manifest(set_name)
    return {os.path.relpath(m["volumes"][v]["snapshot"], btrfs.mnt) for v in kfs.VOLUMES}


def _assert_gone(btrfs, k, pid, before):
    kfs.wait_until(lambda: not kfs.is_mounted(k.mp), 60, "unmount")
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 60, "kolabfs to exit")
    assert btrfs.subvolumes() == before, "snapshots left behind"
    assert not kfs.kolabfs_pids(k.mp)
    assert not kfs.is_mounted(k.mp)


@pytest.mark.parametrize("how", ["fusermount", "umount", "SIGTERM", "SIGINT", "SIGHUP"])
def test_unmount_tears_every_set_down(how, btrfs, tree, config, kolabfs_factory):
    before = btrfs.subvolumes()
    k = _start(kolabfs_factory, config)
    pid = k.pid
    first = _snapshots_of(btrfs, k)
    os.mkdir(k.path("snapshots", "second"))
    second = _snapshots_of(btrfs, k, "second")
    assert btrfs.subvolumes() == before | first | second and len(first | second) == 6
    if how == "fusermount":
        kfs.run(["fusermount3", "-u", k.mp])
    elif how == "umount":
        kfs.run(["umount", k.mp])
    else:
        os.kill(pid, getattr(signal, how))
    _assert_gone(btrfs, k, pid, before)


@pytest.mark.parametrize("sig,name", [("SIGTERM", "Terminated"), ("SIGINT", "Interrupt"),
                                      ("SIGHUP", "Hangup")])
def test_a_signal_unmounts_like_umount_and_exits_0(sig, name, btrfs, tree, config, work):
    """SIGHUP does not reload: like SIGTERM and SIGINT it unmounts, drops
    every set and, that done, exits 0 (kolabfs(8), SIGNALS)."""
    before = btrfs.subvolumes()
    k = kfs.Foreground(work, config).start()
    try:
        os.mkdir(k.path("snapshots", "second"))
        os.kill(k.pid, getattr(signal, sig))
        rc = k.wait_exit(60)
    finally:
        k.cleanup()
    log = k.log()
    assert rc == 0, log
    assert "%s: unmounting" % name in log, log
    assert "set second dropped" in log, log
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == before
    assert os.listdir(os.path.join(work, "state", "sets")) == []


def test_kill9_then_next_start_reaps(btrfs, tree, config, kolabfs_factory):
    before = btrfs.subvolumes()
    k = _start(kolabfs_factory, config)
    pid, name = k.pid, k.manifest()["name"]
    stale = _snapshots_of(btrfs, k)
    os.kill(pid, signal.SIGKILL)
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 30, "kolabfs to die")
    kfs.run(["fusermount3", "-u", k.mp])          # the dead mount
    assert not kfs.is_mounted(k.mp)
    assert stale <= btrfs.subvolumes(), "kill -9 cannot have removed the snapshots"

    stale_ids = {btrfs.subvolume_ids()[s] for s in stale}
    k2 = _start(kolabfs_factory, config)
    now = btrfs.subvolume_ids()
    # by ID: a set taken in the same second has the same snapshot paths
    assert not stale_ids & set(now.values()), "stale snapshots not reaped: %s" % sorted(stale)
    assert set(now) == before | _snapshots_of(btrfs, k2)
    mentions = [name] + [os.path.join(btrfs.mnt, s) for s in stale] + sorted(stale)
    assert any(x in k2.err for x in mentions), "start did not report the reaping on stderr:\n" + k2.err
    warnings = k2.manifest()["warnings"]
    assert warnings and any(x in w for w in warnings for x in mentions), warnings
    pid2 = k2.pid
    k2.stop()
    _assert_gone(btrfs, k2, pid2, before)


MOUNT_IN_NS = r"""
config=$1 mp=$2 how=$3 fstab=${4:-}
if [ "$how" = fstab ]; then mount -T "$fstab" "$mp"; else mount -t fuse.kolabfs "$config" "$mp"; fi
# mount returns only once the first set exists
test -f "$mp/snapshots/latest/MANIFEST.json" || { echo "no MANIFEST.json right after mount"; exit 10; }
echo "fstype=$(findmnt -n -o FSTYPE --mountpoint "$mp")"
for p in $(pgrep -x kolabfs); do
    tr '\0' ' ' </proc/$p/cmdline | grep -qF -- " $mp " && echo "pid=$p"
done
umount "$mp"
"""


@pytest.mark.parametrize("how", ["mount-t", "fstab"])
def test_mount_helper(how, btrfs, tree, config, work):
    """`mount -t fuse.kolabfs CONFIG MP` and an fstab line (`mount MP`), with
    kolabfs installed where mount.fuse3's shell finds it."""
    before = btrfs.subvolumes()
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    fstab = os.path.join(work, "fstab")
    with open(fstab, "w") as f:
        f.write("# test fstab\n%s %s fuse.kolabfs noauto 0 0\n" % (config, mp))
    p = kfs.with_kolabfs_installed(MOUNT_IN_NS, config, mp, how, fstab)
    assert p.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr)
    out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert out.get("fstype") == "fuse.kolabfs", p.stdout
    assert out.get("pid"), "no kolabfs process found for %s: %s" % (mp, p.stdout)
    pid = int(out["pid"])
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 60, "kolabfs to exit after umount")
    assert btrfs.subvolumes() == before, "snapshots left behind"


def test_config_via_o_option(btrfs, tree, config, kolabfs_factory):
    before = btrfs.subvolumes()
    k = kolabfs_factory(config)
    k.start(cmd=[kfs.KOLABFS, k.mp, "-o", "config=" + config])
    k.check_started()
    assert os.path.isfile(k.latest("MANIFEST.json"))
    pid = k.pid
    k.stop()
    _assert_gone(btrfs, k, pid, before)


def test_second_instance_on_one_state_dir_is_refused(btrfs, tree, config, work, kolabfs_factory):
    """doc/design.md: state_dir/lock, one kolabfs per state_dir."""
    k = _start(kolabfs_factory, config)
    subvols = btrfs.subvolumes()
    k2 = kolabfs_factory(config, mountpoint=os.path.join(work, "mnt2"))
    assert k2.start() != 0
    assert k2.err.strip(), "no message on stderr"
    assert not kfs.is_mounted(k2.mp)
    assert btrfs.subvolumes() == subvols
    assert os.path.isfile(k.latest("MANIFEST.json")), "the first mount was disturbed"
    k.stop()


def _stopped(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return any(l.split()[1:2] == ["T"] for l in f if l.startswith("State:"))
    except FileNotFoundError:
        return False


def test_a_second_kolabfs_does_not_reap_a_first_one_busy_with_its_set(
        btrfs, tree, config, work, kolabfs_factory):
    """The first kolabfs is stopped half-way through its first set: its
    record and its first snapshot look exactly like a crash's leftovers.  A
    second one on the same config (same state_dir, same mountpoint) must
    refuse, name the first, and reap nothing; the first then completes."""
    before = btrfs.subvolumes()
    first = kfs.Foreground(work, config, env={"KOLABFS_TEST_STOP_AT": "snapshot"}).spawn()
    try:
        kfs.wait_until(lambda: _stopped(first.pid) or first.proc.poll() is not None, 120,
                       "the first kolabfs to stop after its first snapshot")
        assert first.proc.poll() is None, first.log()
        live = btrfs.subvolume_ids()
        live = {p: i for p, i in live.items() if p not in before}
        assert len(live) == 1, live
        records = os.listdir(os.path.join(work, "state", "sets"))
        assert len(records) == 1

        second = kolabfs_factory(config)            # the same mountpoint
        assert second.start() != 0
        assert "in use by another kolabfs (pid %d)" % first.pid in second.err, second.err
        assert "reaped" not in second.err, second.err
        assert not kfs.is_mounted(second.mp)
        now = btrfs.subvolume_ids()
        assert all(now.get(p) == i for p, i in live.items()), "the second one reaped the first's"
        assert os.listdir(os.path.join(work, "state", "sets")) == records

        os.kill(first.pid, signal.SIGCONT)
        kfs.wait_until(lambda: os.path.isfile(first.path("snapshots", "latest", "MANIFEST.json"))
                       or first.proc.poll() is not None, 120, "the first kolabfs to mount")
        assert first.proc.poll() is None, first.log()
        m = kfs.Kolabfs(work, config, first.mp).manifest()
        assert m["warnings"] == [], m["warnings"]
        assert {os.path.relpath(v["snapshot"], btrfs.mnt) for v in m["volumes"].values()} \
            == set(btrfs.subvolumes()) - before
        assert set(live) <= set(btrfs.subvolumes())
    finally:
        if first.proc.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
        first.cleanup()
    assert first.proc.returncode == 0, first.log()
    assert btrfs.subvolumes() == before


def test_two_kolabfs_started_at_once_on_one_config(btrfs, tree, config, work):
    """Started together (same config, same mountpoint): one mounts, the
    other refuses with a message naming the state_dir and the winner, and
    the winner's set is complete and untouched.  A few rounds, since the
    order is up to the scheduler."""
    before = btrfs.subvolumes()
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    for round_ in range(3):
        procs = [subprocess.Popen([kfs.KOLABFS, config, mp], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        ok = [r for r in results if r[2] == 0]
        refused = [r for r in results if r[2] != 0]
        assert len(ok) == 1 and len(refused) == 1, results
        err = refused[0][1]
        assert "state_dir %s is in use by another kolabfs (pid " % os.path.join(work, "state") \
            in err, err
        assert "reaped" not in err + ok[0][1], results
        assert kfs.is_mounted(mp)
        k = kfs.Kolabfs(work, config, mp)
        m = k.manifest()
        assert m["warnings"] == [], m["warnings"]
        mine = {os.path.relpath(v["snapshot"], btrfs.mnt) for v in m["volumes"].values()}
        assert set(btrfs.subvolumes()) == before | mine and len(mine) == len(kfs.VOLUMES)
        pids = kfs.kolabfs_pids(mp)
        assert len(pids) == 1, pids
        k.pid = pids[0]
        k.stop()
        assert btrfs.subvolumes() == before, "round %d left snapshots" % round_


def test_start_on_a_missing_mountpoint_fails_cleanly(btrfs, tree, config, work):
    before = btrfs.subvolumes()
    mp = os.path.join(work, "no-such-dir")
    p = kfs.run([kfs.KOLABFS, config, mp], check=False)
    assert p.returncode != 0 and p.stderr.strip()
    assert btrfs.subvolumes() == before
    assert not os.path.exists(mp) and not kfs.is_mounted(mp)
    assert not kfs.kolabfs_pids(mp)


def test_sigterm_with_a_file_open_in_the_mount(btrfs, tree, config, kolabfs_factory):
    """A backup tool still holding a file must not make the snapshots outlive
    the daemon."""
    before = btrfs.subvolumes()
    k = _start(kolabfs_factory, config)
    pid = k.pid
    fd = os.open(k.latest("spool", "feat", "random.bin"), os.O_RDONLY)
    try:
        assert os.read(fd, 10)
        os.kill(pid, signal.SIGTERM)
        kfs.wait_until(lambda: not kfs.pid_alive(pid), 60, "kolabfs to exit")
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    if kfs.is_mounted(k.mp):                     # a lazy unmount may still be pending
        kfs.run(["umount", "-l", k.mp], check=False)
    assert btrfs.subvolumes() == before, "snapshots left behind"


def test_a_file_of_a_dropped_set_reads_estale_not_cached_pages(btrfs, tree, kolabfs):
    """Small files are handed to the kernel's page cache at open, and read
    files stay there (keep_cache): once their set is dropped, a file still
    open must read ESTALE all the same, whether it was read before or not.
    Except a big file the kernel reads by FUSE passthrough: the kernel
    holds the snapshot's file itself, and it reads on, the same bytes,
    until closed (btrfs lets the snapshot go all the same)."""
    passthrough = kfs.passthrough_expected()
    snaps = kolabfs.path("snapshots")
    os.mkdir(os.path.join(snaps, "gone"))
    feat = os.path.join(snaps, "gone", "spool", "feat")
    unread = os.open(os.path.join(feat, "public.txt"), os.O_RDONLY)
    read = os.open(os.path.join(feat, "random.bin"), os.O_RDONLY)
    try:
        before = os.pread(read, 1 << 20, 0)
        assert before
        os.rmdir(os.path.join(snaps, "gone"))
        for fd in (unread, read):
            if fd == read and passthrough:
                assert os.pread(read, 1 << 20, 0) == before
                continue
            try:
                data = os.pread(fd, 1 << 20, 0)
                raise AssertionError("a file of a dropped set read %d bytes" % len(data))
            except OSError as e:
                assert e.errno == errno.ESTALE, e
    finally:
        os.close(unread)
        os.close(read)
    assert "gone" not in os.listdir(snaps)


def test_rmdir_of_a_set_in_use(btrfs, tree, kolabfs):
    """rmdir of a set with a file open in it either refuses (EBUSY) or drops
    the set; either way the daemon lives on and the other set is intact."""
    snaps = kolabfs.path("snapshots")
    os.mkdir(os.path.join(snaps, "busy"))
    subvols = btrfs.subvolumes()
    busy = {os.path.relpath(kolabfs.manifest("busy")["volumes"][v]["snapshot"], btrfs.mnt)
            for v in kfs.VOLUMES}
    fd = os.open(os.path.join(snaps, "busy", "spool", "feat", "random.bin"), os.O_RDONLY)
    try:
        try:
            os.rmdir(os.path.join(snaps, "busy"))
            removed = True
        except OSError as e:
            assert e.errno == errno.EBUSY, e
            removed = False
    finally:
        os.close(fd)
    assert kfs.pid_alive(kolabfs.pid)
    if removed:
        assert "busy" not in os.listdir(snaps)
        assert btrfs.subvolumes() == subvols - busy
    else:
        assert "busy" in os.listdir(snaps)
        assert btrfs.subvolumes() == subvols
        os.rmdir(os.path.join(snaps, "busy"))          # and once closed, it goes
        assert btrfs.subvolumes() == subvols - busy
    with open(kolabfs.latest("spool", "feat", "public.txt")) as f:
        assert f.read() == "anyone may read\n"
