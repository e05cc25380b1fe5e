/* kolabfs: logging to stderr before daemonizing, to syslog after. */
#ifndef KFS_LOG_H
#define KFS_LOG_H

#include <stdbool.h>

enum kfs_log_level { KFS_LOG_ERR, KFS_LOG_WARNING, KFS_LOG_INFO, KFS_LOG_DEBUG };

void kfs_log_init(bool debug);
/* After daemonizing: messages go to syslog (facility daemon) only. */
void kfs_log_to_syslog(void);
void kfs_log(enum kfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define kfs_err(...)   kfs_log(KFS_LOG_ERR, __VA_ARGS__)
#define kfs_warn(...)  kfs_log(KFS_LOG_WARNING, __VA_ARGS__)
#define kfs_info(...)  kfs_log(KFS_LOG_INFO, __VA_ARGS__)
#define kfs_debug(...) kfs_log(KFS_LOG_DEBUG, __VA_ARGS__)

#endif
