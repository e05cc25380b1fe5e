/* kolabfs: /status, the live health of every set, as JSON. */
#include "autoconf.h"

#include <string.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "backend.h"
#include "manifest.h"
#include "sets.h"

static void add_volume(JsonBuilder *b, struct kfs_source *src, bool *healthy)
{
	struct kfs_health health;

	src->backend->ops->health(src->backend, src, &health);
	*healthy = *healthy && !strcmp(health.state, "ok");
	json_builder_set_member_name(b, src->name);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "backend");
	json_builder_add_string_value(b, src->backend->ops->name);
	json_builder_set_member_name(b, "snapshot");
	json_builder_add_string_value(b, src->snapshot);
	json_builder_set_member_name(b, "health");
	json_builder_add_string_value(b, health.state);
	if (health.cow_size) {
		/* whole percent (rounded down) for people, bytes for sizing */
		kfs_json_add_int(b, "usage_percent", health.cow_used * 100 / health.cow_size);
		kfs_json_add_int(b, "cow_used_bytes", health.cow_used);
		kfs_json_add_int(b, "cow_size_bytes", health.cow_size);
	}
	json_builder_end_object(b);
}

static void add_set(JsonBuilder *b, struct kfs_set *set)
{
	g_autofree char *created = kfs_manifest_time(set->created);
	bool healthy = true;
	size_t i;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, set->name);
	json_builder_set_member_name(b, "created");
	json_builder_add_string_value(b, created);
	json_builder_set_member_name(b, "volumes");
	json_builder_begin_object(b);
	for (i = 0; i < set->n_sources; i++)
		if (set->sources[i].kind == KFS_SOURCE_VOLUME)
			add_volume(b, &set->sources[i], &healthy);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "health");
	json_builder_add_string_value(b, healthy ? "ok" : "degraded");
	json_builder_set_member_name(b, "warnings");
	json_builder_add_int_value(b, set->warnings->len);
	json_builder_end_object(b);
}

char *kfs_sets_status_json(struct kfs_sets *sets,
			   void (*more)(struct _JsonBuilder *b, void *data), void *data)
{
	g_autoptr(GPtrArray) list = kfs_sets_list(sets);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	guint i;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "kolabfs_version");
	json_builder_add_string_value(b, PACKAGE_VERSION);
	json_builder_set_member_name(b, "pid");
	json_builder_add_int_value(b, getpid());
	json_builder_set_member_name(b, "sets");
	json_builder_begin_array(b);
	for (i = 0; i < list->len; i++)
		add_set(b, g_ptr_array_index(list, i));
	json_builder_end_array(b);
	if (more)
		more(b, data);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	return kfs_json_to_text(root);
}
