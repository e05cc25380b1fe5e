"""The guest harness works: LVM snapshots (classic and thin) of ext4 and xfs
are point-in-time and go away again, and a FUSE mount of the built kolabfs
works inside the guest.  All tests share one boot (the `guest` fixture)."""
import os

import pytest

INTEGRATION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration")

GUEST = dict(disks=["2G"])
VG = "kfs"


def sh(guest, script, **kw):
    """Run a bash script (set -euo pipefail) in the guest; must succeed."""
    return guest.run("set -euo pipefail\n" + script, check=True, **kw).stdout


def lvs(guest):
    """{lv name: lv_attr} of the VG."""
    out = sh(guest, "lvs --noheadings -o lv_name,lv_attr %s" % VG)
    return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.fixture(scope="module")
def vg(guest):
    sh(guest, """
        pvcreate -q /dev/vda
        vgcreate -q %(vg)s /dev/vda
        lvcreate -q -y -L 400M -T %(vg)s/pool
    """ % {"vg": VG})
    return VG


def test_guest_basics(guest, kolabfs_bin):
    out = sh(guest, """
        test -c /dev/mapper/control && test -c /dev/fuse && test -c /dev/loop-control
        test -b /dev/vda
        for t in snapshot thin-pool thin; do dmsetup targets | grep -qw $t || echo "no dm target $t"; done
        grep -wq xfs /proc/filesystems && grep -wq ext4 /proc/filesystems && grep -wq btrfs /proc/filesystems
        test -d "$KFS_VM_OUT" && echo result > "$KFS_VM_OUT/probe"
        cd %s && test -x ./kolabfs
        echo ok
    """ % os.path.dirname(kolabfs_bin))
    assert out.strip() == "ok", out
    with open(os.path.join(guest.out, "probe")) as f:   # the share works both ways
        assert f.read() == "result\n"
    r = guest.run("exit 7")
    assert r.returncode == 7


# (kind, filesystem): thin snapshots get the activation-skip flag unless
# created with -kn; the flagged one is activated with -K.
CASES = [("classic", "ext4"), ("classic", "xfs"), ("thin-K", "ext4"), ("thin-kn", "xfs")]


@pytest.mark.parametrize("kind,fs", CASES, ids=["-".join(c) for c in CASES])
def test_snapshot_is_point_in_time(guest, vg, kind, fs):
    lv = "%s_%s" % (kind.replace("-", ""), fs)
    snap = lv + "_snap"
    v = {"vg": vg, "lv": lv, "snap": snap, "fs": fs}
    # mkfs.xfs wants >= 300M
    where = "-L 320M %s" % vg if kind == "classic" else "-V 320M -T %s/pool" % vg
    sh(guest, """
        lvcreate -q -y -n %(lv)s {where}
        mkfs.%(fs)s -q /dev/%(vg)s/%(lv)s
        mkdir -p /mnt/%(lv)s /mnt/%(snap)s
        mount /dev/%(vg)s/%(lv)s /mnt/%(lv)s
        echo before > /mnt/%(lv)s/a
        mkdir /mnt/%(lv)s/d && echo gone-later > /mnt/%(lv)s/d/b
    """.format(where=where) % v)     # no sync: taking the snapshot freezes the fs

    create = {"classic": "lvcreate -q -s -L 64M -n %(snap)s %(vg)s/%(lv)s",
              "thin-K": "lvcreate -q -s -n %(snap)s %(vg)s/%(lv)s",
              "thin-kn": "lvcreate -q -s -kn -n %(snap)s %(vg)s/%(lv)s"}[kind]
    sh(guest, create % v)
    attr = lvs(guest)[snap]
    assert attr[0] in ("s" if kind == "classic" else "V"), attr
    if kind == "thin-K":
        assert attr[9] == "k" and attr[4] != "a", "thin snapshot should skip activation: " + attr
        sh(guest, "lvchange -q -ay -K %(vg)s/%(snap)s" % v)
        attr = lvs(guest)[snap]
    assert attr[4] == "a", "snapshot not active: " + attr

    opts = "ro,nouuid" if fs == "xfs" else "ro"
    out = sh(guest, """
        echo after > /mnt/%(lv)s/a; echo new > /mnt/%(lv)s/c; rm /mnt/%(lv)s/d/b; sync
        mount -o {opts} /dev/%(vg)s/%(snap)s /mnt/%(snap)s
        for m in %(lv)s %(snap)s; do
            echo "$m: a=$(cat /mnt/$m/a) files=$(cd /mnt/$m && find . -name lost+found -prune -o -type f -print | sort | xargs)"
        done
        grep -q " /mnt/%(snap)s %(fs)s ro," /proc/mounts && echo "snapshot mounted ro"
    """.format(opts=opts) % v)
    assert "%s: a=after files=./a ./c" % lv in out, out
    assert "%s: a=before files=./a ./d/b" % snap in out, out
    assert "snapshot mounted ro" in out, out

    sh(guest, """
        umount /mnt/%(snap)s
        lvremove -q -y %(vg)s/%(snap)s
    """ % v)
    left = lvs(guest)
    assert snap not in left and lv in left, left
    sh(guest, "umount /mnt/%(lv)s && lvremove -q -y %(vg)s/%(lv)s" % v)
    out = sh(guest, "grep -c ' /mnt/%(lv)s' /proc/mounts || true; dmsetup ls" % v)
    assert out.splitlines()[0] == "0" and lv not in out, out


def test_kolabfs_fuse_mount_in_guest(guest, kolabfs_bin):
    """The built kolabfs on a loop btrfs in the guest: mount, read, unmount."""
    out = sh(guest, r"""
        w=$(mktemp -d /tmp/kfs-fuse.XXXXXX)
        truncate -s 256M $w/btrfs.img
        dev=$(losetup -f --show $w/btrfs.img)
        mkfs.btrfs -q $dev
        mkdir $w/btrfs $w/mnt
        mount $dev $w/btrfs
        btrfs -q subvolume create $w/btrfs/spool
        echo hello > $w/btrfs/spool/msg
        printf '[kolabfs]\nstate_dir = %s\n\n[volume:spool]\nbackend = btrfs\npath = %s\n' \
            $w/state $w/btrfs/spool > $w/kolabfs.conf
        "$KOLABFS" $w/kolabfs.conf $w/mnt
        # the mount is served by the kolabfs under test (an ASan build of it
        # in the sanitizer pass: kfs.assert_under_test checks its maps)
        /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import kfs; \
            kfs.assert_under_test(int(sys.argv[2])); print("under test: ok")' "$INTEGRATION" "$(pidof kolabfs)"
        echo "latest: $(ls $w/mnt/snapshots/latest | xargs)"
        echo "msg: $(cat $w/mnt/snapshots/latest/spool/msg)"
        echo "subvolumes while mounted: $(btrfs subvolume list $w/btrfs | wc -l)"
        fusermount3 -u $w/mnt
        for i in $(seq 300); do pidof kolabfs >/dev/null || break; sleep 0.1; done
        pidof kolabfs || echo "kolabfs exited"
        echo "mounted after: $(grep -c " $w/mnt " /proc/mounts || true)"
        echo "subvolumes after: $(btrfs subvolume list $w/btrfs | wc -l)"
        umount $w/btrfs && losetup -d $dev && rm -rf $w
    """, env={"KOLABFS": kolabfs_bin, "INTEGRATION": INTEGRATION}, timeout=300)
    assert "under test: ok" in out, out
    assert "latest: MANIFEST.json spool" in out, out
    assert "msg: hello" in out, out
    assert "subvolumes while mounted: 2" in out, out       # spool + its snapshot
    assert "kolabfs exited" in out, out
    assert "mounted after: 0" in out, out
    assert "subvolumes after: 1" in out, out
