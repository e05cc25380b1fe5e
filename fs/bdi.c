/* kolabfs: the read-ahead of the mount's backing device.
 *
 * The kernel reads ahead of a FUSE file at most read_ahead_kb of the
 * mount's bdi, 128 KiB by default, and FUSE_INIT can only lower that.  A
 * big file (a MySQL table, an mbox) then streams through the daemon one
 * or two READs at a time, while read directly from btrfs, which sets 4 MiB
 * for itself, it streams with megabytes in flight: the cold dd of the
 * benchmark took twice as long.  So kolabfs raises its own bdi's
 * read_ahead_kb once the mount is up; the bdi is named by the mount's
 * device number. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "../src/log.h"
#include "../src/mountinfo.h"
#include "bdi.h"

struct kfs_bdi {
	pthread_t thread;
	char *mountpoint;
	unsigned int kib;
};

static int write_read_ahead(const char *dev, unsigned int kib)
{
	char file[128], value[32];
	int fd, len, ret = 0;

	snprintf(file, sizeof(file), "/sys/class/bdi/%s/read_ahead_kb", dev);
	len = snprintf(value, sizeof(value), "%u\n", kib);
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		/* slower big reads, nothing worse: say so and go on */
		kfs_warn("%s: %s", file, strerror(-ret));
	else
		kfs_debug("%s: %u", file, kib);
	return ret;
}

/* "MAJ:MIN" of the topmost FUSE mount on MOUNTPOINT, or NULL. */
static char *mount_device(const char *mountpoint)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	char *dev = NULL, **l;

	if (!g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL))
		return NULL;
	lines = g_strsplit(text, "\n", -1);
	for (l = lines; *l; l++) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE ... */
		g_auto(GStrv) f = g_strsplit(*l, " ", 6);
		const char *sep = strstr(*l, " - ");
		g_autofree char *mnt = NULL;

		if (g_strv_length(f) < 6 || !sep || !g_str_has_prefix(sep + 3, "fuse"))
			continue;
		mnt = kfs_mountinfo_unescape(f[4]);
		if (strcmp(mnt, mountpoint) == 0) {
			g_free(dev);
			dev = g_strdup(f[2]);
		}
	}
	return dev;
}

/*
 * The kernel's handling of FUSE_INIT's reply sets read_ahead_kb to the
 * smaller of the two, undoing anything written before.  Opening the root
 * sends requests (GETATTR for the permission check, OPENDIR), which the
 * kernel holds until that reply is handled and the session loop answers:
 * after it, a new value stays.  open(2), not stat(2): valgrind lets other
 * threads run while a thread waits in open, not in stat, and the loop's
 * threads must run to answer.  The device comes from mountinfo for the
 * same reason (fstat could wait for a GETATTR).
 */
static void *tune(void *arg)
{
	struct kfs_bdi *b = arg;
	g_autofree char *dev = NULL;
	int fd;

	fd = open(b->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;            /* unmounted already */
	close(fd);
	dev = mount_device(b->mountpoint);
	if (dev)
		write_read_ahead(dev, b->kib);
	else
		kfs_warn("%s: not in /proc/self/mountinfo: read-ahead left as it is",
			 b->mountpoint);
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
