/* kolabfs: reading /proc/self/mountinfo (LVM snapshots find where their
 * origin is mounted; the FUSE mount finds its own device). */
#include "autoconf.h"

#include <glib.h>

#include "mountinfo.h"

char *kfs_mountinfo_unescape(const char *s)
{
	GString *out = g_string_new(NULL);

	while (*s) {
		if (s[0] == '\\' && g_ascii_isdigit(s[1]) && g_ascii_isdigit(s[2]) &&
		    g_ascii_isdigit(s[3])) {
			g_string_append_c(out, (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
						      (s[3] - '0')));
			s += 4;
		} else {
			g_string_append_c(out, *s++);
		}
	}
	return g_string_free(out, FALSE);
}
