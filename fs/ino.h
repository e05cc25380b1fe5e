/* kolabfs: st_ino as shown through the mount.
 *
 * The top 16 bits are the inode-number space of the volume or copy
 * section (derived from its NAME, so stable across sets and mounts), the
 * low 48 bits the inode number on the snapshot.  Hard links inside a
 * volume therefore share st_ino; files in different volumes never do; and
 * the same unchanged file has the same st_ino in every set, which is what
 * lets restic and rsync recognise it from one night to the next.
 * Space 0 is kolabfs's own virtual files; KFS_INO_SPACE_META holds the
 * files kolabfs writes into state_dir (MANIFEST.json).
 */
#ifndef KFS_INO_H
#define KFS_INO_H

#include <stdint.h>

#define KFS_INO_SPACE_SHIFT 48
#define KFS_INO_LOCAL_MASK ((UINT64_C(1) << KFS_INO_SPACE_SHIFT) - 1)
#define KFS_INO_SPACE_VIRTUAL 0u
#define KFS_INO_SPACE_META 0xffffu

/* Returns 0 if the local inode number does not fit in 48 bits. */
static inline uint64_t kfs_ino_make(unsigned int space, uint64_t local)
{
	if (local > KFS_INO_LOCAL_MASK)
		return 0;
	return ((uint64_t)space << KFS_INO_SPACE_SHIFT) | local;
}

static inline unsigned int kfs_ino_space(uint64_t ino)
{
	return (unsigned int)(ino >> KFS_INO_SPACE_SHIFT);
}

static inline uint64_t kfs_ino_local(uint64_t ino)
{
	return ino & KFS_INO_LOCAL_MASK;
}

#endif
