#!/usr/bin/python3
"""Benchmark: copying a large Cyrus spool through kolabfs (issue 6, "Measure
it"): rsync -a of the mount against rsync -a of the same btrfs snapshot read
directly, in the same run; and restic's second backup, of the next set.

    /usr/bin/python3 tests/bench/cyrus_spool.py [--messages 100000] [--mailboxes 1000]
                                               [--rounds 3] [--no-cold] [--no-restic]
                                               [--json FILE] [--keep]
    make bench                                  (runs every tests/bench/*.py)

Run as root.  It sets up everything itself and tears it down at the end,
also on failure or SIGINT/SIGTERM: a loop-file btrfs with the volumes spool
and imap, the spool filled, the built ./kolabfs (or
$KOLABFS_BUILDDIR/kolabfs) mounted with the cyrus-spool preset, a tmpfs for
the copies and the restic repository.

The spool is written directly in Cyrus 3.6's layout, not delivered over
LMTP (100,000 LMTP deliveries would take the run's whole time budget):
uuid/X/Y/<24-character mailbox id>/ with one file `UID.` per message, and
cyrus.header, cyrus.index, cyrus.cache and cyrus.annotations per mailbox,
sized like Cyrus's (index 160 + 104 bytes per message, cache about 600).
Message sizes are log-normal (median 6 kB, about 10 kB on average, at most
2 MB), random (incompressible) bodies; 5% of the messages are "list mail"
delivered to 4 mailboxes, hard-linked as by the single-instance store.
Times are in the past, as on a real spool.

rsync: each round copies the set's spool twice into an empty tmpfs
directory, A = the kolabfs mount (MOUNTPOINT/snapshots/latest/spool/), B =
the set's snapshot subvolume (.kolabfs-snapshots/spool@SET) read directly,
the order alternating from round to round (A/B, B/A, ...).  Cold: the page,
dentry and inode caches are dropped before each copy (the disk behind the
loop file is read); warm: after one copy of each to fill them.

restic: a first backup of the set (cd MOUNTPOINT/snapshots/latest && restic
backup .), then 1% more mail (new messages in 10% of the mailboxes, their
index and cache files rewritten, as Cyrus does) and a second set (mkdir
MOUNTPOINT/snapshots/next), and the second backup.  Bytes read: restic's
read() total (/proc/PID/io rchar, taken while it is a zombie): the set's
files it opened, plus its repository's index and the parent snapshot's
trees; beside it the size of the new and changed files, and restic's own
summary (files new/changed/unmodified, data_added).
"""
import argparse
import base64
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import kfs  # noqa: E402
from _common import catch_signals, failure, teardown  # noqa: E402

CYRUS_UID = CYRUS_GID = None
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
T_BASE = 1_700_000_000                  # "three years ago"


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the spool

class Spool:
    def __init__(self, root, n_messages, n_mailboxes, seed=1):
        self.root = root
        self.rng = random.Random(seed)
        self.n_messages = n_messages
        self.ids = []
        self.uids = {}          # mailbox id -> last UID
        self.bytes = 0
        self.files = 0
        self.n_mailboxes = n_mailboxes
        self.msg_no = 0
        # one pool of random bytes; each message is a slice of it, so that
        # generating a GB costs no more than writing it
        self.pool = base64.b64encode(os.urandom(3 << 20))

    def mailbox_dir(self, mid):
        return os.path.join(self.root, "uuid", mid[0], mid[1], mid)

    def size(self):
        s = int(self.rng.lognormvariate(8.7, 1.0))          # median e^8.7 = 6 kB
        return max(600, min(s, 2 << 20))

    def message(self, size):
        self.msg_no += 1
        head = ("Return-Path: <sender@example.org>\r\nFrom: Sender <sender@example.org>\r\n"
                "To: someone@example.org\r\nSubject: message %d\r\n"
                "Message-ID: <bench-%d@example.org>\r\nDate: Mon, 27 Nov 2023 04:30:00 +0000\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
                % (self.msg_no, self.msg_no)).encode()
        body = max(0, size - len(head))
        off = self.rng.randrange(0, len(self.pool) - body - 1) if body < len(self.pool) else 0
        data = self.pool[off:off + body]
        while len(data) < body:
            data += self.pool[:body - len(data)]
        return head + data

    def write(self, path, data, t):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chown(path, CYRUS_UID, CYRUS_GID)
        os.utime(path, (t, t))
        self.files += 1
        self.bytes += len(data)

    def meta(self, mid, n, t):
        """cyrus.header/index/cache/annotations for a mailbox of n messages."""
        d = self.mailbox_dir(mid)
        self.write(os.path.join(d, "cyrus.header"),
                   b"\xa1\x02\x8b\x0dCyrus mailbox header\n" + mid.encode() + b"\n" * 4 +
                   b"x" * 100, t)
        self.write(os.path.join(d, "cyrus.index"), b"I" * (160 + 104 * n), t)
        self.write(os.path.join(d, "cyrus.cache"), self.pool[:600 * n + 4], t)
        self.write(os.path.join(d, "cyrus.annotations"), b"A" * 336, t)

    def new_id(self):
        return "".join(self.rng.choice(ALPHABET) for _ in range(24))

    def fill(self):
        per = self.n_messages // self.n_mailboxes
        extra = self.n_messages - per * self.n_mailboxes
        t = T_BASE
        for i in range(self.n_mailboxes):
            mid = self.new_id()
            self.ids.append(mid)
            d = self.mailbox_dir(mid)
            os.makedirs(d, exist_ok=True)
            self.uids[mid] = 0
        # hard-linked "list mail": 5% of the messages, each in 4 mailboxes
        slots = {mid: per + (1 if i < extra else 0) for i, mid in enumerate(self.ids)}
        linked = int(self.n_messages * 0.05) // 4
        for _ in range(linked):
            boxes = self.rng.sample(self.ids, 4)
            boxes = [b for b in boxes if slots[b] > 0]
            if not boxes:
                continue
            t += 37
            first = None
            for b in boxes:
                self.uids[b] += 1
                slots[b] -= 1
                p = os.path.join(self.mailbox_dir(b), "%d." % self.uids[b])
                if first is None:
                    self.write(p, self.message(self.size()), t)
                    first = p
                else:
                    os.link(first, p)
                    self.files += 1
        for mid in self.ids:
            d = self.mailbox_dir(mid)
            for _ in range(slots[mid]):
                t += 37
                self.uids[mid] += 1
                self.write(os.path.join(d, "%d." % self.uids[mid]), self.message(self.size()), t)
            self.meta(mid, self.uids[mid], t)
        self.age()

    def more_mail(self, fraction=0.01, box_fraction=0.1):
        """New messages in some mailboxes, their index and cache rewritten."""
        boxes = self.rng.sample(self.ids, max(1, int(len(self.ids) * box_fraction)))
        n = max(1, int(self.n_messages * fraction))
        t = int(time.time()) - 60
        for i in range(n):
            mid = boxes[i % len(boxes)]
            self.uids[mid] += 1
            self.write(os.path.join(self.mailbox_dir(mid), "%d." % self.uids[mid]),
                       self.message(self.size()), t)
        for mid in boxes:
            self.meta(mid, self.uids[mid], t)
        return n, len(boxes)

    def age(self):
        for d, dirs, files in os.walk(self.root):
            os.chown(d, CYRUS_UID, CYRUS_GID)
            os.utime(d, (T_BASE, T_BASE))


# --------------------------------------------------------------------------
# measurements

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def rsync_once(src, dst, cold):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    if cold:
        drop_caches()
    t0 = time.monotonic()
    kfs.run(["rsync", "-a", src.rstrip("/") + "/", dst + "/"], timeout=3600)
    dt = time.monotonic() - t0
    shutil.rmtree(dst)
    return dt


def rsync_rounds(a_src, b_src, tmp, rounds, cold):
    res = {"A": [], "B": []}
    if not cold:            # fill the caches once through each path
        rsync_once(a_src, os.path.join(tmp, "warmup"), False)
        rsync_once(b_src, os.path.join(tmp, "warmup"), False)
    for r in range(rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for which in order:
            src = a_src if which == "A" else b_src
            dt = rsync_once(src, os.path.join(tmp, "copy"), cold)
            res[which].append(dt)
            log("rsync -a %s, %s, round %d: %.2f s" % ("cold" if cold else "warm",
                                                     "kolabfs" if which == "A" else "snapshot",
                                                     r + 1, dt))
    return res


def restic_backup(cwd, env):
    """restic backup --json . in cwd (a shell's cd, so PWD is the logical
    path).  Returns (summary, rchar, seconds)."""
    out = os.path.join(os.path.dirname(env["RESTIC_CACHE_DIR"]), "restic.out")
    t0 = time.monotonic()
    with open(out, "w+") as fo:
        p = subprocess.Popen(["bash", "-c", 'cd "$1" && exec restic backup --json .',
                              "restic", cwd], env=env, stdout=fo, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        dt = time.monotonic() - t0
        with open("/proc/%d/io" % p.pid) as f:
            rchar = int(dict(l.split(": ") for l in f.read().splitlines())["rchar"])
        rc = p.wait()
        fo.seek(0)
        text = fo.read()
    if rc != 0:
        raise RuntimeError("restic backup failed (%d): %s" % (rc, text[-2000:]))
    summary = None
    for line in text.splitlines():
        if line.startswith("{") and '"summary"' in line:
            summary = json.loads(line)
    return summary, rchar, dt


def file_ids(root):
    res = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            res[os.path.relpath(os.path.join(d, f), root)] = (st.st_ino, st.st_size,
                                                              st.st_mtime_ns, st.st_ctime_ns)
    return res


def mb(n):
    return "%.1f MB" % (n / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--mailboxes", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds per cache state (default 3)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-cache rounds")
    ap.add_argument("--no-restic", action="store_true", help="skip the restic part")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("cyrus_spool.py: must run as root (loop devices, btrfs, FUSE)")
    if not os.access(kfs.KOLABFS, os.X_OK):
        sys.exit("cyrus_spool.py: kolabfs is not built: %s" % kfs.KOLABFS)
    global CYRUS_UID, CYRUS_GID
    try:
        import pwd
        pw = pwd.getpwnam("cyrus")
        CYRUS_UID, CYRUS_GID = pw.pw_uid, pw.pw_gid
    except KeyError:
        CYRUS_UID, CYRUS_GID = 106, 8
    catch_signals()

    t_begin = time.monotonic()
    work = tempfile.mkdtemp(prefix="kfs-bench-cyrus-", dir="/tmp")
    os.chmod(work, 0o755)
    est = args.messages * 11_000
    fs = kfs.Btrfs(work, size="%dM" % max(1024, int(est * 2.5 / 1e6) + 512))
    tmp = os.path.join(work, "tmpfs")
    k = None
    tmpfs_mounted = False
    failed = True
    result = {}
    try:
        log("work dir %s; loop btrfs %s" % (work, fs.size))
        fs.setup()
        os.makedirs(tmp)
        kfs.run(["mount", "-t", "tmpfs", "-o", "size=%dM,mode=0755" % (int(est * 2.5 / 1e6) + 512),
                 "kfs-bench", tmp])
        tmpfs_mounted = True
        log("writing %d messages in %d mailboxes (Cyrus 3.6 layout, directly)"
            % (args.messages, args.mailboxes))
        t0 = time.monotonic()
        spool = Spool(fs.path("spool"), args.messages, args.mailboxes)
        spool.fill()
        kfs.run(["btrfs", "filesystem", "sync", fs.mnt])
        log("spool: %d files, %s, in %.0f s" % (spool.files, mb(spool.bytes), time.monotonic() - t0))
        conf = os.path.join(work, "kolabfs.conf")
        with open(conf, "w") as f:
            f.write(kfs.config_text(work, fs.mnt, volumes=("spool", "imap")))
        k = kfs.Kolabfs(work, conf, os.path.join(work, "mnt"))
        k.start()
        k.check_started()
        set1 = os.readlink(k.path("snapshots", "latest"))
        a_src = k.path("snapshots", "latest", "spool")
        b_src = fs.path(".kolabfs-snapshots", "spool@" + set1)
        assert os.path.isdir(b_src), b_src
        info = {"kernel": platform.release(), "cpus": os.cpu_count(),
                "loadavg": open("/proc/loadavg").read().split()[:3],
                "messages": args.messages, "mailboxes": args.mailboxes,
                "files": spool.files, "bytes": spool.bytes, "rounds": args.rounds,
                "rsync": subprocess.run(["rsync", "--version"], capture_output=True,
                                        text=True).stdout.splitlines()[0]}
        result["info"] = info
        result["rsync"] = {}
        for cold in ([True] if not args.no_cold else []) + [False]:
            name = "cold" if cold else "warm"
            log("rsync -a, %s caches: %d rounds, A/B alternating" % (name, args.rounds))
            result["rsync"][name] = rsync_rounds(a_src, b_src, tmp, args.rounds, cold)

        if not args.no_restic:
            env = dict(os.environ, RESTIC_REPOSITORY=os.path.join(tmp, "restic-repo"),
                       RESTIC_PASSWORD="kolabfs bench", RESTIC_CACHE_DIR=os.path.join(tmp, "rc"))
            kfs.run(["restic", "init", "-q"], env=env)
            log("restic: first backup of set %s" % set1)
            s1, rchar1, dt1 = restic_backup(k.path("snapshots", "latest"), env)
            before = file_ids(k.path("snapshots", "latest"))
            n_new, n_boxes = spool.more_mail()
            kfs.run(["btrfs", "filesystem", "sync", fs.mnt])
            os.mkdir(k.path("snapshots", "next"))
            after = file_ids(k.path("snapshots", "next"))
            changed = [r for r in after if r in before and before[r] != after[r]]
            new = [r for r in after if r not in before]
            touched = sum(after[r][1] for r in changed + new)
            total = sum(v[1] for v in after.values())
            log("restic: second backup, of set next (%d new messages in %d mailboxes)"
                % (n_new, n_boxes))
            s2, rchar2, dt2 = restic_backup(k.path("snapshots", "latest"), env)
            result["restic"] = {"first": {"summary": s1, "rchar": rchar1, "seconds": dt1},
                                "second": {"summary": s2, "rchar": rchar2, "seconds": dt2,
                                           "new_messages": n_new, "mailboxes": n_boxes,
                                           "changed_files": len(changed), "new_files": len(new),
                                           "bytes_new_and_changed": touched,
                                           "bytes_in_set": total}}
        k.stop()
        k = None
        info["runtime"] = "%.0f s" % (time.monotonic() - t_begin)
        print_report(result)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        failed = False
    except (Exception, KeyboardInterrupt) as e:
        failure(e, log, k)
    finally:
        if not teardown(work, fs, args.keep, log, k.cleanup if k is not None else None,
                        (lambda: subprocess.run(["umount", tmp], capture_output=True))
                        if tmpfs_mounted else None):
            failed = True
    return 1 if failed else 0


def print_report(r):
    info = r["info"]
    print()
    print("Cyrus spool through kolabfs: %d messages in %d mailboxes, %d files, %s "
          "(written directly in Cyrus 3.6's layout, not delivered over LMTP)"
          % (info["messages"], info["mailboxes"], info["files"], mb(info["bytes"])))
    print("kernel %s, %d CPUs, load %s at start; %s; run time %s"
          % (info["kernel"], info["cpus"], " ".join(info["loadavg"]), info["rsync"],
             info["runtime"]))
    print()
    print("rsync -a of the spool into tmpfs, %d rounds, A/B alternating:" % info["rounds"])
    print("  %-6s %-28s %-28s %s" % ("caches", "A: kolabfs mount (median)",
                                     "B: snapshot directly (median)", "A/B"))
    for name, res in r["rsync"].items():
        a, b = statistics.median(res["A"]), statistics.median(res["B"])
        print("  %-6s %-28s %-28s %.2f" % (
            name, "%.2f s (%s)" % (a, " ".join("%.2f" % x for x in res["A"])),
            "%.2f s (%s)" % (b, " ".join("%.2f" % x for x in res["B"])), a / b))
    if "restic" in r:
        f, s = r["restic"]["first"], r["restic"]["second"]
        ss = s["summary"]
        print()
        print("restic backup . in MOUNTPOINT/snapshots/latest:")
        print("  first  (set 1):  %d files new; read %s (rchar) in %.1f s; data_added %s"
              % (f["summary"]["files_new"], mb(f["rchar"]), f["seconds"],
                 mb(f["summary"]["data_added"])))
        print("  second (set 2 = set 1 + %d new messages in %d mailboxes): files %d new, "
              "%d changed, %d unmodified"
              % (s["new_messages"], s["mailboxes"], ss["files_new"], ss["files_changed"],
                 ss["files_unmodified"]))
        print("           read %s (rchar: the files it opened, plus its repository index and "
              "the parent's trees) of %s in the set; new and changed files: %s; "
              "data_added %s; %.1f s"
              % (mb(s["rchar"]), mb(s["bytes_in_set"]), mb(s["bytes_new_and_changed"]),
                 mb(ss["data_added"]), s["seconds"]))


if __name__ == "__main__":
    sys.exit(main())
