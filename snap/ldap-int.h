/* kolabfs: internals of the LDAP exporter (snap/ldap*.c). */
#ifndef KFS_LDAP_INT_H
#define KFS_LDAP_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include <ldap.h>
#include <glib.h>

#include "ldap.h"

/* Default for conf->timeout == 0 (the parser's default is 30 as well). */
#define KFS_LDAP_DEFAULT_TIMEOUT 30

/* One connection, bound, to the server of one [ldap:NAME] section. */
struct kfs_ldap {
	LDAP *ld;
	const struct kfs_ldap_conf *conf;
	unsigned int timeout;   /* seconds, never 0 */
};

int kfs_ldap_open(const struct kfs_ldap_conf *conf, struct kfs_ldap *l,
		  GError **error);
void kfs_ldap_close(struct kfs_ldap *l);

/*
 * Set *error to "[ldap:NAME] URI: <message>" and return ERR (a negative
 * errno).  The _rc variant maps the LDAP result code RC and appends the
 * server's diagnostic message.
 */
int kfs_ldap_fail(GError **error, const struct kfs_ldap *l, int err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int kfs_ldap_fail_rc(GError **error, const struct kfs_ldap *l, int rc,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * A synchronous search bounded by l->timeout, never chasing referrals.
 * The caller frees *res with ldap_msgfree() (also after an error).
 */
int kfs_ldap_search(struct kfs_ldap *l, const char *base, int scope,
		    const char *filter, char **attrs, LDAPMessage **res,
		    GError **error);

/* The first value of ATTR in ENTRY as a new string, or NULL. */
char *kfs_ldap_get(struct kfs_ldap *l, LDAPMessage *entry, const char *attr);

/*
 * Files: count entries ("dn:" at the start of a line) and bytes of the
 * open LDIF file FD from its start, and make it durable; make DIRFD's
 * entries durable.
 */
int kfs_ldap_file_scan(int fd, guint64 *entries, guint64 *bytes);

struct kfs_ldap_export *kfs_ldap_export_new(const char *backend,
					    const char *suffix,
					    const char *file);

/*
 * The modes.  Each appends its exports to OUT and the paths it created in
 * DIR to CREATED (removed by the caller on error); a server-side trace
 * (task entry, the server's own file) is removed before returning.
 */
int kfs_ldap_task_export(struct kfs_ldap *l, int dirfd, const char *dir,
			 GPtrArray *out, GPtrArray *created, GError **error);
int kfs_ldap_task_check(struct kfs_ldap *l, GString *report, GError **error);
int kfs_ldap_search_export(struct kfs_ldap *l, int dirfd, const char *dir,
			   GPtrArray *out, GPtrArray *created, GError **error);
int kfs_ldap_search_check(struct kfs_ldap *l, GString *report, GError **error);

/*
 * Search mode: the user and group the directory server runs as, when it
 * runs on this host (found through its listening socket), else root.
 */
void kfs_ldap_server_owner(const struct kfs_ldap_conf *conf, uid_t *uid,
			   gid_t *gid);

/*
 * Task mode: before the server is asked to write SERVER_FILE, a symbolic
 * link KFS_LDAP_PENDING<backend> in the export directory names it, durably,
 * for kfs_ldap_reap; removed once the server's file is gone.
 */
#define KFS_LDAP_PENDING ".pending-"
/* The server's files: kolabfs-BACKEND-PID-N.ldif. */
#define KFS_LDAP_SERVER_FILE_PREFIX "kolabfs-"

#endif
