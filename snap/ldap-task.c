/*
 * kolabfs: mode = task, the online export task of 389 Directory Server.
 *
 * For every backend (cn=*,cn=ldbm database,cn=plugins,cn=config) we add
 * cn=kolabfs-...,cn=export,cn=tasks,cn=config and let the server write
 * the LDIF, as its own user, into its LDIF directory (nsslapd-ldifdir of
 * cn=config: the one directory of the instance meant for this and
 * writable by it).  The file is then moved into the set's directory,
 * keeping the owner the server gave it: a file the server's user cannot
 * read makes ldif2db fail and empty the backend.  So task mode needs the
 * server on this host, which is what the Kolab guide's pre-script assumed
 * too.
 *
 * The server does not let anyone delete a task entry: we add it with a
 * ttl of TASK_TTL seconds, after which the server removes it (task entries
 * live in memory only, never in dse.ldif); one we give up on (timeout) is
 * cancelled first.
 *
 * Waiting is polling the task entry with an exponential backoff (5 ms to
 * 100 ms): one poll is a base search of an in-memory entry, and a
 * persistent search would buy nothing but code.  An export of 1,000 entries
 * takes a fraction of a second.
 * A task fails when it makes no progress
 * (nsTaskStatus and nsTaskCurrentItem unchanged) for conf->timeout
 * seconds, or runs longer than TASK_MAX_FACTOR times that.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldap.h>
#include <glib.h>

#include "../src/testpoint.h"
#include "ldap-int.h"

#define LDBM_BASE "cn=ldbm database,cn=plugins,cn=config"
#define TASK_PARENT "cn=export,cn=tasks,cn=config"
#define TASK_MAX_FACTOR 100
/*
 * Seconds a finished task entry stays before the server removes it: long
 * enough for our slowest poll (TASK_POLL_MAX_US) to read nsTaskExitCode.
 */
#define TASK_TTL 5
#define TASK_POLL_MIN_US (5 * 1000)
#define TASK_POLL_MAX_US (100 * 1000)
#define TASK_LOG_MAX 2000       /* the tail of nsTaskLog put in a message */
#define OID_GER "1.3.6.1.4.1.42.2.27.9.5.2"

struct backend {
	char *name;
	char *suffix;
};

static void backend_free(struct backend *b)
{
	g_free(b->name);
	g_free(b->suffix);
	g_free(b);
}

static gint backend_cmp(gconstpointer a, gconstpointer b)
{
	const struct backend *x = *(struct backend *const *)a;
	const struct backend *y = *(struct backend *const *)b;

	return strcmp(x->name, y->name);
}

/* Every backend with its suffix, sorted by name; at least one. */
static int task_backends(struct kfs_ldap *l, GPtrArray **out, GError **error)
{
	char *attrs[] = { "cn", "nsslapd-suffix", NULL };
	LDAPMessage *res, *e;
	GPtrArray *list;
	int err;

	err = kfs_ldap_search(l, LDBM_BASE, LDAP_SCOPE_ONELEVEL,
			      "(objectClass=nsBackendInstance)", attrs, &res,
			      error);
	if (err == -ENOENT) {
		g_clear_error(error);
		err = kfs_ldap_fail(error, l, err,
				    "not a 389 Directory Server (no %s): use mode = search",
				    LDBM_BASE);
	}
	if (err)
		goto out_free_res;
	list = g_ptr_array_new_with_free_func((GDestroyNotify)backend_free);
	for (e = ldap_first_entry(l->ld, res); e; e = ldap_next_entry(l->ld, e)) {
		struct backend *b = g_new0(struct backend, 1);

		b->name = kfs_ldap_get(l, e, "cn");
		b->suffix = kfs_ldap_get(l, e, "nsslapd-suffix");
		g_ptr_array_add(list, b);
		if (!b->name || !b->suffix || !kfs_name_is_safe(b->name)) {
			char *dn = ldap_get_dn(l->ld, e);

			err = kfs_ldap_fail(error, l, -EINVAL,
					    "backend entry %s: no usable cn or nsslapd-suffix",
					    dn);
			ldap_memfree(dn);
			break;
		}
	}
	if (!err && list->len == 0)
		err = kfs_ldap_fail(error, l, -ENOENT, "no backends under %s (or no right to read them)",
				    LDBM_BASE);
	if (err) {
		g_ptr_array_unref(list);
		goto out_free_res;
	}
	g_ptr_array_sort(list, backend_cmp);
	*out = list;
out_free_res:
	ldap_msgfree(res);
	return err;
}

/* nsslapd-ldifdir of cn=config: where the server may write LDIF. */
static int task_ldif_dir(struct kfs_ldap *l, char **dir, GError **error)
{
	char *attrs[] = { "nsslapd-ldifdir", NULL };
	LDAPMessage *res;
	int err;

	err = kfs_ldap_search(l, "cn=config", LDAP_SCOPE_BASE,
			      "(objectClass=*)", attrs, &res, error);
	if (!err) {
		LDAPMessage *e = ldap_first_entry(l->ld, res);

		*dir = e ? kfs_ldap_get(l, e, "nsslapd-ldifdir") : NULL;
		if (!*dir || (*dir)[0] != '/')
			err = kfs_ldap_fail(error, l, -ENOENT,
					    "cn=config has no absolute nsslapd-ldifdir (or no right to read it)");
	}
	ldap_msgfree(res);
	return err;
}

static int task_add(struct kfs_ldap *l, const char *dn, const char *cn,
		    const struct backend *b, const char *file, GError **error)
{
	char *oc[] = { "top", "extensibleObject", NULL };
	char *cnv[] = { (char *)cn, NULL };
	char *inst[] = { b->name, NULL };
	char *fname[] = { (char *)file, NULL };
	char *repl[] = { "true", NULL };
	char *ttl[] = { G_STRINGIFY(TASK_TTL), NULL };
	LDAPMod m[] = {
		{ LDAP_MOD_ADD, "objectClass", { oc } },
		{ LDAP_MOD_ADD, "cn", { cnv } },
		{ LDAP_MOD_ADD, "nsInstance", { inst } },
		{ LDAP_MOD_ADD, "nsFilename", { fname } },
		{ LDAP_MOD_ADD, "nsExportReplica", { repl } },
		{ LDAP_MOD_ADD, "ttl", { ttl } },
	};
	LDAPMod *mods[] = { &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], NULL };
	int rc;

	rc = ldap_add_ext_s(l->ld, dn, mods, NULL, NULL);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc,
					"backend %s: adding export task %s",
					b->name, dn);
	return 0;
}

/*
 * 389-ds refuses to delete task entries (task_deny); a finished task
 * removes itself after its ttl.  A task we give up on is cancelled.
 */
static void task_cancel(struct kfs_ldap *l, const char *dn)
{
	char *yes[] = { "true", NULL };
	LDAPMod m = { LDAP_MOD_REPLACE, "nsTaskCancel", { yes } };
	LDAPMod *mods[] = { &m, NULL };

	ldap_modify_ext_s(l->ld, dn, mods, NULL, NULL);
}

struct task_state {
	char *exit_code;        /* nsTaskExitCode once finished, else NULL */
	char *progress;         /* nsTaskStatus and nsTaskCurrentItem */
	char *log;              /* nsTaskLog */
};

static void task_state_clear(struct task_state *s)
{
	g_clear_pointer(&s->exit_code, g_free);
	g_clear_pointer(&s->progress, g_free);
	g_clear_pointer(&s->log, g_free);
}

static int task_read(struct kfs_ldap *l, const char *dn, struct task_state *s,
		     GError **error)
{
	char *attrs[] = { "nsTaskExitCode", "nsTaskStatus",
			  "nsTaskCurrentItem", "nsTaskLog", NULL };
	g_autofree char *status = NULL, *item = NULL;
	LDAPMessage *res, *e;
	int err;

	task_state_clear(s);
	err = kfs_ldap_search(l, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs,
			      &res, error);
	if (!err && !(e = ldap_first_entry(l->ld, res)))
		err = kfs_ldap_fail(error, l, -ENOENT, "task %s vanished", dn);
	if (!err) {
		s->exit_code = kfs_ldap_get(l, e, "nsTaskExitCode");
		s->log = kfs_ldap_get(l, e, "nsTaskLog");
		status = kfs_ldap_get(l, e, "nsTaskStatus");
		item = kfs_ldap_get(l, e, "nsTaskCurrentItem");
		s->progress = g_strdup_printf("%s/%s", status ? status : "",
					      item ? item : "");
	}
	ldap_msgfree(res);
	return err;
}

/* Wait for the task to finish; its state is left in *S. */
static int task_wait(struct kfs_ldap *l, const char *dn, struct task_state *s,
		     GError **error)
{
	gint64 now = g_get_monotonic_time();
	gint64 stall = now + (gint64)l->timeout * G_USEC_PER_SEC;
	gint64 end = now + (gint64)l->timeout * TASK_MAX_FACTOR * G_USEC_PER_SEC;
	gulong delay = TASK_POLL_MIN_US;
	g_autofree char *last = NULL;
	int err;

	for (;;) {
		err = task_read(l, dn, s, error);
		if (err || s->exit_code)
			return err;
		now = g_get_monotonic_time();
		if (g_strcmp0(last, s->progress) != 0) {
			g_free(last);
			last = g_strdup(s->progress);
			stall = now + (gint64)l->timeout * G_USEC_PER_SEC;
		}
		if (now >= stall || now >= end)
			return kfs_ldap_fail(error, l, -ETIMEDOUT,
					     "export task %s: %s (status: %s)",
					     dn, now >= end ? "still running at the time limit"
					     : "no progress within the timeout",
					     s->progress);
		g_usleep(delay);
		delay = MIN(delay * 2, TASK_POLL_MAX_US);
	}
}

/* Copy SRC (open) to a new DIR/NAME with SRC's owner, mode 0600. */
static int copy_to(struct kfs_ldap *l, int src, const struct stat *st,
		   int dirfd, const char *dir, const char *name,
		   GPtrArray *created, int *dst_out, GError **error)
{
	off_t off = 0;
	ssize_t n;
	int dst;

	dst = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, 0600);
	if (dst < 0)
		return kfs_ldap_fail(error, l, -errno, "%s/%s: %s", dir, name,
				     g_strerror(errno));
	g_ptr_array_add(created, g_strdup(name));
	/* sendfile: copy_file_range() refuses most pairs of filesystems. */
	do {
		n = sendfile(dst, src, &off, 1 << 30);
	} while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0 || fchown(dst, st->st_uid, st->st_gid) < 0 ||
	    fchmod(dst, 0600) < 0) {
		int err = -errno;

		close(dst);
		return kfs_ldap_fail(error, l, err, "%s/%s: %s", dir, name,
				     g_strerror(-err));
	}
	*dst_out = dst;
	return 0;
}

/*
 * Move the server's file SRC to DIR/NAME (rename, or copy and unlink
 * across filesystems), mode 0600, and count it into E.  SRC is removed
 * in every case.
 */
static int task_take(struct kfs_ldap *l, const char *src, int dirfd,
		     const char *dir, const char *name,
		     struct kfs_ldap_export *e, GPtrArray *created,
		     GError **error)
{
	struct stat st;
	int fd, dst = -1, err = 0;

	fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kfs_ldap_fail(error, l, -errno,
				     "backend %s: the export task succeeded but %s: %s",
				     e->backend, src, g_strerror(errno));
	/* The directory is writable by the server's user: a hard link it
	 * planted there must not make root chmod or take some other file. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    fchmod(fd, 0600) < 0) {
		err = kfs_ldap_fail(error, l, -EINVAL,
				    "%s: not a regular file with a single link", src);
		goto out_unlink_src;
	}
	if (renameat2(AT_FDCWD, src, dirfd, name, RENAME_NOREPLACE) == 0) {
		g_ptr_array_add(created, g_strdup(name));
		dst = fd;
		fd = -1;
	} else if (errno == EXDEV) {
		err = copy_to(l, fd, &st, dirfd, dir, name, created, &dst,
			      error);
	} else {
		err = kfs_ldap_fail(error, l, -errno, "moving %s to %s/%s: %s",
				    src, dir, name, g_strerror(errno));
	}
	if (!err) {
		err = kfs_ldap_file_scan(dst, &e->entries, &e->bytes);
		if (err)
			kfs_ldap_fail(error, l, err, "%s/%s: %s", dir, name,
				      g_strerror(-err));
	}
	if (dst >= 0)
		close(dst);
out_unlink_src:
	if (fd >= 0) {
		close(fd);
		unlink(src);
	}
	return err;
}

static char *tail(const char *log)
{
	size_t len = log ? strlen(log) : 0;
	char **lines, *s;

	if (!len)
		return g_strdup("(no nsTaskLog)");
	if (len <= TASK_LOG_MAX)
		s = g_strstrip(g_strdup(log));
	else
		s = g_strstrip(g_strdup_printf("...%s", log + len - TASK_LOG_MAX));
	/* One line in the error: the log's lines joined with " | ". */
	lines = g_strsplit(s, "\n", -1);
	g_free(s);
	s = g_strjoinv(" | ", lines);
	g_strfreev(lines);
	return s;
}

/* Run the export task of B into SRC: add, wait, check, remove. */
static int task_run(struct kfs_ldap *l, const struct backend *b,
		    const char *src, struct kfs_ldap_export *e, GError **error)
{
	static gint seq;
	g_autofree char *cn = g_strdup_printf("kolabfs-%d-%" G_GINT64_FORMAT "-%d",
					      getpid(), g_get_real_time(),
					      g_atomic_int_add(&seq, 1));
	g_autofree char *dn = g_strdup_printf("cn=%s,%s", cn, TASK_PARENT);
	struct task_state s = { 0 };
	int err;

	err = task_add(l, dn, cn, b, src, error);
	if (err)
		return err;
	kfs_test_point("ldap");         /* the server is writing SRC */
	err = task_wait(l, dn, &s, error);
	if (err)
		task_cancel(l, dn);
	if (!err) {
		e->task_exit_code = atoi(s.exit_code);
		if (e->task_exit_code != 0) {
			g_autofree char *log = tail(s.log);

			err = kfs_ldap_fail(error, l, -EIO,
					    "backend %s: export task failed with exit code %d: %s",
					    b->name, e->task_exit_code, log);
		}
	}
	task_state_clear(&s);
	return err;
}

/*
 * The server writes SRC, in its own directory: were kolabfs killed before
 * SRC is taken or removed, only the set's record would survive, and it
 * does not know SRC.  So a link in the set's export directory names it
 * first, made durable before the task is added (kfs_ldap_reap).
 */
static int mark_pending(struct kfs_ldap *l, int dirfd, const char *dir,
			const char *marker, const char *src, GError **error)
{
	if (symlinkat(src, dirfd, marker) < 0 || fsync(dirfd) < 0) {
		int err = -errno;

		unlinkat(dirfd, marker, 0);
		return kfs_ldap_fail(error, l, err, "%s/%s: %s", dir, marker,
				     g_strerror(-err));
	}
	return 0;
}

static int task_export_one(struct kfs_ldap *l, const struct backend *b,
			   const char *ldif_dir, int dirfd, const char *dir,
			   GPtrArray *out, GPtrArray *created, GError **error)
{
	static gint seq;
	g_autofree char *name = g_strdup_printf("%s.ldif", b->name);
	g_autofree char *marker = g_strconcat(KFS_LDAP_PENDING, b->name, NULL);
	g_autofree char *src = g_strdup_printf("%s/" KFS_LDAP_SERVER_FILE_PREFIX "%s-%d-%d.ldif",
					       ldif_dir, b->name, getpid(),
					       g_atomic_int_add(&seq, 1));
	struct kfs_ldap_export *e = kfs_ldap_export_new(b->name, b->suffix, name);
	gint64 t0 = g_get_monotonic_time();
	int err;

	err = mark_pending(l, dirfd, dir, marker, src, error);
	if (err)
		goto err_free;
	err = task_run(l, b, src, e, error);
	if (!err)
		err = task_take(l, src, dirfd, dir, name, e, created, error);
	if (err)
		unlink(src);    /* the server may have written some or all of it */
	/* SRC is gone either way: nothing left to reap. */
	unlinkat(dirfd, marker, 0);
	if (err)
		goto err_free;
	e->duration_ms = (g_get_monotonic_time() - t0) / 1000.0;
	g_ptr_array_add(out, e);
	return 0;

err_free:
	kfs_ldap_export_free(e);
	return err;
}

int kfs_ldap_task_export(struct kfs_ldap *l, int dirfd, const char *dir,
			 GPtrArray *out, GPtrArray *created, GError **error)
{
	g_autofree char *ldif_dir = NULL;
	GPtrArray *backends;
	int err;

	err = task_backends(l, &backends, error);
	if (err)
		return err;
	err = task_ldif_dir(l, &ldif_dir, error);
	for (guint i = 0; !err && i < backends->len; i++)
		err = task_export_one(l, backends->pdata[i], ldif_dir, dirfd,
				      dir, out, created, error);
	g_ptr_array_unref(backends);
	return err;
}

/*
 * Whether our identity may add entries under TASK_PARENT: the
 * entryLevelRights of the Get Effective Rights control, which 389-ds
 * answers for any bound identity (the Directory Manager gets "vadn").
 */
static int task_check_rights(struct kfs_ldap *l, GString *report,
			     GError **error)
{
	char *attrs[] = { "entryLevelRights", NULL };
	struct berval *who = NULL, val = { 0, NULL };
	g_autofree char *authz = NULL, *rights = NULL;
	LDAPControl *ctrl = NULL, *ctrls[2] = { NULL, NULL };
	struct timeval tv = { .tv_sec = l->timeout };
	LDAPMessage *res = NULL, *e;
	BerElement *ber;
	int rc;

	rc = ldap_whoami_s(l->ld, &who, NULL, NULL);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "who am I");
	/* 389-ds answers "dn: cn=directory manager"; GER wants "dn:DN". */
	authz = who ? g_strndup(who->bv_val, who->bv_len) : g_strdup("");
	if (g_str_has_prefix(authz, "dn:")) {
		char *dn = g_strdup_printf("dn:%s", g_strchug(authz + 3));

		g_free(authz);
		authz = dn;
	}
	ber_bvfree(who);
	ber = ber_alloc_t(LBER_USE_DER);
	if (!ber || ber_printf(ber, "s", authz) < 0 || ber_flatten2(ber, &val, 1) < 0)
		rc = LDAP_ENCODING_ERROR;
	ber_free(ber, 1);
	if (rc == LDAP_SUCCESS)
		rc = ldap_control_create(OID_GER, 1, &val, 1, &ctrl);
	ber_memfree(val.bv_val);
	ctrls[0] = ctrl;
	if (rc == LDAP_SUCCESS)
		rc = ldap_search_ext_s(l->ld, TASK_PARENT, LDAP_SCOPE_BASE,
				       "(objectClass=*)", attrs, 0, ctrls, NULL,
				       &tv, LDAP_NO_LIMIT, &res);
	ldap_control_free(ctrl);
	if (rc == LDAP_SUCCESS && (e = ldap_first_entry(l->ld, res)))
		rights = kfs_ldap_get(l, e, "entryLevelRights");
	ldap_msgfree(res);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "checking the rights of \"%s\" on %s",
					authz, TASK_PARENT);
	if (!rights || !strchr(rights, 'a'))
		return kfs_ldap_fail(error, l, -EACCES,
				     "\"%s\" may not add export tasks under %s (entryLevelRights: %s)",
				     authz, TASK_PARENT, rights ? rights : "none");
	g_string_append_printf(report, "[ldap:%s] %s may add export tasks (entryLevelRights: %s)\n",
			       l->conf->name, authz, rights);
	return 0;
}

int kfs_ldap_task_check(struct kfs_ldap *l, GString *report, GError **error)
{
	g_autofree char *ldif_dir = NULL;
	GPtrArray *backends;
	struct stat st;
	int err;

	err = task_backends(l, &backends, error);
	if (err)
		return err;
	for (guint i = 0; i < backends->len; i++) {
		struct backend *b = backends->pdata[i];

		g_string_append_printf(report, "[ldap:%s] backend %s (%s) -> %s.ldif\n",
				       l->conf->name, b->name, b->suffix, b->name);
	}
	g_ptr_array_unref(backends);
	err = task_ldif_dir(l, &ldif_dir, error);
	if (err)
		return err;
	if (stat(ldif_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return kfs_ldap_fail(error, l, -ENOENT,
				     "the server's LDIF directory %s is not a directory here: task mode needs the server on this host",
				     ldif_dir);
	g_string_append_printf(report, "[ldap:%s] the server writes into %s (owner uid %u, mode %04o)\n",
			       l->conf->name, ldif_dir, (unsigned int)st.st_uid,
			       (unsigned int)(st.st_mode & 07777));
	return task_check_rights(l, report, error);
}
