/* kolabfs: the error domain. */
#include "autoconf.h"

#include "error.h"

G_DEFINE_QUARK(kfs-error-quark, kfs_error)
