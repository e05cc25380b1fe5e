/* kolabfs: reading /proc/self/mountinfo. */
#ifndef KFS_MOUNTINFO_H
#define KFS_MOUNTINFO_H

/* A path field of mountinfo with its escapes of space, tab, newline and
 * backslash (\040 ...) undone; newly allocated (g_free). */
char *kfs_mountinfo_unescape(const char *s);

#endif
