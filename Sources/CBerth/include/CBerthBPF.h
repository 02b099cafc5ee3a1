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

#endif
