/*
 * kolabfs: tests of snap/btrfs.c on a real btrfs.  Needs root; not run by
 * `make check`:
 *
 *	make tests/root/test-btrfs && sudo tests/root/test-btrfs
 *
 * It works in a private mount namespace on two loop-mounted images in a
 * temporary directory (mount -o loop sets autoclear), so even a crash
 * leaves no mount or loop device behind.  Without root, mkfs.btrfs or
 * btrfs support, every test is skipped with the reason.
 *
 * Layout:
 *	TMP/a.img  mounted at TMP/a     the filesystem of most tests
 *	TMP/b.img  mounted at TMP/a/b   another btrfs, inside the first
 *	subvolume "top" of a, mounted at TMP/top (its parent TMP is not a)
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/btrfs.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "snap/btrfs.h"

static struct {
	char *skip;     /* why every test is skipped, or NULL */
	char *tmp;
	char *a;        /* mount point of a.img */
	char *b;        /* mount point of b.img, inside a */
	char *top;      /* mount point of a's subvolume "top" */
} env;

/* ------------------------------------------------------------ helpers */

static bool run(const char *const *argv, char **why)
{
	g_autofree char *err = NULL;
	GError *error = NULL;
	int status;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
			  G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
			  &status, &error)) {
		*why = g_strdup_printf("%s: %s", argv[0], error->message);
		g_error_free(error);
		return false;
	}
	if (!g_spawn_check_wait_status(status, &error)) {
		*why = g_strdup_printf("%s: %s: %s", argv[0], error->message,
				       g_strstrip(err));
		g_error_free(error);
		return false;
	}
	return true;
}

static bool make_fs(const char *img, const char *mnt, char **why)
{
	const char *mkfs[] = { "mkfs.btrfs", "-q", img, NULL };
	const char *mount[] = { "mount", "-t", "btrfs", "-o", "loop", img, mnt, NULL };
	int fd;

	fd = open(img, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 256 << 20) < 0) {
		*why = g_strdup_printf("%s: %s", img, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	if (mkdir(mnt, 0755) < 0 && errno != EEXIST) {
		*why = g_strdup_printf("%s: %s", mnt, g_strerror(errno));
		return false;
	}
	return run(mkfs, why) && run(mount, why);
}

static void make_subvolume(const char *path)
{
	g_autofree char *parent = g_path_get_dirname(path);
	g_autofree char *name = g_path_get_basename(path);
	struct btrfs_ioctl_vol_args args = { 0 };
	int fd;

	fd = open(parent, O_RDONLY | O_DIRECTORY);
	g_assert_cmpint(fd, >=, 0);
	g_strlcpy(args.name, name, sizeof(args.name));
	if (ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args) < 0)
		g_error("creating subvolume %s: %s", path, g_strerror(errno));
	close(fd);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	GError *error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
}

static void assert_file(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *got = NULL;

	if (!text) {
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
		return;
	}
	g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
	g_assert_cmpstr(got, ==, text);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---------------------------------------------------------- the tests */

static void test_is_subvolume(void)
{
	g_autofree char *vol = g_build_filename(env.a, "is-vol", NULL);
	g_autofree char *dir = g_build_filename(vol, "dir", NULL);
	g_autofree char *missing = g_build_filename(env.a, "missing", NULL);

	make_subvolume(vol);
	g_assert_cmpint(mkdir(dir, 0755), ==, 0);

	g_assert_cmpint(kfs_btrfs_is_subvolume(vol), ==, 0);
	g_assert_cmpint(kfs_btrfs_is_subvolume(env.a), ==, 0);    /* id 5 */
	g_assert_cmpint(kfs_btrfs_is_subvolume(env.top), ==, 0);
	g_assert_cmpint(kfs_btrfs_is_subvolume(dir), ==, -EINVAL);
	g_assert_cmpint(kfs_btrfs_is_subvolume(missing), ==, -ENOENT);
	g_assert_cmpint(kfs_btrfs_is_subvolume("/proc"), ==, -ENOTTY);
}

static void test_snapshot_dir(void)
{
	g_autofree char *vol = g_build_filename(env.a, "dir-vol", NULL);
	g_autofree char *vol_slash = g_strconcat(vol, "/", NULL);
	g_autofree char *beside = g_build_filename(env.a, ".kolabfs-snapshots", NULL);
	g_autofree char *in_top = g_build_filename(env.top, ".kolabfs-snapshots", NULL);
	g_autofree char *in_b = g_build_filename(env.b, ".kolabfs-snapshots", NULL);
	g_autofree char *in_a = g_build_filename(env.a, ".kolabfs-snapshots", NULL);
	g_autofree char *dir = NULL;

	make_subvolume(vol);

	/* Parent on the same filesystem: beside the origin. */
	dir = kfs_btrfs_snapshot_dir(vol);
	g_assert_cmpstr(dir, ==, beside);
	g_clear_pointer(&dir, g_free);
	dir = kfs_btrfs_snapshot_dir(vol_slash);
	g_assert_cmpstr(dir, ==, beside);
	g_clear_pointer(&dir, g_free);

	/* A subvolume mounted on its own, parent on another filesystem. */
	dir = kfs_btrfs_snapshot_dir(env.top);
	g_assert_cmpstr(dir, ==, in_top);
	g_clear_pointer(&dir, g_free);

	/* Parent on btrfs, but another one: the fsid tells them apart. */
	dir = kfs_btrfs_snapshot_dir(env.b);
	g_assert_cmpstr(dir, ==, in_b);
	g_clear_pointer(&dir, g_free);

	/* The top of a filesystem mounted on a non-btrfs directory. */
	dir = kfs_btrfs_snapshot_dir(env.a);
	g_assert_cmpstr(dir, ==, in_a);
	g_clear_pointer(&dir, g_free);

	errno = 0;
	g_assert_null(kfs_btrfs_snapshot_dir("/proc"));
	g_assert_cmpint(errno, ==, ENOTTY);
}

/* Snapshot ORIGIN at <snapshot_dir>/NAME, check it, destroy it. */
static void check_lifecycle(const char *origin, const char *name)
{
	g_autofree char *sdir = kfs_btrfs_snapshot_dir(origin);
	g_autofree char *snap = g_build_filename(sdir, name, NULL);
	g_autofree char *newfile = g_build_filename(snap, "new", NULL);
	struct stat st;
	int fd;

	g_assert_nonnull(sdir);
	write_file(origin, "data", "before");
	g_assert_false(exists(sdir));

	g_assert_cmpint(kfs_btrfs_snapshot_create(origin, snap), ==, 0);
	g_assert_cmpint(lstat(sdir, &st), ==, 0);
	g_assert_cmpuint(st.st_mode, ==, S_IFDIR | 0700);
	g_assert_cmpint(kfs_btrfs_is_subvolume(snap), ==, 0);

	/* Content is as of the snapshot. */
	write_file(origin, "data", "after");
	write_file(origin, "later", "later");
	assert_file(snap, "data", "before");
	assert_file(snap, "later", NULL);

	/* Read-only. */
	fd = open(newfile, O_WRONLY | O_CREAT, 0600);
	g_assert_cmpint(fd, ==, -1);
	g_assert_cmpint(errno, ==, EROFS);
	{
		g_autofree char *data = g_build_filename(snap, "data", NULL);
		fd = open(data, O_WRONLY);
		g_assert_cmpint(fd, ==, -1);
		g_assert_cmpint(errno, ==, EROFS);
	}

	g_assert_cmpint(kfs_btrfs_snapshot_create(origin, snap), ==, -EEXIST);

	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, 0);
	g_assert_false(exists(snap));
	/* The last snapshot takes its directory with it. */
	g_assert_false(exists(sdir));
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, -ENOENT);
	assert_file(origin, "data", "after");
}

static void test_lifecycle_beside(void)
{
	g_autofree char *vol = g_build_filename(env.a, "beside-vol", NULL);

	make_subvolume(vol);
	check_lifecycle(vol, "beside-vol@1");
}

static void test_lifecycle_inside(void)
{
	check_lifecycle(env.top, "top@1");
	check_lifecycle(env.b, "b@1");
}

/*
 * With snapshots inside the origin, a second snapshot shows the first as
 * an empty directory (btrfs does not recurse into nested subvolumes), and
 * the snapshot directory stays until its last snapshot is gone.
 */
static void test_nested(void)
{
	g_autofree char *sdir = kfs_btrfs_snapshot_dir(env.top);
	g_autofree char *s1 = g_build_filename(sdir, "top@n1", NULL);
	g_autofree char *s2 = g_build_filename(sdir, "top@n2", NULL);
	g_autofree char *s1_in_s2 = g_build_filename(s2, ".kolabfs-snapshots",
						     "top@n1", NULL);
	g_autoptr(GDir) dir = NULL;

	g_assert_cmpint(kfs_btrfs_snapshot_create(env.top, s1), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_create(env.top, s2), ==, 0);
	dir = g_dir_open(s1_in_s2, 0, NULL);
	g_assert_nonnull(dir);
	g_assert_null(g_dir_read_name(dir));
	g_assert_cmpint(kfs_btrfs_is_subvolume(s1_in_s2), ==, -EINVAL);

	g_assert_cmpint(kfs_btrfs_snapshot_destroy(s1), ==, 0);
	g_assert_true(exists(sdir));
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(s2), ==, 0);
	g_assert_false(exists(sdir));
}

/* Destroy refuses what is not one of our snapshots and touches nothing. */
static void test_destroy_refuses(void)
{
	g_autofree char *vol = g_build_filename(env.a, "refuse-vol", NULL);
	g_autofree char *dir = g_build_filename(vol, "dir", NULL);
	g_autofree char *file = g_build_filename(vol, "file", NULL);
	g_autofree char *link = g_build_filename(env.a, "refuse-link", NULL);
	g_autofree char *sdir = kfs_btrfs_snapshot_dir(env.a);
	g_autofree char *snap = g_build_filename(sdir, "a@refuse", NULL);
	g_autofree char *link_to_snap = g_build_filename(env.a, "refuse-snaplink", NULL);

	make_subvolume(vol);
	g_assert_cmpint(mkdir(dir, 0755), ==, 0);
	write_file(vol, "file", "x");
	g_assert_cmpint(symlink(vol, link), ==, 0);

	g_assert_cmpint(kfs_btrfs_snapshot_destroy(dir), ==, -EINVAL);
	g_assert_true(exists(dir));
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(file), ==, -EINVAL);
	/* A read-write subvolume is somebody's data, not our snapshot. */
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(vol), ==, -EINVAL);
	g_assert_cmpint(kfs_btrfs_is_subvolume(vol), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(link), ==, -EINVAL);
	g_assert_cmpint(kfs_btrfs_is_subvolume(vol), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(env.tmp), ==, -EINVAL);
	g_assert_true(exists(env.tmp));

	/* Not even a symlink to a real snapshot: it is not one itself. */
	g_assert_cmpint(kfs_btrfs_snapshot_create(env.a, snap), ==, 0);
	g_assert_cmpint(symlink(snap, link_to_snap), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(link_to_snap), ==, -EINVAL);
	g_assert_cmpint(kfs_btrfs_is_subvolume(snap), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, 0);
	g_assert_false(exists(sdir));
}

/* Create refuses a subdirectory (the ioctl would snapshot the whole
 * subvolume around it) and leaves nothing behind on failure. */
static void test_create_refuses(void)
{
	g_autofree char *vol = g_build_filename(env.a, "create-vol", NULL);
	g_autofree char *dir = g_build_filename(vol, "dir", NULL);
	g_autofree char *sdir = g_build_filename(env.a, ".kolabfs-snapshots", NULL);
	g_autofree char *snap = g_build_filename(sdir, "x", NULL);
	g_autofree char *deep = g_build_filename(env.a, "no", "such", "x", NULL);
	g_autofree char *across = g_build_filename(env.b, "x", NULL);
	g_autofree char *long_name = g_strnfill(256, 'n');
	g_autofree char *too_long = g_build_filename(sdir, long_name, NULL);

	make_subvolume(vol);
	g_assert_cmpint(mkdir(dir, 0755), ==, 0);

	g_assert_cmpint(kfs_btrfs_snapshot_create(dir, snap), ==, -EINVAL);
	g_assert_false(exists(sdir));
	g_assert_cmpint(kfs_btrfs_snapshot_create(env.tmp, snap), ==, -ENOTTY);
	g_assert_false(exists(sdir));
	/* Only one level of directory is made. */
	g_assert_cmpint(kfs_btrfs_snapshot_create(vol, deep), ==, -ENOENT);
	/* Snapshots stay on their origin's filesystem. */
	g_assert_cmpint(kfs_btrfs_snapshot_create(vol, across), ==, -EXDEV);
	g_assert_false(exists(across));
	g_assert_cmpint(kfs_btrfs_snapshot_create(vol, too_long), ==, -ENAMETOOLONG);
	g_assert_false(exists(sdir));
}

/*
 * What a backup tool may still hold when the set is torn down: a file
 * open inside the snapshot, an O_PATH fd on its root (kolabfs's own
 * root_fd), a process's cwd.  None of them stops destroy; the open file
 * stays readable until closed.
 */
static void test_destroy_while_open(void)
{
	g_autofree char *vol = g_build_filename(env.a, "open-vol", NULL);
	g_autofree char *sdir = NULL, *snap = NULL;
	g_autofree char *data = NULL;
	g_autofree char *cwd = g_get_current_dir();
	char buf[16] = "";
	gint64 start, took;
	int file_fd, path_fd;
	struct stat st;

	make_subvolume(vol);
	sdir = kfs_btrfs_snapshot_dir(vol);
	snap = g_build_filename(sdir, "open-vol@1", NULL);
	write_file(vol, "data", "kept");
	g_assert_cmpint(kfs_btrfs_snapshot_create(vol, snap), ==, 0);

	data = g_build_filename(snap, "data", NULL);
	file_fd = open(data, O_RDONLY);
	g_assert_cmpint(file_fd, >=, 0);
	path_fd = open(snap, O_PATH | O_DIRECTORY);
	g_assert_cmpint(path_fd, >=, 0);
	g_assert_cmpint(chdir(snap), ==, 0);

	start = g_get_monotonic_time();
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, 0);
	took = g_get_monotonic_time() - start;
	g_test_message("destroy with an open file, an O_PATH fd and a cwd "
		       "inside: %" G_GINT64_FORMAT " us", took);
	g_assert_false(exists(snap));
	g_assert_false(exists(sdir));

	g_assert_cmpint(pread(file_fd, buf, sizeof(buf) - 1, 0), ==, 4);
	g_assert_cmpstr(buf, ==, "kept");
	g_assert_cmpint(fstat(path_fd, &st), ==, 0);
	g_assert_cmpint(chdir(cwd), ==, 0);
	close(file_fd);
	close(path_fd);
}

/*
 * Something mounted on the snapshot: the kernel would destroy it anyway
 * and detach that mount; we see a foreign filesystem there instead of our
 * snapshot, say EBUSY and touch nothing.
 */
static void test_destroy_mounted_on(void)
{
	g_autofree char *vol = g_build_filename(env.a, "mounted-vol", NULL);
	g_autofree char *sdir = NULL, *snap = NULL;

	make_subvolume(vol);
	sdir = kfs_btrfs_snapshot_dir(vol);
	snap = g_build_filename(sdir, "mounted-vol@1", NULL);
	g_assert_cmpint(kfs_btrfs_snapshot_create(vol, snap), ==, 0);
	g_assert_cmpint(mount("none", snap, "tmpfs", 0, NULL), ==, 0);

	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, -EBUSY);
	g_assert_cmpint(umount2(snap, 0), ==, 0);
	g_assert_cmpint(kfs_btrfs_is_subvolume(snap), ==, 0);
	g_assert_cmpint(kfs_btrfs_snapshot_destroy(snap), ==, 0);
	g_assert_false(exists(sdir));
}

/* ------------------------------------------------------------- set-up */

static char *set_up(void)
{
	g_autofree char *a_img = NULL, *b_img = NULL, *top_vol = NULL;
	g_autofree char *mkfs = NULL;
	GError *error = NULL;
	char *why = NULL;

	if (geteuid() != 0)
		return g_strdup("needs root (loop devices, mount, btrfs ioctls)");
	mkfs = g_find_program_in_path("mkfs.btrfs");
	if (!mkfs)
		return g_strdup("mkfs.btrfs not found (btrfs-progs)");
	/* Our mounts die with us, whatever happens. */
	if (unshare(CLONE_NEWNS) < 0)
		return g_strdup_printf("unshare(CLONE_NEWNS): %s", g_strerror(errno));
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return g_strdup_printf("making mounts private: %s", g_strerror(errno));

	env.tmp = g_dir_make_tmp("kfs-snap-btrfs-XXXXXX", &error);
	if (!env.tmp) {
		why = g_strdup(error->message);
		g_error_free(error);
		return why;
	}
	env.a = g_build_filename(env.tmp, "a", NULL);
	env.b = g_build_filename(env.a, "b", NULL);
	env.top = g_build_filename(env.tmp, "top", NULL);
	a_img = g_build_filename(env.tmp, "a.img", NULL);
	b_img = g_build_filename(env.tmp, "b.img", NULL);
	if (!make_fs(a_img, env.a, &why) || !make_fs(b_img, env.b, &why))
		return why;

	top_vol = g_build_filename(env.a, "top", NULL);
	make_subvolume(top_vol);
	g_assert_cmpint(mkdir(env.top, 0755), ==, 0);
	{
		const char *mount_top[] = { "mount", "-t", "btrfs", "-o",
					    "loop,subvol=top", a_img, env.top, NULL };
		if (!run(mount_top, &why))
			return why;
	}
	return NULL;
}

static void tear_down(void)
{
	g_autofree char *a_img = NULL, *b_img = NULL;

	if (!env.tmp)
		return;
	/* Lazily: a failed test may have left its cwd or an fd inside. */
	umount2(env.top, MNT_DETACH);
	umount2(env.b, MNT_DETACH);
	umount2(env.a, MNT_DETACH);
	a_img = g_build_filename(env.tmp, "a.img", NULL);
	b_img = g_build_filename(env.tmp, "b.img", NULL);
	g_unlink(a_img);
	g_unlink(b_img);
	g_rmdir(env.top);
	g_rmdir(env.a);
	g_rmdir(env.tmp);
	g_free(env.tmp);
	g_free(env.a);
	g_free(env.b);
	g_free(env.top);
}

static const struct test {
	const char *path;
	void (*func)(void);
} tests[] = {
	{ "/btrfs/is-subvolume", test_is_subvolume },
	{ "/btrfs/snapshot-dir", test_snapshot_dir },
	{ "/btrfs/lifecycle-beside", test_lifecycle_beside },
	{ "/btrfs/lifecycle-inside", test_lifecycle_inside },
	{ "/btrfs/nested", test_nested },
	{ "/btrfs/destroy-refuses", test_destroy_refuses },
	{ "/btrfs/create-refuses", test_create_refuses },
	{ "/btrfs/destroy-while-open", test_destroy_while_open },
	{ "/btrfs/destroy-mounted-on", test_destroy_mounted_on },
};

static void run_test(gconstpointer data)
{
	const struct test *test = data;

	if (env.skip) {
		g_test_skip(env.skip);
		return;
	}
	test->func();
}

int main(int argc, char **argv)
{
	size_t i;
	int ret;

	g_test_init(&argc, &argv, NULL);
	env.skip = set_up();
	for (i = 0; i < G_N_ELEMENTS(tests); i++)
		g_test_add_data_func(tests[i].path, &tests[i], run_test);
	ret = g_test_run();
	tear_down();
	g_free(env.skip);
	return ret;
}
