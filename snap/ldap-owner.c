/*
 * kolabfs: whom a search-mode LDIF belongs to.
 *
 * A restored LDIF must be readable by the server's import (389-ds's
 * ldif2db runs as the server's user and empties the backend when it
 * cannot read the file; slapadd usually runs as root and does not care).
 * When the server runs on this host we find its process through its
 * listening socket and take its effective uid and gid:
 *   ldapi://PATH      the process listening on the unix socket PATH;
 *   ldap[s]://HOST    with HOST loopback (localhost, 127.x, ::1) or empty,
 *                     the process listening on the URI's TCP port.
 * The socket's own owner is no help: both slapd and ns-slapd create it
 * as root before dropping privileges.  Otherwise (remote server, no
 * such process, /proc unreadable) the file stays root's.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldap.h>
#include <glib.h>

#include "ldap-int.h"

#define UNIX_LISTENING 0x10000  /* __SO_ACCEPTCON in /proc/net/unix Flags */

static bool host_is_loopback(const char *host)
{
	return !host || !*host || strcmp(host, "localhost") == 0 ||
	       g_str_has_prefix(host, "127.") || strcmp(host, "::1") == 0;
}

/* The inode of the listening TCP socket on PORT, 0 if none. */
static unsigned long tcp_listener(const char *table, int port)
{
	char line[512];
	unsigned long ino = 0;
	FILE *f = fopen(table, "re");

	if (!f)
		return 0;
	while (!ino && fgets(line, sizeof(line), f)) {
		unsigned int lport, st;
		unsigned long inode;

		/* sl local_address rem_address st tx:rx tr:when retr uid timeout inode */
		if (sscanf(line, " %*s %*[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu",
			   &lport, &st, &inode) == 3 &&
		    (int)lport == port && st == 0x0A)
			ino = inode;
	}
	fclose(f);
	return ino;
}

static unsigned long unix_listener(const char *path)
{
	char line[4096];
	unsigned long ino = 0;
	FILE *f = fopen("/proc/net/unix", "re");

	if (!f)
		return 0;
	while (!ino && fgets(line, sizeof(line), f)) {
		unsigned long flags, inode;
		char sock[4096];

		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %4095s",
			   &flags, &inode, sock) == 3 &&
		    (flags & UNIX_LISTENING) && strcmp(sock, path) == 0)
			ino = inode;
	}
	fclose(f);
	return ino;
}

static unsigned long uri_listener(const char *uri)
{
	LDAPURLDesc *lud = NULL;
	unsigned long ino = 0;

	if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS)
		return 0;
	if (g_ascii_strcasecmp(lud->lud_scheme, "ldapi") == 0) {
		if (lud->lud_host && lud->lud_host[0] == '/')
			ino = unix_listener(lud->lud_host);
	} else if (host_is_loopback(lud->lud_host)) {
		int port = lud->lud_port ? lud->lud_port :
			   g_ascii_strcasecmp(lud->lud_scheme, "ldaps") == 0 ? 636 : 389;

		ino = tcp_listener("/proc/net/tcp", port);
		if (!ino)
			ino = tcp_listener("/proc/net/tcp6", port);
	}
	ldap_free_urldesc(lud);
	return ino;
}

static bool pid_has_socket(const char *pid, const char *target)
{
	g_autofree char *fds = g_strdup_printf("/proc/%s/fd", pid);
	DIR *d = opendir(fds);
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char link[64], path[300];
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", fds, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, target) == 0;
		}
	}
	closedir(d);
	return found;
}

/* Effective uid and gid of PID from /proc/PID/status. */
static bool pid_ids(const char *pid, uid_t *uid, gid_t *gid)
{
	g_autofree char *path = g_strdup_printf("/proc/%s/status", pid);
	g_autofree char *text = NULL;
	unsigned int u = 0, g = 0;
	const char *p, *q;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return false;
	p = strstr(text, "\nUid:");
	q = strstr(text, "\nGid:");
	if (!p || !q || sscanf(p, "\nUid: %*u %u", &u) != 1 ||
	    sscanf(q, "\nGid: %*u %u", &g) != 1)
		return false;
	*uid = u;
	*gid = g;
	return true;
}

void kfs_ldap_server_owner(const struct kfs_ldap_conf *conf, uid_t *uid,
			   gid_t *gid)
{
	unsigned long ino = uri_listener(conf->uri);
	g_autofree char *target = NULL;
	struct dirent *de;
	DIR *proc;

	*uid = 0;
	*gid = 0;
	if (!ino || !(proc = opendir("/proc")))
		return;
	target = g_strdup_printf("socket:[%lu]", ino);
	while ((de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (pid_has_socket(de->d_name, target) &&
		    pid_ids(de->d_name, uid, gid))
			break;
	}
	closedir(proc);
}
