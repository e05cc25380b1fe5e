/*
 * kolabfs: tests of snap/ldap*.c against real servers.  Needs root, a
 * 389 Directory Server (389-ds-base) and OpenLDAP (slapd, ldap-utils);
 * not run by `make check`:
 *
 *	make tests/root/test-ldap && sudo tests/root/test-ldap
 *
 * Without them every test is skipped with the reason (a failure when
 * CI=true).
 *
 * Isolation: main() makes TMP and forks the tests into a new PID and
 * mount namespace.  Every server runs in there, so when the tests end
 * (or crash), the kernel kills them all; the parent then removes TMP.
 * dscreate is pointed into TMP by a patched copy of its defaults.inf,
 * bind-mounted over the system one inside that namespace only.
 *
 *	TMP/ds      389-ds instance "kfs": backends userroot (dc=example,dc=org,
 *	            users with hashed passwords, groups, nested OUs) and hosts
 *	            (dc=hosts,dc=org)
 *	TMP/ol      OpenLDAP slapd (dc=example,dc=com) as user openldap, with
 *	            binary, non-ASCII, leading-space, long, multi-valued values,
 *	            a deep tree and an entry moved under a newer parent
 *	TMP/out/N   export directories, one per test
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <ldap.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "snap/ldap.h"
#include "snap/rmtree.h"

#define DS_INST "kfs"
#define DS_SUFFIX "dc=example,dc=org"
#define DS_HOSTS "dc=hosts,dc=org"
#define DS_DM "cn=Directory Manager"
#define DS_PW "dm-secret-1"
#define DS_USERS 300
#define DS_GROUPS 20
#define DS_HOSTS_N 50
#define OL_SUFFIX "dc=example,dc=com"
#define OL_ROOT "cn=admin," OL_SUFFIX
#define OL_PW "ol-secret-1"
#define OL_LIMITED "cn=limited," OL_SUFFIX
#define OL_LIMITED_PW "limited-pw"
#define OL_USERS 200
#define OL_DEPTH 12
#define WAIT_S 30
#define TASK_TTL 5              /* as in snap/ldap-task.c */

static struct {
	char *skip;             /* why every test is skipped, or NULL */
	char *broken;           /* why every server test fails, or NULL */
	char *tmp;
	/* 389-ds */
	char *ds_conf;          /* -D config directory */
	char *ds_uri;
	char *ds_ldifdir;
	GPid ds_pid;
	uid_t dirsrv_uid;
	/* OpenLDAP */
	char *ol_conf;          /* slapd.conf */
	char *ol_uri;
	GPid ol_pid;
	uid_t openldap_uid;
	/* password files; ldap*'s -y sends the whole file, so the tools get
	 * ds_tool_pw_file, the Directory Manager's without the newline */
	char *ds_pw_file, *ds_tool_pw_file, *ol_pw_file, *bad_pw_file, *limited_pw_file;
	unsigned int n_out;
} env;

/* ------------------------------------------------------------ helpers */

static char *path(const char *a, const char *b)
{
	return g_build_filename(a, b, NULL);
}

static void child_stdin(gpointer file)
{
	int fd = open(file ? file : "/dev/null", O_RDONLY);

	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
}

/* Run ARGV with INPUT (or nothing) on stdin; false with *why. */
static bool run_in(const char *const *argv, const char *input, char **out,
		   char **why)
{
	g_autofree char *in = NULL, *o = NULL, *e = NULL;
	GError *error = NULL;
	int status;
	bool ok;

	/* No password on a command line (ps and /proc show it to everyone):
	 * files (-y), stdin or config files only. */
	for (const char *const *a = argv; *a; a++)
		g_assert_true(!strstr(*a, DS_PW) && !strstr(*a, OL_PW) &&
			      !strstr(*a, OL_LIMITED_PW));
	if (input) {
		in = g_strdup_printf("%s/stdin", env.tmp);
		g_assert_true(g_file_set_contents(in, input, -1, NULL));
	}
	ok = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
			  G_SPAWN_CHILD_INHERITS_STDIN, child_stdin, in, &o, &e,
			  &status, &error) &&
	     g_spawn_check_wait_status(status, &error);
	if (ok) {
		if (out)
			*out = g_steal_pointer(&o);
		return true;
	}
	*why = g_strdup_printf("%s: %s: %s%s", argv[0], error->message,
			       o ? o + (strlen(o) > 2000 ? strlen(o) - 2000 : 0) : "",
			       e ? g_strstrip(e) : "");
	g_error_free(error);
	return false;
}

static void must_run(const char *const *argv, const char *input, char **out)
{
	g_autofree char *why = NULL;

	if (!run_in(argv, input, out, &why))
		g_error("%s", why);
}

/* Created with MODE, never readable by others in between: some hold passwords. */
static void write_file(const char *file, const char *text, int mode)
{
	GError *error = NULL;

	g_file_set_contents_full(file, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, mode, &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(file, mode), ==, 0);
}

static unsigned int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A server in the foreground, its output into LOG. */
static void child_log(gpointer log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

static GPid start_server(const char *const *argv, const char *log)
{
	GError *error = NULL;
	GPid pid;

	g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH |
		      G_SPAWN_STDIN_FROM_DEV_NULL, child_log, (gpointer)log,
		      &pid, &error);
	g_assert_no_error(error);
	return pid;
}

/* Whether an anonymous bind works: the server is up. */
static bool ldap_up(const char *uri)
{
	struct berval cred = { 0, NULL };
	struct timeval tv = { 1, 0 };
	int v3 = LDAP_VERSION3;
	LDAP *ld;
	int rc;

	if (ldap_initialize(&ld, uri) != LDAP_SUCCESS)
		return false;
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	rc = ldap_sasl_bind_s(ld, "", LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc == LDAP_SUCCESS;
}

/* Poll (bounded) until the server answers or its process is gone. */
static void wait_up(const char *uri, GPid pid, const char *log)
{
	gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
	int status;

	while (!ldap_up(uri)) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			g_error("server for %s exited, see %s", uri, log);
		if (g_get_monotonic_time() > end)
			g_error("server for %s not up in %d s, see %s", uri, WAIT_S, log);
		g_usleep(20 * 1000);
	}
}

static void stop_server(GPid *pid)
{
	gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &status, WNOHANG) != *pid) {
		if (g_get_monotonic_time() > end) {
			kill(*pid, SIGKILL);
			waitpid(*pid, &status, 0);
			break;
		}
		g_usleep(20 * 1000);
	}
	*pid = 0;
}

/* ------------------------------------------------------ 389-ds set-up */

static bool ds_create(char **why)
{
	g_autofree char *ds = path(env.tmp, "ds");
	g_autofree char *defaults = NULL, *patched = NULL, *inf = NULL;
	g_autofree char *dse = NULL, *text = NULL, *sub = NULL;
	const char *argv[] = { "dscreate", "from-file", NULL, NULL };
	GString *s;
	char **lines;

	if (!g_file_get_contents("/usr/share/dirsrv/inf/defaults.inf", &text, NULL, NULL)) {
		*why = g_strdup("no /usr/share/dirsrv/inf/defaults.inf");
		return false;
	}
	/* Every path of the instance into TMP/ds; no systemd. */
	s = g_string_new(NULL);
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_autofree char *key = g_strstrip(g_strdup(*l));
		char *eq = strchr(key, '=');
		const char *val;

		if (!eq || key[0] == ';' || key[0] == '#') {
			g_string_append_printf(s, "%s\n", *l);
			continue;
		}
		val = g_strstrip(eq + 1);
		*eq = '\0';
		g_strstrip(key);
		if (strcmp(key, "with_systemd") == 0)
			g_string_append(s, "with_systemd = 0\n");
		else if (strcmp(key, "tmp_dir") == 0)
			g_string_append_printf(s, "%s\n", *l);
		else if (strcmp(key, "db_home_dir") == 0)
			g_string_append_printf(s, "%s = %s/var/lib/dirsrv/slapd-{instance_name}/db\n",
					       key, ds);
		else if (val[0] == '/' && !g_str_has_prefix(val, "/usr"))
			g_string_append_printf(s, "%s = %s%s\n", key, ds, val);
		else
			g_string_append_printf(s, "%s\n", *l);
	}
	g_strfreev(lines);
	patched = path(ds, "defaults.inf");
	g_assert_cmpint(g_mkdir_with_parents(ds, 0755), ==, 0);
	write_file(patched, s->str, 0644);
	g_string_free(s, TRUE);
	if (mount(patched, "/usr/share/dirsrv/inf/defaults.inf", "none", MS_BIND, NULL) < 0) {
		*why = g_strdup_printf("bind-mounting defaults.inf: %s", g_strerror(errno));
		return false;
	}
	/* dscreate copies $sysconf_dir/dirsrv/{schema,config}. */
	for (const char *d = "var/lib/dirsrv\0var/log/dirsrv\0run/lock/dirsrv\0etc/dirsrv\0"; *d; d += strlen(d) + 1) {
		g_autofree char *p = path(ds, d);

		g_assert_cmpint(g_mkdir_with_parents(p, 0755), ==, 0);
	}
	sub = g_strdup_printf("cp -a /etc/dirsrv/schema /etc/dirsrv/config %s/etc/dirsrv/", ds);
	{
		const char *cp[] = { "sh", "-c", sub, NULL };

		if (!run_in(cp, NULL, NULL, why))
			return false;
	}
	inf = path(ds, "instance.inf");
	text = (g_free(text), g_strdup_printf(
		"[general]\nfull_machine_name = localhost\nstart = False\n"
		"[slapd]\ninstance_name = " DS_INST "\nport = %u\nsecure_port = %u\n"
		"root_password = " DS_PW "\nself_sign_cert = False\n"
		"[backend-userroot]\nsuffix = " DS_SUFFIX "\ncreate_suffix_entry = True\n"
		"[backend-hosts]\nsuffix = " DS_HOSTS "\ncreate_suffix_entry = True\n",
		free_port(), free_port()));
	write_file(inf, text, 0600);
	argv[2] = inf;
	if (!run_in(argv, NULL, NULL, why))
		return false;
	/* Listen on loopback only: edit dse.ldif while stopped. */
	env.ds_conf = g_strdup_printf("%s/etc/dirsrv/slapd-" DS_INST, ds);
	dse = path(env.ds_conf, "dse.ldif");
	g_free(text);
	g_assert_true(g_file_get_contents(dse, &text, NULL, NULL));
	g_assert_nonnull(strstr(text, "\ndn: cn=config\n"));
	{
		g_autofree char *head = g_strndup(text, strstr(text, "\ndn: cn=config\n") - text);
		g_autofree char *edited = g_strdup_printf("%s\ndn: cn=config\nnsslapd-listenhost: 127.0.0.1\n%s",
							  head, strstr(text, "\ndn: cn=config\n") + 15);

		g_assert_true(g_file_set_contents(dse, edited, -1, NULL));
	}
	{
		g_autofree char *port = NULL;
		char *p = strstr(text, "\nnsslapd-port: ");

		g_assert_nonnull(p);
		port = g_strndup(p + 15, strcspn(p + 15, "\n"));
		env.ds_uri = g_strdup_printf("ldap://127.0.0.1:%s", port);
	}
	env.ds_ldifdir = g_strdup_printf("%s/var/lib/dirsrv/slapd-" DS_INST "/ldif", ds);
	return true;
}

static void ds_start(void)
{
	g_autofree char *pid = path(env.tmp, "ds/ns-slapd.pid");
	g_autofree char *log = path(env.tmp, "ds/ns-slapd.log");
	const char *argv[] = { "ns-slapd", "-D", env.ds_conf, "-i", pid, "-d", "0", NULL };

	env.ds_pid = start_server(argv, log);
	wait_up(env.ds_uri, env.ds_pid, log);
}

/* ldapadd/ldapmodify/ldapdelete as the Directory Manager (the password
 * from a file: never on a command line, where ps shows it). */
static void ds_tool(const char *tool, const char *input, const char *arg)
{
	const char *argv[] = { tool, "-x", "-H", env.ds_uri, "-D", DS_DM, "-y",
			       env.ds_tool_pw_file, arg, NULL };

	must_run(argv, input, NULL);
}

static char *ds_data(void)
{
	GString *s = g_string_new(NULL);

	g_string_append(s, "dn: ou=People," DS_SUFFIX "\nobjectClass: organizationalUnit\nou: People\n\n"
			"dn: ou=Groups," DS_SUFFIX "\nobjectClass: organizationalUnit\nou: Groups\n\n"
			"dn: ou=Org," DS_SUFFIX "\nobjectClass: organizationalUnit\nou: Org\n\n"
			"dn: ou=Sales,ou=Org," DS_SUFFIX "\nobjectClass: organizationalUnit\nou: Sales\n\n"
			"dn: ou=North,ou=Sales,ou=Org," DS_SUFFIX "\nobjectClass: organizationalUnit\nou: North\n\n");
	for (int i = 0; i < DS_USERS; i++)
		g_string_append_printf(s, "dn: uid=user%d,ou=People," DS_SUFFIX "\n"
				       "objectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: %d\n"
				       "mail: user%d@example.org\nuserPassword: pw-%d\n\n",
				       i, i, i, i, i, i);
	for (int i = 0; i < DS_GROUPS; i++) {
		g_string_append_printf(s, "dn: cn=group%d,%s," DS_SUFFIX "\n"
				       "objectClass: groupOfNames\ncn: group%d\n",
				       i, i % 2 ? "ou=North,ou=Sales,ou=Org" : "ou=Groups", i);
		for (int j = i; j < DS_USERS; j += 17)
			g_string_append_printf(s, "member: uid=user%d,ou=People," DS_SUFFIX "\n", j);
		g_string_append_c(s, '\n');
	}
	g_string_append(s, "dn: ou=Hosts," DS_HOSTS "\nobjectClass: organizationalUnit\nou: Hosts\n\n");
	for (int i = 0; i < DS_HOSTS_N; i++)
		g_string_append_printf(s, "dn: cn=host%d,ou=Hosts," DS_HOSTS "\n"
				       "objectClass: device\ncn: host%d\ndescription: host number %d\n\n",
				       i, i, i);
	return g_string_free(s, FALSE);
}

/* ---------------------------------------------------- OpenLDAP set-up */

static void ol_write_conf(const char *conf, const char *dir, const char *pid)
{
	g_autofree char *text = g_strdup_printf(
		"include /etc/ldap/schema/core.schema\n"
		"include /etc/ldap/schema/cosine.schema\n"
		"include /etc/ldap/schema/inetorgperson.schema\n"
		"include /etc/ldap/schema/nis.schema\n"
		"pidfile %s\n"
		"modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
		"database mdb\nmaxsize 104857600\n"
		"suffix \"" OL_SUFFIX "\"\n"
		"rootdn \"" OL_ROOT "\"\nrootpw " OL_PW "\n"
		"directory %s\n"
		"limits dn.exact=\"" OL_LIMITED "\" size=10\n"
		"access to * by * read\n", pid, dir);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	write_file(conf, text, 0644);
}

static void b64_line(GString *s, const char *attr, const void *val, size_t len)
{
	g_autofree char *b = g_base64_encode(val, len);

	g_string_append_printf(s, "%s:: %s\n", attr, b);
}

/* Everything that LDIF writers get wrong. */
static char *ol_data(void)
{
	GString *s = g_string_new(NULL);
	GString *dn = g_string_new("ou=l1," OL_SUFFIX);
	GRand *r = g_rand_new_with_seed(42);

	g_string_append(s, "dn: " OL_SUFFIX "\nobjectClass: dcObject\nobjectClass: organization\n"
			"dc: example\no: Example\n\n"
			"dn: ou=People," OL_SUFFIX "\nobjectClass: organizationalUnit\nou: People\n\n"
			"dn: " OL_LIMITED "\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
			"cn: limited\nuserPassword: " OL_LIMITED_PW "\n\n");
	for (int i = 0; i < OL_USERS; i++) {
		g_autofree char *cn = g_strdup_printf("Jürgen Müller-Łukasz 日本 %d", i);
		g_autofree char *desc = g_strnfill(200 + i, 'x');
		char photo[700];

		for (size_t j = 0; j < sizeof(photo); j++)
			photo[j] = g_rand_int(r);
		photo[0] = 0;   /* a NUL first */
		g_string_append_printf(s, "dn: uid=u%d,ou=People," OL_SUFFIX "\n"
				       "objectClass: inetOrgPerson\nuid: u%d\nsn: S%d\n"
				       "mail: u%d@example.com\nmail: u%d.alias@example.com\nmail: u%d.x@example.com\n"
				       "userPassword: {SSHA}notreally%d\n"
				       "description: %s\n",
				       i, i, i, i, i, i, i, desc);
		b64_line(s, "cn", cn, strlen(cn));
		b64_line(s, "title", " leading space", 14);
		b64_line(s, "l", "trailing space ", 15);
		b64_line(s, "street", ":colon first", 12);
		b64_line(s, "st", "<angle first", 12);
		b64_line(s, "postalAddress", "line1\nline2", 11);
		if (i % 4 == 0)
			b64_line(s, "jpegPhoto", photo, sizeof(photo));
		g_string_append_c(s, '\n');
	}
	for (int d = 1; d <= OL_DEPTH; d++) {
		g_autofree char *rdn = g_strdup_printf("ou=l%d,", d + 1);

		g_string_append_printf(s, "dn: %s\nobjectClass: organizationalUnit\nou: l%d\n\n", dn->str, d);
		g_string_prepend(dn, rdn);
	}
	g_string_append(s, "dn: ou=Late," OL_SUFFIX "\nobjectClass: organizationalUnit\nou: Late\n\n");
	g_string_free(dn, TRUE);
	g_rand_free(r);
	return g_string_free(s, FALSE);
}

static void ol_start(void)
{
	g_autofree char *log = path(env.tmp, "ol/slapd.log");
	g_autofree char *sock = path(env.tmp, "ol/ldapi");
	g_autofree char *esc = g_uri_escape_string(sock, NULL, FALSE);
	g_autofree char *urls = g_strdup_printf("%s ldapi://%s", env.ol_uri, esc);
	const char *argv[] = { "slapd", "-f", env.ol_conf, "-h", urls, "-u", "openldap",
			       "-g", "openldap", "-d", "0", NULL };

	env.ol_pid = start_server(argv, log);
	wait_up(env.ol_uri, env.ol_pid, log);
}

static bool ol_create(char **why)
{
	g_autofree char *ol = path(env.tmp, "ol");
	g_autofree char *db = path(ol, "db");
	g_autofree char *pid = path(ol, "slapd.pid");
	g_autofree char *data = ol_data();
	const char *chown[] = { "chown", "-R", "openldap:openldap", ol, NULL };
	const char *add[] = { "ldapadd", "-x", "-H", NULL, "-D", OL_ROOT, "-y", env.ol_pw_file,
			      NULL };
	/* Move an early entry under a newer parent: it comes first in mdb. */
	const char *move[] = { "ldapmodrdn", "-x", "-H", NULL, "-D", OL_ROOT, "-y", env.ol_pw_file,
			       "-s", "ou=Late," OL_SUFFIX, "uid=u1,ou=People," OL_SUFFIX, "uid=u1", NULL };

	env.ol_conf = path(ol, "slapd.conf");
	ol_write_conf(env.ol_conf, db, pid);
	if (!run_in(chown, NULL, NULL, why))
		return false;
	env.ol_uri = g_strdup_printf("ldap://127.0.0.1:%u", free_port());
	ol_start();
	add[3] = move[3] = env.ol_uri;
	return run_in(add, data, NULL, why) && run_in(move, NULL, NULL, why);
}

/* ------------------------------------------------------------ fixture */

static void setup(void)
{
	struct passwd *pw;
	g_autofree char *why = NULL;
	g_autofree char *data = NULL;

	if (geteuid() != 0) {
		env.skip = g_strdup("needs root (servers, namespaces, chown)");
		return;
	}
	for (const char *b = "dscreate\0ns-slapd\0slapd\0slapadd\0slapcat\0ldapadd\0ldapmodrdn\0"; *b; b += strlen(b) + 1) {
		g_autofree char *p = g_find_program_in_path(b);

		if (!p) {
			env.skip = g_strdup_printf("%s not installed (389-ds-base, slapd, ldap-utils)", b);
			return;
		}
	}
	if (!(pw = getpwnam("dirsrv")) || !(env.dirsrv_uid = pw->pw_uid) ||
	    !(pw = getpwnam("openldap"))) {
		env.skip = g_strdup("no dirsrv or openldap user");
		return;
	}
	env.openldap_uid = pw->pw_uid;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		g_error("making / private: %s", g_strerror(errno));
	/* Our PID namespace's /proc: dscreate looks for its server there. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		g_error("mounting /proc: %s", g_strerror(errno));
	env.ds_pw_file = path(env.tmp, "ds.pw");
	env.ds_tool_pw_file = path(env.tmp, "ds-tool.pw");
	env.ol_pw_file = path(env.tmp, "ol.pw");
	env.bad_pw_file = path(env.tmp, "bad.pw");
	env.limited_pw_file = path(env.tmp, "limited.pw");
	write_file(env.ds_pw_file, DS_PW "\n", 0600);
	write_file(env.ds_tool_pw_file, DS_PW, 0600);
	write_file(env.ol_pw_file, OL_PW, 0600);
	write_file(env.bad_pw_file, "wrong\n", 0600);
	write_file(env.limited_pw_file, OL_LIMITED_PW "\n", 0600);
	if (!ds_create(&why) || !ol_create(&why)) {
		env.broken = g_strdup_printf("setting up the servers: %s", why);
		return;
	}
	ds_start();
	data = ds_data();
	ds_tool("ldapadd", data, NULL);
}

static void teardown(void)
{
	stop_server(&env.ds_pid);
	stop_server(&env.ol_pid);
	g_free(env.skip);
	g_free(env.broken);
	g_free(env.ds_conf);
	g_free(env.ds_uri);
	g_free(env.ds_ldifdir);
	g_free(env.ol_conf);
	g_free(env.ol_uri);
	g_free(env.ds_pw_file);
	g_free(env.ds_tool_pw_file);
	g_free(env.ol_pw_file);
	g_free(env.bad_pw_file);
	g_free(env.limited_pw_file);
}

static bool skipped(void)
{
	if (env.broken) {
		g_test_fail_printf("%s", env.broken);
		return true;
	}
	if (!env.skip)
		return false;
	if (g_strcmp0(g_getenv("CI"), "true") == 0)
		g_test_fail_printf("would skip, a failure under CI=true: %s", env.skip);
	else
		g_test_skip(env.skip);
	return true;
}

/* A new, empty export directory (root, 0700), like state_dir's. */
static char *out_dir(void)
{
	g_autofree char *name = g_strdup_printf("out/%u", env.n_out++);
	char *dir = path(env.tmp, name);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	return dir;
}

static void assert_empty_dir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);

	g_assert_nonnull(d);
	g_assert_null(g_dir_read_name(d));
	g_dir_close(d);
}

static struct kfs_ldap_conf ds_conf(void)
{
	return (struct kfs_ldap_conf){
		.name = "ds", .uri = env.ds_uri, .bind_dn = DS_DM,
		.password_file = env.ds_pw_file, .mode = KFS_LDAP_TASK,
		.timeout = 10,
	};
}

static struct kfs_ldap_conf ol_conf(void)
{
	return (struct kfs_ldap_conf){
		.name = "ol", .uri = env.ol_uri, .bind_dn = OL_ROOT,
		.password_file = env.ol_pw_file, .mode = KFS_LDAP_SEARCH,
		.timeout = 10,
	};
}

/* Nothing of ours left on the 389-ds server: task entries, LDIF files. */
static void assert_ds_clean(void)
{
	const char *argv[] = { "ldapsearch", "-x", "-LLL", "-H", env.ds_uri, "-D", DS_DM,
			       "-y", env.ds_tool_pw_file, "-b", "cn=export,cn=tasks,cn=config",
			       "(cn=kolabfs-*)", "dn", NULL };
	gint64 end = g_get_monotonic_time() + 3 * TASK_TTL * G_USEC_PER_SEC;
	const char *name;
	GDir *d;

	/* The server removes finished task entries after their ttl. */
	for (;;) {
		g_autofree char *out = NULL;

		must_run(argv, NULL, &out);
		if (!*g_strstrip(out))
			break;
		if (g_get_monotonic_time() > end)
			g_error("task entries left: %s", out);
		g_usleep(200 * 1000);
	}
	d = g_dir_open(env.ds_ldifdir, 0, NULL);
	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)))
		g_assert_false(g_str_has_prefix(name, "kolabfs-"));
	g_dir_close(d);
}

static guint64 count_dn(const char *file)
{
	g_autofree char *text = NULL;
	guint64 n = 0;

	g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
	for (char *p = text; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		n += strncmp(p, "dn:", 3) == 0;
	}
	return n;
}

static void assert_file(const char *dir, const struct kfs_ldap_export *e,
			uid_t uid)
{
	g_autofree char *f = path(dir, e->file);
	struct stat st;

	g_assert_cmpint(stat(f, &st), ==, 0);
	g_assert_cmpuint(st.st_uid, ==, uid);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	g_assert_cmpuint(st.st_size, ==, e->bytes);
	g_assert_cmpuint(count_dn(f), ==, e->entries);
}

/* ---------------------------------------------------------- the tests */

static void test_errno(void)
{
	g_assert_cmpint(kfs_ldap_errno(LDAP_SUCCESS), ==, 0);
	g_assert_cmpint(kfs_ldap_errno(LDAP_INVALID_CREDENTIALS), ==, -EACCES);
	g_assert_cmpint(kfs_ldap_errno(LDAP_NO_SUCH_OBJECT), ==, -ENOENT);
	g_assert_cmpint(kfs_ldap_errno(LDAP_SIZELIMIT_EXCEEDED), ==, -EOVERFLOW);
	g_assert_cmpint(kfs_ldap_errno(LDAP_SERVER_DOWN), ==, -ECONNREFUSED);
	g_assert_cmpint(kfs_ldap_errno(LDAP_TIMEOUT), ==, -ETIMEDOUT);
	g_assert_cmpint(kfs_ldap_errno(LDAP_OTHER), ==, -EIO);
	g_assert_cmpint(kfs_ldap_errno(12345), ==, -EIO);
}

static void test_task_export(void)
{
	g_autofree char *dir = NULL;
	struct kfs_ldap_conf c;
	struct kfs_ldap_export *e;
	GString *report;
	GError *error = NULL;
	GPtrArray *out;
	bool ok;

	if (skipped())
		return;
	dir = out_dir();
	c = ds_conf();
	report = g_string_new(NULL);
	ok = kfs_ldap_check(&c, report, &error);
	g_assert_no_error(error);
	g_assert_true(ok);
	g_test_message("check:\n%s", report->str);
	g_assert_nonnull(strstr(report->str, "backend userroot (" DS_SUFFIX ") -> userroot.ldif"));
	g_assert_nonnull(strstr(report->str, "backend hosts (" DS_HOSTS ") -> hosts.ldif"));
	g_assert_nonnull(strstr(report->str, "may add export tasks"));
	g_string_free(report, TRUE);

	out = kfs_ldap_export(&c, dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(out->len, ==, 2);
	e = out->pdata[0];
	g_assert_cmpstr(e->backend, ==, "hosts");
	g_assert_cmpstr(e->suffix, ==, DS_HOSTS);
	g_assert_cmpstr(e->file, ==, "hosts.ldif");
	g_assert_cmpuint(e->entries, ==, 2 + DS_HOSTS_N);
	g_assert_cmpint(e->task_exit_code, ==, 0);
	assert_file(dir, e, env.dirsrv_uid);
	e = out->pdata[1];
	g_assert_cmpstr(e->backend, ==, "userroot");
	g_assert_cmpuint(e->entries, ==, 1 + 5 + DS_USERS + DS_GROUPS);
	assert_file(dir, e, env.dirsrv_uid);
	g_test_message("task export: %" G_GUINT64_FORMAT " entries, %" G_GUINT64_FORMAT " bytes in %.0f ms",
		       e->entries, e->bytes, e->duration_ms);
	g_ptr_array_unref(out);
	assert_ds_clean();
}

/* Whether uid=userN binds with PW (given in a 0600 file, as every password). */
static bool ds_user_binds(int n, const char *pw)
{
	g_autofree char *dn = g_strdup_printf("uid=user%d,ou=People," DS_SUFFIX, n);
	g_autofree char *file = path(env.tmp, "user.pw");
	const char *argv[] = { "ldapwhoami", "-x", "-H", env.ds_uri, "-D", dn, "-y", file, NULL };
	g_autofree char *why = NULL;
	bool ok;

	write_file(file, pw, 0600);
	ok = run_in(argv, NULL, NULL, &why);
	g_assert_cmpint(unlink(file), ==, 0);
	return ok;
}

static bool ds_exists(const char *dn)
{
	const char *argv[] = { "ldapsearch", "-x", "-LLL", "-H", env.ds_uri, "-D", DS_DM,
			       "-y", env.ds_tool_pw_file, "-s", "base", "-b", dn, "1.1", NULL };
	g_autofree char *why = NULL;

	return run_in(argv, NULL, NULL, &why);
}

/*
 * The restore of doc/restore.md: copy the file out as a backup tool would
 * (cp -a keeps the owner), stop, ldif2db, start.
 */
static void test_task_restore(void)
{
	g_autofree char *dir = NULL, *saved = NULL, *src = NULL;
	struct kfs_ldap_conf c;
	GError *error = NULL;
	GPtrArray *out;

	if (skipped())
		return;
	dir = out_dir();
	c = ds_conf();
	out = kfs_ldap_export(&c, dir, &error);
	g_assert_no_error(error);
	g_ptr_array_unref(out);

	g_assert_true(ds_user_binds(7, "pw-7"));
	ds_tool("ldapdelete", NULL, "uid=user3,ou=People," DS_SUFFIX);
	ds_tool("ldapdelete", NULL, "cn=group1,ou=North,ou=Sales,ou=Org," DS_SUFFIX);
	ds_tool("ldapmodify", "dn: uid=user7,ou=People," DS_SUFFIX "\nchangetype: modify\n"
		"replace: userPassword\nuserPassword: changed\n", NULL);
	g_assert_false(ds_exists("uid=user3,ou=People," DS_SUFFIX));
	g_assert_true(ds_user_binds(7, "changed"));

	/* doc/restore.md, section 7: the commands as written there. */
	src = path(dir, "userroot.ldif");
	saved = path(env.ds_ldifdir, "userroot.ldif");
	{
		const char *cp[] = { "cp", "-a", src, env.ds_ldifdir, NULL };
		const char *ldif2db[] = { "dsctl", DS_INST, "ldif2db", "userroot", saved, NULL };

		must_run(cp, NULL, NULL);
		stop_server(&env.ds_pid);
		must_run(ldif2db, NULL, NULL);
		g_assert_cmpint(unlink(saved), ==, 0);
	}
	ds_start();
	g_assert_true(ds_exists("uid=user3,ou=People," DS_SUFFIX));
	g_assert_true(ds_exists("cn=group1,ou=North,ou=Sales,ou=Org," DS_SUFFIX));
	g_assert_true(ds_user_binds(7, "pw-7"));
	g_assert_false(ds_user_binds(7, "changed"));
	g_assert_true(ds_exists("cn=host3,ou=Hosts," DS_HOSTS));
}

static void assert_fails(struct kfs_ldap_conf *c, const char *dir,
			 const char *const *needles)
{
	GError *error = NULL;
	GPtrArray *out;

	out = kfs_ldap_export(c, dir, &error);
	g_assert_null(out);
	g_assert_nonnull(error);
	g_test_message("expected error: %s", error->message);
	for (; *needles; needles++)
		if (!strstr(error->message, *needles))
			g_error("\"%s\" not in: %s", *needles, error->message);
	g_error_free(error);
	assert_empty_dir(dir);
}

static void test_task_failures(void)
{
	g_autofree char *dir = NULL, *tiny = NULL;
	struct kfs_ldap_conf c;
	struct stat st;

	if (skipped())
		return;
	dir = out_dir();
	c = ds_conf();
	c.password_file = env.bad_pw_file;
	assert_fails(&c, dir, (const char *[]){ "[ldap:ds]", "bind as \"" DS_DM "\" failed",
						"Invalid credentials", NULL });
	c = ds_conf();
	c.uri = g_strdup_printf("ldap://127.0.0.1:%u", free_port());
	assert_fails(&c, dir, (const char *[]){ "Can't contact LDAP server", NULL });
	g_free(c.uri);

	/* The server cannot write into its LDIF directory. */
	c = ds_conf();
	g_assert_cmpint(stat(env.ds_ldifdir, &st), ==, 0);
	g_assert_cmpint(chown(env.ds_ldifdir, 0, 0), ==, 0);
	g_assert_cmpint(chmod(env.ds_ldifdir, 0755), ==, 0);
	assert_fails(&c, dir, (const char *[]){ "backend hosts: export task failed with exit code",
						env.ds_ldifdir, NULL });
	g_assert_cmpint(chown(env.ds_ldifdir, st.st_uid, st.st_gid), ==, 0);
	g_assert_cmpint(chmod(env.ds_ldifdir, st.st_mode & 07777), ==, 0);
	assert_ds_clean();

	/* state_dir full, across filesystems (the copy path) */
	tiny = out_dir();
	g_assert_cmpint(mount("tmpfs", tiny, "tmpfs", 0, "size=8k,mode=0700"), ==, 0);
	assert_fails(&c, tiny, (const char *[]){ "No space left on device", NULL });
	assert_ds_clean();
	g_assert_cmpint(umount(tiny), ==, 0);
}

/* Across filesystems the file is copied, keeping the server's owner. */
static void test_task_cross_fs(void)
{
	g_autofree char *dir = NULL;
	struct kfs_ldap_conf c;
	GError *error = NULL;
	GPtrArray *out;

	if (skipped())
		return;
	dir = out_dir();
	g_assert_cmpint(mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0700"), ==, 0);
	c = ds_conf();
	out = kfs_ldap_export(&c, dir, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < out->len; i++)
		assert_file(dir, out->pdata[i], env.dirsrv_uid);
	g_ptr_array_unref(out);
	assert_ds_clean();
	g_assert_cmpint(umount2(dir, MNT_DETACH), ==, 0);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* slapcat output, unfolded, attribute lines and entries sorted. */
static char *normalised_slapcat(const char *conf)
{
	const char *argv[] = { "slapcat", "-f", conf, "-b", OL_SUFFIX, NULL };
	g_autofree char *out = NULL;
	g_auto(GStrv) records = NULL;
	GPtrArray *sorted = g_ptr_array_new_with_free_func(g_free);
	GString *s = g_string_new(NULL);

	must_run(argv, NULL, &out);
	{
		g_autoptr(GRegex) fold = g_regex_new("\n ", 0, 0, NULL);
		char *unfolded = g_regex_replace_literal(fold, out, -1, 0, "", 0, NULL);

		g_free(out);
		out = unfolded;
	}
	records = g_strsplit(out, "\n\n", -1);
	for (char **r = records; *r; r++) {
		g_auto(GStrv) lines = g_strsplit(g_strstrip(*r), "\n", -1);

		if (!**r)
			continue;
		qsort(lines, g_strv_length(lines), sizeof(char *), cmp_strp);
		g_ptr_array_add(sorted, g_strjoinv("\n", lines));
	}
	g_ptr_array_sort(sorted, cmp_strp);
	for (guint i = 0; i < sorted->len; i++)
		g_string_append_printf(s, "%s\n\n", (char *)sorted->pdata[i]);
	g_ptr_array_unref(sorted);
	return g_string_free(s, FALSE);
}

/*
 * The search export of OpenLDAP, slapadd into an empty database: the
 * same entries as the original, byte for byte after normalising.
 */
static void test_search_roundtrip(void)
{
	g_autofree char *dir = NULL, *conf2 = NULL, *db2 = NULL, *pid2 = NULL;
	g_autofree char *file = NULL, *a = NULL, *b = NULL, *text = NULL;
	struct kfs_ldap_conf c;
	struct kfs_ldap_export *e;
	GString *report;
	GError *error = NULL;
	GPtrArray *out;
	bool ok;

	if (skipped())
		return;
	dir = out_dir();
	c = ol_conf();
	report = g_string_new(NULL);
	ok = kfs_ldap_check(&c, report, &error);
	g_assert_no_error(error);
	g_assert_true(ok);
	g_assert_nonnull(strstr(report->str, "base " OL_SUFFIX " -> " OL_SUFFIX ".ldif"));
	g_assert_nonnull(strstr(report->str, "(the server's user)"));
	g_string_free(report, TRUE);

	out = kfs_ldap_export(&c, dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(out->len, ==, 1);
	e = out->pdata[0];
	g_assert_cmpstr(e->backend, ==, OL_SUFFIX);
	g_assert_cmpstr(e->file, ==, OL_SUFFIX ".ldif");
	g_assert_cmpint(e->task_exit_code, ==, -1);
	g_assert_cmpuint(e->entries, ==, 3 + OL_USERS + OL_DEPTH + 1);
	assert_file(dir, e, env.openldap_uid);
	g_test_message("search export: %" G_GUINT64_FORMAT " entries, %" G_GUINT64_FORMAT " bytes in %.0f ms",
		       e->entries, e->bytes, e->duration_ms);
	file = path(dir, e->file);
	g_ptr_array_unref(out);

	/* The server sends the moved entry before its parent; we do not. */
	{
		const char *argv[] = { "ldapsearch", "-x", "-LLL", "-H", env.ol_uri,
				       "-b", OL_SUFFIX, "1.1", NULL };
		g_autofree char *order = NULL;

		must_run(argv, NULL, &order);
		g_assert_true(strstr(order, "dn: uid=u1,ou=Late,") < strstr(order, "dn: ou=Late,"));
	}
	g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
	g_assert_true(strstr(text, "dn: ou=Late,") < strstr(text, "dn: uid=u1,ou=Late,"));
	g_clear_pointer(&text, g_free);

	/* Computed operational attributes are not in it. */
	g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
	g_assert_null(strstr(text, "\nentryDN:"));
	g_assert_null(strstr(text, "\nhasSubordinates:"));
	g_assert_null(strstr(text, "\nsubschemaSubentry:"));
	g_assert_nonnull(strstr(text, "\nentryUUID:"));

	conf2 = path(env.tmp, "ol2/slapd.conf");
	db2 = path(env.tmp, "ol2/db");
	pid2 = path(env.tmp, "ol2/slapd.pid");
	ol_write_conf(conf2, db2, pid2);
	{
		const char *slapadd[] = { "slapadd", "-f", conf2, "-b", OL_SUFFIX, "-l", file, NULL };

		must_run(slapadd, NULL, NULL);
	}
	a = normalised_slapcat(env.ol_conf);
	b = normalised_slapcat(conf2);
	if (strcmp(a, b) != 0) {
		g_autofree char *fa = path(env.tmp, "slapcat-original");
		g_autofree char *fb = path(env.tmp, "slapcat-restored");

		g_file_set_contents(fa, a, -1, NULL);
		g_file_set_contents(fb, b, -1, NULL);
		g_error("slapcat differs: diff %s %s (kept with KFS_KEEP_TMP=1)", fa, fb);
	}
}

static void test_search_failures(void)
{
	g_autofree char *dir = NULL, *tiny = NULL;
	char *bases[] = { "dc=nothere,dc=com", NULL };
	struct kfs_ldap_conf c;

	if (skipped())
		return;
	dir = out_dir();
	c = ol_conf();
	c.bases = bases;
	assert_fails(&c, dir, (const char *[]){ "[ldap:ol]", "base dc=nothere,dc=com does not exist", NULL });

	c = ol_conf();
	c.password_file = env.bad_pw_file;
	assert_fails(&c, dir, (const char *[]){ "Invalid credentials", NULL });

	c = ol_conf();
	c.mode = KFS_LDAP_TASK;
	assert_fails(&c, dir, (const char *[]){ "not a 389 Directory Server", "use mode = search", NULL });

	/* A size limit: an error, never a short file. */
	c = ol_conf();
	c.bind_dn = OL_LIMITED;
	c.password_file = env.limited_pw_file;
	assert_fails(&c, dir, (const char *[]){ "Size limit exceeded", "incomplete", NULL });

	/* The server goes away. */
	c = ol_conf();
	c.uri = g_strdup_printf("ldap://127.0.0.1:%u", free_port());
	assert_fails(&c, dir, (const char *[]){ "Can't contact LDAP server", NULL });
	g_free(c.uri);

	c = ol_conf();
	tiny = out_dir();
	g_assert_cmpint(mount("tmpfs", tiny, "tmpfs", 0, "size=8k,mode=0700"), ==, 0);
	assert_fails(&c, tiny, (const char *[]){ "No space left on device", NULL });
	g_assert_cmpint(umount(tiny), ==, 0);
}

/* ldapi:// with SASL EXTERNAL (root maps to nothing special on slapd, so
 * this is an anonymous-equivalent identity with read access). */
static void test_search_ldapi(void)
{
	g_autofree char *dir = NULL, *sock = NULL, *esc = NULL;
	struct kfs_ldap_conf c;
	GError *error = NULL;
	GPtrArray *out;

	if (skipped())
		return;
	dir = out_dir();
	sock = path(env.tmp, "ol/ldapi");
	esc = g_uri_escape_string(sock, NULL, FALSE);
	c = ol_conf();
	c.uri = g_strdup_printf("ldapi://%s", esc);
	c.bind_dn = NULL;
	c.password_file = NULL;
	out = kfs_ldap_export(&c, dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(out->len, ==, 1);
	assert_file(dir, out->pdata[0], env.openldap_uid);
	g_ptr_array_unref(out);
	g_free(c.uri);
}

/* ------------------------------------------------------------- main */

static int run_tests(void)
{
	int rc;

	setup();
	rc = g_test_run();
	teardown();
	return rc;
}

/*
 * PID 1 of the tests' namespace: reaps the daemons that get orphaned
 * there (dscreate waits for its ns-slapd to vanish from /proc) and ends
 * with the tests, which kills whatever is left.
 */
static int init(void)
{
	int status = 0;
	pid_t tests, pid;

	tests = fork();
	if (tests < 0)
		g_error("fork: %s", g_strerror(errno));
	if (tests == 0) {
		if (unshare(CLONE_NEWNS) < 0)
			g_error("new mount namespace: %s", g_strerror(errno));
		_exit(run_tests());
	}
	while ((pid = wait(&status)) != tests)
		if (pid < 0 && errno != EINTR)
			return 1;
	if (WIFSIGNALED(status)) {
		g_printerr("test-ldap: killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}

/* Wait (bounded) until TMP can be removed: the namespace's servers are
 * killed with its init, but may still be exiting. */
static void remove_tmp(void)
{
	gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;

	if (g_strcmp0(g_getenv("KFS_KEEP_TMP"), "1") == 0) {
		g_printerr("kept %s\n", env.tmp);
		return;
	}
	while (kfs_rmtree(env.tmp) < 0 && g_get_monotonic_time() < end)
		g_usleep(50 * 1000);
}

int main(int argc, char **argv)
{
	int status;
	pid_t pid;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ldap/errno", test_errno);
	g_test_add_func("/ldap/task/export", test_task_export);
	g_test_add_func("/ldap/task/restore", test_task_restore);
	g_test_add_func("/ldap/task/failures", test_task_failures);
	g_test_add_func("/ldap/task/cross-fs", test_task_cross_fs);
	g_test_add_func("/ldap/search/roundtrip", test_search_roundtrip);
	g_test_add_func("/ldap/search/failures", test_search_failures);
	g_test_add_func("/ldap/search/ldapi", test_search_ldapi);

	if (geteuid() != 0) {
		env.skip = g_strdup("needs root (servers, namespaces, chown)");
		return g_test_run();
	}
	env.tmp = g_dir_make_tmp("kfs-ldap-XXXXXX", NULL);
	g_assert_nonnull(env.tmp);
	/* The servers run as dirsrv and openldap. */
	g_assert_cmpint(chmod(env.tmp, 0755), ==, 0);
	if (unshare(CLONE_NEWPID) < 0 || (pid = fork()) < 0)
		g_error("new PID namespace: %s", g_strerror(errno));
	if (pid == 0)
		_exit(init());
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	remove_tmp();
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
