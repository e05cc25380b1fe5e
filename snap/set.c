/* kolabfs: a snapshot set as an object: its sources and its lifetime.
 *
 * A set outlives its teardown while the kernel still holds inodes in it:
 * those get ESTALE, and the memory and descriptors go with the last
 * reference. */
#include "autoconf.h"

#include <unistd.h>

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
	if (src->exports)
		g_ptr_array_unref(src->exports);
	g_free(src->name);
	g_free(src->snapshot);
	g_free(src->root);
}

void kfs_set_unref(struct kfs_set *set)
{
	size_t i;

	if (!set || !g_atomic_int_dec_and_test(&set->refcount))
		return;
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
