/* kolabfs: a 1 MiB read-ahead window for the mount.
 *
 * The kernel sends READs as large as its read-ahead window, and a FUSE
 * mount's window starts at the block layer's default, 128 KiB: a big
 * sequential read (an InnoDB tablespace, a large attachment) then costs
 * eight round trips per MiB.  libfuse lets requests grow to 1 MiB
 * (max_pages), but the window can only be widened through sysfs, and only
 * once the kernel has applied the INIT reply, which caps it again at what
 * the kernel proposed: so the file system widens it on the first request
 * after INIT. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/log.h"
#include "fs-int.h"

#define KFS_READAHEAD_KB 1024

void kfs_fs_readahead_prepare(struct kfs_fs *fs, const char *mountpoint)
{
	struct statx stx;

	/* DONT_SYNC: no GETATTR, which nobody would answer yet */
	if (statx(AT_FDCWD, mountpoint, AT_STATX_DONT_SYNC, 0, &stx) < 0) {
		kfs_debug("read-ahead: cannot stat %s: %s", mountpoint, g_strerror(errno));
		return;
	}
	g_free(fs->readahead_path);
	fs->readahead_path = g_strdup_printf("/sys/class/bdi/%u:%u/read_ahead_kb",
					     stx.stx_dev_major, stx.stx_dev_minor);
}

static void widen(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		goto close_fd;
	buf[n] = '\0';
	if (atoi(buf) < KFS_READAHEAD_KB) {
		n = snprintf(buf, sizeof(buf), "%d\n", KFS_READAHEAD_KB);
		if (pwrite(fd, buf, n, 0) != n)
			goto close_fd;
	}
	close(fd);
	return;
close_fd:
	err = errno;
	close(fd);
	errno = err;
fail:
	/* not fatal: reads just come in 128 KiB pieces */
	kfs_debug("read-ahead: %s: %s", path, g_strerror(errno));
}

void kfs_fs_readahead_apply(struct kfs_fs *fs)
{
	if (!g_atomic_int_compare_and_exchange(&fs->readahead_done, 0, 1))
		return;
	if (fs->readahead_path)
		widen(fs->readahead_path);
}
