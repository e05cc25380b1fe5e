"""A real Cyrus IMAP 3.6 server for the integration tests, started without
systemd (../shared/recipes/servers.md, Cyrus section).

    c = Cyrus(instdir, spool=btrfs.path("spool"), confdir=btrfs.path("imap"))
    c.start()                       # master as user cyrus; ready = IMAP answers
    c.create("user/john.doe@example.org")
    c.deliver(["john.doe@example.org", "jane.roe@example.org"], msg)   # LMTP
    with c.login("john.doe@example.org") as m: m.select("INBOX") ...
    c.tool("reconstruct", "-r", "user/john.doe@example.org")
    c.stop()

The spool (partition-default) and the configuration directory (mailboxes.db,
seen state, conversations) are given by the caller: in the tests they are the
btrfs subvolumes `spool` and `imap`, which kolabfs snapshots with the presets
cyrus-spool and cyrus-meta, as /var/spool/imap and /var/lib/imap on a Kolab
server.  The sockets, proc and lock directories are in the configuration
directory, as on Kolab; imapd.conf, cyrus.conf and master's pid file are in
instdir.

Settings as on a Kolab server: virtual domains by user id, "/" as hierarchy
separator (mailboxes are named user/john.doe@example.org), hashed spool,
delayed delete and delayed expunge (so unexpunge and DELETED/ mailboxes
exist).  Passwords are not checked (sasl_pwcheck_method: alwaystrue): every
user logs in with any password; `cyrus-admin` is the admin (as on Kolab).
Waits are bounded polls, never sleeps.
"""
import contextlib
import imaplib
import json
import os
import shutil
import signal
import smtplib
import socket

from kfs import pid_alive, procs_with_arg, run, wait_until

BINDIR = "/usr/lib/cyrus/bin"
USER = "cyrus"
GROUP = "mail"
ADMIN = "cyrus-admin"
PASSWORD = "any password will do"


# Kolab's /etc/imapd.annotations.conf (part): folder types and colours
KOLAB_ANNOTATIONS = """\
/vendor/kolab/color,mailbox,string,backend,value.shared value.priv,a
/vendor/kolab/displayname,mailbox,string,backend,value.shared value.priv,a
/vendor/kolab/folder-type,mailbox,string,backend,value.shared value.priv,a
/vendor/kolab/uniqueid,mailbox,string,backend,value.shared value.priv,a
"""
METADATA = ("/shared/vendor/kolab/folder-type", "/private/vendor/kolab/color")

imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def imapd_conf(spool, confdir, extra=(), annotations=None):
    """The text of an imapd.conf for this layout: Kolab's settings, with its
    sockets, proc and lock directories and sieve scripts in the configuration
    directory (/var/lib/imap/socket/lmtp, ... on a Kolab server)."""
    lines = [
        "configdirectory: %s" % confdir,
        "defaultpartition: default",
        "partition-default: %s" % spool,
        "sievedir: %s" % os.path.join(confdir, "sieve"),
        "lmtpsocket: %s" % os.path.join(confdir, "socket", "lmtp"),
        "idlesocket: %s" % os.path.join(confdir, "socket", "idle"),
        "notifysocket: %s" % os.path.join(confdir, "socket", "notify"),
        "admins: %s" % ADMIN,
        "virtdomains: userid",
        "unixhierarchysep: yes",
        "hashimapspool: true",
        "allowplaintext: yes",
        "sasl_pwcheck_method: alwaystrue",
        "delete_mode: delayed",
        "expunge_mode: delayed",
        "lmtp_downcase_rcpt: yes",
        "umask: 077",
        "syslog_prefix: kfs-test-cyrus",
    ]
    if annotations:
        lines.append("annotation_definitions: %s" % annotations)
    return "\n".join(lines + list(extra)) + "\n"


class Cyrus:
    """One Cyrus instance: master, imapd on 127.0.0.1:port, lmtpd on a socket."""

    def __init__(self, instdir, spool, confdir, port=None, extra_conf=()):
        self.dir = instdir
        self.spool = spool
        self.confdir = confdir
        self.conf = os.path.join(instdir, "imapd.conf")
        self.cyrus_conf = os.path.join(instdir, "cyrus.conf")
        self.annotations = os.path.join(instdir, "annotations.conf")
        self.pidfile = os.path.join(instdir, "master.pid")
        self.lmtp_socket = os.path.join(confdir, "socket", "lmtp")
        self.port = port or free_port()
        self.extra_conf = list(extra_conf)
        self.pid = None
        self.killed = 0
        self.write_config()

    # ---- configuration and start/stop

    def write_config(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, USER, GROUP)        # master writes its pid file here
        with open(self.conf, "w") as f:
            f.write(imapd_conf(self.spool, self.confdir, self.extra_conf, self.annotations))
        with open(self.annotations, "w") as f:
            f.write(KOLAB_ANNOTATIONS)
        conf = self.conf
        with open(self.cyrus_conf, "w") as f:
            f.write("START {\n"
                    '  recover cmd="ctl_cyrusdb -C %s -r"\n'
                    "}\n"
                    "SERVICES {\n"
                    '  imap cmd="imapd -C %s" listen="127.0.0.1:%d" prefork=0 maxchild=20\n'
                    '  lmtpunix cmd="lmtpd -C %s" listen="%s" prefork=0 maxchild=10\n'
                    "}\n"
                    "EVENTS {\n"
                    "}\n" % (conf, conf, self.port, conf, self.lmtp_socket))

    def prepare_dirs(self):
        """Spool and configuration directory owned by cyrus, and the socket
        directory (Cyrus makes the others itself)."""
        for d in (self.spool, self.confdir, os.path.join(self.confdir, "socket")):
            os.makedirs(d, exist_ok=True)
        for d in (self.spool, self.confdir):
            run(["chown", "-R", "%s:%s" % (USER, GROUP), d])

    def start(self, timeout=60):
        """Start master (it detaches: -d) and wait until IMAP answers and the
        LMTP socket accepts connections."""
        assert not self.running(), "cyrus already running (pid %s)" % self.pid
        self.prepare_dirs()
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        run(self.as_cyrus([os.path.join(BINDIR, "master"), "-C", self.conf,
                           "-M", self.cyrus_conf, "-p", self.pidfile, "-d"]))
        wait_until(self._pid_known, timeout, "cyrus master pid file " + self.pidfile)
        wait_until(self._ready, timeout, "cyrus imapd on 127.0.0.1:%d" % self.port)
        return self

    def _pid_known(self):
        try:
            with open(self.pidfile) as f:
                self.pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return True

    def _ready(self):
        if not pid_alive(self.pid):
            raise AssertionError("cyrus master exited:\n%s" % self.log_tail())
        try:
            m = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
            m.logout()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.lmtp_socket)
            finally:
                s.close()
            return True
        except OSError:
            return False

    def log_tail(self):
        return "(Cyrus logs to syslog only) config %s, pid file %s" % (self.conf, self.pidfile)

    def running(self):
        return bool(self.pid) and pid_alive(self.pid)

    def processes(self):
        """master and its children: every process started with our config."""
        return procs_with_arg(self.conf)

    def stop(self, timeout=60):
        """SIGTERM to master; wait (bounded) until it and every child is gone.

        Cyrus 3.6.1's master sometimes does not exit on SIGTERM: it spins in
        pselect() on a readable descriptor, its exited child left unreaped
        (seen here about one stop in five, right after IMAP sessions).  Its
        children are gone by then and everything is on disk, so
        it gets SIGKILL after 3 s (counted in self.killed; a clean stop takes
        0.1 s)."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                wait_until(lambda: not pid_alive(self.pid), min(timeout, 3),
                           "cyrus master to exit")
            except AssertionError:
                self.killed += 1
                os.kill(self.pid, signal.SIGKILL)
                wait_until(lambda: not pid_alive(self.pid), timeout, "cyrus master to die")
        self.pid = None
        for p in self.processes():
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        wait_until(lambda: not self.processes(), timeout, "cyrus children to exit")

    # ---- tools

    @staticmethod
    def as_cyrus(cmd):
        return ["runuser", "-u", USER, "--"] + list(cmd)

    def tool(self, name, *args, check=True, **kw):
        """Run a Cyrus tool (/usr/lib/cyrus/bin/NAME -C imapd.conf ARGS) as cyrus."""
        return run(self.as_cyrus([os.path.join(BINDIR, name), "-C", self.conf] + list(args)),
                   check=check, **kw)

    def mbpath(self, mailbox):
        return self.tool("mbpath", mailbox).stdout.strip()

    def mailboxes(self):
        """Every mailbox in mailboxes.db: {internal name: entry} (ctl_mboxlist -d)."""
        out = self.tool("ctl_mboxlist", "-d").stdout
        return json.loads(out) if out.strip() else {}

    # ---- IMAP and LMTP

    @contextlib.contextmanager
    def login(self, user=ADMIN):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        try:
            check(m.login(user, PASSWORD))
            yield m
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def create(self, *mailboxes, acl=None):
        """Create mailboxes as the admin; acl = {identifier: rights} for each."""
        with self.login() as m:
            for mb in mailboxes:
                check(m.create(quote(mb)))
                for ident, rights in (acl or {}).items():
                    check(m.setacl(quote(mb), ident, rights))

    def deliver(self, recipients, message, sender="sender@example.org"):
        """Deliver one message over LMTP to every recipient (one transaction:
        Cyrus's single-instance store hard-links the copies)."""
        if isinstance(message, str):
            message = message.encode()
        lm = smtplib.LMTP(self.lmtp_socket)
        try:
            refused = lm.sendmail(sender, list(recipients), message)
        finally:
            lm.quit()
        assert not refused, "LMTP refused: %r" % refused


def quote(mailbox):
    return '"%s"' % mailbox.replace("\\", "\\\\").replace('"', '\\"')


def check(resp):
    typ, data = resp
    assert typ == "OK", "IMAP: %s %r" % (typ, data)
    return data


# --------------------------------------------------------------------------
# reading a mailbox over IMAP

def fetch_all(m, mailbox):
    """{uid: (flags (frozenset), rfc822 bytes)} of mailbox, as user m."""
    check(m.select(quote(mailbox), readonly=True))
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    res = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        head = head.decode()
        uid = int(head.split("UID ", 1)[1].split()[0].rstrip(")"))
        flags = head.split("FLAGS (", 1)[1].split(")", 1)[0].split()
        res[uid] = (frozenset(f for f in flags if f != "\\Recent"), body)
    m.close()
    return res


def set_metadata(m, mailbox, entry, value):
    check(m._simple_command("SETMETADATA", quote(mailbox), '(%s "%s")' % (entry, value)))


def get_metadata(m, mailbox, entries=METADATA):
    """{entry: value} of the entries that are set on mailbox."""
    typ, data = m._simple_command("GETMETADATA", quote(mailbox), "(%s)" % " ".join(entries))
    assert typ == "OK", data
    typ, data = m._untagged_response(typ, data, "METADATA")
    res = {}
    for item in data:
        if item is None:
            continue
        text = item.decode() if isinstance(item, bytes) else b" ".join(item).decode()
        inner = text[text.index("(") + 1:text.rindex(")")].split()
        for k, v in zip(inner[0::2], inner[1::2]):
            if v != "NIL":
                res[k.strip("\"")] = v.strip("\"")
    return res


def list_mailboxes(m, pattern="*"):
    typ, data = m.list('""', pattern)
    assert typ == "OK", data
    names = []
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):          # literal name
            names.append(line[1].decode())
            continue
        s = line.decode()
        name = s.rsplit(' "/" ', 1)[1]
        names.append(name[1:-1] if name.startswith('"') else name)
    return sorted(names)


def message(n, subject, to="undisclosed-recipients:;", body=None, size=0):
    """A small RFC 5322 message with a unique Message-ID; size pads the body."""
    body = body or "Message %d: %s.\r\n" % (n, subject)
    if size > len(body):
        line = ("%d " % n) * 19 + "\r\n"
        body += line * ((size - len(body)) // len(line) + 1)
    return ("From: Sender <sender@example.org>\r\n"
            "To: %s\r\n"
            "Subject: %s\r\n"
            "Date: Fri, 27 Nov 2026 04:%02d:%02d +0000\r\n"
            "Message-ID: <kfs-%d@example.org>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n%s" % (to, subject, (n // 60) % 60, n % 60, n, body)).encode()


# --------------------------------------------------------------------------
# a small Kolab mail store

DOMAIN = "example.org"
USERS = ("john.doe", "jane.roe", "max.mustermann", "erika.musterfrau")


def addr(user, folder=None):
    return "%s%s@%s" % (user, "+" + folder if folder else "", DOMAIN)


def mbox(user, folder=None):
    """External mailbox name: user/john.doe@example.org, user/john.doe/Projects@..."""
    return "user/%s%s@%s" % (user, "/" + folder if folder else "", DOMAIN)


class Store:
    """What populate() made: numbered messages and where they went."""

    def __init__(self):
        self.n = 0
        self.messages = {}          # n -> bytes as delivered
        self.shared = []            # numbers of messages delivered to several mailboxes

    def next(self, subject, **kw):
        self.n += 1
        msg = message(self.n, subject, **kw)
        self.messages[self.n] = msg
        return self.n, msg


def populate(c, store=None, per_user=4):
    """Mailboxes, messages (LMTP and APPEND), flags, subscriptions and an ACL:

    - four users; john.doe has Projects and Projects/Kolab, jane.roe Archive;
    - one message to all four users in one LMTP transaction, and one to
      john.doe, jane.roe and john.doe's Projects: the single-instance store
      hard-links the copies;
    - per_user messages in every INBOX (one of them 200 kB), some in folders;
    - flags: \\Seen, \\Flagged, \\Answered and keywords; subscriptions;
      jane.roe shares her INBOX with john.doe (lrs).
    """
    s = store or Store()
    c.create(*[mbox(u) for u in USERS])
    c.create(mbox("john.doe", "Projects"), mbox("jane.roe", "Archive"), acl={"anyone": "p"})
    c.create(mbox("john.doe", "Projects/Kolab"))
    n, msg = s.next("for everyone", to="all@example.org", size=3000)
    c.deliver([addr(u) for u in USERS], msg)
    s.shared.append(n)
    n, msg = s.next("meeting notes", to="team@example.org", size=1500)
    c.deliver([addr("john.doe"), addr("jane.roe"), addr("john.doe", "Projects")], msg)
    s.shared.append(n)
    for u in USERS:
        for i in range(per_user):
            n, msg = s.next("%s message %d" % (u, i), to=addr(u),
                            size=200_000 if i == 1 else 800 * i)
            c.deliver([addr(u)], msg)
    for i in range(3):
        n, msg = s.next("project %d" % i, to=addr("john.doe", "Projects"))
        c.deliver([addr("john.doe", "Projects")], msg)
        n, msg = s.next("archived %d" % i, to=addr("jane.roe", "Archive"))
        c.deliver([addr("jane.roe", "Archive")], msg)
    with c.login(addr("john.doe")) as m:
        for i in range(2):
            n, msg = s.next("kolab %d" % i)
            check(m.append(quote("Projects/Kolab"), "(\\Seen $Kolab)", None, msg))
        set_metadata(m, "Projects/Kolab", METADATA[0], "event")
        set_metadata(m, "Projects/Kolab", METADATA[1], "#0080ff")
        set_metadata(m, "Projects", METADATA[0], "mail")
        check(m.select("INBOX"))
        check(m.uid("STORE", "1:3", "+FLAGS", "(\\Seen)"))
        check(m.uid("STORE", "2", "+FLAGS", "(\\Flagged $Label1)"))
        check(m.uid("STORE", "3", "+FLAGS", "(\\Answered)"))
        m.close()
        check(m.select("Projects"))
        check(m.uid("STORE", "1", "+FLAGS", "(\\Flagged)"))
        m.close()
        for f in ("INBOX", "Projects", "Projects/Kolab"):
            check(m.subscribe(quote(f)))
    with c.login(addr("jane.roe")) as m:
        check(m.select("INBOX"))
        check(m.uid("STORE", "1:2", "+FLAGS", "(\\Seen)"))
        m.close()
        check(m.setacl("INBOX", addr("john.doe"), "lrs"))
        for f in ("INBOX", "Archive"):
            check(m.subscribe(quote(f)))
    return s


def state(c, users=USERS):
    """Everything a user sees over IMAP: {user: {"mailboxes": {name: {uid:
    (flags, message)}}, "subscribed": [...], "shared": [...]}}.  Other users'
    folders (shared ones) are listed, not read."""
    res = {}
    for u in users:
        with c.login(addr(u)) as m:
            names = list_mailboxes(m)
            own = [n for n in names if not n.startswith("Other Users/")]
            res[u] = {"mailboxes": {n: fetch_all(m, n) for n in own},
                      "metadata": {n: get_metadata(m, n) for n in own},
                      "subscribed": list_mailboxes_lsub(m),
                      "shared": [n for n in names if n.startswith("Other Users/")]}
    return res


def list_mailboxes_lsub(m):
    typ, data = m.lsub('""', "*")
    assert typ == "OK", data
    names = []
    for line in data:
        if line is None:
            continue
        s = line.decode() if isinstance(line, bytes) else line[1].decode()
        name = s.rsplit(' "/" ', 1)[-1]
        names.append(name[1:-1] if name.startswith('"') else name)
    return sorted(names)


def find_message(st, user, number):
    """(mailbox, uid, flags, body) of message number (by its Message-ID) in user's state."""
    mid = b"Message-ID: <kfs-%d@example.org>" % number
    for name, msgs in st[user]["mailboxes"].items():
        for uid, (flags, body) in msgs.items():
            if mid in body:
                return name, uid, flags, body
    return None
