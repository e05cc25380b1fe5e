"""[ldap:NAME]: live LDIF exports of directory servers, through the mount.

A real 389 Directory Server (mode = task; two backends, a few thousand
entries) and a real OpenLDAP slapd (mode = search), the real kolabfs binary
on a loop btrfs.  The servers are module fixtures, started before any
kolabfs mount and in the test's own mount namespace (only dscreate runs in
a private one, see ldapservers.py).  Restores are done as a backup would:
the LDIF is copied out of the dated set directory (cp -a, rsync -a) and
imported with the server's own offline import.
"""
import errno
import os
import pwd
import shutil
import stat
import tempfile
from urllib.parse import quote

import pytest

import kfs
from ldapservers import (DirSrv, Slapd, kolab_ldif, normalised_ldif, tricky_ldif,
                         user_password, write_secret)

DS_BACKENDS = {"userroot": "dc=example,dc=org", "example_com": "dc=example,dc=com"}
DS_USERS = {"userroot": 2000, "example_com": 600}
DS_GROUPS = {"userroot": 40, "example_com": 10}
CLEARTEXT = 10          # users whose cleartext password the server hashed
OL_SUFFIX = "dc=example,dc=net"
# attributes compared before and after a restore (user ones, and the ones
# ldif2db must keep from a replica export)
COMPARE = ("*", "nsUniqueId", "createTimestamp", "creatorsName")


@pytest.fixture(scope="module")
def lwork():
    d = tempfile.mkdtemp(prefix="kfs-ldap-", dir="/tmp")
    os.chmod(d, 0o755)          # the servers run as dirsrv and openldap
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ds(lwork):
    s = DirSrv(os.path.join(lwork, "ds"), "kfs", DS_BACKENDS)
    try:
        s.create()
        s.start()
        for be, suffix in DS_BACKENDS.items():
            s.add(kolab_ldif(suffix, DS_USERS[be], DS_GROUPS[be], cleartext=CLEARTEXT))
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def ol(lwork):
    s = Slapd(os.path.join(lwork, "ol"), OL_SUFFIX)
    try:
        s.create()
        s.start()
        s.add(tricky_ldif(OL_SUFFIX))
        # an early entry moved under a newer parent: mdb returns it first
        s.tool("ldapmodrdn", "-s", "ou=Late," + OL_SUFFIX, "uid=u1,ou=People," + OL_SUFFIX,
               "uid=u1")
        yield s
    finally:
        s.stop()


@pytest.fixture
def ds_up(ds):
    """The 389-ds server, started again if a test left it stopped."""
    if not ds.running():
        ds.start()
    return ds


@pytest.fixture
def ol_up(ol):
    if not ol.running():
        ol.start()
    yield ol
    if not ol.running():
        ol.start()


def ldap_section(name, server, mode, password_file, extra=()):
    return ["[ldap:%s]" % name, "uri = %s" % server.uri, "bind_dn = %s" % server.root_dn,
            "password_file = %s" % password_file, "mode = %s" % mode, "timeout = 10"] \
        + list(extra) + [""]


def ldap_config(work, btrfs, *sections, name="kolabfs-ldap.conf"):
    lines = []
    for s in sections:
        lines += s
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=("spool",), extra=lines))
    return path


def ds_section(work, ds, password=None, name="ds"):
    pw = write_secret(os.path.join(work, name + ".pw"), (password or ds.password) + "\n")
    return ldap_section(name, ds, "task", pw)


def ol_section(work, ol, password=None, name="ol", extra=()):
    pw = write_secret(os.path.join(work, name + ".pw"), (password or ol.password) + "\n")
    return ldap_section(name, ol, "search", pw, extra)


def set_name(k):
    return os.readlink(k.path("snapshots", "latest"))


def assert_no_secret(secrets, *texts_or_dirs):
    """No password in the given texts or in any file below the given dirs."""
    for t in texts_or_dirs:
        if os.path.isdir(t):
            for d, _, files in os.walk(t):
                for n in files:
                    with open(os.path.join(d, n), "rb") as f:
                        data = f.read()
                    for s in secrets:
                        assert s.encode() not in data, "password in %s" % os.path.join(d, n)
        else:
            for s in secrets:
                assert s not in t, "password in output: %s" % t


def assert_nothing_left(work, btrfs, k, ds=None):
    assert not kfs.is_mounted(k.mp)
    assert not kfs.kolabfs_pids(k.mp)
    assert btrfs.subvolumes() == {"spool", "mysql", "imap"}, btrfs.subvolumes()
    sets = os.path.join(work, "state", "sets")
    assert not os.path.exists(sets) or os.listdir(sets) == []
    if ds:
        ds.wait_no_tasks()
        assert ds.ldifdir_leftovers() == []


def expect_refused(work, btrfs, k, *fragments, secrets=(), ds=None):
    rc = k.start()
    assert rc != 0, "kolabfs mounted although it should have refused:\n" + k.err
    print("refused as expected:", k.err.strip())
    for frag in fragments:
        assert frag in k.err, "%r not in stderr: %s" % (frag, k.err)
    assert_no_secret(secrets, k.err + k.out)
    assert_nothing_left(work, btrfs, k, ds)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def dn_count(data):
    return sum(1 for l in data.split(b"\n") if l.startswith(b"dn:"))


# --------------------------------------------------------------------------
# task mode: 389 Directory Server

def test_task_mode_exports_every_backend_and_ldif2db_restores_them(
        work, btrfs, ds_up, kolabfs_factory):
    ds = ds_up
    dirsrv = pwd.getpwnam("dirsrv")
    assert os.stat(ds.conf).st_uid == dirsrv.pw_uid      # the instance's owner
    before = {s: normalised_ldif(ds.search(s, *COMPARE)) for s in DS_BACKENDS.values()}
    counts = {be: ds.count(s) for be, s in DS_BACKENDS.items()}
    assert counts["userroot"] > 2000 and sum(counts.values()) > 2500, counts

    k = kolabfs_factory(ldap_config(work, btrfs, ds_section(work, ds)))
    k.start()
    k.check_started()
    name = set_name(k)
    top = k.path("snapshots", name, "ds")
    assert sorted(os.listdir(top)) == ["example_com.ldif", "userroot.ldif"]
    m = k.manifest(name)["ldap"]
    assert list(m) == ["ds"]
    by_file = {e["file"]: e for e in m["ds"]}
    assert set(by_file) == {"example_com.ldif", "userroot.ldif"}
    for be, suffix in DS_BACKENDS.items():
        f = os.path.join(top, be + ".ldif")
        st = os.stat(f)
        data = read_all(f)
        e = by_file[be + ".ldif"]
        assert (st.st_uid, st.st_gid) == (dirsrv.pw_uid, dirsrv.pw_gid)
        assert stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISREG(st.st_mode)
        assert st.st_size == len(data) == e["bytes"]
        assert e["backend"] == be and e["suffix"] == suffix and e["task_exit_code"] == 0
        assert e["entries"] == dn_count(data) == counts[be], (e, counts)
        assert e["duration_ms"] > 0
        # an export for a replica: the replication state is in it
        assert b"\nnsUniqueId: " in data
    # the server's user reads it through the mount, others do not
    head = read_all(os.path.join(top, "userroot.ldif"))[:16].decode()
    assert kfs.run(["runuser", "-u", "dirsrv", "--", "head", "-c", "16",
                    os.path.join(top, "userroot.ldif")]).stdout == head
    out, _ = kfs.as_nobody_errno(
        "import os\ntry:\n open(%r).close(); print('ok')\nexcept OSError as e: print(e.errno)"
        % os.path.join(top, "userroot.ldif"))
    assert out == str(errno.EACCES)
    assert_no_secret([ds.password], k.err + k.out, k.path("snapshots", name))
    assert ds.ldifdir_leftovers() == []

    # the directory changes after the set
    deleted = ["uid=user3,ou=People,dc=example,dc=org",
               "uid=user19,ou=North,ou=Sales,ou=Org,dc=example,dc=org",
               "cn=group1,ou=North,ou=Sales,ou=Org,dc=example,dc=org",
               "uid=user5,ou=People,dc=example,dc=com"]
    ds.delete(*deleted)
    ds.modify("dn: uid=user7,ou=People,dc=example,dc=org\nchangetype: modify\n"
              "replace: userPassword\nuserPassword: changed-7\n-\n"
              "replace: mail\nmail: someone.else@example.org\n\n"
              "dn: uid=user2,ou=People,dc=example,dc=org\nchangetype: modify\n"
              "replace: userPassword\nuserPassword: changed-2\n")
    ds.add("dn: uid=newcomer,ou=People,dc=example,dc=org\nobjectClass: inetOrgPerson\n"
           "uid: newcomer\ncn: New\nsn: Comer\n")
    assert not ds.exists(deleted[0]) and ds.binds("uid=user7,ou=People,dc=example,dc=org",
                                                  "changed-7")

    # the backup: out of the dated directory, owner and mode kept
    backup = os.path.join(work, "backup")
    os.makedirs(backup)
    os.chmod(backup, 0o755)
    kfs.run(["cp", "-a", os.path.join(top, "userroot.ldif"), backup])
    kfs.run(["rsync", "-a", os.path.join(top, "example_com.ldif"), backup + "/"])
    k.stop()
    assert os.listdir(os.path.join(work, "state", "sets")) == []
    for be in DS_BACKENDS:
        st = os.stat(os.path.join(backup, be + ".ldif"))
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (dirsrv.pw_uid, 0o600)

    ds.stop()
    for be in DS_BACKENDS:
        ds.ldif2db(be, os.path.join(backup, be + ".ldif"))
    ds.start()
    for s in DS_BACKENDS.values():
        assert normalised_ldif(ds.search(s, *COMPARE)) == before[s], "%s differs" % s
    for dn in deleted:
        assert ds.exists(dn), dn
    assert not ds.exists("uid=newcomer,ou=People,dc=example,dc=org")
    # old passwords: {SSHA} ones and one the server had hashed itself
    assert ds.binds("uid=user7,ou=People,dc=example,dc=org", user_password(7, CLEARTEXT))
    assert not ds.binds("uid=user7,ou=People,dc=example,dc=org", "changed-7")
    assert ds.binds("uid=user2,ou=People,dc=example,dc=org", user_password(2, CLEARTEXT))
    assert ds.binds("uid=user1998,ou=People,dc=example,dc=org", user_password(1998, CLEARTEXT))
    assert ds.binds("uid=user5,ou=People,dc=example,dc=com", user_password(5, CLEARTEXT))


def test_check_lists_backends_and_bases(work, btrfs, ds_up, ol_up):
    ds_up.wait_no_tasks()
    config = ldap_config(work, btrfs, ds_section(work, ds_up), ol_section(work, ol_up))
    p = kfs.run([kfs.KOLABFS, "--check", config], check=False)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "ldap ds: %s" % ds_up.uri in out
    assert "[ldap:ds] backend userroot (dc=example,dc=org) -> userroot.ldif" in out
    assert "[ldap:ds] backend example_com (dc=example,dc=com) -> example_com.ldif" in out
    assert "may add export tasks" in out and ds_up.ldifdir in out
    assert "ldap ol: %s" % ol_up.uri in out
    assert "[ldap:ol] base %s -> %s.ldif" % (OL_SUFFIX, OL_SUFFIX) in out
    assert "owned by %d:%d" % (pwd.getpwnam("openldap").pw_uid,
                               pwd.getpwnam("openldap").pw_gid) in out
    assert_no_secret([ds_up.password, ol_up.password], out + p.stderr)
    assert not os.path.exists(os.path.join(work, "state"))
    assert ds_up.task_entries() == []

    bad = ldap_config(work, btrfs, ds_section(work, ds_up, password="not-it"), name="bad.conf")
    p = kfs.run([kfs.KOLABFS, "--check", bad], check=False)
    assert p.returncode != 0
    assert "[ldap:ds] %s" % ds_up.uri in p.stderr and "Invalid credentials" in p.stderr
    assert_no_secret(["not-it", ds_up.password], p.stdout + p.stderr)


def test_task_mode_over_ldapi_binds_by_autobind(work, btrfs, ds_up, kolabfs_factory):
    """No password: SASL EXTERNAL over the ldapi socket, where 389-ds maps
    root to cn=Directory Manager; bind_dn is the identity kolabfs insists on."""
    ldapi = "ldapi://" + quote(ds_up.ldapi, safe="")
    k = kolabfs_factory(ldap_config(work, btrfs, [
        "[ldap:ds]", "uri = %s" % ldapi, "bind_dn = cn=Directory Manager", "mode = task", ""]))
    k.start()
    k.check_started()
    assert sorted(os.listdir(k.latest("ds"))) == ["example_com.ldif", "userroot.ldif"]
    assert [e["task_exit_code"] for e in k.manifest()["ldap"]["ds"]] == [0, 0]
    k.stop()
    other = "uid=user1,ou=People,dc=example,dc=org"
    k = kolabfs_factory(ldap_config(work, btrfs, [
        "[ldap:ds]", "uri = %s" % ldapi, "bind_dn = %s" % other, "mode = task", ""],
        name="other.conf"))
    expect_refused(work, btrfs, k, "[ldap:ds] %s" % ldapi,
                   'SASL EXTERNAL maps kolabfs to "cn=Directory Manager", not to bind_dn "%s"'
                   % other, ds=ds_up)


# --------------------------------------------------------------------------
# search mode: OpenLDAP

def test_search_mode_slapadd_gives_the_same_directory(work, btrfs, ol_up, kolabfs_factory):
    ol = ol_up
    openldap = pwd.getpwnam("openldap")
    k = kolabfs_factory(ldap_config(work, btrfs, ol_section(work, ol)))
    k.start()
    k.check_started()
    name = set_name(k)
    f = k.path("snapshots", name, "ol", OL_SUFFIX + ".ldif")
    assert os.listdir(k.path("snapshots", name, "ol")) == [OL_SUFFIX + ".ldif"]
    st = os.stat(f)
    data = read_all(f)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (openldap.pw_uid,
                                                                openldap.pw_gid, 0o600)
    assert st.st_size == len(data)
    [e] = k.manifest(name)["ldap"]["ol"]
    assert e == dict(e, backend=OL_SUFFIX, suffix=OL_SUFFIX, file=OL_SUFFIX + ".ldif",
                     bytes=len(data), entries=ol.count(OL_SUFFIX), task_exit_code=-1)
    assert dn_count(data) == e["entries"]
    assert_no_secret([ol.password], k.err + k.out, k.path("snapshots", name))
    original = normalised_ldif(ol.slapcat())

    backup = os.path.join(work, "backup")
    kfs.run(["mkdir", "-p", backup])
    kfs.run(["cp", "-a", f, backup])
    k.stop()
    copy = os.path.join(backup, OL_SUFFIX + ".ldif")
    assert os.stat(copy).st_uid == openldap.pw_uid

    # an empty database of the same configuration
    conf2 = os.path.join(work, "restored", "slapd.conf")
    db2 = os.path.join(work, "restored", "db")
    os.makedirs(os.path.dirname(conf2))
    ol.write_conf(conf2, db2)
    kfs.run(["slapadd", "-f", conf2, "-b", OL_SUFFIX, "-l", copy])
    restored = normalised_ldif(ol.slapcat(["-f", conf2]))
    assert len(restored) == e["entries"]
    assert restored == original


# --------------------------------------------------------------------------
# failures: a clear message naming the section and the server, nothing left

def test_wrong_password(work, btrfs, ds_up, kolabfs_factory):
    k = kolabfs_factory(ldap_config(work, btrfs, ds_section(work, ds_up, password="wrong-pw")))
    expect_refused(work, btrfs, k, "[ldap:ds] %s" % ds_up.uri,
                   'bind as "cn=Directory Manager" failed', "Invalid credentials",
                   secrets=["wrong-pw", ds_up.password], ds=ds_up)


def test_server_down(work, btrfs, ol_up, kolabfs_factory):
    config = ldap_config(work, btrfs, ol_section(work, ol_up))
    ol_up.stop()
    k = kolabfs_factory(config)
    expect_refused(work, btrfs, k, "[ldap:ol] %s" % ol_up.uri, "Can't contact LDAP server",
                   secrets=[ol_up.password])


def test_unknown_base(work, btrfs, ol_up, kolabfs_factory):
    k = kolabfs_factory(ldap_config(work, btrfs, ol_section(
        work, ol_up, extra=["bases = %s;dc=nothere,dc=net" % OL_SUFFIX])))
    expect_refused(work, btrfs, k, "[ldap:ol] %s" % ol_up.uri,
                   "base dc=nothere,dc=net does not exist", secrets=[ol_up.password])


def test_export_task_failing(work, btrfs, ds_up, kolabfs_factory):
    """The server cannot write into its LDIF directory: the task fails, its
    log is in the message, the task entry expires, no file is left."""
    st = os.stat(ds_up.ldifdir)
    os.chown(ds_up.ldifdir, 0, 0)
    os.chmod(ds_up.ldifdir, 0o755)
    try:
        k = kolabfs_factory(ldap_config(work, btrfs, ds_section(work, ds_up)))
        expect_refused(work, btrfs, k, "[ldap:ds] %s" % ds_up.uri,
                       "export task failed with exit code", ds_up.ldifdir,
                       secrets=[ds_up.password], ds=ds_up)
    finally:
        os.chown(ds_up.ldifdir, st.st_uid, st.st_gid)
        os.chmod(ds_up.ldifdir, stat.S_IMODE(st.st_mode))


def test_mkdir_while_server_down_fails_and_leaves_nothing(work, btrfs, ol_up, kolabfs_factory):
    k = kolabfs_factory(ldap_config(work, btrfs, ol_section(work, ol_up)))
    k.start()
    k.check_started()
    first = set_name(k)
    subvols = btrfs.subvolumes()
    ol_up.stop()
    with pytest.raises(OSError) as e:
        os.mkdir(k.path("snapshots", "while-down"))
    assert e.value.errno == errno.EIO
    assert sorted(os.listdir(k.path("snapshots"))) == sorted([first, "latest"])
    assert set_name(k) == first
    assert btrfs.subvolumes() == subvols
    assert os.listdir(os.path.join(work, "state", "sets")) == [first]
    ol_up.start()
    os.mkdir(k.path("snapshots", "while-up"))
    assert set_name(k) == "while-up"
    assert os.listdir(k.path("snapshots", "while-up", "ol")) == [OL_SUFFIX + ".ldif"]
    k.stop()
    assert btrfs.subvolumes() == {"spool", "mysql", "imap"}


# --------------------------------------------------------------------------
# the daemon with both modes under valgrind

def test_daemon_with_ldap_sections_is_clean_under_valgrind(work, btrfs, ds_up, ol_up):
    """Sets with a task-mode and a search-mode export, taken at mount time
    and with mkdir, one failing (server down), read and dropped: no memory
    error and no definite or indirect leak, as test_leaks.py for volumes."""
    config = ldap_config(work, btrfs, ds_section(work, ds_up), ol_section(work, ol_up))
    mp = os.path.join(work, "mnt")
    with kfs.UnderValgrind(config, mp, os.path.join(work, "valgrind.log")) as v:
        v.wait_mounted()
        for f in ("ds/userroot.ldif", "ol/%s.ldif" % OL_SUFFIX):
            assert read_all(os.path.join(mp, "snapshots", "latest", f))
        os.mkdir(os.path.join(mp, "snapshots", "extra"))
        with open(os.path.join(mp, "snapshots", "extra", "MANIFEST.json")) as f:
            assert '"ldap"' in f.read()
        ol_up.stop()
        with pytest.raises(OSError) as e:
            os.mkdir(os.path.join(mp, "snapshots", "while-down"))
        assert e.value.errno == errno.EIO
        ol_up.start()
        os.rmdir(os.path.join(mp, "snapshots", "extra"))
    report = v.report()
    assert v.rc == 0, "kolabfs under valgrind exited %d:\n%s" % (v.rc, report[-6000:])
    assert "definitely lost" not in report and "Invalid" not in report, report[-6000:]
    assert not [s for s in btrfs.subvolumes() if ".kolabfs-snapshots" in s], btrfs.subvolumes()
    assert os.listdir(os.path.join(work, "state", "sets")) == []
