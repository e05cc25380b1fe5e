"""contrib/sandbox/kolabfs-sandbox, the README's first command: `up` on a
fresh machine state starts real Cyrus IMAP, MariaDB and 389-ds servers and
mounts kolabfs over them; the set holds the database, the directory's LDIF,
the mail and MANIFEST.json; `down` leaves nothing behind (no mount, no
snapshot, no server process, no loop device); `purge` removes the rest.

The sandbox runs below a directory of the test's own (KFS_SANDBOX_ROOT), on
free ports, so it touches neither /etc, /srv, /mnt nor a sandbox someone
runs on this machine.  Dependencies and the build are the test suite's
(KFS_SKIP_DEPS, KFS_SKIP_BUILD): the sandbox mounts the kolabfs under test
(KOLABFS: this tree's, or KOLABFS_BUILDDIR's, e.g. the sanitizer build).
"""
import imaplib
import json
import os
import pwd
import re
import stat
import subprocess

import pytest

import kfs
from cyrus import free_port

SANDBOX = os.path.join(kfs.SRCDIR, "contrib", "sandbox", "kolabfs-sandbox")
USERS = ("john.doe", "jane.roe", "admin")


class Sandbox:
    def __init__(self, root):
        self.root = root
        self.env = dict(os.environ, KFS_SANDBOX_ROOT=root, KFS_SKIP_DEPS="1",
                        KFS_SKIP_BUILD="1", KOLABFS=kfs.KOLABFS,
                        KFS_SANDBOX_DS_PORT=str(free_port()),
                        KFS_SANDBOX_DS_SECURE_PORT=str(free_port()),
                        KFS_SANDBOX_IMAP_PORT=str(free_port()))
        self.state = os.path.join(root, "var", "lib", "kolabfs-sandbox")
        self.img = os.path.join(self.state, "btrfs.img")
        self.srv = os.path.join(root, "srv", "kolab-sandbox")
        self.mp = os.path.join(root, "mnt", "kolab-backup")
        self.cyrus_pw = os.path.join(root, "etc", "kolabfs", "kolabfs-sandbox-cyrus.pw")

    def __call__(self, command, check=True):
        p = kfs.run([SANDBOX, command], check=False, env=self.env, timeout=600,
                    stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, "kolabfs-sandbox %s failed (%d):\n%s\n%s" % (
                command, p.returncode, p.stdout, p.stderr)
        return p

    def loops(self):
        if not os.path.exists(self.img):
            return []
        return kfs.run(["losetup", "-j", self.img, "-O", "NAME", "-n"]).stdout.split()

    def processes(self):
        """Every live process whose command line names a path of the sandbox."""
        return {pid: kfs.run(["ps", "-o", "args=", "-p", str(pid)], check=False).stdout.strip()
                for pid in kfs.procs_with_arg(self.root)}

    def force_clean(self):
        """What a failed test may leave, by force: processes, mounts, loops."""
        for pid in kfs.procs_with_arg(self.root):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        kfs.wait_until(lambda: not kfs.procs_with_arg(self.root), 30, "sandbox processes to die")
        for t in sorted(kfs.mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", "-l", t], capture_output=True)
        for dev in self.loops():
            subprocess.run(["losetup", "-d", dev], capture_output=True)


@pytest.fixture
def sandbox(work):
    root = os.path.join(work, "root")
    os.mkdir(root)
    os.chmod(root, 0o755)               # mysql, dirsrv and cyrus reach their files
    sb = Sandbox(root)
    try:
        yield sb
    finally:
        p = sb("purge", check=False)
        sb.force_clean()
        assert p.returncode == 0, "purge: %s\n%s" % (p.stdout, p.stderr)


def messages(spool):
    """{path below spool: lstat} of the message files (named "UID.")."""
    res = {}
    for d, dirs, files in os.walk(spool):
        for f in files:
            if re.fullmatch(r"\d+\.", f):
                p = os.path.join(d, f)
                res[os.path.relpath(p, spool)] = os.lstat(p)
    return res


def message_id(path):
    with open(path, "rb") as f:
        m = re.search(rb"(?im)^message-id: (<[^>]*>)", f.read(8192))
    return m.group(1).decode() if m else None


def flags(sb, user):
    """{uid: flags} of user's INBOX, as cyrus-admin logged in for the user."""
    with open(sb.cyrus_pw) as f:
        pw = f.read().strip()
    m = imaplib.IMAP4("127.0.0.1", int(sb.env["KFS_SANDBOX_IMAP_PORT"]), timeout=30)
    try:
        m.authenticate("PLAIN", lambda _: "%s@example.org\0cyrus-admin\0%s" % (user, pw))
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK", data
    finally:
        m.logout()
    return {int(re.search(rb"UID (\d+)", l).group(1)):
            set(re.search(rb"FLAGS \(([^)]*)\)", l).group(1).decode().split()) - {"\\Recent"}
            for l in data}


def test_sandbox_up_and_down(sandbox):
    sb = sandbox
    out = sb("up").stdout
    assert "kolabfs sandbox is up." in out, out
    assert kfs.is_mounted(sb.mp)
    [pid] = kfs.kolabfs_pids(sb.mp)
    kfs.assert_under_test(pid)
    status = sb("status").stdout
    for server in ("cyrus", "mariadb", "389-ds"):
        assert re.search(r"^%s +: pid \d+" % server, status, re.M), status

    latest = os.path.join(sb.mp, "snapshots", "latest")
    name = os.readlink(latest)
    with open(os.path.join(latest, "MANIFEST.json")) as f:
        manifest = json.load(f)
    assert manifest["name"] == name
    assert set(manifest["volumes"]) == {"spool", "imap", "mysql"}
    assert manifest["mysql"]["consistency"] == "locked" and manifest["mysql"]["binlog_position"] > 0
    cyrus_conf = os.path.join(sb.state, "cyrus", "imapd.conf")
    assert cyrus_conf in manifest["copies"]["etc"]
    with open(os.path.join(latest, "etc", cyrus_conf.lstrip("/"))) as f:
        assert "partition-default: %s/spool\n" % sb.srv in f.read()

    # MariaDB: the datadir with the Kolab and Roundcube databases, its binlog
    mysql = os.listdir(os.path.join(latest, "mysql"))
    assert {"kolab", "roundcube", manifest["mysql"]["binlog_file"]} <= set(mysql), mysql

    # 389-ds: the LDIF of userroot, the server's user's, with the mail users
    [ldif] = manifest["ldap"]["ds"]
    assert ldif["backend"] == "userroot" and ldif["entries"] > 40, ldif
    path = os.path.join(latest, "ds", ldif["file"])
    st = os.stat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pwd.getpwnam("dirsrv").pw_uid, 0o600)
    with open(path) as f:
        text = f.read()
    for u in USERS:
        assert "\nmail: %s@example.org\n" % u in text, u

    # Cyrus: every message of the live spool, the one to all users a single
    # file linked from each INBOX; sockets and lock files left out
    spool = messages(os.path.join(latest, "spool"))
    assert spool.keys() == messages(os.path.join(sb.srv, "spool")).keys()
    assert len(spool) >= 20, sorted(spool)
    everybody = [p for p in spool if message_id(os.path.join(latest, "spool", p)) ==
                 "<sandbox-1@example.org>"]
    assert len(everybody) == len(USERS), everybody
    assert len({spool[p].st_ino for p in everybody}) == 1
    assert os.path.exists(os.path.join(sb.srv, "imap", "socket", "lmtp"))
    assert not os.path.exists(os.path.join(latest, "imap", "socket"))
    assert os.path.exists(os.path.join(latest, "imap", "mailboxes.db"))
    inbox = flags(sb, "john.doe")
    assert {"\\Seen", "\\Flagged", "$Label1"} <= inbox[2] and "\\Answered" in inbox[3], inbox
    assert inbox[max(inbox)] == set(), inbox

    out = sb("down")
    assert "sandbox is down" in out.stdout, out.stdout
    assert kfs.mounts_under(sb.root) == []
    assert sb.loops() == []
    assert sb.processes() == {}
    st = sb("status", check=False)
    assert st.returncode != 0 and st.stdout.count("not running") == 3, st.stdout
    # the image: the three volumes, no snapshot (kolabfs deleted its own)
    look = os.path.join(sb.root, "look")
    os.mkdir(look)
    kfs.run(["mount", "-o", "ro,loop", sb.img, look])
    try:
        subvols = kfs.run(["btrfs", "subvolume", "list", look]).stdout
    finally:
        kfs.run(["umount", look])
    assert sorted(l.split(" path ")[1] for l in subvols.splitlines()) == [
        "imap", "mysql", "spool"], subvols
    kfs.wait_until(lambda: sb.loops() == [], 10, "the look's loop device to go")

    sb("purge")
    assert not os.path.exists(sb.state) and not os.path.exists(sb.srv)
    assert not os.path.exists(os.path.join(sb.root, "etc", "dirsrv", "slapd-sandbox"))
