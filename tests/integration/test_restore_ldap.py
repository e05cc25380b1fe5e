"""doc/restore.md, section 6 (the directory): every command block is run.

The guide's blocks are fenced ```sh blocks right after an HTML comment
`<!-- test: NAME -->` (as in section 5, see test_restore_mysql.py).  Each is
run as it stands with `bash -euo pipefail`, the guide's variables ($SET,
$INST, ...) set to the test's paths, against real servers: a 389 Directory
Server 2.3 (mode = task, plus a [copy:dirsrv] of its configuration
directory), a second one as its replica, and an OpenLDAP slapd (mode =
search).  $SET is the set copied out of the mount's dated directory with
rsync, as a backup and its restore would give it.

The 389-ds instances keep every path under the test's directory (see
ldapservers.py), so the blocks that run dsctl run where
/usr/share/dirsrv/inf/defaults.inf points there (DirSrv.ns); dsconf and the
rest run plainly.  The `systemctl stop/start` the guide asks for in its
text are done here by stopping and starting ns-slapd and slapd.
"""
import json
import os
import pwd
import re
import shutil
import tempfile

import pytest

import guide
import kfs
from ldapservers import DirSrv, Slapd, kolab_ldif, normalised_ldif, tricky_ldif, write_secret

VARS = {"SET", "NAME", "INST", "CONFDIR", "LDIFDIR", "COPY", "BACKEND", "SUPPLIER", "PWFILE",
        "SUFFIX", "AGMT", "BASE", "SLAPD_D", "LDAPDB"}
BLOCK_NAMES = {"ldap-vars", "ldap-manifest", "ds-restore-config", "ds-ldif2db",
               "ds-replica-poke", "ol-slapadd", "ol-drop-old"}
SUFFIX = "dc=example,dc=org"
OTHER = "dc=example,dc=com"
DS_BACKENDS = {"userroot": SUFFIX, "example_com": OTHER}
COMPARE = ("*", "nsUniqueId", "createTimestamp", "creatorsName")
REPL_DN, REPL_PW = "cn=replication manager,cn=config", "repl-secret-kolabfs"
# As dsconf's `replication enable --bind-passwd` and `repl-agmt create` add them.
REPL_MANAGER_LDIF = """\
dn: %s
objectClass: top
objectClass: inetUser
objectClass: netscapeServer
objectClass: nsAccount
cn: replication manager
uid: replication manager
userPassword: %s
"""
AGREEMENT_LDIF = """\
dn: %(dn)s
objectClass: top
objectClass: nsds5replicationagreement
cn: to-replica
description: to-replica
nsDS5ReplicaRoot: %(suffix)s
nsDS5ReplicaHost: 127.0.0.1
nsDS5ReplicaPort: %(port)d
nsDS5ReplicaBindMethod: simple
nsDS5ReplicaTransportInfo: LDAP
nsDS5ReplicaBindDN: %(bind_dn)s
nsDS5ReplicaCredentials: %(pw)s
"""


PART = guide.Part(r"6\. ", "section 6")


def test_guide_blocks_are_all_run():
    """Every command of section 6 is in a marked block, and every marked
    block is one this file runs."""
    PART.check(BLOCK_NAMES, "ldap-vars", VARS)


class Block(guide.Runner):
    """Runs the guide's blocks with the test's variables; their stdout and
    stderr (dsctl reports on stderr)."""

    def __init__(self, work, **variables):
        super().__init__(PART, work, with_stderr=True, **variables)

    def run(self, name, ns=None, **more):
        """Run block NAME; with ns (a DirSrv), where dsctl finds that instance."""
        return super().run(name, prefix=ns.ns_argv() if ns else None, **more)


@pytest.fixture(scope="module")
def lwork():
    d = tempfile.mkdtemp(prefix="kfs-ldap-restore-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ds(lwork):
    s = DirSrv(os.path.join(lwork, "ds"), "kolab", DS_BACKENDS)
    try:
        s.create()
        s.start()
        s.add(kolab_ldif(SUFFIX, 300, 12, cleartext=5))
        s.add(kolab_ldif(OTHER, 50, 3))
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def ol(lwork):
    s = Slapd(os.path.join(lwork, "ol"), SUFFIX)
    try:
        s.create()
        s.start()
        s.add(tricky_ldif(SUFFIX, users=100, depth=6))
        yield s
    finally:
        s.stop()


def config(work, btrfs, *sections):
    path = os.path.join(work, "kolabfs-ldap.conf")
    lines = []
    for s in sections:
        lines += s + [""]
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=("spool",), extra=lines))
    return path


def ldap_section(work, name, server, mode):
    pw = write_secret(os.path.join(work, name + ".pw"), server.password + "\n")
    return ["[ldap:%s]" % name, "uri = %s" % server.uri, "bind_dn = %s" % server.root_dn,
            "password_file = %s" % pw, "mode = %s" % mode]


def take_set_and_back_up(work, k):
    """Mount, and copy the set out of its dated directory: the backup."""
    k.start()
    k.check_started()
    name = os.readlink(k.path("snapshots", "latest"))
    backup = os.path.join(work, "backup")
    kfs.run(["rsync", "-aHAX", "--numeric-ids", k.path("snapshots", name) + "/", backup + "/"])
    return name, backup


def ds_vars(ds, backup, **more):
    v = dict(SET=backup, NAME="ds", INST=ds.inst, CONFDIR=ds.conf, LDIFDIR=ds.ldifdir,
             COPY="dirsrv", BACKEND="userroot")
    v.update(more)
    return v


def test_restore_389ds_configuration_and_backend(work, btrfs, ds, kolabfs_factory):
    dirsrv = pwd.getpwnam("dirsrv")
    before = normalised_ldif(ds.search(SUFFIX, *COMPARE))
    sizelimit = ds.search("cn=config", "nsslapd-sizelimit", scope="base")
    assert "nsslapd-sizelimit: 2000" in sizelimit
    k = kolabfs_factory(config(work, btrfs, ldap_section(work, "ds", ds, "task"),
                               ["[copy:dirsrv]", "paths = %s" % ds.conf]))
    name, backup = take_set_and_back_up(work, k)
    manifest = k.manifest(name)
    k.stop()

    # after the set: entries deleted and changed in both backends, a setting changed
    gone = ["uid=user3,ou=People," + SUFFIX, "uid=user9,ou=North,ou=Sales,ou=Org," + SUFFIX,
            "cn=group0,ou=Groups," + SUFFIX]
    ds.delete(*gone)
    ds.modify("dn: uid=user1,ou=People,%s\nchangetype: modify\nreplace: userPassword\n"
              "userPassword: changed\n-\nreplace: mailQuota\nmailQuota: 1\n" % SUFFIX)
    ds.add("dn: uid=intruder,ou=People,%s\nobjectClass: inetOrgPerson\nuid: intruder\n"
           "cn: I\nsn: I\n" % SUFFIX)
    ds.delete("uid=user4,ou=People," + OTHER)
    ds.modify("dn: cn=config\nchangetype: modify\nreplace: nsslapd-sizelimit\n"
              "nsslapd-sizelimit: 42\n")

    b = Block(work, **ds_vars(ds, backup))
    out = b.run("ldap-manifest")
    shown, end = json.JSONDecoder().raw_decode(out)
    assert shown == manifest["ldap"]
    for e in manifest["ldap"]["ds"]:
        assert re.search(r"^dirsrv:dirsrv 600 %d %s$" % (e["bytes"], re.escape(
            os.path.join(backup, "ds", e["file"]))), out[end:], re.M), out

    ds.stop()                                       # systemctl stop dirsrv@kolab
    # why the guide insists on the owner: a root-owned 0600 LDIF fails to
    # import *and* leaves the backend empty
    bad = os.path.join(ds.ldifdir, "root-owned.ldif")
    shutil.copyfile(os.path.join(backup, "ds", "userroot.ldif"), bad)
    os.chmod(bad, 0o600)
    assert ds.ldif2db("userroot", bad, check=False).returncode != 0
    os.unlink(bad)
    ds.start()
    assert not ds.exists(SUFFIX), "the failed import left the backend as it was"
    ds.stop()

    b.run("ds-restore-config")
    st = os.stat(os.path.join(ds.conf, "dse.ldif"))
    assert (st.st_uid, st.st_mode & 0o777) == (dirsrv.pw_uid, 0o600)
    out = b.run("ds-ldif2db", ns=ds)
    assert "ldif2db successful" in out, out
    assert not any(n.endswith(".ldif") for n in os.listdir(ds.ldifdir))
    ds.start()                                      # systemctl start dirsrv@kolab

    assert normalised_ldif(ds.search(SUFFIX, *COMPARE)) == before
    assert all(ds.exists(dn) for dn in gone)
    assert not ds.exists("uid=intruder,ou=People," + SUFFIX)
    assert ds.binds("uid=user1,ou=People," + SUFFIX, "clear-1")      # hashed by the server
    assert ds.binds("uid=user42,ou=People," + SUFFIX, "pw-42")       # {SSHA}
    assert not ds.binds("uid=user1,ou=People," + SUFFIX, "changed")
    assert ds.search("cn=config", "nsslapd-sizelimit", scope="base") == sizelimit
    # the other backend was not imported: as it is now
    assert not ds.exists("uid=user4,ou=People," + OTHER)


def test_reinitialise_replica_from_a_set_of_its_supplier(work, btrfs, ds, kolabfs_factory):
    replica = DirSrv(os.path.join(work, "replica"), "replica", {"userroot": SUFFIX})
    try:
        replica.create()
        replica.start()
        ds.dsconf("replication", "enable", "--suffix", SUFFIX, "--role", "supplier",
                  "--replica-id", "1")
        # dsconf (2.3) takes the replication manager's password only as
        # --bind-passwd, on its command line: the manager entry and the
        # agreement are added as LDIF on stdin instead, what dsconf would add.
        replica.dsconf("replication", "enable", "--suffix", SUFFIX, "--role", "consumer",
                       "--bind-dn", REPL_DN)
        replica.add(REPL_MANAGER_LDIF % (REPL_DN, REPL_PW))
        found = ds.search("cn=mapping tree,cn=config", "1.1",
                          filt="(&(objectClass=nsds5replica)(nsDS5ReplicaRoot=%s))" % SUFFIX)
        assert found.startswith("dn: "), found
        replica_dn = found.split("\n", 1)[0][len("dn: "):]
        ds.add(AGREEMENT_LDIF % dict(dn="cn=to-replica," + replica_dn, suffix=SUFFIX,
                                     port=replica.port, bind_dn=REPL_DN, pw=REPL_PW))
        assert "to-replica" in ds.dsconf("repl-agmt", "list", "--suffix", SUFFIX)
        section = ldap_section(work, "ds", ds, "task")
        k = kolabfs_factory(config(work, btrfs, section))
        name, backup = take_set_and_back_up(work, k)
        k.stop()
        with open(os.path.join(backup, "ds", "userroot.ldif")) as f:
            assert "nsds50ruv: {replicageneration}" in f.read()

        # the supplier goes on after the set
        ds.modify("dn: uid=user7,ou=People,%s\nchangetype: modify\nreplace: mail\n"
                  "mail: after.the.set@example.org\n" % SUFFIX)
        ds.delete("uid=user8,ou=People," + SUFFIX)
        ds.add("dn: uid=later,ou=People,%s\nobjectClass: inetOrgPerson\nuid: later\n"
               "cn: L\nsn: L\nuserPassword: later-pw\n" % SUFFIX)

        replica.stop()                              # systemctl stop dirsrv@replica
        # PWFILE: kolabfs's own password file of [ldap:ds] (with its newline)
        b = Block(work, **ds_vars(replica, backup, SUPPLIER=ds.uri,
                                  PWFILE=os.path.join(work, "ds.pw"), SUFFIX=SUFFIX,
                                  AGMT="to-replica"))
        assert "ldif2db successful" in b.run("ds-ldif2db", ns=replica)
        replica.start()                             # systemctl start dirsrv@replica
        out = b.run("ds-replica-poke")
        assert 'Status For Agreement: "to-replica"' in out, out

        def same():
            return normalised_ldif(replica.search(SUFFIX, *COMPARE)) == \
                normalised_ldif(ds.search(SUFFIX, *COMPARE))

        kfs.wait_until(same, 60, "the replica to catch up with its supplier", interval=0.5)
        assert "after.the.set@example.org" in replica.search("uid=user7,ou=People," + SUFFIX,
                                                             "mail", scope="base")
        assert not replica.exists("uid=user8,ou=People," + SUFFIX)
        assert replica.binds("uid=later,ou=People," + SUFFIX, "later-pw")
        out = b.run("ds-replica-poke")
        assert "Incremental update succeeded" in out, out
        assert "Total update" not in out
    finally:
        replica.stop()


def test_restore_openldap_with_slapadd(work, btrfs, ol, kolabfs_factory):
    openldap = pwd.getpwnam("openldap")
    at_set = normalised_ldif(ol.slapcat())
    k = kolabfs_factory(config(work, btrfs, ldap_section(work, "ol", ol, "search")))
    name, backup = take_set_and_back_up(work, k)
    manifest = k.manifest(name)["ldap"]
    k.stop()

    ol.delete("uid=u3,ou=People," + SUFFIX, "ou=l6,ou=l5,ou=l4,ou=l3,ou=l2,ou=l1," + SUFFIX)
    ol.modify("dn: uid=u5,ou=People,%s\nchangetype: modify\nreplace: userPassword\n"
              "userPassword: changed\n" % SUFFIX)
    ol.add("dn: uid=intruder,ou=People,%s\nobjectClass: inetOrgPerson\nuid: intruder\n"
           "cn: I\nsn: I\n" % SUFFIX)
    assert normalised_ldif(ol.slapcat()) != at_set

    b = Block(work, SET=backup, NAME="ol", BASE=SUFFIX, SLAPD_D=ol.slapd_d, LDAPDB=ol.db)
    out = b.run("ldap-manifest")
    shown, end = json.JSONDecoder().raw_decode(out)
    assert shown == manifest
    [e] = manifest["ol"]
    assert out[end:].split() == ["openldap:openldap", "600", str(e["bytes"]),
                                 os.path.join(backup, "ol", SUFFIX + ".ldif")]

    ol.stop()                                       # systemctl stop slapd
    b.run("ol-slapadd")
    assert os.stat(ol.db).st_uid == openldap.pw_uid
    ol.start()                                      # systemctl start slapd
    assert normalised_ldif(ol.slapcat()) == at_set
    assert ol.count(SUFFIX) == e["entries"]
    assert ol.binds("uid=u5,ou=People," + SUFFIX, "ol-5")
    assert not ol.exists("uid=intruder,ou=People," + SUFFIX)
    b.run("ol-drop-old")
    assert not os.path.exists(ol.db + ".before-restore")
