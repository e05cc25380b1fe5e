/* kolabfs: the line indexer of kolabfs.conf(5).
 *
 * GKeyFile parses the values (escapes, ;-separated lists) but knows no
 * line numbers, and silently merges duplicate groups and keys.  So the raw
 * text is first read by this small line indexer, which records the line of
 * every group and key, refuses duplicates and malformed lines, and hands
 * GKeyFile a cleaned copy of the text (config.c).
 */
#include "autoconf.h"

#include <string.h>

#include "config-int.h"

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

void kfs_conf_index_init(struct kfs_conf_index *idx, const char *file)
{
	idx->file = file;
	idx->groups = g_ptr_array_new_with_free_func(kfs_conf_group_free);
	idx->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	idx->clean = g_string_new(NULL);
}

void kfs_conf_index_clear(struct kfs_conf_index *idx)
{
	g_hash_table_unref(idx->by_name);
	g_ptr_array_unref(idx->groups);
	g_string_free(idx->clean, TRUE);
}

const struct kfs_conf_key *
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
		g_autofree char *shown = NULL;

		if (name)
			s[len - 1] = ']';
		shown = g_strescape(s, NULL);
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file,
			       line, NULL, NULL,
			       "expected a group header such as [volume:NAME], got \"%s\"",
			       shown);
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
 * A line that is not UTF-8: say which key or group header it is, with the
 * bytes escaped (a message is text; "\\351" shows what an editor hid).
 */
static void kfs_conf_bad_utf8(struct kfs_conf_index *idx, const char *s,
			      int line, const struct kfs_conf_group *cur,
			      GError **error)
{
	const char *eq = strchr(s, '=');
	g_autofree char *key = eq ? g_strndup(s, (gsize)(eq - s)) : NULL;
	g_autofree char *shown = NULL;

	if (key)
		g_strchomp(key);
	if (*s == '[') {
		shown = g_strescape(s, NULL);
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file, line,
			       NULL, NULL, "expected UTF-8 text, got the group header \"%s\"",
			       shown);
	} else if (cur && key && kfs_conf_key_name_ok(key)) {
		shown = g_strescape(g_strchug((char *)eq + 1), NULL);
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file, line,
			       cur->name, key, "expected UTF-8 text, got \"%s\"", shown);
	} else {
		shown = g_strescape(s, NULL);
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, idx->file, line,
			       cur ? cur->name : NULL, NULL,
			       "expected UTF-8 text, got \"%s\"", shown);
	}
}

/*
 * Index the text of the file line by line.  The cleaned text keeps one
 * line per line of the file (comments become blank lines).
 */
bool kfs_conf_index_text(struct kfs_conf_index *idx, const char *text,
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
			kfs_conf_bad_utf8(idx, s, i + 1, cur, error);
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
