"""Real directory servers for the integration tests, started without systemd.

    ds = DirSrv(base, "kfs", {"userroot": "dc=example,dc=org"})
    ds.create(); ds.start(); ds.add(ldif_text); ds.stop()

    ol = Slapd(base, "dc=example,dc=com")
    ol.create(); ol.start(); ol.add(ldif_text); ol.stop()

389 Directory Server: every path of the instance (/etc/dirsrv/slapd-NAME,
/var/lib/dirsrv/slapd-NAME, /run/dirsrv, ...) lies under BASE.  dscreate
takes its paths (and with_systemd) from /usr/share/dirsrv/inf/defaults.inf;
a patched copy is bind-mounted over it only inside a private mount and PID
namespace made for each dscreate or dsctl run (DirSrv.ns), never in the test
process.  The namespace's PID 1 is a tiny reaper: dscreate starts ns-slapd
(which daemonizes) and waits for its pid to vanish, which only happens when
somebody reaps it (this machine's PID 1 does not).  The namespace ends with
the command, so nothing it started can live on holding a copy of a later
kolabfs mount.

The servers themselves run in the test's own namespaces, as children of the
test process (ns-slapd -d 0, slapd -d 0: in the foreground), listening on
127.0.0.1 and free ports.  Waits are bounded polls, never sleeps.
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from kfs import run, terminate, wait_until

DEFAULTS_INF = "/usr/share/dirsrv/inf/defaults.inf"
DM = "cn=Directory Manager"


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ssha(password, salt=b"kolabfs8"):
    """An {SSHA} userPassword value (salted SHA-1), as 389-ds and slapd take it."""
    h = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(h + salt).decode()


def patched_defaults(root=None):
    """defaults.inf with with_systemd = 0 and, given ROOT, every path of an
    instance (all but /usr and tmp_dir) moved below ROOT."""
    out = []
    with open(DEFAULTS_INF) as f:
        for line in f:
            key, eq, val = line.partition("=")
            key, val = key.strip(), val.strip()
            if not eq or key.startswith((";", "#")):
                out.append(line)
            elif key == "with_systemd":
                out.append("with_systemd = 0\n")
            elif root and key == "db_home_dir":
                # beside the database (the default is /dev/shm/slapd-NAME)
                out.append("%s = %s/var/lib/dirsrv/slapd-{instance_name}/db\n" % (key, root))
            elif root and key != "tmp_dir" and val.startswith("/") and not val.startswith("/usr"):
                out.append("%s = %s%s\n" % (key, root, val))
            else:
                out.append(line)
    return "".join(out)


# PID 1 of DirSrv.ns(): bind-mount the patched defaults.inf, run the
# command, reap every process until it exits, exit with its status.
NS_INIT = r"""
import os, subprocess, sys
subprocess.run(["mount", "--bind", sys.argv[1], "/usr/share/dirsrv/inf/defaults.inf"], check=True)
cmd = subprocess.Popen(sys.argv[2:])
while True:
    pid, status = os.wait()
    if pid == cmd.pid:
        sys.exit(os.waitstatus_to_exitcode(status))
"""


def ldap_up(uri):
    """Whether the server answers an anonymous root DSE search."""
    p = subprocess.run(["ldapsearch", "-x", "-H", uri, "-o", "nettimeout=2", "-LLL",
                        "-s", "base", "-b", "", "1.1"], capture_output=True)
    return p.returncode == 0


class Server:
    """What DirSrv and Slapd share: a foreground server process, LDAP tools
    bound as the root DN (password from a 0600 file, never on a command
    line), bounded waits."""

    proc = None
    uri = None
    log = None
    name = "server"

    def _start(self, argv):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        wait_until(self._ready, 60, "%s on %s" % (self.name, self.uri), interval=0.05)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("%s exited (%d):\n%s" % (self.name, self.proc.returncode,
                                                        self.log_tail()))
        return ldap_up(self.uri)

    def log_tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.proc:
            return
        terminate(self.proc, 60)
        self.proc = None

    def tool(self, tool, *args, input=None, check=True, uri=None):
        """ldapadd, ldapmodify, ldapdelete, ldapsearch ... as the root DN."""
        return run([tool, "-x", "-H", uri or self.uri, "-D", self.root_dn, "-y", self.pw_file]
                   + list(args), input=input, check=check)

    def add(self, ldif):
        self.tool("ldapadd", input=ldif)

    def modify(self, ldif):
        self.tool("ldapmodify", input=ldif)

    def delete(self, *dns):
        self.tool("ldapdelete", *dns)

    def search(self, base, *attrs, scope="sub", filt="(objectClass=*)"):
        """LDIF, unwrapped, of the entries under base (user attributes unless told)."""
        return self.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", scope, "-b", base,
                         filt, *attrs).stdout

    def exists(self, dn):
        p = self.tool("ldapsearch", "-LLL", "-s", "base", "-b", dn, "1.1", check=False)
        return p.returncode == 0

    def count(self, base):
        return sum(1 for l in self.search(base, "1.1").splitlines() if l.startswith("dn:"))

    def binds(self, dn, password):
        """Whether DN binds with PASSWORD, given in a 0600 file (-y), never
        on the command line."""
        fd, path = tempfile.mkstemp(prefix="bind-", suffix=".pw", dir=self.base)
        try:
            os.write(fd, password.encode())
            os.close(fd)
            p = subprocess.run(["ldapwhoami", "-x", "-H", self.uri, "-D", dn, "-y", path],
                               capture_output=True, text=True)
        finally:
            os.unlink(path)
        return p.returncode == 0


def write_secret(path, text):
    """A 0600 file with text and no newline (ldap*'s -y takes it all)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, 0o600)
    return path


class DirSrv(Server):
    """A 389 Directory Server instance with all its paths under base."""

    name = "ns-slapd"

    def __init__(self, base, inst, backends, password="dm-secret-kolabfs"):
        self.base = base
        self.inst = inst
        self.backends = dict(backends)          # {backend name: suffix}
        self.root_dn = DM
        self.password = password
        self.port = None
        self.ldapi = None           # the ldapi socket (root binds there by autobind)
        self.conf = os.path.join(base, "etc", "dirsrv", "slapd-" + inst)
        self.ldifdir = os.path.join(base, "var", "lib", "dirsrv", "slapd-" + inst, "ldif")
        self.dbdir = os.path.join(base, "var", "lib", "dirsrv", "slapd-" + inst, "db")
        self.pidfile = os.path.join(base, "ns-slapd.pid")
        self.log = os.path.join(base, "ns-slapd.out")
        self.errors = os.path.join(base, "var", "log", "dirsrv", "slapd-" + inst, "errors")
        self.defaults = os.path.join(base, "defaults.inf")
        self.pw_file = os.path.join(base, "dm.pw")

    def ns_argv(self, argv=()):
        """argv (dscreate, dsctl ...) to run where defaults.inf points into base."""
        return ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation",
                "private", "--", sys.executable, "-c", NS_INIT, self.defaults] + list(argv)

    def ns(self, argv, check=True, timeout=300, **kw):
        """Run argv (dscreate, dsctl ...) where defaults.inf points into base."""
        return run(self.ns_argv(argv), check=check, timeout=timeout, **kw)

    def create(self):
        os.makedirs(self.base, exist_ok=True)
        os.chmod(self.base, 0o755)             # the server runs as dirsrv
        with open(self.defaults, "w") as f:
            f.write(patched_defaults(self.base))
        for d in ("var/lib/dirsrv", "var/log/dirsrv", "run/lock/dirsrv", "etc/dirsrv"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        # dscreate copies $sysconf_dir/dirsrv/{schema,config}
        for d in ("schema", "config"):
            shutil.copytree(os.path.join("/etc/dirsrv", d), os.path.join(self.base, "etc", "dirsrv", d),
                            symlinks=True)
        write_secret(self.pw_file, self.password)
        inf = ["[general]", "full_machine_name = localhost", "start = False", "",
               "[slapd]", "instance_name = %s" % self.inst, "port = %d" % free_port(),
               "secure_port = %d" % free_port(), "root_password = %s" % self.password,
               "self_sign_cert = False", ""]
        for name, suffix in self.backends.items():
            inf += ["[backend-%s]" % name, "suffix = %s" % suffix, "create_suffix_entry = True", ""]
        inf_path = os.path.join(self.base, "instance.inf")
        fd = os.open(inf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, "\n".join(inf).encode())
        os.close(fd)
        self.ns(["dscreate", "from-file", inf_path])
        os.unlink(inf_path)
        # loopback only: edited into dse.ldif while the server is stopped
        dse = os.path.join(self.conf, "dse.ldif")
        with open(dse) as f:
            text = f.read()
        text = text.replace("\ndn: cn=config\n", "\ndn: cn=config\nnsslapd-listenhost: 127.0.0.1\n", 1)
        with open(dse, "w") as f:
            f.write(text)
        for line in text.splitlines():
            if line.startswith("nsslapd-port: ") and not self.port:
                self.port = int(line.split(": ", 1)[1])
            elif line.startswith("nsslapd-ldapifilepath: "):
                self.ldapi = line.split(": ", 1)[1]
        self.uri = "ldap://127.0.0.1:%d" % self.port
        return self

    def start(self):
        return self._start(["ns-slapd", "-D", self.conf, "-i", self.pidfile, "-d", "0"])

    def ldif2db(self, backend, path, check=True):
        """The offline import, as dsctl runs it (the server must be stopped)."""
        return run(["ns-slapd", "ldif2db", "-D", self.conf, "-n", backend, "-i", path],
                   check=check)

    def dsctl(self, *args, check=True):
        return self.ns(["dsctl", self.inst] + list(args), check=check)

    def dsconf(self, *args):
        """dsconf over LDAP as the Directory Manager."""
        return run(["dsconf", "-D", self.root_dn, "-y", self.pw_file, self.uri] + list(args)).stdout

    def task_entries(self):
        """Export task entries kolabfs left on the server (dn lines)."""
        out = self.tool("ldapsearch", "-LLL", "-b", "cn=export,cn=tasks,cn=config",
                        "(cn=kolabfs-*)", "1.1", check=False).stdout
        return [l for l in out.splitlines() if l.startswith("dn:")]

    def wait_no_tasks(self, timeout=30):
        """The server drops finished task entries after their ttl (5 s)."""
        wait_until(lambda: not self.task_entries(), timeout, "export task entries to expire",
                   interval=0.25)

    def ldifdir_leftovers(self):
        return [n for n in os.listdir(self.ldifdir) if n.startswith("kolabfs-")]


SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {pidfile}
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 268435456
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {db}
access to * by * read
"""


class Slapd(Server):
    """OpenLDAP slapd as user openldap, one mdb database; configured from a
    slapd.conf that slapd itself converts into base/slapd.d (cn=config, as
    Debian runs it) on its first start."""

    name = "slapd"

    def __init__(self, base, suffix, password="ol-secret-kolabfs"):
        self.base = base
        self.suffix = suffix
        self.root_dn = "cn=admin," + suffix
        self.password = password
        self.db = os.path.join(base, "db")
        self.slapd_conf = os.path.join(base, "slapd.conf")
        self.slapd_d = os.path.join(base, "slapd.d")
        self.rundir = os.path.join(base, "run")            # the pid file, written as openldap
        self.pidfile = os.path.join(self.rundir, "slapd.pid")
        self.log = os.path.join(base, "slapd.out")
        self.pw_file = os.path.join(base, "admin.pw")
        self.ldapi = os.path.join(base, "ldapi")
        self.port = free_port()
        self.uri = "ldap://127.0.0.1:%d" % self.port

    def write_conf(self, path, db):
        os.makedirs(db, mode=0o700, exist_ok=True)
        with open(path, "w") as f:
            f.write(SLAPD_CONF.format(pidfile=self.pidfile, suffix=self.suffix,
                                      rootdn=self.root_dn, rootpw=self.password, db=db))

    def create(self):
        os.makedirs(self.base, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.write_conf(self.slapd_conf, self.db)
        os.makedirs(self.slapd_d, mode=0o750, exist_ok=True)
        os.makedirs(self.rundir, mode=0o755, exist_ok=True)
        write_secret(self.pw_file, self.password)
        run(["chown", "-R", "openldap:openldap", self.db, self.slapd_d, self.rundir])
        return self

    def start(self):
        from urllib.parse import quote
        urls = "%s/ ldapi://%s" % (self.uri, quote(self.ldapi, safe=""))
        argv = ["slapd", "-F", self.slapd_d, "-h", urls, "-u", "openldap", "-g", "openldap",
                "-d", "0"]
        if not os.listdir(self.slapd_d):
            argv[1:1] = ["-f", self.slapd_conf]
        return self._start(argv)

    def slapcat(self, conf_args=None):
        return run(["slapcat"] + (conf_args or ["-F", self.slapd_d]) + ["-b", self.suffix]).stdout


def normalised_ldif(text):
    """LDIF unfolded, each entry's lines sorted, entries sorted by DN line."""
    text = text.replace("\n ", "")
    entries = []
    for rec in text.split("\n\n"):
        lines = [l for l in rec.strip().splitlines() if l and not l.startswith("#")]
        if lines:
            entries.append("\n".join(sorted(lines)))
    return sorted(entries)


# --------------------------------------------------------------------------
# test data

def kolab_ldif(suffix, users, groups=0, cleartext=0, ous=True, domain=None):
    """A Kolab-like tree under suffix (which must exist): ou=People with
    users uid=userN ({SSHA} password "pw-N", or cleartext "clear-N" that the
    server hashes itself for the first `cleartext` of them), ou=Groups with
    groupOfUniqueNames, and nested OUs (ou=North,ou=Sales,ou=Org) holding
    every 10th user and every other group."""
    domain = domain or ".".join(p.split("=", 1)[1] for p in suffix.split(","))
    out = []

    def entry(dn, *lines):
        out.append("dn: %s\n%s\n" % (dn, "\n".join(lines)))

    entry("ou=People," + suffix, "objectClass: organizationalUnit", "ou: People")
    entry("ou=Groups," + suffix, "objectClass: organizationalUnit", "ou: Groups")
    nested = "ou=North,ou=Sales,ou=Org," + suffix
    if ous:
        entry("ou=Org," + suffix, "objectClass: organizationalUnit", "ou: Org")
        entry("ou=Sales,ou=Org," + suffix, "objectClass: organizationalUnit", "ou: Sales")
        entry(nested, "objectClass: organizationalUnit", "ou: North",
              "description: three levels down")
    dns = []
    for i in range(users):
        where = nested if ous and i % 10 == 9 else "ou=People," + suffix
        dn = "uid=user%d,%s" % (i, where)
        dns.append(dn)
        pw = "clear-%d" % i if i < cleartext else ssha("pw-%d" % i)
        entry(dn, "objectClass: inetOrgPerson", "objectClass: mailRecipient",
              "uid: user%d" % i, "cn: User %d" % i, "givenName: User", "sn: %d" % i,
              "mail: user%d@%s" % (i, domain), "mailAlternateAddress: u%d@%s" % (i, domain),
              "mailHost: imap.%s" % domain, "mailQuota: %d" % (1048576 + i),
              "userPassword: %s" % pw)
    for g in range(groups):
        where = nested if ous and g % 2 else "ou=Groups," + suffix
        members = ["uniqueMember: %s" % dns[j] for j in range(g, len(dns), max(groups, 7))]
        entry("cn=group%d,%s" % (g, where), "objectClass: groupOfUniqueNames",
              "objectClass: mailGroup", "cn: group%d" % g, "mail: group%d@%s" % (g, domain),
              *members)
    return "\n".join(out)


def user_password(i, cleartext=0):
    return "clear-%d" % i if i < cleartext else "pw-%d" % i


def tricky_ldif(suffix, users=200, depth=12, seed=42):
    """Everything LDIF writers get wrong, for a slapd database: non-ASCII,
    leading and trailing spaces, a leading ':' or '<', newlines, long
    values that fold, multi-valued attributes, binary jpegPhoto (starting
    with NUL), a deep tree.  Values that need it are given base64."""
    import random
    rnd = random.Random(seed)
    b64 = lambda attr, v: "%s:: %s" % (attr, base64.b64encode(
        v if isinstance(v, bytes) else v.encode()).decode())
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: Example\n"
           % (suffix, suffix.split(",")[0].split("=")[1]),
           "dn: ou=People,%s\nobjectClass: organizationalUnit\nou: People\n" % suffix]
    for i in range(users):
        lines = ["dn: uid=u%d,ou=People,%s" % (i, suffix), "objectClass: inetOrgPerson",
                 "uid: u%d" % i, "sn: S%d" % i, "mail: u%d@example.com" % i,
                 "mail: u%d.alias@example.com" % i, "mail: u%d.x@example.com" % i,
                 "userPassword: %s" % ssha("ol-%d" % i), "description: " + "x" * (200 + i),
                 b64("cn", "Jürgen Müller-Łukasz 日本 %d" % i), b64("title", " leading space"),
                 b64("l", "trailing space "), b64("street", ":colon first"),
                 b64("st", "<angle first"), b64("postalAddress", "line1\nline2")]
        if i % 4 == 0:
            photo = bytes([0]) + bytes(rnd.randrange(256) for _ in range(699))
            lines.append(b64("jpegPhoto", photo))
        out.append("\n".join(lines) + "\n")
    dn = "ou=l1," + suffix
    for d in range(1, depth + 1):
        out.append("dn: %s\nobjectClass: organizationalUnit\nou: l%d\n" % (dn, d))
        dn = "ou=l%d,%s" % (d + 1, dn)
    out.append("dn: ou=Late,%s\nobjectClass: organizationalUnit\nou: Late\n" % suffix)
    return "\n".join(out)
