"""doc/restore.md, section 5 (MySQL/MariaDB): every command block is run.

The guide's blocks are fenced ```sh blocks right after an HTML comment
`<!-- test: NAME -->` (guide.py extracts and runs them).  This file runs
each one, as it stands, with `bash -euo pipefail`, against real MariaDB
servers whose datadir is a btrfs subvolume (as /var/lib/mysql on a Debian server), after
kolabfs took a set of them under write load.  The guide's variables ($SET,
$DATADIR, ...) are set to the test's paths, and `mariadb` and friends find
the server through ~/.my.cnf ([client] socket), as they would find
/run/mysqld/mysqld.sock on a real server.  The `systemctl stop/start` the
guide asks for in its text are done here by stopping and starting mariadbd
with the same options.

The live servers run as root (the fixture's choice), the restored ones as
user mysql, as Debian runs them: so the guide's `chown -R mysql:mysql` is
needed, as it is on a machine whose mysql user has another uid.
"""
import json
import os
import pwd
import re
import shutil
import signal
import time

import pymysql
import pytest

import guide
import kfs
from mariadb import MariaDB
from test_mysql import Writers, check_consistent, create_bank, create_backup_user, mysql_config

# the variables the guide's blocks use, all set by the test
VARS = {"SET", "DATADIR", "OLD", "COPY", "STOP", "DB"}
# every marked block of section 5; each one is run below
BLOCK_NAMES = {"mysql-vars", "mysql-manifest", "mysql-restore-datadir", "mysql-restore-check",
               "mysql-find-stop", "mysql-roll-forward", "mysql-drop-old",
               "mysql-reseed-replica", "mysql-reseed-replica-gtid", "mysql-replica-status",
               "mysql-one-database"}
BANK_TABLES = "bank.accounts, bank.transfers, bank.audit"
PART = guide.Part(r"5\. ", "section 5")


def test_guide_blocks_are_all_run():
    """Every command of section 5 is in a marked block, and every marked
    block is one this file runs."""
    PART.check(BLOCK_NAMES, "mysql-vars", VARS)


class Block(guide.Runner):
    """Runs the guide's blocks with the test's variables and client config."""

    def __init__(self, work, **variables):
        self.home = os.path.join(work, "home")
        os.makedirs(self.home, exist_ok=True)
        super().__init__(PART, work, env={"HOME": self.home}, **variables)
        self.server = None

    def use(self, db):
        """Point mariadb, mariadb-check & co. at db (instead of /run/mysqld)."""
        self.server = db
        path = os.path.join(self.home, ".my.cnf")
        with open(path, "w") as f:
            f.write("[client]\nsocket = %s\nuser = root\n" % db.socket)
        os.chmod(path, 0o600)


class MysqlUserServer(MariaDB):
    """mariadbd as user mysql, as Debian runs it: the restored servers."""

    def args(self):
        return ["--user=mysql" if a == "--user=root" else a for a in super().args()]

    def start(self):
        os.makedirs(self.rundir, exist_ok=True)
        shutil.chown(self.rundir, "mysql", "mysql")
        return super().start()


@pytest.fixture
def servers(work):
    started = []
    yield started
    for db in reversed(started):
        db.stop()
    # a throw-away server a failed block left behind (ours: its datadir is in work)
    for pid in kfs.procs_with_arg(os.path.join(work, "btrfs", "mysql-restore")):
        os.kill(pid, signal.SIGKILL)


def datadir_server(work, btrfs, name, server_id=1, cls=MariaDB, extra=()):
    """A server whose datadir is the mysql subvolume itself, binary log in it
    by absolute path (log_bin = /var/lib/mysql/mysql-bin)."""
    datadir = btrfs.path("mysql")
    return cls(datadir, os.path.join(work, "run-" + name), server_id=server_id,
               log_bin=os.path.join(datadir, "mysql-bin"), extra=extra)


def checksums(db, tables):
    return {r[0]: r[1] for r in db.sql("CHECKSUM TABLE " + tables)}


def backup(k, work):
    """What the nightly backup does: rsync the newest set out."""
    dst = os.path.join(work, "backup")
    kfs.run(["rsync", "-aHAX", "--numeric-ids", k.latest() + "/", dst + "/"])
    return dst


def owned_by_mysql(top):
    uid = pwd.getpwnam("mysql").pw_uid
    bad = []
    for d, dirs, files in os.walk(top):
        for n in [""] + dirs + files:
            if os.lstat(os.path.join(d, n)).st_uid != uid:
                bad.append(os.path.join(d, n))
    return bad


def wait_next_second():
    """Return a time (whole second) after everything written so far, once
    the clock has passed it: binlog events carry whole seconds."""
    stop = int(time.time()) + 1
    kfs.wait_until(lambda: time.time() >= stop + 0.2, 5, "the clock to pass %d" % stop)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stop))


def test_restore_datadir_and_roll_forward(work, btrfs, kolabfs_factory, servers):
    live = datadir_server(work, btrfs, "live")
    live.install()
    servers.append(live.start())
    create_bank(live)
    create_backup_user(live)
    k = kolabfs_factory(mysql_config(work, btrfs, live, lock="ftwrl"))
    with Writers(live) as w:
        k.start()
        k.check_started()
        w.stop()
    manifest = k.manifest()["mysql"]
    assert manifest["consistency"] == "locked" and manifest["binlog_file"] == "mysql-bin.000001"
    SET = backup(k, work)
    k.stop()

    # the server goes on: more transactions, over two binlog files
    with Writers(live) as w:
        w.stop()
    live.sql("FLUSH BINARY LOGS")
    live.sql("CREATE TABLE bank.after_set (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB")
    live.sql("INSERT INTO bank.after_set VALUES (1, 'written after the set')")
    tables = BANK_TABLES + ", bank.after_set"
    good = checksums(live, tables)
    STOP = wait_next_second()
    live.sql("DROP TABLE bank.transfers")                  # the mistake

    b = Block(work, SET=SET, DATADIR=btrfs.path("mysql"), OLD=btrfs.path("mysql.before-restore"),
              COPY=btrfs.path("mysql-restore"), STOP=STOP, DB="bank")
    b.use(live)
    shown = json.loads(b.run("mysql-manifest"))
    assert shown == manifest

    live.stop()                                             # systemctl stop mariadb
    b.run("mysql-restore-datadir")
    assert os.path.isdir(os.path.join(b.vars["OLD"], "bank"))
    assert btrfs.path("mysql") in {btrfs.path(p) for p in btrfs.subvolumes()}
    assert owned_by_mysql(btrfs.path("mysql")) == []
    restored = datadir_server(work, btrfs, "restored", cls=MysqlUserServer)
    servers.append(restored.start())                        # systemctl start mariadb
    b.use(restored)

    # exactly at the set: the GTID position of the MANIFEST, consistent tables
    out = b.run("mysql-restore-check").splitlines()
    assert out == [manifest["gtid_position"]] * 2, out
    check_consistent(restored)
    assert not restored.sql("SHOW TABLES FROM bank LIKE 'after_set'")

    found = b.run("mysql-find-stop")
    assert "DROP TABLE" in found and re.search(r"^#\d{6} +\d+:\d\d:\d\d server id 1", found, re.M)

    # rolled forward to just before the DROP: equal to the live server then
    b.run("mysql-roll-forward")
    assert checksums(restored, tables) == good
    check_consistent(restored)

    b.run("mysql-drop-old")
    assert not os.path.exists(b.vars["OLD"])
    assert btrfs.subvolumes() == set(kfs.VOLUMES)


def create_roundcube(db):
    db.sql("CREATE DATABASE roundcube")
    db.sql("CREATE TABLE roundcube.users (user_id INT PRIMARY KEY, username VARCHAR(128), "
           "mail_host VARCHAR(128), created DATETIME, language VARCHAR(5)) ENGINE=InnoDB")
    db.sql("CREATE TABLE roundcube.contacts (contact_id INT AUTO_INCREMENT PRIMARY KEY, "
           "user_id INT, name VARCHAR(128), email TEXT, vcard LONGTEXT) ENGINE=InnoDB")
    db.sql("INSERT INTO roundcube.users VALUES (1, 'john.doe@example.org', 'localhost', "
           "'2026-01-02 03:04:05', 'en_US'), (2, 'jane.roe@example.org', 'localhost', "
           "'2026-02-03 04:05:06', 'de_DE')")
    for i in range(200):
        db.sql("INSERT INTO roundcube.contacts (user_id, name, email, vcard) VALUES "
               "(%s, %s, %s, %s)", 1 + i % 2, "Contact %d" % i, "c%d@example.com" % i,
               "BEGIN:VCARD\nFN:Contact %d\nEND:VCARD" % i)
    db.sql("CREATE DATABASE kolab")
    db.sql("CREATE TABLE kolab.notes (id INT PRIMARY KEY, text TEXT) ENGINE=InnoDB")
    db.sql("INSERT INTO kolab.notes VALUES (1, 'before the set')")


def test_one_database_from_the_set_in_the_mount(work, btrfs, kolabfs_factory, servers):
    live = datadir_server(work, btrfs, "live")
    live.install()
    servers.append(live.start())
    create_roundcube(live)
    create_backup_user(live)
    k = kolabfs_factory(mysql_config(work, btrfs, live, lock="ftwrl"))
    k.start()
    k.check_started()
    rc_tables = "roundcube.users, roundcube.contacts"
    at_set = checksums(live, rc_tables)
    SET = k.path("snapshots", os.readlink(k.path("snapshots", "latest")))
    DATADIR = btrfs.path("mysql")
    with open(os.path.join(SET, "mysql", "mysql-bin.index")) as f:
        assert f.read().startswith(DATADIR + "/mysql-bin."), "expected absolute index entries"

    # after the set: Roundcube loses contacts, gains a table; kolab goes on
    live.sql("DELETE FROM roundcube.contacts WHERE user_id = 1")
    live.sql("UPDATE roundcube.users SET language = 'fr_FR'")
    live.sql("CREATE TABLE roundcube.newer (id INT) ENGINE=InnoDB")
    live.sql("INSERT INTO kolab.notes VALUES (2, 'after the set')")

    b = Block(work, SET=SET, DATADIR=DATADIR, OLD=btrfs.path("mysql.before-restore"),
              COPY=btrfs.path("mysql-restore"), STOP="2000-01-01 00:00:00", DB="roundcube")
    b.use(live)
    live_pos = live.sql("SHOW MASTER STATUS")[0][:2]
    b.run("mysql-one-database")

    assert checksums(live, rc_tables) == at_set
    assert not live.sql("SHOW TABLES FROM roundcube LIKE 'newer'")
    assert live.sql("SELECT COUNT(*) FROM kolab.notes")[0][0] == 2, "kolab was touched"
    assert not os.path.exists(b.vars["COPY"])
    assert not kfs.procs_with_arg(b.vars["COPY"]), "the throw-away server still runs"
    # the throw-away server wrote nothing into the live server's binary logs
    files = sorted(f for f in os.listdir(DATADIR) if re.fullmatch(r"mysql-bin\.\d+", f))
    assert files == ["mysql-bin.000001"] and live_pos[0] == files[0]
    k.stop()


def slave_status(db):
    c = db.connect(cursorclass=pymysql.cursors.DictCursor)
    try:
        with c.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            return cur.fetchone()
    finally:
        c.close()


@pytest.mark.parametrize("how", ["mysql-reseed-replica", "mysql-reseed-replica-gtid"])
def test_reseed_replica(work, btrfs, kolabfs_factory, servers, how):
    source = MariaDB(os.path.join(work, "source-data"), os.path.join(work, "run-source"),
                     server_id=1)
    source.install()
    servers.append(source.start())
    replica = datadir_server(work, btrfs, "replica", server_id=2)
    replica.install()
    servers.append(replica.start())
    source.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'")
    source.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    f, pos = source.sql("SHOW MASTER STATUS")[0][:2]
    replica.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
                "MASTER_PASSWORD='replpw', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, "
                "MASTER_USE_GTID=no" % (source.port, f, pos))
    replica.sql("START SLAVE")
    create_bank(source)
    create_backup_user(replica, "RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, "
                                "REPLICATION SLAVE ADMIN")
    kfs.wait_until(lambda: replica.sql("SELECT COUNT(*) FROM information_schema.TABLES "
                                       "WHERE TABLE_SCHEMA = 'bank'")[0][0] == 4, 60,
                   "the replica to create the tables")
    k = kolabfs_factory(mysql_config(work, btrfs, replica, lock="replica"))
    with Writers(source) as w:
        k.start()
        k.check_started()
        w.stop()
    manifest = k.manifest()["mysql"]
    assert manifest["lock"] == "replica" and manifest["master_log_position"] > 0
    assert manifest["gtid_slave_position"].startswith("0-1-")
    SET = backup(k, work)
    k.stop()
    with Writers(source) as w:                              # the primary goes on
        w.stop()

    b = Block(work, SET=SET, DATADIR=btrfs.path("mysql"), OLD=btrfs.path("mysql.before-restore"),
              COPY=btrfs.path("mysql-restore"), STOP="2000-01-01 00:00:00", DB="bank")
    replica.stop()                                          # systemctl stop mariadb
    b.run("mysql-restore-datadir")
    restored = datadir_server(work, btrfs, "restored", server_id=2, cls=MysqlUserServer,
                              extra=["--skip-slave-start"])
    servers.append(restored.start())                        # MYSQLD_OPTS=--skip-slave-start
    b.use(restored)
    s = slave_status(restored)
    assert s["Slave_SQL_Running"] == "No" and s["Master_Port"] == source.port, s
    assert restored.sql("SELECT @@gtid_slave_pos")[0][0] == manifest["gtid_slave_position"]

    b.run(how)
    with Writers(source) as w:                              # and goes on while it catches up
        w.stop()
    target = tuple(source.sql("SHOW MASTER STATUS")[0][:2])

    def caught_up():
        s = slave_status(restored)
        assert not s["Last_SQL_Error"] and not s["Last_IO_Error"], s
        return (s["Relay_Master_Log_File"], s["Exec_Master_Log_Pos"]) == target

    kfs.wait_until(caught_up, 120, "the re-seeded replica to catch up")
    assert slave_status(restored)["Using_Gtid"] == ("No" if how == "mysql-reseed-replica"
                                                    else "Slave_Pos")
    status = b.run("mysql-replica-status")
    assert "Slave_SQL_Running: Yes" in status and "Seconds_Behind_Master: 0" in status, status
    assert checksums(restored, BANK_TABLES) == checksums(source, BANK_TABLES)
    check_consistent(restored)
