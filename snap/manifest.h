/* kolabfs: MANIFEST.json of a set. */
#ifndef KFS_MANIFEST_H
#define KFS_MANIFEST_H

#include <glib.h>

#include "../src/config.h"
#include "set.h"

/* Write set->manifest (atomically: temp file, fsync, rename).  0 or -errno. */
int kfs_manifest_write(const struct kfs_config *cfg, const struct kfs_set *set,
		       GError **error);

/* "2026-11-27T04:30:00Z" for a g_get_real_time() value. */
char *kfs_manifest_time(gint64 usec);

/* Pretty JSON text of ROOT with a final newline (newly allocated). */
struct _JsonNode;
char *kfs_json_to_text(struct _JsonNode *root);

/* The member KEY: VALUE, in the object B is building. */
struct _JsonBuilder;
void kfs_json_add_int(struct _JsonBuilder *b, const char *key, gint64 value);

#endif
