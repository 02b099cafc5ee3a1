// libarchive, loaded on first use instead of linked (include/CArchive.h).
// Linked, it and what it pulls in (libxml2, ICU, nettle, acl, lzma, lz4,
// bz2) are loaded and relocated at every start of berth: ~1.8 ms of a
// ~8 ms start here, ~60 ms under the test VM's TCG. Each function berth
// uses is defined here with libarchive's own prototype; the first call of
// any of them loads the library once (pthread_once) and resolves them all.
// The definitions are hidden, so libarchive's calls to itself still bind
// inside libarchive.
#define _GNU_SOURCE
// The C library's headers first, with their default visibility: only
// libarchive's declarations are to be hidden.
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#pragma GCC visibility push(hidden)
#include "CArchive.h"
#pragma GCC visibility pop

// The soname of libarchive 3.x (Debian: libarchive13).
#define BERTH_LIBARCHIVE "libarchive.so.13"

// F(return type, name, parameters, arguments): functions with a result;
// N(...): the same for the three constructors, the only functions callable
// before the library is loaded (every other one takes what they made): they
// return NULL when it cannot be; V(name, parameters, arguments): functions
// without a result.
#define BERTH_ARCHIVE_FUNCTIONS(F, N, V) \
    F(time_t, archive_entry_atime, (struct archive_entry *a), (a)) \
    F(int, archive_entry_atime_is_set, (struct archive_entry *a), (a)) \
    F(long, archive_entry_atime_nsec, (struct archive_entry *a), (a)) \
    F(struct archive_entry *, archive_entry_clear, (struct archive_entry *a), (a)) \
    V(archive_entry_copy_hardlink, (struct archive_entry *a, const char *b), (a, b)) \
    V(archive_entry_copy_pathname, (struct archive_entry *a, const char *b), (a, b)) \
    V(archive_entry_copy_symlink, (struct archive_entry *a, const char *b), (a, b)) \
    F(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *a), (a)) \
    V(archive_entry_free, (struct archive_entry *a), (a)) \
    F(la_int64_t, archive_entry_gid, (struct archive_entry *a), (a)) \
    F(const char *, archive_entry_hardlink, (struct archive_entry *a), (a)) \
    F(time_t, archive_entry_mtime, (struct archive_entry *a), (a)) \
    F(long, archive_entry_mtime_nsec, (struct archive_entry *a), (a)) \
    N(struct archive_entry *, archive_entry_new, (void), ()) \
    F(const char *, archive_entry_pathname, (struct archive_entry *a), (a)) \
    F(const char *, archive_entry_pathname_utf8, (struct archive_entry *a), (a)) \
    F(__LA_MODE_T, archive_entry_perm, (struct archive_entry *a), (a)) \
    F(dev_t, archive_entry_rdevmajor, (struct archive_entry *a), (a)) \
    F(dev_t, archive_entry_rdevminor, (struct archive_entry *a), (a)) \
    V(archive_entry_set_filetype, (struct archive_entry *a, unsigned int b), (a, b)) \
    V(archive_entry_set_gid, (struct archive_entry *a, la_int64_t b), (a, b)) \
    V(archive_entry_set_mtime, (struct archive_entry *a, time_t b, long c), (a, b, c)) \
    V(archive_entry_set_perm, (struct archive_entry *a, __LA_MODE_T b), (a, b)) \
    V(archive_entry_set_rdevmajor, (struct archive_entry *a, dev_t b), (a, b)) \
    V(archive_entry_set_rdevminor, (struct archive_entry *a, dev_t b), (a, b)) \
    V(archive_entry_set_size, (struct archive_entry *a, la_int64_t b), (a, b)) \
    V(archive_entry_set_uid, (struct archive_entry *a, la_int64_t b), (a, b)) \
    F(la_int64_t, archive_entry_size, (struct archive_entry *a), (a)) \
    F(const char *, archive_entry_symlink, (struct archive_entry *a), (a)) \
    F(la_int64_t, archive_entry_uid, (struct archive_entry *a), (a)) \
    V(archive_entry_xattr_add_entry, (struct archive_entry *a, const char *b, const void *c, size_t d), (a, b, c, d)) \
    F(int, archive_entry_xattr_next, (struct archive_entry *a, const char **b, const void **c, size_t *d), (a, b, c, d)) \
    F(int, archive_entry_xattr_reset, (struct archive_entry *a), (a)) \
    F(const char *, archive_error_string, (struct archive *a), (a)) \
    F(int, archive_read_data_block, (struct archive *a, const void **b, size_t *c, la_int64_t *d), (a, b, c, d)) \
    F(int, archive_read_free, (struct archive *a), (a)) \
    N(struct archive *, archive_read_new, (void), ()) \
    F(int, archive_read_next_header, (struct archive *a, struct archive_entry **b), (a, b)) \
    F(int, archive_read_open, (struct archive *a, void *b, archive_open_callback *c, archive_read_callback *d, archive_close_callback *e), (a, b, c, d, e)) \
    F(int, archive_read_open_fd, (struct archive *a, int b, size_t c), (a, b, c)) \
    F(int, archive_read_support_filter_gzip, (struct archive *a), (a)) \
    F(int, archive_read_support_filter_none, (struct archive *a), (a)) \
    F(int, archive_read_support_format_tar, (struct archive *a), (a)) \
    F(int, archive_write_close, (struct archive *a), (a)) \
    F(la_ssize_t, archive_write_data, (struct archive *a, const void *b, size_t c), (a, b, c)) \
    F(int, archive_write_free, (struct archive *a), (a)) \
    F(int, archive_write_header, (struct archive *a, struct archive_entry *b), (a, b)) \
    N(struct archive *, archive_write_new, (void), ()) \
    F(int, archive_write_open_fd, (struct archive *a, int b), (a, b)) \
    F(int, archive_write_set_bytes_in_last_block, (struct archive *a, int b), (a, b)) \
    F(int, archive_write_set_format_pax_restricted, (struct archive *a), (a))

static struct {
#define FIELD(ret, name, params, args) ret (*name) params;
#define VFIELD(name, params, args) void (*name) params;
    BERTH_ARCHIVE_FUNCTIONS(FIELD, FIELD, VFIELD)
#undef FIELD
#undef VFIELD
} table;

static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static char error[512];

static void load(void) {
    void *library = dlopen(BERTH_LIBARCHIVE, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(error, sizeof error, "cannot load %s: %s", BERTH_LIBARCHIVE, dlerror());
        return;
    }
#define RESOLVE(name)                                                                              \
    if ((*(void **)&table.name = dlsym(library, #name)) == NULL) {                                  \
        snprintf(error, sizeof error, "cannot load %s: no symbol %s", BERTH_LIBARCHIVE, #name);    \
        memset(&table, 0, sizeof table);                                                           \
        return;                                                                                    \
    }
#define FRESOLVE(ret, name, params, args) RESOLVE(name)
#define VRESOLVE(name, params, args) RESOLVE(name)
    BERTH_ARCHIVE_FUNCTIONS(FRESOLVE, FRESOLVE, VRESOLVE)
#undef FRESOLVE
#undef VRESOLVE
#undef RESOLVE
}

const char *berth_archive_load_error(void) {
    pthread_once(&loaded, load);
    return error[0] ? error : NULL;
}

static int ready(void) {
    return berth_archive_load_error() == NULL;
}

static _Noreturn void unloaded(const char *name) {
    fprintf(stderr, "berth: %s called without libarchive: %s\n", name, error);
    abort();
}

#define DEFINE(ret, name, params, args)                                                            \
    ret name params {                                                                              \
        if (!ready()) unloaded(#name);                                                             \
        return table.name args;                                                                    \
    }
#define NDEFINE(ret, name, params, args)                                                           \
    ret name params {                                                                              \
        return ready() ? table.name args : NULL;                                                   \
    }
#define VDEFINE(name, params, args)                                                                \
    void name params {                                                                             \
        if (!ready()) unloaded(#name);                                                             \
        table.name args;                                                                           \
    }
BERTH_ARCHIVE_FUNCTIONS(DEFINE, NDEFINE, VDEFINE)
