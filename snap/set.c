/* kolabfs: a snapshot set as an object: its sources and its lifetime.
 *
 * A set outlives its teardown while the kernel still holds inodes in it:
 * those get ESTALE, and the memory and descriptors go with the last
 * reference. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "../src/annotate.h"
#include "../src/log.h"
#include "backend.h"
#include "set.h"

struct kfs_set *kfs_set_new(const char *name, const char *dir)
{
	struct kfs_set *set = g_new0(struct kfs_set, 1);

	set->name = g_strdup(name);
	set->dir = g_strdup(dir);
	set->manifest = g_build_filename(dir, "MANIFEST.json", NULL);
	set->manifest_fd = -1;
	set->warnings = g_ptr_array_new_with_free_func(g_free);
	set->created = g_get_real_time();
	set->taken_at = g_get_monotonic_time();
	set->refcount = 1;
	return set;
}

struct kfs_set *kfs_set_ref(struct kfs_set *set)
{
	g_atomic_int_inc(&set->refcount);
	return set;
}

static void source_clear(struct kfs_source *src)
{
	if (src->root_fd >= 0)
		close(src->root_fd);
	if (src->backend && src->backend->ops->release)
		src->backend->ops->release(src);
	if (src->exports)
		g_ptr_array_unref(src->exports);
	if (src->fds)
		g_hash_table_unref(src->fds);
	g_mutex_clear(&src->fds_lock);
	g_free(src->name);
	g_free(src->snapshot);
	g_free(src->record);
	g_free(src->filesystem);
	g_free(src->root);
}

void kfs_set_unref(struct kfs_set *set)
{
	size_t i;

	if (!set)
		return;
	/* whatever this thread did with the set comes before the free, in
	 * whichever thread drops the last reference (helgrind: src/annotate.h) */
	KFS_HAPPENS_BEFORE(set);
	if (!g_atomic_int_dec_and_test(&set->refcount))
		return;
	KFS_HAPPENS_AFTER(set);
	for (i = 0; i < set->n_sources; i++)
		source_clear(&set->sources[i]);
	if (set->manifest_fd >= 0)
		close(set->manifest_fd);
	g_free(set->sources);
	kfs_mysql_position_free(set->mysql);
	g_ptr_array_unref(set->warnings);
	g_free(set->manifest);
	g_free(set->dir);
	g_free(set->name);
	g_free(set);
}

bool kfs_set_is_dead(const struct kfs_set *set)
{
	return g_atomic_int_get(&set->dead) != 0;
}

void kfs_source_init(struct kfs_source *src)
{
	src->root_fd = -1;
	g_mutex_init(&src->fds_lock);
	src->fds = g_hash_table_new(g_direct_hash, g_direct_equal);
}

void kfs_source_set_invalid(struct kfs_source *src)
{
	g_atomic_int_set(&src->invalid, 1);
}

bool kfs_source_pinnable(const struct kfs_source *src)
{
	return !src->backend || !src->backend->ops->revoke;
}

void kfs_source_fd_add(struct kfs_source *src, int fd)
{
	g_mutex_lock(&src->fds_lock);
	g_hash_table_add(src->fds, GINT_TO_POINTER(fd));
	g_mutex_unlock(&src->fds_lock);
}

void kfs_source_fd_remove(struct kfs_source *src, int fd)
{
	g_mutex_lock(&src->fds_lock);
	g_hash_table_remove(src->fds, GINT_TO_POINTER(fd));
	g_mutex_unlock(&src->fds_lock);
}

static int revoke_one(int null_fd, int fd)
{
	if (dup3(null_fd, fd, O_CLOEXEC) < 0) {
		kfs_err("cannot revoke descriptor %d: %s", fd, g_strerror(errno));
		return -errno;
	}
	return 0;
}

int kfs_source_revoke(struct kfs_source *src)
{
	GHashTableIter it;
	gpointer key;
	int null_fd, ret = 0;

	null_fd = open("/dev/null", O_PATH | O_CLOEXEC);
	if (null_fd < 0)
		return -errno;
	g_mutex_lock(&src->fds_lock);
	if (src->root_fd >= 0)
		ret = revoke_one(null_fd, src->root_fd);
	g_hash_table_iter_init(&it, src->fds);
	while (g_hash_table_iter_next(&it, &key, NULL))
		ret = revoke_one(null_fd, GPOINTER_TO_INT(key)) ?: ret;
	g_mutex_unlock(&src->fds_lock);
	close(null_fd);
	return ret;
}
