// CBerthBPF: bpf(2) for cgroup v2 device programs (see DeviceFilter.swift).
#ifndef CBERTH_BPF_H
#define CBERTH_BPF_H

#include <stdint.h>

/// bpf(2) has no glibc wrapper and takes a union bpf_attr that Swift cannot
/// build: loads `count` struct bpf_insn (8 bytes each, in `insns`) as a
/// BPF_PROG_TYPE_CGROUP_DEVICE program and returns its fd (close-on-exec).
/// When the kernel refuses it and `log` is given, the load is retried with
/// the verifier's log in `log` (NUL-terminated); errno stays the first one.
int berth_bpf_load_device_program(const uint64_t *insns, uint32_t count, char *log, uint32_t log_size);

/// BPF_PROG_ATTACH also needs a union bpf_attr: attaches the program to the
/// cgroup v2 directory open at `cgroup_fd` as BPF_CGROUP_DEVICE with
/// BPF_F_ALLOW_MULTI, so programs of parent groups keep applying as well.
int berth_bpf_attach_cgroup_device(int prog_fd, int cgroup_fd);

/// BPF_OBJ_GET: the program pinned at `path` in a bpffs (close-on-exec fd).
int berth_bpf_obj_get(const char *path);

/// BPF_OBJ_PIN: pins the program `fd` at `path` in a bpffs.
int berth_bpf_obj_pin(int fd, const char *path);

/// Whether `path` is a bpffs mount (statfs magic BPF_FS_MAGIC): 1, 0, or -1.
int berth_is_bpffs(const char *path);

#endif
