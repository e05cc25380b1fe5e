"""idle_timeout and max_age ([kolabfs], kolabfs.conf(5)).

kolabfs runs in the foreground (kfs.Foreground) so that its exit status and
its messages can be checked.  Waits are bounded polls for an end state or a
log line; the only clock readings are lower bounds ("not before"), which
slowness can never break, and the holding of a file for longer than the
timeout, which is what is being tested.
"""
import json
import os
import subprocess
import sys
import time

import pytest

import kfs

IDLE = 2
# Long enough for a test to open a file in the first set after the mount
# appears (the age counts from when the set was begun).
MAX_AGE = 3
FILE = ("spool", "feat", "random.bin")


def _config(work, btrfs, *keys):
    """The standard config with KEYS ("idle_timeout = 2") in [kolabfs]."""
    text = kfs.config_text(work, btrfs.mnt)
    text = text.replace("[kolabfs]\n", "[kolabfs]\n" + "".join(k + "\n" for k in keys), 1)
    path = os.path.join(work, "kolabfs.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def _set_snapshots(btrfs, k, name):
    with open(k.path("snapshots", name, "MANIFEST.json")) as f:
        vols = json.load(f)["volumes"]
    return {os.path.relpath(vols[v]["snapshot"], btrfs.mnt) for v in kfs.VOLUMES}


def _start_holding(work, btrfs, foreground, *keys):
    """kolabfs with KEYS, and a file of its first set held open: (kolabfs,
    the set's name, its snapshots, the descriptor)."""
    k = foreground(_config(work, btrfs, *keys)).start()
    name = os.readlink(k.path("snapshots", "latest"))
    snaps = _set_snapshots(btrfs, k, name)
    return k, name, snaps, os.open(k.path("snapshots", name, *FILE), os.O_RDONLY)


def _records(work):
    d = os.path.join(work, "state", "sets")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _assert_nothing_left(work, btrfs, k, before):
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == before, "snapshots left behind"
    assert _records(work) == [], "records left in state_dir"


# --------------------------------------------------------------------------
# idle_timeout

def test_idle_timeout_waits_for_the_last_open_file_then_tears_down(work, btrfs, tree, foreground):
    before = btrfs.subvolumes()
    k, name, snaps, fd = _start_holding(work, btrfs, foreground, "idle_timeout = %d" % IDLE)
    try:
        # Held for twice idle_timeout: kolabfs must stay and keep serving.
        with pytest.raises(subprocess.TimeoutExpired):
            k.proc.wait(timeout=2 * IDLE)
        assert kfs.is_mounted(k.mp)
        assert os.pread(fd, 16, 0)
        assert snaps <= btrfs.subvolumes()
        assert "idle_timeout" not in k.log(), k.log()
    finally:
        closed = time.monotonic()
        os.close(fd)
    rc = k.wait_exit(60)
    gone = time.monotonic()
    assert rc == 0, k.log()
    # the clock starts at the close, not at the mount
    assert gone - closed >= IDLE, "torn down %.2f s after the last close" % (gone - closed)
    _assert_nothing_left(work, btrfs, k, before)
    log = k.log()
    assert "no file or directory has been open for %d s (idle_timeout): unmounting %s" \
        % (IDLE, os.path.realpath(k.mp)) in log, log
    assert "set %s dropped" % name in log, log
    assert "cannot unmount" not in log, log


def test_idle_timeout_counts_directories_and_status_too(work, btrfs, tree, foreground):
    """An open directory (of a set, or kolabfs's own) and /status are open
    handles too."""
    before = btrfs.subvolumes()
    k = foreground(_config(work, btrfs, "idle_timeout = %d" % IDLE)).start()
    dirs = [os.open(k.path(), os.O_RDONLY | os.O_DIRECTORY),
            os.open(k.path("snapshots", "latest", "spool"), os.O_RDONLY | os.O_DIRECTORY)]
    status = open(k.path("status"))
    handles = [lambda: os.close(dirs[0]), lambda: os.close(dirs[1]), status.close]
    try:
        for close in handles:
            with pytest.raises(subprocess.TimeoutExpired):
                k.proc.wait(timeout=IDLE + 0.5)
            assert kfs.is_mounted(k.mp)
            assert "idle_timeout" not in k.log(), k.log()
            close()
    finally:
        for fd in dirs:
            try:
                os.close(fd)
            except OSError:
                pass
        status.close()
    assert k.wait_exit(60) == 0, k.log()
    _assert_nothing_left(work, btrfs, k, before)


def test_idle_timeout_retries_while_a_working_directory_keeps_the_mount_busy(
        work, btrfs, tree, foreground):
    """No handle is open, but a process sits in the mount: the kernel refuses
    the unmount (as umount(8) would be refused), kolabfs says so and tries
    again after another idle_timeout."""
    before = btrfs.subvolumes()
    k = foreground(_config(work, btrfs, "idle_timeout = %d" % IDLE)).start()
    sitter = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              cwd=k.path("snapshots", "latest"), stdin=subprocess.PIPE)
    try:
        k.wait_log(r"idle_timeout: cannot unmount .*: Device or resource busy; "
                   r"trying again in %d s" % IDLE)
        assert kfs.is_mounted(k.mp) and k.proc.poll() is None
    finally:
        sitter.stdin.close()
        sitter.wait(timeout=30)
    assert k.wait_exit(60) == 0, k.log()
    _assert_nothing_left(work, btrfs, k, before)


# --------------------------------------------------------------------------
# max_age

def test_max_age_drops_a_set_once_its_last_file_is_closed(work, btrfs, tree, foreground):
    before = btrfs.subvolumes()
    k, name, snaps, fd = _start_holding(work, btrfs, foreground, "max_age = %d" % MAX_AGE)
    try:
        k.wait_log(r"set %s is older than max_age \(%d s\), but files or directories are "
                   r"open in it \(1\): it is dropped when the last is closed" % (name, MAX_AGE))
        # expired, and still whole while the file is open
        assert name in os.listdir(k.path("snapshots"))
        assert snaps <= btrfs.subvolumes()
        assert _records(work) == [name]
        assert os.pread(fd, 16, 0)
        assert "set %s dropped" % name not in k.log()
    finally:
        os.close(fd)
    kfs.wait_until(lambda: not snaps & btrfs.subvolumes(), 60, "the expired set's snapshots to go")
    k.wait_log(r"set %s dropped: older than max_age \(%d s\)" % (name, MAX_AGE))
    assert _records(work) == []
    # The mount stays, without sets; a new one can be taken.
    assert k.proc.poll() is None and kfs.is_mounted(k.mp)
    assert os.listdir(k.path("snapshots")) == []
    with open(k.path("status")) as f:
        assert name not in f.read()
    k.cleanup()
    assert k.proc.returncode == 0, k.log()
    _assert_nothing_left(work, btrfs, k, before)


def test_max_age_drops_each_set_at_its_own_age_and_the_mount_stays(work, btrfs, tree, foreground):
    before = btrfs.subvolumes()
    k = foreground(_config(work, btrfs, "max_age = %d" % MAX_AGE)).start()
    first = os.readlink(k.path("snapshots", "latest"))
    # logged once torn down (it leaves the listing first)
    k.wait_log(r"set %s dropped: older than max_age" % first)
    assert first not in os.listdir(k.path("snapshots"))
    assert btrfs.subvolumes() == before
    taken = time.monotonic()
    os.mkdir(k.path("snapshots", "later"))
    snaps = _set_snapshots(btrfs, k, "later")
    assert snaps <= btrfs.subvolumes()
    kfs.wait_until(lambda: "later" not in os.listdir(k.path("snapshots")), 60,
                   "the second set to expire")
    gone = time.monotonic()
    k.wait_log(r"set later dropped: older than max_age")
    assert gone - taken >= MAX_AGE, "dropped %.2f s after mkdir" % (gone - taken)
    assert btrfs.subvolumes() == before
    assert _records(work) == []
    log = k.log()
    for n in (first, "later"):
        assert "set %s dropped: older than max_age (%d s)" % (n, MAX_AGE) in log, log
    assert k.proc.poll() is None and kfs.is_mounted(k.mp)
    k.cleanup()
    assert k.proc.returncode == 0, k.log()
    _assert_nothing_left(work, btrfs, k, before)


def test_max_age_and_idle_timeout_together(work, btrfs, tree, foreground):
    """The only set expires while a file is open in it; once closed, the set
    goes at once and the mount after idle_timeout."""
    before = btrfs.subvolumes()
    k, name, _, fd = _start_holding(work, btrfs, foreground, "max_age = %d" % MAX_AGE,
                                    "idle_timeout = %d" % IDLE)
    try:
        k.wait_log(r"set %s is older than max_age" % name)
        assert kfs.is_mounted(k.mp) and os.pread(fd, 16, 0)
    finally:
        os.close(fd)
    assert k.wait_exit(60) == 0, k.log()
    _assert_nothing_left(work, btrfs, k, before)
    log = k.log()
    dropped = log.index("set %s dropped: older than max_age" % name)
    assert dropped < log.index("(idle_timeout): unmounting"), log


def test_expiry_and_idle_teardown_are_clean_under_valgrind(work, btrfs, tree):
    """The thread's paths (a set dropped by age while a file is open, then
    when it closes; the unmount when idle) with no memory error and no
    definite or indirect leak."""
    config = _config(work, btrfs, "max_age = 4", "idle_timeout = 3")
    mp = os.path.join(work, "mnt")
    with kfs.UnderValgrind(config, mp, os.path.join(work, "valgrind.log"),
                           out=os.path.join(work, "kolabfs.log")) as v:
        v.wait_mounted(lambda: "mounted on" in v.messages())
        os.mkdir(os.path.join(mp, "snapshots", "held"))
        fd = os.open(os.path.join(mp, "snapshots", "held", *FILE), os.O_RDONLY)
        try:
            kfs.wait_until(lambda: "set held is older than max_age" in v.messages(), 120,
                           "the held set to expire")
            assert os.pread(fd, 16, 0)
        finally:
            os.close(fd)
        v.proc.wait(timeout=300)        # idle: it unmounts itself
    log = v.messages
    assert v.rc == 0, "exit %d\n%s\n%s" % (v.rc, log(), v.report()[-6000:])
    assert "set held dropped: older than max_age" in log(), log()
    assert "(idle_timeout): unmounting" in log(), log()
    assert btrfs.subvolumes() == {"spool", "imap", "mysql"}
