/* kolabfs: one snapshot set, /snapshots/<name>/. */
#ifndef KFS_SET_H
#define KFS_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "../src/config.h"
#include "mysql.h"

enum kfs_source_kind { KFS_SOURCE_VOLUME, KFS_SOURCE_COPY, KFS_SOURCE_LDAP };

/* A directory tree shown as <set>/<name>/. */
struct kfs_source {
	char *name;
	enum kfs_source_kind kind;
	const struct kfs_volume_conf *volume;   /* KFS_SOURCE_VOLUME */
	size_t volume_index;    /* index in cfg->volumes, ->copies or ->ldaps */
	GPtrArray *exports;     /* KFS_SOURCE_LDAP: struct kfs_ldap_export * */
	char *snapshot;         /* the snapshot subvolume (volumes) */
	char *root;             /* the directory shown (snapshot[/subdir]) */
	int root_fd;            /* O_PATH|O_DIRECTORY on root, open while the set lives */
	unsigned int ino_space;
};

struct kfs_set {
	char *name;
	gint64 created;          /* g_get_real_time() */
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
};

struct kfs_set *kfs_set_new(const char *name, const char *dir);
struct kfs_set *kfs_set_ref(struct kfs_set *set);
/* The last reference closes the set's descriptors and frees it; tearing
 * the snapshots down is kfs_sets_drop's job, not this. */
void kfs_set_unref(struct kfs_set *set);
bool kfs_set_is_dead(const struct kfs_set *set);

#endif
