#!/usr/bin/python3
"""Run shell commands inside a throwaway qemu guest that HAS device-mapper.

This machine's kernel has no device-mapper, so LVM snapshots are tested in a
guest booted from Debian's own kernel (linux-image-amd64, fetched with
apt-get download, cached in /var/cache/kolabfs-vm).  The guest sees this
machine's root read-only over 9p under a tmpfs overlay: the built tree and
every installed binary are at the same paths, and whatever the guest writes
stays in the guest.  It gets blank virtio disks (/dev/vda, /dev/vdb, ... in
the order given) and a read-write share for results, mounted at the same path
as on this machine ($KFS_VM_OUT inside); more directories of this machine can
be shared read-write, each at its own path (shares=, e.g. where sanitizer
reports go).  Modules (dm, thin, ext4, xfs, btrfs, fuse, loop, ...) load
with modprobe as on any machine; LVM runs without udev (DM_DISABLE_UDEV=1
and the guest's /etc/lvm/lvm.conf).

One boot serves many commands: the guest's init (guest-init.sh) runs each
script the host drops into the share and writes back its output and exit
status.  From python:

    with Guest(disks=["1G"]) as g:
        r = g.run("vgcreate vg /dev/vda && lvs")    # a CompletedProcess
        assert r.returncode == 0, r.stderr

From the shell (exit status = the command's, 125 if the guest failed):

    tests/vm/guest.py [-d SIZE]... [-m MB] [-t SECONDS] [-o OUTDIR] [-s DIR]... -- 'command'

Needs root and the Debian packages qemu-system-x86 busybox-static kmod cpio
(tests/run installs them), and apt access the first time.
"""
import argparse
import ctypes
import fcntl
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_INIT = os.path.join(HERE, "guest-init.sh")
CACHE = os.environ.get("KFS_VM_CACHE", "/var/cache/kolabfs-vm")
LOGDIR = os.environ.get("KFS_VM_LOGDIR", "/tmp")
QEMU = "qemu-system-x86_64"
# modules the initramfs needs to mount the root; all others load in the guest
STAGE1_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")

# The initramfs /init: mount this machine's root (9p, read-only) under a tmpfs
# overlay and hand over to guest-init.sh, which lives in the shared tree.
STAGE1 = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin; /bin/busybox --install -s
export PATH=/bin:/sbin
fail() { echo "kfs-vm: $*"; poweroff -f; }
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m || fail "insmod $m failed"; done
init=$(sed -n 's/.*kfs\.init=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /host \
  || fail "cannot mount the host root (9p)"
mount -t tmpfs -o mode=0755 rw /rw; mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /newroot \
  || fail "cannot mount the overlay"
[ -f "/newroot$init" ] || fail "no $init in the shared root"
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$init"
"""


class GuestError(Exception):
    """The guest did not boot, died, or a command outran its deadline."""


def _run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if p.returncode != 0:
        raise GuestError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


def _size(s):
    """'512M', '1G', '4096' (bytes) -> bytes."""
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", str(s).strip(), re.I)
    if not m:
        raise ValueError("bad disk size %r" % (s,))
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


# --------------------------------------------------------------------------
# kernel and initramfs, cached

def _kernel(cache):
    """Debian's current kernel package, unpacked in cache/kernel (with
    depmod run).  Re-fetched when linux-image-amd64 points at a new one."""
    kdir = os.path.join(cache, "kernel")
    have = open(os.path.join(kdir, "key")).read() if os.path.exists(os.path.join(kdir, "key")) else None
    deps = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                          capture_output=True, text=True).stdout
    m = re.search(r"Depends: (linux-image-\d\S*)", deps)
    if not m:
        if have:
            return kdir         # no apt lists: keep what we have
        raise GuestError("apt-cache knows no linux-image-amd64 (run apt-get update)")
    pkg = m.group(1)
    # the .deb file name carries the version: a rebuilt package is a new key
    uris = _run(["apt-get", "download", "--print-uris", pkg])
    want = uris.split()[1] if uris.strip() else pkg
    if have == want:
        return kdir
    new = tempfile.mkdtemp(prefix="kernel.", dir=cache)
    try:
        os.chmod(new, 0o755)    # apt downloads as user _apt
        _run(["apt-get", "download", "-q", pkg], cwd=new)
        deb, = glob.glob(os.path.join(new, "*.deb"))
        _run(["dpkg-deb", "-x", deb, new])
        os.unlink(deb)
        kver, = os.listdir(os.path.join(new, "lib", "modules"))
        _run(["depmod", "-b", new, kver])
        with open(os.path.join(new, "kver"), "w") as f:
            f.write(kver)
        with open(os.path.join(new, "key"), "w") as f:
            f.write(want)
        old = kdir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(kdir):
            os.rename(kdir, old)
        os.rename(new, kdir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    return kdir


def _initrd(cache, kdir):
    """busybox + the STAGE1 modules + STAGE1 as /init; rebuilt when the kernel
    or STAGE1 changes."""
    kver = open(os.path.join(kdir, "kver")).read()
    path = os.path.join(cache, "initrd.gz")
    key = "%s\n%s\n%s" % (open(os.path.join(kdir, "key")).read(), STAGE1, " ".join(STAGE1_MODULES))
    keyfile = path + ".key"
    if os.path.exists(path) and os.path.exists(keyfile) and open(keyfile).read() == key:
        return path
    t = tempfile.mkdtemp(prefix="initrd.", dir=cache)
    try:
        for d in ("bin", "mods", "proc", "sys", "dev"):
            os.mkdir(os.path.join(t, d))
        shutil.copy("/bin/busybox", os.path.join(t, "bin", "busybox"))
        order = []
        for m in STAGE1_MODULES:
            out = _run(["modprobe", "-d", kdir, "-S", kver, "--show-depends", m])
            for line in out.splitlines():
                w = line.split()
                if w[0] == "insmod" and os.path.basename(w[1]) not in order:
                    if not w[1].endswith(".ko"):
                        raise GuestError("compressed module not handled: " + w[1])
                    shutil.copy(w[1], os.path.join(t, "mods"))
                    order.append(os.path.basename(w[1]))
        with open(os.path.join(t, "mods", "order"), "w") as f:
            f.write("\n".join(order) + "\n")
        with open(os.path.join(t, "init"), "w") as f:
            f.write(STAGE1)
        os.chmod(os.path.join(t, "init"), 0o755)
        _run(["sh", "-c", "find . | cpio -o -H newc --quiet | gzip -1 > %s.tmp"
              % shlex.quote(path)], cwd=t)
        os.rename(path + ".tmp", path)
        with open(keyfile, "w") as f:
            f.write(key)
    finally:
        shutil.rmtree(t, ignore_errors=True)
    return path


def prepare(cache=CACHE):
    """Fetch/unpack the kernel and build the initramfs if needed.
    Returns (kernel dir, initrd path).  Safe against concurrent callers."""
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kdir = _kernel(cache)
        return kdir, _initrd(cache, kdir)


# --------------------------------------------------------------------------
# the guest

def _die_with_parent():
    # qemu must not outlive us, even if we are killed with SIGKILL
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _sweep():
    """Remove what guests of killed processes left in /tmp (their qemu died
    with them: _die_with_parent)."""
    for d in glob.glob("/tmp/kfs-vm-*/pid"):
        try:
            pid = int(open(d).read())
        except (OSError, ValueError):
            continue
        if not os.path.exists("/proc/%d" % pid):
            shutil.rmtree(os.path.dirname(d), ignore_errors=True)


class Guest:
    """One booted guest.  start() boots it, run() runs a command in it,
    stop() powers it off and removes every temporary file (the console log
    is kept, and its path returned, when asked to or when the guest failed).

    disks   sizes of blank virtio disks (/dev/vda, /dev/vdb, ...)
    mem     guest RAM in MiB (the overlay's writes live in it too)
    limit   seconds the guest may live at all (a watchdog in the guest and
            a deadline here); boot_timeout bounds the boot alone
    out     directory for the results share (default: a temporary one)
    shares  more directories of this machine, each shared read-write at the
            same path in the guest (they must exist)
    env     environment variables for every command run() runs
    """

    def __init__(self, disks=(), mem=2048, cpus=2, limit=3600, boot_timeout=300, out=None,
                 shares=(), env=None):
        self.disks = [_size(d) for d in disks]
        self.shares = [os.path.abspath(d) for d in shares]
        self.env = dict(env or {})
        self.mem, self.cpus, self.limit, self.boot_timeout = mem, cpus, limit, boot_timeout
        self.tmp = self.proc = self.console = None
        self.keep_out = out is not None
        self.out = os.path.abspath(out) if out else None
        self.failed = False
        self.boot_seconds = None
        self.n = 0

    # ---- lifecycle
    def start(self):
        if shutil.which(QEMU) is None:
            raise GuestError("%s is not installed (tests/run installs qemu-system-x86)" % QEMU)
        for p in [GUEST_INIT, self.out or "", CACHE] + self.shares:
            if re.search(r"\s", p):
                raise GuestError("path with white space cannot go on the kernel command line: %r" % p)
        for p in self.shares:
            if "," in p or not os.path.isdir(p):
                raise GuestError("cannot share %r (no directory, or a comma in its path)" % p)
        kdir, initrd = prepare()
        _sweep()
        self.tmp = tempfile.mkdtemp(prefix="kfs-vm-", dir="/tmp")
        try:
            self._boot(kdir, initrd)
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def _boot(self, kdir, initrd):
        with open(os.path.join(self.tmp, "pid"), "w") as f:
            f.write(str(os.getpid()))
        self.out = self.out or os.path.join(self.tmp, "out")
        self.q = os.path.join(self.out, ".kfs-vm")     # requests and replies
        os.makedirs(self.q, exist_ok=True)
        self.console = os.path.join(self.tmp, "console.log")
        kver = open(os.path.join(kdir, "kver")).read()
        append = ("console=ttyS0 panic=-1 loglevel=4 kfs.init=%s kfs.out=%s kfs.mods=%s kfs.limit=%d"
                  % (GUEST_INIT, self.out, os.path.join(kdir, "lib", "modules", kver), self.limit))
        if self.shares:
            append += " kfs.shares=" + ",".join(self.shares)   # tags share0, share1, ...
        cmd = [QEMU, "-nodefaults", "-no-user-config", "-accel", "tcg,thread=multi",
               "-m", str(self.mem), "-smp", str(self.cpus), "-display", "none",
               "-no-reboot", "-monitor", "none", "-serial", "file:" + self.console,
               "-kernel", os.path.join(kdir, "boot", "vmlinuz-" + kver), "-initrd", initrd,
               "-append", append,
               "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
               "-virtfs", "local,path=%s,mount_tag=out,security_model=none" % self.out]
        for i, d in enumerate(self.shares):
            cmd += ["-virtfs", "local,path=%s,mount_tag=share%d,security_model=none" % (d, i)]
        for i, size in enumerate(self.disks):
            img = os.path.join(self.tmp, "disk%d.img" % i)
            with open(img, "wb") as f:
                f.truncate(size)            # sparse
            cmd += ["-drive", "file=%s,if=virtio,format=raw,cache=unsafe" % img]
        t0 = time.monotonic()
        self.deadline = t0 + self.limit
        with open(os.path.join(self.tmp, "qemu.err"), "w") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, preexec_fn=_die_with_parent)
        self._wait(lambda: os.path.exists(os.path.join(self.q, "ready")),
                   t0 + self.boot_timeout, "the guest to boot")
        self.boot_seconds = time.monotonic() - t0

    def stop(self, keep_log=False):
        """Power off (bounded), kill if need be, clean up.  Returns the path of
        the kept console log, or None."""
        if self.tmp is None:
            return None
        if self.proc is not None and self.proc.poll() is None:
            open(os.path.join(self.q, "poweroff"), "w").close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.failed = True
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        kept = None
        if (keep_log or self.failed) and self.console and os.path.exists(self.console):
            kept = os.path.join(LOGDIR, "kolabfs-vm-%s-%d.log" % (time.strftime("%Y%m%d-%H%M%S"), os.getpid()))
            with open(kept, "w") as f:
                f.write(self.console_tail(None))
                with open(os.path.join(self.tmp, "qemu.err"), errors="replace") as e:
                    f.write(e.read())
            sys.stderr.write("kfs-vm: guest console log kept in %s\n" % kept)
        if self.keep_out:
            shutil.rmtree(self.q, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        return kept

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *_):
        self.stop(keep_log=exc_type is not None)

    # ---- commands
    def run(self, script, timeout=600, cwd=None, env=None, check=False, echo=False):
        """Run a bash script in the guest (cwd: this process's by default).
        Returns a CompletedProcess (stdout, stderr as text); env adds to the
        guest's environment and the Guest's env.  The guest kills
        the script after timeout seconds (returncode 124); check=True raises
        on a non-zero status; echo=True copies the output here as it comes."""
        if self.proc is None:
            raise GuestError("the guest is not running")
        self.n += 1
        base = os.path.join(self.q, "%04d" % self.n)
        lines = ["# timeout=%d" % timeout, "cd %s || exit 125" % shlex.quote(cwd or os.getcwd())]
        lines += ["export %s=%s" % (k, shlex.quote(str(v)))
                  for k, v in dict(self.env, **(env or {})).items()]
        with open(base + ".tmp", "w") as f:
            f.write("\n".join(lines + [script]) + "\n")
        os.rename(base + ".tmp", base + ".req")
        streams = [[base + ".out", sys.stdout, 0], [base + ".err", sys.stderr, 0]] if echo else []

        def done():
            finished = os.path.exists(base + ".rc")     # then .out and .err are complete
            for s in streams:
                try:
                    with open(s[0], "rb") as f:
                        f.seek(s[2])
                        data = f.read()
                except FileNotFoundError:
                    continue
                s[2] += len(data)
                s[1].write(data.decode(errors="replace"))
                s[1].flush()
            return finished
        try:
            self._wait(done, time.monotonic() + timeout + 30, "command %d to finish" % self.n)
        except GuestError:
            self.failed = True      # the guest is wedged: no further commands
            self.stop()
            raise
        r = subprocess.CompletedProcess(script, int(open(base + ".rc").read()),
                                        open(base + ".out", errors="replace").read(),
                                        open(base + ".err", errors="replace").read())
        for ext in (".rc", ".out", ".err"):
            os.unlink(base + ext)
        if check and r.returncode != 0:
            raise AssertionError("guest command failed (%d):\n%s\nstdout: %s\nstderr: %s"
                                 % (r.returncode, script, r.stdout, r.stderr))
        return r

    # ---- helpers
    def console_tail(self, n=40):
        try:
            with open(self.console, errors="replace") as f:
                return "".join(f.readlines()[-n if n else 0:])
        except (OSError, TypeError):
            return ""

    def _wait(self, cond, until, what):
        until = min(until, self.deadline)
        while not cond():
            if self.proc.poll() is not None:
                self.failed = True
                raise GuestError("the guest stopped while waiting for %s; console:\n%s"
                                 % (what, self.console_tail()))
            if time.monotonic() > until:
                self.failed = True
                raise GuestError("timed out waiting for %s; console:\n%s"
                                 % (what, self.console_tail()))
            time.sleep(0.05)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run a shell command in a throwaway guest "
                                 "with device-mapper (see the module docstring).")
    ap.add_argument("-d", "--disk", action="append", default=[], metavar="SIZE",
                    help="add a blank virtio disk (/dev/vda, /dev/vdb, ...), e.g. 1G")
    ap.add_argument("-m", "--mem", type=int, default=2048, metavar="MB")
    ap.add_argument("-t", "--timeout", type=int, default=1800, metavar="SECONDS")
    ap.add_argument("-o", "--out", metavar="DIR", help="results share ($KFS_VM_OUT in the guest); "
                    "default: a temporary directory, removed afterwards")
    ap.add_argument("-s", "--share", action="append", default=[], metavar="DIR",
                    help="share this directory read-write at the same path in the guest")
    ap.add_argument("command")
    a = ap.parse_args(argv)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    g = Guest(disks=a.disk, mem=a.mem, limit=a.timeout + 300, out=a.out, shares=a.share)
    try:
        g.start()
        sys.stderr.write("kfs-vm: booted in %.1f s\n" % g.boot_seconds)
        rc = g.run(a.command, timeout=a.timeout, echo=True).returncode
    except GuestError as e:
        sys.stderr.write("kfs-vm: %s\n" % e)
        return 125
    finally:
        g.stop(keep_log=g.failed)
    return rc


if __name__ == "__main__":
    sys.exit(main())
