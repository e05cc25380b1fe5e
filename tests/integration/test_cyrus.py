"""A real Cyrus IMAP 3.6 mail store, backed up through kolabfs with the tools
administrators use, and the pre/post hook for backup software.

The Cyrus instance (tests/integration/cyrus.py) keeps its spool on the btrfs
subvolume `spool` and its configuration directory on `imap`, which kolabfs
snapshots with the presets cyrus-spool and cyrus-meta.  Mail is delivered
over LMTP (one message to several recipients, so the single-instance store
hard-links the copies) and flagged over IMAP.

- test_backup_tools: rsync -aH, tar and restic copies of the set equal the
  set, hard links included; restic's second run (more mail, the next set)
  reads only what changed: every file the two sets share unchanged (same
  inode number, size, mtime and ctime) is "unmodified" in its summary.
- test_whole_server_restore: Cyrus and MariaDB restored from one set (the
  restic copy) into clean directories; every mailbox, message and flag is
  there, and the database's users are the mail users.
- test_hook_*: contrib/kolabfs-hook --before/--after/--run and their exit
  statuses (0 ok, 1 failed, 2 usage, 3 state).

The losses (a message, a folder, a user, the whole spool) and their
restores are in test_restore_cyrus.py, which runs doc/restore.md's blocks.
"""
import json
import os
import shutil
import signal
import stat
import subprocess

import pytest

import cyrus
import kfs

HOOK = os.path.join(kfs.SRCDIR, "contrib", "kolabfs-hook")


@pytest.fixture
def imap(work, btrfs):
    c = cyrus.Cyrus(os.path.join(work, "cyrus"), btrfs.path("spool"), btrfs.path("imap"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def cyrus_config(work, btrfs, c, volumes=("spool", "imap"), extra=None, name="kolabfs.conf"):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=volumes,
                                copies=[c.conf, c.cyrus_conf], extra=extra))
    return path


def hidden(vol):
    return lambda rel, name, st: kfs.hidden_by_contract(vol, name, st)


def shared_groups(root, store):
    """{message number: [(relpath, st) ...]} for the messages delivered to
    several mailboxes, found by their Message-ID below root (a spool)."""
    groups = {n: [] for n in store.shared}
    for d, dirs, files in os.walk(root):
        for f in files:
            if not f.endswith(".") or not f[:-1].isdigit():
                continue
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                head = fh.read(4096)
            for n in store.shared:
                if b"Message-ID: <kfs-%d@example.org>" % n in head:
                    groups[n].append((os.path.relpath(p, root), os.lstat(p)))
    return groups


def assert_single_instance(root, store, copies):
    """Every shared message is one inode with `copies[n]` links below root."""
    for n, files in shared_groups(root, store).items():
        assert len(files) == copies[n], (root, n, files)
        inos = {st.st_ino for _, st in files}
        assert len(inos) == 1, "message %d: %d inodes below %s: %s" % (n, len(inos), root, files)
        assert all(st.st_nlink == copies[n] for _, st in files), files


def restic_env(work):
    pw = os.path.join(work, "restic.pw")
    if not os.path.exists(pw):
        fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"correct horse battery staple\n")
        os.close(fd)
    env = dict(os.environ, RESTIC_REPOSITORY=os.path.join(work, "restic-repo"),
               RESTIC_PASSWORD_FILE=pw, RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"))
    env.pop("RESTIC_PASSWORD", None)
    return env


def restic_backup(k, work):
    """As the README says: cd into snapshots/latest, back up "."  Returns
    (summary, actions, rchar): restic's JSON summary, {path: (action,
    size)} of its -vv output (action new, modified or unchanged), and the
    bytes restic read in all (/proc/PID/io rchar, read while it is a zombie:
    the set's files it opened, plus its repository's index and cache)."""
    env = restic_env(work)
    out = os.path.join(work, "restic.out")
    with open(out, "w+") as fo:
        p = subprocess.Popen(["bash", "-c", 'cd "$1" && exec restic backup --json -vv .',
                              "restic-backup", k.path("snapshots", "latest")],
                             env=env, stdout=fo, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        with open("/proc/%d/io" % p.pid) as f:
            rchar = int(dict(l.split(": ") for l in f.read().splitlines())["rchar"])
        rc = p.wait()
        fo.seek(0)
        text = fo.read()
    assert rc == 0, text[-3000:]
    summary, actions = None, {}
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        msg = json.loads(line)
        if msg.get("message_type") == "summary":
            summary = msg
        elif msg.get("message_type") == "verbose_status":
            actions[msg["item"]] = (msg["action"], msg.get("data_size", 0))
    assert summary, text[-3000:]
    return summary, actions, rchar


def file_ids(root):
    """{relpath: (ino, size, mtime_ns, ctime_ns)} of the regular files below root."""
    res = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                res[os.path.relpath(p, root)] = (st.st_ino, st.st_size, st.st_mtime_ns,
                                                 st.st_ctime_ns)
    return res


def test_backup_tools(work, btrfs, imap, kolabfs_factory):
    store = cyrus.populate(imap)
    copies = {store.shared[0]: len(cyrus.USERS), store.shared[1]: 3}
    assert_single_instance(btrfs.path("spool"), store, copies)
    k = kolabfs_factory(cyrus_config(work, btrfs, imap))
    k.start()
    k.check_started()
    set1 = os.readlink(k.path("snapshots", "latest"))
    setdir = k.path("snapshots", set1)
    assert_single_instance(os.path.join(setdir, "spool"), store, copies)

    # what the set holds, as the tools must copy it (sockets: none; the
    # presets hid socket/ and the lock files)
    expect = kfs.walk(setdir)
    kfs.assert_sizes_match(expect)
    names = {os.path.basename(r) for r in expect}
    assert "mailboxes.db" in names and "cyrus.index" in names
    assert not [r for r in expect if r.startswith("imap/socket") or ".lock" in r]

    fields = ("type", "mode", "uid", "gid", "size", "mtime_ns", "sha256", "target")
    # rsync does not set a copied directory's mtime when it equals the
    # source's to the second, which it does for a spool filled a moment ago
    # (see kfs.age_tree): directories' mtimes are compared by tar and restic
    dirs_mtime = lambda r, f: f == "mtime_ns" and expect[r]["type"] == "dir"
    # rsync -aH
    dst = os.path.join(work, "rsync")
    kfs.run(["rsync", "-aHAX", "--numeric-ids", setdir + "/", dst + "/"])
    kfs.assert_same_tree(expect, kfs.walk(dst), fields, skip=dirs_mtime)
    assert_single_instance(os.path.join(dst, "spool"), store, copies)
    # tar
    dst = os.path.join(work, "tar")
    err = kfs.tar_copy(setdir, dst, work)
    assert err == "", err
    kfs.assert_same_tree(expect, kfs.walk(dst), fields, skip=lambda r, f: r == "" and f == "mtime_ns")
    assert_single_instance(os.path.join(dst, "spool"), store, copies)

    # restic: first backup of latest
    kfs.run(["restic", "init", "-q"], env=restic_env(work))
    s1, _, _ = restic_backup(k, work)
    nfiles = sum(1 for e in expect.values() if e["type"] == "file")
    assert s1["files_new"] == nfiles and s1["files_unmodified"] == 0, s1

    # more mail, a flag changed: the next set
    before = file_ids(setdir)
    for i in range(3):
        n, msg = store.next("after the first set %d" % i, size=2000)
        imap.deliver([cyrus.addr("max.mustermann")], msg)
    with imap.login(cyrus.addr("john.doe")) as m:
        cyrus.check(m.select("INBOX"))
        cyrus.check(m.uid("STORE", "4", "+FLAGS", "(\\Seen)"))
        m.close()
    os.mkdir(k.path("snapshots", "next"))
    assert os.readlink(k.path("snapshots", "latest")) == "next"
    after = file_ids(k.path("snapshots", "next"))
    same = {r for r in after if before.get(r) == after[r]}
    changed = {r for r in after if r in before and before[r] != after[r]}
    new = set(after) - set(before)
    # Cyrus rewrote only the touched mailboxes' index files and its databases;
    # every message file of the first set is there, unchanged
    msgs = {r for r in before if r.startswith("spool/") and r.endswith(".")}
    assert msgs <= same, sorted(msgs - same)[:10]
    assert len(new) >= 3

    s2, actions, rchar = restic_backup(k, work)
    assert s2["files_unmodified"] == len(same), (s2, len(same))
    assert s2["files_changed"] == len(changed), (s2, sorted(changed))
    assert s2["files_new"] == len(new), (s2, sorted(new))
    # the bytes restic read: those of the new and changed files only
    read = sum(after_size for r, after_size in
               ((r, os.lstat(k.path("snapshots", "next", r)).st_size) for r in changed | new))
    total = sum(v[1] for v in after.values())
    print("restic second backup: %d files unmodified, %d changed, %d new; new and changed "
          "files %d of %d bytes; restic read %d bytes in all (rchar); data_added %d"
          % (s2["files_unmodified"], s2["files_changed"], s2["files_new"], read, total, rchar,
             s2["data_added"]))
    assert read < total / 5
    assert rchar < total / 3, "restic read %d bytes: more than what changed" % rchar

    # restic's copy of the second set: restore and compare
    dst = os.path.join(work, "restic-restore")
    kfs.run(["restic", "restore", "-q", "latest", "--target", dst], env=restic_env(work))
    expect2 = kfs.walk(k.path("snapshots", "next"))
    kfs.assert_same_tree(expect2, kfs.walk(dst), fields,
                         skip=lambda r, f: r == "" and f in ("mtime_ns", "mode"))
    assert_single_instance(os.path.join(dst, "spool"), store, copies)
    k.stop()


# --------------------------------------------------------------------------
# contrib/kolabfs-hook

def hook(work, *args, timeout=300, cwd=None):
    env = dict(os.environ, KOLABFS=kfs.KOLABFS, KOLABFS_HOOK_RUNDIR=os.path.join(work, "hook-run"))
    return kfs.run([HOOK] + list(args), check=False, env=env, timeout=timeout, cwd=cwd or work)


def plain_config(work, btrfs, extra=None, name="kolabfs.conf"):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, extra=extra))
    return path


def assert_clean(work, btrfs, mp):
    """Nothing mounted, no kolabfs, no snapshot, no record."""
    assert not kfs.is_mounted(mp), "%s still mounted" % mp
    assert not kfs.kolabfs_pids(mp), "kolabfs still runs for %s" % mp
    assert btrfs.subvolumes() == set(kfs.VOLUMES), btrfs.subvolumes()
    sets = os.path.join(work, "state", "sets")
    assert not os.path.isdir(sets) or not os.listdir(sets), os.listdir(sets)


def test_hook_before_after(work, btrfs):
    conf = plain_config(work, btrfs)
    mp = os.path.join(work, "mnt")
    os.mkdir(mp)
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 0, p.stderr
    assert kfs.is_mounted(mp)
    name = os.readlink(os.path.join(mp, "snapshots", "latest"))
    assert os.path.isfile(os.path.join(mp, "snapshots", name, "MANIFEST.json"))
    assert "mounted" in p.stdout and name in p.stdout, p.stdout
    pids = kfs.kolabfs_pids(mp)
    assert len(pids) == 1
    kfs.assert_under_test(pids[0])          # the hook ran KOLABFS, not PATH's

    # twice: refused, the mount and its set untouched
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "already mounted" in p.stderr and str(pids[0]) in p.stderr and name in p.stderr, p.stderr
    assert kfs.kolabfs_pids(mp) == pids and os.readlink(os.path.join(mp, "snapshots", "latest")) == name

    p = hook(work, "--after", conf, mp)
    assert p.returncode == 0, p.stderr
    assert "unmounted" in p.stdout and p.stderr == "", (p.stdout, p.stderr)
    assert_clean(work, btrfs, mp)

    # --after when nothing is mounted
    p = hook(work, "--after", mp)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "not mounted" in p.stderr, p.stderr

    # usage errors
    for args in ([], ["--bogus"], ["--before", "a", "b", "c"], ["--run", conf, mp],
                 ["--after", "--timeout", "x"]):
        p = hook(work, *args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("kolabfs-hook:") or p.stderr.startswith("usage:"), p.stderr


@pytest.mark.parametrize("case", ["unknown-key", "no-server", "missing-config"])
def test_hook_before_fails(work, btrfs, case):
    """A broken configuration, or a failure after the snapshots were taken
    (the directory server of an [ldap:NAME] section is unreachable): exit 1,
    kolabfs's message, and nothing mounted or left behind."""
    mp = os.path.join(work, "mnt")
    os.mkdir(mp)
    if case == "unknown-key":
        conf = plain_config(work, btrfs, extra=["[volume:extra]", "backend = btrfs",
                                                "path = %s" % btrfs.path("spool"), "bogus = 1"])
        expect = ["bogus"]
    elif case == "no-server":
        conf = plain_config(work, btrfs, extra=["[ldap:ds]", "uri = ldap://127.0.0.1:9",
                                                "mode = search"])
        expect = ["[ldap:ds]", "ldap://127.0.0.1:9"]
    else:
        conf = os.path.join(work, "nonexistent.conf")
        expect = ["nonexistent.conf"]
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    for e in expect:
        assert e in p.stderr, p.stderr
    assert "nothing is mounted" in p.stderr or case == "missing-config", p.stderr
    assert all(l.startswith("kolabfs-hook: %s: " % mp) for l in p.stderr.splitlines()), p.stderr
    assert_clean(work, btrfs, mp)
    p = hook(work, "--after", conf, mp)
    assert p.returncode == 3, (p.returncode, p.stderr)


def test_hook_busy_crash_leftovers(work, btrfs):
    conf = plain_config(work, btrfs)
    mp = os.path.join(work, "mnt")
    os.mkdir(mp)
    state = os.path.join(work, "state")

    # a process inside the mount: --after fails, names it, keeps the mount
    assert hook(work, "--before", conf, mp).returncode == 0
    sleeper = subprocess.Popen(["sleep", "600"], cwd=os.path.join(mp, "snapshots", "latest"))
    try:
        p = hook(work, "--after", conf, mp)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "busy" in p.stderr and str(sleeper.pid) in p.stderr, p.stderr
        assert kfs.is_mounted(mp) and kfs.kolabfs_pids(mp)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert hook(work, "--after", conf, mp).returncode == 0
    assert_clean(work, btrfs, mp)

    # a snapshot kolabfs cannot delete (something is mounted on it): kolabfs
    # logs it and keeps it recorded; --after lists it and fails
    assert hook(work, "--before", conf, mp).returncode == 0
    name = os.readlink(os.path.join(mp, "snapshots", "latest"))
    snap = btrfs.path(".kolabfs-snapshots", "spool@" + name)
    kfs.run(["mount", "-t", "tmpfs", "none", snap])
    try:
        p = hook(work, "--after", conf, mp)
    finally:
        kfs.run(["umount", snap])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "left behind: snapshot %s" % snap in p.stderr, p.stderr
    assert "cannot destroy snapshot %s" % snap in p.stderr, p.stderr
    assert not kfs.is_mounted(mp)
    # the next --before reaps it, and says so
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 0, p.stderr
    assert "reaped snapshot %s" % snap in p.stderr, p.stderr
    assert hook(work, "--after", conf, mp).returncode == 0
    assert_clean(work, btrfs, mp)

    # kolabfs killed: --before refuses the dead mount, --after cleans it up,
    # reports the crash and the snapshots it left
    assert hook(work, "--before", conf, mp).returncode == 0
    pid = kfs.kolabfs_pids(mp)[0]
    kfs.assert_under_test(pid)
    os.kill(pid, signal.SIGKILL)
    kfs.wait_until(lambda: not kfs.pid_alive(pid), 30, "kolabfs to die")
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 3 and "no kolabfs serves it" in p.stderr, (p.returncode, p.stderr)
    p = hook(work, "--after", conf, mp)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "had died" in p.stderr and "status 137" in p.stderr, p.stderr
    assert p.stderr.count("left behind: snapshot") == len(kfs.VOLUMES), p.stderr
    assert not kfs.is_mounted(mp)
    p = hook(work, "--before", conf, mp)
    assert p.returncode == 0 and p.stderr.count("reaped snapshot") == len(kfs.VOLUMES), p.stderr
    assert hook(work, "--after", conf, mp).returncode == 0
    assert_clean(work, btrfs, mp)


def test_hook_run_and_foreign_mount(work, btrfs, kolabfs_factory):
    conf = plain_config(work, btrfs)
    mp = os.path.join(work, "mnt")
    os.mkdir(mp)
    # --run: the command runs inside the set; then everything is torn down
    p = hook(work, "--run", conf, mp, "--", "sh", "-c", 'echo "cwd=$PWD"; ls')
    assert p.returncode == 0, p.stderr
    assert "cwd=%s/snapshots/latest\n" % mp in p.stdout, p.stdout
    assert "MANIFEST.json" in p.stdout.split() and "spool" in p.stdout.split(), p.stdout
    assert_clean(work, btrfs, mp)
    p = hook(work, "--run", conf, mp, "--", "false")
    assert p.returncode == 1 and "exited with status 1" in p.stderr, (p.returncode, p.stderr)
    assert_clean(work, btrfs, mp)

    # kolabfs mounted without the hook (mount, fstab): --after unmounts it too
    k = kolabfs_factory(conf, mp)
    k.start()
    k.check_started()
    p = hook(work, "--after", mp)
    assert p.returncode == 0, p.stderr
    assert "journalctl -t kolabfs" in p.stderr, p.stderr
    assert_clean(work, btrfs, mp)


def test_hook_is_posix_sh():
    """The hook runs under /bin/sh of any distribution: shellcheck -s sh."""
    p = kfs.run(["shellcheck", "-s", "sh", HOOK], check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_hook_timeout_and_sigterm(work):
    """A kolabfs that never completes its set (here a stand-in that only
    sleeps): --timeout stops it, so does SIGTERM to the hook; exit 1."""
    fake = os.path.join(work, "bin", "kolabfs")
    os.makedirs(os.path.dirname(fake))
    with open(fake, "w") as f:
        f.write("#!/bin/sh\nexec sleep 600\n")
    os.chmod(fake, 0o755)
    conf = os.path.join(work, "kolabfs.conf")
    with open(conf, "w") as f:
        f.write("[kolabfs]\nstate_dir = %s/state\n" % work)
    mp = os.path.join(work, "mnt")
    os.mkdir(mp)
    env = dict(os.environ, KOLABFS=fake, KOLABFS_HOOK_RUNDIR=os.path.join(work, "hook-run"))

    p = kfs.run([HOOK, "--before", conf, mp, "--timeout", "1"], check=False, env=env)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "no complete set after 1 s" in p.stderr and "nothing is mounted" in p.stderr, p.stderr
    assert not kfs.procs_with_arg(fake)

    h = subprocess.Popen([HOOK, "--before", conf, mp], env=env, stderr=subprocess.PIPE, text=True)
    kfs.wait_until(lambda: kfs.procs_with_arg(fake), 30, "the stand-in kolabfs to start")
    h.send_signal(signal.SIGTERM)
    err = h.communicate(timeout=60)[1]
    assert h.returncode == 1 and "interrupted" in err, (h.returncode, err)
    kfs.wait_until(lambda: not kfs.procs_with_arg(fake), 30, "the stand-in kolabfs to stop")
    assert not kfs.is_mounted(mp)
