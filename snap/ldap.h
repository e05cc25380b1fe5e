/* kolabfs: LDIF exports of directory servers ([ldap:NAME]). */
#ifndef KFS_LDAP_H
#define KFS_LDAP_H

#include <stdbool.h>

#include <glib.h>

#include "../src/config.h"

/* One exported LDIF file. */
struct kfs_ldap_export {
	char *backend;          /* task: the backend's name; search: the base DN */
	char *suffix;           /* task: the backend's suffix; search: the base DN */
	char *file;             /* file name inside the export directory */
	guint64 entries;
	guint64 bytes;
	double duration_ms;
	int task_exit_code;     /* task mode: nsTaskExitCode; search mode: -1 */
};

/*
 * Export every backend (task mode) or base (search mode) of CONF as LDIF
 * into DIR (exists, owned by root, 0700), one file per backend/base, each
 * complete before this returns, owned by the directory server's user with
 * mode 0600.  Returns an array of struct kfs_ldap_export * (free function
 * set) or NULL with *error naming the server, backend/base and what
 * failed; on error nothing is left in DIR or on the server.  (389-ds
 * refuses to delete task entries: ours carry a ttl and vanish 5 s after
 * they finish, see doc/design.md.)  Blocking; bounded by conf->timeout
 * per network wait.
 */
GPtrArray *kfs_ldap_export(const struct kfs_ldap_conf *conf, const char *dir,
			   GError **error);

/*
 * kolabfs --check: bind, list what would be exported (one line each into
 * REPORT), and check the rights the mode needs.  false with *error.
 */
bool kfs_ldap_check(const struct kfs_ldap_conf *conf, GString *report, GError **error);

void kfs_ldap_export_free(struct kfs_ldap_export *e);

/*
 * The reaper: a kolabfs (process PID) killed while a directory server
 * wrote an export for it (task mode) leaves the server's file in the
 * server's LDIF directory; the export directory DIR of the dead set names
 * it.  Remove every such file; a message for each goes to REAPED.  false
 * if one could not be removed (the caller keeps DIR and tries again at the
 * next start).
 */
bool kfs_ldap_reap(const char *dir, const char *pid, GPtrArray *reaped);

/* The one mapping of libldap result codes to -errno (default -EIO). */
int kfs_ldap_errno(int rc);

#endif
