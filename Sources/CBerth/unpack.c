#define _GNU_SOURCE
#include "CBerthUnpack.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif

int berth_fsetxattr(int fd, const char *name, const void *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0);
}

ssize_t berth_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return fgetxattr(fd, name, value, size);
}

ssize_t berth_flistxattr(int fd, char *list, size_t size) {
    return flistxattr(fd, list, size);
}

// struct xattr_args of <linux/xattr.h> (6.13), which older headers lack.
struct berth_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static int berth_has_xattrat = 1;

int berth_setxattr_at(int dirfd, const char *name, const char *attribute, const void *value, size_t size) {
    if (__atomic_load_n(&berth_has_xattrat, __ATOMIC_RELAXED)) {
        struct berth_xattr_args args = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
        long result = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, attribute, &args, sizeof args);
        if (result == 0 || (errno != ENOSYS && errno != EPERM)) return (int)result;
        if (errno == ENOSYS) __atomic_store_n(&berth_has_xattrat, 0, __ATOMIC_RELAXED);
    }
    char path[64 + 4096];
    if (snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return lsetxattr(path, attribute, value, size, 0);
}

ssize_t berth_getxattr_at(int dirfd, const char *name, const char *attribute, void *value, size_t size) {
    if (__atomic_load_n(&berth_has_xattrat, __ATOMIC_RELAXED)) {
        struct berth_xattr_args args = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
        long result = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, attribute, &args, sizeof args);
        if (result >= 0 || (errno != ENOSYS && errno != EPERM)) return (ssize_t)result;
        if (errno == ENOSYS) __atomic_store_n(&berth_has_xattrat, 0, __ATOMIC_RELAXED);
    }
    char path[64 + 4096];
    if (snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return lgetxattr(path, attribute, value, size);
}
