/*
 * kolabfs: run kfs_ldap_export() or kfs_ldap_check() by hand, for
 * benchmarks and debugging, without a config file:
 *
 *	ldap-export [--check] [--timeout S] [--starttls] [-D BIND_DN -y PWFILE]
 *	            URI task|search DIR [BASE...]
 *
 * Prints one line per exported file and the total time.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "snap/ldap.h"

int main(int argc, char **argv)
{
	gboolean check = FALSE, starttls = FALSE;
	char *bind_dn = NULL, *pw = NULL;
	int timeout = 30;
	GOptionEntry opts[] = {
		{ "check", 0, 0, G_OPTION_ARG_NONE, &check, "kolabfs --check only", NULL },
		{ "starttls", 0, 0, G_OPTION_ARG_NONE, &starttls, "StartTLS", NULL },
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "seconds", "S" },
		{ "bind-dn", 'D', 0, G_OPTION_ARG_STRING, &bind_dn, "bind DN", "DN" },
		{ "password-file", 'y', 0, G_OPTION_ARG_FILENAME, &pw, "password file", "FILE" },
		{ NULL }
	};
	GOptionContext *ctx = g_option_context_new("URI task|search DIR [BASE...]");
	struct kfs_ldap_conf c = { .name = "bench" };
	GError *error = NULL;
	GPtrArray *out;
	gint64 t0;
	int rc = 0;

	g_option_context_add_main_entries(ctx, opts, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc < 4) {
		fprintf(stderr, "%s\n", error ? error->message : "URI, mode and DIR needed");
		return 2;
	}
	g_option_context_free(ctx);
	c.uri = argv[1];
	c.mode = strcmp(argv[2], "task") == 0 ? KFS_LDAP_TASK : KFS_LDAP_SEARCH;
	c.bind_dn = bind_dn;
	c.password_file = pw;
	c.bases = argc > 4 ? argv + 4 : NULL;
	c.starttls = starttls;
	c.timeout = timeout;
	t0 = g_get_monotonic_time();
	if (check) {
		GString *report = g_string_new(NULL);

		if (!kfs_ldap_check(&c, report, &error))
			rc = 1;
		fputs(report->str, stdout);
		g_string_free(report, TRUE);
	} else if ((out = kfs_ldap_export(&c, argv[3], &error))) {
		for (guint i = 0; i < out->len; i++) {
			struct kfs_ldap_export *e = out->pdata[i];

			printf("%s\t%s\t%" G_GUINT64_FORMAT " entries\t%" G_GUINT64_FORMAT " bytes\t%.1f ms\texit %d\n",
			       e->backend, e->file, e->entries, e->bytes,
			       e->duration_ms, e->task_exit_code);
		}
		g_ptr_array_unref(out);
	} else {
		rc = 1;
	}
	if (error) {
		fprintf(stderr, "%s\n", error->message);
		g_error_free(error);
	}
	printf("total %.1f ms\n", (g_get_monotonic_time() - t0) / 1000.0);
	g_free(bind_dn);
	g_free(pw);
	return rc;
}
