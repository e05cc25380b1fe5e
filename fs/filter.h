/* kolabfs: what a volume does not show (presets and exclude globs). */
#ifndef KFS_FILTER_H
#define KFS_FILTER_H

#include <stdbool.h>
#include <sys/types.h>

struct kfs_filter;

/*
 * Build the filter of one volume from its preset (NULL, "cyrus-spool",
 * "cyrus-meta" or "mysql") and its exclude globs (NULL-terminated, may be
 * NULL).  A glob without '/' (but a trailing one) matches an entry's name at
 * any depth; a glob with an inner or leading '/' is matched against the
 * path from the volume root (FNM_PATHNAME).  A trailing '/' restricts it to
 * directories.  Every filter also hides ".kolabfs-snapshots" at the root.
 * Returns NULL with errno EINVAL for an unknown preset or an empty glob.
 */
struct kfs_filter *kfs_filter_create(const char *preset, char *const *exclude);
void kfs_filter_destroy(struct kfs_filter *filter);

/* Is GLOB an exclude glob kfs_filter_create takes?  Not empty, and more
 * than '/' (which would be empty once the trailing '/' that restricts it
 * to directories and the leading ones that anchor it are taken off). */
bool kfs_filter_glob_ok(const char *glob);

/*
 * Is the entry NAME, of type MODE (S_IFMT bits; 0 if unknown), inside the
 * directory PARENT (path from the volume root without leading '/', "" for
 * the root) hidden?
 */
bool kfs_filter_hides(const struct kfs_filter *filter, const char *parent,
		      const char *name, mode_t mode);

/* Does the filter ever need the entry's type (to decide on dir-only or
 * socket rules)?  If not, readdir need not stat to filter. */
bool kfs_filter_needs_type(const struct kfs_filter *filter);

#endif
