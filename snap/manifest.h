/* kolabfs: MANIFEST.json of a set. */
#ifndef KFS_MANIFEST_H
#define KFS_MANIFEST_H

#include <glib.h>

#include "../src/config.h"
#include "set.h"

/* Write set->manifest (atomically: temp file, fsync, rename).  0 or -errno. */
int kfs_manifest_write(const struct kfs_config *cfg, const struct kfs_set *set,
		       GError **error);

#endif
