/* kolabfs: the read-ahead of the mount's backing device.
 *
 * The kernel reads ahead of a FUSE file at most read_ahead_kb of the
 * mount's bdi, 128 KiB by default, and FUSE_INIT can only lower that.  A
 * big file (a MySQL table, an mbox) then streams through the daemon one
 * or two READs at a time, while read directly from btrfs, which sets 4 MiB
 * for itself, it streams with megabytes in flight: the cold dd of the
 * benchmark took twice as long.  So kolabfs raises its own bdi's
 * read_ahead_kb once the mount is up. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <glib.h>

#include "../src/log.h"
#include "bdi.h"

struct kfs_bdi {
	pthread_t thread;
	char *mountpoint;
	unsigned int kib;
};

static int write_read_ahead(dev_t dev, unsigned int kib)
{
	char file[64], value[32];
	int fd, len, ret = 0;

	snprintf(file, sizeof(file), "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev),
		 minor(dev));
	len = snprintf(value, sizeof(value), "%u\n", kib);
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		/* slower big reads, nothing worse: say so and go on */
		kfs_warn("%s: %s", file, strerror(-ret));
	return ret;
}

/*
 * The kernel's handling of FUSE_INIT's reply sets read_ahead_kb to the
 * smaller of the two, undoing anything written before.  A stat of the
 * root is a GETATTR, which the kernel holds until that reply is handled,
 * and which the session loop answers: after it, a new value stays.  The
 * mount's device number (st_dev) names its bdi.
 */
static void *tune(void *arg)
{
	struct kfs_bdi *b = arg;
	struct stat st;

	if (stat(b->mountpoint, &st) == 0)
		write_read_ahead(st.st_dev, b->kib);
	return NULL;
}

struct kfs_bdi *kfs_bdi_tune_start(const char *mountpoint, unsigned int kib)
{
	struct kfs_bdi *b = g_new0(struct kfs_bdi, 1);

	b->mountpoint = g_strdup(mountpoint);
	b->kib = kib;
	if (pthread_create(&b->thread, NULL, tune, b) != 0) {
		kfs_warn("%s: read-ahead left as it is: cannot start a thread", mountpoint);
		g_free(b->mountpoint);
		g_free(b);
		return NULL;
	}
	return b;
}

void kfs_bdi_tune_stop(struct kfs_bdi *b)
{
	if (!b)
		return;
	pthread_join(b->thread, NULL);
	g_free(b->mountpoint);
	g_free(b);
}
