/* Unit tests of src/config*.c: parsing, every error message, the host check.
 * No root, no btrfs: configs are written to a fresh temporary directory. */
#include "autoconf.h"

#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <linux/magic.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "src/config.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* A temporary directory holding kolabfs.conf. */
struct conf_file {
	char *dir;
	char *path;
};

static void conf_file_init(struct conf_file *f)
{
	GError *error = NULL;

	f->dir = g_dir_make_tmp("kfs-test-config-XXXXXX", &error);
	g_assert_no_error(error);
	f->path = g_build_filename(f->dir, "kolabfs.conf", NULL);
}

static void conf_file_write(struct conf_file *f, const char *text, gssize len)
{
	GError *error = NULL;

	g_file_set_contents(f->path, text, len, &error);
	g_assert_no_error(error);
}

/* Removes the directory and every file a test left in it. */
static void conf_file_clear(struct conf_file *f)
{
	GDir *d = g_dir_open(f->dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d))) {
		char *path = g_build_filename(f->dir, name, NULL);

		g_assert_cmpint(g_unlink(path), ==, 0);
		g_free(path);
	}
	g_dir_close(d);
	g_assert_cmpint(g_rmdir(f->dir), ==, 0);
	g_free(f->path);
	g_free(f->dir);
}

static struct kfs_config *load_text(const char *text, gssize len,
				    GError **error)
{
	struct conf_file f;
	struct kfs_config *cfg;

	conf_file_init(&f);
	conf_file_write(&f, text, len);
	cfg = kfs_config_load(f.path, error);
	if (error && *error)
		g_assert_true(g_str_has_prefix((*error)->message, f.path));
	conf_file_clear(&f);
	return cfg;
}

static void assert_has(const char *msg, const char *part)
{
	if (!strstr(msg, part))
		g_error("the message lacks \"%s\": %s", part, msg);
}

/*
 * The message names the file and LINE (0: no line), GROUP and KEY (NULL:
 * none), and says WHAT.
 */
static void assert_names(const GError *error, int code, int line,
			 const char *group, const char *key, const char *what)
{
	char *part;

	g_assert_nonnull(error);
	g_assert_error(error, KFS_CONFIG_ERROR, code);
	if (line)
		part = g_strdup_printf("kolabfs.conf:%d: ", line);
	else
		part = g_strdup("kolabfs.conf: ");
	assert_has(error->message, part);
	g_free(part);
	if (group && key)
		part = g_strdup_printf("[%s] %s: ", group, key);
	else if (group)
		part = g_strdup_printf("[%s]: ", group);
	else
		part = NULL;
	if (part)
		assert_has(error->message, part);
	g_free(part);
	assert_has(error->message, what);
}

#define VOL "[volume:v]\nbackend = btrfs\npath = /srv/v\n"
#define COPY "[copy:c]\npaths = /etc\n"

/* ------------------------------------------------------------------ */
/* Good configs                                                        */

static const char full_config[] =
	"# kolabfs.conf for the tests\n"
	"[kolabfs]\n"
	"state_dir = /var/lib/kolabfs-test/\n"
	"name_format = %Y%m%d-%H%M\n"
	"\n"
	"[volume:spool]\n"
	"backend = btrfs\n"
	"path = /srv/spool/../spool/\n"
	"subdir = ./imap//spool/\n"
	"preset = cyrus-spool\n"
	"exclude = *.tmp; cache/\n"
	"\n"
	"[copy:etc]\n"
	"paths = /etc/dirsrv;/etc/imapd.conf;/etc/cyrus.conf\n"
	"\n"
	"[volume:mysql]\n"
	"  backend=btrfs\n"
	"path = /srv/mysql\n"
	"preset = mysql\n";

static void test_full(void)
{
	const char *const etc[] = {
		"/etc/dirsrv", "/etc/imapd.conf", "/etc/cyrus.conf", NULL
	};
	const char *const spool_exclude[] = { "*.tmp", "cache/", NULL };
	GError *error = NULL;
	struct kfs_config *cfg = load_text(full_config, -1, &error);
	const struct kfs_volume_conf *v;
	const struct kfs_copy_conf *c;

	g_assert_no_error(error);
	g_assert_nonnull(cfg);
	g_assert_true(g_str_has_suffix(cfg->file, "kolabfs.conf"));
	g_assert_cmpstr(cfg->state_dir, ==, "/var/lib/kolabfs-test");
	g_assert_cmpint(cfg->state_dir_line, ==, 3);
	g_assert_cmpstr(cfg->name_format, ==, "%Y%m%d-%H%M");

	g_assert_cmpuint(cfg->n_volumes, ==, 2);
	v = &cfg->volumes[0];
	g_assert_cmpstr(v->name, ==, "spool");
	g_assert_cmpint(v->backend, ==, KFS_BACKEND_BTRFS);
	g_assert_cmpstr(v->path, ==, "/srv/spool");
	g_assert_null(v->lv);
	g_assert_null(v->snapshot_size);
	g_assert_cmpstr(v->subdir, ==, "imap/spool");
	g_assert_cmpstr(v->preset, ==, "cyrus-spool");
	g_assert_true(g_strv_equal((const char *const *)v->exclude,
				   spool_exclude));
	g_assert_cmpuint(v->ino_space, ==, kfs_ino_space_of("volume", "spool"));
	g_assert_cmpint(v->line, ==, 6);
	g_assert_cmpint(v->path_line, ==, 8);
	g_assert_cmpint(v->subdir_line, ==, 9);

	v = &cfg->volumes[1];
	g_assert_cmpstr(v->name, ==, "mysql");
	g_assert_cmpstr(v->path, ==, "/srv/mysql");
	g_assert_null(v->subdir);
	g_assert_cmpint(v->subdir_line, ==, 0);
	g_assert_cmpstr(v->preset, ==, "mysql");
	g_assert_nonnull(v->exclude);
	g_assert_null(v->exclude[0]);
	g_assert_cmpuint(v->ino_space, ==, 0xfdba);
	g_assert_cmpint(v->line, ==, 16);
	g_assert_cmpint(v->path_line, ==, 18);

	g_assert_cmpuint(cfg->n_copies, ==, 1);
	c = &cfg->copies[0];
	g_assert_cmpstr(c->name, ==, "etc");
	g_assert_true(g_strv_equal((const char *const *)c->paths, etc));
	g_assert_cmpuint(c->ino_space, ==, kfs_ino_space_of("copy", "etc"));
	g_assert_cmpint(c->line, ==, 13);
	g_assert_cmpint(c->paths_line, ==, 14);
	kfs_config_destroy(cfg);
}

static const char lvm_config[] =
	"[volume:mysql]\n"
	"backend = lvm\n"
	"lv = vg_db01/lv_mysql\n"
	"snapshot_size = 10G\n"
	"subdir = data\n"
	"preset = mysql\n"
	"\n"
	"[volume:spool]\n"
	"backend = lvm\n"
	"lv = vg.1/spool+x_y-z\n"
	"snapshot_size = 20%origin\n"
	"\n"
	"[volume:thin]\n"
	"backend = lvm\n"
	"lv = vg_db01/thin\n";

static void test_lvm(void)
{
	GError *error = NULL;
	struct kfs_config *cfg = load_text(lvm_config, -1, &error);
	const struct kfs_volume_conf *v;

	g_assert_no_error(error);
	g_assert_cmpuint(cfg->n_volumes, ==, 3);
	v = &cfg->volumes[0];
	g_assert_cmpint(v->backend, ==, KFS_BACKEND_LVM);
	g_assert_null(v->path);
	g_assert_cmpstr(v->lv, ==, "vg_db01/lv_mysql");
	g_assert_cmpint(v->lv_line, ==, 3);
	g_assert_cmpstr(v->snapshot_size, ==, "10G");
	g_assert_cmpuint(v->snapshot_bytes, ==, G_GUINT64_CONSTANT(10) << 30);
	g_assert_cmpuint(v->snapshot_percent, ==, 0);
	g_assert_cmpint(v->snapshot_size_line, ==, 4);
	g_assert_cmpstr(v->subdir, ==, "data");
	g_assert_cmpstr(v->preset, ==, "mysql");
	v = &cfg->volumes[1];
	g_assert_cmpstr(v->lv, ==, "vg.1/spool+x_y-z");
	g_assert_cmpuint(v->snapshot_bytes, ==, 0);
	g_assert_cmpuint(v->snapshot_percent, ==, 20);
	/* No snapshot_size: the default, decided once the LV is known
	 * (a thin LV has none). */
	v = &cfg->volumes[2];
	g_assert_null(v->snapshot_size);
	g_assert_cmpuint(v->snapshot_bytes, ==, 0);
	g_assert_cmpuint(v->snapshot_percent, ==, 0);
	g_assert_cmpint(v->snapshot_size_line, ==, 0);
	kfs_config_destroy(cfg);
}

static void test_lvm_sizes(void)
{
	static const struct {
		const char *text;
		guint64 bytes;
	} cases[] = {
		{ "1k", 1024 }, { "512M", G_GUINT64_CONSTANT(512) << 20 },
		{ "3g", G_GUINT64_CONSTANT(3) << 30 },
		{ "2T", G_GUINT64_CONSTANT(2) << 40 },
		{ "1P", G_GUINT64_CONSTANT(1) << 50 },
		{ "16383P", G_GUINT64_CONSTANT(16383) << 50 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"[volume:v]\nbackend = lvm\nlv = vg/lv\nsnapshot_size = %s\n",
			cases[i].text);
		GError *error = NULL;
		struct kfs_config *cfg = load_text(text, -1, &error);

		g_assert_no_error(error);
		g_assert_cmpuint(cfg->volumes[0].snapshot_bytes, ==, cases[i].bytes);
		kfs_config_destroy(cfg);
	}
}

static void test_defaults(void)
{
	GError *error = NULL;
	struct kfs_config *cfg = load_text(COPY, -1, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(cfg->state_dir, ==, KFS_DEFAULT_STATE_DIR);
	g_assert_cmpint(cfg->state_dir_line, ==, 0);
	g_assert_cmpstr(cfg->name_format, ==, KFS_DEFAULT_NAME_FORMAT);
	g_assert_cmpuint(cfg->n_volumes, ==, 0);
	g_assert_cmpuint(cfg->n_copies, ==, 1);
	g_assert_cmpuint(cfg->idle_timeout, ==, 0);
	g_assert_cmpuint(cfg->max_age, ==, 0);
	kfs_config_destroy(cfg);

	/* An empty optional value means "none". */
	cfg = load_text(VOL "subdir =\npreset =\nexclude =\n", -1, &error);
	g_assert_no_error(error);
	g_assert_null(cfg->volumes[0].subdir);
	g_assert_null(cfg->volumes[0].preset);
	g_assert_nonnull(cfg->volumes[0].exclude);
	g_assert_null(cfg->volumes[0].exclude[0]);
	kfs_config_destroy(cfg);

	/* "." is the whole volume. */
	cfg = load_text(VOL "subdir = ./\n", -1, &error);
	g_assert_no_error(error);
	g_assert_null(cfg->volumes[0].subdir);
	kfs_config_destroy(cfg);
}

/* idle_timeout and max_age: seconds, 0 (the default) is off. */
static void test_lifetimes(void)
{
	GError *error = NULL;
	struct kfs_config *cfg;

	cfg = load_text("[kolabfs]\nidle_timeout = 2\nmax_age = 86400 # a day\n" COPY,
			-1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(cfg->idle_timeout, ==, 2);
	g_assert_cmpuint(cfg->max_age, ==, 86400);
	kfs_config_destroy(cfg);

	cfg = load_text("[kolabfs]\nidle_timeout = 0\nmax_age = 31622400\n" COPY, -1,
			&error);
	g_assert_no_error(error);
	g_assert_cmpuint(cfg->idle_timeout, ==, 0);
	g_assert_cmpuint(cfg->max_age, ==, KFS_MAX_LIFETIME_SECONDS);
	kfs_config_destroy(cfg);
}

static const char mysql_config[] =
	VOL
	"[mysql]\n"
	"socket = /run/mysqld/../mysqld/mysqld.sock\n"
	"user = backup\n"
	"password_file = /etc/kolabfs//mysql.pw\n"
	"lock = backup-stage\n"
	"lock_wait_timeout = 5\n"
	"require_complete = false\n";

static void test_mysql(void)
{
	static const struct {
		const char *text;
		enum kfs_mysql_lock lock;
	} locks[] = {
		{ "ftwrl", KFS_MYSQL_LOCK_FTWRL },
		{ "backup-stage", KFS_MYSQL_LOCK_BACKUP_STAGE },
		{ "replica", KFS_MYSQL_LOCK_REPLICA },
		{ "none", KFS_MYSQL_LOCK_NONE },
	};
	GError *error = NULL;
	struct kfs_config *cfg = load_text(mysql_config, -1, &error);
	const struct kfs_mysql_conf *m;
	size_t i;

	g_assert_no_error(error);
	m = cfg->mysql;
	g_assert_nonnull(m);
	g_assert_cmpstr(m->socket, ==, "/run/mysqld/mysqld.sock");
	g_assert_null(m->host);
	g_assert_cmpstr(m->user, ==, "backup");
	g_assert_cmpstr(m->password_file, ==, "/etc/kolabfs/mysql.pw");
	g_assert_cmpint(m->password_file_line, ==, 7);
	g_assert_cmpint(m->lock, ==, KFS_MYSQL_LOCK_BACKUP_STAGE);
	g_assert_cmpuint(m->lock_wait_timeout, ==, 5);
	g_assert_false(m->require_complete);
	g_assert_cmpint(m->line, ==, 4);
	kfs_config_destroy(cfg);

	/* host and port; the limits of the numbers; booleans. */
	cfg = load_text(VOL "[mysql]\nhost = db1.example.org\nport = 65535\n"
			"lock_wait_timeout = 3600\nrequire_complete = 1\n", -1,
			&error);
	g_assert_no_error(error);
	g_assert_null(cfg->mysql->socket);
	g_assert_cmpstr(cfg->mysql->host, ==, "db1.example.org");
	g_assert_cmpuint(cfg->mysql->port, ==, 65535);
	g_assert_cmpuint(cfg->mysql->lock_wait_timeout, ==, 3600);
	g_assert_true(cfg->mysql->require_complete);
	kfs_config_destroy(cfg);

	cfg = load_text(VOL "[mysql]\nhost = ::1\nlock_wait_timeout = 1\n",
			-1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cfg->mysql->host, ==, "::1");
	g_assert_cmpuint(cfg->mysql->port, ==, 3306);
	g_assert_cmpuint(cfg->mysql->lock_wait_timeout, ==, 1);
	kfs_config_destroy(cfg);

	for (i = 0; i < G_N_ELEMENTS(locks); i++) {
		char *text = g_strdup_printf(VOL "[mysql]\nlock = %s\n",
					     locks[i].text);

		cfg = load_text(text, -1, &error);
		g_assert_no_error(error);
		g_assert_cmpint(cfg->mysql->lock, ==, locks[i].lock);
		kfs_config_destroy(cfg);
		g_free(text);
	}
}

static void test_mysql_defaults(void)
{
	GError *error = NULL;
	struct kfs_config *cfg = load_text(VOL "\n[mysql]\n", -1, &error);
	const struct kfs_mysql_conf *m;

	g_assert_no_error(error);
	m = cfg->mysql;
	g_assert_nonnull(m);
	/* Neither socket nor host: libmysqlclient's default socket. */
	g_assert_null(m->socket);
	g_assert_null(m->host);
	g_assert_cmpuint(m->port, ==, 3306);
	g_assert_cmpstr(m->user, ==, "root");
	g_assert_null(m->password_file);
	g_assert_cmpint(m->password_file_line, ==, 0);
	g_assert_cmpint(m->lock, ==, KFS_MYSQL_LOCK_FTWRL);
	g_assert_cmpuint(m->lock_wait_timeout, ==, 30);
	g_assert_true(m->require_complete);
	g_assert_cmpint(m->line, ==, 5);
	kfs_config_destroy(cfg);

	/* No [mysql]: no lock. */
	cfg = load_text(VOL, -1, &error);
	g_assert_no_error(error);
	g_assert_null(cfg->mysql);
	g_assert_cmpuint(cfg->n_ldaps, ==, 0);
	kfs_config_destroy(cfg);
}

static const char ldap_config[] =
	"[ldap:ds]\n"
	"uri = ldap://ds.example.org:389/\n"
	"bind_dn = cn=Directory Manager\n"
	"password_file = /etc/kolabfs/ldap.pw\n"
	"mode = search\n"
	"bases = dc=example,dc=org; o=ipaca\n"
	"starttls = true\n"
	"timeout = 120\n"
	"\n"
	"[ldap:local]\n"
	"uri = LDAPI://%2Frun%2Fslapd-kolab.socket\n"
	"\n"
	"[ldap:openldap]\n"
	"uri = ldaps://ldap.example.org\n"
	"mode = search\n"
	"bases =\n";

static void test_ldap(void)
{
	const char *const bases[] = { "dc=example,dc=org", "o=ipaca", NULL };
	GError *error = NULL;
	struct kfs_config *cfg = load_text(ldap_config, -1, &error);
	const struct kfs_ldap_conf *l;

	g_assert_no_error(error);
	g_assert_cmpuint(cfg->n_ldaps, ==, 3);
	g_assert_cmpuint(cfg->n_volumes + cfg->n_copies, ==, 0);

	l = &cfg->ldaps[0];
	g_assert_cmpstr(l->name, ==, "ds");
	g_assert_cmpstr(l->uri, ==, "ldap://ds.example.org:389/");
	g_assert_null(l->ldapi_path);
	g_assert_cmpstr(l->bind_dn, ==, "cn=Directory Manager");
	g_assert_cmpstr(l->password_file, ==, "/etc/kolabfs/ldap.pw");
	g_assert_cmpint(l->password_file_line, ==, 4);
	g_assert_cmpint(l->mode, ==, KFS_LDAP_SEARCH);
	g_assert_true(g_strv_equal((const char *const *)l->bases, bases));
	g_assert_true(l->starttls);
	g_assert_cmpuint(l->timeout, ==, 120);
	g_assert_cmpuint(l->ino_space, ==, kfs_ino_space_of("ldap", "ds"));
	g_assert_cmpint(l->line, ==, 1);
	g_assert_cmpint(l->uri_line, ==, 2);

	/* SASL EXTERNAL over a %-encoded socket; the defaults. */
	l = &cfg->ldaps[1];
	g_assert_cmpstr(l->name, ==, "local");
	g_assert_cmpstr(l->ldapi_path, ==, "/run/slapd-kolab.socket");
	g_assert_null(l->bind_dn);
	g_assert_null(l->password_file);
	g_assert_cmpint(l->password_file_line, ==, 0);
	g_assert_cmpint(l->mode, ==, KFS_LDAP_TASK);
	g_assert_null(l->bases);
	g_assert_false(l->starttls);
	g_assert_cmpuint(l->timeout, ==, 30);
	g_assert_cmpuint(l->ino_space, ==, kfs_ino_space_of("ldap", "local"));
	g_assert_cmpint(l->line, ==, 10);

	/* Anonymous search; "bases =" is the root DSE's namingContexts. */
	l = &cfg->ldaps[2];
	g_assert_cmpint(l->mode, ==, KFS_LDAP_SEARCH);
	g_assert_null(l->bases);
	g_assert_null(l->bind_dn);
	kfs_config_destroy(cfg);
}

static void test_ldap_bind(void)
{
	GError *error = NULL;
	struct kfs_config *cfg;

	/* ldapi:// with bind_dn alone: SASL EXTERNAL, expected identity. */
	cfg = load_text("[ldap:ds]\nuri = ldapi://\n"
			"bind_dn = cn=Directory Manager\n", -1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cfg->ldaps[0].bind_dn, ==, "cn=Directory Manager");
	g_assert_null(cfg->ldaps[0].password_file);
	g_assert_null(cfg->ldaps[0].ldapi_path);
	kfs_config_destroy(cfg);

	/* ldapi:// with a simple bind, task mode. */
	cfg = load_text("[ldap:ds]\nuri = ldapi://%2Ftmp%2Fx\nmode = task\n"
			"bind_dn = cn=x\npassword_file = /etc/x.pw\n", -1,
			&error);
	g_assert_no_error(error);
	g_assert_cmpstr(cfg->ldaps[0].ldapi_path, ==, "/tmp/x");
	g_assert_cmpstr(cfg->ldaps[0].password_file, ==, "/etc/x.pw");
	kfs_config_destroy(cfg);

	/* Task mode over TCP with a simple bind. */
	cfg = load_text("[ldap:ds]\nuri = ldaps://ds\n"
			"bind_dn = cn=x\npassword_file = /etc/x.pw\n", -1,
			&error);
	g_assert_no_error(error);
	g_assert_cmpint(cfg->ldaps[0].mode, ==, KFS_LDAP_TASK);
	kfs_config_destroy(cfg);

	/* Anonymous search over ldap://, StartTLS off explicitly. */
	cfg = load_text("[ldap:ds]\nuri = ldap://\nmode = search\n"
			"starttls = false\n", -1, &error);
	g_assert_no_error(error);
	g_assert_false(cfg->ldaps[0].starttls);
	kfs_config_destroy(cfg);
}

/* The contract's own example, with its inline comments. */
static const char contract_config[] =
	"[kolabfs]\n"
	"state_dir = /var/lib/kolabfs        # spooled exports + record of live snapshots\n"
	"name_format = %Y-%m-%dT%H%M%SZ      # strftime(3), UTC, for /snapshots/<date>\n"
	"\n"
	"[volume:NAME]                       # one per snapshotted volume; NAME is its directory\n"
	"backend = btrfs                     # btrfs | lvm\n"
	"path = /srv/mysql                   # btrfs: the subvolume\n"
	"subdir = data                       # optional: only this part of the volume is shown\n"
	"preset = cyrus-spool                # optional built-in exclusions\n"
	"exclude = *.tmp;cache/              # optional extra globs\n"
	"\t# an indented comment\n"
	"[copy:etc]\t# small trees\n"
	"paths = /etc/dirsrv;/etc/imapd.conf;/etc/cyrus.conf\n";

static void test_inline_comments(void)
{
	const char *const exclude[] = { "*.tmp", "cache/", NULL };
	const char *const hash[] = { "a#b", "c #d", NULL };
	GError *error = NULL;
	struct kfs_config *cfg = load_text(contract_config, -1, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(cfg->state_dir, ==, "/var/lib/kolabfs");
	g_assert_cmpstr(cfg->name_format, ==, "%Y-%m-%dT%H%M%SZ");
	g_assert_cmpstr(cfg->volumes[0].name, ==, "NAME");
	g_assert_cmpstr(cfg->volumes[0].path, ==, "/srv/mysql");
	g_assert_cmpstr(cfg->volumes[0].subdir, ==, "data");
	g_assert_cmpstr(cfg->volumes[0].preset, ==, "cyrus-spool");
	g_assert_true(g_strv_equal((const char *const *)cfg->volumes[0].exclude,
				   exclude));
	g_assert_cmpstr(cfg->copies[0].name, ==, "etc");
	g_assert_cmpint(cfg->copies[0].line, ==, 12);
	kfs_config_destroy(cfg);

	/* '#' not after white space is data; "\s#" keeps a " #". */
	cfg = load_text(VOL "exclude = a#b;c\\s#d # comment\n", -1, &error);
	g_assert_no_error(error);
	g_assert_true(g_strv_equal((const char *const *)cfg->volumes[0].exclude,
				   hash));
	kfs_config_destroy(cfg);
}

static void test_crlf(void)
{
	const char *const etc[] = { "/etc", "/usr/local/etc", NULL };
	GError *error = NULL;
	struct kfs_config *cfg;

	cfg = load_text("[copy:c]\r\npaths = /etc;/usr/local/etc\r\n", -1,
			&error);
	g_assert_no_error(error);
	g_assert_true(g_strv_equal((const char *const *)cfg->copies[0].paths,
				   etc));
	kfs_config_destroy(cfg);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

struct error_case {
	const char *name;
	const char *text;
	int line;               /* 0: the message names no line */
	const char *group;      /* NULL: no group */
	const char *key;        /* NULL: no key */
	const char *what;
};

static const struct error_case error_cases[] = {
	/* The line indexer */
	{ "syntax/not-a-key", COPY "this is not a key\n", 3, "copy:c", NULL,
	  "expected \"key = value\"" },
	{ "syntax/header", COPY "[copy:d\n", 3, NULL, NULL,
	  "expected a group header" },
	{ "syntax/empty-header", "[]\n" COPY, 1, NULL, NULL,
	  "expected a group header" },
	{ "syntax/key-name", "[copy:c]\npa ths = /etc\n", 2, "copy:c", NULL,
	  "expected a key name" },
	{ "syntax/locale-key", "[copy:c]\npaths[de] = /etc\n", 2, "copy:c",
	  NULL, "expected a key name" },
	{ "syntax/key-before-group", "paths = /etc\n" COPY, 1, NULL, "paths",
	  "expected a [group] header before the first key" },
	{ "syntax/utf8", "[copy:c]\npaths = /etc/\xff\n", 2, "copy:c", "paths",
	  "expected UTF-8 text, got \"/etc/\\377\"" },
	/* the header is not in the group before it */
	{ "syntax/utf8-header", COPY "[volume:caf\xe9]\n", 3, NULL, NULL,
	  "expected UTF-8 text, got the group header \"[volume:caf\\351]\"" },
	{ "syntax/utf8-comment", COPY "# caf\xe9\n", 3, "copy:c", NULL,
	  "expected UTF-8 text, got \"# caf\\351\"" },
	{ "duplicate/group", COPY "\n# again\n[copy:c]\npaths = /usr\n", 5,
	  "copy:c", NULL, "duplicate group, first at line 1" },
	{ "duplicate/key", "[copy:c]\npaths = /etc\n\npaths = /usr\n", 4,
	  "copy:c", "paths", "duplicate key, first at line 2" },
	{ "escape", VOL "preset = cyrus\\q\n", 4, "volume:v", "preset",
	  "cannot be interpreted" },
	/* Groups */
	{ "group/unknown", COPY "[volumes:x]\n", 3, "volumes:x", NULL,
	  "unknown group, expected [kolabfs], [mysql], [volume:NAME], [ldap:NAME] or [copy:NAME]" },
	{ "group/mysql-name", VOL "[mysql:db]\n", 4, "mysql:db", NULL,
	  "unknown group" },
	{ "group/ldap-no-name", COPY "[ldap]\nuri = ldapi://\n", 3, "ldap",
	  NULL, "unknown group" },
	{ "group/mysql-twice", VOL "[mysql]\n[mysql]\n", 5, "mysql", NULL,
	  "duplicate group, first at line 4" },
	{ "group/nothing", "# empty\n[kolabfs]\nstate_dir = /var/lib/k\n", 0,
	  NULL, NULL, "nothing to back up" },
	{ "group/nothing-empty-file", "", 0, NULL, NULL,
	  "nothing to back up" },
	/* Unknown keys */
	{ "key/kolabfs", "[kolabfs]\nstatedir = /x\n" COPY, 2, "kolabfs",
	  "statedir", "unknown key, expected one of state_dir, name_format, idle_timeout, max_age" },
	/* Lifetimes: whole seconds, as every duration of kolabfs.conf */
	{ "idle_timeout/unit", "[kolabfs]\nidle_timeout = 2s\n" COPY, 2,
	  "kolabfs", "idle_timeout",
	  "expected a whole number of seconds from 0 to 31622400, got \"2s\"" },
	{ "idle_timeout/negative", "[kolabfs]\nidle_timeout = -1\n" COPY, 2,
	  "kolabfs", "idle_timeout", "got \"-1\"" },
	{ "idle_timeout/empty", COPY "[kolabfs]\nidle_timeout =\n", 4,
	  "kolabfs", "idle_timeout", "expected a non-empty value" },
	{ "idle_timeout/too-big", "[kolabfs]\n\nidle_timeout = 31622401\n" COPY,
	  3, "kolabfs", "idle_timeout", "from 0 to 31622400, got \"31622401\"" },
	{ "max_age/fraction", "[kolabfs]\nmax_age = 1.5\n" COPY, 2, "kolabfs",
	  "max_age", "expected a whole number of seconds from 0 to 31622400, got \"1.5\"" },
	{ "max_age/unit", "[kolabfs]\nidle_timeout = 60\nmax_age = 1h\n" COPY,
	  3, "kolabfs", "max_age", "got \"1h\"" },
	{ "key/volume", VOL "paht = /x\n", 4, "volume:v", "paht",
	  "unknown key, expected one of backend, path," },
	{ "key/copy", COPY "path = /usr\n", 3, "copy:c", "path",
	  "unknown key, expected one of paths" },
	/* NAMEs */
	{ "name/dot", "[volume:.hidden]\nbackend = btrfs\npath = /x\n", 1,
	  "volume:.hidden", NULL, "expected a NAME" },
	{ "name/dotdot", "[copy:..]\npaths = /etc\n", 1, "copy:..", NULL,
	  "expected a NAME" },
	{ "name/slash", "[copy:a/b]\npaths = /etc\n", 1, "copy:a/b", NULL,
	  "expected a NAME" },
	{ "name/empty", "[copy:]\npaths = /etc\n", 1, "copy:", NULL,
	  "expected a NAME" },
	{ "name/manifest", "[copy:MANIFEST.json]\npaths = /etc\n", 1,
	  "copy:MANIFEST.json", NULL, "expected a NAME" },
	{ "name/shared", VOL "[copy:v]\npaths = /etc\n", 4, "copy:v", NULL,
	  "NAME \"v\" is already used by [volume:v] at line 1" },
	{ "name/volume-ldap", VOL "[ldap:v]\nuri = ldapi://\n", 4, "ldap:v",
	  NULL, "NAME \"v\" is already used by [volume:v] at line 1 (volumes, LDAP exports and copies share" },
	{ "name/ldap-copy", "[ldap:ds]\nuri = ldapi://\n[copy:ds]\npaths = /etc\n",
	  3, "copy:ds", NULL, "NAME \"ds\" is already used by [ldap:ds] at line 1" },
	{ "name/ldap-dot", "[ldap:.ds]\nuri = ldapi://\n", 1, "ldap:.ds",
	  NULL, "expected a NAME" },
	{ "name/ldap-manifest", "[ldap:MANIFEST.json]\nuri = ldapi://\n", 1,
	  "ldap:MANIFEST.json", NULL, "expected a NAME" },
	{ "name/ino-space",
	  "[volume:n163]\nbackend = btrfs\npath = /a\n"
	  "[volume:n278]\nbackend = btrfs\npath = /b\n", 4, "volume:n278",
	  NULL, "inode-number space 0xa228" },
	/* [kolabfs] */
	{ "state_dir/empty", "[kolabfs]\nstate_dir =\n" COPY, 2, "kolabfs",
	  "state_dir", "expected a non-empty value" },
	{ "state_dir/relative", "[kolabfs]\nstate_dir = var/lib\n" COPY, 2,
	  "kolabfs", "state_dir", "expected an absolute path other than /" },
	{ "state_dir/root", "[kolabfs]\nstate_dir = /.\n" COPY, 2, "kolabfs",
	  "state_dir", "expected an absolute path other than /" },
	{ "name_format/empty", COPY "[kolabfs]\nname_format =\n", 4,
	  "kolabfs", "name_format", "expected a non-empty value" },
	{ "name_format/constant", COPY "[kolabfs]\nname_format = backup\n", 4,
	  "kolabfs", "name_format", "every set would get the same name" },
	{ "name_format/percent", COPY "[kolabfs]\nname_format = 100%%\n", 4,
	  "kolabfs", "name_format", "every set would get the same name" },
	{ "name_format/slash", COPY "[kolabfs]\nname_format = %Y/%m\n", 4,
	  "kolabfs", "name_format", "makes \"2026/11\"" },
	{ "name_format/dot", COPY "[kolabfs]\nname_format = .%Y\n", 4,
	  "kolabfs", "name_format", "makes \".2026\"" },
	{ "name_format/newline", COPY "[kolabfs]\nname_format = %Y%n\n", 4,
	  "kolabfs", "name_format", "makes \"2026\\n\"" },
	/* fine on a Friday, too long on a Wednesday */
	{ "name_format/weekday-width", COPY "[kolabfs]\nname_format = "
	  "%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A%A\n",
	  4, "kolabfs", "name_format", "at 2026-12-2" },
	/* 255 bytes at most at the instants tried, 270 on a Wednesday in
	 * September (found by tests/fuzz) */
	{ "name_format/widest", COPY "[kolabfs]\nname_format = "
	  "%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B%A%B\n",
	  4, "kolabfs", "name_format", "at its longest (Wednesday 28 September, 23:59:59)" },
	/* not a conversion: strftime copies it, every set gets "%q" */
	{ "name_format/unknown-conversion", COPY "[kolabfs]\nname_format = %q\n", 4,
	  "kolabfs", "name_format", "every set would get the same name" },
	{ "name_format/too-long", COPY "[kolabfs]\nname_format = %c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c\n",
	  4, "kolabfs", "name_format", "makes \"\" (nothing, or more than 1000 bytes)" },
	/* [volume:NAME] */
	{ "backend/missing", "[volume:v]\npath = /srv/v\n", 1, "volume:v",
	  "backend", "missing, expected one of btrfs, lvm" },
	{ "backend/empty", "[volume:v]\nbackend =\npath = /srv/v\n", 2,
	  "volume:v", "backend", "expected a non-empty value" },
	{ "backend/unknown", "[volume:v]\nbackend = zfs\npath = /srv/v\n", 2,
	  "volume:v", "backend", "expected one of btrfs, lvm, got \"zfs\"" },
#define LVM "[volume:v]\nbackend = lvm\nlv = vg/lv\n"
	{ "lvm/path", LVM "path = /srv/v\n", 4, "volume:v", "path",
	  "only valid with backend = btrfs; an LVM volume is named by lv = VG/LV" },
	{ "lvm/lv-missing", "[volume:v]\nbackend = lvm\n", 1, "volume:v", "lv",
	  "missing, expected VG/LV" },
	{ "lvm/lv-no-slash", "[volume:v]\nbackend = lvm\nlv = vg\n", 3,
	  "volume:v", "lv", "expected VG/LV, a volume group and a logical volume in it (letters, digits, +_.-), got \"vg\"" },
	{ "lvm/lv-device", "[volume:v]\nbackend = lvm\nlv = /dev/vg/lv\n", 3,
	  "volume:v", "lv", "got \"/dev/vg/lv\" (not a device path)" },
	{ "lvm/lv-three", "[volume:v]\nbackend = lvm\nlv = a/b/c\n", 3,
	  "volume:v", "lv", "got \"a/b/c\"" },
	{ "lvm/lv-space", "[volume:v]\nbackend = lvm\nlv = vg/lv --yes\n", 3,
	  "volume:v", "lv", "got \"vg/lv --yes\"" },
	{ "lvm/lv-dash", "[volume:v]\nbackend = lvm\nlv = vg/-lv\n", 3,
	  "volume:v", "lv", "got \"vg/-lv\"" },
	{ "lvm/lv-dotdot", "[volume:v]\nbackend = lvm\nlv = ../lv\n", 3,
	  "volume:v", "lv", "got \"../lv\"" },
	{ "lvm/lv-empty-part", "[volume:v]\nbackend = lvm\nlv = vg/\n", 3,
	  "volume:v", "lv", "got \"vg/\"" },
	{ "lvm/lv-duplicate", LVM "\n[volume:w]\nbackend = lvm\nlv = vg/lv\n", 7,
	  "volume:w", "lv", "vg/lv is also the lv of [volume:v] at line 3" },
	{ "lvm/size-unit", LVM "snapshot_size = 10\n", 4, "volume:v",
	  "snapshot_size", "expected a size such as 10G (K, M, G, T, P) or a share of the origin such as 20%ORIGIN (1 to 100), got \"10\"" },
	{ "lvm/size-zero", LVM "snapshot_size = 0G\n", 4, "volume:v",
	  "snapshot_size", "got \"0G\"" },
	{ "lvm/size-bad-unit", LVM "snapshot_size = 10X\n", 4, "volume:v",
	  "snapshot_size", "got \"10X\"" },
	{ "lvm/size-trailing", LVM "snapshot_size = 10GB\n", 4, "volume:v",
	  "snapshot_size", "got \"10GB\"" },
	{ "lvm/size-negative", LVM "snapshot_size = -1G\n", 4, "volume:v",
	  "snapshot_size", "got \"-1G\"" },
	{ "lvm/size-fraction", LVM "snapshot_size = 1.5G\n", 4, "volume:v",
	  "snapshot_size", "got \"1.5G\"" },
	{ "lvm/size-overflow", LVM "snapshot_size = 99999999999P\n", 4,
	  "volume:v", "snapshot_size", "got \"99999999999P\"" },
	{ "lvm/size-percent-0", LVM "snapshot_size = 0%ORIGIN\n", 4,
	  "volume:v", "snapshot_size", "got \"0%ORIGIN\"" },
	{ "lvm/size-percent-101", LVM "snapshot_size = 101%ORIGIN\n", 4,
	  "volume:v", "snapshot_size", "got \"101%ORIGIN\"" },
	{ "lvm/size-percent-free", LVM "snapshot_size = 20%FREE\n", 4,
	  "volume:v", "snapshot_size", "got \"20%FREE\"" },
	{ "lvm/size-empty", LVM "snapshot_size =\n", 4, "volume:v",
	  "snapshot_size", "expected a non-empty value" },
	{ "lv/btrfs", VOL "lv = vg/lv\n", 4, "volume:v", "lv",
	  "only valid with backend = lvm" },
	{ "snapshot_size/btrfs", VOL "snapshot_size = 10G\n", 4, "volume:v",
	  "snapshot_size", "only valid with backend = lvm" },
	{ "path/missing", "[volume:v]\nbackend = btrfs\n", 1, "volume:v",
	  "path", "missing, expected the absolute path" },
	{ "path/empty", "[volume:v]\nbackend = btrfs\npath =\n", 3,
	  "volume:v", "path", "expected a non-empty value" },
	{ "path/relative", "[volume:v]\nbackend = btrfs\npath = srv/v\n", 3,
	  "volume:v", "path", "expected an absolute path, got \"srv/v\"" },
	{ "path/duplicate",
	  VOL "\n[volume:w]\nbackend = btrfs\npath = /srv/x/../v/\n", 7,
	  "volume:w", "path",
	  "/srv/v is also the path of [volume:v] at line 3" },
	{ "subdir/absolute", VOL "subdir = /data\n", 4, "volume:v", "subdir",
	  "no leading '/'" },
	{ "subdir/dotdot", VOL "subdir = data/../../x\n", 4, "volume:v",
	  "subdir", "no \"..\"" },
	{ "preset/unknown", VOL "preset = cyrus\n", 4, "volume:v", "preset",
	  "expected one of cyrus-spool, cyrus-meta, mysql, got \"cyrus\"" },
	{ "exclude/empty-glob", VOL "exclude = *.tmp;;cache/\n", 4,
	  "volume:v", "exclude", "got an empty element" },
	/* found by tests/fuzz: kfs_filter_create refused it after the first
	 * set was taken */
	{ "exclude/slash", VOL "exclude = /;cache/\n", 4,
	  "volume:v", "exclude", "got \"/\", which names nothing" },
	{ "exclude/slashes", VOL "exclude = *.tmp; //\n", 4,
	  "volume:v", "exclude", "got \"//\", which names nothing" },
	/* [copy:NAME] */
	{ "paths/missing", "[copy:c]\n", 1, "copy:c", "paths",
	  "missing, expected a ;-separated list of absolute paths" },
	{ "paths/empty", "[copy:c]\npaths =\n", 2, "copy:c", "paths",
	  "expected a non-empty value" },
	{ "paths/empty-element", "[copy:c]\npaths = /etc; ;/usr\n", 2,
	  "copy:c", "paths", "got an empty element" },
	{ "paths/relative", "[copy:c]\npaths = /etc;etc/x\n", 2, "copy:c",
	  "paths", "got \"etc/x\"" },
	{ "paths/overlap", "[copy:c]\npaths = /etc;/etc/dirsrv/\n", 2,
	  "copy:c", "paths", "/etc and /etc/dirsrv overlap" },
	{ "paths/state_dir", COPY "[copy:d]\npaths = /var/lib\n", 4, "copy:d",
	  "paths", "/var/lib overlaps state_dir /var/lib/kolabfs" },
	{ "paths/inside-state_dir",
	  "[copy:d]\npaths = /srv/st/sets\n[kolabfs]\nstate_dir = /srv/st\n",
	  2, "copy:d", "paths", "overlaps state_dir /srv/st" },
	/* [mysql] (VOL first: the lock needs a volume; [mysql] is line 4) */
	{ "mysql/no-volume", COPY "[mysql]\n", 3, "mysql", NULL,
	  "there is no [volume:NAME]" },
	{ "mysql/unknown-key", VOL "[mysql]\npassword = x\n", 5, "mysql",
	  "password", "unknown key, expected one of socket, host, port, user, password_file, lock, lock_wait_timeout, require_complete" },
	{ "mysql/socket-host",
	  VOL "[mysql]\nsocket = /run/mysqld/mysqld.sock\nuser = backup\nhost = db1\n",
	  7, "mysql", "host",
	  "socket (line 5) and host (line 7) exclude each other" },
	{ "mysql/host-socket", VOL "[mysql]\nhost = db1\nsocket = /run/m.sock\n",
	  5, "mysql", "host",
	  "socket (line 6) and host (line 5) exclude each other" },
	{ "mysql/socket-relative", VOL "[mysql]\nsocket = mysqld.sock\n", 5,
	  "mysql", "socket", "expected an absolute path, got \"mysqld.sock\"" },
	{ "mysql/socket-empty", VOL "[mysql]\nsocket =\n", 5, "mysql",
	  "socket", "expected a non-empty value" },
	{ "mysql/host-path", VOL "[mysql]\nhost = /run/mysqld/mysqld.sock\n", 5,
	  "mysql", "host", "a Unix socket is given as socket =" },
	{ "mysql/host-space", VOL "[mysql]\nhost = db1 db2\n", 5, "mysql",
	  "host", "expected a host name or IP address (at most 253 bytes), got \"db1 db2\"" },
	{ "mysql/host-control", VOL "[mysql]\nhost = db1\\n\n", 5, "mysql",
	  "host", "got \"db1\\n\"" },
	{ "mysql/host-long", VOL "[mysql]\nhost = "
	  "h123456789h123456789h123456789h123456789h123456789h123456789h123456789"
	  "h123456789h123456789h123456789h123456789h123456789h123456789h123456789"
	  "h123456789h123456789h123456789h123456789h123456789h123456789h123456789"
	  "h123456789h123456789h123456789h123456789h123\n", 5, "mysql",
	  "host", "(at most 253 bytes)" },
	{ "mysql/socket-long", VOL "[mysql]\nsocket = /run/"
	  "s123456789s123456789s123456789s123456789s123456789s123456789"
	  "s123456789s123456789s123456789s123456789s12\n", 5, "mysql", "socket",
	  "expected the path of a Unix socket, at most 107 bytes, got one of 108 bytes" },
	{ "mysql/port-alone", VOL "[mysql]\nport = 3307\n", 5, "mysql", "port",
	  "only valid with host = (without host" },
	{ "mysql/port-socket", VOL "[mysql]\nsocket = /run/m.sock\nport = 3307\n",
	  6, "mysql", "port",
	  "only valid with host = (this section connects through socket =)" },
	{ "mysql/port-zero", VOL "[mysql]\nhost = db1\nport = 0\n", 6, "mysql",
	  "port", "expected a port number from 1 to 65535, got \"0\"" },
	{ "mysql/port-big", VOL "[mysql]\nhost = db1\nport = 65536\n", 6,
	  "mysql", "port", "expected a port number from 1 to 65535" },
	{ "mysql/port-name", VOL "[mysql]\nhost = db1\nport = mysql\n", 6,
	  "mysql", "port", "got \"mysql\"" },
	{ "mysql/user-empty", VOL "[mysql]\nuser =\n", 5, "mysql", "user",
	  "expected a non-empty value" },
	{ "mysql/user-control", VOL "[mysql]\nuser = kolab\\tfs\n", 5, "mysql", "user",
	  "(at most 80 characters, no control characters), got \"kolab\\tfs\"" },
	{ "mysql/user-long", VOL "[mysql]\nuser = "
	  "u123456789u123456789u123456789u123456789u123456789u123456789u123456789"
	  "u123456789u\n", 5, "mysql", "user", "(at most 80 characters" },
	{ "mysql/password_file-relative", VOL "[mysql]\npassword_file = mysql.pw\n",
	  5, "mysql", "password_file",
	  "expected an absolute path, got \"mysql.pw\"" },
	{ "mysql/lock", VOL "[mysql]\nlock = FTWRL\n", 5, "mysql", "lock",
	  "expected one of ftwrl, backup-stage, replica, none, got \"FTWRL\"" },
	{ "mysql/lock-empty", VOL "[mysql]\nlock =\n", 5, "mysql", "lock",
	  "expected a non-empty value (ftwrl, backup-stage, replica, none)" },
	{ "mysql/lock_wait_timeout-zero", VOL "[mysql]\nlock_wait_timeout = 0\n",
	  5, "mysql", "lock_wait_timeout",
	  "expected a whole number of seconds from 1 to 3600, got \"0\"" },
	{ "mysql/lock_wait_timeout-big",
	  VOL "[mysql]\nlock_wait_timeout = 3601\n", 5, "mysql",
	  "lock_wait_timeout", "from 1 to 3600, got \"3601\"" },
	{ "mysql/lock_wait_timeout-negative",
	  VOL "[mysql]\nlock_wait_timeout = -1\n", 5, "mysql",
	  "lock_wait_timeout", "from 1 to 3600, got \"-1\"" },
	{ "mysql/lock_wait_timeout-unit",
	  VOL "[mysql]\nlock_wait_timeout = 30s\n", 5, "mysql",
	  "lock_wait_timeout", "from 1 to 3600, got \"30s\"" },
	{ "mysql/require_complete", VOL "[mysql]\nrequire_complete = maybe\n",
	  5, "mysql", "require_complete",
	  "expected true or false, got \"maybe\"" },
	/* [ldap:NAME] */
	{ "ldap/unknown-key", "[ldap:ds]\nuri = ldapi://\nbase = o=x\n", 3,
	  "ldap:ds", "base",
	  "unknown key, expected one of uri, bind_dn, password_file, mode, bases, starttls, timeout" },
	{ "ldap/uri-missing", "[ldap:ds]\nmode = search\n", 1, "ldap:ds", "uri",
	  "missing, expected an ldap://, ldaps:// or ldapi:// URI" },
	{ "ldap/uri-scheme", "[ldap:ds]\nuri = http://127.0.0.1/\n", 2,
	  "ldap:ds", "uri",
	  "expected an ldap://, ldaps:// or ldapi:// URI, got \"http://127.0.0.1/\"" },
	{ "ldap/uri-no-scheme", "[ldap:ds]\nuri = 127.0.0.1:389\n", 2,
	  "ldap:ds", "uri", "expected an ldap://, ldaps:// or ldapi:// URI" },
	{ "ldap/uri-cldap", "[ldap:ds]\nuri = cldap://127.0.0.1\n", 2,
	  "ldap:ds", "uri", "expected an ldap://, ldaps:// or ldapi:// URI" },
	{ "ldap/uri-list", "[ldap:ds]\nuri = ldap://a ldap://b\n", 2,
	  "ldap:ds", "uri", "expected one URI (no spaces or commas)" },
	{ "ldap/uri-list-comma", "[ldap:ds]\nuri = ldap://a,ldap://b\n", 2,
	  "ldap:ds", "uri", "expected one URI (no spaces or commas)" },
	{ "ldap/uri-dn", "[ldap:ds]\nuri = ldap://a/dc=example,dc=org\n", 2,
	  "ldap:ds", "uri",
	  "expected nothing after the host and port, got \"/dc=example,dc=org\"" },
	{ "ldap/uri-search", "[ldap:ds]\nuri = ldap://a:389/?cn\n", 2,
	  "ldap:ds", "uri",
	  "expected nothing after the host and port, got \"/?cn\" (search bases are given as bases =)" },
	{ "ldap/ldapi-slash", "[ldap:ds]\nuri = ldapi:///run/slapd.sock\n", 2,
	  "ldap:ds", "uri",
	  "expected nothing after the socket path, got \"/run/slapd.sock\" (a '/' in the path is written %2F" },
	{ "ldap/ldapi-relative", "[ldap:ds]\nuri = ldapi://slapd.sock\n", 2,
	  "ldap:ds", "uri",
	  "expected the absolute path of the socket, %-encoded as in ldapi://%2Frun%2Fslapd-kolab.socket, got \"ldapi://slapd.sock\"" },
	{ "ldap/ldapi-nul", "[ldap:ds]\nuri = ldapi://%2Fa%00b\n", 2,
	  "ldap:ds", "uri", "expected the absolute path of the socket" },
	{ "ldap/mode", "[ldap:ds]\nuri = ldapi://\nmode = export\n", 3,
	  "ldap:ds", "mode", "expected one of task, search, got \"export\"" },
	{ "ldap/bases-task", "[ldap:ds]\nuri = ldapi://\nbases = dc=example,dc=org\n",
	  3, "ldap:ds", "bases",
	  "only valid with mode = search (mode = task exports every backend" },
	{ "ldap/bases-task-explicit",
	  "[ldap:ds]\nuri = ldapi://\nmode = task\nbases =\n", 4, "ldap:ds",
	  "bases", "only valid with mode = search" },
	{ "ldap/bases-not-dn",
	  "[ldap:ds]\nuri = ldapi://\nmode = search\nbases = dc=a;example\n",
	  4, "ldap:ds", "bases",
	  "expected a ;-separated list of DNs such as dc=example,dc=org, got \"example\"" },
	{ "ldap/bases-twice",
	  "[ldap:ds]\nuri = ldapi://\nmode = search\nbases = dc=a; o=b ;DC=A\n",
	  4, "ldap:ds", "bases", "\"DC=A\" is listed twice" },
	{ "ldap/bases-empty-element",
	  "[ldap:ds]\nuri = ldapi://\nmode = search\nbases = dc=a;;o=b\n", 4,
	  "ldap:ds", "bases", "got an empty element" },
	{ "ldap/starttls-ldaps",
	  "[ldap:ds]\nuri = ldaps://ds.example.org\nmode = search\nstarttls = true\n",
	  4, "ldap:ds", "starttls",
	  "only valid with an ldap:// uri (ldaps:// is TLS from the start)" },
	{ "ldap/starttls-ldapi", "[ldap:ds]\nuri = ldapi://\nstarttls = true\n",
	  3, "ldap:ds", "starttls",
	  "only valid with an ldap:// uri (ldapi:// is a local socket)" },
	{ "ldap/starttls-value",
	  "[ldap:ds]\nuri = ldap://a\nmode = search\nstarttls = on\n", 4,
	  "ldap:ds", "starttls", "expected true or false, got \"on\"" },
	{ "ldap/timeout-zero", "[ldap:ds]\nuri = ldapi://\ntimeout = 0\n", 3,
	  "ldap:ds", "timeout",
	  "expected a whole number of seconds from 1 to 3600, got \"0\"" },
	{ "ldap/timeout-big", "[ldap:ds]\nuri = ldapi://\ntimeout = 86400\n", 3,
	  "ldap:ds", "timeout", "from 1 to 3600, got \"86400\"" },
	{ "ldap/password_file-alone",
	  "[ldap:ds]\nuri = ldapi://\npassword_file = /etc/kolabfs/ldap.pw\n",
	  3, "ldap:ds", "password_file",
	  "needs bind_dn =, the DN this password is for" },
	{ "ldap/password_file-relative",
	  "[ldap:ds]\nuri = ldapi://\nbind_dn = cn=x\npassword_file = ldap.pw\n",
	  4, "ldap:ds", "password_file",
	  "expected an absolute path, got \"ldap.pw\"" },
	{ "ldap/bind_dn-alone",
	  "[ldap:ds]\nuri = ldap://127.0.0.1\nbind_dn = cn=Directory Manager\n",
	  3, "ldap:ds", "bind_dn",
	  "needs password_file = for a simple bind (only ldapi:// binds without a password" },
	{ "ldap/bind_dn-not-dn",
	  "[ldap:ds]\nuri = ldapi://\nbind_dn = admin\n", 3, "ldap:ds",
	  "bind_dn", "expected a DN such as cn=Directory Manager, got \"admin\"" },
	{ "ldap/bind_dn-control",
	  "[ldap:ds]\nuri = ldapi://\nbind_dn = cn=a\\nb\n", 3, "ldap:ds",
	  "bind_dn", "got \"cn=a\\nb\"" },
	{ "ldap/bases-control",
	  "[ldap:ds]\nuri = ldapi://\nmode = search\nbases = dc=a\\tb\n",
	  4, "ldap:ds", "bases", "got \"dc=a\\tb\"" },
	{ "ldap/ldapi-long", "[ldap:ds]\nuri = ldapi://%2Frun%2F"
	  "s123456789s123456789s123456789s123456789s123456789s123456789"
	  "s123456789s123456789s123456789s123456789s12\n", 2, "ldap:ds", "uri",
	  "expected the path of a Unix socket, at most 107 bytes, got one of 108 bytes" },
	{ "ldap/task-anonymous", "[ldap:ds]\nuri = ldap://127.0.0.1\n", 1,
	  "ldap:ds", "bind_dn",
	  "missing, mode = task needs bind_dn and password_file" },
};

static void test_error(gconstpointer data)
{
	const struct error_case *c = data;
	GError *error = NULL;
	struct kfs_config *cfg = load_text(c->text, -1, &error);

	g_assert_null(cfg);
	assert_names(error, KFS_CONFIG_ERROR_INVALID, c->line, c->group,
		     c->key, c->what);
	g_error_free(error);
}

static void test_error_long_name(void)
{
	char *name = g_strnfill(256, 'x');
	char *text = g_strdup_printf("[copy:%s]\npaths = /etc\n", name);
	char *group = g_strconcat("copy:", name, NULL);
	GError *error = NULL;

	g_assert_null(load_text(text, -1, &error));
	assert_names(error, KFS_CONFIG_ERROR_INVALID, 1, group, NULL,
		     "expected a NAME");
	g_clear_error(&error);
	g_free(group);
	g_free(text);

	/* 255 bytes are fine. */
	name[255] = '\0';
	text = g_strdup_printf("[copy:%s]\npaths = /etc\n", name);
	kfs_config_destroy(load_text(text, -1, &error));
	g_assert_no_error(error);
	g_free(text);
	g_free(name);
}

static void test_error_nul(void)
{
	static const char text[] = "[copy:c]\npaths = /etc\0/usr\n";
	GError *error = NULL;

	g_assert_null(load_text(text, sizeof(text) - 1, &error));
	assert_names(error, KFS_CONFIG_ERROR_INVALID, 2, NULL, NULL,
		     "NUL byte");
	g_error_free(error);
}

static void test_error_no_file(void)
{
	GError *error = NULL;

	g_assert_null(kfs_config_load("/nonexistent/kolabfs.conf", &error));
	assert_names(error, KFS_CONFIG_ERROR_INVALID, 0, NULL, NULL,
		     "/nonexistent/kolabfs.conf");
	g_error_free(error);
}

/* ------------------------------------------------------------------ */
/* NAMEs and inode-number spaces                                       */

static void test_name_is_safe(void)
{
	static const struct {
		const char *name;
		bool safe;
	} cases[] = {
		{ "mysql", true },
		{ "cyrus-spool", true },
		{ "2026-11-27T043000Z", true },
		{ "a.b", true },
		{ "a..", true },
		{ "with space", true },
		{ "Grüße", true },
		{ "", false },
		{ ".", false },
		{ "..", false },
		{ ".x", false },
		{ "a/b", false },
		{ "/", false },
		{ "a\n", false },
		{ "\t", false },
		{ "a\x7f", false },
		{ "\xff", false },
		{ "a\xc3", false },     /* truncated UTF-8 */
	};
	char *name;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("name %zu", i);
		g_assert_cmpint(kfs_name_is_safe(cases[i].name), ==,
				cases[i].safe);
	}
	g_assert_false(kfs_name_is_safe(NULL));
	name = g_strnfill(256, 'a');
	g_assert_false(kfs_name_is_safe(name));
	name[255] = '\0';
	g_assert_true(kfs_name_is_safe(name));
	g_free(name);
}

static void test_ino_space(void)
{
	char name[16];
	int i;

	/* FNV-1a 32 of "volume:mysql" is 0x1d5ee0e7; folded 0x1d5e ^ 0xe0e7
	 * = 0xfdb9; mapped 0xfdb9 % 0xfffe + 1. */
	g_assert_cmpuint(kfs_ino_space_of("volume", "mysql"), ==, 0xfdba);
	g_assert_cmpuint(kfs_ino_space_of("volume", "n163"), ==,
			 kfs_ino_space_of("volume", "n278"));
	g_assert_cmpuint(kfs_ino_space_of("volume", "etc"), !=,
			 kfs_ino_space_of("copy", "etc"));
	for (i = 0; i < 100000; i++) {
		unsigned int s;

		g_snprintf(name, sizeof(name), "n%d", i);
		s = kfs_ino_space_of("copy", name);
		g_assert_cmpuint(s, >=, 1);
		g_assert_cmpuint(s, <=, 0xfffe);
	}
}

/* ------------------------------------------------------------------ */
/* The host                                                            */

/* The texts below are formats: every %s is the temporary directory. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* Load TEXT (a format, see above) and check it against the host. */
static bool check_host_text(struct conf_file *f, const char *text,
			    GError **error)
{
	char *t = g_strdup_printf(text, f->dir, f->dir, f->dir);
	struct kfs_config *cfg;
	GError *local = NULL;
	bool ok;

	conf_file_write(f, t, -1);
	g_free(t);
	cfg = kfs_config_load(f->path, &local);
	g_assert_no_error(local);
	ok = kfs_config_check_host(cfg, error);
	kfs_config_destroy(cfg);
	return ok;
}

static void test_host_ok(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *state;

	conf_file_init(&f);
	g_assert_true(check_host_text(&f,
		"[kolabfs]\nstate_dir = %s/state\n"
		"[copy:c]\npaths = %s/kolabfs.conf;/etc\n", &error));
	g_assert_no_error(error);
	/* It creates nothing. */
	state = g_build_filename(f.dir, "state", NULL);
	g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
	g_free(state);
	conf_file_clear(&f);
}

static void test_host_no_path(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *what;

	conf_file_init(&f);
	g_assert_false(check_host_text(&f,
		COPY "[volume:v]\nbackend = btrfs\npath = %s/nope\n",
		&error));
	what = g_strdup_printf("%s/nope does not exist", f.dir);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 5, "volume:v", "path",
		     what);
	g_free(what);
	g_error_free(error);
	conf_file_clear(&f);
}

static void test_host_not_btrfs(void)
{
	struct conf_file f;
	GError *error = NULL;
	struct statfs sfs;
	char *what;

	conf_file_init(&f);
	g_assert_cmpint(statfs(f.dir, &sfs), ==, 0);
	if ((unsigned long)sfs.f_type == BTRFS_SUPER_MAGIC) {
		g_test_skip("the temporary directory is on btrfs");
		conf_file_clear(&f);
		return;
	}
	g_assert_false(check_host_text(&f,
		"[volume:v]\nbackend = btrfs\n\npath = %s\n", &error));
	what = g_strdup_printf("%s is not a btrfs subvolume (it is on ",
			       f.dir);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 4, "volume:v", "path",
		     what);
	g_free(what);
	g_error_free(error);
	conf_file_clear(&f);
}

static void test_host_no_state_dir_parent(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *what;

	conf_file_init(&f);
	g_assert_false(check_host_text(&f,
		"[copy:c]\npaths = %s/kolabfs.conf\n"
		"[kolabfs]\nstate_dir = %s/missing/state\n",
		&error));
	what = g_strdup_printf("parent directory %s/missing does not exist",
			       f.dir);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 4, "kolabfs", "state_dir",
		     what);
	g_free(what);
	g_error_free(error);
	conf_file_clear(&f);
}

static void test_host_no_copy_path(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *what;

	conf_file_init(&f);
	g_assert_false(check_host_text(&f,
		"[kolabfs]\nstate_dir = %s/state\n"
		"[copy:c]\n# the second one is missing\n"
		"paths = %s/kolabfs.conf;%s/nope\n",
		&error));
	what = g_strdup_printf("%s/nope does not exist", f.dir);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 5, "copy:c", "paths", what);
	g_free(what);
	g_error_free(error);
	conf_file_clear(&f);
}
#pragma GCC diagnostic pop

/* Write TEXT into F's directory as NAME with MODE; the path. */
static char *conf_file_add(struct conf_file *f, const char *name,
			   const char *text, mode_t mode)
{
	char *path = g_build_filename(f->dir, name, NULL);
	GError *error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(path, mode), ==, 0);
	return path;
}

/* Load TEXT (already formatted) and check it against the host. */
static bool check_host_conf(struct conf_file *f, char *text, GError **error)
{
	struct kfs_config *cfg;
	GError *local = NULL;
	bool ok;

	conf_file_write(f, text, -1);
	g_free(text);
	cfg = kfs_config_load(f->path, &local);
	g_assert_no_error(local);
	ok = kfs_config_check_host(cfg, error);
	kfs_config_destroy(cfg);
	return ok;
}

/* A listening-less Unix socket at F's NAME; its ldapi:// URI, or NULL
 * when the path does not fit into sun_path. */
static char *conf_file_socket(struct conf_file *f, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = g_build_filename(f->dir, name, NULL);
	char *uri = NULL, *esc;
	int fd;

	if (strlen(path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)),
				==, 0);
		close(fd);
		esc = g_uri_escape_string(path, NULL, FALSE);
		uri = g_strconcat("ldapi://", esc, NULL);
		g_free(esc);
	}
	g_free(path);
	return uri;
}

static void test_host_servers_ok(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *ldap_pw, *uri;

	conf_file_init(&f);
	uri = conf_file_socket(&f, "ldapi");
	if (!uri) {
		g_test_skip("the temporary directory's path is too long for a socket");
		conf_file_clear(&f);
		return;
	}
	ldap_pw = conf_file_add(&f, "ldap.pw", "s3cr3t", 0400);
	g_assert_true(check_host_conf(&f, g_strdup_printf(
		"[kolabfs]\nstate_dir = %s/state\n"
		"[copy:c]\npaths = /etc\n"
		"[ldap:ds]\nuri = %s\nbind_dn = cn=x\npassword_file = %s\n"
		"[ldap:anon]\nuri = ldap://127.0.0.1\nmode = search\n",
		f.dir, uri, ldap_pw), &error));
	g_assert_no_error(error);
	g_free(uri);
	g_free(ldap_pw);
	conf_file_clear(&f);
}

/* The message of a refused password file names the config's file and
 * line, the group and password_file, and never the password. */
static void test_host_password_file(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *pw, *what;

	conf_file_init(&f);
	pw = conf_file_add(&f, "ldap.pw", "s3cr3t\n", 0644);
	g_assert_false(check_host_conf(&f, g_strdup_printf(
		"[kolabfs]\nstate_dir = %s/state\n"
		"[ldap:ds]\nuri = ldapi://\nbind_dn = cn=x\n\n"
		"password_file = %s\n", f.dir, pw), &error));
	what = g_strdup_printf("%s has mode 0644: its group or others may read or change it; expected no access for them (chmod 600 %s)",
			       pw, pw);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 7, "ldap:ds",
		     "password_file", what);
	g_assert_null(strstr(error->message, "s3cr3t"));
	g_clear_error(&error);
	g_free(what);

	/* Missing, then empty. */
	g_assert_cmpint(g_unlink(pw), ==, 0);
	g_assert_false(check_host_conf(&f, g_strdup_printf(
		"[ldap:ds]\nuri = ldapi://\nbind_dn = cn=x\n"
		"password_file = %s\n", pw), &error));
	what = g_strdup_printf("%s does not exist", pw);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 4, "ldap:ds",
		     "password_file", what);
	g_clear_error(&error);
	g_free(what);
	g_free(pw);

	pw = conf_file_add(&f, "ldap.pw", "\n", 0600);
	g_assert_false(check_host_conf(&f, g_strdup_printf(
		"[ldap:ds]\nuri = ldapi://\nbind_dn = cn=x\n"
		"password_file = %s\n", pw), &error));
	assert_names(error, KFS_CONFIG_ERROR_HOST, 4, "ldap:ds",
		     "password_file", "is empty");
	g_clear_error(&error);
	g_free(pw);
	conf_file_clear(&f);
}

/* [mysql] needs a volume to load, and kfs_config_check_host() checks
 * volumes (btrfs subvolumes) first: hide the volume from it. */
static void test_host_mysql_password_file(void)
{
	struct conf_file f;
	struct kfs_config *cfg;
	GError *error = NULL;
	char *pw, *text, *what;

	conf_file_init(&f);
	pw = conf_file_add(&f, "mysql.pw", "s3cr3t", 0604);
	text = g_strdup_printf(VOL "[mysql]\nuser = root\npassword_file = %s\n",
			       pw);
	conf_file_write(&f, text, -1);
	g_free(text);
	cfg = kfs_config_load(f.path, &error);
	g_assert_no_error(error);
	/* Without the volume the host check reaches [mysql]. */
	cfg->n_volumes = 0;
	g_assert_false(kfs_config_check_host(cfg, &error));
	cfg->n_volumes = 1;
	what = g_strdup_printf("%s has mode 0604", pw);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 6, "mysql", "password_file",
		     what);
	g_assert_null(strstr(error->message, "s3cr3t"));
	g_clear_error(&error);
	g_free(what);

	g_assert_cmpint(chmod(pw, 0600), ==, 0);
	cfg->n_volumes = 0;
	g_assert_true(kfs_config_check_host(cfg, &error));
	cfg->n_volumes = 1;
	g_assert_no_error(error);
	kfs_config_destroy(cfg);
	g_free(pw);
	conf_file_clear(&f);
}

static void test_host_ldapi(void)
{
	struct conf_file f;
	GError *error = NULL;
	char *path, *esc, *what;

	conf_file_init(&f);
	path = g_build_filename(f.dir, "ldapi", NULL);
	esc = g_uri_escape_string(path, NULL, FALSE);
	g_assert_false(check_host_conf(&f, g_strdup_printf(
		"[ldap:ds]\nuri = ldapi://%s\n", esc), &error));
	what = g_strdup_printf("socket %s does not exist (is the directory server running?)",
			       path);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 2, "ldap:ds", "uri", what);
	g_clear_error(&error);
	g_free(what);

	g_free(conf_file_add(&f, "ldapi", "", 0600));
	g_assert_false(check_host_conf(&f, g_strdup_printf(
		"[ldap:ds]\n\nuri = ldapi://%s\n", esc), &error));
	what = g_strdup_printf("%s is not a socket", path);
	assert_names(error, KFS_CONFIG_ERROR_HOST, 3, "ldap:ds", "uri", what);
	g_clear_error(&error);
	g_free(what);
	g_free(esc);
	g_free(path);
	conf_file_clear(&f);
}

int main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/full", test_full);
	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/lifetimes", test_lifetimes);
	g_test_add_func("/config/lvm", test_lvm);
	g_test_add_func("/config/lvm/sizes", test_lvm_sizes);
	g_test_add_func("/config/inline-comments", test_inline_comments);
	g_test_add_func("/config/crlf", test_crlf);
	g_test_add_func("/config/mysql", test_mysql);
	g_test_add_func("/config/mysql/defaults", test_mysql_defaults);
	g_test_add_func("/config/ldap", test_ldap);
	g_test_add_func("/config/ldap/bind", test_ldap_bind);
	for (i = 0; i < G_N_ELEMENTS(error_cases); i++) {
		char *path = g_strconcat("/config/error/", error_cases[i].name,
					 NULL);

		g_test_add_data_func(path, &error_cases[i], test_error);
		g_free(path);
	}
	g_test_add_func("/config/error/name/long", test_error_long_name);
	g_test_add_func("/config/error/nul", test_error_nul);
	g_test_add_func("/config/error/no-file", test_error_no_file);
	g_test_add_func("/config/name-is-safe", test_name_is_safe);
	g_test_add_func("/config/ino-space", test_ino_space);
	g_test_add_func("/config/host/ok", test_host_ok);
	g_test_add_func("/config/host/no-path", test_host_no_path);
	g_test_add_func("/config/host/not-btrfs", test_host_not_btrfs);
	g_test_add_func("/config/host/no-state-dir-parent",
			test_host_no_state_dir_parent);
	g_test_add_func("/config/host/no-copy-path", test_host_no_copy_path);
	g_test_add_func("/config/host/servers-ok", test_host_servers_ok);
	g_test_add_func("/config/host/password-file", test_host_password_file);
	g_test_add_func("/config/host/mysql-password-file",
			test_host_mysql_password_file);
	g_test_add_func("/config/host/ldapi", test_host_ldapi);
	return g_test_run();
}
