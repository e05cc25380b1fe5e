/* kolabfs: one snapshot set, /snapshots/<name>/. */
#ifndef KFS_SET_H
#define KFS_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "../src/config.h"
#include "mysql.h"

enum kfs_source_kind { KFS_SOURCE_VOLUME, KFS_SOURCE_COPY, KFS_SOURCE_LDAP };

struct kfs_backend;

/* A directory tree shown as <set>/<name>/. */
struct kfs_source {
	char *name;
	enum kfs_source_kind kind;
	const struct kfs_volume_conf *volume;   /* KFS_SOURCE_VOLUME */
	size_t volume_index;    /* index in cfg->volumes, ->copies or ->ldaps */
	GPtrArray *exports;     /* KFS_SOURCE_LDAP: struct kfs_ldap_export * */
	struct kfs_backend *backend;    /* volumes: who took the snapshot */
	void *priv;             /* the backend's state of this snapshot */
	char *snapshot;         /* volumes: the snapshot, as MANIFEST shows it */
	char *record;           /* volumes: its entry in the set's record */
	bool ours;              /* volumes: create was tried and did not find
				 * the name taken: tear down destroys it */
	char *filesystem;       /* volumes: btrfs, ext4, xfs */
	/* The directory shown: a path for copies, LDAP and btrfs; for LVM
	 * only a description (the snapshot is mounted detached, reachable
	 * through root_fd alone). */
	char *root;
	int root_fd;            /* O_PATH|O_DIRECTORY on root, open while the set lives */
	unsigned int ino_space;
	gint invalid;           /* the snapshot broke (LVM: copy-on-write space
				 * ran out): its files read as EIO */
	GMutex fds_lock;
	GHashTable *fds;        /* descriptors open below root_fd for the kernel */
};

struct kfs_set {
	char *name;
	gint64 created;          /* g_get_real_time() */
	gint64 taken_at;         /* g_get_monotonic_time() of the same instant: max_age */
	char *dir;               /* state_dir/sets/<name> */
	char *manifest;          /* dir/MANIFEST.json */
	int manifest_fd;         /* O_PATH of MANIFEST.json */
	struct kfs_source *sources;
	size_t n_sources;
	GPtrArray *warnings;     /* char *: what the administrator should know */
	struct kfs_mysql_position *mysql;       /* NULL: no lock was taken */
	unsigned long seq;       /* 1, 2, ...: order of creation in this process */
	gint refcount;
	gint dead;               /* torn down; nodes still referring to it get ESTALE */
	gint handles;            /* files and directories open in it (kfs_sets_handle_open) */
	gint expired;            /* older than max_age: dropped once handles is 0 */
};

struct kfs_set *kfs_set_new(const char *name, const char *dir);
struct kfs_set *kfs_set_ref(struct kfs_set *set);
/* The last reference closes the set's descriptors and frees it; tearing
 * the snapshots down is kfs_sets_drop's job, not this. */
void kfs_set_unref(struct kfs_set *set);
bool kfs_set_is_dead(const struct kfs_set *set);

void kfs_source_init(struct kfs_source *src);
static inline bool kfs_source_is_invalid(const struct kfs_source *src)
{
	return src && g_atomic_int_get(&src->invalid);
}
void kfs_source_set_invalid(struct kfs_source *src);
/* May the kernel hold files of SRC open where kolabfs cannot revoke them
 * (FUSE passthrough)?  Not if its snapshots need revoking to go. */
bool kfs_source_pinnable(const struct kfs_source *src);

/*
 * Descriptors the FUSE side opens below root_fd (open files and
 * directories) are registered here, so a snapshot that must go can take
 * them back: kfs_source_revoke replaces root_fd and every registered
 * descriptor by one on /dev/null (dup3: the numbers stay valid, no
 * thread can reach the snapshot through them any more).  Unregister a
 * descriptor with kfs_source_fd_remove *before* closing it: a revoke
 * must not dup3 onto a number close() has freed and another thread
 * reused.
 */
void kfs_source_fd_add(struct kfs_source *src, int fd);
void kfs_source_fd_remove(struct kfs_source *src, int fd);
int kfs_source_revoke(struct kfs_source *src);

#endif
