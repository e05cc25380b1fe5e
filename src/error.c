/* kolabfs: the error domain. */
#include "autoconf.h"

#include "error.h"

G_DEFINE_QUARK(kfs-error-quark, kfs_error)

int kfs_error_errno(GError **error, int err, const char *fmt, ...)
{
	va_list ap;

	if (error && !*error) {
		va_start(ap, fmt);
		*error = g_error_new_valist(G_FILE_ERROR, g_file_error_from_errno(err), fmt, ap);
		va_end(ap);
	}
	return -err;
}
