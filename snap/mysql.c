/* kolabfs: the MySQL/MariaDB quiescer.
 *
 * FLUSH TABLES WITH READ LOCK that waits behind a long statement blocks
 * every writer while it waits: that is how backups take sites down.  So
 * no lock request is ever left waiting: statements that would block it
 * are waited out first (up to lock_wait_timeout), and each request is
 * bounded by a watchdog that kills it from a second connection. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "../src/error.h"
#include "../src/log.h"
#include "../src/secret.h"
#include "lvm.h"
#include "mysql.h"

/* One lock request may keep writers waiting this long, no longer. */
#define ATTEMPT_MS 300
/* A statement running longer than this would hold up FTWRL. */
#define BLOCKER_MS 100
#define POLL_MS 20

struct kfs_mysql {
	const struct kfs_mysql_conf *conf;
	char **origins;
	MYSQL *conn;            /* the session that holds the lock */
	MYSQL *watch;           /* kills our own lock request if it hangs */
	unsigned long conn_id;
	bool mariadb;
	unsigned long version;  /* 100411 for 10.4.11 */
	bool locked;
	bool sql_thread_running;
	bool io_thread_running;
	gint64 locked_at;
	struct kfs_mysql_position pos;
};

int kfs_mysql_errno(unsigned int error)
{
	switch (error) {
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
		return -ECONNREFUSED;
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
		return -ECONNRESET;
	case ER_ACCESS_DENIED_ERROR:
	case ER_DBACCESS_DENIED_ERROR:
		return -EACCES;
	case ER_SPECIFIC_ACCESS_DENIED_ERROR:
		return -EPERM;
	case ER_LOCK_WAIT_TIMEOUT:
		return -ETIMEDOUT;
	case ER_QUERY_INTERRUPTED:
		return -EINTR;
	default:
		return -EIO;
	}
}

const char *kfs_mysql_lock_name(enum kfs_mysql_lock lock)
{
	static const char *const names[] = { "ftwrl", "backup-stage", "replica", "none" };

	return names[lock];
}

static const char *server_name(const struct kfs_mysql *m)
{
	return m->conf->socket ? m->conf->socket : m->conf->host ? m->conf->host : "localhost";
}

char *kfs_mysql_describe(const struct kfs_mysql *m)
{
	return g_strdup_printf("mysql: %s, server %s, lock = %s: privileges and file layout OK",
			       server_name(m), m->pos.server_version,
			       kfs_mysql_lock_name(m->conf->lock));
}

static bool fail(struct kfs_mysql *m, MYSQL *c, GError **error, const char *what)
{
	g_set_error(error, KFS_ERROR, EIO, "[mysql] %s: %s: %s (error %u)",
		    server_name(m), what, mysql_error(c), mysql_errno(c));
	return false;
}

static double ms_since(gint64 t0)
{
	return (g_get_monotonic_time() - t0) / 1000.0;
}

static void position_clear(struct kfs_mysql_position *pos)
{
	g_free(pos->binlog_file);
	g_free(pos->gtid_position);
	g_free(pos->master_log_file);
	g_free(pos->gtid_slave_position);
	g_free(pos->server_version);
}

static MYSQL *open_conn(struct kfs_mysql *m, const char *password, GError **error)
{
	const struct kfs_mysql_conf *c = m->conf;
	/* Never wait forever on a server that stopped answering. */
	unsigned int connect_timeout = 10, io_timeout = c->lock_wait_timeout + 30;
	MYSQL *my = mysql_init(NULL);

	if (!my) {
		g_set_error(error, KFS_ERROR, EIO, "[mysql] out of memory");
		return NULL;
	}
	mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_options(my, MYSQL_READ_DEFAULT_GROUP, "kolabfs");
	if (c->host) {
		/* else libmysqlclient quietly turns "localhost" into the socket */
		unsigned int tcp = MYSQL_PROTOCOL_TCP;

		mysql_options(my, MYSQL_OPT_PROTOCOL, &tcp);
	}
	if (!mysql_real_connect(my, c->socket ? NULL : c->host, c->user, password, NULL,
				c->port, c->socket, 0)) {
		fail(m, my, error, "cannot connect");
		mysql_close(my);
		return NULL;
	}
	return my;
}

/* The directories the volumes show: the datadir, binlog and InnoDB files
 * must lie inside them for a copy to be restorable.  An LVM volume shows
 * its LV's filesystem, wherever that is mounted. */
static char **volume_roots(const struct kfs_config *cfg)
{
	GPtrArray *roots = g_ptr_array_new();
	size_t i;
	char **r;

	for (i = 0; i < cfg->n_volumes; i++) {
		const struct kfs_volume_conf *v = &cfg->volumes[i];
		char **lvm;

		if (v->backend == KFS_BACKEND_LVM) {
			lvm = kfs_lvm_host_roots(v);
			for (r = lvm; *r; r++)
				g_ptr_array_add(roots, *r);
			g_free(lvm);
		} else {
			g_ptr_array_add(roots, v->subdir ? g_build_filename(v->path, v->subdir, NULL)
							 : g_strdup(v->path));
		}
	}
	g_ptr_array_add(roots, NULL);
	return (char **)g_ptr_array_free(roots, FALSE);
}

struct kfs_mysql *kfs_mysql_connect(const struct kfs_config *cfg, GError **error)
{
	const struct kfs_mysql_conf *conf = cfg->mysql;
	struct kfs_mysql *m = g_new0(struct kfs_mysql, 1);
	char *password = NULL;

	m->conf = conf;
	m->origins = volume_roots(cfg);
	if (conf->password_file) {
		password = kfs_secret_read(conf->password_file, error);
		if (!password)
			goto err_free;
	}
	m->conn = open_conn(m, password, error);
	if (!m->conn)
		goto err_secret;
	m->watch = open_conn(m, password, error);
	if (!m->watch)
		goto err_secret;
	kfs_secret_free(password);
	m->conn_id = mysql_thread_id(m->conn);
	m->mariadb = strstr(mysql_get_server_info(m->conn), "MariaDB") != NULL;
	m->version = mysql_get_server_version(m->conn);
	m->pos.server_version = g_strdup(mysql_get_server_info(m->conn));
	return m;

err_secret:
	kfs_secret_free(password);
err_free:
	kfs_mysql_destroy(m);
	return NULL;
}

void kfs_mysql_destroy(struct kfs_mysql *m)
{
	if (!m)
		return;
	/* Closing the session releases any lock it still holds. */
	if (m->conn)
		mysql_close(m->conn);
	if (m->watch)
		mysql_close(m->watch);
	g_strfreev(m->origins);
	position_clear(&m->pos);
	g_free(m);
}

struct kfs_mysql_position *kfs_mysql_position_steal(struct kfs_mysql *m)
{
	struct kfs_mysql_position *pos = g_memdup2(&m->pos, sizeof(m->pos));

	memset(&m->pos, 0, sizeof(m->pos));
	return pos;
}

void kfs_mysql_position_free(struct kfs_mysql_position *pos)
{
	if (!pos)
		return;
	position_clear(pos);
	g_free(pos);
}

/* The first row of SQL as column name -> value (NULL values absent).
 * NULL with *error if the query fails; an empty table if no row. */
static GHashTable *query_row(struct kfs_mysql *m, MYSQL *c, const char *sql, GError **error)
{
	GHashTable *row;
	MYSQL_RES *res;
	MYSQL_FIELD *fields;
	MYSQL_ROW r;
	unsigned int i;

	if (mysql_query(c, sql) != 0) {
		fail(m, c, error, sql);
		return NULL;
	}
	row = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	res = mysql_store_result(c);
	if (!res)
		return row;
	fields = mysql_fetch_fields(res);
	r = mysql_fetch_row(res);
	for (i = 0; r && i < mysql_num_fields(res); i++)
		if (r[i])
			g_hash_table_insert(row, g_strdup(fields[i].name), g_strdup(r[i]));
	mysql_free_result(res);
	return row;
}

static bool exec(struct kfs_mysql *m, const char *sql, GError **error)
{
	if (mysql_query(m->conn, sql) != 0)
		return fail(m, m->conn, error, sql);
	return true;
}

/* Global privileges of the current user, upper-case, from SHOW GRANTS. */
static GHashTable *global_privileges(struct kfs_mysql *m, GError **error)
{
	GHashTable *privs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	MYSQL_RES *res;
	MYSQL_ROW r;

	if (mysql_query(m->conn, "SHOW GRANTS") != 0 || !(res = mysql_store_result(m->conn))) {
		fail(m, m->conn, error, "SHOW GRANTS");
		g_hash_table_unref(privs);
		return NULL;
	}
	while ((r = mysql_fetch_row(res))) {
		const char *on = r[0] ? strstr(r[0], " ON *.* TO ") : NULL;
		g_auto(GStrv) list = NULL;
		char **p;

		if (!on || strncmp(r[0], "GRANT ", 6))
			continue;
		g_autofree char *part = g_strndup(r[0] + 6, on - r[0] - 6);
		list = g_strsplit(part, ",", -1);
		for (p = list; *p; p++)
			g_hash_table_add(privs, g_ascii_strup(g_strstrip(*p), -1));
	}
	mysql_free_result(res);
	return privs;
}

/* Is one of the NULL-terminated alternatives granted? */
static bool granted(GHashTable *privs, const char *const *alternatives)
{
	if (g_hash_table_contains(privs, "ALL PRIVILEGES") || g_hash_table_contains(privs, "ALL"))
		return true;
	for (; *alternatives; alternatives++)
		if (g_hash_table_contains(privs, *alternatives))
			return true;
	return false;
}

/* SHOW SLAVE STATUS: MariaDB 10.5.9 moved it from REPLICATION CLIENT to
 * SLAVE MONITOR. */
static const char *const *replica_status_privs(const struct kfs_mysql *m)
{
	static const char *const monitor[] = { "SLAVE MONITOR", "REPLICA MONITOR", "SUPER", NULL };
	static const char *const client[] = { "REPLICATION CLIENT", "SUPER", NULL };

	return m->mariadb && m->version >= 100509 ? monitor : client;
}

static bool check_privileges(struct kfs_mysql *m, GError **error)
{
	static const char *const reload[] = { "RELOAD", NULL };
	static const char *const process[] = { "PROCESS", NULL };
	static const char *const monitor[] = { "BINLOG MONITOR", "REPLICATION CLIENT", "SUPER",
					       "SLAVE MONITOR", "REPLICA MONITOR", NULL };
	static const char *const replica[] = { "REPLICATION SLAVE ADMIN", "SUPER", NULL };
	g_autoptr(GHashTable) privs = global_privileges(m, error);
	const char *missing = NULL;
	enum kfs_mysql_lock lock = m->conf->lock;

	if (!privs)
		return false;
	if (lock != KFS_MYSQL_LOCK_REPLICA && !granted(privs, reload))
		missing = "RELOAD";
	else if (lock == KFS_MYSQL_LOCK_FTWRL && !granted(privs, process))
		missing = "PROCESS (to see the statements that would block the lock)";
	else if (!granted(privs, monitor))
		missing = m->mariadb ? "BINLOG MONITOR (or REPLICATION CLIENT)" : "REPLICATION CLIENT";
	else if (lock == KFS_MYSQL_LOCK_REPLICA && !granted(privs, replica))
		missing = "REPLICATION SLAVE ADMIN (or SUPER)";
	else if (lock == KFS_MYSQL_LOCK_REPLICA && !granted(privs, replica_status_privs(m)))
		missing = m->mariadb ? "SLAVE MONITOR (for SHOW SLAVE STATUS)" : "REPLICATION CLIENT";
	if (missing) {
		g_set_error(error, KFS_ERROR, EPERM,
			    "[mysql] %s: user %s lacks the privilege %s needed for lock = %s",
			    server_name(m), m->conf->user, missing, kfs_mysql_lock_name(lock));
		return false;
	}
	if (lock == KFS_MYSQL_LOCK_BACKUP_STAGE && !(m->mariadb && m->version >= 100400)) {
		g_set_error(error, KFS_ERROR, ENOTSUP,
			    "[mysql] %s: lock = backup-stage needs MariaDB 10.4 or later, the server is %s",
			    server_name(m), m->pos.server_version);
		return false;
	}
	return true;
}

static bool within_origins(struct kfs_mysql *m, const char *path)
{
	g_autofree char *real = realpath(path, NULL);
	const char *p = real ? real : path;
	char **o;

	for (o = m->origins; o && *o; o++) {
		size_t n = strlen(*o);

		if (!strncmp(p, *o, n) && (p[n] == '/' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* The files a restore needs must all be in the snapshots: an InnoDB
 * prepared transaction is only resolved with the binlog beside it. */
static bool check_layout(struct kfs_mysql *m, GPtrArray *warnings, GError **error)
{
	static const char *const vars[] = { "@@datadir", "@@log_bin_basename",
					    "@@innodb_log_group_home_dir",
					    "@@innodb_data_home_dir", "@@innodb_undo_directory", NULL };
	g_autoptr(GHashTable) row = query_row(m, m->conn,
		"SELECT @@datadir, @@log_bin_basename, @@innodb_log_group_home_dir, "
		"@@innodb_data_home_dir, @@innodb_undo_directory", error);
	const char *datadir, *v;
	const char *const *var;

	if (!row)
		return false;
	datadir = g_hash_table_lookup(row, "@@datadir");
	for (var = vars; *var; var++) {
		const char *name = *var;
		g_autofree char *path = NULL;
		g_autofree char *msg = NULL;

		v = g_hash_table_lookup(row, name);
		if (!v || !*v)
			continue;       /* binlog off, or "the datadir" */
		path = g_canonicalize_filename(v, datadir);
		if (within_origins(m, path))
			continue;
		msg = g_strdup_printf("[mysql] %s: %s = %s is outside every volume: a copy may not "
				      "be restorable (add a volume for it, or set "
				      "require_complete = false)", server_name(m), name, path);
		if (m->conf->require_complete) {
			g_set_error_literal(error, KFS_ERROR, EIO, msg);
			return false;
		}
		kfs_warn("%s", msg);
		g_ptr_array_add(warnings, g_steal_pointer(&msg));
	}
	return true;
}

bool kfs_mysql_check(struct kfs_mysql *m, GPtrArray *warnings, GError **error)
{
	return check_privileges(m, error) && check_layout(m, warnings, error);
}

/* The watchdog of one lock request: if the request has not returned by
 * the deadline, KILL QUERY it from the second connection, so writers
 * queued behind it go on. */
struct watchdog {
	struct kfs_mysql *m;
	GMutex lock;
	GCond cond;
	gint64 deadline;        /* monotonic */
	bool done;
	bool fired;
};

static gpointer watchdog_run(gpointer data)
{
	struct watchdog *w = data;
	char sql[64];

	g_mutex_lock(&w->lock);
	while (!w->done) {
		if (g_cond_wait_until(&w->cond, &w->lock, w->deadline))
			continue;
		if (!w->done) {
			snprintf(sql, sizeof(sql), "KILL QUERY %lu", w->m->conn_id);
			if (mysql_query(w->m->watch, sql) != 0)
				kfs_warn("[mysql] %s: %s", sql, mysql_error(w->m->watch));
			w->fired = true;
		}
		break;
	}
	g_mutex_unlock(&w->lock);
	return NULL;
}

/* Run SQL on the lock session, killed if it takes longer than MS.
 * Returns 0, or the server's error number. */
static unsigned int bounded_query(struct kfs_mysql *m, const char *sql, unsigned int ms)
{
	struct watchdog w = { .m = m, .deadline = g_get_monotonic_time() + ms * 1000 };
	GThread *t;
	unsigned int err = 0;

	g_mutex_init(&w.lock);
	g_cond_init(&w.cond);
	t = g_thread_new("kfs-mysql-watchdog", watchdog_run, &w);
	if (mysql_query(m->conn, sql) != 0)
		err = mysql_errno(m->conn);
	g_mutex_lock(&w.lock);
	w.done = true;
	g_cond_signal(&w.cond);
	g_mutex_unlock(&w.lock);
	g_thread_join(t);
	/* A kill that arrived just after the statement finished must not
	 * hit the next one: absorb it. */
	if (w.fired && !err && mysql_query(m->conn, "DO 0") != 0)
		kfs_debug("[mysql] absorbed a late KILL QUERY");
	g_mutex_clear(&w.lock);
	g_cond_clear(&w.cond);
	return err;
}

/* The longest-running statement that would hold up a lock request, as
 * "id 42, user app, running 5.3 s: UPDATE ...", or NULL. */
static char *find_blocker(struct kfs_mysql *m, unsigned int min_ms)
{
	g_autofree char *sql = g_strdup_printf(
		"SELECT ID, USER, %s AS MS, LEFT(INFO, 120) AS INFO "
		"FROM information_schema.PROCESSLIST "
		"WHERE ID NOT IN (%lu, %lu) AND INFO IS NOT NULL AND USER <> 'system user' "
		"AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', "
		"'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed') "
		"HAVING MS >= %u ORDER BY MS DESC LIMIT 1",
		m->mariadb ? "TIME_MS" : "TIME * 1000", m->conn_id,
		mysql_thread_id(m->watch), min_ms);
	g_autoptr(GHashTable) row = query_row(m, m->watch, sql, NULL);
	const char *id;

	if (!row || !(id = g_hash_table_lookup(row, "ID")))
		return NULL;
	return g_strdup_printf("statement id %s of user %s, running for %.1f s: %s", id,
			       (char *)g_hash_table_lookup(row, "USER"),
			       g_ascii_strtod(g_hash_table_lookup(row, "MS"), NULL) / 1000.0,
			       (char *)g_hash_table_lookup(row, "INFO"));
}

/* Wait, up to DEADLINE, until no statement has run long enough to hold
 * up FTWRL.  Returns the blocker still running at the deadline, or NULL. */
static char *wait_blockers(struct kfs_mysql *m, gint64 deadline)
{
	char *blocker;

	while ((blocker = find_blocker(m, BLOCKER_MS))) {
		if (g_get_monotonic_time() >= deadline)
			return blocker;
		g_free(blocker);
		g_usleep(POLL_MS * 1000);
	}
	return NULL;
}

static unsigned int remaining_ms(gint64 deadline)
{
	gint64 left = deadline - g_get_monotonic_time();

	return left > 0 ? (unsigned int)(left / 1000) : 0;
}

static bool lock_timeout(struct kfs_mysql *m, const char *what, char *blocker, GError **error)
{
	g_set_error(error, KFS_ERROR, ETIMEDOUT,
		    "[mysql] %s: could not take %s within lock_wait_timeout (%u s)%s%s; "
		    "no lock is held and no set was taken",
		    server_name(m), what, m->conf->lock_wait_timeout,
		    blocker ? ": blocked by " : "", blocker ? blocker : "");
	g_free(blocker);
	return false;
}

static bool lock_ftwrl(struct kfs_mysql *m, gint64 deadline, GError **error)
{
	gint64 t0 = g_get_monotonic_time(), t;
	unsigned int err;
	char *blocker;

	/* Flushing without the lock first leaves little for the locked
	 * flush to do; not being able to is no reason to give up. */
	if (!(blocker = wait_blockers(m, deadline)) &&
	    bounded_query(m, "FLUSH NO_WRITE_TO_BINLOG TABLES", MIN(ATTEMPT_MS, remaining_ms(deadline))))
		kfs_debug("[mysql] pre-flush interrupted");
	g_free(blocker);
	for (;;) {
		blocker = wait_blockers(m, deadline);
		if (blocker)
			return lock_timeout(m, "FLUSH TABLES WITH READ LOCK", blocker, error);
		m->pos.attempts++;
		t = g_get_monotonic_time();
		err = bounded_query(m, "FLUSH TABLES WITH READ LOCK",
				    MIN(ATTEMPT_MS, MAX(remaining_ms(deadline), 50)));
		if (!err) {
			m->pos.lock_wait_ms = ms_since(t);
			m->pos.blocker_wait_ms = (t - t0) / 1000.0;
			return true;
		}
		if (err != ER_QUERY_INTERRUPTED && err != ER_LOCK_WAIT_TIMEOUT)
			return fail(m, m->conn, error, "FLUSH TABLES WITH READ LOCK");
		if (g_get_monotonic_time() >= deadline)
			return lock_timeout(m, "FLUSH TABLES WITH READ LOCK",
					    find_blocker(m, 0), error);
	}
}

/* One try at BACKUP STAGE START .. BLOCK_COMMIT; ends the stage on failure.
 * Returns 0 or the error number of the statement that failed. */
static unsigned int backup_stage_try(struct kfs_mysql *m, gint64 deadline, char **failed)
{
	static const char *const stages[] = { "BACKUP STAGE START", "BACKUP STAGE FLUSH",
					      "BACKUP STAGE BLOCK_DDL", "BACKUP STAGE BLOCK_COMMIT" };
	unsigned int err = 0;
	gint64 t = 0;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(stages) && !err; i++) {
		/* BLOCK_DDL and BLOCK_COMMIT hold others up while they wait */
		unsigned int bound = i >= 2 ? MIN(ATTEMPT_MS, MAX(remaining_ms(deadline), 50))
					    : MAX(remaining_ms(deadline), 50);

		t = g_get_monotonic_time();
		err = bounded_query(m, stages[i], bound);
		if (err) {
			g_free(*failed);
			*failed = g_strdup_printf("%s: %s (error %u)", stages[i],
						  mysql_error(m->conn), err);
		}
	}
	if (err) {
		if (mysql_query(m->conn, "BACKUP STAGE END") != 0)
			kfs_debug("[mysql] BACKUP STAGE END: %s", mysql_error(m->conn));
		return err;
	}
	m->pos.lock_wait_ms = ms_since(t);
	return 0;
}

static bool lock_backup_stage(struct kfs_mysql *m, gint64 deadline, GError **error)
{
	gint64 t0 = g_get_monotonic_time();
	g_autofree char *failed = NULL;
	unsigned int err;

	for (;;) {
		m->pos.attempts++;
		err = backup_stage_try(m, deadline, &failed);
		if (!err) {
			m->pos.blocker_wait_ms = ms_since(t0) - m->pos.lock_wait_ms;
			return true;
		}
		if (err != ER_QUERY_INTERRUPTED && err != ER_LOCK_WAIT_TIMEOUT) {
			g_set_error(error, KFS_ERROR, EIO, "[mysql] %s: %s",
				    server_name(m), failed);
			return false;
		}
		if (g_get_monotonic_time() >= deadline)
			return lock_timeout(m, "BACKUP STAGE BLOCK_COMMIT", find_blocker(m, 0), error);
	}
}

static const char *row_get(GHashTable *row, const char *a, const char *b)
{
	const char *v = g_hash_table_lookup(row, a);

	return v ? v : g_hash_table_lookup(row, b);
}

static bool replica_status(struct kfs_mysql *m, GHashTable **row, GError **error)
{
	/* MySQL 8.0.22 renamed it; MariaDB keeps both names */
	const char *sql = (!m->mariadb && m->version >= 80022) ? "SHOW REPLICA STATUS"
							       : "SHOW SLAVE STATUS";

	*row = query_row(m, m->conn, sql, error);
	if (!*row)
		return false;
	if (g_hash_table_size(*row) == 0) {
		g_set_error(error, KFS_ERROR, EIO,
			    "[mysql] %s: lock = replica, but the server is not a replica (%s is empty)",
			    server_name(m), sql);
		g_clear_pointer(row, g_hash_table_unref);
		return false;
	}
	return true;
}

static bool lock_replica(struct kfs_mysql *m, gint64 deadline, GError **error)
{
	g_autoptr(GHashTable) row = NULL;
	g_autoptr(GHashTable) gtid = NULL;
	const char *running;
	gint64 t;

	if (!replica_status(m, &row, error))
		return false;
	running = row_get(row, "Slave_SQL_Running", "Replica_SQL_Running");
	m->sql_thread_running = running && !strcmp(running, "Yes");
	running = row_get(row, "Slave_IO_Running", "Replica_IO_Running");
	m->io_thread_running = running && !strcmp(running, "Yes");
	m->pos.attempts = 1;
	t = g_get_monotonic_time();
	/* The SQL thread fixes the position; the IO thread is stopped too,
	 * because it rewrites master.info in place and would leave a torn
	 * one in the snapshot.  It resumes where it was. */
	if ((m->sql_thread_running || m->io_thread_running) &&
	    bounded_query(m, "STOP SLAVE", MAX(remaining_ms(deadline), 50)))
		return fail(m, m->conn, error, "STOP SLAVE");
	m->pos.lock_wait_ms = ms_since(t);
	g_clear_pointer(&row, g_hash_table_unref);
	if (!replica_status(m, &row, error))
		return false;
	m->pos.master_log_file = g_strdup(row_get(row, "Relay_Master_Log_File",
						  "Relay_Source_Log_File"));
	m->pos.master_log_position = g_ascii_strtoull(row_get(row, "Exec_Master_Log_Pos",
							      "Exec_Source_Log_Pos") ?: "0", NULL, 10);
	gtid = query_row(m, m->conn, m->mariadb ? "SELECT @@gtid_slave_pos AS g"
						: "SELECT @@gtid_executed AS g", error);
	if (!gtid)
		return false;
	m->pos.gtid_slave_position = g_strdup(g_hash_table_lookup(gtid, "g"));
	return true;
}

static bool read_binlog(struct kfs_mysql *m, GError **error)
{
	const char *sql = (!m->mariadb && m->version >= 80400) ? "SHOW BINARY LOG STATUS"
							       : "SHOW MASTER STATUS";
	g_autoptr(GHashTable) row = query_row(m, m->conn, sql, error);
	g_autoptr(GHashTable) gtid = NULL;
	const char *file;

	if (!row)
		return false;
	file = g_hash_table_lookup(row, "File");
	m->pos.binlog_enabled = file != NULL;
	if (!file)
		return true;
	m->pos.binlog_file = g_strdup(file);
	m->pos.binlog_position = g_ascii_strtoull(g_hash_table_lookup(row, "Position") ?: "0",
						  NULL, 10);
	gtid = query_row(m, m->conn, m->mariadb ? "SELECT @@gtid_binlog_pos AS g"
						: "SELECT @@gtid_executed AS g", error);
	if (!gtid)
		return false;
	m->pos.gtid_position = g_strdup(g_hash_table_lookup(gtid, "g"));
	return true;
}

bool kfs_mysql_lock(struct kfs_mysql *m, GError **error)
{
	gint64 deadline = g_get_monotonic_time() +
			  (gint64)m->conf->lock_wait_timeout * G_USEC_PER_SEC;
	g_autofree char *sql = g_strdup_printf("SET SESSION lock_wait_timeout = %u",
					       m->conf->lock_wait_timeout);
	bool ok;

	if (!exec(m, sql, error))
		return false;
	switch (m->conf->lock) {
	case KFS_MYSQL_LOCK_FTWRL:
		ok = lock_ftwrl(m, deadline, error);
		break;
	case KFS_MYSQL_LOCK_BACKUP_STAGE:
		ok = lock_backup_stage(m, deadline, error);
		break;
	case KFS_MYSQL_LOCK_REPLICA:
		ok = lock_replica(m, deadline, error);
		break;
	default:
		return true;
	}
	if (!ok)
		return false;
	m->locked = true;
	m->locked_at = g_get_monotonic_time();
	if (!read_binlog(m, error)) {
		kfs_mysql_unlock(m, NULL);
		return false;
	}
	return true;
}

bool kfs_mysql_unlock(struct kfs_mysql *m, GError **error)
{
	const char *sql = NULL;

	if (!m->locked)
		return true;
	m->locked = false;
	m->pos.lock_hold_ms = ms_since(m->locked_at);
	if (m->conf->lock == KFS_MYSQL_LOCK_FTWRL)
		sql = "UNLOCK TABLES";
	else if (m->conf->lock == KFS_MYSQL_LOCK_BACKUP_STAGE)
		sql = "BACKUP STAGE END";
	else if (m->sql_thread_running && m->io_thread_running)
		sql = "START SLAVE";
	else if (m->sql_thread_running)
		sql = "START SLAVE SQL_THREAD";
	else if (m->io_thread_running)
		sql = "START SLAVE IO_THREAD";
	/* Failing here means the server lost our session inside the window:
	 * the lock may have gone with it, so the snapshots prove nothing. */
	if (sql && mysql_query(m->conn, sql) != 0)
		return fail(m, m->conn, error, "the lock was lost inside the snapshot window");
	return true;
}
