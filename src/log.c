/* kolabfs: logging.  Before the daemon detaches, the administrator is
 * looking at the terminal (or mount(8)'s stderr): write there.  After,
 * only syslog reaches anyone. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static bool log_debug;
static bool log_syslog;

void kfs_log_init(bool debug)
{
	log_debug = debug;
}

void kfs_log_to_syslog(void)
{
	openlog("kolabfs", LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

static int level_priority(enum kfs_log_level level)
{
	switch (level) {
	case KFS_LOG_ERR: return LOG_ERR;
	case KFS_LOG_WARNING: return LOG_WARNING;
	case KFS_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

static const char *level_prefix(enum kfs_log_level level)
{
	switch (level) {
	case KFS_LOG_ERR: return "error: ";
	case KFS_LOG_WARNING: return "warning: ";
	default: return "";
	}
}

void kfs_log(enum kfs_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level == KFS_LOG_DEBUG && !log_debug)
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(level_priority(level), fmt, ap);
	} else {
		fprintf(stderr, "kolabfs: %s", level_prefix(level));
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
