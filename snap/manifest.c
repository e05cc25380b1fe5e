/* kolabfs: MANIFEST.json, what a set is and where it came from.
 *
 * It is written once, before the set appears, so that its size is known
 * to stat and it is part of the very backup it describes. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "ldap.h"
#include "manifest.h"

char *kfs_manifest_time(gint64 usec)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(usec / G_USEC_PER_SEC);

	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static void add_string(JsonBuilder *b, const char *key, const char *value)
{
	json_builder_set_member_name(b, key);
	if (value)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void add_double(JsonBuilder *b, const char *key, double value)
{
	json_builder_set_member_name(b, key);
	/* three decimals: microseconds are noise, not information */
	json_builder_add_double_value(b, (gint64)(value * 1000 + 0.5) / 1000.0);
}

void kfs_json_add_int(JsonBuilder *b, const char *key, gint64 value)
{
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, value);
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
	json_builder_add_string_value(b, src->filesystem);
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

static void add_ldap(JsonBuilder *b, const struct kfs_source *src)
{
	guint i;

	json_builder_set_member_name(b, src->name);
	json_builder_begin_array(b);
	for (i = 0; src->exports && i < src->exports->len; i++) {
		const struct kfs_ldap_export *e = g_ptr_array_index(src->exports, i);

		json_builder_begin_object(b);
		add_string(b, "backend", e->backend);
		add_string(b, "suffix", e->suffix);
		add_string(b, "file", e->file);
		kfs_json_add_int(b, "entries", e->entries);
		kfs_json_add_int(b, "bytes", e->bytes);
		add_double(b, "duration_ms", e->duration_ms);
		kfs_json_add_int(b, "task_exit_code", e->task_exit_code);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
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
		if (kind == KFS_SOURCE_LDAP) {
			add_ldap(b, src);
			continue;
		}
		add_strv(b, src->name, cfg->copies[src->volume_index].paths);
	}
	json_builder_end_object(b);
}

/* Where the binlog stood, so a restore can roll forward from it, and how
 * long production was held. */
static void add_mysql(JsonBuilder *b, const struct kfs_config *cfg,
		      const struct kfs_mysql_position *pos)
{
	if (!cfg->mysql) {
		json_builder_add_null_value(b);
		return;
	}
	json_builder_begin_object(b);
	add_string(b, "lock", kfs_mysql_lock_name(cfg->mysql->lock));
	if (!pos) {
		/* lock = none */
		add_string(b, "consistency", "crash-consistent");
		json_builder_end_object(b);
		return;
	}
	add_string(b, "consistency", "locked");
	add_string(b, "server_version", pos->server_version);
	add_string(b, "binlog", pos->binlog_enabled ? "on" : "off");
	add_string(b, "binlog_file", pos->binlog_file);
	kfs_json_add_int(b, "binlog_position", pos->binlog_position);
	add_string(b, "gtid_position", pos->gtid_position);
	if (cfg->mysql->lock == KFS_MYSQL_LOCK_REPLICA) {
		add_string(b, "master_log_file", pos->master_log_file);
		kfs_json_add_int(b, "master_log_position", pos->master_log_position);
		add_string(b, "gtid_slave_position", pos->gtid_slave_position);
	}
	add_double(b, "blocker_wait_ms", pos->blocker_wait_ms);
	add_double(b, "lock_wait_ms", pos->lock_wait_ms);
	add_double(b, "lock_hold_ms", pos->lock_hold_ms);
	kfs_json_add_int(b, "lock_attempts", pos->attempts);
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
	json_builder_set_member_name(b, "mysql");
	add_mysql(b, cfg, set->mysql);
	json_builder_set_member_name(b, "ldap");
	add_sources(b, set, KFS_SOURCE_LDAP, cfg);
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

/* The shortest text that reads back as D. */
static void append_double(GString *out, double d)
{
	char fmt[8], buf[G_ASCII_DTOSTR_BUF_SIZE];
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(fmt, sizeof(fmt), "%%.%dg", prec);
		g_ascii_formatd(buf, sizeof(buf), fmt, d);
		if (g_ascii_strtod(buf, NULL) == d)
			break;
	}
	g_string_append(out, buf);
}

/*
 * json-glib prints doubles with 17 significant digits ("311.30799999999999");
 * an administrator reading MANIFEST.json wants "311.308".  Rewrite every
 * number outside a string that has a fraction or an exponent.
 */
static char *tidy_numbers(const char *p)
{
	GString *out = g_string_sized_new(strlen(p) + 1);
	bool in_string = false;
	const char *start;

	while (*p) {
		if (in_string && *p == '\\' && p[1]) {
			g_string_append_len(out, p, 2);
			p += 2;
		} else if (*p == '"') {
			in_string = !in_string;
			g_string_append_c(out, *p++);
		} else if (!in_string && (*p == '-' || g_ascii_isdigit(*p))) {
			for (start = p; *p && strchr("+-0123456789.eE", *p); p++)
				;
			if (memchr(start, '.', p - start) || memchr(start, 'e', p - start) ||
			    memchr(start, 'E', p - start))
				append_double(out, g_ascii_strtod(start, NULL));
			else
				g_string_append_len(out, start, p - start);
		} else {
			g_string_append_c(out, *p++);
		}
	}
	return g_string_free(out, FALSE);
}

char *kfs_json_to_text(JsonNode *root)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;
	g_autofree char *tidy = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	tidy = tidy_numbers(text);
	return g_strconcat(tidy, "\n", NULL);
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
