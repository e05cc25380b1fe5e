/*
 * kolabfs: btrfs snapshots, in-process through the btrfs ioctls.
 *
 * No btrfs-progs: mounting runs inside the database lock window, where a
 * fork+exec per volume costs time and a missing or changed binary would
 * turn into a failed backup.  The ioctls used here are stable kernel ABI.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>

#include <glib.h>

#include "backend.h"
#include "btrfs.h"
#include "../src/log.h"

#define SNAPSHOT_DIR_NAME ".kolabfs-snapshots"

/*
 * BTRFS_IOC_SNAP_DESTROY has no transient EBUSY on current kernels (an
 * open file, an O_PATH fd or a cwd inside the snapshot do not stop it,
 * and a mount on it is detached; see tests/root/test-btrfs.c), but older
 * ones returned it while dentries were still in use.  Retry briefly
 * rather than leak a snapshot.
 */
#define DESTROY_TRIES 10
#define DESTROY_RETRY_USEC (100 * 1000)

/* Every name we hand to the ioctls fits their fixed-size name fields. */
G_STATIC_ASSERT(NAME_MAX < BTRFS_SUBVOL_NAME_MAX);
G_STATIC_ASSERT(NAME_MAX < BTRFS_PATH_NAME_MAX);

/*
 * Split PATH into its parent directory and last component, ignoring
 * trailing slashes.  -EINVAL if there is no usable last component ("/",
 * "", ".", ".."), -ENAMETOOLONG if it is longer than a file name can be.
 */
static int split_path(const char *path, char **parent, char **name)
{
	g_autofree char *trimmed = g_strdup(path);
	size_t len = strlen(trimmed);

	while (len > 1 && trimmed[len - 1] == '/')
		trimmed[--len] = '\0';
	*name = g_path_get_basename(trimmed);
	if (!*trimmed || strchr(*name, '/') || !strcmp(*name, ".") ||
	    !strcmp(*name, "..")) {
		g_clear_pointer(name, g_free);
		return -EINVAL;
	}
	if (strlen(*name) > NAME_MAX) {
		g_clear_pointer(name, g_free);
		return -ENAMETOOLONG;
	}
	*parent = g_path_get_dirname(trimmed);
	return 0;
}

/* 0 if the directory FD is a subvolume root, -ENOTTY if not on btrfs,
 * -EINVAL if on btrfs but not a subvolume root. */
static int fd_is_subvolume(int fd)
{
	struct statfs sfs;
	struct stat st;

	if (fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (sfs.f_type != BTRFS_SUPER_MAGIC)
		return -ENOTTY;
	if (st.st_ino != BTRFS_FIRST_FREE_OBJECTID || !S_ISDIR(st.st_mode))
		return -EINVAL;
	return 0;
}

int kfs_btrfs_is_subvolume(const char *path)
{
	int fd, ret;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = fd_is_subvolume(fd);
	close(fd);
	return ret;
}

/* The fsid of the btrfs filesystem PATH is on; -ENOTTY if not btrfs. */
static int get_fsid(const char *path, uint8_t fsid[BTRFS_FSID_SIZE])
{
	struct btrfs_ioctl_fs_info_args info;
	struct statfs sfs;
	int fd, ret = 0;

	/* ioctl(2) refuses O_PATH descriptors. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sfs) < 0) {
		ret = -errno;
		goto close_fd;
	}
	/* Ioctl numbers are only unique per filesystem type. */
	if (sfs.f_type != BTRFS_SUPER_MAGIC) {
		ret = -ENOTTY;
		goto close_fd;
	}
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &info) < 0) {
		ret = -errno;
		goto close_fd;
	}
	memcpy(fsid, info.fsid, BTRFS_FSID_SIZE);
close_fd:
	close(fd);
	return ret;
}

char *kfs_btrfs_snapshot_dir(const char *origin)
{
	uint8_t origin_fsid[BTRFS_FSID_SIZE], parent_fsid[BTRFS_FSID_SIZE];
	g_autofree char *trimmed = g_strdup(origin);
	g_autofree char *parent = NULL;
	size_t len = strlen(trimmed);
	int ret;

	ret = get_fsid(origin, origin_fsid);
	if (ret < 0) {
		errno = -ret;
		return NULL;
	}
	while (len > 1 && trimmed[len - 1] == '/')
		trimmed[--len] = '\0';
	parent = g_path_get_dirname(trimmed);

	/*
	 * Beside the origin keeps the origin's own tree untouched.  A
	 * snapshot must be on the origin's filesystem, so when the parent is
	 * elsewhere (the origin is mounted at the top of its filesystem) the
	 * only place left is inside the origin; the next snapshot of it
	 * then shows the nested snapshots as empty directories, which every
	 * volume's filter hides.  Any error on the parent means "elsewhere".
	 */
	if (get_fsid(parent, parent_fsid) == 0 &&
	    !memcmp(origin_fsid, parent_fsid, BTRFS_FSID_SIZE))
		return g_build_filename(parent, SNAPSHOT_DIR_NAME, NULL);
	return g_build_filename(trimmed, SNAPSHOT_DIR_NAME, NULL);
}

/* Make DIR 0700 if it is missing; *MADE tells whether we did. */
static int make_snapshot_dir(const char *dir, bool *made)
{
	*made = false;
	if (mkdir(dir, 0700) < 0)
		return errno == EEXIST ? 0 : -errno;
	*made = true;
	/* The umask may have taken bits we want, never added any. */
	if (chmod(dir, 0700) < 0)
		return -errno;
	return 0;
}

int kfs_btrfs_snapshot_create(const char *origin, const char *dest)
{
	struct btrfs_ioctl_vol_args_v2 args;
	char *parent = NULL, *name = NULL;
	int origin_fd, parent_fd, ret;
	bool made_parent = false;
	struct stat st;

	ret = split_path(dest, &parent, &name);
	if (ret < 0)
		return ret;

	origin_fd = open(origin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (origin_fd < 0) {
		ret = -errno;
		goto free_names;
	}
	/*
	 * The ioctl snapshots the whole subvolume its source fd lives in:
	 * given a subdirectory it would silently snapshot more than asked.
	 */
	ret = fd_is_subvolume(origin_fd);
	if (ret < 0)
		goto close_origin;

	ret = make_snapshot_dir(parent, &made_parent);
	if (ret < 0)
		goto remove_parent;
	/* O_NOFOLLOW: a symlink planted as the snapshot directory (it may sit
	 * inside a volume a service user can write to) must not redirect us. */
	parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (parent_fd < 0) {
		ret = -errno;
		goto remove_parent;
	}
	/* The kernel says EEXIST too, but only after the costly part. */
	if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		ret = -EEXIST;
		goto close_parent;
	} else if (errno != ENOENT) {
		ret = -errno;
		goto close_parent;
	}

	memset(&args, 0, sizeof(args));
	args.fd = origin_fd;
	args.flags = BTRFS_SUBVOL_RDONLY;
	g_strlcpy(args.name, name, sizeof(args.name));
	/* Flushes the origin's dirty data and commits: durable on return. */
	if (ioctl(parent_fd, BTRFS_IOC_SNAP_CREATE_V2, &args) < 0)
		ret = -errno;
close_parent:
	close(parent_fd);
remove_parent:
	/* A failed create leaves nothing behind, not even the directory. */
	if (ret < 0 && made_parent)
		rmdir(parent);
close_origin:
	close(origin_fd);
free_names:
	g_free(parent);
	g_free(name);
	return ret;
}

/*
 * Only snapshots kolabfs took are ever destroyed, and it takes them
 * read-only.  A read-write subvolume is somebody's data: a damaged record
 * naming the origin must not wipe the database.
 *
 * Something mounted on the snapshot hides it from us (FD is the mounted
 * filesystem's root), and the kernel would destroy it anyway, silently
 * detaching that mount.  Someone is using it: -EBUSY, and leave it be.
 */
static int check_destroyable(int fd)
{
	struct statx stx;
	uint64_t flags;
	int ret;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 &&
	    (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return -EBUSY;
	ret = fd_is_subvolume(fd);
	if (ret < 0)
		return ret == -ENOTTY ? -EINVAL : ret;
	if (ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0)
		return -errno;
	if (!(flags & BTRFS_SUBVOL_RDONLY))
		return -EINVAL;
	return 0;
}

static int destroy_retrying(int parent_fd, const char *name)
{
	struct btrfs_ioctl_vol_args args;
	int tries, err;

	memset(&args, 0, sizeof(args));
	g_strlcpy(args.name, name, sizeof(args.name));
	for (tries = 1;; tries++) {
		if (ioctl(parent_fd, BTRFS_IOC_SNAP_DESTROY, &args) == 0)
			return 0;
		err = errno;
		if (err != EBUSY || tries == DESTROY_TRIES)
			return -err;
		kfs_debug("destroying snapshot %s: busy, retrying", name);
		g_usleep(DESTROY_RETRY_USEC);
	}
}

/*
 * SNAP_DESTROY unlinks the subvolume but leaves the commit to the next
 * transaction.  The caller drops the snapshot from its record once we
 * return; a power loss before the commit would bring the snapshot back
 * with no record left to reap it.  Commit now.
 */
static int commit_transaction(int fd)
{
	uint64_t transid = 0;

	if (ioctl(fd, BTRFS_IOC_START_SYNC, &transid) < 0)
		return -errno;
	if (ioctl(fd, BTRFS_IOC_WAIT_SYNC, &transid) < 0)
		return -errno;
	return 0;
}

/* Remove the snapshot directory once its last snapshot is gone. */
static void remove_snapshot_dir(const char *dir)
{
	g_autofree char *base = g_path_get_basename(dir);

	if (strcmp(base, SNAPSHOT_DIR_NAME))
		return;
	if (rmdir(dir) < 0 && errno != ENOTEMPTY && errno != EEXIST &&
	    errno != ENOENT)
		kfs_warn("removing %s: %s", dir, g_strerror(errno));
}

int kfs_btrfs_snapshot_destroy(const char *path)
{
	char *parent = NULL, *name = NULL;
	int parent_fd, fd, ret;

	ret = split_path(path, &parent, &name);
	if (ret < 0)
		return ret;

	parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (parent_fd < 0) {
		ret = errno == ENOTDIR || errno == ELOOP ? -EINVAL : -errno;
		goto free_names;
	}
	/* Check the very entry the ioctl will look up by NAME. */
	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOTDIR || errno == ELOOP ? -EINVAL : -errno;
		goto close_parent;
	}
	ret = check_destroyable(fd);
	close(fd);
	if (ret < 0)
		goto close_parent;

	ret = destroy_retrying(parent_fd, name);
	if (ret < 0)
		goto close_parent;
	ret = commit_transaction(parent_fd);
	remove_snapshot_dir(parent);
close_parent:
	close(parent_fd);
free_names:
	g_free(parent);
	g_free(name);
	return ret;
}

/* ------------------------------------------------------------------ */
/* The backend: snapshots beside the subvolume, shown where they are.  */

static int btrfs_plan(struct kfs_backend *be, const struct kfs_set *set,
		      struct kfs_source *src, GError **error)
{
	const struct kfs_volume_conf *v = src->volume;
	g_autofree char *dir = kfs_btrfs_snapshot_dir(v->path);
	g_autofree char *base = NULL;

	if (!dir) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "[volume:%s] %s: %s", v->name, v->path, g_strerror(errno));
		return -errno;
	}
	base = g_strdup_printf("%s@%s", v->name, set->name);
	/*
	 * A set name may be up to NAME_MAX bytes, but the snapshot's name
	 * adds the volume's: the ioctl would refuse it inside the lock
	 * window, after the record named it.  Refuse the name here instead,
	 * with the length that does fit, before anything exists.
	 */
	if (strlen(base) > NAME_MAX) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
			    "[volume:%s] set name of %zu bytes is too long: the snapshot %s@NAME would be %zu bytes, more than NAME_MAX (%d); with this volume a set name may have at most %zu bytes",
			    v->name, strlen(set->name), v->name, strlen(base), NAME_MAX,
			    NAME_MAX - strlen(v->name) - 1);
		return -ENAMETOOLONG;
	}
	src->snapshot = g_build_filename(dir, base, NULL);
	src->record = g_strdup(src->snapshot);
	src->root = v->subdir ? g_build_filename(src->snapshot, v->subdir, NULL)
			      : g_strdup(src->snapshot);
	return 0;
}

static int btrfs_create(struct kfs_backend *be, struct kfs_source *src, GError **error)
{
	int ret = kfs_btrfs_snapshot_create(src->volume->path, src->snapshot);

	if (ret < 0)
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-ret),
			    "[volume:%s] cannot snapshot %s to %s: %s", src->name,
			    src->volume->path, src->snapshot, g_strerror(-ret));
	return ret;
}

static int btrfs_open(struct kfs_backend *be, struct kfs_source *src, GError **error)
{
	src->root_fd = open(src->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (src->root_fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "%s: %s", src->root, g_strerror(errno));
		return -errno;
	}
	src->filesystem = g_strdup("btrfs");
	return 0;
}

static int btrfs_destroy(struct kfs_backend *be, struct kfs_source *src)
{
	return kfs_btrfs_snapshot_destroy(src->snapshot);
}

/* Healthy while it is still there and still a subvolume: someone
 * deleting it by hand must show, not go unnoticed until restore. */
static void btrfs_health(struct kfs_backend *be, struct kfs_source *src,
			 struct kfs_health *health)
{
	struct stat st;

	health->cow_used = health->cow_size = 0;
	health->state = "ok";
	if (src->root_fd < 0 || fstat(src->root_fd, &st) < 0 ||
	    kfs_btrfs_is_subvolume(src->snapshot) < 0)
		health->state = "missing";
}

static bool btrfs_owns(const char *entry)
{
	return g_path_is_absolute(entry);
}

/* Only .../.kolabfs-snapshots/<volume>@<set>, and only read-only
 * subvolumes (kfs_btrfs_snapshot_destroy checks that). */
/*
 * A set is recorded before its snapshots are taken, so a snapshot of it
 * cannot be older than its record: one that is was there before, under
 * the name the dead kolabfs would have used and never reached.  0 if PATH
 * may be ours, -EPERM if not, -errno.
 */
static int check_made_after(const char *path, gint64 not_before)
{
	struct btrfs_ioctl_get_subvol_info_args info;
	gint64 made;
	int fd, ret = 0;

	if (!not_before)        /* a record of an older kolabfs */
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &info) < 0)
		ret = -errno;
	close(fd);
	if (ret < 0)
		return ret;
	made = (gint64)info.otime.sec * G_GINT64_CONSTANT(1000000000) + info.otime.nsec;
	return made < not_before ? -EPERM : 0;
}

static int btrfs_reap(struct kfs_backend *be, const char *entry, gint64 not_before)
{
	g_autofree char *base = g_path_get_basename(entry);
	g_autofree char *dir = g_path_get_dirname(entry);
	g_autofree char *dirbase = g_path_get_basename(dir);
	int ret;

	if (!strchr(base, '@') || strcmp(dirbase, SNAPSHOT_DIR_NAME))
		return -EPERM;
	ret = check_made_after(entry, not_before);
	if (ret < 0)
		return ret;
	return kfs_btrfs_snapshot_destroy(entry);
}

static void btrfs_free(struct kfs_backend *be)
{
}

static const struct kfs_backend_ops btrfs_ops = {
	.name = "btrfs",
	.revoke = false,        /* a snapshot goes even while files are open */
	.plan = btrfs_plan,
	.create = btrfs_create,
	.open = btrfs_open,
	.destroy = btrfs_destroy,
	.health = btrfs_health,
	.owns = btrfs_owns,
	.reap = btrfs_reap,
	.free = btrfs_free,
};

struct kfs_backend *kfs_btrfs_backend_create(GError **error)
{
	static struct kfs_backend be = { .ops = &btrfs_ops };

	return &be;
}
