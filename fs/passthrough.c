/* kolabfs: FUSE passthrough of big files.
 *
 * With passthrough the kernel reads an open file straight from the
 * snapshot's file: no READ request, no copy through kolabfs, one page
 * cache instead of two.  It needs libfuse >= 3.17 (fuse_passthrough_open)
 * at build time and a kernel that offers FUSE_PASSTHROUGH (>= 6.9, built
 * with CONFIG_FUSE_PASSTHROUGH).  The kernel then holds the snapshot's
 * file itself, beyond kolabfs's reach: fs/file.c uses it only for
 * sources whose snapshots can go while files in them are open (btrfs,
 * copies, LDIF), never for mounted LVM snapshots, which kolabfs must be
 * able to revoke. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "../src/log.h"
#include "passthrough.h"

#ifdef HAVE_FUSE_PASSTHROUGH_OPEN

/* One backing file per node with open handles. */
struct backing {
	int id;
	unsigned int opens;
};

struct kfs_passthrough {
	gint enabled;
	GMutex lock;
	GHashTable *backings;   /* struct kfs_node * -> struct backing * */
};

bool kfs_passthrough_built(void)
{
	return true;
}

struct kfs_passthrough *kfs_passthrough_create(void)
{
	struct kfs_passthrough *pt = g_new0(struct kfs_passthrough, 1);

	g_mutex_init(&pt->lock);
	pt->backings = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	return pt;
}

void kfs_passthrough_destroy(struct kfs_passthrough *pt)
{
	if (!pt)
		return;
	g_hash_table_destroy(pt->backings);
	g_mutex_clear(&pt->lock);
	g_free(pt);
}

bool kfs_passthrough_init(struct kfs_passthrough *pt, struct fuse_conn_info *conn)
{
	/* KOLABFS_PASSTHROUGH=0: the READ path, for comparison (tests/bench). */
	const char *env = getenv("KOLABFS_PASSTHROUGH");

	if (!pt || !(conn->capable & FUSE_CAP_PASSTHROUGH) || (env && !strcmp(env, "0")))
		return false;
	conn->want |= FUSE_CAP_PASSTHROUGH;
	/* The snapshots are not on a stacked file system; leave the stack
	 * depth at 0 so that overlayfs may still be put over the mount. */
	conn->max_backing_stack_depth = FUSE_BACKING_STACKED_UNDER;
	g_atomic_int_set(&pt->enabled, 1);
	return true;
}

/* The first failure turns passthrough off for the mount, said once: the
 * next ones would fail alike (no CAP_SYS_ADMIN, a stacked source). */
static int backing_open(struct kfs_passthrough *pt, fuse_req_t req, int fd)
{
	int id = fuse_passthrough_open(req, fd);

	if (id <= 0 && g_atomic_int_compare_and_exchange(&pt->enabled, 1, 0))
		kfs_warn("FUSE passthrough refused (%s): files are read through kolabfs from now on",
			 g_strerror(errno ?: EIO));
	return id > 0 ? id : 0;
}

bool kfs_passthrough_get(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node,
			 int fd, struct fuse_file_info *fi)
{
	struct backing *b;
	int id = 0;

	if (!pt)
		return false;
	g_mutex_lock(&pt->lock);
	b = g_hash_table_lookup(pt->backings, node);
	/* A node already passed through stays so while it is open, even
	 * once passthrough is off: the kernel refuses mixed opens. */
	if (!b && g_atomic_int_get(&pt->enabled)) {
		id = backing_open(pt, req, fd);
		if (id) {
			b = g_new0(struct backing, 1);
			b->id = id;
			g_hash_table_insert(pt->backings, node, b);
		}
	}
	if (b) {
		b->opens++;
		id = b->id;
	}
	g_mutex_unlock(&pt->lock);
	fi->backing_id = id;
	return id != 0;
}

void kfs_passthrough_put(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node)
{
	struct backing *b;

	if (!pt)
		return;
	g_mutex_lock(&pt->lock);
	b = g_hash_table_lookup(pt->backings, node);
	if (b && --b->opens == 0) {
		/* The kernel's open files keep their own reference. */
		fuse_passthrough_close(req, b->id);
		g_hash_table_remove(pt->backings, node);
	}
	g_mutex_unlock(&pt->lock);
}

#else /* !HAVE_FUSE_PASSTHROUGH_OPEN */

bool kfs_passthrough_built(void)
{
	return false;
}

struct kfs_passthrough *kfs_passthrough_create(void)
{
	return NULL;
}

void kfs_passthrough_destroy(struct kfs_passthrough *pt)
{
}

bool kfs_passthrough_init(struct kfs_passthrough *pt, struct fuse_conn_info *conn)
{
	return false;
}

bool kfs_passthrough_get(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node,
			 int fd, struct fuse_file_info *fi)
{
	return false;
}

void kfs_passthrough_put(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node)
{
}

#endif
