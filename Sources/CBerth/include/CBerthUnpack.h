// CBerthUnpack: what the layer unpacker needs that Glibc's module map hides.
#ifndef CBERTH_UNPACK_H
#define CBERTH_UNPACK_H

#include <stddef.h>
#include <sys/types.h>

/// <sys/xattr.h> is not in Glibc's module map: xattrs on an open descriptor.
int berth_fsetxattr(int fd, const char *name, const void *value, size_t size);
ssize_t berth_fgetxattr(int fd, const char *name, void *value, size_t size);
ssize_t berth_flistxattr(int fd, char *list, size_t size);

/// An xattr on `name` in the directory open at `dirfd`, never following a
/// final symlink (symlinks, devices and fifos cannot be opened for
/// fsetxattr): setxattrat(2) where the kernel has it (6.13), else
/// lsetxattr on /proc/self/fd/<dirfd>/<name>.
int berth_setxattr_at(int dirfd, const char *name, const char *attribute, const void *value, size_t size);
ssize_t berth_getxattr_at(int dirfd, const char *name, const char *attribute, void *value, size_t size);

#endif
