/* kolabfs: passwords, read from files only root can read.
 *
 * The file is checked on the descriptor it is read from (open with
 * O_NOFOLLOW, then fstat), so what is checked is what is read.  The
 * password never appears in a message, and every buffer that held it is
 * wiped before it is freed.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "secret.h"

/* A password, not a key file: a larger file is a wrong path. */
#define KFS_SECRET_MAX 4096

static void G_GNUC_PRINTF(4, 5)
kfs_secret_error(GError **error, GFileError code, const char *file,
		 const char *fmt, ...)
{
	char *what;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, G_FILE_ERROR, code, "%s %s", file, what);
	g_free(what);
}

static const char *kfs_secret_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symbolic link";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	default: return "not a regular file";
	}
}

static void kfs_secret_open_error(const char *file, int err, GError **error)
{
	struct stat st;

	/* O_NOFOLLOW: a symbolic link as the last component is ELOOP. */
	if (err == ELOOP && lstat(file, &st) == 0 && S_ISLNK(st.st_mode))
		kfs_secret_error(error, G_FILE_ERROR_LOOP, file,
				 "is a symbolic link; expected the regular file itself (a link could be pointed elsewhere)");
	else if (err == ENOENT)
		kfs_secret_error(error, G_FILE_ERROR_NOENT, file,
				 "does not exist");
	else
		kfs_secret_error(error, g_file_error_from_errno(err), file,
				 "cannot be opened: %s", g_strerror(err));
}

/*
 * A regular file, no access for group and others, owned by root or by
 * us (a file another user owns, that user could read or replace), with a
 * size a password can have.
 */
static bool kfs_secret_check(const char *file, const struct stat *st,
			     GError **error)
{
	uid_t euid = geteuid();

	if (!S_ISREG(st->st_mode)) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "is %s; expected a regular file",
				 kfs_secret_type(st->st_mode));
	} else if (st->st_mode & 077) {
		kfs_secret_error(error, G_FILE_ERROR_PERM, file,
				 "has mode %04o: its group or others may read or change it; expected no access for them (chmod 600 %s)",
				 (unsigned int)(st->st_mode & 07777), file);
	} else if (st->st_uid != 0 && st->st_uid != euid) {
		kfs_secret_error(error, G_FILE_ERROR_PERM, file,
				 "is owned by uid %u; expected root%s (chown root %s)",
				 (unsigned int)st->st_uid,
				 euid ? " or kolabfs's own uid" : "", file);
	} else if (st->st_size == 0) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "is empty; expected the password");
	} else if (st->st_size > KFS_SECRET_MAX) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "has %lld bytes; expected a password of at most %d bytes",
				 (long long)st->st_size, KFS_SECRET_MAX);
	} else {
		return true;
	}
	return false;
}

/* Read up to MAX bytes of FD into BUF; the count, or -errno. */
static ssize_t kfs_secret_read_all(int fd, char *buf, size_t max)
{
	size_t len = 0;
	ssize_t n;

	while (len < max) {
		n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

/*
 * The password in BUF[0..LEN): one trailing "\n" or "\r\n" dropped, then
 * not empty and one line without NUL bytes (a second line is more likely
 * a comment or a mistake than part of a password).  The length, or -1.
 */
static ssize_t kfs_secret_trim(const char *file, const char *buf, size_t len,
			       GError **error)
{
	if (len > KFS_SECRET_MAX) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "has more than %d bytes; expected a password",
				 KFS_SECRET_MAX);
		return -1;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "is empty; expected the password");
		return -1;
	}
	if (memchr(buf, '\0', len)) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "contains a NUL byte; expected the password as text");
		return -1;
	}
	if (memchr(buf, '\n', len) || memchr(buf, '\r', len)) {
		kfs_secret_error(error, G_FILE_ERROR_INVAL, file,
				 "has more than one line; expected the password alone");
		return -1;
	}
	return (ssize_t)len;
}

char *kfs_secret_read(const char *file, GError **error)
{
	/* One byte more than allowed: a file that grew after fstat shows. */
	char *buf = g_malloc(KFS_SECRET_MAX + 1);
	char *secret = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang the start; fstat refuses it. */
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		  O_NONBLOCK);
	if (fd < 0) {
		kfs_secret_open_error(file, errno, error);
		goto free_buf;
	}
	if (fstat(fd, &st) < 0) {
		kfs_secret_error(error, g_file_error_from_errno(errno), file,
				 "cannot be looked at: %s", g_strerror(errno));
		goto close_fd;
	}
	if (!kfs_secret_check(file, &st, error))
		goto close_fd;
	n = kfs_secret_read_all(fd, buf, KFS_SECRET_MAX + 1);
	if (n < 0) {
		kfs_secret_error(error, g_file_error_from_errno((int)-n), file,
				 "cannot be read: %s", g_strerror((int)-n));
		goto wipe_buf;
	}
	n = kfs_secret_trim(file, buf, (size_t)n, error);
	if (n < 0)
		goto wipe_buf;
	secret = g_malloc((gsize)n + 1);
	memcpy(secret, buf, (size_t)n);
	secret[n] = '\0';

wipe_buf:
	explicit_bzero(buf, KFS_SECRET_MAX + 1);
close_fd:
	close(fd);
free_buf:
	g_free(buf);
	return secret;
}

void kfs_secret_free(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	g_free(secret);
}
