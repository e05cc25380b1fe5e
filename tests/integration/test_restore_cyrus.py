"""doc/restore.md, the Cyrus sections (headings "## N. Cyrus: ..."): every
command block is run, against a real Cyrus IMAP 3.6.

The guide's blocks are fenced ```sh blocks right after an HTML comment
`<!-- test: cyrus-NAME -->`.  Each is run as it stands with
`bash -euo pipefail`, in a private mount namespace where /etc/imapd.conf is
the test server's configuration (bind-mounted over it), so that Debian's
`cyrus` wrapper and the tools find it as they find /etc/imapd.conf on a
Kolab server.  The guide's variables ($SET, $SPOOL, $MBOX, ...) are set to
the test's paths and names.  The `systemctl stop/start cyrus-imapd` the
guide asks for in its text are done here by stopping and starting master.

What is lost and restored, each read back over IMAP and compared with the
state before (tests/integration/cyrus.py: cyrus.state):
  - a message expunged, not yet purged: unexpunge (8.1);
  - a message expunged and purged (cyr_expire -X 0): from the set (8.2);
  - a folder with a subfolder deleted and purged (cyr_expire -D 0): from the
    set, with the same UIDs, flags and annotations (9); before the purge,
    the guide's check names the DELETED/ copy in the way;
  - a user deleted and purged: mailboxes, subscriptions, sharing (10);
  - the whole spool and configuration directory, into clean directories, a
    new Cyrus started on them (11): every mailbox, message and flag; the
    single-instance store's hard links intact;
  - which set holds a message (7).
The set restored from is the backup: an `rsync -aH` copy of the set.

Section 12, the whole server (test_whole_server): a real 389-ds, MariaDB and
Cyrus with the same users, one set of all three (restic), restored on a
new server: a fresh 389-ds instance (ldif2db), new btrfs subvolumes for the
datadir, spool and metadata; then the directory's entries, the database's
rows and the mail are those of the set, and the guide's check finds every
mail and Roundcube user in the directory.
"""
import json
import os
import re
from urllib.parse import quote

import cyrus
import guide
import kfs
from ldapservers import DirSrv, normalised_ldif, ssha, write_secret
from mariadb import MariaDB
from test_cyrus import assert_single_instance, cyrus_config, restic_backup, restic_env
from test_restore_mysql import MysqlUserServer

VARS = {"SET", "SETS", "SPOOL", "CONFDIR", "SCRATCH", "MBOX", "MSGID", "XUID", "USERID"}
BLOCK_NAMES = {"cyrus-vars", "cyrus-find-set", "cyrus-unexpunge-list", "cyrus-unexpunge",
               "cyrus-message-from-set", "cyrus-mailboxes-in-set", "cyrus-mailboxes-check",
               "cyrus-mailboxes-restore", "cyrus-user-files", "cyrus-whole-spool",
               "cyrus-list-mailboxes"}
PART = guide.Part(r"\d+\. Cyrus: ", "the Cyrus sections")
SERVER_VARS = {"SET", "NAME", "INST", "LDIFDIR", "LDAPI", "SUFFIX", "DATADIR", "SPOOL",
               "CONFDIR"}
SERVER_BLOCKS = {"server-vars", "server-manifest", "server-places", "server-directory",
                 "server-files", "server-check", "server-drop-fresh"}
SERVER = guide.Part(r"12\. The whole server", "section 12")
SUFFIX = "dc=example,dc=org"
LDAP_COMPARE = ("*", "nsUniqueId", "createTimestamp", "creatorsName")


def test_guide_blocks_are_all_run():
    PART.check(BLOCK_NAMES, "cyrus-vars", VARS)
    SERVER.check(SERVER_BLOCKS, "server-vars", SERVER_VARS)


def imapd_conf_is(server):
    """argv prefix: a private mount namespace where /etc/imapd.conf is the
    configuration of server (a cyrus.Cyrus)."""
    return ["unshare", "-m", "--propagation", "private", "--", "bash", "-c",
            'mount --bind "$0" /etc/imapd.conf && exec "$@"', server.conf]


class Guide(guide.Runner):
    """Runs the guide's blocks with the test's variables, /etc/imapd.conf
    being the given server's configuration."""

    def __init__(self, work, server, **variables):
        super().__init__(PART, work, prefix=imapd_conf_is(server), **variables)


def msgid(n):
    return "<kfs-%d@example.org>" % n


def lose_message(c, user, folder, uid):
    with c.login(cyrus.addr(user)) as m:
        cyrus.check(m.select(cyrus.quote(folder)))
        cyrus.check(m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)"))
        cyrus.check(m.expunge())
        m.close()


def messages_by_body(mailbox_state):
    """{body: flags} of one mailbox's state (UIDs aside)."""
    return {body: flags for flags, body in mailbox_state.values()}


def test_restore_cyrus(work, btrfs, kolabfs_factory):
    c = cyrus.Cyrus(os.path.join(work, "cyrus"), btrfs.path("spool"), btrfs.path("imap"))
    new = None
    try:
        c.start()
        store = cyrus.populate(c)
        before = cyrus.state(c)
        copies = {store.shared[0]: len(cyrus.USERS), store.shared[1]: 3}

        # the set, and the night's backup of it
        k = kolabfs_factory(cyrus_config(work, btrfs, c))
        k.start()
        k.check_started()
        first = os.readlink(k.path("snapshots", "latest"))
        backup = os.path.join(work, "backup")
        kfs.run(["rsync", "-aHAX", "--numeric-ids", k.latest() + "/", backup + "/"])
        assert_single_instance(os.path.join(backup, "spool"), store, copies)

        g = Guide(work, c, SET=backup, SETS=k.path("snapshots"), SPOOL=c.spool,
                  CONFDIR=c.confdir, SCRATCH=os.path.join(work, "scratch"))
        inbox = cyrus.mbox("john.doe")

        # 7. which set: a message that came after the first set is only in
        # the second one; an older one is in both
        n_late, late = store.next("arrived later", to=cyrus.addr("john.doe"))
        c.deliver([cyrus.addr("john.doe")], late)
        os.mkdir(k.path("snapshots", "second"))
        found = g.run("cyrus-find-set", MBOX=inbox, MSGID=msgid(n_late)).splitlines()
        assert len(found) == 1 and found[0].split()[1] == "second", found
        created = k.manifest("second")["created"]
        assert found[0].split()[0] == created and found[0].split()[2].endswith("."), found
        name, uid, flags, body = cyrus.find_message(before, "john.doe", 3)
        found = g.run("cyrus-find-set", MBOX=inbox, MSGID=msgid(3)).splitlines()
        assert sorted(l.split()[1] for l in found) == sorted([first, "second"]), found
        with open(found[0].split()[2], "rb") as f:
            assert f.read() == body
        os.rmdir(k.path("snapshots", "second"))

        # 8.1 expunged, not purged: unexpunge, same flags
        name, uid, flags, body = cyrus.find_message(before, "john.doe", 2)     # hard-linked
        assert name == "INBOX" and "\\Flagged" in flags and "$Label1" in flags
        lose_message(c, "john.doe", "INBOX", uid)
        listed = g.run("cyrus-unexpunge-list", MBOX=inbox)
        assert re.search(r"^UID: %d$" % uid, listed, re.M), listed
        g.run("cyrus-unexpunge", MBOX=inbox, XUID=str(uid))
        now = cyrus.state(c, ["john.doe"])["john.doe"]["mailboxes"]["INBOX"]
        assert messages_by_body(now)[body] == flags

        # 8.2 expunged and purged: from the set; same message, byte for byte
        name, uid, flags, body = cyrus.find_message(before, "john.doe", 3)
        assert name == "INBOX" and "\\Answered" in flags
        lose_message(c, "john.doe", "INBOX", uid)
        c.tool("cyr_expire", "-X", "0", "-E", "1")
        assert "UID: %d\n" % uid not in g.run("cyrus-unexpunge-list", MBOX=inbox)
        now = cyrus.state(c, ["john.doe"])["john.doe"]["mailboxes"]["INBOX"]
        assert body not in messages_by_body(now)
        g.run("cyrus-message-from-set", MBOX=inbox, MSGID=msgid(3))
        now = cyrus.state(c, ["john.doe"])["john.doe"]["mailboxes"]["INBOX"]
        assert body in messages_by_body(now)
        assert max(now) > max(before["john.doe"]["mailboxes"]["INBOX"])     # a new UID
        # the guide refuses to copy over a message that is still there
        g.run("cyrus-message-from-set", check=False, MBOX=inbox, MSGID=msgid(3))
        assert len([b for b in messages_by_body(cyrus.state(c, ["john.doe"])["john.doe"]
                                                ["mailboxes"]["INBOX"]) if b == body]) == 1

        # 9. a folder and its subfolder deleted; before the purge, the check
        # names the DELETED/ copies; after it, the folder comes back exactly
        folder = cyrus.mbox("john.doe", "Projects")
        with c.login(cyrus.addr("john.doe")) as m:
            cyrus.check(m.delete("Projects/Kolab"))
            cyrus.check(m.delete("Projects"))
            assert cyrus.list_mailboxes(m) == ["INBOX", "Other Users/jane.roe"]
        in_set = g.run("cyrus-mailboxes-in-set", MBOX=folder).split()
        assert sorted(in_set[0::2]) == ["example.org!user.john^doe.Projects",
                                        "example.org!user.john^doe.Projects.Kolab"], in_set
        blocked = g.run("cyrus-mailboxes-check", MBOX=folder).split()
        assert len(blocked) == 2 and all("DELETED" in b for b in blocked), blocked
        c.tool("cyr_expire", "-D", "0", "-E", "1")
        assert g.run("cyrus-mailboxes-check", MBOX=folder) == ""
        g.run("cyrus-mailboxes-restore", MBOX=folder)
        assert not os.path.exists(g.vars["SCRATCH"])
        now = cyrus.state(c, ["john.doe"])["john.doe"]
        for f in ("Projects", "Projects/Kolab"):
            assert now["mailboxes"][f] == before["john.doe"]["mailboxes"][f], f
            assert now["metadata"][f] == before["john.doe"]["metadata"][f], f
        assert now["metadata"]["Projects/Kolab"]["/shared/vendor/kolab/folder-type"] == "event"

        # 10. a user deleted and purged
        user = "jane.roe"
        with c.login() as m:
            cyrus.check(m.setacl(cyrus.quote(cyrus.mbox(user)), cyrus.ADMIN, "lrswipkxtecdan"))
            cyrus.check(m.delete(cyrus.quote(cyrus.mbox(user))))
        c.tool("cyr_expire", "-D", "0", "-E", "1")
        with c.login(cyrus.addr("john.doe")) as m:
            assert cyrus.list_mailboxes(m) == ["INBOX", "Projects", "Projects/Kolab"]
        for b in ("cyrus-mailboxes-in-set", "cyrus-mailboxes-check", "cyrus-mailboxes-restore"):
            g.run(b, MBOX=cyrus.mbox(user))
        g.run("cyrus-user-files", USERID=cyrus.addr(user))
        now = cyrus.state(c)
        assert now[user] == before[user]
        assert now["john.doe"]["shared"] == ["Other Users/jane.roe"]

        k.stop()
        c.stop()

        # 11. the whole spool into clean directories, a new server on them
        newdir = os.path.join(work, "new")
        os.makedirs(os.path.join(newdir, "spool"))
        os.makedirs(os.path.join(newdir, "imap"))
        new = cyrus.Cyrus(os.path.join(newdir, "cyrus"), os.path.join(newdir, "spool"),
                          os.path.join(newdir, "imap"))
        g = Guide(work, new, SET=backup, SPOOL=new.spool, CONFDIR=new.confdir)
        g.run("cyrus-whole-spool")
        assert_single_instance(new.spool, store, copies)
        new.start()
        assert cyrus.state(new) == before
        listed = g.run("cyrus-list-mailboxes").split()
        assert listed == sorted("%s!%s" % (cyrus.DOMAIN, n) for n in (
            "user.john^doe", "user.john^doe.Projects", "user.john^doe.Projects.Kolab",
            "user.jane^roe", "user.jane^roe.Archive", "user.max^mustermann",
            "user.erika^musterfrau")), listed
    finally:
        if new:
            new.stop()
        c.stop()


def people_ldif(users):
    """ou=People with one entry per mail user, as Kolab keeps them."""
    out = ["dn: ou=People,%s\nobjectClass: organizationalUnit\nou: People\n" % SUFFIX]
    for u in users:
        given, sn = (p.capitalize() for p in u.split("."))
        out.append("dn: uid=%s,ou=People,%s\nobjectClass: inetOrgPerson\n"
                   "objectClass: mailRecipient\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\n"
                   "mail: %s\nmailHost: imap.example.org\nuserPassword: %s\n"
                   % (u, SUFFIX, u, given, sn, given, sn, cyrus.addr(u), ssha("pw-" + u)))
    return "\n".join(out)


def create_roundcube_users(db, users):
    """Roundcube's users table (its columns that matter here): one row per
    user who logged in to the webmail, username = the mail address."""
    db.sql("CREATE DATABASE roundcube")
    db.sql("CREATE TABLE roundcube.users (user_id INT AUTO_INCREMENT PRIMARY KEY, "
           "username VARCHAR(128) NOT NULL, mail_host VARCHAR(128) NOT NULL, "
           "created DATETIME NOT NULL, UNIQUE (username, mail_host)) ENGINE=InnoDB")
    for u in users:
        db.sql("INSERT INTO roundcube.users (username, mail_host, created) "
               "VALUES (%s, 'localhost', NOW())", cyrus.addr(u))


def roundcube_users(db):
    return sorted(r[0] for r in db.sql("SELECT username FROM roundcube.users"))


def test_whole_server(work, btrfs, kolabfs_factory):
    """Section 12: 389-ds, MariaDB and Cyrus back from one set, as restic
    stored it, on a new server (a fresh 389-ds instance, the packages'
    fresh directories): every directory entry, row, mailbox, message and
    flag of the set and nothing after it; the database at the set's binary
    log position; the users of the mail, the directory and the database
    are the same, and the guide's check says so (and names a user missing
    from the directory)."""
    datadir = btrfs.path("mysql")
    # log_bin relative to the datadir (README): a copy starts anywhere
    db = MariaDB(datadir, os.path.join(work, "run-db"), log_bin="mysql-bin")
    c = cyrus.Cyrus(os.path.join(work, "cyrus"), btrfs.path("spool"), btrfs.path("imap"))
    ds = DirSrv(os.path.join(work, "ds"), "kolab", {"userroot": SUFFIX})
    newds = new = newdb = None
    try:
        ds.create()
        ds.start()
        ds.add(people_ldif(cyrus.USERS))
        db.install()
        db.start()
        c.start()
        store = cyrus.populate(c)
        copies = {store.shared[0]: len(cyrus.USERS), store.shared[1]: 3}
        create_roundcube_users(db, cyrus.USERS)
        before = cyrus.state(c)
        directory = normalised_ldif(ds.search(SUFFIX, *LDAP_COMPARE))

        pw = write_secret(os.path.join(work, "ds.pw"), ds.password + "\n")
        conf = cyrus_config(work, btrfs, c, volumes=("spool", "imap", "mysql"), extra=[
            "[mysql]", "socket = %s" % db.socket, "lock = ftwrl", "",
            "[ldap:ds]", "uri = %s" % ds.uri, "bind_dn = %s" % ds.root_dn,
            "password_file = %s" % pw, "mode = task", ""])
        k = kolabfs_factory(conf)
        k.start()
        k.check_started()
        manifest = k.manifest()
        assert manifest["mysql"]["consistency"] == "locked", manifest["mysql"]
        [exported] = manifest["ldap"]["ds"]
        assert exported["backend"] == "userroot" and exported["entries"] == len(cyrus.USERS) + 2
        kfs.run(["restic", "init", "-q"], env=restic_env(work))
        restic_backup(k, work)
        k.stop()

        # life goes on after the set, then the server is lost
        n, msg = store.next("after the set", to=cyrus.addr("john.doe"))
        c.deliver([cyrus.addr("john.doe")], msg)
        db.sql("INSERT INTO roundcube.users (username, mail_host, created) "
               "VALUES ('late.user@example.org', 'localhost', NOW())")
        ds.add(people_ldif(["late.user"]).split("\n\n", 1)[1])
        c.stop()
        db.stop()
        ds.stop()

        SET = os.path.join(work, "restored")
        kfs.run(["restic", "restore", "-q", "latest", "--target", SET], env=restic_env(work))

        # the new server: its packages made a 389-ds instance and fresh
        # (here: marked) directories for the datadir, spool and metadata
        newds = DirSrv(os.path.join(work, "newds"), "kolab", {"userroot": SUFFIX}).create()
        newdir = btrfs.path("new")
        places = [os.path.join(newdir, d) for d in ("mysql", "spool", "imap")]
        for d in places:
            os.makedirs(d)
            with open(os.path.join(d, "fresh-from-the-package"), "w") as f:
                f.write("fresh\n")
        newdb = MysqlUserServer(places[0], os.path.join(work, "run-newdb"), log_bin="mysql-bin")
        new = cyrus.Cyrus(os.path.join(work, "newcyrus"), places[1], places[2])
        home = os.path.join(work, "home")
        os.makedirs(home)
        g = guide.Runner(SERVER, work, prefix=newds.ns_argv() + imapd_conf_is(new),
                         env={"HOME": home}, with_stderr=True, SET=SET, NAME="ds",
                         INST=newds.inst, LDIFDIR=newds.ldifdir,
                         LDAPI="ldapi://" + quote(newds.ldapi, safe=""), SUFFIX=SUFFIX,
                         DATADIR=places[0], SPOOL=places[1], CONFDIR=places[2])

        shown, end = json.JSONDecoder().raw_decode(g.run("server-manifest"))
        assert shown == {"name": manifest["name"], "created": manifest["created"],
                         "host": manifest["host"], "mysql": "locked",
                         "ldap": {"ds": ["userroot: %d entries" % exported["entries"]]}}, shown
        assert set(g.run("server-manifest")[end:].split()) == {
            "MANIFEST.json", "ds", "etc", "imap", "mysql", "spool"}

        g.run("server-places")
        for d in places:
            assert os.listdir(d) == [] and os.listdir(d + ".fresh") == ["fresh-from-the-package"]
        assert {"new/mysql", "new/spool", "new/imap"} <= btrfs.subvolumes()

        out = g.run("server-directory")
        assert out.count("ldif2db successful") == 1, out
        assert not [f for f in os.listdir(newds.ldifdir) if f.endswith(".ldif")]
        g.run("server-files")
        assert_single_instance(new.spool, store, copies)

        # systemctl start dirsrv@kolab mariadb cyrus-imapd
        newds.start()
        newdb.start()
        new.start()

        assert normalised_ldif(newds.search(SUFFIX, *LDAP_COMPARE)) == directory
        for u in cyrus.USERS:
            assert newds.binds("uid=%s,ou=People,%s" % (u, SUFFIX), "pw-" + u)
        assert not newds.exists("uid=late.user,ou=People," + SUFFIX)
        assert newdb.sql("SELECT @@gtid_binlog_pos")[0][0] == manifest["mysql"]["gtid_position"]
        assert roundcube_users(newdb) == sorted(cyrus.addr(u) for u in cyrus.USERS)
        assert cyrus.state(new) == before
        mail = sorted(l.split(": ", 1)[1] for l in newds.search(SUFFIX, "mail", filt="(mail=*)")
                      .splitlines() if l.startswith("mail: "))
        assert mail == roundcube_users(newdb)
        with new.login() as m:
            assert sorted({cyrus.addr(n.split("/")[1].split("@")[0])
                           for n in cyrus.list_mailboxes(m)}) == mail

        with open(os.path.join(home, ".my.cnf"), "w") as f:
            f.write("[client]\nsocket = %s\nuser = root\n" % newdb.socket)
        assert g.run("server-check") == ""
        # a user the directory lacks is named, for the mail and the database
        newds.delete("uid=jane.roe,ou=People," + SUFFIX)
        assert g.run("server-check").splitlines() == [
            "mailbox not in the directory: jane.roe@example.org",
            "Roundcube user not in the directory: jane.roe@example.org"]

        g.run("server-drop-fresh")
        assert not any(os.path.exists(d + ".fresh") for d in places)
    finally:
        for s in (new, c, newdb, db, newds, ds):
            if s:
                s.stop()
