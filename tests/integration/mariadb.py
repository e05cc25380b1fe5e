"""A real MariaDB server for the integration tests, started without systemd.

    db = MariaDB(datadir, rundir, server_id=1)
    db.install(); db.start(); db.sql("SELECT 1"); db.stop()

The server listens on a unix socket in rundir and on a free loopback port.
It runs as root (--user=root), as servers.md describes.  Waits are bounded
polls on a condition, never sleeps.
"""
import os
import socket
import subprocess
import time

import pymysql

from kfs import run, terminate, wait_until


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MariaDB:
    def __init__(self, datadir, rundir, server_id=1, log_bin=None, extra=()):
        self.datadir = datadir
        self.rundir = rundir
        self.server_id = server_id
        self.socket = os.path.join(rundir, "mysqld.sock")
        self.pidfile = os.path.join(rundir, "mysqld.pid")
        self.errlog = os.path.join(rundir, "mysqld.err")
        # binlog beside the data unless told otherwise (None: in datadir)
        self.log_bin = log_bin if log_bin is not None else os.path.join(datadir, "binlog")
        self.extra = list(extra)
        self.port = free_port()
        self.proc = None

    def install(self):
        os.makedirs(self.datadir, exist_ok=True)
        os.makedirs(self.rundir, exist_ok=True)
        run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
             "--user=root", "--auth-root-authentication-method=normal",
             "--skip-test-db"], timeout=300)

    def args(self):
        a = ["mariadbd", "--no-defaults", "--datadir=" + self.datadir,
             "--socket=" + self.socket, "--port=%d" % self.port,
             "--bind-address=127.0.0.1", "--user=root", "--server-id=%d" % self.server_id,
             "--pid-file=" + self.pidfile, "--log-error=" + self.errlog,
             "--innodb-buffer-pool-size=32M", "--skip-name-resolve",
             "--innodb-log-file-size=16M"]
        if self.log_bin:
            a.append("--log-bin=" + self.log_bin)
        return a + self.extra

    def start(self):
        os.makedirs(self.rundir, exist_ok=True)
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._ready, timeout=120, what="mariadbd on " + self.socket)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("mariadbd exited (%d):\n%s" % (self.proc.returncode,
                                                              self.log_tail()))
        try:
            self.connect().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def log_tail(self, n=30):
        try:
            with open(self.errlog) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no error log)"

    def connect(self, user="root", password="", **kw):
        kw.setdefault("autocommit", True)
        return pymysql.connect(unix_socket=self.socket, user=user, password=password, **kw)

    def sql(self, query, *args):
        """Run one statement; return all rows."""
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(query, args or None)
                return cur.fetchall()
        finally:
            c.close()

    def stop(self):
        if not self.proc:
            return
        terminate(self.proc, 120)
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
