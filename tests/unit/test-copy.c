/* kolabfs: unit tests of kfs_copy_tree (snap/copy.c).  Run with or
 * without root; what needs one or the other is skipped with a reason. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "snap/copy.h"

struct fixture {
	char *tmp;      /* private temporary directory */
	char *src;      /* tmp/src: where source trees are built */
	char *dst;      /* tmp/dst: DEST_ROOT */
};

/* Distinct, nanosecond-exact times, all in the past. */
#define T(sec, nsec) ((struct timespec){ (sec), (nsec) })

static void rm_rf(int dir_fd, const char *name)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dir_fd, name, 0);
		return;
	}
	/* The tests make read-only directories. */
	fchmodat(dir_fd, name, 0700, 0);
	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_rf(dirfd(dir), de->d_name);
	closedir(dir);
	unlinkat(dir_fd, name, AT_REMOVEDIR);
}

static void fixture_setup(struct fixture *f, gconstpointer data)
{
	GError *error = NULL;

	f->tmp = g_dir_make_tmp("kfs-copy-XXXXXX", &error);
	g_assert_no_error(error);
	f->src = g_build_filename(f->tmp, "src", NULL);
	f->dst = g_build_filename(f->tmp, "dst", NULL);
	g_assert_cmpint(mkdir(f->src, 0755), ==, 0);
	g_assert_cmpint(mkdir(f->dst, 0700), ==, 0);
}

static void fixture_teardown(struct fixture *f, gconstpointer data)
{
	rm_rf(AT_FDCWD, f->tmp);
	g_free(f->tmp);
	g_free(f->src);
	g_free(f->dst);
}

static char *path_in(const char *dir, const char *name)
{
	return g_build_filename(dir, name, NULL);
}

/* Where kfs_copy_tree puts the copy of the absolute path SRC. */
static char *copy_of(struct fixture *f, const char *src)
{
	return g_build_filename(f->dst, src, NULL);
}

static void make_file(const char *path, const char *data, size_t len, mode_t mode)
{
	GError *error = NULL;

	g_file_set_contents(path, data, len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(path, mode), ==, 0);
}

static void set_times(const char *path, struct timespec atime,
		      struct timespec mtime)
{
	struct timespec ts[2] = { atime, mtime };

	g_assert_cmpint(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), ==, 0);
}

static struct stat lstat_ok(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		g_error("lstat %s: %s", path, g_strerror(errno));
	return st;
}

/* DST has EXPECT's type, mode, owner, size and times (to the ns). */
static void assert_same_meta(const struct stat *expect, const char *dst)
{
	struct stat st = lstat_ok(dst);

	g_test_message("checking %s", dst);
	g_assert_cmpuint(st.st_mode, ==, expect->st_mode);
	g_assert_cmpuint(st.st_uid, ==, expect->st_uid);
	g_assert_cmpuint(st.st_gid, ==, expect->st_gid);
	if (!S_ISDIR(st.st_mode))
		g_assert_cmpint(st.st_size, ==, expect->st_size);
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		g_assert_cmpuint(st.st_rdev, ==, expect->st_rdev);
	g_assert_cmpint(st.st_mtim.tv_sec, ==, expect->st_mtim.tv_sec);
	g_assert_cmpint(st.st_mtim.tv_nsec, ==, expect->st_mtim.tv_nsec);
	g_assert_cmpint(st.st_atim.tv_sec, ==, expect->st_atim.tv_sec);
	g_assert_cmpint(st.st_atim.tv_nsec, ==, expect->st_atim.tv_nsec);
}

static void assert_same_content(const char *a, const char *b)
{
	g_autofree char *x = NULL, *y = NULL;
	gsize xlen, ylen;

	g_assert_true(g_file_get_contents(a, &x, &xlen, NULL));
	g_assert_true(g_file_get_contents(b, &y, &ylen, NULL));
	g_assert_cmpmem(x, xlen, y, ylen);
}

static void copy_ok(const char *src, const char *dest_root)
{
	GError *error = NULL;

	g_assert_cmpint(kfs_copy_tree(src, dest_root, &error), ==, 0);
	g_assert_no_error(error);
}

/* ------------------------------------------------------------------ */

static void make_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(strlen(path), <, sizeof(sun.sun_path));
	strcpy(sun.sun_path, path);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	close(fd);
}

enum { N_TREE = 10 };
static const char *const tree_paths[N_TREE] = {
	"", "file", "big", "empty", "mode", "sub", "sub/link", "sym", "fifo",
	"sock",
};

static void test_tree(struct fixture *f, gconstpointer data)
{
	g_autofree char *tree = path_in(f->src, "tree");
	g_autofree char *copy = copy_of(f, tree);
	g_autofree char *big = g_malloc(300000);
	struct stat before[N_TREE], a, b;
	char target[64];
	ssize_t len;
	size_t i;

	for (i = 0; i < 300000; i++)
		big[i] = (char)(i * 7 + i / 251);

	g_assert_cmpint(mkdir(tree, 0700), ==, 0);
	g_assert_cmpint(chdir(tree), ==, 0);
	make_file("file", "hello\n", 6, 0640);
	make_file("big", big, 300000, 0600);
	make_file("empty", "", 0, 0644);
	/* We own it, so even without root setuid and sticky stay. */
	make_file("mode", "#!/bin/sh\n", 10, 07755);
	g_assert_cmpint(mkdir("sub", 0700), ==, 0);
	g_assert_cmpint(link("file", "sub/link"), ==, 0);
	g_assert_cmpint(symlink("file", "sym"), ==, 0);
	g_assert_cmpint(mkfifo("fifo", 0620), ==, 0);
	make_socket("sock");
	g_assert_cmpint(chmod("sock", 0751), ==, 0);
	/* Read-only directories still get filled. */
	g_assert_cmpint(chmod("sub", 0500), ==, 0);
	g_assert_cmpint(chmod(".", 0751), ==, 0);
	for (i = 0; i < N_TREE; i++)
		set_times(*tree_paths[i] ? tree_paths[i] : ".",
			  T(1000000000 + i, 123456789 - i),
			  T(1100000000 + i, 987654321 - i));
	g_assert_cmpint(chdir("/"), ==, 0);

	for (i = 0; i < N_TREE; i++) {
		g_autofree char *p = path_in(tree, tree_paths[i]);
		before[i] = lstat_ok(p);
	}

	copy_ok(tree, f->dst);

	for (i = 0; i < N_TREE; i++) {
		g_autofree char *p = path_in(copy, tree_paths[i]);
		assert_same_meta(&before[i], p);
	}
	for (i = 1; i < 5; i++) {
		g_autofree char *p = path_in(tree, tree_paths[i]);
		g_autofree char *q = path_in(copy, tree_paths[i]);
		assert_same_content(p, q);
	}

	/* The hard link is one file with two names, as in the source. */
	{
		g_autofree char *p = path_in(copy, "file");
		g_autofree char *q = path_in(copy, "sub/link");
		a = lstat_ok(p);
		b = lstat_ok(q);
		g_assert_cmpuint(a.st_ino, ==, b.st_ino);
		g_assert_cmpuint(a.st_nlink, ==, 2);
	}
	{
		g_autofree char *p = path_in(copy, "sym");
		len = readlink(p, target, sizeof(target));
		g_assert_cmpint(len, ==, 4);
		g_assert_cmpmem(target, len, "file", 4);
	}
}

/* The ancestors of SRC get the original ancestors' mode and times, also
 * after a second path of the same copy was added beneath them. */
static void test_ancestors(struct fixture *f, gconstpointer data)
{
	g_autofree char *a = path_in(f->src, "a");
	g_autofree char *b = path_in(f->src, "b");
	g_autofree char *copy_src = copy_of(f, f->src);
	g_autofree char *copy_tmp = copy_of(f, f->tmp);
	struct stat src_before, tmp_before;

	make_file(a, "a", 1, 0600);
	make_file(b, "b", 1, 0604);
	g_assert_cmpint(chmod(f->src, 0751), ==, 0);
	set_times(f->src, T(1200000000, 1), T(1300000000, 999999999));
	set_times(f->tmp, T(1200000001, 2), T(1300000001, 3));
	src_before = lstat_ok(f->src);
	tmp_before = lstat_ok(f->tmp);

	copy_ok(a, f->dst);
	assert_same_meta(&src_before, copy_src);
	assert_same_meta(&tmp_before, copy_tmp);

	copy_ok(b, f->dst);
	assert_same_meta(&src_before, copy_src);
	assert_same_meta(&tmp_before, copy_tmp);
	{
		g_autofree char *p = copy_of(f, a);
		g_autofree char *q = copy_of(f, b);
		g_assert_cmpint(access(p, F_OK), ==, 0);
		g_assert_cmpint(access(q, F_OK), ==, 0);
	}
}

/* An ancestor that is a symlink becomes a directory like its target. */
static void test_symlinked_ancestor(struct fixture *f, gconstpointer data)
{
	g_autofree char *real = path_in(f->src, "real");
	g_autofree char *alias = path_in(f->src, "alias");
	g_autofree char *file = path_in(alias, "file");
	g_autofree char *copy_alias = copy_of(f, alias);
	g_autofree char *copy_file = copy_of(f, file);
	struct stat real_before, file_before;

	g_assert_cmpint(mkdir(real, 0710), ==, 0);
	g_assert_cmpint(symlink("real", alias), ==, 0);
	make_file(file, "f", 1, 0600);
	set_times(real, T(1400000000, 5), T(1400000001, 6));
	real_before = lstat_ok(real);
	file_before = lstat_ok(file);

	copy_ok(file, f->dst);
	assert_same_meta(&real_before, copy_alias);
	assert_same_meta(&file_before, copy_file);
}

/* A symlink as SRC is copied as a symlink, not followed. */
static void test_symlink_top(struct fixture *f, gconstpointer data)
{
	g_autofree char *link = path_in(f->src, "localtime");
	g_autofree char *copy = copy_of(f, link);
	char target[64];
	ssize_t len;

	g_assert_cmpint(symlink("/nonexistent/zone", link), ==, 0);
	copy_ok(link, f->dst);
	len = readlink(copy, target, sizeof(target));
	g_assert_cmpint(len, ==, 17);
	g_assert_cmpmem(target, len, "/nonexistent/zone", 17);
}

static void assert_copy_fails(const char *src, const char *dest_root, int err,
			      const char *in_message)
{
	GError *error = NULL;

	g_assert_cmpint(kfs_copy_tree(src, dest_root, &error), ==, -err);
	g_assert_nonnull(error);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, in_message));
	g_error_free(error);
}

static void test_errors(struct fixture *f, gconstpointer data)
{
	g_autofree char *missing = path_in(f->src, "missing");
	g_autofree char *file = path_in(f->src, "file");
	g_autofree char *nodest = path_in(f->tmp, "nodest");
	g_autofree char *dotdot = g_strconcat(f->src, "/../src/file", NULL);

	assert_copy_fails("relative/path", f->dst, EINVAL, "relative/path");
	assert_copy_fails("/", f->dst, EINVAL, "/");
	assert_copy_fails(dotdot, f->dst, EINVAL, dotdot);
	assert_copy_fails(missing, f->dst, ENOENT, missing);

	make_file(file, "x", 1, 0600);
	assert_copy_fails(file, nodest, ENOENT, nodest);
	copy_ok(file, f->dst);
	/* Twice the same path in one [copy:NAME]. */
	assert_copy_fails(file, f->dst, EEXIST, file);
}

/* Without root, an unreadable file fails the copy, naming the file. */
static void test_unreadable(struct fixture *f, gconstpointer data)
{
	g_autofree char *file = path_in(f->src, "secret");

	if (geteuid() == 0) {
		g_test_skip("root reads everything");
		return;
	}
	make_file(file, "x", 1, 0000);
	assert_copy_fails(f->src, f->dst, EACCES, file);
}

static bool xattrs_supported(const char *path, const char *name,
			     const void *value, size_t size)
{
	if (lsetxattr(path, name, value, size, 0) == 0)
		return true;
	if (errno != EOPNOTSUPP)
		g_error("setxattr %s on %s: %s", name, path, g_strerror(errno));
	return false;
}

static void assert_xattr(const char *path, const char *name,
			 const void *value, size_t size)
{
	char buf[256];
	ssize_t len = lgetxattr(path, name, buf, sizeof(buf));

	if (len < 0)
		g_error("getxattr %s on %s: %s", name, path, g_strerror(errno));
	g_assert_cmpmem(buf, len, value, size);
}

static void test_user_xattrs(struct fixture *f, gconstpointer data)
{
	g_autofree char *dir = path_in(f->src, "d");
	g_autofree char *file = path_in(dir, "f");
	g_autofree char *copy = copy_of(f, dir);
	g_autofree char *copy_file = copy_of(f, file);
	static const char bin[] = { 0, 1, 2, 0, (char)0xff };

	g_assert_cmpint(mkdir(dir, 0755), ==, 0);
	make_file(file, "x", 1, 0644);
	if (!xattrs_supported(file, "user.kolabfs", "v", 1)) {
		g_test_skip("the temporary directory's filesystem has no user xattrs");
		return;
	}
	g_assert_true(xattrs_supported(file, "user.binary", bin, sizeof(bin)));
	g_assert_true(xattrs_supported(file, "user.empty", "", 0));
	g_assert_true(xattrs_supported(dir, "user.dir", "dv", 2));

	copy_ok(dir, f->dst);
	assert_xattr(copy_file, "user.kolabfs", "v", 1);
	assert_xattr(copy_file, "user.binary", bin, sizeof(bin));
	assert_xattr(copy_file, "user.empty", "", 0);
	assert_xattr(copy, "user.dir", "dv", 2);
}

/* The on-disk form of a POSIX ACL (linux/posix_acl_xattr.h): version 2,
 * then {tag, perm, id} little-endian. */
struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static const struct acl_entry acl_user_1234[] = {
	{ 0x01, 6, UINT32_MAX },        /* user::rw- */
	{ 0x02, 4, 1234 },              /* user:1234:r-- */
	{ 0x04, 4, UINT32_MAX },        /* group::r-- */
	{ 0x10, 4, UINT32_MAX },        /* mask::r-- */
	{ 0x20, 0, UINT32_MAX },        /* other::--- */
};

static GBytes *acl_bytes(const struct acl_entry *entries, size_t n)
{
	GByteArray *acl = g_byte_array_new();
	uint32_t version = GUINT32_TO_LE(2);
	size_t i;

	g_byte_array_append(acl, (const guint8 *)&version, 4);
	for (i = 0; i < n; i++) {
		struct acl_entry e = {
			GUINT16_TO_LE(entries[i].tag),
			GUINT16_TO_LE(entries[i].perm),
			GUINT32_TO_LE(entries[i].id),
		};
		g_byte_array_append(acl, (const guint8 *)&e, sizeof(e));
	}
	return g_byte_array_free_to_bytes(acl);
}

/*
 * ACLs are copied; and a sibling copied later into a directory whose copy
 * already carries a default ACL does not keep the inherited one.
 */
static void test_acls(struct fixture *f, gconstpointer data)
{
	g_autofree char *dir = path_in(f->src, "d");
	g_autofree char *with = path_in(dir, "with-acl");
	g_autofree char *without = path_in(dir, "without-acl");
	g_autofree char *copy_with = copy_of(f, with);
	g_autofree char *copy_without = copy_of(f, without);
	g_autofree char *copy_dir = copy_of(f, dir);
	g_autoptr(GBytes) acl = acl_bytes(acl_user_1234, G_N_ELEMENTS(acl_user_1234));
	struct stat before;
	gsize size;
	const void *value = g_bytes_get_data(acl, &size);

	g_assert_cmpint(mkdir(dir, 0750), ==, 0);
	make_file(with, "x", 1, 0640);
	make_file(without, "y", 1, 0600);
	if (!xattrs_supported(with, "system.posix_acl_access", value, size)) {
		g_test_skip("the temporary directory's filesystem has no ACLs");
		return;
	}
	g_assert_true(xattrs_supported(dir, "system.posix_acl_default", value, size));
	before = lstat_ok(without);

	copy_ok(with, f->dst);
	copy_ok(without, f->dst);

	assert_xattr(copy_with, "system.posix_acl_access", value, size);
	assert_xattr(copy_dir, "system.posix_acl_default", value, size);
	g_assert_cmpint(lgetxattr(copy_without, "system.posix_acl_access", NULL, 0), <, 0);
	g_assert_cmpint(errno, ==, ENODATA);
	assert_same_meta(&before, copy_without);
}

/* Owners other than ours, setuid with them, device nodes: need root. */
static void test_owner(struct fixture *f, gconstpointer data)
{
	g_autofree char *file = path_in(f->src, "suid");
	g_autofree char *link = path_in(f->src, "link");
	g_autofree char *copy = copy_of(f, f->src);
	g_autofree char *copy_file = copy_of(f, file);
	g_autofree char *copy_link = copy_of(f, link);
	g_autofree char *dev = path_in(f->src, "null");
	g_autofree char *copy_dev = copy_of(f, dev);
	struct stat before_file, before_link, before_dir, before_dev;

	if (geteuid() != 0) {
		g_test_skip("needs root to give files away");
		return;
	}
	make_file(file, "x", 1, 0600);
	g_assert_cmpint(chown(file, 1234, 5678), ==, 0);
	g_assert_cmpint(chmod(file, 06750), ==, 0);
	g_assert_cmpint(symlink("suid", link), ==, 0);
	g_assert_cmpint(lchown(link, 4321, 8765), ==, 0);
	g_assert_cmpint(chown(f->src, 2222, 3333), ==, 0);
	g_assert_cmpint(mknod(dev, S_IFCHR | 0640, makedev(1, 3)), ==, 0);
	g_assert_cmpint(chown(dev, 1234, 5678), ==, 0);
	before_dev = lstat_ok(dev);
	before_file = lstat_ok(file);
	before_link = lstat_ok(link);
	before_dir = lstat_ok(f->src);

	copy_ok(f->src, f->dst);
	assert_same_meta(&before_file, copy_file);
	assert_same_meta(&before_link, copy_link);
	assert_same_meta(&before_dir, copy);
	assert_same_meta(&before_dev, copy_dev);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
	g_test_add("/copy/" name, struct fixture, NULL, fixture_setup, fn, \
		   fixture_teardown)
	ADD("tree", test_tree);
	ADD("ancestors", test_ancestors);
	ADD("symlinked-ancestor", test_symlinked_ancestor);
	ADD("symlink-top", test_symlink_top);
	ADD("errors", test_errors);
	ADD("unreadable", test_unreadable);
	ADD("user-xattrs", test_user_xattrs);
	ADD("acls", test_acls);
	ADD("owner", test_owner);
#undef ADD
	return g_test_run();
}
