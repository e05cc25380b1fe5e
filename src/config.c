/* kolabfs: the configuration file, kolabfs.conf(5).
 *
 * GKeyFile parses the values (escapes, ;-separated lists) but knows no
 * line numbers, and silently merges duplicate groups and keys.  So the raw
 * text is first read by a small line indexer that records the line of
 * every group and key, refuses duplicates and malformed lines, and hands
 * GKeyFile a cleaned copy of the text.  Every message then names the file,
 * the line, the group and the key.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "config.h"     /* src/config.h, the interface */

#define KFS_NAME_MAX 255
#define KFS_RESERVED_NAME "MANIFEST.json"
#define KFS_BTRFS_SUBVOL_INO 256        /* BTRFS_FIRST_FREE_OBJECTID */

G_DEFINE_QUARK(kfs-config-error-quark, kfs_config_error)

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/* "FILE:LINE: [GROUP] KEY: what", leaving out what is unknown. */
static void G_GNUC_PRINTF(7, 8)
kfs_conf_error(GError **error, int code, const char *file, int line,
	       const char *group, const char *key, const char *fmt, ...)
{
	GString *msg = g_string_new(file);
	va_list ap;

	if (line > 0)
		g_string_append_printf(msg, ":%d", line);
	g_string_append(msg, ": ");
	if (group)
		g_string_append_printf(msg, "[%s]%s", group, key ? " " : ": ");
	if (key)
		g_string_append_printf(msg, "%s: ", key);
	va_start(ap, fmt);
	g_string_append_vprintf(msg, fmt, ap);
	va_end(ap);
	g_set_error_literal(error, KFS_CONFIG_ERROR, code, msg->str);
	g_string_free(msg, TRUE);
}

/* ------------------------------------------------------------------ */
/* Names and inode-number spaces                                       */

bool kfs_name_is_safe(const char *name)
{
	const unsigned char *p;
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	/* A leading '.' also rules out "." and "..". */
	if (len == 0 || len > KFS_NAME_MAX || name[0] == '.')
		return false;
	if (!g_utf8_validate(name, (gssize)len, NULL))
		return false;
	for (p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static guint32 kfs_fnv1a(guint32 h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * FNV-1a (32 bits) of "KIND:NAME", folded to 16 bits and mapped into
 * 1..0xfffe: 0 is kolabfs's virtual files, 0xffff its files in state_dir.
 * Derived from the NAME alone so that st_ino stays the same from set to
 * set and mount to mount.
 */
unsigned int kfs_ino_space_of(const char *kind, const char *name)
{
	guint32 h = 2166136261u;

	h = kfs_fnv1a(h, kind);
	h = kfs_fnv1a(h, ":");
	h = kfs_fnv1a(h, name);
	h = (h >> 16) ^ (h & 0xffff);
	return h % 0xfffe + 1;
}

/* ------------------------------------------------------------------ */
/* The line indexer                                                    */

struct kfs_conf_key {
	char *name;
	int line;
};

struct kfs_conf_group {
	char *name;
	int line;
	GPtrArray *keys;                /* struct kfs_conf_key *, file order */
};

struct kfs_conf_index {
	const char *file;
	GPtrArray *groups;              /* struct kfs_conf_group *, file order */
	GHashTable *by_name;            /* group name -> group (borrowed) */
	GString *clean;                 /* the text GKeyFile gets */
};

static void kfs_conf_key_free(gpointer data)
{
	struct kfs_conf_key *k = data;

	g_free(k->name);
	g_free(k);
}

static void kfs_conf_group_free(gpointer data)
{
	struct kfs_conf_group *g = data;

	g_free(g->name);
	g_ptr_array_unref(g->keys);
	g_free(g);
}

static void kfs_conf_index_init(struct kfs_conf_index *idx, const char *file)
{
	idx->file = file;
	idx->groups = g_ptr_array_new_with_free_func(kfs_conf_group_free);
	idx->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	idx->clean = g_string_new(NULL);
}

static void kfs_conf_index_clear(struct kfs_conf_index *idx)
{
	g_hash_table_unref(idx->by_name);
	g_ptr_array_unref(idx->groups);
	g_string_free(idx->clean, TRUE);
}

static const struct kfs_conf_key *
kfs_conf_group_key(const struct kfs_conf_group *g, const char *name)
{
	guint i;

	for (i = 0; i < g->keys->len; i++) {
		const struct kfs_conf_key *k = g_ptr_array_index(g->keys, i);

		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

/*
 * An inline comment: a '#' preceded by white space ends the line, as in
 * the contract's own example ("state_dir = /var/lib/kolabfs   # ...").
 * GKeyFile only knows whole-line comments, so it is cut off here, together
 * with trailing white space (which GKeyFile would keep in the value, an
 * invisible mistake in a path).  A value that needs " #" or trailing
 * space writes "\s#" or "\s": the '#' then follows an 's'.
 */
static void kfs_conf_cut_comment(char *s)
{
	char *p;

	for (p = s; *p; p++) {
		if (*p == '#' && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	g_strchomp(s);
}

/* Group names as GKeyFile accepts them: no brackets, no control chars. */
static bool kfs_conf_group_name_ok(const char *name)
{
	const unsigned char *p;

	if (!*name)
		return false;
	for (p = (const unsigned char *)name; *p; p++)
		if (*p == '[' || *p == ']' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Stricter than GKeyFile (which allows spaces and locale suffixes): every
 * key kolabfs knows is made of these. */
static bool kfs_conf_key_name_ok(const char *name)
{
	const char *p;

	if (!*name)
		return false;
	for (p = name; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

static bool kfs_conf_index_group(struct kfs_conf_index *idx, char *s,
				 int line, struct kfs_conf_group **cur,
				 GError **error)
{
	size_t len = strlen(s);
	struct kfs_conf_group *g, *first;
	char *name = NULL;

	if (len >= 3 && s[len - 1] == ']') {
		s[len - 1] = '\0';
		name = s + 1;
	}
	if (!name || !kfs_conf_group_name_ok(name)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, NULL, NULL,
			       "expected a group header such as [volume:NAME]");
		return false;
	}
	first = g_hash_table_lookup(idx->by_name, name);
	if (first) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, first->name, NULL,
			       "duplicate group, first at line %d", first->line);
		return false;
	}
	g = g_new0(struct kfs_conf_group, 1);
	g->name = g_strdup(name);
	g->line = line;
	g->keys = g_ptr_array_new_with_free_func(kfs_conf_key_free);
	g_ptr_array_add(idx->groups, g);
	g_hash_table_insert(idx->by_name, g->name, g);
	g_string_append_printf(idx->clean, "[%s]\n", g->name);
	*cur = g;
	return true;
}

static bool kfs_conf_index_key(struct kfs_conf_index *idx, char *s, int line,
			       struct kfs_conf_group *g, GError **error)
{
	const struct kfs_conf_key *first;
	struct kfs_conf_key *k;
	char *eq = strchr(s, '=');
	char *key, *value;

	if (!eq) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, g ? g->name : NULL, NULL,
			       "expected \"key = value\", a [group] or a # comment");
		return false;
	}
	*eq = '\0';
	key = g_strchomp(s);
	value = g_strchug(eq + 1);
	if (!kfs_conf_key_name_ok(key)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, g ? g->name : NULL, NULL,
			       "expected a key name (letters, digits, '_', '-') before '=', got \"%s\"",
			       key);
		return false;
	}
	if (!g) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, NULL, key,
			       "expected a [group] header before the first key");
		return false;
	}
	first = kfs_conf_group_key(g, key);
	if (first) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, g->name, key,
			       "duplicate key, first at line %d", first->line);
		return false;
	}
	k = g_new0(struct kfs_conf_key, 1);
	k->name = g_strdup(key);
	k->line = line;
	g_ptr_array_add(g->keys, k);
	g_string_append_printf(idx->clean, "%s=%s\n", key, value);
	return true;
}

/*
 * Index the text of the file line by line.  The cleaned text keeps one
 * line per line of the file (comments become blank lines).
 */
static bool kfs_conf_index_text(struct kfs_conf_index *idx, const char *text,
				gsize len, GError **error)
{
	struct kfs_conf_group *cur = NULL;
	const char *nul = memchr(text, '\0', len);
	char **lines;
	bool ok = true;
	int i;

	/* The lines below are C strings: a NUL would silently end one. */
	if (nul) {
		for (i = 1; text < nul; text++)
			i += *text == '\n';
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file, i,
			       NULL, NULL, "contains a NUL byte: not a text file");
		return false;
	}
	lines = g_strsplit(text, "\n", -1);
	for (i = 0; ok && lines[i]; i++) {
		char *s = g_strchug(lines[i]);

		if (!g_utf8_validate(s, -1, NULL)) {
			kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID,
				       idx->file, i + 1, cur ? cur->name : NULL,
				       NULL, "expected UTF-8 text");
			ok = false;
			continue;
		}
		if (*s != '#')
			kfs_conf_cut_comment(s);
		if (*s == '#' || *s == '\0')
			g_string_append_c(idx->clean, '\n');
		else if (*s == '[')
			ok = kfs_conf_index_group(idx, s, i + 1, &cur, error);
		else
			ok = kfs_conf_index_key(idx, s, i + 1, cur, error);
	}
	g_strfreev(lines);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

struct kfs_conf_parser {
	const char *file;
	GKeyFile *kf;
	struct kfs_conf_index idx;
	struct kfs_config *cfg;
	size_t n_volumes;       /* parsed so far */
	size_t n_copies;
	GHashTable *names;      /* NAME -> group; volumes and copies share it */
	GHashTable *spaces;     /* inode-number space -> group */
};

#define PERR(p, line, g, key, ...) \
	kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, (p)->file, (line), \
		       (g)->name, (key), __VA_ARGS__)

static int kfs_conf_line(const struct kfs_conf_group *g, const char *key)
{
	const struct kfs_conf_key *k = kfs_conf_group_key(g, key);

	return k ? k->line : g->line;
}

/* Every key of G must be in KNOWN (NULL-terminated). */
static bool kfs_conf_check_keys(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *const *known, GError **error)
{
	guint i;

	for (i = 0; i < g->keys->len; i++) {
		const struct kfs_conf_key *k = g_ptr_array_index(g->keys, i);
		char *list;

		if (g_strv_contains(known, k->name))
			continue;
		list = g_strjoinv(", ", (char **)known);
		PERR(p, k->line, g, k->name, "unknown key, expected one of %s",
		     list);
		g_free(list);
		return false;
	}
	return true;
}

/* How kfs_conf_get() and kfs_conf_get_list() treat a key. */
enum {
	KFS_CONF_REQUIRED = 1 << 0,     /* absence is an error */
	KFS_CONF_MAY_BE_EMPTY = 1 << 1, /* "key =" means "none" */
};

/* Has G got KEY?  If not and FLAGS require it, say so. */
static bool kfs_conf_has(struct kfs_conf_parser *p,
			 const struct kfs_conf_group *g, const char *key,
			 unsigned int flags, const char *expect, GError **error)
{
	if (kfs_conf_group_key(g, key))
		return true;
	if (flags & KFS_CONF_REQUIRED)
		PERR(p, g->line, g, key, "missing, expected %s", expect);
	return false;
}

/*
 * The string value of KEY in G, or NULL in *value when the key is absent.
 * EXPECT says what the value should be, for messages.
 */
static bool kfs_conf_get(struct kfs_conf_parser *p,
			 const struct kfs_conf_group *g, const char *key,
			 unsigned int flags, const char *expect, char **value,
			 GError **error)
{
	int line = kfs_conf_line(g, key);
	GError *local = NULL;

	*value = NULL;
	if (!kfs_conf_has(p, g, key, flags, expect, error))
		return !(flags & KFS_CONF_REQUIRED);
	/* On a bad escape GKeyFile returns the raw value *and* an error. */
	*value = g_key_file_get_string(p->kf, g->name, key, &local);
	if (local) {
		PERR(p, line, g, key, "%s", local->message);
		g_error_free(local);
		g_clear_pointer(value, g_free);
		return false;
	}
	if (!**value && !(flags & KFS_CONF_MAY_BE_EMPTY)) {
		PERR(p, line, g, key, "expected a non-empty value (%s)", expect);
		g_clear_pointer(value, g_free);
		return false;
	}
	return true;
}

/*
 * The ;-separated list of KEY in G, or NULL in *list when the key is
 * absent.  Every element is stripped of surrounding white space ("a; b")
 * and must not be empty.
 */
static bool kfs_conf_get_list(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g, const char *key,
			      unsigned int flags, const char *expect,
			      char ***list, GError **error)
{
	int line = kfs_conf_line(g, key);
	GError *local = NULL;
	char **l, **e;

	*list = NULL;
	if (!kfs_conf_has(p, g, key, flags, expect, error))
		return !(flags & KFS_CONF_REQUIRED);
	l = g_key_file_get_string_list(p->kf, g->name, key, NULL, &local);
	if (local) {
		PERR(p, line, g, key, "%s", local->message);
		g_error_free(local);
		g_strfreev(l);
		return false;
	}
	if (!l[0] && !(flags & KFS_CONF_MAY_BE_EMPTY)) {
		PERR(p, line, g, key, "expected a non-empty value (%s)", expect);
		goto free_list;
	}
	for (e = l; *e; e++) {
		if (!*g_strstrip(*e)) {
			PERR(p, line, g, key,
			     "expected %s, got an empty element", expect);
			goto free_list;
		}
	}
	*list = l;
	return true;

free_list:
	g_strfreev(l);
	return false;
}

/* Absolute path in canonical form (no filesystem access), or NULL. */
static char *kfs_conf_abs_path(const char *value)
{
	if (!g_path_is_absolute(value))
		return NULL;
	return g_canonicalize_filename(value, "/");
}

/* Is B equal to A or inside it?  Both canonical. */
static bool kfs_conf_path_within(const char *b, const char *a)
{
	size_t n = strlen(a);

	if (strcmp(a, "/") == 0)
		return true;
	return strncmp(b, a, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */

/*
 * Is NAME, the NAME of group G, usable as a directory of every set, and
 * not taken by another volume or copy?  Then claim it, and the inode-number
 * space derived from it (returned in *space).
 */
static bool kfs_conf_claim_name(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *kind, const char *name,
				unsigned int *space, GError **error)
{
	const struct kfs_conf_group *other;

	if (!kfs_name_is_safe(name) || strcmp(name, KFS_RESERVED_NAME) == 0) {
		PERR(p, g->line, g, NULL,
		     "expected a NAME that is one directory name (not empty, no '/', no leading '.', no control characters, at most %d bytes, not %s), got \"%s\"",
		     KFS_NAME_MAX, KFS_RESERVED_NAME, name);
		return false;
	}
	other = g_hash_table_lookup(p->names, name);
	if (other) {
		PERR(p, g->line, g, NULL,
		     "NAME \"%s\" is already used by [%s] at line %d (volumes and copies share the directory of a set)",
		     name, other->name, other->line);
		return false;
	}
	g_hash_table_insert(p->names, (char *)name, (gpointer)g);

	/* Two NAMEs hashing alike would mix their inode numbers.  Rare
	 * (1 in 65534 per pair); renaming is better than a number that
	 * changes with the order of the file. */
	*space = kfs_ino_space_of(kind, name);
	other = g_hash_table_lookup(p->spaces, GUINT_TO_POINTER(*space));
	if (other) {
		PERR(p, g->line, g, NULL,
		     "its inode-number space 0x%04x (a hash of the NAME) is the same as that of [%s] at line %d; please rename one of them",
		     *space, other->name, other->line);
		return false;
	}
	g_hash_table_insert(p->spaces, GUINT_TO_POINTER(*space), (gpointer)g);
	return true;
}

/* Does FMT have a conversion other than "%%"? */
static bool kfs_conf_has_conversion(const char *fmt)
{
	const char *c;

	for (c = fmt; (c = strchr(c, '%')); c += 2) {
		if (c[1] == '\0')
			return false;
		if (c[1] != '%')
			return true;
	}
	return false;
}

/*
 * name_format must make a safe, changing directory name.  Format a fixed
 * instant the way a set is named (strftime(3), UTC) and check the result.
 */
static bool kfs_conf_check_name_format(struct kfs_conf_parser *p,
				       const struct kfs_conf_group *g,
				       const char *fmt, GError **error)
{
	int line = kfs_conf_line(g, "name_format");
	const time_t instant = 1795753800;      /* 2026-11-27T04:30:00Z */
	char buf[2 * KFS_NAME_MAX];
	struct tm tm;
	size_t n;

	if (!kfs_conf_has_conversion(fmt)) {
		PERR(p, line, g, "name_format",
		     "expected a strftime(3) format with a conversion such as %%Y, got \"%s\" (every set would get the same name)",
		     fmt);
		return false;
	}
	gmtime_r(&instant, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = strftime(buf, sizeof(buf), fmt, &tm);
#pragma GCC diagnostic pop
	if (n == 0 || !kfs_name_is_safe(buf)) {
		char *shown = g_strescape(n ? buf : "", NULL);

		PERR(p, line, g, "name_format",
		     "expected a format that makes one directory name (not empty, no '/', no leading '.', no control characters, at most %d bytes), but \"%s\" makes \"%s\"",
		     KFS_NAME_MAX, fmt, shown);
		g_free(shown);
		return false;
	}
	return true;
}

static bool kfs_conf_parse_main(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g, GError **error)
{
	static const char *const known[] = { "state_dir", "name_format", NULL };
	struct kfs_config *cfg = p->cfg;
	char *value;

	if (!kfs_conf_check_keys(p, g, known, error))
		return false;

	if (!kfs_conf_get(p, g, "state_dir", 0, "an absolute path", &value,
			  error))
		return false;
	if (value) {
		char *dir = kfs_conf_abs_path(value);

		cfg->state_dir_line = kfs_conf_line(g, "state_dir");
		if (!dir || strcmp(dir, "/") == 0) {
			/* kolabfs makes state_dir 0700: never "/". */
			PERR(p, cfg->state_dir_line, g, "state_dir",
			     "expected an absolute path other than /, got \"%s\"",
			     value);
			g_free(dir);
			g_free(value);
			return false;
		}
		g_free(value);
		g_free(cfg->state_dir);
		cfg->state_dir = dir;
	}

	if (!kfs_conf_get(p, g, "name_format", 0, "a strftime(3) format",
			  &value, error))
		return false;
	if (value) {
		if (!kfs_conf_check_name_format(p, g, value, error)) {
			g_free(value);
			return false;
		}
		g_free(cfg->name_format);
		cfg->name_format = value;
	}
	return true;
}

static bool kfs_conf_parse_backend(struct kfs_conf_parser *p,
				   const struct kfs_conf_group *g,
				   struct kfs_volume_conf *v, GError **error)
{
	static const char *const lvm_only[] = { "lv", "snapshot_size", NULL };
	int line = kfs_conf_line(g, "backend");
	const char *const *key;
	char *value;
	bool ok = false;

	if (!kfs_conf_get(p, g, "backend", KFS_CONF_REQUIRED,
			  "one of btrfs, lvm", &value, error))
		return false;
	if (strcmp(value, "btrfs") == 0) {
		v->backend = KFS_BACKEND_BTRFS;
		ok = true;
	} else if (strcmp(value, "lvm") == 0) {
		PERR(p, line, g, "backend",
		     "backend lvm is not yet supported in this version of kolabfs; expected btrfs");
	} else {
		PERR(p, line, g, "backend",
		     "expected one of btrfs, lvm, got \"%s\"", value);
	}
	g_free(value);
	if (!ok)
		return false;

	for (key = lvm_only; *key; key++) {
		if (kfs_conf_group_key(g, *key)) {
			PERR(p, kfs_conf_line(g, *key), g, *key,
			     "only valid with backend = lvm, this volume is btrfs");
			return false;
		}
	}
	return true;
}

static bool kfs_conf_parse_path(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				struct kfs_volume_conf *v, GError **error)
{
	const struct kfs_config *cfg = p->cfg;
	char *value;
	size_t i;

	if (!kfs_conf_get(p, g, "path", KFS_CONF_REQUIRED,
			  "the absolute path of a btrfs subvolume", &value,
			  error))
		return false;
	v->path_line = kfs_conf_line(g, "path");
	v->path = kfs_conf_abs_path(value);
	if (!v->path)
		PERR(p, v->path_line, g, "path",
		     "expected an absolute path, got \"%s\"", value);
	g_free(value);
	if (!v->path)
		return false;

	for (i = 0; i < p->n_volumes; i++) {
		const struct kfs_volume_conf *o = &cfg->volumes[i];

		if (o != v && o->path && strcmp(o->path, v->path) == 0) {
			PERR(p, v->path_line, g, "path",
			     "%s is also the path of [volume:%s] at line %d; expected one volume per subvolume",
			     v->path, o->name, o->path_line);
			return false;
		}
	}
	return true;
}

/*
 * subdir is relative to the volume and stays inside it: no leading '/',
 * no "..".  "." and empty components are dropped ("./data/" is "data");
 * what is left empty means the whole volume.
 */
static bool kfs_conf_parse_subdir(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  struct kfs_volume_conf *v, GError **error)
{
	const char *expect = "a directory relative to the volume's root";
	GPtrArray *parts;
	char **comps, **c;
	char *value;
	bool ok = false;

	if (!kfs_conf_get(p, g, "subdir", KFS_CONF_MAY_BE_EMPTY, expect,
			  &value, error))
		return false;
	if (!value)
		return true;
	v->subdir_line = kfs_conf_line(g, "subdir");
	if (value[0] == '/') {
		PERR(p, v->subdir_line, g, "subdir",
		     "expected %s (no leading '/'), got \"%s\"", expect, value);
		g_free(value);
		return false;
	}
	parts = g_ptr_array_new();
	comps = g_strsplit(value, "/", -1);
	for (c = comps; *c; c++) {
		if (strcmp(*c, "..") == 0) {
			PERR(p, v->subdir_line, g, "subdir",
			     "expected %s (no \"..\"), got \"%s\"", expect,
			     value);
			goto free_parts;
		}
		if (**c && strcmp(*c, ".") != 0)
			g_ptr_array_add(parts, *c);
	}
	g_ptr_array_add(parts, NULL);
	if (parts->len > 1)
		v->subdir = g_strjoinv("/", (char **)parts->pdata);
	ok = true;

free_parts:
	g_strfreev(comps);
	g_ptr_array_unref(parts);
	g_free(value);
	return ok;
}

static bool kfs_conf_parse_filter(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  struct kfs_volume_conf *v, GError **error)
{
	static const char *const presets[] = {
		"cyrus-spool", "cyrus-meta", "mysql", NULL
	};
	char *value;

	if (!kfs_conf_get(p, g, "preset", KFS_CONF_MAY_BE_EMPTY,
			  "one of cyrus-spool, cyrus-meta, mysql", &value,
			  error))
		return false;
	if (value && *value && !g_strv_contains(presets, value)) {
		PERR(p, kfs_conf_line(g, "preset"), g, "preset",
		     "expected one of cyrus-spool, cyrus-meta, mysql, got \"%s\"",
		     value);
		g_free(value);
		return false;
	}
	if (value && !*value)
		g_clear_pointer(&value, g_free);
	v->preset = value;

	if (!kfs_conf_get_list(p, g, "exclude", KFS_CONF_MAY_BE_EMPTY,
			       "a ;-separated list of globs", &v->exclude,
			       error))
		return false;
	if (!v->exclude)
		v->exclude = g_new0(char *, 1);
	return true;
}

static bool kfs_conf_parse_volume(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  const char *name, GError **error)
{
	static const char *const known[] = {
		"backend", "path", "lv", "snapshot_size", "subdir", "preset",
		"exclude", NULL
	};
	struct kfs_volume_conf *v = &p->cfg->volumes[p->n_volumes++];

	v->name = g_strdup(name);
	v->line = g->line;
	return kfs_conf_claim_name(p, g, "volume", name, &v->ino_space,
				   error) &&
	       kfs_conf_check_keys(p, g, known, error) &&
	       kfs_conf_parse_backend(p, g, v, error) &&
	       kfs_conf_parse_path(p, g, v, error) &&
	       kfs_conf_parse_subdir(p, g, v, error) &&
	       kfs_conf_parse_filter(p, g, v, error);
}

static bool kfs_conf_parse_copy(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *name, GError **error)
{
	static const char *const known[] = { "paths", NULL };
	const char *expect = "a ;-separated list of absolute paths";
	struct kfs_copy_conf *c = &p->cfg->copies[p->n_copies++];
	char **path, **o;

	c->name = g_strdup(name);
	c->line = g->line;
	if (!kfs_conf_claim_name(p, g, "copy", name, &c->ino_space, error) ||
	    !kfs_conf_check_keys(p, g, known, error) ||
	    !kfs_conf_get_list(p, g, "paths", KFS_CONF_REQUIRED, expect,
			       &c->paths, error))
		return false;
	c->paths_line = kfs_conf_line(g, "paths");

	for (path = c->paths; *path; path++) {
		char *abs = kfs_conf_abs_path(*path);

		if (!abs) {
			PERR(p, c->paths_line, g, "paths",
			     "expected %s, got \"%s\"", expect, *path);
			return false;
		}
		g_free(*path);
		*path = abs;
		/* A copy of a tree holding state_dir would copy itself. */
		if (kfs_conf_path_within(p->cfg->state_dir, *path) ||
		    kfs_conf_path_within(*path, p->cfg->state_dir)) {
			PERR(p, c->paths_line, g, "paths",
			     "%s overlaps state_dir %s, where copies are written; expected paths outside it",
			     *path, p->cfg->state_dir);
			return false;
		}
		/* Both would land in the same place of the copy. */
		for (o = c->paths; o < path; o++) {
			if (kfs_conf_path_within(*path, *o) ||
			    kfs_conf_path_within(*o, *path)) {
				PERR(p, c->paths_line, g, "paths",
				     "%s and %s overlap; expected each file to be listed once",
				     *o, *path);
				return false;
			}
		}
	}
	return true;
}

static bool kfs_conf_parse_group(struct kfs_conf_parser *p,
				 const struct kfs_conf_group *g,
				 GError **error)
{
	if (g_str_has_prefix(g->name, "volume:"))
		return kfs_conf_parse_volume(p, g, g->name + strlen("volume:"),
					     error);
	if (g_str_has_prefix(g->name, "copy:"))
		return kfs_conf_parse_copy(p, g, g->name + strlen("copy:"),
					   error);
	/* Refused rather than ignored: a backup that silently skips the
	 * database lock or the directory would be worse than none. */
	if (strcmp(g->name, "mysql") == 0 || g_str_has_prefix(g->name, "ldap:"))
		PERR(p, g->line, g, NULL,
		     "this group is not yet supported in this version of kolabfs; remove it");
	else
		PERR(p, g->line, g, NULL,
		     "unknown group, expected [kolabfs], [volume:NAME] or [copy:NAME]");
	return false;
}

static bool kfs_conf_parse_groups(struct kfs_conf_parser *p, GError **error)
{
	const struct kfs_conf_group *top;
	struct kfs_config *cfg = p->cfg;
	guint i;

	for (i = 0; i < p->idx.groups->len; i++) {
		const struct kfs_conf_group *g = p->idx.groups->pdata[i];

		if (g_str_has_prefix(g->name, "volume:"))
			cfg->n_volumes++;
		else if (g_str_has_prefix(g->name, "copy:"))
			cfg->n_copies++;
	}
	cfg->volumes = g_new0(struct kfs_volume_conf, cfg->n_volumes);
	cfg->copies = g_new0(struct kfs_copy_conf, cfg->n_copies);

	/* [kolabfs] first: copies are checked against its state_dir. */
	top = g_hash_table_lookup(p->idx.by_name, "kolabfs");
	if (top && !kfs_conf_parse_main(p, top, error))
		return false;
	for (i = 0; i < p->idx.groups->len; i++) {
		const struct kfs_conf_group *g = p->idx.groups->pdata[i];

		if (g != top && !kfs_conf_parse_group(p, g, error))
			return false;
	}
	if (cfg->n_volumes + cfg->n_copies == 0) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, p->file, 0,
			       NULL, NULL,
			       "nothing to back up: expected at least one [volume:NAME] or [copy:NAME] group");
		return false;
	}
	return true;
}

struct kfs_config *kfs_config_load(const char *file, GError **error)
{
	struct kfs_conf_parser p = { .file = file };
	struct kfs_config *cfg;
	GError *local = NULL;
	char *text;
	gsize len;

	if (!g_file_get_contents(file, &text, &len, &local)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, file, 0, NULL,
			       NULL, "%s", local->message);
		g_error_free(local);
		return NULL;
	}
	cfg = g_new0(struct kfs_config, 1);
	cfg->file = g_strdup(file);
	cfg->state_dir = g_strdup(KFS_DEFAULT_STATE_DIR);
	cfg->name_format = g_strdup(KFS_DEFAULT_NAME_FORMAT);
	p.cfg = cfg;
	p.kf = g_key_file_new();
	p.names = g_hash_table_new(g_str_hash, g_str_equal);
	p.spaces = g_hash_table_new(NULL, NULL);
	kfs_conf_index_init(&p.idx, file);

	if (!kfs_conf_index_text(&p.idx, text, len, error))
		goto destroy_cfg;
	/* The indexer let through only what GKeyFile accepts; a failure
	 * here is a bug, but still reported rather than trusted away. */
	if (!g_key_file_load_from_data(p.kf, p.idx.clean->str, p.idx.clean->len,
				       G_KEY_FILE_NONE, &local)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, file, 0, NULL,
			       NULL, "%s", local->message);
		g_error_free(local);
		goto destroy_cfg;
	}
	if (!kfs_conf_parse_groups(&p, error))
		goto destroy_cfg;
	goto free_parser;

destroy_cfg:
	kfs_config_destroy(cfg);
	cfg = NULL;
free_parser:
	kfs_conf_index_clear(&p.idx);
	g_hash_table_unref(p.spaces);
	g_hash_table_unref(p.names);
	g_key_file_unref(p.kf);
	g_free(text);
	return cfg;
}

void kfs_config_destroy(struct kfs_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_volumes; i++) {
		struct kfs_volume_conf *v = &cfg->volumes[i];

		g_free(v->name);
		g_free(v->path);
		g_free(v->lv);
		g_free(v->snapshot_size);
		g_free(v->subdir);
		g_free(v->preset);
		g_strfreev(v->exclude);
	}
	g_free(cfg->volumes);
	for (i = 0; i < cfg->n_copies; i++) {
		g_free(cfg->copies[i].name);
		g_strfreev(cfg->copies[i].paths);
	}
	g_free(cfg->copies);
	g_free(cfg->file);
	g_free(cfg->state_dir);
	g_free(cfg->name_format);
	g_free(cfg);
}

/* ------------------------------------------------------------------ */
/* The host                                                            */

#define HERR(cfg, line, group, key, ...) \
	kfs_conf_error(error, KFS_CONFIG_ERROR_HOST, (cfg)->file, (line), \
		       (group), (key), __VA_ARGS__)

static const char *kfs_conf_fs_name(unsigned long type)
{
	switch (type) {
	case EXT4_SUPER_MAGIC: return "ext2/ext3/ext4";
	case XFS_SUPER_MAGIC: return "xfs";
	case TMPFS_MAGIC: return "tmpfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	case NFS_SUPER_MAGIC: return "nfs";
	case FUSE_SUPER_MAGIC: return "a FUSE filesystem";
	case SQUASHFS_MAGIC: return "squashfs";
	case 0x2fc12fc1: return "zfs";  /* not in linux/magic.h */
	default: return NULL;
	}
}

/* Is the volume's path the root of a btrfs subvolume?  *st is its stat. */
static bool kfs_conf_check_subvolume(const struct kfs_config *cfg,
				     const struct kfs_volume_conf *v,
				     struct stat *st, GError **error)
{
	char *group = g_strconcat("volume:", v->name, NULL);
	struct statfs sfs;
	const char *fs;
	bool ok = false;

	if (stat(v->path, st) < 0 || statfs(v->path, &sfs) < 0) {
		if (errno == ENOENT)
			HERR(cfg, v->path_line, group, "path",
			     "%s does not exist", v->path);
		else
			HERR(cfg, v->path_line, group, "path",
			     "cannot look at %s: %s", v->path,
			     g_strerror(errno));
	} else if (!S_ISDIR(st->st_mode)) {
		HERR(cfg, v->path_line, group, "path",
		     "%s is not a directory, expected a btrfs subvolume",
		     v->path);
	} else if ((unsigned long)sfs.f_type != BTRFS_SUPER_MAGIC) {
		fs = kfs_conf_fs_name((unsigned long)sfs.f_type);
		if (fs)
			HERR(cfg, v->path_line, group, "path",
			     "%s is not a btrfs subvolume (it is on %s)",
			     v->path, fs);
		else
			HERR(cfg, v->path_line, group, "path",
			     "%s is not a btrfs subvolume (it is on a filesystem of type 0x%lx)",
			     v->path, (unsigned long)sfs.f_type);
	} else if (st->st_ino != KFS_BTRFS_SUBVOL_INO) {
		HERR(cfg, v->path_line, group, "path",
		     "%s is not a btrfs subvolume (it is a directory inside one; name the subvolume as path and this directory as subdir)",
		     v->path);
	} else {
		ok = true;
	}
	g_free(group);
	return ok;
}

/*
 * subdir must be a directory of the subvolume itself: every component a
 * real directory (a symbolic link would lead the snapshot's view back to
 * the live files), on the same device (a nested subvolume or a mount is
 * not in the snapshot).
 */
static bool kfs_conf_check_subdir(const struct kfs_config *cfg,
				  const struct kfs_volume_conf *v,
				  const struct stat *root, GError **error)
{
	char *group = g_strconcat("volume:", v->name, NULL);
	char **comps = g_strsplit(v->subdir, "/", -1);
	GString *path = g_string_new(v->path);
	struct stat st;
	bool ok = false;
	char **c;

	for (c = comps; *c; c++) {
		if (path->str[path->len - 1] != '/')
			g_string_append_c(path, '/');
		g_string_append(path, *c);
		if (lstat(path->str, &st) < 0) {
			if (errno == ENOENT)
				HERR(cfg, v->subdir_line, group, "subdir",
				     "%s does not exist", path->str);
			else
				HERR(cfg, v->subdir_line, group, "subdir",
				     "cannot look at %s: %s", path->str,
				     g_strerror(errno));
			goto free_path;
		}
		if (!S_ISDIR(st.st_mode)) {
			HERR(cfg, v->subdir_line, group, "subdir",
			     "%s is not a directory%s", path->str,
			     S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
			goto free_path;
		}
		if (st.st_dev != root->st_dev) {
			HERR(cfg, v->subdir_line, group, "subdir",
			     "%s is a separate subvolume or mount, which a snapshot of %s does not include",
			     path->str, v->path);
			goto free_path;
		}
	}
	ok = true;

free_path:
	g_string_free(path, TRUE);
	g_strfreev(comps);
	g_free(group);
	return ok;
}

/*
 * Different paths, one subvolume (symbolic links, bind mounts): it would
 * be snapshotted twice.  ROOTS[0..I] are the stats of the volumes' paths.
 */
static bool kfs_conf_check_distinct(const struct kfs_config *cfg,
				    const struct stat *roots, size_t i,
				    GError **error)
{
	const struct kfs_volume_conf *v = &cfg->volumes[i], *o;
	char *group;
	size_t j;

	for (j = 0; j < i; j++) {
		if (roots[j].st_dev == roots[i].st_dev &&
		    roots[j].st_ino == roots[i].st_ino)
			break;
	}
	if (j == i)
		return true;
	o = &cfg->volumes[j];
	group = g_strconcat("volume:", v->name, NULL);
	HERR(cfg, v->path_line, group, "path",
	     "%s is the same subvolume as %s of [volume:%s] at line %d",
	     v->path, o->path, o->name, o->path_line);
	g_free(group);
	return false;
}

static bool kfs_conf_check_volumes(const struct kfs_config *cfg,
				   GError **error)
{
	struct stat *roots = g_new0(struct stat, cfg->n_volumes);
	bool ok = false;
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++) {
		const struct kfs_volume_conf *v = &cfg->volumes[i];

		if (v->backend != KFS_BACKEND_BTRFS)
			continue;
		if (!kfs_conf_check_subvolume(cfg, v, &roots[i], error))
			goto free_roots;
		if (v->subdir &&
		    !kfs_conf_check_subdir(cfg, v, &roots[i], error))
			goto free_roots;
		if (!kfs_conf_check_distinct(cfg, roots, i, error))
			goto free_roots;
	}
	ok = true;

free_roots:
	g_free(roots);
	return ok;
}

static bool kfs_conf_check_state_dir(const struct kfs_config *cfg,
				     GError **error)
{
	char *parent = g_path_get_dirname(cfg->state_dir);
	const char *how = cfg->state_dir_line ? "" : " (the default state_dir)";
	struct stat st;
	bool ok = false;

	if (stat(parent, &st) < 0) {
		if (errno == ENOENT)
			HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
			     "parent directory %s does not exist%s", parent,
			     how);
		else
			HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
			     "cannot look at parent directory %s: %s%s", parent,
			     g_strerror(errno), how);
	} else if (!S_ISDIR(st.st_mode)) {
		HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
		     "parent %s is not a directory%s", parent, how);
	} else if (stat(cfg->state_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
		     "%s exists and is not a directory%s", cfg->state_dir,
		     how);
	} else {
		ok = true;
	}
	g_free(parent);
	return ok;
}

static bool kfs_conf_check_copy_paths(const struct kfs_config *cfg,
				      GError **error)
{
	struct stat st;
	size_t i;
	char **path;

	for (i = 0; i < cfg->n_copies; i++) {
		const struct kfs_copy_conf *c = &cfg->copies[i];

		for (path = c->paths; *path; path++) {
			char *group;
			int err;

			if (lstat(*path, &st) == 0)
				continue;
			err = errno;
			group = g_strconcat("copy:", c->name, NULL);
			if (err == ENOENT)
				HERR(cfg, c->paths_line, group, "paths",
				     "%s does not exist", *path);
			else
				HERR(cfg, c->paths_line, group, "paths",
				     "cannot look at %s: %s", *path,
				     g_strerror(err));
			g_free(group);
			return false;
		}
	}
	return true;
}

bool kfs_config_check_host(const struct kfs_config *cfg, GError **error)
{
	return kfs_conf_check_volumes(cfg, error) &&
	       kfs_conf_check_copy_paths(cfg, error) &&
	       kfs_conf_check_state_dir(cfg, error);
}
