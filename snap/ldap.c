/*
 * kolabfs: LDIF exports of directory servers ([ldap:NAME]), the common
 * part: binding, errors, files.  The modes are in ldap-task.c (389-ds
 * online export tasks) and ldap-search.c (paged search, any server).
 *
 * Every network wait is bounded by conf->timeout: the connect
 * (LDAP_OPT_NETWORK_TIMEOUT), every synchronous operation (LDAP_OPT_TIMEOUT)
 * and every ldap_result() we call ourselves.  Referrals are never chased:
 * an export that silently continues on another server is not this one.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldap.h>
#include <glib.h>

#include "../src/log.h"
#include "../src/secret.h"
#include "ldap-int.h"


int kfs_ldap_errno(int rc)
{
	switch (rc) {
	case LDAP_SUCCESS:
		return 0;
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
		return -ECONNREFUSED;
	case LDAP_TIMEOUT:
	case LDAP_TIMELIMIT_EXCEEDED:
		return -ETIMEDOUT;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_CONFIDENTIALITY_REQUIRED:
	case LDAP_INSUFFICIENT_ACCESS:
	case LDAP_AUTH_UNKNOWN:
		return -EACCES;
	case LDAP_UNWILLING_TO_PERFORM:
		return -EPERM;
	case LDAP_NO_SUCH_OBJECT:
		return -ENOENT;
	case LDAP_ALREADY_EXISTS:
		return -EEXIST;
	case LDAP_SIZELIMIT_EXCEEDED:
	case LDAP_ADMINLIMIT_EXCEEDED:
		return -EOVERFLOW;
	case LDAP_NO_MEMORY:
		return -ENOMEM;
	case LDAP_BUSY:
	case LDAP_UNAVAILABLE:
		return -EBUSY;
	case LDAP_PARAM_ERROR:
	case LDAP_FILTER_ERROR:
	case LDAP_INVALID_DN_SYNTAX:
	case LDAP_INVALID_SYNTAX:
		return -EINVAL;
	case LDAP_PROTOCOL_ERROR:
	case LDAP_DECODING_ERROR:
	case LDAP_ENCODING_ERROR:
		return -EPROTO;
	case LDAP_NOT_SUPPORTED:
	case LDAP_UNAVAILABLE_CRITICAL_EXTENSION:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static void vfail(GError **error, const struct kfs_ldap *l, int err,
		  const char *detail, const char *fmt, va_list ap)
{
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);

	g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-err),
		    "[ldap:%s] %s: %s%s%s", l->conf->name, l->conf->uri, msg,
		    detail ? ": " : "", detail ? detail : "");
}

int kfs_ldap_fail(GError **error, const struct kfs_ldap *l, int err,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(error, l, err, NULL, fmt, ap);
	va_end(ap);
	return err;
}

int kfs_ldap_fail_rc(GError **error, const struct kfs_ldap *l, int rc,
		     const char *fmt, ...)
{
	g_autofree char *detail = NULL;
	char *diag = NULL;
	va_list ap;
	int err = kfs_ldap_errno(rc);

	if (!err)
		err = -EIO;
	if (l->ld)
		ldap_get_option(l->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	if (diag && *diag)
		detail = g_strdup_printf("%s (%s)", ldap_err2string(rc), diag);
	else
		detail = g_strdup(ldap_err2string(rc));
	ldap_memfree(diag);
	va_start(ap, fmt);
	vfail(error, l, err, detail, fmt, ap);
	va_end(ap);
	return err;
}

static bool uri_is_ldapi(const char *uri)
{
	return g_ascii_strncasecmp(uri, "ldapi://", 8) == 0;
}

/* With SASL EXTERNAL and a bind_dn, bind_dn is who the server must take
 * kolabfs for: a different mapping would export with other rights. */
static int ldap_check_identity(struct kfs_ldap *l, GError **error)
{
	struct berval *who = NULL;
	const char *dn;
	int rc, ret = 0;

	rc = ldap_whoami_s(l->ld, &who, NULL, NULL);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "Who am I? failed");
	dn = who && who->bv_len > 3 && !g_ascii_strncasecmp(who->bv_val, "dn:", 3)
		? who->bv_val + 3 : "";
	/* 389-ds answers "dn: cn=directory manager", with a space. */
	while (*dn == ' ')
		dn++;
	if (g_ascii_strcasecmp(dn, l->conf->bind_dn) != 0)
		ret = kfs_ldap_fail(error, l, -EACCES,
				    "SASL EXTERNAL maps kolabfs to \"%s\", not to bind_dn \"%s\"",
				    dn, l->conf->bind_dn);
	ber_bvfree(who);
	return ret;
}

/*
 * Simple bind with bind_dn and the password; without bind_dn SASL
 * EXTERNAL over ldapi:// (the peer's uid is the identity) or an anonymous
 * bind.  The bind is always explicit, so that an unreachable server is
 * reported as such here, not by the first search.
 */
static int ldap_bind(struct kfs_ldap *l, GError **error)
{
	const struct kfs_ldap_conf *conf = l->conf;
	struct berval cred = { 0, NULL };
	char *pw = NULL;
	int rc;

	if (!conf->password_file && uri_is_ldapi(conf->uri)) {
		/* An empty authzid, sent: "use the identity of the socket". */
		cred.bv_val = "";
		rc = ldap_sasl_bind_s(l->ld, NULL, "EXTERNAL", &cred, NULL, NULL,
				      NULL);
		if (rc != LDAP_SUCCESS)
			return kfs_ldap_fail_rc(error, l, rc,
						"SASL EXTERNAL bind failed");
		return conf->bind_dn ? ldap_check_identity(l, error) : 0;
	}
	if (conf->bind_dn && !conf->password_file)
		return kfs_ldap_fail(error, l, -EINVAL,
				     "bind_dn without password_file: an empty password would bind anonymously");
	if (conf->password_file) {
		pw = kfs_secret_read(conf->password_file, error);
		if (!pw)
			return -EACCES;
		cred.bv_val = pw;
		cred.bv_len = strlen(pw);
	}
	rc = ldap_sasl_bind_s(l->ld, conf->bind_dn ? conf->bind_dn : "",
			      LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	kfs_secret_free(pw);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "bind as \"%s\" failed",
					conf->bind_dn ? conf->bind_dn : "");
	return 0;
}

static int ldap_set_options(struct kfs_ldap *l, GError **error)
{
	struct timeval tv = { .tv_sec = l->timeout };
	int version = LDAP_VERSION3;
	int rc;

	rc = ldap_set_option(l->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	if (rc == LDAP_OPT_SUCCESS)
		rc = ldap_set_option(l->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	if (rc == LDAP_OPT_SUCCESS)
		rc = ldap_set_option(l->ld, LDAP_OPT_TIMEOUT, &tv);
	if (rc == LDAP_OPT_SUCCESS)
		rc = ldap_set_option(l->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (rc != LDAP_OPT_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "setting options");
	return 0;
}

int kfs_ldap_open(const struct kfs_ldap_conf *conf, struct kfs_ldap *l,
		  GError **error)
{
	int rc, err;

	l->conf = conf;
	l->ld = NULL;
	l->timeout = conf->timeout ? conf->timeout : KFS_LDAP_DEFAULT_TIMEOUT;
	rc = ldap_initialize(&l->ld, conf->uri);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "bad URI");
	err = ldap_set_options(l, error);
	if (err)
		goto err_unbind;
	if (conf->starttls) {
		rc = ldap_start_tls_s(l->ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			err = kfs_ldap_fail_rc(error, l, rc, "StartTLS failed");
			goto err_unbind;
		}
	}
	err = ldap_bind(l, error);
	if (err)
		goto err_unbind;
	return 0;

err_unbind:
	kfs_ldap_close(l);
	return err;
}

void kfs_ldap_close(struct kfs_ldap *l)
{
	if (l->ld)
		ldap_unbind_ext_s(l->ld, NULL, NULL);
	l->ld = NULL;
}

int kfs_ldap_search(struct kfs_ldap *l, const char *base, int scope,
		    const char *filter, char **attrs, LDAPMessage **res,
		    GError **error)
{
	struct timeval tv = { .tv_sec = l->timeout };
	int rc;

	*res = NULL;
	rc = ldap_search_ext_s(l->ld, base, scope, filter, attrs, 0, NULL,
			       NULL, &tv, LDAP_NO_LIMIT, res);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, l, rc, "searching \"%s\"", base);
	return 0;
}

char *kfs_ldap_get(struct kfs_ldap *l, LDAPMessage *entry, const char *attr)
{
	struct berval **vals = ldap_get_values_len(l->ld, entry, attr);
	char *s = NULL;

	if (vals && vals[0])
		s = g_strndup(vals[0]->bv_val, vals[0]->bv_len);
	ldap_value_free_len(vals);
	return s;
}

/*
 * Counts "dn:" at the start of a line: continuation lines start with a
 * space and comments with '#', so this is the number of entries.
 */
int kfs_ldap_file_scan(int fd, guint64 *entries, guint64 *bytes)
{
	static const char dn[] = "dn:";
	char buf[64 * 1024];
	guint64 n = 0, size = 0;
	int m = 0;      /* chars of "dn:" matched at a line start, -1: none */
	off_t off = 0;
	ssize_t len;

	while ((len = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < len; i++) {
			if (buf[i] == '\n') {
				m = 0;
			} else if (m >= 0 && buf[i] == dn[m]) {
				if (++m == 3) {
					n++;
					m = -1;
				}
			} else {
				m = -1;
			}
		}
		off += len;
		size += len;
	}
	if (len < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	*entries = n;
	*bytes = size;
	return 0;
}

struct kfs_ldap_export *kfs_ldap_export_new(const char *backend,
					    const char *suffix,
					    const char *file)
{
	struct kfs_ldap_export *e = g_new0(struct kfs_ldap_export, 1);

	e->backend = g_strdup(backend);
	e->suffix = g_strdup(suffix);
	e->file = g_strdup(file);
	e->task_exit_code = -1;
	return e;
}

void kfs_ldap_export_free(struct kfs_ldap_export *e)
{
	if (!e)
		return;
	g_free(e->backend);
	g_free(e->suffix);
	g_free(e->file);
	g_free(e);
}

static void remove_created(int dirfd, GPtrArray *created)
{
	for (guint i = 0; i < created->len; i++)
		unlinkat(dirfd, created->pdata[i], 0);
	if (created->len)
		fsync(dirfd);
}

GPtrArray *kfs_ldap_export(const struct kfs_ldap_conf *conf, const char *dir,
			   GError **error)
{
	struct kfs_ldap l = { .conf = conf };
	GPtrArray *out, *created;
	int dirfd, err;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		kfs_ldap_fail(error, &l, -errno, "%s: %s", dir,
			      g_strerror(errno));
		return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)kfs_ldap_export_free);
	created = g_ptr_array_new_with_free_func(g_free);
	err = kfs_ldap_open(conf, &l, error);
	if (err)
		goto err_close_dir;
	if (conf->mode == KFS_LDAP_TASK)
		err = kfs_ldap_task_export(&l, dirfd, dir, out, created, error);
	else
		err = kfs_ldap_search_export(&l, dirfd, dir, out, created, error);
	kfs_ldap_close(&l);
	if (!err && fsync(dirfd) < 0)
		err = kfs_ldap_fail(error, &l, -errno, "%s: fsync: %s", dir,
				    g_strerror(errno));
	if (err)
		goto err_remove_files;
	g_ptr_array_unref(created);
	close(dirfd);
	return out;

err_remove_files:
	remove_created(dirfd, created);
err_close_dir:
	g_ptr_array_unref(created);
	g_ptr_array_unref(out);
	close(dirfd);
	return NULL;
}

/*
 * Is TARGET a file the server wrote for kolabfs process PID?  Only such a
 * file is ever removed: the marker lives in root's state_dir, but the
 * server's directory is writable by the server's user.
 */
static bool reap_target_ok(const char *target, const char *pid)
{
	g_autofree char *base = g_path_get_basename(target);
	g_autofree char *infix = g_strdup_printf("-%s-", pid);

	return g_path_is_absolute(target) &&
	       g_str_has_prefix(base, KFS_LDAP_SERVER_FILE_PREFIX) &&
	       g_str_has_suffix(base, ".ldif") && strstr(base, infix);
}

/* Remove the server's file a marker names: 0, -ENOENT, -EPERM, -errno. */
static int reap_target(const char *target, const char *pid)
{
	g_autofree char *parent = g_path_get_dirname(target);
	g_autofree char *base = g_path_get_basename(target);
	struct stat st;
	int fd, ret = 0;

	if (!reap_target_ok(target, pid))
		return -EPERM;
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EPERM;
	else if (unlinkat(fd, base, 0) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

bool kfs_ldap_reap(const char *dir, const char *pid, GPtrArray *reaped)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	bool complete = true;
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *marker = g_build_filename(dir, name, NULL);
		g_autofree char *target = NULL;
		int ret;

		if (!g_str_has_prefix(name, KFS_LDAP_PENDING) ||
		    !(target = g_file_read_link(marker, NULL)))
			continue;
		ret = reap_target(target, pid);
		if (ret == 0) {
			g_ptr_array_add(reaped, g_strdup_printf(
				"reaped %s, an LDIF export the directory server wrote for kolabfs pid %s",
				target, pid));
			kfs_warn("%s", (char *)g_ptr_array_index(reaped, reaped->len - 1));
		} else if (ret == -EPERM) {
			kfs_warn("reaper: %s, named by %s, is no export written for kolabfs pid %s: left alone",
				 target, marker, pid);
		} else if (ret != -ENOENT) {
			kfs_err("reaper: cannot remove %s, an LDIF export left by kolabfs pid %s: %s",
				target, pid, g_strerror(-ret));
			complete = false;
		}
	}
	return complete;
}

bool kfs_ldap_check(const struct kfs_ldap_conf *conf, GString *report,
		    GError **error)
{
	struct kfs_ldap l;
	int err;

	err = kfs_ldap_open(conf, &l, error);
	if (err)
		return false;
	if (conf->mode == KFS_LDAP_TASK)
		err = kfs_ldap_task_check(&l, report, error);
	else
		err = kfs_ldap_search_check(&l, report, error);
	kfs_ldap_close(&l);
	return err == 0;
}
