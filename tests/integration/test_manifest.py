"""MANIFEST.json, the latest symlink and /status."""
import calendar
import json
import os
import re
import socket
import time

import kfs


def _strings(obj):
    """Every key and string value in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_manifest_has_the_contract_keys(btrfs, copy_paths, kolabfs):
    latest = kolabfs.path("snapshots", "latest")
    assert os.path.islink(latest)
    name = os.path.basename(os.readlink(latest))
    path = kolabfs.path("snapshots", name, "MANIFEST.json")
    with open(path, "rb") as f:
        raw = f.read()
    assert os.stat(path).st_size == len(raw)
    m = json.loads(raw)
    assert m["name"] == name
    # default name_format %Y-%m-%dT%H%M%SZ, UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z", name), name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", m["created"]), m["created"]
    created = calendar.timegm(time.strptime(m["created"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert int(kolabfs.t0) - 1 <= created <= kolabfs.t1 + 1
    assert time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(created)) == name
    assert m["kolabfs_version"] == kfs.VERSION
    assert m["host"] in (socket.gethostname(), socket.getfqdn())
    assert set(m["volumes"]) == set(kfs.VOLUMES)
    snaps = set()
    for v in kfs.VOLUMES:
        vol = m["volumes"][v]
        assert vol["backend"] == "btrfs"
        assert vol["origin"] == btrfs.path(v)
        assert vol["filesystem"] == "btrfs"
        snap = vol["snapshot"]
        assert os.path.isabs(snap) and snap != vol["origin"]
        snaps.add(os.path.relpath(snap, btrfs.mnt))
        ro = kfs.run(["btrfs", "property", "get", "-ts", snap, "ro"]).stdout.strip()
        assert ro == "ro=true", "%s: %s" % (snap, ro)
    assert snaps <= btrfs.subvolumes() and len(snaps) == 3
    assert m["copies"] == {"etc": copy_paths}
    assert m["warnings"] == []


def test_latest_follows_the_newest_set_and_status_lists_all(kolabfs):
    snaps = kolabfs.path("snapshots")
    first = os.path.basename(os.readlink(os.path.join(snaps, "latest")))
    os.mkdir(os.path.join(snaps, "zz-second"))
    os.mkdir(os.path.join(snaps, "aa-third"))       # newest, though it sorts first
    assert os.path.basename(os.readlink(os.path.join(snaps, "latest"))) == "aa-third"
    assert os.path.realpath(os.path.join(snaps, "latest")) == os.path.realpath(
        os.path.join(snaps, "aa-third"))
    with open(kolabfs.path("status")) as f:
        status = json.load(f)
    words = set(_strings(status))
    for n in (first, "zz-second", "aa-third"):
        assert n in words, "set %s not in /status: %s" % (n, status)
    for v in kfs.VOLUMES:
        assert v in words, "volume %s not in /status" % v
    os.rmdir(os.path.join(snaps, "aa-third"))
    assert os.path.basename(os.readlink(os.path.join(snaps, "latest"))) == "zz-second"
    with open(kolabfs.path("status")) as f:
        assert "aa-third" not in set(_strings(json.load(f)))
