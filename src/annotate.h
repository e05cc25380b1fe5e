/* kolabfs: happens-before edges that helgrind cannot see by itself.
 *
 * helgrind learns ordering from pthread calls; kolabfs also hands data
 * from thread to thread in two ways it does not understand:
 *
 *  - atomic exchanges (a node's kept directory stream, fs/dir.c);
 *  - the kernel: a node is made by the thread that answers LOOKUP or
 *    READDIRPLUS, its address goes to the kernel as the node id, and any
 *    other thread may then get a request for it (the write(2) of the reply
 *    happens before the read(2) of that request; fs/inode.c).
 *
 * KFS_HAPPENS_BEFORE(obj) where the data is published, KFS_HAPPENS_AFTER(obj)
 * where it is taken.  KFS_BENIGN_RACE(field) for a relaxed atomic hint
 * (a node's cached flag): helgrind does not know atomics either.  With valgrind's headers at build time these are
 * client requests: a few instructions, nothing at all outside valgrind;
 * without them, nothing.  tests/integration/test_concurrency.py runs the
 * daemon under helgrind. */
#ifndef KFS_ANNOTATE_H
#define KFS_ANNOTATE_H

#include "autoconf.h"

#ifdef HAVE_VALGRIND_HELGRIND_H
#include <valgrind/helgrind.h>
#define KFS_HAPPENS_BEFORE(obj) ANNOTATE_HAPPENS_BEFORE(obj)
#define KFS_HAPPENS_AFTER(obj) ANNOTATE_HAPPENS_AFTER(obj)
#define KFS_BENIGN_RACE(field, why) ANNOTATE_BENIGN_RACE_SIZED(&(field), sizeof(field), why)
#else
#define KFS_HAPPENS_BEFORE(obj) ((void)(obj))
#define KFS_HAPPENS_AFTER(obj) ((void)(obj))
#define KFS_BENIGN_RACE(field, why) ((void)&(field))
#endif

#endif
