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
# (every key's wrong, empty, out-of-range and duplicated values, and bad
# NAMEs, are in the tables further down)
BAD = {
    "unknown-group": (lambda t, w, m: t + "[frobnicate]\nanswer = 42\n",
                      "[frobnicate]", [r"frobnicate"]),
    "unknown-key": (lambda t, w, m: _insert_after(t, "[kolabfs]", "colour = blue"),
                    "colour = blue", [r"\bcolour\b"]),
    "path-not-a-subvolume": (lambda t, w, m: t + "[volume:plain]\nbackend = btrfs\npath = %s\n"
                             % os.path.join(m, "spool", "user"),
                             "path = {mnt}/spool/user", [r"volume:plain", r"{mnt}/spool/user"]),
    "two-volumes-same-path": (lambda t, w, m: t + "[volume:spool2]\nbackend = btrfs\npath = %s\n"
                              % os.path.join(m, "spool"),
                              "path = {mnt}/spool", [r"spool2"]),
    "name-empty": (lambda t, w, m: t + "[volume:]\nbackend = btrfs\npath = %s\n"
                   % os.path.join(m, "extra"), "[volume:]", [r"\[volume:\]"]),
    "missing-state-dir-parent": (lambda t, w, m: t.replace(
        "state_dir = %s/state" % w, "state_dir = %s/missing/state" % w),
        "state_dir = {work}/missing/state", [r"state_dir", r"{work}/missing"]),
    "lvm-missing-vg": (lambda t, w, m: t + "[volume:db]\nbackend = lvm\nlv = vg0/lv_mysql\n"
                       "snapshot_size = 1G\n", "lv = vg0/lv_mysql", [r"no such volume group"]),
    "mysql-readable-password": (lambda t, w, m: t + "[mysql]\nsocket = /run/mysqld/mysqld.sock\n"
                                "password_file = %s\n" % _readable_file(w),
                                "password_file = {work}/readable.pw", [r"\[mysql\]", r"password_file"]),
    "ldap-section": (lambda t, w, m: t + "[ldap:ds]\nuri = ldap://127.0.0.1:389\nmode = task\n",
                     "[ldap:ds]", [r"ldap:ds"]),
    "volume-without-path": (lambda t, w, m: t + "[volume:nopath]\nbackend = btrfs\n",
                            "[volume:nopath]", [r"nopath"]),
    "copy-named-like-a-volume": (lambda t, w, m: t + "[copy:spool]\npaths = /etc/hostname\n",
                                 "[copy:spool]", [r"copy:spool"]),
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


# --------------------------------------------------------------------------
# Every key: a wrong type, empty, out of range, twice.  Each config is the
# standard one (state_dir, volume spool) plus the group under test with
# every key at a good value, one of them changed.  A refusal names the
# file, the line, the group and the key ("FILE:LINE: [GROUP] KEY: ..."),
# exits non-zero, and leaves nothing: no mount, no snapshot subvolume, no
# state_dir (where sets are recorded).  A key that may be empty ("none")
# is accepted empty: --check gets past the config and prints it.

LONG_PATH = "/" + "/".join(["d" * 200] * 25)            # 5025 bytes > PATH_MAX

# group -> (header, [(key, good value)]); {work} {mnt} {pw} {copy} filled in
GROUPS = {
    "kolabfs": ("[kolabfs]", [("state_dir", "{work}/state"),
                              ("name_format", "%Y-%m-%dT%H%M%SZ"),
                              ("idle_timeout", "3600"), ("max_age", "86400")]),
    "volume:extra": ("[volume:extra]", [("backend", "btrfs"), ("path", "{mnt}/extra"),
                                        ("subdir", "."), ("preset", "cyrus-spool"),
                                        ("exclude", "*.tmp;cache/")]),
    "volume:db": ("[volume:db]", [("backend", "lvm"), ("lv", "vg_kfs_none/lv_mysql"),
                                  ("snapshot_size", "1G")]),
    "mysql": ("[mysql]", [("socket", "/run/mysqld/mysqld.sock"), ("user", "kolabfs"),
                          ("password_file", "{pw}"), ("lock", "ftwrl"),
                          ("lock_wait_timeout", "30"), ("require_complete", "true")]),
    "mysql-tcp": ("[mysql]", [("host", "127.0.0.1"), ("port", "3306")]),
    "ldap:dir": ("[ldap:dir]", [("uri", "ldap://127.0.0.1:389"),
                                ("bind_dn", "cn=Directory Manager"), ("password_file", "{pw}"),
                                ("mode", "search"), ("bases", "dc=example,dc=org"),
                                ("starttls", "false"), ("timeout", "30")]),
    "copy:etc": ("[copy:etc]", [("paths", "{copy}")]),
}

ACCEPTED = object()     # the value is valid: --check accepts the config

# (group, key) -> {case: bad value (ACCEPTED: the value given, which is good)}
KEY_CASES = {
    ("kolabfs", "state_dir"): {"type": "var/lib/kolabfs", "range": LONG_PATH},
    ("kolabfs", "name_format"): {"type": "backup", "range": "%A" * 40},
    ("kolabfs", "idle_timeout"): {"type": "1h", "range": "31622401"},
    ("kolabfs", "max_age"): {"type": "-1", "range": "99999999999"},
    ("volume:extra", "backend"): {"type": "1", "range": "zfs"},
    ("volume:extra", "path"): {"type": "srv/spool", "range": LONG_PATH},
    ("volume:extra", "subdir"): {"type": "/data", "range": "a/../../etc", "empty": ACCEPTED},
    ("volume:extra", "preset"): {"type": "1", "range": "cyrus-spool;mysql", "empty": ACCEPTED},
    ("volume:extra", "exclude"): {"type": "/", "range": "*.tmp;;cache/", "empty": ACCEPTED},
    ("volume:db", "lv"): {"type": "/dev/vg0/lv_mysql", "range": "vg0/" + "l" * 128},
    ("volume:db", "snapshot_size"): {"type": "ten gigabytes", "range": "101%ORIGIN"},
    ("mysql", "socket"): {"type": "mysqld.sock", "range": "/run/" + "s" * 103},
    ("mysql-tcp", "host"): {"type": "/run/mysqld/mysqld.sock", "range": "h" * 254},
    ("mysql-tcp", "port"): {"type": "mysql", "range": "65536"},
    ("mysql", "user"): {"type": "kolab\\tfs", "range": "u" * 81},
    ("mysql", "password_file"): {"type": "mysql.pw", "range": LONG_PATH},
    ("mysql", "lock"): {"type": "1", "range": "sometimes"},
    ("mysql", "lock_wait_timeout"): {"type": "soon", "range": "3601"},
    ("mysql", "require_complete"): {"type": "yes", "range": "2"},
    ("ldap:dir", "uri"): {"type": "http://127.0.0.1", "range": "ldapi://%2Frun%2F" + "s" * 103},
    ("ldap:dir", "bind_dn"): {"type": "admin", "range": "cn=a\\nb"},
    ("ldap:dir", "password_file"): {"type": "ldap.pw", "range": LONG_PATH},
    ("ldap:dir", "mode"): {"type": "1", "range": "export"},
    ("ldap:dir", "bases"): {"type": "example.org", "range": "dc=a;dc=a", "empty": ACCEPTED},
    ("ldap:dir", "starttls"): {"type": "yes", "range": "2"},
    ("ldap:dir", "timeout"): {"type": "30s", "range": "0"},
    ("copy:etc", "paths"): {"type": "etc/hostname", "range": LONG_PATH},
}


def _key_cases():
    for (group, key), cases in sorted(KEY_CASES.items()):
        for case in ("type", "empty", "range", "twice"):
            yield pytest.param(group, key, case, id="%s-%s-%s" % (group, key, case))


def test_every_key_has_a_case():
    """The table covers every key the parser knows, and the man page
    documents each of them."""
    with open(os.path.join(kfs.SRCDIR, "src", "config.c")) as f:
        src = f.read()
    known = set()
    for body in re.findall(r"known\[\] = \{(.*?)\};", src, re.S):
        known |= set(re.findall(r'"([a-z_]+)"', body))
    assert len(known) > 20
    assert known == {k for _, k in KEY_CASES}
    with open(os.path.join(kfs.SRCDIR, "doc", "kolabfs.conf.5")) as f:
        doc = f.read().replace("\\_", "_")
    assert [k for k in known if k not in doc] == []


@pytest.fixture(scope="module")
def shared_btrfs():
    """One loop btrfs for the whole table: no refused config touches it,
    which every case checks."""
    import tempfile
    base = tempfile.mkdtemp(prefix="kfs-it-table-", dir="/tmp")
    fs = kfs.Btrfs(base)
    try:
        fs.setup()
        kfs.run(["btrfs", "subvolume", "create", fs.path("extra")])
        yield fs
    finally:
        errors = fs.teardown()
        import shutil
        shutil.rmtree(base, ignore_errors=True)
    assert not errors, errors


def _secret(work, name="good.pw", mode=0o600, data=b"secret\n"):
    path = os.path.join(work, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)
    return path


def _table_config(work, mnt, group, lines):
    """Standard config + GROUP's lines; returns (path, text lines)."""
    text = kfs.config_text(work, mnt, volumes=("spool",)).splitlines()
    if group == "kolabfs":
        # the group under test replaces the standard [kolabfs]
        i = text.index("[kolabfs]")
        text = text[:i] + text[i + 2:]
    text += [""] + lines
    path = os.path.join(work, "table.conf")
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(text) + "\n")
    return path, text


def _assert_refused(cmd_mode, path, lineno, group, key, work, btrfs, what=None):
    """Run kolabfs on PATH; it must refuse, naming PATH:LINENO, [GROUP] and
    KEY (None: the group alone; group None: neither), and create nothing."""
    before = btrfs.subvolumes()
    mp = os.path.join(work, "mnt")
    os.makedirs(mp, exist_ok=True)
    cmd = [kfs.KOLABFS, path, mp] if cmd_mode == "mount" else [kfs.KOLABFS, "--check", path]
    p = kfs.run(cmd, check=False, timeout=120, errors="surrogateescape")
    assert p.returncode != 0, "accepted:\n%s" % p.stderr
    where = "%s:%d: " % (path, lineno)
    if group and key:
        where += "[%s] %s: " % (group, key)
    elif group:
        where += "[%s]: " % group
    assert where in p.stderr, "expected %r in the message:\n%s" % (where, p.stderr)
    if what:
        assert re.search(what, p.stderr), "expected /%s/ in the message:\n%s" % (what, p.stderr)
    assert not kfs.is_mounted(mp), "mounted"
    assert not kfs.kolabfs_pids(mp), "a kolabfs process is left"
    assert btrfs.subvolumes() == before, "snapshot subvolumes left behind"
    assert not os.path.exists(os.path.join(work, "state")), "state_dir created"
    return p.stderr


@pytest.mark.parametrize("group, key, case", list(_key_cases()))
def test_key_table(group, key, case, work, shared_btrfs):
    header, keys = GROUPS[group]
    fill = dict(work=work, mnt=shared_btrfs.mnt, pw=_secret(work),
                copy=kfs.make_copy_sources(work)[0])
    lines, bad_index = [header], None
    for k, v in keys:
        v = v.format(**fill)
        if k == key:
            value = KEY_CASES[(group, key)].get(case, "")
            if case == "twice":
                lines.append("%s = %s" % (k, v))
                value = v
            elif case == "empty" and value is ACCEPTED:
                value = ""
            bad_index = len(lines)
            lines.append(("%s = %s" % (k, value)).rstrip())
        else:
            lines.append("%s = %s" % (k, v))
    path, text = _table_config(work, shared_btrfs.mnt, group, lines)
    lineno = len(text) - len(lines) + bad_index + 1
    shown_group = "mysql" if group == "mysql-tcp" else group
    if KEY_CASES[(group, key)].get(case) is ACCEPTED:
        p = kfs.run([kfs.KOLABFS, "--check", path], check=False, timeout=120)
        assert "state_dir: " in p.stdout, "refused an empty %s:\n%s" % (key, p.stderr)
        assert "%s:%d:" % (path, lineno) not in p.stderr, p.stderr
        if group != "ldap:dir":     # an LDAP server is reached, and not there
            assert p.returncode == 0, p.stderr
        return
    what = {"twice": r"duplicate key, first at line %d" % (lineno - 1),
            "empty": r"expected a non-empty value"}.get(case)
    for mode in ("check", "mount"):
        _assert_refused(mode, path, lineno, shown_group, key, work, shared_btrfs, what)


# NAMEs that are not one safe directory name, for every kind of group.
NAME_CASES = {
    "slash": b"a/b", "dotdot": b"..", "dot": b".", "leading-dot": b".hidden",
    "not-utf8": b"caf\xe9", "control": b"tab\there",
}
KIND_BODIES = {
    "volume": ["backend = btrfs", "path = {mnt}/extra"],
    "ldap": ["uri = ldap://127.0.0.1:389", "bind_dn = cn=Directory Manager",
             "password_file = {pw}", "mode = search"],
    "copy": ["paths = {copy}"],
}


@pytest.mark.parametrize("kind", sorted(KIND_BODIES))
@pytest.mark.parametrize("name", sorted(NAME_CASES))
def test_bad_names(kind, name, work, shared_btrfs):
    fill = dict(mnt=shared_btrfs.mnt, pw=_secret(work), copy=kfs.make_copy_sources(work)[0])
    raw = NAME_CASES[name]
    header = "[%s:%s]" % (kind, os.fsdecode(raw))
    lines = [header] + [b.format(**fill) for b in KIND_BODIES[kind]]
    path, text = _table_config(work, shared_btrfs.mnt, None, lines)
    lineno = len(text) - len(lines) + 1
    for mode in ("check", "mount"):
        if name == "not-utf8":
            # no group is named: the header itself is, escaped
            err = _assert_refused(mode, path, lineno, None, None, work, shared_btrfs,
                                  re.escape(r"expected UTF-8 text, got the group header "
                                            r'"[%s:caf\351]"' % kind))
        elif name == "control":
            # not a group header GKeyFile takes: no group is named
            err = _assert_refused(mode, path, lineno, None, None, work, shared_btrfs,
                                  re.escape(r'expected a group header such as [volume:NAME], '
                                            r'got "[%s:tab\there]"' % kind))
        else:
            err = _assert_refused(mode, path, lineno, "%s:%s" % (kind, raw.decode()), None,
                                  work, shared_btrfs, r"expected a NAME that is one directory name")
        assert "\udce9" not in err and "\xe9" not in err, "raw bytes in the message"


# password_file: missing, empty, a directory, readable by its group; for
# [mysql] and [ldap:NAME].  kolabfs checks them before it takes anything.
def _pw_missing(work):
    return os.path.join(work, "missing.pw")


def _pw_empty(work):
    return _secret(work, "empty.pw", data=b"")


def _pw_dir(work):
    d = os.path.join(work, "pw-dir")
    os.mkdir(d, 0o700)
    return d


def _pw_group(work):
    return _secret(work, "group.pw", mode=0o640)


PW_CASES = {"missing": (_pw_missing, r"does not exist"),
            "empty": (_pw_empty, r"is empty"),
            "directory": (_pw_dir, r"is a directory"),
            "group-readable": (_pw_group, r"has mode 0640: its group")}
PW_GROUPS = {
    "mysql": ["[mysql]", "socket = /run/mysqld/mysqld.sock", "user = kolabfs",
              "password_file = {pw}"],
    "ldap:dir": ["[ldap:dir]", "uri = ldap://127.0.0.1:389", "bind_dn = cn=Directory Manager",
                 "password_file = {pw}", "mode = search"],
}


@pytest.mark.parametrize("group", sorted(PW_GROUPS))
@pytest.mark.parametrize("case", sorted(PW_CASES))
def test_bad_password_files(case, group, work, shared_btrfs):
    make, what = PW_CASES[case]
    pw = make(work)
    lines = [l.format(pw=pw) for l in PW_GROUPS[group]]
    path, text = _table_config(work, shared_btrfs.mnt, None, lines)
    lineno = len(text) - len(lines) + lines.index("password_file = %s" % pw) + 1
    for mode in ("check", "mount"):
        _assert_refused(mode, path, lineno, group, "password_file", work, shared_btrfs,
                        re.escape(pw) + " " + what)
