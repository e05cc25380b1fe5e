#!/usr/bin/python3
"""Benchmark: kolabfs's file-system paths against the same snapshot read
directly, in the same run (issue 7): tree walks, small-file copy, big
sequential read, how the walk scales with the tree, and set creation.

    /usr/bin/python3 tests/bench/fs_paths.py [--only walk,tar,dd,scale,sets]
        [--files 200000] [--scale-min 20000] [--scale-max 1000000]
        [--big-file-mib 2048] [--rounds 3] [--sets 20] [--no-mysql]
        [--quick] [--dir /var/tmp] [--json FILE] [--keep]
    make bench BENCH=walk           (or tar, dd, scale, sets; comma-separated)

Run as root.  It sets up everything itself and tears it down at the end,
also on failure or SIGINT/SIGTERM/SIGHUP: a loop-file btrfs (in --dir,
default /var/tmp; its free space is checked first and the data scaled down,
with a message, when short) with the volumes spool, imap and mysql, the
data written once into the origin subvolume spool, and the built ./kolabfs
(or $KOLABFS_BUILDDIR/kolabfs) mounted afresh for each workload, so that
the daemon's memory after a walk is its own.

The data, in the spool volume: Cyrus-like spools from
tests/bench/cyrus_spool.py's generator (100 messages per mailbox directory,
log-normal sizes, median 6 kB, 5% hard-linked, plus each mailbox's
cyrus.* files), no fsync: big/part0 with --files files (the walk and tar
source), big/rest with --scale-max minus that (so big/ is the scale
maximum), small/ with --scale-min files, and one --big-file-mib file of
random bytes.

Every workload runs on A = the kolabfs mount
(MOUNTPOINT/snapshots/latest/spool/...) and on B = the baseline, the set's
snapshot subvolume (.kolabfs-snapshots/spool@SET/...) read directly,
alternating A/B, B/A, ... over --rounds rounds.  Cold: `sync; echo 3 >
/proc/sys/vm/drop_caches` before every run (page, dentry and inode caches;
the disk behind the loop file is read); warm: after one untimed run of each
to fill them, and a warm run is done again, after warming both up again,
when another process dropped the caches meanwhile (/proc/vmstat drop_slab;
other benchmarks on a shared machine do).  Each row prints the medians,
baseline/mount of the medians (1.0: as fast as reading the snapshot
directly; higher is better) and of the fastest runs ("best"), against the
goal:

  walk   rsync -a -n SRC/ EMPTY/ and find SRC -printf '%s %T@\\n' on part0,
         cold (goal >= 0.8) and warm (>= 0.95)
  tar    tar -cf - -C SRC . | cat >/dev/null on part0 (a pipe: GNU tar
         does not read the files when the archive is /dev/null), cold and
         warm (>= 0.6)
  dd     dd if=FILE of=/dev/null bs=1M on the big file, cold and warm
         (>= 0.6)
  scale  rsync -a -n on small/ and on big/, cold and warm, each size on a
         fresh mount; goal: the ratio at the maximum is at least 0.9 x the
         ratio at the minimum (the mount's cost per file does not grow by
         more than 10%).  The daemon's VmRSS and VmHWM (/proc/PID/status)
         after every walk through the mount.
  sets   mkdir MOUNTPOINT/snapshots/NAME, --sets times, three btrfs volumes
         (spool, imap, mysql), an idle MariaDB with [mysql] lock = ftwrl
         whose datadir is on the mysql volume (--no-mysql: no [mysql]
         section, so no lock and no lock_hold_ms): p50/p99 of MANIFEST.json's
         mysql.lock_hold_ms and lock_wait_ms, of the mkdir and of the
         rmdir, and the total mkdir time.  The btrfs cleaner is waited for
         (untimed) before every mkdir.  No baseline here:
         tests/bench/mysql_lock.py compares the lock window with the Kolab
         guide's recipe.

--quick shrinks everything about 10x (20,000 files, scale 2,000 to 100,000,
a 256 MiB file, 5 sets) for a smoke run.  --json FILE writes every
measurement.  The LDIF export is tests/bench/ldap.sh (make bench runs it).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)

import cyrus_spool  # noqa: E402  (the spool generator, drop_caches)
import kfs  # noqa: E402
from _common import catch_signals, failure, percentile, teardown  # noqa: E402

WORKLOADS = ("walk", "tar", "dd", "scale", "sets")
GOALS = {("walk", "cold"): 0.8, ("walk", "warm"): 0.95,
         ("tar", "cold"): 0.6, ("tar", "warm"): 0.6,
         ("dd", "cold"): 0.6, ("dd", "warm"): 0.6}
SCALE_GOAL = 0.9                        # ratio(max) >= 0.9 * ratio(min)
MSGS_PER_MAILBOX = 100
# Bytes of loop-file space a spool file takes, all told (data in 4 kB
# blocks, DUP metadata, the mailboxes' cyrus.* files); measured 12-13 kB.
BYTES_PER_FILE = 14_000
SLACK = 2 << 30                         # MariaDB, the cleaner's lag, btrfs's own reserve

# bash scripts, the paths as $1 and $2: nothing is quoted by us
CMDS = {
    "rsync": 'exec rsync -a -n "$1"/ "$2"/',
    "find": 'exec find "$1" -printf "%s %T@\\n" >/dev/null',
    "tar": 'set -o pipefail; tar -cf - -C "$1" . | cat >/dev/null',
    "dd": 'exec dd if="$1" of=/dev/null bs=1M status=none',
}
LABELS = {"rsync": "rsync -a -n", "find": "find -printf", "tar": "tar -cf - | cat",
          "dd": "dd bs=1M"}


log = cyrus_spool.log
drop_caches = cyrus_spool.drop_caches


def spool_shape(files):
    """(messages, mailboxes) for a spool of about `files` files: each mailbox
    also has 4 cyrus.* files."""
    per = MSGS_PER_MAILBOX + 4
    mailboxes = max(1, round(files / per))
    return max(1, files - 4 * mailboxes), mailboxes


def run_timed(script, paths, cold):
    """Run a CMDS script on paths; seconds it took (after dropping the
    caches when cold)."""
    if cold:
        drop_caches()
    t0 = time.monotonic()
    p = subprocess.run(["bash", "-c", script, "bench"] + list(paths), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=4 * 3600)
    dt = time.monotonic() - t0
    if p.returncode:
        raise RuntimeError("%s %s: exit %d: %s" % (script, " ".join(paths), p.returncode,
                                                   p.stderr[-2000:]))
    return dt


def drops():
    """How often anyone wrote /proc/sys/vm/drop_caches (dentries and
    inodes): other engineers' benchmarks on a shared machine do."""
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("drop_slab "):
                return int(line.split()[1])
    return 0


def count_entries(root):
    p = kfs.run(["bash", "-c", 'find "$1" | wc -l', "bench", root], timeout=4 * 3600)
    return int(p.stdout)


def proc_status(pid, keys=("VmRSS", "VmHWM")):
    """{key: kB} from /proc/PID/status."""
    res = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                res[k] = int(v.split()[0])
    return res


# --------------------------------------------------------------------------

class Mount:
    """One kolabfs mount (a fresh daemon) and its first set."""

    def __init__(self, work, conf, tag):
        self.k = kfs.Kolabfs(work, conf, os.path.join(work, "mnt"))
        self.tag = tag

    def start(self):
        t0 = time.monotonic()
        self.k.start(timeout=600)
        self.k.check_started()
        m = self.k.manifest()
        self.set = m["name"]
        self.snap = {v: d["snapshot"] for v, d in m["volumes"].items()}
        log("%s: kolabfs mounted, set %s (%.1f s)" % (self.tag, self.set, time.monotonic() - t0))
        return self

    def a(self, vol, *rel):
        return self.k.latest(vol, *rel)

    def b(self, vol, *rel):
        return os.path.join(self.snap[vol], *rel)

    def status(self):
        return proc_status(self.k.pid)

    def stop(self):
        self.k.stop(timeout=600)


class Bench:
    def __init__(self, args, work, fs):
        self.args, self.work, self.fs = args, work, fs
        self.rounds = args.rounds
        self.empty = os.path.join(work, "empty")
        os.makedirs(self.empty, exist_ok=True)
        self.mount = None
        self.db = None
        self.result = {}

    # ---- data

    def generate(self, need):
        """Write the trees the chosen workloads need into the origin."""
        a = self.args
        self.trees = {}
        spool = self.fs.path("spool")

        def gen(rel, files, seed):
            messages, mailboxes = spool_shape(files)
            t0 = time.monotonic()
            s = cyrus_spool.Spool(os.path.join(spool, rel), messages, mailboxes, seed=seed)
            s.fill()
            log("%s: %d files in %d mailboxes, %.2f GB, in %.0f s"
                % (rel, s.files, mailboxes, s.bytes / 1e9, time.monotonic() - t0))
            self.trees[rel] = {"files": s.files, "mailboxes": mailboxes, "bytes": s.bytes}

        if need & {"walk", "tar", "scale"}:
            gen("big/part0", a.files, 1)
        if "scale" in need:
            if a.scale_max > a.files:
                gen("big/rest", a.scale_max - a.files, 2)
            gen("small", a.scale_min, 3)
            os.chown(os.path.join(spool, "big"), cyrus_spool.CYRUS_UID, cyrus_spool.CYRUS_GID)
            self.trees["big"] = {k: sum(self.trees[t][k] for t in self.trees
                                        if t.startswith("big/"))
                                 for k in ("files", "mailboxes", "bytes")}
        if "dd" in need:
            t0 = time.monotonic()
            path = os.path.join(spool, "bigfile")
            chunk = os.urandom(16 << 20)
            with open(path, "wb") as f:
                for i in range(a.big_file_mib // 16):
                    f.write(i.to_bytes(8, "little") + chunk[8:])
                f.write(chunk[:(a.big_file_mib % 16) << 20])
            self.trees["bigfile"] = {"files": 1, "bytes": os.path.getsize(path)}
            log("bigfile: %d MiB in %.0f s" % (a.big_file_mib, time.monotonic() - t0))
        kfs.run(["btrfs", "filesystem", "sync", self.fs.mnt])
        st = os.statvfs(self.fs.mnt)
        self.result["data"] = {"trees": self.trees,
                               "btrfs_used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize}

    # ---- runs

    def config(self, extra=None):
        conf = os.path.join(self.work, "kolabfs.conf")
        with open(conf, "w") as f:
            f.write(kfs.config_text(self.work, self.fs.mnt, extra=extra))
        return conf

    def start(self, tag, extra=None):
        self.cleaner_sync()
        self.mount = Mount(self.work, self.config(extra), tag).start()
        return self.mount

    def stop(self):
        if self.mount is not None:
            self.mount.stop()
            self.mount = None

    def cleaner_sync(self):
        """Wait until deleted snapshots are gone; the commit first, or the
        cleaner only starts at the next 30 s transaction commit."""
        kfs.run(["btrfs", "filesystem", "sync", self.fs.mnt], timeout=3600)
        kfs.run(["btrfs", "subvolume", "sync", self.fs.mnt], timeout=3600)

    def ab(self, what, cmd, a_paths, b_paths, cold, rss=False):
        """A/B rounds of one command; {"A": [s], "B": [s], "rss": [{..}],
        "redone": n}."""
        script = CMDS[cmd]
        res = {"A": [], "B": [], "redone": 0}
        if rss:
            res["rss"] = []
        caches = "cold" if cold else "warm"
        seen = None
        for r in range(self.rounds):
            for which in ("A", "B") if r % 2 == 0 else ("B", "A"):
                paths = a_paths if which == "A" else b_paths
                if cold:
                    dt = run_timed(script, paths, True)
                else:
                    # warm: again, after warming both up again, when
                    # another process dropped the caches meanwhile
                    for attempt in range(4):
                        if seen != drops():
                            if seen is not None:
                                res["redone"] += 1
                                log("%s: another process dropped the caches; warming up "
                                    "again" % what)
                            run_timed(script, a_paths, False)
                            run_timed(script, b_paths, False)
                            seen = drops()
                        dt = run_timed(script, paths, False)
                        if seen == drops():
                            break
                res[which].append(dt)
                note = ""
                if rss and which == "A":
                    st = self.mount.status()
                    res["rss"].append(st)
                    note = " (daemon VmRSS %d MB, VmHWM %d MB)" % (st["VmRSS"] >> 10,
                                                                 st["VmHWM"] >> 10)
                log("%s %s, %s, %s, round %d: %.2f s%s"
                    % (what, LABELS[cmd], caches, "kolabfs" if which == "A" else "baseline",
                       r + 1, dt, note))
        return res

    def same_tree(self, a_root, b_root):
        """The mount shows as many entries as the snapshot (nothing filtered
        away that the baseline reads)."""
        na, nb = count_entries(a_root), count_entries(b_root)
        if na != nb:
            raise RuntimeError("%s has %d entries, %s %d" % (a_root, na, b_root, nb))
        return na

    def row(self, workload, cmd, caches, res, tree, goal):
        a, b = statistics.median(res["A"]), statistics.median(res["B"])
        r = {"workload": workload, "command": LABELS[cmd], "caches": caches, "tree": tree,
             "mount_s": res["A"], "baseline_s": res["B"], "mount_median": a,
             "baseline_median": b, "ratio": b / a if a else None,
             "ratio_of_minima": min(res["B"]) / min(res["A"]), "goal": goal,
             "warm_runs_redone": res["redone"]}
        if "rss" in res:
            r["rss_kb"] = res["rss"]
        self.result.setdefault("rows", []).append(r)
        return r

    def bench_walk(self):
        m = self.start("walk")
        a, b = m.a("spool", "big", "part0"), m.b("spool", "big", "part0")
        self.result["walk_entries"] = self.same_tree(a, b)
        for cold in (True, False):
            caches = "cold" if cold else "warm"
            for cmd in ("rsync", "find"):
                paths = ((a, self.empty), (b, self.empty)) if cmd == "rsync" else ((a,), (b,))
                res = self.ab("walk", cmd, paths[0], paths[1], cold, rss=True)
                self.row("walk", cmd, caches, res, "big/part0", GOALS[("walk", caches)])
        self.stop()

    def bench_tar(self):
        self.cold_and_warm("tar", "small-file copy", ("big", "part0"))

    def bench_dd(self):
        self.cold_and_warm("dd", "big read", ("bigfile",))

    def cold_and_warm(self, workload, what, rel):
        """One command (CMDS[workload]) on spool/REL, cold and warm, on a
        fresh mount."""
        m = self.start(workload)
        a, b = m.a("spool", *rel), m.b("spool", *rel)
        for caches in ("cold", "warm"):
            res = self.ab(what, workload, (a,), (b,), caches == "cold", rss=True)
            self.row(workload, workload, caches, res, "/".join(rel), GOALS[(workload, caches)])
        self.stop()

    def bench_scale(self):
        for tree in ("small", "big"):
            m = self.start("scale %s" % tree)
            a, b = m.a("spool", tree), m.b("spool", tree)
            for cold in (True, False):
                res = self.ab("scale %s" % tree, "rsync", (a, self.empty), (b, self.empty),
                              cold, rss=True)
                self.row("scale", "rsync", "cold" if cold else "warm", res, tree, None)
            self.stop()

    def bench_sets(self):
        a = self.args
        extra = None
        info = {"volumes": list(kfs.VOLUMES), "sets": a.sets}
        if not a.no_mysql:
            import test_mysql as tm
            from mariadb import MariaDB
            self.db = MariaDB(self.fs.path("mysql", "data"), os.path.join(self.work, "run"))
            log("sets: MariaDB install, start")
            self.db.install()
            self.db.start()
            tm.create_backup_user(self.db)
            pw = tm.write_password(self.work, "mysql.pw", tm.PASSWORD)
            extra = ["[mysql]", "socket = %s" % self.db.socket, "user = kolabfs",
                     "password_file = %s" % pw, "lock = %s" % a.lock,
                     "lock_wait_timeout = 30", ""]
            info["mysql"] = "%s, lock = %s, idle" % (self.db.sql("SELECT VERSION()")[0][0],
                                                     a.lock)
        else:
            info["mysql"] = None
        kfs.run(["btrfs", "filesystem", "sync", self.fs.mnt])
        m = self.start("sets", extra)
        samples = []
        for i in range(a.sets):
            name = "bench-%03d" % i
            self.cleaner_sync()
            t0 = time.monotonic()
            os.mkdir(m.k.path("snapshots", name))
            t_mkdir = time.monotonic() - t0
            man = m.k.manifest(name)
            t0 = time.monotonic()
            os.rmdir(m.k.path("snapshots", name))
            t_rmdir = time.monotonic() - t0
            s = {"mkdir_ms": t_mkdir * 1e3, "rmdir_ms": t_rmdir * 1e3}
            if man.get("mysql") and "lock_hold_ms" in man["mysql"]:
                s["lock_hold_ms"] = man["mysql"]["lock_hold_ms"]
                s["lock_wait_ms"] = man["mysql"]["lock_wait_ms"]
            samples.append(s)
            log("set %s: mkdir %.1f ms, rmdir %.1f ms%s"
                % (name, s["mkdir_ms"], s["rmdir_ms"],
                   ", lock held %.2f ms" % s["lock_hold_ms"] if "lock_hold_ms" in s else ""))
        self.stop()
        if self.db is not None:
            self.db.stop()
            self.db = None
        summary = {}
        for k in ("lock_hold_ms", "lock_wait_ms", "mkdir_ms", "rmdir_ms"):
            v = [s[k] for s in samples if k in s]
            if v:
                summary[k] = {"p50": percentile(v, 50), "p99": percentile(v, 99),
                              "max": max(v), "total": sum(v)}
        self.result["sets"] = {"info": info, "samples": samples, "summary": summary}


# --------------------------------------------------------------------------
# size, space

def data_bytes(files, scale_min, scale_max, big_mib, need):
    n = 0
    if need & {"walk", "tar", "scale"}:
        n += files
    if "scale" in need:
        n += max(0, scale_max - files) + scale_min
    b = n * BYTES_PER_FILE
    if "dd" in need:
        b += big_mib << 20
    return b + SLACK


def fit_to_space(a, need, avail):
    """Scale the data down until it fits in 90% of avail; says what it did."""
    want = data_bytes(a.files, a.scale_min, a.scale_max, a.big_file_mib, need)
    room = int(avail * 0.9)
    if want <= room:
        return want
    orig = (a.files, a.scale_min, a.scale_max, a.big_file_mib)
    while data_bytes(a.files, a.scale_min, a.scale_max, a.big_file_mib, need) > room:
        if "scale" in need and a.scale_max > a.files:
            a.scale_max = max(a.files, int(a.scale_max * 0.8))
        elif a.big_file_mib > 256 and "dd" in need:
            a.big_file_mib //= 2
        elif a.files > 2000:
            a.files = int(a.files * 0.8)
            a.scale_max = max(a.scale_max, a.files)
            a.scale_min = min(a.scale_min, a.files)
        else:
            sys.exit("fs_paths.py: only %.1f GB free in %s, not enough even for a tiny run"
                     % (avail / 1e9, a.dir))
    log("NOTE: only %.1f GB free in %s, the full data needs %.1f GB: scaled down from "
        "--files %d --scale-min %d --scale-max %d --big-file-mib %d to %d %d %d %d"
        % ((avail / 1e9, a.dir, want / 1e9) + orig
           + (a.files, a.scale_min, a.scale_max, a.big_file_mib)))
    return data_bytes(a.files, a.scale_min, a.scale_max, a.big_file_mib, need)


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    lib = "?"
    for line in out(["ldd", kfs.KOLABFS]).splitlines():
        if "libfuse3" in line and "=>" in line:
            lib = os.path.basename(os.path.realpath(line.split("=>")[1].split()[0]))
    commit = out(["git", "-C", kfs.SRCDIR, "describe", "--always", "--dirty"]) or "?"
    return {"kernel": platform.release(), "libfuse": out(["pkg-config", "--modversion", "fuse3"]),
            "libfuse_runtime": lib, "kolabfs": "%s (%s)" % (kfs.KOLABFS, commit),
            "cpus": os.cpu_count(),
            "rsync": out(["rsync", "--version"]).splitlines()[0],
            "tar": out(["tar", "--version"]).splitlines()[0]}


# --------------------------------------------------------------------------
# the table

def fmt_s(v):
    return "%.3f" % v if v < 1 else "%.2f" % v if v < 100 else "%.0f" % v


def print_report(r):
    info = r["info"]
    trees = r["data"]["trees"]
    print()
    print("kolabfs file-system paths: A = the mount (snapshots/latest/spool/...), B = the "
          "baseline, the same snapshot read directly")
    print("kernel %s; libfuse %s (pkg-config fuse3; runs with %s); %d CPUs, load %s at start, "
          "%s at end" % (info["kernel"], info["libfuse"], info["libfuse_runtime"], info["cpus"],
                         info["load_start"], info["load_end"]))
    print("kolabfs %s; %s; %s" % (info["kolabfs"], info["rsync"], info["tar"]))
    print("%d round(s), A/B alternating, medians; cold = sync + drop_caches before each run; "
          "ratio = baseline/mount of the medians (1.00: as fast as the snapshot; higher is "
          "better), best = of the fastest runs; run time %s" % (info["rounds"], info["runtime"]))
    for name, t in sorted(trees.items()):
        if name == "bigfile":
            print("  %-10s one file, %d MiB" % (name, t["bytes"] >> 20))
        else:
            print("  %-10s %d files in %d mailbox directories, %.2f GB"
                  % (name, t["files"], t["mailboxes"], t["bytes"] / 1e9))
    rows = r.get("rows", [])
    if rows:
        print()
        hdr = ("workload", "tree", "caches", "mount s", "baseline s", "ratio", "best", "goal",
               "", "daemon RSS/HWM MB")
        fmt = "%-32s %-11s %-6s %8s %10s %6s %5s %7s %-4s %s"
        print(fmt % hdr)
        scale = {}
        for x in rows:
            goal = x["goal"]
            ok = ""
            if goal is not None:
                ok = "ok" if x["ratio"] >= goal else "MISS"
            rss = ""
            if x.get("rss_kb"):
                rss = "%d/%d" % (max(s["VmRSS"] for s in x["rss_kb"]) >> 10,
                                 max(s["VmHWM"] for s in x["rss_kb"]) >> 10)
            if x["workload"] == "scale":
                scale.setdefault(x["caches"], {})[x["tree"]] = x
            name = {"walk": "tree walk: ", "tar": "small-file copy: ", "dd": "big read: ",
                    "scale": "scale: "}[x["workload"]] + x["command"]
            tree = x["tree"]
            if tree in trees and tree != "bigfile":
                tree = "%dk files" % round(trees[tree]["files"] / 1000)
            print(fmt % (name, tree, x["caches"], fmt_s(x["mount_median"]),
                         fmt_s(x["baseline_median"]), "%.2f" % x["ratio"],
                         "%.2f" % x["ratio_of_minima"],
                         ">= %.2f" % goal if goal is not None else "", ok, rss))
        redone = sum(x["warm_runs_redone"] for x in rows)
        if redone:
            print("(%d warm run(s) redone: another process dropped the caches during them)"
                  % redone)
        for caches, s in scale.items():
            if "small" in s and "big" in s:
                lo, hi = s["small"]["ratio"], s["big"]["ratio"]
                rel = hi / lo
                r.setdefault("scale", {})[caches] = {"ratio_min": lo, "ratio_max": hi,
                                                     "max_over_min": rel}
                print("scale, %s: ratio at %d files %.2f, at %d files %.2f: %+.0f%% "
                      "(goal: no worse than -10%%) %s"
                      % (caches, trees["small"]["files"], lo, trees["big"]["files"], hi,
                         (rel - 1) * 100, "ok" if rel >= SCALE_GOAL else "MISS"))
    if "sets" in r:
        s = r["sets"]
        print()
        print("set creation: %d sets, mkdir MOUNTPOINT/snapshots/NAME then rmdir; volumes %s "
              "(btrfs); MySQL: %s" % (s["info"]["sets"], ", ".join(s["info"]["volumes"]),
                                      s["info"]["mysql"] or "none (--no-mysql: btrfs only, "
                                      "no lock, no lock_hold_ms)"))
        for k, label in (("lock_hold_ms", "lock held (MANIFEST lock_hold_ms)"),
                         ("lock_wait_ms", "lock wait (MANIFEST lock_wait_ms)"),
                         ("mkdir_ms", "mkdir"), ("rmdir_ms", "rmdir")):
            v = s["summary"].get(k)
            if v:
                print("  %-36s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms%s"
                      % (label, v["p50"], v["p99"], v["max"],
                         "  total %.2f s" % (v["total"] / 1e3) if k == "mkdir_ms" else ""))


# --------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help="comma-separated workloads, of %s (default all)" % ",".join(WORKLOADS))
    ap.add_argument("--files", type=int, help="files in the walk/tar spool (default 200000)")
    ap.add_argument("--scale-min", type=int, help="files in the small scale tree (default 20000)")
    ap.add_argument("--scale-max", type=int,
                    help="files in the big scale tree (default 1000000; at least --files)")
    ap.add_argument("--big-file-mib", type=int, help="size of the dd file (default 2048)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds per row (default 3)")
    ap.add_argument("--sets", type=int, help="sets to create (default 20)")
    ap.add_argument("--lock", default="ftwrl", help="[mysql] lock for the sets (default ftwrl)")
    ap.add_argument("--no-mysql", action="store_true",
                    help="sets without MariaDB (btrfs only: no lock_hold_ms)")
    ap.add_argument("--quick", action="store_true",
                    help="about 10x smaller defaults, for a smoke run")
    ap.add_argument("--dir", default="/var/tmp", help="where the work directory and loop "
                    "file go (default /var/tmp)")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    q = a.quick
    for k, full, quick in (("files", 200_000, 20_000), ("scale_min", 20_000, 2_000),
                           ("scale_max", 1_000_000, 100_000), ("big_file_mib", 2048, 256),
                           ("sets", 20, 5)):
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    a.need = set(w.strip() for w in a.only.split(",") if w.strip())
    bad = a.need - set(WORKLOADS)
    if bad:
        ap.error("unknown workload %s (known: %s)" % (", ".join(sorted(bad)), ", ".join(WORKLOADS)))
    if a.scale_max < a.files:
        a.scale_max = a.files
    if a.scale_min > a.scale_max or min(a.files, a.scale_min, a.rounds, a.sets) < 1:
        ap.error("need 1 <= --scale-min <= --scale-max and positive --files, --rounds, --sets")
    return a


def main():
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("fs_paths.py: must run as root (loop devices, btrfs, FUSE, drop_caches)")
    if not os.access(kfs.KOLABFS, os.X_OK):
        sys.exit("fs_paths.py: kolabfs is not built: %s (make, or set KOLABFS_BUILDDIR)"
                 % kfs.KOLABFS)
    try:
        import pwd
        pw = pwd.getpwnam("cyrus")
        cyrus_spool.CYRUS_UID, cyrus_spool.CYRUS_GID = pw.pw_uid, pw.pw_gid
    except KeyError:
        cyrus_spool.CYRUS_UID, cyrus_spool.CYRUS_GID = 106, 8
    catch_signals()

    t_begin = time.monotonic()
    os.makedirs(a.dir, exist_ok=True)
    st = os.statvfs(a.dir)
    avail = st.f_bavail * st.f_frsize
    want = fit_to_space(a, a.need, avail)
    work = tempfile.mkdtemp(prefix="kfs-bench-fs-", dir=a.dir)
    os.chmod(work, 0o755)
    # sparse: only what is written takes space; room to spare so that
    # btrfs's own reserve never makes a write fail
    fs = kfs.Btrfs(work, size="%dM" % (int(want * 1.5) >> 20))
    bench = None
    failed = True
    try:
        log("work dir %s (%.1f GB free); loop btrfs %s (sparse, about %.1f GB to be written)"
            % (work, avail / 1e9, fs.size, want / 1e9))
        fs.setup()
        info = versions()
        info.update({"load_start": " ".join(open("/proc/loadavg").read().split()[:3]),
                     "rounds": a.rounds, "workloads": sorted(a.need),
                     "args": {k: getattr(a, k) for k in ("files", "scale_min", "scale_max",
                                                         "big_file_mib", "sets", "quick")}})
        bench = Bench(a, work, fs)
        bench.result["info"] = info
        bench.generate(a.need)
        for w in WORKLOADS:
            if w in a.need:
                getattr(bench, "bench_" + w)()
        info["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        info["runtime"] = "%.0f s" % (time.monotonic() - t_begin)
        print_report(bench.result)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(bench.result, f, indent=1)
        failed = False
    except (Exception, KeyboardInterrupt) as e:
        failure(e, log, bench and bench.mount and bench.mount.k, bench and bench.db)
    finally:
        if not teardown(work, fs, a.keep, log,
                        bench and bench.mount and bench.mount.k.cleanup,
                        bench and bench.db and bench.db.stop):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
