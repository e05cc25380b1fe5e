/*
 * kolabfs: device-mapper status, straight from the kernel.
 *
 * The health monitor reads the copy-on-write usage of every classic
 * snapshot every few seconds.  Through liblvm2cmd that would be an lvs,
 * which scans every block device and takes the library's one mutex (the
 * lock window of the next set would wait behind it); DM_TABLE_STATUS is
 * one ioctl on /dev/mapper/control and touches no disk.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/dm-ioctl.h>
#include <glib.h>

#include "dm.h"

#define DM_CONTROL "/dev/" DM_DIR "/" DM_CONTROL_NODE
#define STATUS_BUF 16384

static int status_ioctl(const char *name, struct dm_ioctl *io, size_t size)
{
	int fd, ret = 0;

	memset(io, 0, size);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = size;
	io->data_start = sizeof(*io);
	/* Status must not make a thin pool commit its metadata. */
	io->flags = DM_NOFLUSH_FLAG;
	g_strlcpy(io->name, name, sizeof(io->name));
	fd = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, DM_TABLE_STATUS, io) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && (io->flags & DM_BUFFER_FULL_FLAG))
		ret = -EOVERFLOW;
	return ret;
}

int kfs_dm_status(const char *name, char *type, size_t type_size,
		  char *params, size_t params_size)
{
	g_autofree struct dm_ioctl *io = g_malloc(STATUS_BUF);
	const struct dm_target_spec *spec;
	const char *end = (const char *)io + STATUS_BUF;
	const char *p;
	size_t n;
	int ret;

	if (strlen(name) >= DM_NAME_LEN)
		return -ENAMETOOLONG;
	ret = status_ioctl(name, io, STATUS_BUF);
	if (ret < 0)
		return ret;
	if (io->target_count < 1 || io->data_start + sizeof(*spec) >= STATUS_BUF)
		return -ENODATA;
	spec = (const struct dm_target_spec *)((const char *)io + io->data_start);
	p = (const char *)(spec + 1);
	if (!memchr(p, '\0', end - p))
		return -EIO;
	/* target_type need not end in a NUL when it is full */
	n = MIN(strnlen(spec->target_type, sizeof(spec->target_type)), type_size - 1);
	memcpy(type, spec->target_type, n);
	type[n] = '\0';
	g_strlcpy(params, p, params_size);
	return 0;
}
