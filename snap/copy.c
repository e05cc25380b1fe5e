/*
 * kolabfs: [copy:NAME] trees, copied into state_dir when a set is taken.
 *
 * Restoring a configuration file means copying it back with `cp -a` or
 * rsync; whatever we lose here (owner, mode, ACL, a hard link) is lost for
 * good.  So every piece of metadata is copied, and in an order that keeps
 * it: data, then owner (chown clears setuid and file capabilities), then
 * xattrs, then mode (restores setuid/setgid exactly), then times (the
 * data written set mtime).  Directories get theirs after their contents,
 * since adding an entry changes a directory's mtime.
 *
 * Extended attributes the destination cannot hold are skipped with one
 * warning per call, not failed: state_dir may be on a filesystem without
 * ACL or user xattr support, or without the security module that labelled
 * the source, and a set with the configuration minus some xattrs is worth
 * more than no set.  These are skipped:
 *   - any xattr the destination refuses with EOPNOTSUPP;
 *   - security.* and trusted.* refused with EPERM or EACCES (capabilities,
 *     SELinux labels the destination's policy will not take).
 * Any other failure, including on user.* and system.posix_acl_*, is an
 * error.
 *
 * Without root (the unit tests) files owned by others are copied with our
 * own owner and without setuid/setgid, like cp -p does.
 *
 * Symlinks are copied as symlinks, including SRC itself; its ancestors
 * are followed (the copy of /etc/foo/bar has a directory etc/foo even when
 * /etc/foo is a symlink to a directory).  Entries that vanish while the
 * tree is walked are skipped, like tar does.  Mount points are crossed.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <glib.h>

#include "copy.h"
#include "../src/log.h"

#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
#define COPY_BUF_SIZE (128 * 1024)

/* One call of kfs_copy_tree. */
struct copy {
	GHashTable *links;      /* struct file_id -> first copy's path */
	char *buf;              /* COPY_BUF_SIZE, for file data */
	unsigned int skipped;   /* xattrs the destination would not take */
	char *first_skipped;    /* "NAME on PATH" of the first one */
	GError **error;
};

struct file_id {
	dev_t dev;
	ino_t ino;
};

/*
 * One entry being copied.  The fds are open on the source and the copy
 * when they can be (directories, regular files); symlinks and special
 * files are reached through DST_DIR and NAME, or their paths for the
 * xattr calls, which have no *at variant.
 */
struct node {
	int src_fd;
	int dst_fd;
	int dst_dir;
	const char *name;
	const char *src;
	const char *dst;
	const struct stat *st;
};

static guint file_id_hash(gconstpointer key)
{
	const struct file_id *id = key;

	return (guint)(id->ino ^ (id->ino >> 32) ^ (id->dev * 2654435761u));
}

static gboolean file_id_equal(gconstpointer a, gconstpointer b)
{
	const struct file_id *x = a, *y = b;

	return x->dev == y->dev && x->ino == y->ino;
}

static int copy_fail(struct copy *c, int err, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* Fill *c->error with "<what>: <strerror>"; returns -ERR. */
static int copy_fail(struct copy *c, int err, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(c->error, G_FILE_ERROR, g_file_error_from_errno(err),
		    "%s: %s", what, g_strerror(err));
	return -err;
}

/* -------------------------------------------------------------- xattrs */

static ssize_t node_listxattr(int fd, const char *path, char *buf, size_t size)
{
	return fd >= 0 ? flistxattr(fd, buf, size) : llistxattr(path, buf, size);
}

static ssize_t node_getxattr(int fd, const char *path, const char *name,
			     void *buf, size_t size)
{
	return fd >= 0 ? fgetxattr(fd, name, buf, size) :
			 lgetxattr(path, name, buf, size);
}

static int node_setxattr(const struct node *n, const char *name,
			 const void *value, size_t size)
{
	return n->dst_fd >= 0 ? fsetxattr(n->dst_fd, name, value, size, 0) :
				lsetxattr(n->dst, name, value, size, 0);
}

static int node_removexattr(const struct node *n, const char *name)
{
	return n->dst_fd >= 0 ? fremovexattr(n->dst_fd, name) :
				lremovexattr(n->dst, name);
}

/*
 * The source's xattr names (NUL-separated, *LEN bytes) in *NAMES.  The
 * list can grow between asking for its size and reading it: retry.
 */
static int list_xattrs(const struct node *n, char **names, ssize_t *len)
{
	ssize_t size;

	*names = NULL;
	for (;;) {
		size = node_listxattr(n->src_fd, n->src, NULL, 0);
		if (size <= 0)
			break;
		*names = g_malloc(size);
		size = node_listxattr(n->src_fd, n->src, *names, size);
		if (size >= 0 || errno != ERANGE)
			break;
		g_clear_pointer(names, g_free);
	}
	if (size < 0) {
		g_clear_pointer(names, g_free);
		return -errno;
	}
	*len = size;
	return 0;
}

/* The value of the source's xattr NAME, like list_xattrs. */
static int get_xattr(const struct node *n, const char *name, char **value,
		     ssize_t *len)
{
	ssize_t size;

	for (;;) {
		size = node_getxattr(n->src_fd, n->src, name, NULL, 0);
		if (size < 0)
			return -errno;
		/* One byte more, so an empty value still gets a buffer. */
		*value = g_malloc(size + 1);
		size = node_getxattr(n->src_fd, n->src, name, *value, size + 1);
		if (size >= 0)
			break;
		g_clear_pointer(value, g_free);
		if (errno != ERANGE)
			return -errno;
	}
	*len = size;
	return 0;
}

static bool xattr_skippable(const char *name, int err)
{
	if (err == EOPNOTSUPP)
		return true;
	if (err != EPERM && err != EACCES)
		return false;
	return g_str_has_prefix(name, "security.") ||
	       g_str_has_prefix(name, "trusted.");
}

static void note_skipped(struct copy *c, const char *name, const char *path)
{
	if (!c->skipped++)
		c->first_skipped = g_strdup_printf("%s on %s", name, path);
}

/*
 * A copy created under a directory that already has a default ACL (an
 * ancestor an earlier call copied) inherits it.  Drop the ACLs the source
 * does not have, or the copy would grant more than the original.
 */
static int drop_inherited_acls(struct copy *c, const struct node *n,
			       bool has_access, bool has_default)
{
	if (S_ISLNK(n->st->st_mode))
		return 0;
	if (!has_access && node_removexattr(n, ACL_ACCESS) < 0 &&
	    errno != ENODATA && errno != EOPNOTSUPP)
		return copy_fail(c, errno, "cannot remove %s of %s",
				 ACL_ACCESS, n->dst);
	if (!has_default && S_ISDIR(n->st->st_mode) &&
	    node_removexattr(n, ACL_DEFAULT) < 0 &&
	    errno != ENODATA && errno != EOPNOTSUPP)
		return copy_fail(c, errno, "cannot remove %s of %s",
				 ACL_DEFAULT, n->dst);
	return 0;
}

static int copy_xattrs(struct copy *c, const struct node *n)
{
	bool has_access = false, has_default = false;
	g_autofree char *names = NULL;
	const char *name;
	ssize_t len = 0;
	int ret;

	ret = list_xattrs(n, &names, &len);
	if (ret == -EOPNOTSUPP)
		len = 0;
	else if (ret < 0)
		return copy_fail(c, -ret, "cannot list extended attributes of %s",
				 n->src);

	for (name = names; name && name < names + len; name += strlen(name) + 1) {
		g_autofree char *value = NULL;
		ssize_t size = 0;

		ret = get_xattr(n, name, &value, &size);
		if (ret == -ENODATA)	/* removed since listed */
			continue;
		if (ret < 0)
			return copy_fail(c, -ret, "cannot read %s of %s",
					 name, n->src);
		if (node_setxattr(n, name, value, size) < 0) {
			if (!xattr_skippable(name, errno))
				return copy_fail(c, errno, "cannot set %s on %s",
						 name, n->dst);
			note_skipped(c, name, n->dst);
			continue;
		}
		has_access |= !strcmp(name, ACL_ACCESS);
		has_default |= !strcmp(name, ACL_DEFAULT);
	}
	return drop_inherited_acls(c, n, has_access, has_default);
}

/* ------------------------------------------------------------ metadata */

static int node_chown(const struct node *n, uid_t uid, gid_t gid)
{
	return n->dst_fd >= 0 ? fchown(n->dst_fd, uid, gid) :
		fchownat(n->dst_dir, n->name, uid, gid, AT_SYMLINK_NOFOLLOW);
}

/*
 * Give the copy the original's owner and group.  Without root (only the
 * unit tests), foreign owners cannot be kept: like cp -p, keep what we
 * can and report it, so the caller drops setuid and setgid: a copy of a
 * setuid-root program must not become setuid-us.
 */
static int copy_owner(struct copy *c, const struct node *n, bool *kept)
{
	const struct stat *st = n->st;

	*kept = true;
	if (node_chown(n, st->st_uid, st->st_gid) == 0)
		return 0;
	if ((errno != EPERM && errno != EINVAL) || geteuid() == 0)
		return copy_fail(c, errno, "cannot set owner of %s", n->dst);
	*kept = false;
	node_chown(n, (uid_t)-1, st->st_gid);
	return 0;
}

static int set_metadata(struct copy *c, const struct node *n)
{
	const struct stat *st = n->st;
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	mode_t mode = st->st_mode & 07777;
	bool owner_kept;
	int ret;

	ret = copy_owner(c, n, &owner_kept);
	if (ret < 0)
		return ret;
	if (!owner_kept)
		mode &= ~(mode_t)(S_ISUID | S_ISGID);

	ret = copy_xattrs(c, n);
	if (ret < 0)
		return ret;

	/* Symlinks have no mode of their own on Linux. */
	if (!S_ISLNK(st->st_mode)) {
		ret = n->dst_fd >= 0 ? fchmod(n->dst_fd, mode) :
			fchmodat(n->dst_dir, n->name, mode, 0);
		if (ret < 0)
			return copy_fail(c, errno, "cannot set mode of %s", n->dst);
	}

	ret = n->dst_fd >= 0 ? futimens(n->dst_fd, times) :
		utimensat(n->dst_dir, n->name, times, AT_SYMLINK_NOFOLLOW);
	if (ret < 0)
		return copy_fail(c, errno, "cannot set times of %s", n->dst);
	return 0;
}

/* --------------------------------------------------------------- nodes */

static int copy_node(struct copy *c, int src_dir, int dst_dir, const char *name,
		     const char *src, const char *dst, const struct stat *st);

static int copy_data(struct copy *c, int in, int out, const struct node *n)
{
	ssize_t got, put, done;

	for (;;) {
		got = read(in, c->buf, COPY_BUF_SIZE);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return copy_fail(c, errno, "cannot read %s", n->src);
		if (got == 0)
			return 0;
		for (done = 0; done < got; done += put) {
			put = write(out, c->buf + done, got - done);
			if (put < 0 && errno == EINTR)
				put = 0;
			else if (put < 0)
				return copy_fail(c, errno, "cannot write %s", n->dst);
		}
	}
}

static int open_source_file(int src_dir, const char *name)
{
	/* O_NONBLOCK: if the file was swapped for a FIFO since we looked,
	 * fail instead of hanging the set. */
	int flags = O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
	int fd;

	/* Reading must not touch the original's atime; O_NOATIME needs
	 * ownership or CAP_FOWNER. */
	fd = openat(src_dir, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(src_dir, name, flags);
	return fd;
}

static int copy_file(struct copy *c, int src_dir, int dst_dir, const char *name,
		     const char *src, const char *dst)
{
	struct node n = { .dst_dir = dst_dir, .name = name, .src = src, .dst = dst };
	struct stat st;
	int ret;

	n.src_fd = open_source_file(src_dir, name);
	if (n.src_fd < 0)
		return copy_fail(c, errno, "cannot open %s", src);
	/* The metadata of what we actually read, taken before reading. */
	if (fstat(n.src_fd, &st) < 0) {
		ret = copy_fail(c, errno, "cannot stat %s", src);
		goto close_src;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = copy_fail(c, EAGAIN, "%s changed while copying", src);
		goto close_src;
	}
	n.st = &st;
	n.dst_fd = openat(dst_dir, name,
			  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (n.dst_fd < 0) {
		ret = copy_fail(c, errno, "cannot create %s", dst);
		goto close_src;
	}
	ret = copy_data(c, n.src_fd, n.dst_fd, &n);
	if (ret < 0)
		goto close_dst;
	ret = set_metadata(c, &n);
close_dst:
	if (close(n.dst_fd) < 0 && ret == 0)
		ret = copy_fail(c, errno, "cannot write %s", dst);
close_src:
	close(n.src_fd);
	return ret;
}

static int copy_symlink(struct copy *c, int src_dir, int dst_dir, const char *name,
			const char *src, const char *dst, const struct stat *st)
{
	struct node n = { .src_fd = -1, .dst_fd = -1, .dst_dir = dst_dir,
			  .name = name, .src = src, .dst = dst, .st = st };
	g_autofree char *target = NULL;
	size_t size = PATH_MAX;
	ssize_t len;

	/* st_size is not reliable for every filesystem's symlinks. */
	for (;;) {
		target = g_malloc(size);
		len = readlinkat(src_dir, name, target, size);
		if (len < 0)
			return copy_fail(c, errno, "cannot read link %s", src);
		if ((size_t)len < size)
			break;
		g_clear_pointer(&target, g_free);
		size *= 2;
	}
	target[len] = '\0';
	if (symlinkat(target, dst_dir, name) < 0)
		return copy_fail(c, errno, "cannot create %s", dst);
	return set_metadata(c, &n);
}

/* FIFOs, sockets, device nodes. */
static int copy_special(struct copy *c, int dst_dir, const char *name,
			const char *src, const char *dst, const struct stat *st)
{
	struct node n = { .src_fd = -1, .dst_fd = -1, .dst_dir = dst_dir,
			  .name = name, .src = src, .dst = dst, .st = st };

	if (mknodat(dst_dir, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
		return copy_fail(c, errno, "cannot create %s", dst);
	return set_metadata(c, &n);
}

static int copy_entries(struct copy *c, DIR *dir, int dst_dir,
			const char *src, const char *dst)
{
	struct dirent *de;
	struct stat st;
	int ret;

	for (;;) {
		g_autofree char *src_child = NULL, *dst_child = NULL;

		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		src_child = g_build_filename(src, de->d_name, NULL);
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				kfs_debug("%s vanished while copying", src_child);
				continue;
			}
			return copy_fail(c, errno, "cannot stat %s", src_child);
		}
		dst_child = g_build_filename(dst, de->d_name, NULL);
		ret = copy_node(c, dirfd(dir), dst_dir, de->d_name,
				src_child, dst_child, &st);
		if (ret < 0)
			return ret;
	}
	if (errno)
		return copy_fail(c, errno, "cannot read directory %s", src);
	return 0;
}

static int copy_dir(struct copy *c, int src_dir, int dst_dir, const char *name,
		    const char *src, const char *dst, const struct stat *st)
{
	struct node n = { .dst_dir = dst_dir, .name = name, .src = src,
			  .dst = dst, .st = st };
	DIR *dir;
	int ret;

	n.src_fd = openat(src_dir, name,
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (n.src_fd < 0)
		return copy_fail(c, errno, "cannot open %s", src);
	dir = fdopendir(n.src_fd);
	if (!dir) {
		ret = copy_fail(c, errno, "cannot open %s", src);
		close(n.src_fd);
		return ret;
	}
	/* Owner-only until its own metadata is set, after its contents. */
	if (mkdirat(dst_dir, name, 0700) < 0) {
		ret = copy_fail(c, errno, "cannot create %s", dst);
		goto close_src;
	}
	n.dst_fd = openat(dst_dir, name,
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (n.dst_fd < 0) {
		ret = copy_fail(c, errno, "cannot open %s", dst);
		goto close_src;
	}
	ret = copy_entries(c, dir, n.dst_fd, src, dst);
	if (ret == 0)
		ret = set_metadata(c, &n);
	close(n.dst_fd);
close_src:
	closedir(dir);
	return ret;
}

/*
 * A file with more than one link that we have copied before becomes a
 * link to that copy.  Returns 1 if linked, 0 if it must be copied.
 */
static int link_copied(struct copy *c, int dst_dir, const char *name,
		       const char *dst, const struct stat *st)
{
	struct file_id id = { st->st_dev, st->st_ino };
	const char *first;

	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return 0;
	first = g_hash_table_lookup(c->links, &id);
	if (!first)
		return 0;
	if (linkat(AT_FDCWD, first, dst_dir, name, 0) < 0)
		return copy_fail(c, errno, "cannot link %s to %s", dst, first);
	return 1;
}

static void remember_copied(struct copy *c, const char *dst,
			    const struct stat *st)
{
	struct file_id *id;

	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return;
	id = g_new(struct file_id, 1);
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	g_hash_table_insert(c->links, id, g_strdup(dst));
}

static int copy_node(struct copy *c, int src_dir, int dst_dir, const char *name,
		     const char *src, const char *dst, const struct stat *st)
{
	int ret;

	ret = link_copied(c, dst_dir, name, dst, st);
	if (ret != 0)
		return ret < 0 ? ret : 0;

	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		return copy_dir(c, src_dir, dst_dir, name, src, dst, st);
	case S_IFREG:
		ret = copy_file(c, src_dir, dst_dir, name, src, dst);
		break;
	case S_IFLNK:
		ret = copy_symlink(c, src_dir, dst_dir, name, src, dst, st);
		break;
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		ret = copy_special(c, dst_dir, name, src, dst, st);
		break;
	default:
		return copy_fail(c, EINVAL, "%s: unknown file type", src);
	}
	if (ret == 0)
		remember_copied(c, dst, st);
	return ret;
}

/* ----------------------------------------------------------- ancestors */

/*
 * Copy COMPS[0] (and below) from SRC_DIR to DST_DIR; SRC and DST are the
 * paths of those directories.  Every component but the last is an
 * ancestor of what was asked for: it is created (or reused, when an
 * earlier path of the same [copy:NAME] made it) and gets the original's
 * metadata after the copy beneath it is complete.
 */
static int copy_path(struct copy *c, int src_dir, int dst_dir, char **comps,
		     const char *src, const char *dst)
{
	g_autofree char *src_path = g_build_filename(src, comps[0], NULL);
	g_autofree char *dst_path = g_build_filename(dst, comps[0], NULL);
	struct node n = { .dst_dir = dst_dir, .name = comps[0],
			  .src = src_path, .dst = dst_path };
	struct stat st;
	int ret;

	if (!comps[1]) {
		if (fstatat(src_dir, comps[0], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return copy_fail(c, errno, "cannot stat %s", src_path);
		return copy_node(c, src_dir, dst_dir, comps[0],
				 src_path, dst_path, &st);
	}

	/* Ancestors are followed through symlinks. */
	n.src_fd = openat(src_dir, comps[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (n.src_fd < 0)
		return copy_fail(c, errno, "cannot open %s", src_path);
	if (fstat(n.src_fd, &st) < 0) {
		ret = copy_fail(c, errno, "cannot stat %s", src_path);
		goto close_src;
	}
	n.st = &st;
	if (mkdirat(dst_dir, comps[0], 0700) < 0 && errno != EEXIST) {
		ret = copy_fail(c, errno, "cannot create %s", dst_path);
		goto close_src;
	}
	n.dst_fd = openat(dst_dir, comps[0],
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (n.dst_fd < 0) {
		ret = copy_fail(c, errno, "cannot open %s", dst_path);
		goto close_src;
	}
	ret = copy_path(c, n.src_fd, n.dst_fd, comps + 1, src_path, dst_path);
	if (ret == 0)
		ret = set_metadata(c, &n);
	close(n.dst_fd);
close_src:
	close(n.src_fd);
	return ret;
}

/* SRC's components, without empty and "." ones; NULL if one is "..". */
static char **split_source(const char *src)
{
	char **parts = g_strsplit(src, "/", -1);
	GPtrArray *comps = g_ptr_array_new_with_free_func(g_free);
	char **p;

	for (p = parts; *p; p++) {
		if (!**p || !strcmp(*p, "."))
			continue;
		if (!strcmp(*p, "..")) {
			g_strfreev(parts);
			g_ptr_array_free(comps, TRUE);
			return NULL;
		}
		g_ptr_array_add(comps, g_strdup(*p));
	}
	g_strfreev(parts);
	g_ptr_array_add(comps, NULL);
	return (char **)g_ptr_array_free(comps, FALSE);
}

int kfs_copy_tree(const char *src, const char *dest_root, GError **error)
{
	struct copy c = { .error = error };
	int root_fd, dst_fd, ret;
	char **comps;

	/* ".." would climb out of DEST_ROOT, "/" alone is no config tree. */
	comps = src[0] == '/' ? split_source(src) : NULL;
	if (!comps || !comps[0]) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "cannot copy %s: not an absolute path below / "
			    "without \"..\"", src);
		ret = -EINVAL;
		goto free_comps;
	}
	root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		ret = copy_fail(&c, errno, "cannot open /");
		goto free_comps;
	}
	dst_fd = open(dest_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dst_fd < 0) {
		ret = copy_fail(&c, errno, "cannot open %s", dest_root);
		goto close_root;
	}

	c.links = g_hash_table_new_full(file_id_hash, file_id_equal, g_free, g_free);
	c.buf = g_malloc(COPY_BUF_SIZE);
	ret = copy_path(&c, root_fd, dst_fd, comps, "/", dest_root);
	if (c.skipped)
		kfs_warn("copying %s: %u extended attribute(s) not supported by "
			 "the destination and not copied, first: %s",
			 src, c.skipped, c.first_skipped);
	g_free(c.first_skipped);
	g_free(c.buf);
	g_hash_table_destroy(c.links);

	close(dst_fd);
close_root:
	close(root_fd);
free_comps:
	g_strfreev(comps);
	return ret;
}
