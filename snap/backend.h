/* kolabfs: snapshot backends (btrfs, lvm) behind one interface.
 *
 * sets.c takes a set in steps, and each step of a volume is one
 * operation here: plan (check and name, before the record is written and
 * outside the lock), create (inside the lock window: the snapshot and
 * nothing else), open (after it: the directory shown), destroy, and,
 * for what a dead kolabfs left behind, reap. */
#ifndef KFS_BACKEND_H
#define KFS_BACKEND_H

#include <stdbool.h>
#include <glib.h>

#include "set.h"

/* Live health of one snapshot, for /status. */
struct kfs_health {
	const char *state;      /* "ok", "missing" or "invalid" */
	guint64 cow_used;       /* copy-on-write space used, bytes */
	guint64 cow_size;       /* and there is; 0: no such space */
};

struct kfs_backend;

struct kfs_backend_ops {
	const char *name;       /* "btrfs", "lvm": MANIFEST and /status */
	/* Its snapshots cannot go while a descriptor below them is open:
	 * tear down revokes them first (kfs_source_revoke). */
	bool revoke;
	/*
	 * Check the origin and name the snapshot: src->snapshot (shown),
	 * src->record (the record's entry, kept until the snapshot is
	 * gone), src->root (shown).  Creates nothing.  The sources of SET
	 * before SRC are planned already.
	 */
	int (*plan)(struct kfs_backend *be, const struct kfs_set *set,
		    struct kfs_source *src, GError **error);
	/* Inside the lock window: the snapshot, and nothing else. */
	int (*create)(struct kfs_backend *be, struct kfs_source *src, GError **error);
	/* After the window: src->root_fd and src->filesystem. */
	int (*open)(struct kfs_backend *be, struct kfs_source *src, GError **error);
	/* Remove the snapshot: 0, -ENOENT if there is none (never taken, or
	 * gone already), else -errno with the reason logged. */
	int (*destroy)(struct kfs_backend *be, struct kfs_source *src);
	/* Health now; marks SRC invalid when its snapshot is. */
	void (*health)(struct kfs_backend *be, struct kfs_source *src,
		       struct kfs_health *health);
	/* Is ENTRY (from a record) one of this backend's? */
	bool (*owns)(const char *entry);
	/* Remove what ENTRY names if it is there and looks like kolabfs's:
	 * 0, -ENOENT if it is gone, -EPERM if it is not ours (left alone).
	 * The record naming it was written at NOT_BEFORE (CLOCK_REALTIME_COARSE,
	 * ns; 0: unknown), before any of its snapshots was taken. */
	int (*reap)(struct kfs_backend *be, const char *entry, gint64 not_before);
	/* Free src->priv. */
	void (*release)(struct kfs_source *src);
	void (*free)(struct kfs_backend *be);
};

struct kfs_backend {
	const struct kfs_backend_ops *ops;
};

struct kfs_backend *kfs_btrfs_backend_create(GError **error);
struct kfs_backend *kfs_lvm_backend_create(GError **error);

static inline void kfs_backend_destroy(struct kfs_backend *be)
{
	if (be)
		be->ops->free(be);
}

#endif
