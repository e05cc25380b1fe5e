"""LVM volumes for real: kolabfs inside a guest with device-mapper.

Every scenario runs inside the guest (tests/vm/lvm_scenarios.py, which
asserts what it checks and cleans up after itself); this module boots one
guest for all of them and reports each as its own test.  Under qemu's
software emulation the module takes about five minutes.
"""
import json
import os

import pytest

GUEST = dict(disks=["3G"], mem=2048)
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "lvm_scenarios.py")


def scenario(guest, *args, timeout=400):
    r = guest.run("/usr/bin/python3 %s %s" % (SCENARIOS, " ".join(args)), timeout=timeout)
    assert r.returncode == 0, "scenario %s failed (%d):\n%s\n%s" % (
        " ".join(args), r.returncode, r.stdout[-4000:], r.stderr[-8000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def vg(guest, kolabfs_bin):
    scenario(guest, "setup")


# (kind, filesystem, subdir): thin snapshots are activated after the lock
# window with -K; xfs needs nouuid; subdir is reached inside the mount.
TREES = [("classic", "ext4", None), ("classic", "xfs", None),
         ("thin", "ext4", None), ("thin", "xfs", "data")]


@pytest.mark.parametrize("kind,fs,subdir", TREES,
                         ids=["-".join(filter(None, t)) for t in TREES])
def test_point_in_time_tree(guest, vg, kind, fs, subdir):
    """The set shows the tree as it was (hard links, xattrs, ACLs, links, a
    socket), rsync -aHAX copies it, umount leaves no LV, mount or dm device."""
    scenario(guest, "tree", kind, fs, *([subdir] if subdir else []))


def test_mariadb_under_write_load(guest, vg):
    """[mysql] lock = ftwrl around lvcreate: every set's copy restores
    consistently."""
    r = scenario(guest, "mysql", timeout=600)
    print("lock held (ms):", r.get("lock_hold_ms"))


def test_full_snapshot_reads_as_eio(guest, vg):
    scenario(guest, "overrun")


def test_kill_then_remount_reaps_only_ours(guest, vg):
    """Also: rmdir of a set with files open removes its snapshot LV."""
    scenario(guest, "reap")


def test_bad_config_clear_errors_nothing_left(guest, vg):
    scenario(guest, "badconfig")


def test_no_room_in_the_vg_fails_the_set_naming_what_it_needs(guest, vg):
    """The VG full (other LVs took the space), [mysql] configured: the mount
    and a mkdir fail before the lock, a VG that fills up inside the lock
    window fails lvcreate; each names the VG and LV, what the snapshot
    needs and what is free; nothing left, MySQL not left locked."""
    r = scenario(guest, "vgfull", timeout=600)
    print("errors:", r.get("errors"))
