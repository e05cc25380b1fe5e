/* kolabfs: the configuration file, kolabfs.conf(5). */
#ifndef KFS_CONFIG_H
#define KFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#define KFS_DEFAULT_CONFIG "/etc/kolabfs/kolabfs.conf"
#define KFS_DEFAULT_STATE_DIR "/var/lib/kolabfs"
#define KFS_DEFAULT_NAME_FORMAT "%Y-%m-%dT%H%M%SZ"

enum kfs_backend { KFS_BACKEND_BTRFS, KFS_BACKEND_LVM };

struct kfs_volume_conf {
	char *name;             /* [volume:NAME]: the directory in each set */
	enum kfs_backend backend;
	char *path;             /* btrfs: the subvolume (absolute, canonical) */
	char *lv;               /* lvm: vg/lv */
	char *snapshot_size;    /* lvm classic */
	char *subdir;           /* NULL: the whole volume; else relative, no ".." */
	char *preset;           /* NULL or cyrus-spool | cyrus-meta | mysql */
	char **exclude;         /* NULL-terminated globs, never NULL */
	unsigned int ino_space; /* 1..0xfffe, stable for NAME: st_ino's top 16 bits */
	int line;               /* line of the group header, for messages */
	int path_line;          /* line of path =, for kfs_config_check_host */
	int subdir_line;        /* line of subdir =, 0 if absent */
};

struct kfs_copy_conf {
	char *name;             /* [copy:NAME] */
	char **paths;           /* NULL-terminated absolute paths (canonical) */
	unsigned int ino_space;
	int line;
	int paths_line;         /* line of paths = */
};

struct kfs_config {
	char *file;             /* as given on the command line */
	char *state_dir;        /* absolute, canonical */
	int state_dir_line;     /* 0 when it is the default */
	char *name_format;
	struct kfs_volume_conf *volumes;
	size_t n_volumes;
	struct kfs_copy_conf *copies;
	size_t n_copies;
};

/*
 * Parse and validate FILE (syntax, groups, keys, types, names, duplicates).
 * Touches nothing on disk but FILE itself.  On error returns NULL and sets
 * *error to a message that names the file, line, group and key.
 */
struct kfs_config *kfs_config_load(const char *file, GError **error);

/*
 * Check the configuration against the machine: every btrfs path is a
 * subvolume, no two volumes share an origin, the state_dir parent exists,
 * every copy path exists.  Creates nothing.
 */
bool kfs_config_check_host(const struct kfs_config *cfg, GError **error);

void kfs_config_destroy(struct kfs_config *cfg);

/* A NAME usable as one path component: non-empty, valid UTF-8, no '/',
 * not "." or "..", no leading '.', no control characters, <= 255 bytes. */
bool kfs_name_is_safe(const char *name);

/* The 16-bit inode-number space of "volume:NAME" / "copy:NAME". */
unsigned int kfs_ino_space_of(const char *kind, const char *name);

#define KFS_CONFIG_ERROR (kfs_config_error_quark())
GQuark kfs_config_error_quark(void);
enum { KFS_CONFIG_ERROR_INVALID, KFS_CONFIG_ERROR_HOST };

#endif
