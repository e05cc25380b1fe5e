/* kolabfs: internals of the configuration file (src/config*.c). */
#ifndef KFS_CONFIG_INT_H
#define KFS_CONFIG_INT_H

#include <stdbool.h>
#include <glib.h>

#include "config.h"     /* src/config.h, the interface */

#define KFS_NAME_MAX 255

/* "FILE:LINE: [GROUP] KEY: what", leaving out what is unknown. */
void kfs_conf_error(GError **error, int code, const char *file, int line,
		    const char *group, const char *key, const char *fmt, ...)
	G_GNUC_PRINTF(7, 8);

/* ------------------------------------------------------------------ */
/* The line indexer (config-index.c)                                   */

struct kfs_conf_key {
	char *name;
	int line;
};

struct kfs_conf_group {
	char *name;
	int line;
	GPtrArray *keys;                /* struct kfs_conf_key *, file order */
};

struct kfs_conf_index {
	const char *file;
	GPtrArray *groups;              /* struct kfs_conf_group *, file order */
	GHashTable *by_name;            /* group name -> group (borrowed) */
	GString *clean;                 /* the text GKeyFile gets */
};

void kfs_conf_index_init(struct kfs_conf_index *idx, const char *file);
void kfs_conf_index_clear(struct kfs_conf_index *idx);

/*
 * Index TEXT (LEN bytes and a NUL after them) line by line into IDX: the
 * groups and keys with their lines, and idx->clean.  False with a message
 * on a malformed line, a duplicate, bad UTF-8 or a NUL byte.
 */
bool kfs_conf_index_text(struct kfs_conf_index *idx, const char *text,
			 gsize len, GError **error);

/* The key NAME of G, or NULL. */
const struct kfs_conf_key *kfs_conf_group_key(const struct kfs_conf_group *g,
					      const char *name);

#endif
