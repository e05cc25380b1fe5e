"""[mysql]: every set is taken inside one bounded MySQL lock window.

Real MariaDB servers whose datadir lives on the loop btrfs, real write
load, copies taken out of the mount with rsync and started in a second
mariadbd.  Nothing here is mocked.
"""
import json
import os
import threading
import time

import pymysql
import pytest

import kfs
from mariadb import MariaDB

ACCOUNTS = 50
START_BALANCE = 1000
WRITERS = 4
PASSWORD = "s3cret-kolabfs-pw"


def write_password(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def create_bank(db):
    db.sql("CREATE DATABASE bank")
    db.sql("CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB")
    db.sql("CREATE TABLE bank.transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT, b INT, "
           "amount INT) ENGINE=InnoDB")
    # non-transactional, not crash-safe: only a real lock makes it agree
    db.sql("CREATE TABLE bank.audit (transfer_id BIGINT NOT NULL) ENGINE=Aria TRANSACTIONAL=0")
    db.sql("CREATE TABLE bank.ticks (id BIGINT AUTO_INCREMENT PRIMARY KEY, t DOUBLE) ENGINE=InnoDB")
    db.sql("INSERT INTO bank.accounts VALUES " +
           ",".join("(%d,%d)" % (i, START_BALANCE) for i in range(ACCOUNTS)))


def create_backup_user(db, privileges="RELOAD, PROCESS, BINLOG MONITOR"):
    db.sql("CREATE USER IF NOT EXISTS 'kolabfs'@'localhost' IDENTIFIED BY %s", PASSWORD)
    db.sql("GRANT %s ON *.* TO 'kolabfs'@'localhost'" % privileges)


class Writers:
    """Threads moving money between accounts, each commit followed by a
    row in the non-transactional audit table."""

    def __init__(self, db, n=WRITERS):
        self.db, self.n = db, n
        self.stop_event = threading.Event()
        self.errors = []
        self.commits = 0
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]

    def run(self, seed):
        c = None
        i = seed
        try:
            c = self.db.connect(autocommit=False)
            with c.cursor() as cur:
                while not self.stop_event.is_set():
                    i += 7
                    a, b = i % ACCOUNTS, (i * 3 + 1) % ACCOUNTS
                    # rows in id order: writers never deadlock each other
                    for acct, delta in sorted([(a, -3), (b, 3)]):
                        cur.execute("UPDATE bank.accounts SET balance = balance + %s "
                                    "WHERE id = %s", (delta, acct))
                    cur.execute("INSERT INTO bank.transfers (a, b, amount) VALUES (%s, %s, 3)",
                                (a, b))
                    tid = cur.lastrowid
                    c.commit()
                    cur.execute("INSERT INTO bank.audit VALUES (%s)", (tid,))
                    c.commit()
                    self.commits += 1
        except Exception as e:  # reported by stop()
            self.errors.append(repr(e))
        finally:
            if c:
                c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        kfs.wait_until(lambda: self.commits >= 20 or self.errors, 60, "writers to commit")
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)


@pytest.fixture
def primary(work, btrfs):
    db = MariaDB(btrfs.path("mysql", "data"), os.path.join(work, "run-primary"))
    db.install()
    db.start()
    yield db
    db.stop()


@pytest.fixture
def restored_dbs():
    started = []
    yield started
    for db in started:
        db.stop()


def mysql_config(work, btrfs, db, lock="ftwrl", timeout=30, user="kolabfs",
                 password_file=None, extra=()):
    pw = password_file or write_password(work, "mysql.pw", PASSWORD)
    lines = ["[mysql]", "socket = %s" % db.socket, "user = %s" % user,
             "password_file = %s" % pw, "lock = %s" % lock,
             "lock_wait_timeout = %d" % timeout] + list(extra) + [""]
    path = os.path.join(work, "kolabfs-mysql.conf")
    with open(path, "w") as f:
        f.write(kfs.config_text(work, btrfs.mnt, volumes=("spool", "mysql"), extra=lines))
    return path


def restore_copy(work, k, set_name, name, restored_dbs, server_id=2, extra=()):
    """rsync the set's mysql volume out and start a mariadbd on the copy."""
    dst = os.path.join(work, "restore-" + name)
    kfs.rsync_copy(k.path("snapshots", set_name, "mysql"), dst)
    db = MariaDB(os.path.join(dst, "data"), os.path.join(work, "run-restore-" + name),
                 server_id=server_id, extra=extra)
    restored_dbs.append(db)
    db.start()
    return db


def check_consistent(db, writers=WRITERS):
    total = db.sql("SELECT SUM(balance), COUNT(*) FROM bank.accounts")[0]
    assert total == (ACCOUNTS * START_BALANCE, ACCOUNTS), "money appeared or vanished: %r" % (total,)
    orphans = db.sql("SELECT COUNT(*) FROM bank.audit a LEFT JOIN bank.transfers t "
                     "ON t.id = a.transfer_id WHERE t.id IS NULL")[0][0]
    assert orphans == 0, "audit rows for transfers that the copy does not have: %d" % orphans
    missing = db.sql("SELECT COUNT(*) FROM bank.transfers t LEFT JOIN bank.audit a "
                     "ON a.transfer_id = t.id WHERE a.transfer_id IS NULL")[0][0]
    # at most the one transfer each writer had committed but not yet audited
    assert missing <= writers, "%d committed transfers missing from audit" % missing
    return db.sql("SELECT COUNT(*) FROM bank.transfers")[0][0]


def checksums(db):
    return {r[0]: r[1] for r in db.sql("CHECKSUM TABLE bank.accounts, bank.transfers, bank.audit")}


def replay_binlog(live, restored, manifest_mysql):
    """Roll the restored copy forward with the live binlog from MANIFEST's position."""
    binlogs = sorted(f for f in os.listdir(live.datadir)
                     if f.startswith("binlog.") and f[7:].isdigit())
    start = manifest_mysql["binlog_file"]
    files = [os.path.join(live.datadir, f) for f in binlogs if f >= start]
    dump = kfs.run(["mariadb-binlog", "--start-position=%d" % manifest_mysql["binlog_position"]]
                   + files[:1]).stdout
    for f in files[1:]:
        dump += kfs.run(["mariadb-binlog", f]).stdout
    kfs.run(["mariadb", "--no-defaults", "--socket=" + restored.socket, "-uroot"], input=dump)


@pytest.mark.parametrize("lock", ["ftwrl", "backup-stage"])
def test_sets_under_write_load_are_consistent(work, btrfs, primary, restored_dbs,
                                              kolabfs_factory, lock):
    create_bank(primary)
    create_backup_user(primary)
    config = mysql_config(work, btrfs, primary, lock=lock)
    k = kolabfs_factory(config)
    with Writers(primary) as w:
        k.start()
        k.check_started()
        for i in range(3):
            before = w.commits
            kfs.wait_until(lambda: w.commits > before + 10 or w.errors, 60, "more commits")
            os.mkdir(k.path("snapshots", "under-load-%d" % i))
        w.stop()
    sets = sorted(s for s in os.listdir(k.path("snapshots")) if s != "latest")
    assert len(sets) == 4
    first = k.manifest(sets[0])["mysql"]
    assert first["lock"] == lock and first["consistency"] == "locked"
    assert first["binlog"] == "on" and first["binlog_file"].startswith("binlog.")
    assert first["binlog_position"] > 0 and first["gtid_position"]
    assert 0 <= first["lock_hold_ms"] < 60_000 and first["lock_attempts"] >= 1
    counts = []
    for n, s in enumerate(sets):
        db = restore_copy(work, k, s, "%s-%d" % (lock, n), restored_dbs, server_id=10 + n)
        counts.append(check_consistent(db))
        if n != len(sets) - 1:
            db.stop()
    assert counts == sorted(counts) and counts[-1] > counts[0], counts
    # the last copy, rolled forward from MANIFEST's position, equals the live server
    replay_binlog(primary, db, k.manifest(sets[-1])["mysql"])
    assert checksums(db) == checksums(primary)
    k.stop()
    assert btrfs.subvolumes() == set(kfs.VOLUMES)


def test_long_statement_fails_the_set_without_stalling_writers(work, btrfs, primary,
                                                               kolabfs_factory):
    create_bank(primary)
    create_backup_user(primary)
    config = mysql_config(work, btrfs, primary, timeout=2)
    blocker = primary.connect()
    blocker_id = blocker.thread_id()
    long_update = threading.Thread(target=lambda: blocker.cursor().execute(
        "UPDATE bank.accounts SET balance = balance + 0 * SLEEP(8) WHERE id = 1"))
    waits, stop = [], threading.Event()

    def ticker():
        c = primary.connect()
        with c.cursor() as cur:
            while not stop.is_set():
                t = time.monotonic()
                cur.execute("INSERT INTO bank.ticks (t) VALUES (%s)", (t,))
                waits.append(time.monotonic() - t)
                stop.wait(0.02)
        c.close()

    tick = threading.Thread(target=ticker)
    long_update.start()
    kfs.wait_until(lambda: primary.sql(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE 'UPDATE%%'",
        blocker_id)[0][0] == 1, 30, "the long UPDATE to run")
    tick.start()
    k = kolabfs_factory(config)
    try:
        rc = k.start()
    finally:
        stop.set()
        tick.join(30)
        long_update.join(30)
        blocker.close()
    assert rc != 0, "the set was taken although a statement blocked the lock"
    assert "lock_wait_timeout (2 s)" in k.err and "statement id %d" % blocker_id in k.err, k.err
    assert "UPDATE bank.accounts" in k.err, k.err
    assert waits and max(waits) < 1.0, "a writer waited %.2f s" % max(waits)
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == set(kfs.VOLUMES)
    assert os.listdir(os.path.join(work, "state", "sets")) == []
    # no lock is left held: FTWRL from another session succeeds at once
    c = primary.connect(read_timeout=10)
    with c.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 5")
        cur.execute("FLUSH TABLES WITH READ LOCK")
        cur.execute("UNLOCK TABLES")
    c.close()


def test_lock_none_says_crash_consistent(work, btrfs, primary, kolabfs_factory):
    config = mysql_config(work, btrfs, primary, lock="none")
    k = kolabfs_factory(config)
    k.start()
    k.check_started()
    assert k.manifest()["mysql"] == {"lock": "none", "consistency": "crash-consistent"}
    k.stop()


def test_binlog_off_is_recorded(work, btrfs, kolabfs_factory):
    db = MariaDB(btrfs.path("mysql", "data"), os.path.join(work, "run-nobin"), log_bin=False)
    db.install()
    db.start()
    try:
        create_backup_user(db)
        k = kolabfs_factory(mysql_config(work, btrfs, db))
        k.start()
        k.check_started()
        m = k.manifest()["mysql"]
        assert m["binlog"] == "off" and m["binlog_file"] is None, m
        k.stop()
    finally:
        db.stop()


def _expect_refused(work, btrfs, k, *fragments):
    rc = k.start()
    assert rc != 0, "kolabfs started although it should have refused"
    for frag in fragments:
        assert frag in k.err, "%r not in stderr: %s" % (frag, k.err)
    assert PASSWORD not in k.err + k.out
    assert not kfs.is_mounted(k.mp)
    assert btrfs.subvolumes() == set(kfs.VOLUMES)
    assert os.listdir(os.path.join(work, "state", "sets")) == []


def test_wrong_password(work, btrfs, primary, kolabfs_factory):
    create_backup_user(primary)
    pw = write_password(work, "wrong.pw", "not-the-password")
    k = kolabfs_factory(mysql_config(work, btrfs, primary, password_file=pw))
    _expect_refused(work, btrfs, k, "[mysql]", "Access denied")


def test_unreachable_server(work, btrfs, primary, kolabfs_factory):
    create_backup_user(primary)
    config = mysql_config(work, btrfs, primary)
    primary.stop()
    k = kolabfs_factory(config)
    _expect_refused(work, btrfs, k, "[mysql]", primary.socket)


def test_missing_privilege(work, btrfs, primary, kolabfs_factory):
    create_backup_user(primary, privileges="PROCESS, BINLOG MONITOR")
    k = kolabfs_factory(mysql_config(work, btrfs, primary))
    _expect_refused(work, btrfs, k, "[mysql]", "lacks the privilege RELOAD")


def test_binlog_outside_volumes(work, btrfs, kolabfs_factory):
    logs = os.path.join(work, "binlogs")
    os.mkdir(logs)
    db = MariaDB(btrfs.path("mysql", "data"), os.path.join(work, "run-outside"),
                 log_bin=os.path.join(logs, "binlog"))
    db.install()
    db.start()
    try:
        create_backup_user(db)
        k = kolabfs_factory(mysql_config(work, btrfs, db))
        _expect_refused(work, btrfs, k, "@@log_bin_basename", logs, "require_complete")
        # and with require_complete = false: taken, with a warning
        k2 = kolabfs_factory(mysql_config(work, btrfs, db, extra=["require_complete = false"]))
        k2.start()
        k2.check_started()
        assert any("@@log_bin_basename" in w for w in k2.manifest()["warnings"])
        k2.stop()
    finally:
        db.stop()


def test_replica_lock_records_master_position_and_restored_copy_rejoins(
        work, btrfs, restored_dbs, kolabfs_factory):
    source = MariaDB(os.path.join(work, "source-data"), os.path.join(work, "run-source"),
                     server_id=1)
    source.install()
    source.start()
    replica = MariaDB(btrfs.path("mysql", "data"), os.path.join(work, "run-replica"),
                      server_id=2)
    replica.install()
    replica.start()
    restored_dbs.extend([source, replica])
    source.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'")
    source.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    f, pos = source.sql("SHOW MASTER STATUS")[0][:2]
    replica.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
                "MASTER_PASSWORD='replpw', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, "
                "MASTER_USE_GTID=no" % (source.port, f, pos))
    replica.sql("START SLAVE")
    create_bank(source)
    create_backup_user(replica, "RELOAD, PROCESS, BINLOG MONITOR, REPLICATION SLAVE ADMIN, "
                                "SLAVE MONITOR")
    kfs.wait_until(lambda: replica.sql("SELECT COUNT(*) FROM information_schema.TABLES "
                                       "WHERE TABLE_SCHEMA = 'bank'")[0][0] == 4, 60,
                   "the replica to create the tables")
    k = kolabfs_factory(mysql_config(work, btrfs, replica, lock="replica"))
    with Writers(source) as w:
        k.start()
        k.check_started()
        w.stop()
    m = k.manifest()["mysql"]
    assert m["lock"] == "replica" and m["master_log_file"].startswith("binlog.")
    assert m["master_log_position"] > 0 and "gtid_slave_position" in m
    status = replica.connect(cursorclass=pymysql.cursors.DictCursor)
    with status.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        assert cur.fetchone()["Slave_SQL_Running"] == "Yes", "SQL thread not restarted"
    status.close()
    copy = restore_copy(work, k, "latest", "replica", restored_dbs, server_id=3,
                        extra=["--skip-slave-start"])
    copy.sql("STOP SLAVE")
    copy.sql("RESET SLAVE ALL")
    copy.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
             "MASTER_PASSWORD='replpw', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, "
             "MASTER_USE_GTID=no" % (source.port, m["master_log_file"], m["master_log_position"]))
    copy.sql("START SLAVE")
    target = source.sql("SHOW MASTER STATUS")[0][:2]
    copy_status = copy.connect(cursorclass=pymysql.cursors.DictCursor)

    def caught_up():
        with copy_status.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            s = cur.fetchone()
        assert not s["Last_SQL_Error"], s["Last_SQL_Error"]
        return (s["Relay_Master_Log_File"], s["Exec_Master_Log_Pos"]) == tuple(target)

    kfs.wait_until(caught_up, 120, "the restored replica to catch up")
    copy_status.close()
    assert checksums(copy) == checksums(source)
    k.stop()


def test_check_reaches_the_server(work, btrfs, primary):
    create_backup_user(primary)
    ok = kfs.run([kfs.KOLABFS, "--check", mysql_config(work, btrfs, primary)], check=False)
    assert ok.returncode == 0, ok.stderr
    assert "lock = ftwrl" in ok.stdout and "MariaDB" in ok.stdout, ok.stdout
    pw = write_password(work, "wrong.pw", "nope")
    bad = kfs.run([kfs.KOLABFS, "--check", mysql_config(work, btrfs, primary, password_file=pw)],
                  check=False)
    assert bad.returncode != 0 and "Access denied" in bad.stderr, bad.stderr
    assert btrfs.subvolumes() == set(kfs.VOLUMES)
    assert not os.path.exists(os.path.join(work, "state"))
