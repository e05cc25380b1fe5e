/* kolabfs: walking a snapshot's tree ahead of the backup tool that reads it. */
#ifndef KFS_WALKAHEAD_H
#define KFS_WALKAHEAD_H

#include <stdbool.h>
#include <glib.h>

#include "../snap/set.h"
#include "filter.h"

/* Entries the walk may be ahead of the reader, unless KOLABFS_WALK_AHEAD
 * says otherwise (0: no walk-ahead). */
#define KFS_WALK_AHEAD_DEFAULT 20000

struct kfs_walkahead;

/* NULL when walk-ahead is off; every call below takes NULL. */
struct kfs_walkahead *kfs_walkahead_create(void);
void kfs_walkahead_destroy(struct kfs_walkahead *wa);

/*
 * The reader was given N_ENTRIES entries of the directory PATH of SRC (in
 * SET, whose files FILTER hides some of), among them the subdirectories
 * SUBDIRS (names): those are walked next, in that order.
 */
void kfs_walkahead_listed(struct kfs_walkahead *wa, struct kfs_set *set,
			  struct kfs_source *src, const struct kfs_filter *filter,
			  const char *path, GPtrArray *subdirs, unsigned int n_entries);

/* A set died: forget its directories, and return only once none of them
 * is being walked (its snapshot is about to be destroyed). */
void kfs_walkahead_forget_dead(struct kfs_walkahead *wa);

/* Stop walking for good (the session ends; its sets go next). */
void kfs_walkahead_stop(struct kfs_walkahead *wa);

/* For /status (all 0 when walk-ahead is off). */
struct kfs_walkahead_counts {
	long ahead;             /* the limit */
	long in_front;          /* entries walked that the reader was not given yet */
	guint64 queued;         /* directories waiting */
	guint64 dirs, entries;  /* walked so far */
};
void kfs_walkahead_counts(struct kfs_walkahead *wa, struct kfs_walkahead_counts *c);

#endif
