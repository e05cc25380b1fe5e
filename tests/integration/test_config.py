"""Bad configurations: non-zero exit, a message naming the config file and
the line (or group/key), and nothing left behind (no mount, no snapshot
subvolume, no state_dir).  And --check / --version / --help."""
import os
import re

import pytest

import kfs


def _readable_file(work):
    """A password file that is world-readable (mode 0644)."""
    path = os.path.join(work, "readable.pw")
    with open(path, "w") as f:
        f.write("pw\n")
    os.chmod(path, 0o644)
    return path


def _insert_after(text, anchor, new):
    lines = text.splitlines()
    i = lines.index(anchor)
    return "\n".join(lines[:i + 1] + new.splitlines() + lines[i + 1:]) + "\n"


# id: (edit(text, work, mnt) -> text, offending line, [regex naming group/key/value])
BAD = {
    "unknown-group": (lambda t, w, m: t + "[frobnicate]\nanswer = 42\n",
                      "[frobnicate]", [r"frobnicate"]),
    "unknown-key": (lambda t, w, m: _insert_after(t, "[kolabfs]", "colour = blue"),
                    "colour = blue", [r"\bcolour\b"]),
    "bad-preset": (lambda t, w, m: t.replace("preset = cyrus-spool", "preset = cyrus-spoool"),
                   "preset = cyrus-spoool", [r"cyrus-spoool"]),
    "path-not-a-subvolume": (lambda t, w, m: t + "[volume:plain]\nbackend = btrfs\npath = %s\n"
                             % os.path.join(m, "spool", "user"),
                             "path = {mnt}/spool/user", [r"volume:plain", r"{mnt}/spool/user"]),
    "two-volumes-same-path": (lambda t, w, m: t + "[volume:spool2]\nbackend = btrfs\npath = %s\n"
                              % os.path.join(m, "spool"),
                              "path = {mnt}/spool", [r"spool2"]),
    "name-with-slash": (lambda t, w, m: t + "[volume:a/b]\nbackend = btrfs\npath = %s\n"
                        % os.path.join(m, "extra"), "[volume:a/b]", [r"a/b"]),
    "name-dotdot": (lambda t, w, m: t + "[volume:..]\nbackend = btrfs\npath = %s\n"
                    % os.path.join(m, "extra"), "[volume:..]", [r"volume:\.\."]),
    "name-empty": (lambda t, w, m: t + "[volume:]\nbackend = btrfs\npath = %s\n"
                   % os.path.join(m, "extra"), "[volume:]", [r"\[volume:\]"]),
    "missing-state-dir-parent": (lambda t, w, m: t.replace(
        "state_dir = %s/state" % w, "state_dir = %s/missing/state" % w),
        "state_dir = {work}/missing/state", [r"state_dir", r"{work}/missing"]),
    "lvm-missing-vg": (lambda t, w, m: t + "[volume:db]\nbackend = lvm\nlv = vg0/lv_mysql\n"
                       "snapshot_size = 1G\n", "lv = vg0/lv_mysql", [r"no such volume group"]),
    "mysql-bad-lock": (lambda t, w, m: t + "[mysql]\nsocket = /run/mysqld/mysqld.sock\n"
                       "lock = sometimes\n", "lock = sometimes", [r"\[mysql\]", r"\block\b"]),
    "mysql-readable-password": (lambda t, w, m: t + "[mysql]\nsocket = /run/mysqld/mysqld.sock\n"
                                "password_file = %s\n" % _readable_file(w),
                                "password_file = {work}/readable.pw", [r"\[mysql\]", r"password_file"]),
    "ldap-section": (lambda t, w, m: t + "[ldap:ds]\nuri = ldap://127.0.0.1:389\nmode = task\n",
                     "[ldap:ds]", [r"ldap:ds"]),
    "volume-without-path": (lambda t, w, m: t + "[volume:nopath]\nbackend = btrfs\n",
                            "[volume:nopath]", [r"nopath"]),
    "copy-named-like-a-volume": (lambda t, w, m: t + "[copy:spool]\npaths = /etc/hostname\n",
                                 "[copy:spool]", [r"copy:spool"]),
    "duplicate-key": (lambda t, w, m: _insert_after(t, "preset = cyrus-meta", "preset = cyrus-meta"),
                      "preset = cyrus-meta", [r"\bpreset\b.*(twice|duplicate|again)",
                                              r"(twice|duplicate|again).*\bpreset\b"]),
    "duplicate-group": (lambda t, w, m: t + "[volume:imap]\nbackend = btrfs\npath = %s\n"
                        % os.path.join(m, "extra"), "[volume:imap]", [r"volume:imap"]),
    "idle-timeout-with-unit": (lambda t, w, m: _insert_after(t, "[kolabfs]", "idle_timeout = 2s"),
                               "idle_timeout = 2s", [r"\[kolabfs\] idle_timeout: .*seconds.*\"2s\""]),
    "max-age-negative": (lambda t, w, m: _insert_after(t, "[kolabfs]", "max_age = -60"),
                         "max_age = -60", [r"\[kolabfs\] max_age: .*seconds.*\"-60\""]),
    "max-age-too-big": (lambda t, w, m: _insert_after(t, "[kolabfs]", "max_age = 99999999999"),
                        "max_age = 99999999999", [r"\[kolabfs\] max_age: "]),
    "not-a-key-file": (lambda t, w, m: _insert_after(t, "[kolabfs]", "this is not a key file line"),
                       "this is not a key file line", [r"this is not a key file line"]),
}


@pytest.fixture
def extra_subvolume(btrfs):
    kfs.run(["btrfs", "subvolume", "create", btrfs.path("extra")])
    return btrfs.path("extra")


def _write_bad(case, work, mnt, copy_paths):
    edit, offending, tokens = BAD[case]
    text = edit(kfs.config_text(work, mnt, copies=copy_paths), work, mnt)
    offending = offending.format(mnt=mnt, work=work)
    lines = text.splitlines()
    # the LAST occurrence: duplicates name the second one
    lineno = len(lines) - lines[::-1].index(offending)
    path = os.path.join(work, "bad.conf")
    with open(path, "w") as f:
        f.write(text)
    pats = [p.format(mnt=re.escape(mnt), work=re.escape(work)) for p in tokens]
    return path, lineno, pats


def _assert_names_file_and_place(err, path, lineno, pats):
    assert err.strip(), "no message on stderr"
    assert path in err, "stderr does not name the config file %s:\n%s" % (path, err)
    at_line = re.search(r"(:|line\s*)%d\b" % lineno, err)
    named = any(re.search(p, err) for p in pats)
    assert at_line or named, "stderr names neither line %d nor %s:\n%s" % (lineno, pats, err)


@pytest.mark.parametrize("mode", ["mount", "check"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config(case, mode, work, btrfs, tree, copy_paths, extra_subvolume):
    if not os.access(kfs.KOLABFS, os.X_OK):
        pytest.fail("kolabfs is not built: %s" % kfs.KOLABFS)
    path, lineno, pats = _write_bad(case, work, btrfs.mnt, copy_paths)
    before = btrfs.subvolumes()
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    cmd = [kfs.KOLABFS, path, mp] if mode == "mount" else [kfs.KOLABFS, "--check", path]
    p = kfs.run(cmd, check=False, timeout=120)
    assert p.returncode != 0, "accepted a bad config (%s)\nstderr: %s" % (case, p.stderr)
    _assert_names_file_and_place(p.stderr, path, lineno, pats)
    assert not kfs.is_mounted(mp)
    assert not kfs.kolabfs_pids(mp)
    assert btrfs.subvolumes() == before, "subvolumes left behind"
    assert not os.path.exists(os.path.join(work, "state")), "state_dir created"
    assert not os.path.exists(os.path.join(work, "missing"))


def test_missing_config_file(work, btrfs):
    path = os.path.join(work, "no-such.conf")
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    for cmd in ([kfs.KOLABFS, path, mp], [kfs.KOLABFS, "--check", path]):
        p = kfs.run(cmd, check=False, timeout=120)
        assert p.returncode != 0
        assert path in p.stderr, p.stderr
        assert not kfs.is_mounted(mp)


def test_check_accepts_a_good_config_and_creates_nothing(work, btrfs, tree, config):
    before = btrfs.subvolumes()
    p = kfs.run([kfs.KOLABFS, "--check", config], check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    assert btrfs.subvolumes() == before
    assert not os.path.exists(os.path.join(work, "state")), "--check created state_dir"
    assert [t for t in kfs.mounts_under(work) if t != os.path.realpath(btrfs.mnt)] == []


def test_check_shows_idle_timeout_and_max_age(work, btrfs, tree, config):
    with open(config) as f:
        text = f.read()
    with open(config, "w") as f:
        f.write(text.replace("[kolabfs]\n", "[kolabfs]\nidle_timeout = 600\nmax_age = 86400\n", 1))
    p = kfs.run([kfs.KOLABFS, "--check", config], check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "idle_timeout: 600 s without an open file, then unmount\n" in p.stdout, p.stdout
    assert "max_age: 86400 s, then a set is dropped\n" in p.stdout, p.stdout
    with open(config, "w") as f:                    # off: not mentioned
        f.write(text)
    p = kfs.run([kfs.KOLABFS, "--check", config], check=False, timeout=120)
    assert p.returncode == 0 and "idle_timeout" not in p.stdout and "max_age" not in p.stdout, \
        p.stdout


def test_version_and_help():
    p = kfs.run([kfs.KOLABFS, "--version"], check=False)
    assert p.returncode == 0, p.stderr
    assert kfs.VERSION in p.stdout
    p = kfs.run([kfs.KOLABFS, "--help"], check=False)
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert "--check" in out and "MOUNTPOINT" in out.upper()
