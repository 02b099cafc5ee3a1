// libarchive's API, for BerthImage's tar reading and writing. The library
// itself is not linked: it is loaded on first use (archive.c), so the
// commands that never touch a tar stream (run, exec, the runc commands) do
// not load it and the nine libraries it pulls in (libxml2, ICU, nettle, ...).
#ifndef CARCHIVE_H
#define CARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

/// Why libarchive could not be loaded, or NULL when it is loaded (it is
/// loaded by this call if it was not yet). archive_read_new(),
/// archive_write_new() and archive_entry_new() return NULL when it cannot.
const char *berth_archive_load_error(void);

#endif
