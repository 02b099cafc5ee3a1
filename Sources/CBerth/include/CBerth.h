// CBerth: the few things Swift cannot reach through Glibc's module map.
// Each function says why it exists. All return -1 and set errno on failure,
// exactly like the system call they wrap.
#ifndef CBERTH_H
#define CBERTH_H

#include <stdint.h>
#include <sys/types.h>

// Namespace flags: <sched.h> hides them behind _GNU_SOURCE.
#define BERTH_CLONE_NEWNS     0x00020000
#define BERTH_CLONE_NEWCGROUP 0x02000000
#define BERTH_CLONE_NEWUTS    0x04000000
#define BERTH_CLONE_NEWIPC    0x08000000
#define BERTH_CLONE_NEWUSER   0x10000000
#define BERTH_CLONE_NEWPID    0x20000000
#define BERTH_CLONE_NEWNET    0x40000000
#define BERTH_CLONE_NEWTIME   0x00000080
#define BERTH_CLONE_PARENT    0x00008000

// open(2) and statvfs flags hidden behind _GNU_SOURCE or __USE_GNU.
#define BERTH_O_PATH 010000000
#define BERTH_ST_RDONLY 1
#define BERTH_ST_NOSUID 2
#define BERTH_ST_NODEV 4
#define BERTH_ST_NOEXEC 8
#define BERTH_ST_NOATIME 1024
#define BERTH_ST_NODIRATIME 2048
#define BERTH_ST_RELATIME 4096

// prctl options (<linux/prctl.h> clashes with <sys/prctl.h> in Swift's view).
#define BERTH_PR_SET_PDEATHSIG 1
#define BERTH_PR_SET_DUMPABLE 4
#define BERTH_PR_SET_NAME 15
#define BERTH_PR_SET_KEEPCAPS 8
#define BERTH_PR_CAPBSET_DROP 24
#define BERTH_PR_SET_NO_NEW_PRIVS 38
#define BERTH_PR_SET_CHILD_SUBREAPER 36
#define BERTH_PR_CAP_AMBIENT 47
#define BERTH_PR_CAP_AMBIENT_RAISE 2

/// setresuid/setresgid are _GNU_SOURCE-only.
int berth_setresuid(uid_t r, uid_t e, uid_t s);
int berth_setresgid(gid_t r, gid_t e, gid_t s);

/// open/openat are variadic in C; pipe2 is _GNU_SOURCE-only.
int berth_open(const char *path, int flags, unsigned int mode);
int berth_openat(int dirfd, const char *path, int flags, unsigned int mode);
int berth_pipe2(int fds[2], int flags);

// openat2 resolve flags (<linux/openat2.h> is not in every libc header set).
#define BERTH_RESOLVE_NO_XDEV       0x01
#define BERTH_RESOLVE_NO_MAGICLINKS 0x02
#define BERTH_RESOLVE_NO_SYMLINKS   0x04
#define BERTH_RESOLVE_BENEATH       0x08
#define BERTH_RESOLVE_IN_ROOT       0x10

/// fork()-like clone with namespace flags: no new stack, SIGCHLD on exit.
/// glibc's clone() wrapper needs a stack and a function; the raw syscall
/// returns twice like fork, which keeps the child in ordinary Swift code.
pid_t berth_clone(unsigned long flags);

/// clone3() with CLONE_INTO_CGROUP: the child starts in the cgroup open at cgroup_fd.
pid_t berth_clone_into_cgroup(unsigned long flags, int cgroup_fd);

/// pivot_root(2) has no glibc wrapper.
int berth_pivot_root(const char *new_root, const char *put_old);

/// setns/unshare are _GNU_SOURCE-only.
int berth_setns(int fd, int nstype);
int berth_unshare(int flags);

/// openat2(2) has no glibc wrapper. Returns -1/ENOSYS on old kernels.
int berth_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/// pidfd_open / pidfd_send_signal have no wrapper in glibc 2.36.
int berth_pidfd_open(pid_t pid);
int berth_pidfd_send_signal(int pidfd, int sig);

/// close_range(2); falls back to marking fds close-on-exec one by one.
int berth_cloexec_from(int lowfd);

/// prctl/ioctl/fcntl are variadic: Swift cannot call them.
int berth_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int berth_ioctl_int(int fd, unsigned long request, int value);
int berth_ioctl_ptr(int fd, unsigned long request, void *arg);
int berth_fcntl_int(int fd, int cmd, int value);
int berth_set_cloexec(int fd, int on);
int berth_set_nonblock(int fd, int on);

/// Terminal: TIOCSCTTY, TIOCGPTN/TIOCSPTLCK, window size, raw mode.
int berth_tty_set_controlling(int fd);
int berth_pty_unlock_and_number(int masterfd);
int berth_tty_get_size(int fd, unsigned short *rows, unsigned short *cols);
int berth_tty_set_size(int fd, unsigned short rows, unsigned short cols);
int berth_tty_make_raw(int fd, void **saved);
int berth_tty_restore(int fd, void *saved);

/// wait(2) status macros.
int berth_wifexited(int status);
int berth_wexitstatus(int status);
int berth_wifsignaled(int status);
int berth_wtermsig(int status);

/// Signals: masks and signalfd with the kernel's sigset layout.
int berth_block_all_signals(void *oldmask /* sigset_t, may be NULL */);
int berth_restore_signals(const void *mask);
int berth_unblock_all_signals(void);
int berth_reset_signal_handlers(void);
int berth_signalfd_all(void);
int berth_signalfd_read(int fd);  // returns signal number, 0 on EAGAIN, -1 error
unsigned long berth_sigset_size(void);

/// SCM_RIGHTS over a unix socket (console socket protocol, fd hand-off).
int berth_send_fd(int sock, int fd, const char *name);
int berth_recv_fd(int sock, char *namebuf, int namelen);
/// One SEQPACKET message, with an fd if one came along (*fd = -1 if not).
/// Returns the byte count (0 at end of stream).
long berth_recv_message(int sock, void *buf, unsigned long len, int *fd);

/// Loads a classic BPF seccomp filter with seccomp(SECCOMP_SET_MODE_FILTER):
/// `filter` is `count` struct sock_filter entries. Returns 0, or the
/// listener fd when `flags` has SECCOMP_FILTER_FLAG_NEW_LISTENER.
int berth_seccomp_load(const void *filter, unsigned short count, unsigned int flags);

/// memfd_create(2) with MFD_CLOEXEC (_GNU_SOURCE-only).
int berth_memfd_create(const char *name);

/// A copy of this process's executable in a sealed memfd (no write, grow,
/// shrink or further sealing), or -1. For re-executing from an image a
/// container cannot modify.
int berth_sealed_self_copy(void);

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): exec a file descriptor.
int berth_execute_fd(int fd, char *const argv[], char *const envp[]);

/// statfs(2) f_type of a descriptor (PROC_SUPER_MAGIC checks).
long berth_fstatfs_type(int fd);

/// malloc_trim(3) is in <malloc.h>, which Glibc's module map leaves out.
int berth_malloc_trim(void);

/// makedev() is a macro.
dev_t berth_makedev(unsigned int major, unsigned int minor);

/// Connect to a unix socket path (sockaddr_un is awkward from Swift).
int berth_unix_connect(const char *path);
/// A listening unix stream socket bound to path (non-blocking, close-on-exec).
int berth_unix_listen(const char *path);

/// The process environment (environ is a C global).
char **berth_environ(void);

/// Linux capabilities: CAP_LAST_CAP from /proc or the header.
int berth_cap_last_cap(void);

/// getxattr(2): <sys/xattr.h> is not in Glibc's module map.
ssize_t berth_getxattr(const char *path, const char *name, void *value, size_t size);

/// Makes a network namespace bound to `path` (an existing empty file), from a child.
int berth_netns_create(const char *path);
/// Brings `lo` up in the network namespace of `pid` (joining its user namespace first with join_user).
int berth_loopback_up(pid_t pid, int join_user);
/// fork+execve of a helper (pasta, slirp4netns) that gets SIGKILL when this
/// process dies; `keep` descriptors stay open across execve.
pid_t berth_spawn_tied(const char *path, char *const argv[], char *const envp[], int in, int out, int err,
                       const int *keep, int keep_count);
/// The rootless network namespace's holder: a detached grandchild that
/// unshares a user namespace, sends 'u' on `sock`, waits for 'm' (its id
/// maps are written), unshares network and mount namespaces, brings lo up,
/// sends 'r' and then pauses for ever ('e' + errno on failure). `other` is
/// the caller's end of the socket pair, closed in the child.
pid_t berth_holder_start(int sock, int other);
/// fork+execve of a program inside `target`'s namespaces (flags: CLONE_NEWUSER,
/// CLONE_NEWNS, CLONE_NEWNET; the user namespace is skipped when already ours),
/// in `directory` when it is not NULL.
pid_t berth_spawn_joined(pid_t target, int flags, const char *path, char *const argv[], char *const envp[],
                         const int stdio[3], const int *keep, int keep_count, const char *directory);
/// Binds a new network namespace to `path` inside `target`'s user and mount
/// namespaces (with `remove`: unmounts it there).
int berth_joined_netns_create(pid_t target, const char *path, int remove);
/// A non-blocking CLOCK_MONOTONIC timerfd, and arming it once, `milliseconds` from now.
int berth_timer_create(void);
int berth_timer_arm(int fd, long milliseconds);

/// The systemd journal's native protocol: a unix datagram socket connected
/// to `path`; a memfd holding `data`, sealed against writes, growing and
/// shrinking (journald reads only sealed ones); sendmsg of an empty
/// datagram carrying only `fd` (SCM_RIGHTS), the protocol's form for an
/// entry too big for a datagram; and SO_SNDBUF, which bounds a datagram.
int berth_unix_dgram_connect(const char *path);
int berth_sealed_memfd(const char *name, const void *data, unsigned long len);
int berth_send_only_fd(int sock, int fd);
int berth_socket_send_buffer(int sock);

#include "CBerthBPF.h"
#include "CBerthUnpack.h"

#endif
