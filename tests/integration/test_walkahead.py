"""Walk-ahead (fs/walkahead.c): once a reader lists a directory of a
snapshot, kolabfs stats the tree below it ahead of the reader, within a
bound, never what a filter hides, and forgets a dropped set's part before
its snapshot goes.  /status's walk_ahead member says what it did."""
import json
import os

import kfs

DIRS, FILES, SUB_FILES = 8, 40, 6


def walk_status(k):
    with open(k.path("status")) as f:
        return json.load(f)["walk_ahead"]


def make_walk_tree(spool):
    """spool/walk/dNN/{fNNN, cyrus.squat (hidden), stage./ (hidden), sub/sNN}.
    Returns what the walk must stat below walk/ (walk's own entries are the
    reader's): (directories, entries)."""
    root = os.path.join(spool, "walk")
    for d in range(DIRS):
        dd = os.path.join(root, "d%02d" % d)
        os.makedirs(os.path.join(dd, "sub"))
        os.makedirs(os.path.join(dd, "stage."))
        for i in range(FILES):
            with open(os.path.join(dd, "f%03d" % i), "w") as f:
                f.write("m%d\n" % i)
        for i in range(SUB_FILES):
            with open(os.path.join(dd, "sub", "s%02d" % i), "w") as f:
                f.write("s\n")
            with open(os.path.join(dd, "stage.", "x%02d" % i), "w") as f:
                f.write("hidden\n")
        with open(os.path.join(dd, "cyrus.squat"), "w") as f:
            f.write("hidden\n")
    # dNN/ and dNN/sub/ are walked: FILES + sub in each dNN, SUB_FILES in each sub
    return 2 * DIRS, DIRS * (FILES + 1 + SUB_FILES)


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except FileNotFoundError:
            pass
    return out


def mount(kolabfs_factory, config, env=None):
    k = kolabfs_factory(config)
    k.start(env=dict(os.environ, **(env or {})))
    k.check_started()
    return k


def test_listing_a_directory_walks_the_tree_below_it(btrfs, config, kolabfs_factory):
    want_dirs, want_entries = make_walk_tree(btrfs.path("spool"))
    k = mount(kolabfs_factory, config)
    assert walk_status(k)["entries"] == 0, "nothing listed yet, nothing walked"
    top = sorted(os.listdir(k.latest("spool", "walk")))
    assert top == ["d%02d" % d for d in range(DIRS)]
    kfs.wait_until(lambda: walk_status(k)["entries"] >= want_entries, 60,
                   "the walk-ahead to stat the tree below walk/")
    kfs.wait_until(lambda: walk_status(k)["queued"] == 0, 60, "the walk-ahead to finish")
    st = walk_status(k)
    # not a hidden entry statted, not a hidden directory walked
    assert (st["directories"], st["entries"]) == (want_dirs, want_entries), st
    # the reader now lists what was walked: nothing is walked twice
    seen = sum(len(files) + len(dirs) for _, dirs, files in os.walk(k.latest("spool", "walk")))
    assert seen == want_entries + DIRS
    st = walk_status(k)
    assert (st["directories"], st["entries"]) == (want_dirs, want_entries), st


def test_the_walk_stays_within_its_bound_of_the_reader(btrfs, config, kolabfs_factory):
    make_walk_tree(btrfs.path("spool"))
    ahead = FILES // 2
    k = mount(kolabfs_factory, config, {"KOLABFS_WALK_AHEAD": str(ahead)})
    assert walk_status(k)["ahead"] == ahead
    os.listdir(k.latest("spool", "walk"))
    # DIRS entries given to the reader, then at most `ahead` more walked: the
    # walk stops at the first directory that takes it past its bound
    kfs.wait_until(lambda: walk_status(k)["in_front"] >= ahead, 60,
                   "the walk-ahead to reach its bound")
    st = walk_status(k)
    assert st["entries"] <= ahead + FILES + 1 + SUB_FILES, st
    assert st["queued"] > 0, st
    # the reader going on lets it go on
    before = st["entries"]
    for d in range(DIRS):
        os.listdir(k.latest("spool", "walk", "d%02d" % d))
    kfs.wait_until(lambda: walk_status(k)["entries"] > before, 60,
                   "the walk-ahead to go on once the reader does")


def test_walk_ahead_off(btrfs, config, kolabfs_factory):
    make_walk_tree(btrfs.path("spool"))
    k = mount(kolabfs_factory, config, {"KOLABFS_WALK_AHEAD": "0"})
    for _ in os.walk(k.latest("spool", "walk")):
        pass
    assert walk_status(k) == {"ahead": 0, "in_front": 0, "queued": 0,
                              "directories": 0, "entries": 0}


def test_a_set_dropped_while_its_walk_waits_goes_whole(btrfs, config, kolabfs_factory):
    """Directories queued for a dropped set are forgotten (their references
    to the set with them) and the snapshots go; the other set walks on."""
    make_walk_tree(btrfs.path("spool"))
    k = mount(kolabfs_factory, config, {"KOLABFS_WALK_AHEAD": "1"})
    snaps = k.path("snapshots")
    os.mkdir(os.path.join(snaps, "second"))
    subvols = btrfs.subvolumes()
    second = {os.path.relpath(k.manifest("second")["volumes"][v]["snapshot"], btrfs.mnt)
              for v in kfs.VOLUMES}
    os.listdir(os.path.join(snaps, "second", "spool", "walk"))
    kfs.wait_until(lambda: walk_status(k)["in_front"] >= 1, 60, "the walk to wait for the reader")
    assert walk_status(k)["queued"] > 0
    os.rmdir(os.path.join(snaps, "second"))
    assert btrfs.subvolumes() == subvols - second
    assert walk_status(k)["queued"] == 0
    snap = k.manifest()["volumes"]["spool"]["snapshot"]
    assert not [p for p in fd_targets(k.pid) if "@second" in p], "a descriptor of the dropped set"
    assert os.path.isdir(snap)
    top = os.listdir(k.latest("spool", "walk"))
    assert len(top) == DIRS
    kfs.wait_until(lambda: walk_status(k)["queued"] > 0 or walk_status(k)["in_front"] >= 1, 60,
                   "the remaining set to be walked")
