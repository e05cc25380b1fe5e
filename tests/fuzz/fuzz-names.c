/* libFuzzer target: names and paths, the pure parts kolabfs applies to
 * what it finds on a volume or is given as a set's name: the presets'
 * and exclude globs' matching (fs/filter.c), kfs_name_is_safe, the pieces
 * a deep path is followed in (kfs_path_piece), and the LVM names made
 * from a set's name (kfs_lvm_snapshot_name, kfs_lvm_dm_name).
 *
 * Input: byte 0 picks the preset and the entry's type; the rest is split
 * at NUL bytes into the exclude globs (one a line), the parent path, the
 * entry's name, and a VG/LV.  Besides the sanitizers, it aborts when a
 * function breaks what its header promises. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "src/config.h"
#include "fs/filter.h"
#include "fs/path.h"
#include "snap/lvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) { \
	g_printerr("%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

static const char *const presets[] = { NULL, "cyrus-spool", "cyrus-meta", "mysql" };
static const mode_t modes[] = { 0, S_IFREG, S_IFDIR, S_IFSOCK, S_IFLNK, S_IFIFO };

/* kfs_name_is_safe's promise, spelled out. */
static bool name_is_safe_spec(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > 255 || name[0] == '.' || !g_utf8_validate(name, -1, NULL))
		return false;
	for (i = 0; i < len; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

static void check_filter(int sel, char **globs, const char *parent, const char *name)
{
	const char *preset = presets[sel % G_N_ELEMENTS(presets)];
	mode_t mode = modes[(sel / G_N_ELEMENTS(presets)) % G_N_ELEMENTS(modes)];
	struct kfs_filter *f, *bare;

	f = kfs_filter_create(preset, globs);
	if (f) {
		bool hidden = kfs_filter_hides(f, parent, name, mode);

		/* exclusions only add up: what the preset alone hides stays hidden */
		bare = kfs_filter_create(preset, NULL);
		check(bare);
		if (kfs_filter_hides(bare, parent, name, mode))
			check(hidden);
		kfs_filter_destroy(bare);
		/* every filter hides the snapshots' own directory at the root */
		check(kfs_filter_hides(f, "", ".kolabfs-snapshots", S_IFDIR));
		kfs_filter_destroy(f);
	} else {
		check(errno == EINVAL);
	}
}

static void check_piece(const char *path)
{
	size_t len = strlen(path), max, n, done;

	/* a small MAX makes many pieces out of a short input */
	for (max = 2; max <= 64; max *= 2) {
		for (done = 0; done < len; done += n + 1) {
			n = kfs_path_piece(path + done, max);
			if (n == 0) {
				check(path[done] == '/' || len - done >= max);
				break;
			}
			check(n < max);
			check(n == len - done || path[done + n] == '/');
			if (n == len - done)
				break;
		}
	}
}

static void check_lvm(const char *vglv, const char *set)
{
	char **parts = g_strsplit(vglv, "/", -1);
	char *snap, *dm, *shortest, *shortest_dm;

	if (g_strv_length(parts) == 2 && kfs_lvm_name_ok(parts[0]) && kfs_lvm_name_ok(parts[1])) {
		snap = kfs_lvm_snapshot_name(parts[0], parts[1], set);
		check(kfs_lvm_name_ok(snap));
		check(strstr(snap, KFS_LVM_SNAPSHOT_INFIX));
		/* short enough for device-mapper, unless even the shortest
		 * name (one letter of the LV, the infix, the hash) is not */
		dm = kfs_lvm_dm_name(parts[0], snap);
		shortest = g_strdup_printf("%c" KFS_LVM_SNAPSHOT_INFIX ".01234567", parts[1][0]);
		shortest_dm = kfs_lvm_dm_name(parts[0], shortest);
		check(strlen(dm) <= 110 || strlen(shortest_dm) > 110);
		g_free(shortest_dm);
		g_free(shortest);
		g_free(dm);
		g_free(snap);
	}
	g_strfreev(parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *fields[4] = { "", "", "", "vg0/lv0" };
	char *text, *p, *end, **globs;
	size_t n;

	if (size < 1)
		return 0;
	/* the fields, each ended by a NUL (the last by one added here) */
	text = g_malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	end = text + size - 1;
	for (p = text, n = 0; n < G_N_ELEMENTS(fields) && p <= end; n++) {
		fields[n] = p;
		p += strlen(p) + 1;
	}
	globs = g_strsplit(fields[0], "\n", -1);

	check(kfs_name_is_safe(fields[2]) == name_is_safe_spec(fields[2]));
	check_filter(data[0], globs, fields[1], fields[2]);
	check_piece(fields[1]);
	check_lvm(fields[3], fields[2]);

	g_strfreev(globs);
	g_free(text);
	return 0;
}
