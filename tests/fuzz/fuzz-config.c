/* libFuzzer target: kolabfs.conf(5) from text, parsed and validated
 * (kfs_config_parse, everything kfs_config_load does but reading the
 * file), and what a parsed config is then used for without touching the
 * host: the volumes' filters and the names of sets and LVM snapshots.
 *
 * Besides the sanitizers, it aborts when the parser breaks its promises:
 * a refusal names the file; an accepted config makes safe directory
 * names, filters that build, and LVM snapshot names LVM takes. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <glib.h>

#include "src/config.h"
#include "fs/filter.h"
#include "snap/lvm.h"

#define FILE_NAME "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) { \
	g_printerr("%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

/* The names sets taken at many instants get: 40 steps of 31 days, 7
 * hours, 13 minutes and 11 seconds from 2027-03-03 meet every weekday,
 * month and hour, days and hours of one digit and of two. */
static void check_set_names(const struct kfs_config *cfg, const struct kfs_volume_conf *v)
{
	time_t instants[40];
	char buf[512], first[512];
	bool changes = false;
	struct tm tm;
	size_t i, n;

	for (i = 0; i < G_N_ELEMENTS(instants); i++)
		instants[i] = 1804032000 + (time_t)i * (31 * 86400 + 7 * 3600 + 13 * 60 + 11);
	for (i = 0; i < G_N_ELEMENTS(instants); i++) {
		gmtime_r(&instants[i], &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		n = strftime(buf, sizeof(buf), cfg->name_format, &tm);
#pragma GCC diagnostic pop
		check(n > 0 && kfs_name_is_safe(buf));
		if (i == 0)
			memcpy(first, buf, n + 1);
		else
			changes |= strcmp(first, buf) != 0;
		if (v && v->lv) {
			char **vglv = g_strsplit(v->lv, "/", 2);
			char *snap = kfs_lvm_snapshot_name(vglv[0], vglv[1], buf);

			check(kfs_lvm_name_ok(snap));
			g_free(snap);
			g_strfreev(vglv);
		}
	}
	/* not one name for every set */
	check(changes);
}

static void check_volume(const struct kfs_config *cfg, const struct kfs_volume_conf *v)
{
	static const char *const names[] = {
		"cyrus.squat", "stage.", "socket", "x.lock", "a.pid", "x.tmp", "cache", NULL
	};
	static const mode_t modes[] = { S_IFREG, S_IFDIR, S_IFSOCK };
	struct kfs_filter *f;
	const char *const *n;
	size_t m;

	check(kfs_name_is_safe(v->name));
	check(v->exclude != NULL);
	check(v->ino_space >= 1 && v->ino_space <= 0xfffe);
	if (v->backend == KFS_BACKEND_BTRFS) {
		check(v->path && v->path[0] == '/' && !v->lv);
	} else {
		check(v->lv && !v->path);
		check(strchr(v->lv, '/') && strchr(v->lv, '/') == strrchr(v->lv, '/'));
	}
	if (v->subdir)
		check(*v->subdir && v->subdir[0] != '/');
	/* what kolabfs builds from the volume once the first set exists */
	f = kfs_filter_create(v->preset, v->exclude);
	check(f != NULL);
	for (n = names; *n; n++)
		for (m = 0; m < G_N_ELEMENTS(modes); m++) {
			kfs_filter_hides(f, "", *n, modes[m]);
			kfs_filter_hides(f, v->subdir ? v->subdir : "a/b", *n, modes[m]);
		}
	kfs_filter_destroy(f);
	check_set_names(cfg, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	GError *error = NULL;
	struct kfs_config *cfg;
	size_t i;

	cfg = kfs_config_parse(FILE_NAME, (const char *)data, size, &error);
	if (!cfg) {
		/* every refusal names the file, and is text a terminal shows */
		check(error && g_str_has_prefix(error->message, FILE_NAME));
		check(g_utf8_validate(error->message, -1, NULL));
		g_error_free(error);
		return 0;
	}
	check(!error);
	check(cfg->state_dir[0] == '/' && strcmp(cfg->state_dir, "/") != 0);
	check(cfg->n_volumes + cfg->n_ldaps + cfg->n_copies > 0);
	check_set_names(cfg, NULL);
	for (i = 0; i < cfg->n_volumes; i++)
		check_volume(cfg, &cfg->volumes[i]);
	for (i = 0; i < cfg->n_copies; i++) {
		check(kfs_name_is_safe(cfg->copies[i].name));
		check(cfg->copies[i].paths && cfg->copies[i].paths[0]);
	}
	for (i = 0; i < cfg->n_ldaps; i++) {
		check(kfs_name_is_safe(cfg->ldaps[i].name));
		check(cfg->ldaps[i].uri);
	}
	if (cfg->mysql)
		check(cfg->mysql->lock_wait_timeout >= 1 && cfg->mysql->user);
	kfs_config_destroy(cfg);
	return 0;
}
