/* kolabfs: what a volume does not show.
 *
 * The presets come from the Kolab backup guide: Cyrus rebuilds its search
 * indexes and caches, and the lock files and sockets of a running server
 * are meaningless (even harmful) in a restore.  Matching is on exact names,
 * so "cyrus.squatter" and "stage.old/" stay. */
#include "autoconf.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "filter.h"

enum kfs_rule_type {
	RULE_ANY,       /* any type */
	RULE_DIR,       /* directories only (glob ended in '/') */
	RULE_NONDIR,    /* anything but a directory ("files" in the guide) */
	RULE_SOCKET,    /* unix sockets, whatever their name */
};

struct kfs_rule {
	char *glob;             /* without the trailing '/', without leading '/' */
	bool anchored;          /* matched against the path from the root */
	enum kfs_rule_type type;
};

struct kfs_filter {
	GArray *rules;          /* struct kfs_rule */
	bool needs_type;
};

struct preset_rule {
	const char *glob;
	enum kfs_rule_type type;
};

static const struct preset_rule cyrus_spool[] = {
	{ "cyrus.squat", RULE_NONDIR },
	{ "cyrus.cache.NEW", RULE_NONDIR },
	{ "cyrus.expunge.NEW", RULE_NONDIR },
	{ "cyrus.index.NEW", RULE_NONDIR },
	{ "stage.", RULE_DIR },
	{ "sync.", RULE_DIR },
	{ NULL, RULE_ANY }
};

static const struct preset_rule cyrus_meta[] = {
	{ "socket", RULE_DIR },
	{ "*.lock*", RULE_NONDIR },
	{ NULL, RULE_ANY }
};

static const struct preset_rule mysql[] = {
	{ "*", RULE_SOCKET },
	{ "*.pid", RULE_NONDIR },
	{ NULL, RULE_ANY }
};

static void rule_clear(gpointer p)
{
	g_free(((struct kfs_rule *)p)->glob);
}

static void filter_add(struct kfs_filter *f, const char *glob, bool anchored,
		       enum kfs_rule_type type)
{
	struct kfs_rule r = { g_strdup(glob), anchored, type };

	g_array_append_val(f->rules, r);
	if (type != RULE_ANY)
		f->needs_type = true;
}

bool kfs_filter_glob_ok(const char *glob)
{
	size_t len = strlen(glob);

	if (len > 0 && glob[len - 1] == '/')
		len--;
	while (len > 0 && *glob == '/') {
		glob++;
		len--;
	}
	return len > 0;
}

/* An exclude glob as the user wrote it: trailing '/' means directories,
 * any other '/' anchors it at the volume root. */
static int filter_add_glob(struct kfs_filter *f, const char *glob)
{
	g_autofree char *g = g_strdup(glob);
	enum kfs_rule_type type = RULE_ANY;
	size_t len = strlen(g);
	const char *start = g;

	if (!kfs_filter_glob_ok(glob))
		return -EINVAL;
	if (g[len - 1] == '/') {
		type = RULE_DIR;
		g[--len] = '\0';
	}
	if (strchr(g, '/')) {
		while (*start == '/')
			start++;
		filter_add(f, start, true, type);
	} else {
		filter_add(f, g, false, type);
	}
	return 0;
}

static const struct preset_rule *preset_rules(const char *preset)
{
	if (!strcmp(preset, "cyrus-spool"))
		return cyrus_spool;
	if (!strcmp(preset, "cyrus-meta"))
		return cyrus_meta;
	if (!strcmp(preset, "mysql"))
		return mysql;
	return NULL;
}

struct kfs_filter *kfs_filter_create(const char *preset, char *const *exclude)
{
	struct kfs_filter *f = g_new0(struct kfs_filter, 1);
	const struct preset_rule *p;

	f->rules = g_array_new(FALSE, FALSE, sizeof(struct kfs_rule));
	g_array_set_clear_func(f->rules, rule_clear);
	/* Where kolabfs may keep the snapshots themselves (doc/design.md). */
	filter_add(f, ".kolabfs-snapshots", true, RULE_ANY);
	if (preset) {
		p = preset_rules(preset);
		if (!p)
			goto err_invalid;
		for (; p->glob; p++)
			filter_add(f, p->glob, false, p->type);
	}
	for (; exclude && *exclude; exclude++)
		if (filter_add_glob(f, *exclude) < 0)
			goto err_invalid;
	return f;

err_invalid:
	kfs_filter_destroy(f);
	errno = EINVAL;
	return NULL;
}

void kfs_filter_destroy(struct kfs_filter *filter)
{
	if (!filter)
		return;
	g_array_free(filter->rules, TRUE);
	g_free(filter);
}

static bool type_matches(enum kfs_rule_type type, mode_t mode)
{
	switch (type) {
	case RULE_DIR: return S_ISDIR(mode);
	case RULE_NONDIR: return !S_ISDIR(mode);
	case RULE_SOCKET: return S_ISSOCK(mode);
	default: return true;
	}
}

bool kfs_filter_hides(const struct kfs_filter *filter, const char *parent,
		      const char *name, mode_t mode)
{
	g_autofree char *path = NULL;
	guint i;

	if (!filter)
		return false;
	for (i = 0; i < filter->rules->len; i++) {
		const struct kfs_rule *r =
			&g_array_index(filter->rules, struct kfs_rule, i);

		if (!type_matches(r->type, mode))
			continue;
		if (!r->anchored) {
			if (fnmatch(r->glob, name, 0) == 0)
				return true;
			continue;
		}
		if (!path)
			path = *parent ? g_strconcat(parent, "/", name, NULL)
				       : g_strdup(name);
		if (fnmatch(r->glob, path, FNM_PATHNAME) == 0)
			return true;
	}
	return false;
}

bool kfs_filter_needs_type(const struct kfs_filter *filter)
{
	return filter && filter->needs_type;
}
