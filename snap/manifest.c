/* kolabfs: MANIFEST.json, what a set is and where it came from.
 *
 * It is written once, before the set appears, so that its size is known
 * to stat and it is part of the very backup it describes. */
#include "autoconf.h"

#include <errno.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "manifest.h"

char *kfs_manifest_time(gint64 usec)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(usec / G_USEC_PER_SEC);

	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static void add_strv(JsonBuilder *b, const char *key, char *const *v)
{
	json_builder_set_member_name(b, key);
	json_builder_begin_array(b);
	for (; v && *v; v++)
		json_builder_add_string_value(b, *v);
	json_builder_end_array(b);
}

static void add_volume(JsonBuilder *b, const struct kfs_source *src)
{
	const struct kfs_volume_conf *v = src->volume;

	json_builder_set_member_name(b, src->name);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "backend");
	json_builder_add_string_value(b, v->backend == KFS_BACKEND_LVM ? "lvm" : "btrfs");
	json_builder_set_member_name(b, "origin");
	json_builder_add_string_value(b, v->backend == KFS_BACKEND_LVM ? v->lv : v->path);
	json_builder_set_member_name(b, "snapshot");
	json_builder_add_string_value(b, src->snapshot);
	json_builder_set_member_name(b, "filesystem");
	json_builder_add_string_value(b, "btrfs");
	if (v->subdir) {
		json_builder_set_member_name(b, "subdir");
		json_builder_add_string_value(b, v->subdir);
	}
	json_builder_set_member_name(b, "preset");
	if (v->preset)
		json_builder_add_string_value(b, v->preset);
	else
		json_builder_add_null_value(b);
	add_strv(b, "exclude", v->exclude);
	json_builder_end_object(b);
}

static void add_sources(JsonBuilder *b, const struct kfs_set *set,
			enum kfs_source_kind kind, const struct kfs_config *cfg)
{
	size_t i;

	json_builder_begin_object(b);
	for (i = 0; i < set->n_sources; i++) {
		const struct kfs_source *src = &set->sources[i];

		if (src->kind != kind)
			continue;
		if (kind == KFS_SOURCE_VOLUME) {
			add_volume(b, src);
			continue;
		}
		add_strv(b, src->name, cfg->copies[src->volume_index].paths);
	}
	json_builder_end_object(b);
}

static JsonNode *manifest_build(const struct kfs_config *cfg, const struct kfs_set *set)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *created = kfs_manifest_time(set->created);
	char host[256] = "";
	guint i;

	gethostname(host, sizeof(host) - 1);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, set->name);
	json_builder_set_member_name(b, "created");
	json_builder_add_string_value(b, created);
	json_builder_set_member_name(b, "kolabfs_version");
	json_builder_add_string_value(b, PACKAGE_VERSION);
	json_builder_set_member_name(b, "host");
	json_builder_add_string_value(b, host);
	json_builder_set_member_name(b, "config");
	json_builder_add_string_value(b, cfg->file);
	json_builder_set_member_name(b, "volumes");
	add_sources(b, set, KFS_SOURCE_VOLUME, cfg);
	/* No [mysql] section in this version: the snapshots are
	 * crash-consistent, and the manifest says so by having no lock. */
	json_builder_set_member_name(b, "mysql");
	json_builder_add_null_value(b);
	json_builder_set_member_name(b, "ldap");
	json_builder_begin_object(b);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "copies");
	add_sources(b, set, KFS_SOURCE_COPY, cfg);
	json_builder_set_member_name(b, "warnings");
	json_builder_begin_array(b);
	for (i = 0; i < set->warnings->len; i++)
		json_builder_add_string_value(b, g_ptr_array_index(set->warnings, i));
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

char *kfs_json_to_text(JsonNode *root)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	return g_strconcat(text, "\n", NULL);
}

int kfs_manifest_write(const struct kfs_config *cfg, const struct kfs_set *set,
		       GError **error)
{
	g_autoptr(JsonNode) root = manifest_build(cfg, set);
	g_autofree char *text = kfs_json_to_text(root);

	if (!g_file_set_contents_full(set->manifest, text, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
		return -EIO;
	return 0;
}
