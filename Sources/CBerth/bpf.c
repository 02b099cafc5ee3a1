// bpf(2) for cgroup v2 device programs: the two calls DeviceFilter.swift
// needs, each filling a union bpf_attr. Return -1 and set errno on failure.
#define _GNU_SOURCE
#include "CBerthBPF.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

// Any string the kernel's license_is_gpl_compatible() does not need: the
// program calls no helper at all, GPL-only or not. Apache, as runc says.
static const char berth_bpf_license[] = "Apache";

static int berth_bpf(int command, union bpf_attr *attr) {
    return (int)syscall(SYS_bpf, command, attr, sizeof *attr);
}

static int berth_bpf_prog_load(const uint64_t *insns, uint32_t count, char *log, uint32_t log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = count;
    attr.license = (uint64_t)(uintptr_t)berth_bpf_license;
    // Shown by `bpftool prog` (BPF_OBJ_NAME_LEN is 16 with the NUL).
    strncpy(attr.prog_name, "berth_devices", sizeof attr.prog_name - 1);
    if (log != NULL && log_size > 1) {
        log[0] = '\0';
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    return berth_bpf(BPF_PROG_LOAD, &attr);
}

int berth_bpf_load_device_program(const uint64_t *insns, uint32_t count, char *log, uint32_t log_size) {
    // Without a log first: with one, a log longer than the buffer alone
    // makes the load fail (ENOSPC), and writing it costs time.
    int fd = berth_bpf_prog_load(insns, count, NULL, 0);
    if (fd >= 0 || log == NULL || log_size < 2) return fd;
    int first = errno;
    fd = berth_bpf_prog_load(insns, count, log, log_size);
    if (fd < 0) errno = first;
    return fd;
}

int berth_bpf_attach_cgroup_device(int prog_fd, int cgroup_fd) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    return berth_bpf(BPF_PROG_ATTACH, &attr);
}

int berth_bpf_obj_get(const char *path) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uint64_t)(uintptr_t)path;
    int fd = berth_bpf(BPF_OBJ_GET, &attr);
    if (fd >= 0) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return fd;
}

int berth_bpf_obj_pin(int fd, const char *path) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uint64_t)(uintptr_t)path;
    attr.bpf_fd = (uint32_t)fd;
    return berth_bpf(BPF_OBJ_PIN, &attr);
}

int berth_is_bpffs(const char *path) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    return st.f_type == 0xcafe4a11 ? 1 : 0; // BPF_FS_MAGIC
}
