/*
 * kolabfs: read-only mounts that belong to no mount namespace.
 *
 * The new mount API (fsopen, fsconfig, fsmount) makes a mount that is
 * never attached anywhere: nothing shows in /proc/mounts, nothing is
 * left behind by a crash (the kernel unmounts it when the last
 * descriptor closes), and no private mount namespace is needed -- one
 * made after the FUSE mount would keep a copy of the FUSE mount alive
 * after the host's umount.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <blkid.h>
#include <linux/openat2.h>

#include "../src/error.h"
#include "mount.h"

/* The filesystem type libblkid finds on DEV, or NULL. */
static char *probe_type(const char *dev, GError **error)
{
	const char *type = NULL;
	char *ret = NULL;
	blkid_probe pr;

	pr = blkid_new_probe_from_filename(dev);
	if (!pr) {
		kfs_error_errno(error, errno ? errno : EIO, "%s: cannot probe: %s", dev,
				g_strerror(errno ? errno : EIO));
		return NULL;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	/* safeprobe: two signatures on one device is an error, not a guess */
	if (blkid_do_safeprobe(pr) == 0 &&
	    blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0)
		ret = g_strdup(type);
	else
		kfs_error_errno(error, EMEDIUMTYPE, "%s: no filesystem found", dev);
	blkid_free_probe(pr);
	return ret;
}

/* The kernel's own words on a failed fsconfig, from the fs context. */
static void context_messages(int fsfd, GString *out)
{
	char buf[1024];
	ssize_t n;

	while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		g_strchomp(buf);
		g_string_append_printf(out, "%s%s", out->len ? "; " : "", buf);
	}
}

/*
 * ro: the filesystem is read-only, yet the device stays writable, so
 * ext4 can replay its journal and xfs its log.  xfs refuses a second
 * filesystem with the UUID of one mounted already (the origin): nouuid.
 */
static int configure(int fsfd, const char *dev, const char *type)
{
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0)
		return -errno;
	if (!strcmp(type, "xfs") && fsconfig(fsfd, FSCONFIG_SET_FLAG, "nouuid", NULL, 0) < 0)
		return -errno;
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	return 0;
}

static int mount_type(const char *dev, const char *type, GError **error)
{
	g_autoptr(GString) msg = g_string_new(NULL);
	int fsfd, mfd, ret;

	fsfd = fsopen(type, FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return kfs_error_errno(error, errno, "%s: cannot mount %s: %s", dev, type,
				       g_strerror(errno));
	ret = configure(fsfd, dev, type);
	if (ret < 0)
		goto close_context;
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		      MOUNT_ATTR_NOEXEC);
	if (mfd < 0)
		ret = -errno;
close_context:
	if (ret < 0) {
		context_messages(fsfd, msg);
		kfs_error_errno(error, -ret, "%s: cannot mount %s read-only: %s%s%s%s", dev,
				type, g_strerror(-ret), msg->len ? " (" : "", msg->str,
				msg->len ? ")" : "");
	}
	close(fsfd);
	return ret < 0 ? ret : mfd;
}

/* SUBDIR of the mount: no symbolic link (it would lead out of the
 * snapshot), no mount point crossed, no "..". */
static int open_subdir(int mfd, const char *subdir)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_BENEATH | RESOLVE_NO_XDEV,
	};
	int fd = syscall(SYS_openat2, mfd, subdir ? subdir : ".", &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

int kfs_mount_detached(const char *dev, const char *subdir, int *mount_fd,
		       int *root_fd, char **fstype, GError **error)
{
	g_autofree char *type = probe_type(dev, error);
	const char *fs;
	int mfd, fd;

	*mount_fd = *root_fd = -1;
	if (!type)
		return -EMEDIUMTYPE;
	if (!strcmp(type, "ext2") || !strcmp(type, "ext3") || !strcmp(type, "ext4"))
		fs = "ext4";    /* the ext4 driver mounts all three */
	else if (!strcmp(type, "xfs"))
		fs = "xfs";
	else
		return kfs_error_errno(error, EMEDIUMTYPE,
				       "%s: %s filesystem, expected ext2, ext3, ext4 or xfs",
				       dev, type);
	mfd = mount_type(dev, fs, error);
	if (mfd < 0)
		return mfd;
	fd = open_subdir(mfd, subdir);
	if (fd < 0) {
		close(mfd);
		return kfs_error_errno(error, -fd, "%s: subdir %s: %s%s", dev, subdir ? subdir : ".",
				       g_strerror(-fd), fd == -ELOOP ? " (a symbolic link)" :
				       fd == -EXDEV ? " (crosses a mount point)" : "");
	}
	*mount_fd = mfd;
	*root_fd = fd;
	*fstype = g_steal_pointer(&type);
	return 0;
}
