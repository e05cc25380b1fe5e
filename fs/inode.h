/* kolabfs: the kernel's inodes (FUSE node ids) and what they stand for. */
#ifndef KFS_INODE_H
#define KFS_INODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "../snap/set.h"

enum kfs_node_kind {
	KFS_NODE_ROOT,          /* / */
	KFS_NODE_SNAPSHOTS,     /* /snapshots */
	KFS_NODE_STATUS,        /* /status */
	KFS_NODE_LATEST,        /* /snapshots/latest */
	KFS_NODE_SET,           /* /snapshots/<set> */
	KFS_NODE_MANIFEST,      /* /snapshots/<set>/MANIFEST.json */
	KFS_NODE_PASS,          /* a file or directory of a source, passed through */
};

/*
 * A node is identified by (kind, set, source, inode on the source), so the
 * hard links of one file are one kernel inode, and the same file in two
 * sets is two.  PASS nodes remember one path to themselves, relative to
 * the source root: a snapshot never changes, so the path stays valid and
 * no descriptor needs to be kept open per node.
 */
struct kfs_node_key {
	enum kfs_node_kind kind;
	const void *owner;      /* the set (SET, MANIFEST) or source (PASS) */
	uint64_t local_ino;     /* PASS: st_ino on the source */
};

struct kfs_node {
	struct kfs_node_key key;        /* first: the table's key is the node */
	enum kfs_node_kind kind;        /* = key.kind */
	bool cached;                    /* PASS file: see fs/file.c (atomic) */
	uint64_t ino;                   /* st_ino shown to users */
	struct kfs_set *set;            /* SET, MANIFEST, PASS: a reference */
	struct kfs_source *src;         /* PASS */
	char *path;                     /* PASS: "" for the source root */
	uint64_t nlookup;               /* the kernel's lookup count */
	void *dir_stream;               /* PASS dir: see fs/dir.c (atomic) */
};

struct kfs_inodes;

struct kfs_inodes *kfs_inodes_create(void);
void kfs_inodes_destroy(struct kfs_inodes *t);

/* The node of a FUSE node id (FUSE_ROOT_ID is the root). */
struct kfs_node *kfs_inodes_get(struct kfs_inodes *t, uint64_t nodeid);
uint64_t kfs_inodes_nodeid(const struct kfs_node *node);

/* The fixed nodes. */
struct kfs_node *kfs_inodes_fixed(struct kfs_inodes *t, enum kfs_node_kind kind);

/*
 * Find or make the node of a set directory / MANIFEST, or of the entry of
 * SRC with inode LOCAL_INO reached by PATH, and count one kernel lookup.
 */
struct kfs_node *kfs_inodes_ref_set(struct kfs_inodes *t, struct kfs_set *set,
				    enum kfs_node_kind kind);
struct kfs_node *kfs_inodes_ref_pass(struct kfs_inodes *t, struct kfs_set *set,
				     struct kfs_source *src, uint64_t local_ino,
				     const char *path);

/*
 * The FUSE ids of the nodes PICK chooses, for use after the table's locks
 * are let go: a node may be gone by then, and its id is only good for a
 * notification, which the kernel answers with ENOENT for an unknown id.
 */
GArray *kfs_inodes_select(struct kfs_inodes *t, bool (*pick)(const struct kfs_node *node));

/* The kernel forgets N lookups; the node goes when none are left. */
void kfs_inodes_forget(struct kfs_inodes *t, struct kfs_node *node, uint64_t n);

#endif
