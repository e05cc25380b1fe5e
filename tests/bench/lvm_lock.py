#!/usr/bin/python3
"""Benchmark: the MySQL lock window of a kolabfs set with an LVM volume,
against the Kolab guide's recipe, measured in the same guest run (issue 5,
"Measure it").

    /usr/bin/python3 tests/bench/lvm_lock.py [--sets 6] [--writers 4]
                                            [--kinds classic,thin] [--json FILE]
    make bench                                (runs every tests/bench/*.py)

Run as root on this machine: the kernel here has no device-mapper, so the
script boots the test guest (tests/vm/guest.py, about a minute under qemu's
software emulation) and runs itself inside it with --in-guest.  There: a VG
on a blank disk, an ext4 LV (classic, or thin in a pool) holding a MariaDB
datadir with binlog, a backup user, and the built kolabfs mounted with
[mysql] lock = ftwrl and one volume, lv = that LV.

For each kind of LV, idle and then under N writers (a separate process, as
in tests/bench/mysql_lock.py), it takes --sets rounds, each one kolabfs set
and one baseline set, alternating which goes first:

  kolabfs   mkdir MOUNTPOINT/snapshots/NAME; MANIFEST.json's
            mysql.lock_hold_ms; rmdir.
  baseline  the guide's recipe: one client session does FLUSH TABLES WITH
            READ LOCK, runs `lvcreate --snapshot` as a child process (with
            -L for a classic LV), then UNLOCK TABLES.  hold = FTWRL returned
            .. UNLOCK returned.  Its snapshot is removed after the round.

Absolute times under emulation mean little (lvcreate suspends and resumes
devices: about a second there); the ratio kolabfs/baseline is the result.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "vm"))
sys.path.insert(0, HERE)

from _common import percentile  # noqa: E402

VG = "kfsbench"
MP = "/tmp/kfs-bench-mp"
STATE = "/tmp/kfs-bench-state"


def log(msg):
    print("lvm bench: %s" % msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# inside the guest

def sh(script):
    import kfs
    return kfs.run(["bash", "-c", "set -euo pipefail\n" + script], timeout=600).stdout


def make_lv(kind):
    name = "db_" + kind
    where = ("-L 640M %s" % VG) if kind == "classic" else ("-V 640M -T %s/pool" % VG)
    sh("lvcreate -q -y -n %s %s\nmkfs.ext4 -q /dev/%s/%s\nmkdir -p /mnt/%s\n"
       "mount /dev/%s/%s /mnt/%s" % (name, where, VG, name, name, VG, name, name))
    return name


def baseline_round(db, lv, kind, n):
    """The guide's recipe: FTWRL in a client, lvcreate as a child, UNLOCK."""
    name = "%s_guide%d" % (lv, n)
    size = ["-L", "96M"] if kind == "classic" else []
    c = db.connect()
    try:
        with c.cursor() as cur:
            cur.execute("FLUSH TABLES WITH READ LOCK")
            t0 = time.monotonic()
            subprocess.run(["lvcreate", "-q", "--snapshot"] + size +
                           ["-n", name, "%s/%s" % (VG, lv)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cur.execute("UNLOCK TABLES")
            hold = (time.monotonic() - t0) * 1000
    finally:
        c.close()
    sh("lvremove -q -y %s/%s" % (VG, name))
    return hold


def kolabfs_round(n, tag):
    import kfs
    path = os.path.join(MP, "snapshots", "%s-%d" % (tag, n))
    os.mkdir(path)
    with open(os.path.join(path, "MANIFEST.json")) as f:
        hold = json.load(f)["mysql"]["lock_hold_ms"]
    os.rmdir(path)
    kfs.wait_until(lambda: not os.path.exists(path), 30, "the set to go")
    return hold


def phase(db, lv, kind, sets, tag):
    res = {"kolabfs": [], "baseline": []}
    for n in range(sets):
        order = ("kolabfs", "baseline") if n % 2 == 0 else ("baseline", "kolabfs")
        for method in order:
            if method == "kolabfs":
                res[method].append(kolabfs_round(n, tag))
            else:
                res[method].append(baseline_round(db, lv, kind, n))
    return res


def bench_kind(kind, sets, writers):
    import kfs
    import test_mysql as tm
    from mariadb import MariaDB
    from mysql_lock import WriterProcess
    lv = make_lv(kind)
    db = MariaDB("/mnt/%s/data" % lv, "/tmp/run-bench-%s" % kind)
    db.install()
    db.start()
    out = {}
    try:
        tm.create_bank(db)
        tm.create_backup_user(db)
        pw = tm.write_password("/tmp", "bench-mysql.pw", tm.PASSWORD)
        conf = "/tmp/kfs-bench-%s.conf" % kind
        with open(conf, "w") as f:
            f.write("[kolabfs]\nstate_dir = %s\n\n[volume:mysql]\nbackend = lvm\nlv = %s/%s\n%s\n"
                    "[mysql]\nsocket = %s\nuser = kolabfs\npassword_file = %s\nlock = ftwrl\n"
                    % (STATE, VG, lv, "snapshot_size = 96M\n" if kind == "classic" else "",
                       db.socket, pw))
        k = kfs.Kolabfs("/tmp", conf, MP)
        k.start()
        k.check_started()
        try:
            out["idle"] = phase(db, lv, kind, sets, "idle")
            w = WriterProcess(db, writers).start()
            try:
                out["load"] = phase(db, lv, kind, sets, "load")
            finally:
                r = w.stop()
                out["load_commits"] = r["commits"]
        finally:
            k.stop()
    finally:
        db.stop()
    sh("umount /mnt/%s\nlvremove -q -y %s/%s" % (lv, VG, lv))
    return out


def in_guest(args):
    sh("pvcreate -q /dev/vda\nvgcreate -q %s /dev/vda\nlvcreate -q -y -L 800M -T %s/pool"
       % (VG, VG))
    res = {}
    for kind in args.kinds.split(","):
        log("%s: %d rounds idle, %d under %d writers" % (kind, args.sets, args.sets,
                                                       args.writers))
        res[kind] = bench_kind(kind, args.sets, args.writers)
    with open(os.path.join(os.environ["KFS_VM_OUT"], "lvm_lock.json"), "w") as f:
        json.dump(res, f)


# --------------------------------------------------------------------------
# on this machine

def report(res):
    print("%-8s %-5s %10s %10s %10s %10s %8s" % ("lv", "load", "kolabfs", "", "guide", "",
                                                 "ratio"))
    print("%-8s %-5s %10s %10s %10s %10s %8s" % ("", "", "p50 ms", "max ms", "p50 ms",
                                                 "max ms", "p50"))
    for kind, phases in res.items():
        for ph in ("idle", "load"):
            k, b = phases[ph]["kolabfs"], phases[ph]["baseline"]
            print("%-8s %-5s %10.1f %10.1f %10.1f %10.1f %8.2f" % (
                kind, ph, percentile(k, 50), max(k), percentile(b, 50), max(b),
                percentile(k, 50) / percentile(b, 50)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=6, help="rounds per phase (default 6)")
    ap.add_argument("--writers", type=int, default=4, help="writer threads (default 4)")
    ap.add_argument("--kinds", default="classic,thin")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument("--in-guest", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_guest:
        return in_guest(args)
    import guest as vm
    g = vm.Guest(disks=["3G"], mem=2048, limit=3600)
    t0 = time.monotonic()
    g.start()
    log("guest booted in %.1f s" % g.boot_seconds)
    try:
        cmd = "/usr/bin/python3 %s --in-guest --sets %d --writers %d --kinds %s" % (
            os.path.abspath(__file__), args.sets, args.writers, args.kinds)
        r = g.run(cmd, timeout=3000, cwd=SRCDIR, echo=True,
                  env={"KOLABFS_BUILDDIR": os.environ.get("KOLABFS_BUILDDIR", SRCDIR)})
        if r.returncode != 0:
            log("failed (%d)" % r.returncode)
            return 1
        with open(os.path.join(g.out, "lvm_lock.json")) as f:
            res = json.load(f)
    finally:
        g.stop(keep_log=g.failed)
    log("done in %.0f s" % (time.monotonic() - t0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
