/* kolabfs: walking a snapshot's tree ahead of the backup tool that reads it.
 *
 * A cold walk through kolabfs is a chain: the tool asks for a directory,
 * the kernel asks kolabfs, kolabfs stats every entry (reading inodes from
 * disk), answers, and only then does the tool go on.  Read directly, the
 * snapshot pays the same disk reads but none of the rest, so the chain is
 * what makes the mount slower.  One thread of ours breaks it: whenever the
 * reader lists a directory, the thread stats the entries of its
 * subdirectories, and of theirs, depth first like the tool, so the disk
 * reads are done, in the kernel's caches, before the tool gets there.
 *
 * Bounded like read-ahead: the walk stays at most `ahead` entries in front
 * of what the reader was given (a reader that stops after one `ls` costs
 * that many stats, no more), and at most KFS_WALK_QUEUE_MAX directories
 * wait.  It opens nothing but directories, one at a time, registered with
 * their source (so that a set drop can revoke it) and forgotten before a
 * dead set's snapshot is destroyed. */
#include "autoconf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs-int.h"
#include "walkahead.h"

#define KFS_WALK_QUEUE_MAX 4096
/* Directories remembered as walked (so neither the reader nor the walk
 * queues them again); forgotten beyond this many. */
#define KFS_WALK_SEEN_MAX 100000

struct wa_dir {
	struct kfs_set *set;            /* a reference */
	struct kfs_source *src;
	const struct kfs_filter *filter;
	char *path;                     /* below src's root, never "" */
	char *key;                      /* in seen */
};

struct kfs_walkahead {
	GMutex lock;
	GCond cond;             /* queued, budget freed, a walk done, stopping */
	GQueue queue;           /* struct wa_dir *, the next first */
	/* key (dir_key) -> its GList link in queue while queued, WALKED once
	 * walked; gone once the reader lists it (used_up) */
	GHashTable *seen;
	struct wa_dir *current; /* being walked */
	long ahead;
	long balance;           /* entries walked minus entries given to the reader */
	guint64 dirs, entries;  /* walked */
	bool stopping;
	GThread *thread;
};

static char walked_mark;
#define WALKED ((gpointer)&walked_mark)

/* The set, not only the volume: each set has its own copy of the tree. */
static char *dir_key(const struct kfs_set *set, const struct kfs_source *src,
		     const char *path)
{
	return g_strdup_printf("%p:%u:%s", (const void *)set, src->ino_space, path);
}

static void wa_dir_free(gpointer data)
{
	struct wa_dir *d = data;

	kfs_set_unref(d->set);
	g_free(d->path);
	g_free(d->key);
	g_free(d);
}

static long ahead_from_env(void)
{
	const char *env = getenv("KOLABFS_WALK_AHEAD");
	char *end;
	long n;

	if (!env || !*env)
		return KFS_WALK_AHEAD_DEFAULT;
	n = strtol(env, &end, 10);
	return *end || n < 0 ? KFS_WALK_AHEAD_DEFAULT : n;
}

struct kfs_walkahead *kfs_walkahead_create(void)
{
	struct kfs_walkahead *wa;
	long ahead = ahead_from_env();

	if (ahead == 0)
		return NULL;
	wa = g_new0(struct kfs_walkahead, 1);
	g_mutex_init(&wa->lock);
	g_cond_init(&wa->cond);
	g_queue_init(&wa->queue);
	wa->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	wa->ahead = ahead;
	return wa;
}

/* Under lock: queue PATHS (of SRC in SET) in front, in their order, unless
 * seen; drop the queue's far end beyond its limit into DROPPED. */
static void queue_front(struct kfs_walkahead *wa, struct kfs_set *set,
			struct kfs_source *src, const struct kfs_filter *filter,
			GPtrArray *paths, GPtrArray *dropped)
{
	struct wa_dir *d;
	guint i;

	for (i = paths->len; i-- > 0;) {
		g_autofree char *key = dir_key(set, src, g_ptr_array_index(paths, i));

		if (g_hash_table_contains(wa->seen, key))
			continue;
		d = g_new0(struct wa_dir, 1);
		d->set = kfs_set_ref(set);
		d->src = src;
		d->filter = filter;
		d->path = g_strdup(g_ptr_array_index(paths, i));
		d->key = g_steal_pointer(&key);
		g_queue_push_head(&wa->queue, d);
		g_hash_table_insert(wa->seen, g_strdup(d->key), wa->queue.head);
	}
	while (wa->queue.length > KFS_WALK_QUEUE_MAX) {
		d = g_queue_pop_tail(&wa->queue);
		g_hash_table_remove(wa->seen, d->key);
		g_ptr_array_add(dropped, d);
	}
}

static gboolean is_walked(gpointer key, gpointer value, gpointer unused)
{
	(void)key;
	(void)unused;
	return value == WALKED;
}

/* Under lock: KEY is walked (the marks of walks the reader never
 * followed are forgotten in bulk, beyond KFS_WALK_SEEN_MAX). */
static void set_walked(struct kfs_walkahead *wa, const char *key)
{
	if (g_hash_table_size(wa->seen) >= KFS_WALK_SEEN_MAX)
		g_hash_table_foreach_remove(wa->seen, is_walked, NULL);
	g_hash_table_insert(wa->seen, g_strdup(key), WALKED);
}

/*
 * Under lock: the reader lists KEY itself, so it need not be walked, and
 * its mark is used up: the next time the reader lists it (its listing
 * left the kernel's cache, say after drop_caches), it is as new, and so
 * are its subdirectories once they are listed in their turn.
 */
static void used_up(struct kfs_walkahead *wa, const char *key, GPtrArray *dropped)
{
	GList *link = g_hash_table_lookup(wa->seen, key);

	if (link && link != WALKED) {
		g_ptr_array_add(dropped, link->data);
		g_queue_delete_link(&wa->queue, link);
	}
	g_hash_table_remove(wa->seen, key);
}

static void free_dropped(GPtrArray *dropped)
{
	g_ptr_array_set_free_func(dropped, wa_dir_free);
	g_ptr_array_unref(dropped);
}

/*
 * Stat what the reader will be given of D (what its filter shows), so the
 * kernel has the inodes when kolabfs stats them for the reader; collect
 * its subdirectories into SUBDIRS.  Returns the entries statted.  Stops
 * at once when D's set dies.
 */
static unsigned int walk_dir(const struct wa_dir *d, GPtrArray *subdirs)
{
	const struct dirent *de;
	unsigned int n = 0;
	struct stat st;
	mode_t mode;
	DIR *dp;

	if (kfs_fs_source_opendir(d->src, d->path, &dp) < 0)
		return 0;
	while (!kfs_set_is_dead(d->set) && (de = readdir(dp))) {
		if (kfs_is_dot(de->d_name))
			continue;
		mode = DTTOIF(de->d_type);
		if (d->filter && mode && kfs_filter_hides(d->filter, d->path, de->d_name, mode))
			continue;
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (d->filter && !mode &&
		    kfs_filter_hides(d->filter, d->path, de->d_name, st.st_mode & S_IFMT))
			continue;
		n++;
		if (S_ISDIR(st.st_mode))
			g_ptr_array_add(subdirs, g_strconcat(d->path, "/", de->d_name, NULL));
	}
	kfs_fs_source_closedir(d->src, dp);
	return n;
}

/* Under lock: the next directory to walk, once the reader is near enough;
 * NULL when stopping. */
static struct wa_dir *next_dir(struct kfs_walkahead *wa)
{
	struct wa_dir *d;

	while (!wa->stopping && (!wa->queue.length || wa->balance >= wa->ahead))
		g_cond_wait(&wa->cond, &wa->lock);
	if (wa->stopping)
		return NULL;
	d = g_queue_pop_head(&wa->queue);
	set_walked(wa, d->key);
	return d;
}

static gpointer walker(gpointer data)
{
	struct kfs_walkahead *wa = data;
	GPtrArray *subdirs, *dropped;
	struct wa_dir *d;
	unsigned int n;

	g_mutex_lock(&wa->lock);
	for (;;) {
		d = next_dir(wa);
		wa->current = d;
		g_mutex_unlock(&wa->lock);
		if (!d)
			return NULL;
		subdirs = g_ptr_array_new_with_free_func(g_free);
		n = walk_dir(d, subdirs);
		dropped = g_ptr_array_new();
		g_mutex_lock(&wa->lock);
		wa->current = NULL;
		wa->balance += n;
		wa->dirs++;
		wa->entries += n;
		if (!kfs_set_is_dead(d->set))
			queue_front(wa, d->set, d->src, d->filter, subdirs, dropped);
		g_cond_broadcast(&wa->cond);    /* forget_dead may wait for D */
		g_mutex_unlock(&wa->lock);
		g_ptr_array_unref(subdirs);
		wa_dir_free(d);
		free_dropped(dropped);
		g_mutex_lock(&wa->lock);
	}
}

void kfs_walkahead_listed(struct kfs_walkahead *wa, struct kfs_set *set,
			  struct kfs_source *src, const struct kfs_filter *filter,
			  const char *path, GPtrArray *subdirs, unsigned int n_entries)
{
	GPtrArray *dropped;
	g_autofree char *key = NULL;

	if (!wa)
		return;
	dropped = g_ptr_array_new();
	key = dir_key(set, src, path);
	g_mutex_lock(&wa->lock);
	/* A set dies before forget_dead runs (under this lock): a listing
	 * that raced with it must not queue anything after that. */
	if (wa->stopping || kfs_set_is_dead(set))
		goto unlock;
	/* the reader ahead of the walk does not let it run further */
	wa->balance = MAX(wa->balance - (long)n_entries, 0);
	used_up(wa, key, dropped);
	queue_front(wa, set, src, filter, subdirs, dropped);
	/* started here, not at create: kolabfs forks after that */
	if (!wa->thread)
		wa->thread = g_thread_new("kfs-walkahead", walker, wa);
	g_cond_broadcast(&wa->cond);
unlock:
	g_mutex_unlock(&wa->lock);
	free_dropped(dropped);
}

/* Walked directories of a dead set must go before its memory can be
 * another set's (the key has its address); those of live sets are only
 * walked once more if the reader comes back. */
static gboolean walked_or_dead(gpointer key, gpointer value, gpointer unused)
{
	(void)key;
	(void)unused;
	return value == WALKED || kfs_set_is_dead(((struct wa_dir *)((GList *)value)->data)->set);
}

void kfs_walkahead_forget_dead(struct kfs_walkahead *wa)
{
	GPtrArray *dropped;
	GList *l, *next;

	if (!wa)
		return;
	dropped = g_ptr_array_new();
	g_mutex_lock(&wa->lock);
	g_hash_table_foreach_remove(wa->seen, walked_or_dead, NULL);
	for (l = wa->queue.head; l; l = next) {
		next = l->next;
		if (kfs_set_is_dead(((struct wa_dir *)l->data)->set)) {
			g_ptr_array_add(dropped, l->data);
			g_queue_delete_link(&wa->queue, l);
		}
	}
	/* walk_dir notices the death between two entries */
	while (wa->current && kfs_set_is_dead(wa->current->set))
		g_cond_wait(&wa->cond, &wa->lock);
	g_mutex_unlock(&wa->lock);
	free_dropped(dropped);
}

void kfs_walkahead_stop(struct kfs_walkahead *wa)
{
	GThread *thread;

	if (!wa)
		return;
	g_mutex_lock(&wa->lock);
	wa->stopping = true;
	thread = g_steal_pointer(&wa->thread);
	g_cond_broadcast(&wa->cond);
	g_mutex_unlock(&wa->lock);
	if (thread)
		g_thread_join(thread);
	g_queue_clear_full(&wa->queue, wa_dir_free);
	g_hash_table_remove_all(wa->seen);
}

void kfs_walkahead_destroy(struct kfs_walkahead *wa)
{
	if (!wa)
		return;
	kfs_walkahead_stop(wa);
	g_hash_table_destroy(wa->seen);
	g_cond_clear(&wa->cond);
	g_mutex_clear(&wa->lock);
	g_free(wa);
}

void kfs_walkahead_counts(struct kfs_walkahead *wa, struct kfs_walkahead_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (!wa)
		return;
	g_mutex_lock(&wa->lock);
	c->ahead = wa->ahead;
	c->in_front = wa->balance;
	c->queued = wa->queue.length;
	c->dirs = wa->dirs;
	c->entries = wa->entries;
	g_mutex_unlock(&wa->lock);
}
