/* tests/helgrind-glib.c: tell helgrind what GLib's mutexes do.
 *
 * On Linux GLib implements GMutex and GCond on raw futexes, not on
 * pthreads, so helgrind (which learns locking from the pthread calls it
 * intercepts) sees no lock at all: every access to data a GMutex
 * protects would be reported as a race.  Preloaded into kolabfs (for
 * tests/integration/test_concurrency.py, LD_PRELOAD under valgrind), this
 * wraps GLib's lock calls and reports each to helgrind through its client
 * requests (valgrind/helgrind.h), so helgrind checks kolabfs's use of
 * these locks like pthread mutexes.  It changes no behaviour: every call
 * goes to GLib's own function.  Calls inside libglib itself do not reach
 * it; tests/helgrind.supp covers GLib's internals.
 *
 *   gcc -shared -fPIC -O1 -o helgrind-glib.so helgrind-glib.c \
 *       $(pkg-config --cflags --libs glib-2.0) -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>
#include <valgrind/helgrind.h>

#define REAL(name) \
	static __typeof__(name) *real; \
	if (!real) \
		real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

void g_mutex_init(GMutex *m)
{
	REAL(g_mutex_init);
	real(m);
	VALGRIND_HG_MUTEX_INIT_POST(m, 0);
}

void g_mutex_clear(GMutex *m)
{
	REAL(g_mutex_clear);
	VALGRIND_HG_MUTEX_DESTROY_PRE(m);
	real(m);
}

void g_mutex_lock(GMutex *m)
{
	REAL(g_mutex_lock);
	VALGRIND_HG_MUTEX_LOCK_PRE(m, 0);
	real(m);
	VALGRIND_HG_MUTEX_LOCK_POST(m);
}

gboolean g_mutex_trylock(GMutex *m)
{
	gboolean ok;

	REAL(g_mutex_trylock);
	VALGRIND_HG_MUTEX_LOCK_PRE(m, 1);
	ok = real(m);
	if (ok)
		VALGRIND_HG_MUTEX_LOCK_POST(m);
	return ok;
}

void g_mutex_unlock(GMutex *m)
{
	REAL(g_mutex_unlock);
	VALGRIND_HG_MUTEX_UNLOCK_PRE(m);
	real(m);
	VALGRIND_HG_MUTEX_UNLOCK_POST(m);
}

/* A wait gives the mutex up and takes it again. */
void g_cond_wait(GCond *c, GMutex *m)
{
	REAL(g_cond_wait);
	VALGRIND_HG_MUTEX_UNLOCK_PRE(m);
	VALGRIND_HG_MUTEX_UNLOCK_POST(m);
	real(c, m);
	VALGRIND_HG_MUTEX_LOCK_PRE(m, 0);
	VALGRIND_HG_MUTEX_LOCK_POST(m);
}

gboolean g_cond_wait_until(GCond *c, GMutex *m, gint64 end_time)
{
	gboolean ok;

	REAL(g_cond_wait_until);
	VALGRIND_HG_MUTEX_UNLOCK_PRE(m);
	VALGRIND_HG_MUTEX_UNLOCK_POST(m);
	ok = real(c, m, end_time);
	VALGRIND_HG_MUTEX_LOCK_PRE(m, 0);
	VALGRIND_HG_MUTEX_LOCK_POST(m);
	return ok;
}
