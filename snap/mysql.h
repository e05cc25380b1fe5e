/* kolabfs: the MySQL/MariaDB quiescer ([mysql]).
 *
 * One lock window per set: everything that can be done before it is done
 * before it (connecting, checking privileges and the datadir layout,
 * waiting for statements that would block the lock), so the window holds
 * only the lock, reading the binlog position, the snapshots, the unlock. */
#ifndef KFS_MYSQL_H
#define KFS_MYSQL_H

#include <stdbool.h>
#include <glib.h>

#include "../src/config.h"

struct kfs_mysql;

/* Where the server stood inside the lock window, and what it cost. */
struct kfs_mysql_position {
	bool binlog_enabled;
	char *binlog_file;              /* NULL if binary logging is off */
	guint64 binlog_position;
	char *gtid_position;            /* @@gtid_binlog_pos / @@gtid_executed */
	char *master_log_file;          /* lock = replica */
	guint64 master_log_position;
	char *gtid_slave_position;
	double blocker_wait_ms;         /* waiting for blocking statements */
	double lock_wait_ms;            /* the lock request itself */
	double lock_hold_ms;            /* lock taken .. released */
	unsigned int attempts;          /* lock requests made */
	char *server_version;
};

/*
 * Connect to CFG's [mysql] server (password from password_file, never
 * logged) and learn the server family and version.
 */
struct kfs_mysql *kfs_mysql_connect(const struct kfs_config *cfg, GError **error);
void kfs_mysql_destroy(struct kfs_mysql *m);

/*
 * Privileges for the lock mode and the datadir layout.  Problems that
 * require_complete = false turns into warnings are appended to WARNINGS.
 */
bool kfs_mysql_check(struct kfs_mysql *m, GPtrArray *warnings, GError **error);

/* Take the lock within lock_wait_timeout, never leaving a request
 * waiting long; read the position.  On failure nothing is held. */
bool kfs_mysql_lock(struct kfs_mysql *m, GError **error);

/* Release it.  false if the server lost the lock under us (restarted,
 * connection gone): the snapshots then are not consistent. */
bool kfs_mysql_unlock(struct kfs_mysql *m, GError **error);

/* Take the position (and timings) out of M, for the set to keep. */
struct kfs_mysql_position *kfs_mysql_position_steal(struct kfs_mysql *m);
void kfs_mysql_position_free(struct kfs_mysql_position *pos);

/* -errno for a client or server error number. */
int kfs_mysql_errno(unsigned int error);

const char *kfs_mysql_lock_name(enum kfs_mysql_lock lock);

/* kolabfs --check: one line about the server and the lock mode. */
char *kfs_mysql_describe(const struct kfs_mysql *m);

#endif
