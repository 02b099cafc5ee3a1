#define _GNU_SOURCE
#include "CBerth.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/capability.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <sys/mount.h>
#include <net/if.h>
#include <stdio.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

extern char **environ;

pid_t berth_clone(unsigned long flags) {
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

// clone3(2) has no glibc wrapper; CLONE_INTO_CGROUP (Linux 5.7) starts the
// child in its cgroup, so a new cgroup namespace is rooted there and no
// process of the container ever runs outside its limits.
pid_t berth_clone_into_cgroup(unsigned long flags, int cgroup_fd) {
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
    } args;
    memset(&args, 0, sizeof(args));
    args.flags = (uint64_t)flags | 0x200000000ULL; // CLONE_INTO_CGROUP
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    return (pid_t)syscall(435 /* SYS_clone3 */, &args, sizeof(args));
}

int berth_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int berth_setns(int fd, int nstype) { return setns(fd, nstype); }
int berth_unshare(int flags) { return unshare(flags); }

struct berth_open_how { uint64_t flags, mode, resolve; };

int berth_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
#ifdef SYS_openat2
    struct berth_open_how how = { flags, mode, resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int berth_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int berth_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int berth_cloexec_from(int lowfd) {
#ifdef SYS_close_range
    // CLOSE_RANGE_CLOEXEC = 4
    if (syscall(SYS_close_range, lowfd, ~0U, 4) == 0) return 0;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd >= lowfd && fd != self) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
    return 0;
}

int berth_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}
int berth_ioctl_int(int fd, unsigned long request, int value) { return ioctl(fd, request, value); }
int berth_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int berth_fcntl_int(int fd, int cmd, int value) { return fcntl(fd, cmd, value); }

int berth_set_cloexec(int fd, int on) {
    int f = fcntl(fd, F_GETFD);
    if (f < 0) return -1;
    return fcntl(fd, F_SETFD, on ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC));
}
int berth_set_nonblock(int fd, int on) {
    int f = fcntl(fd, F_GETFL);
    if (f < 0) return -1;
    return fcntl(fd, F_SETFL, on ? (f | O_NONBLOCK) : (f & ~O_NONBLOCK));
}

int berth_tty_set_controlling(int fd) { return ioctl(fd, TIOCSCTTY, 0); }

int berth_pty_unlock_and_number(int masterfd) {
    int unlock = 0, n = 0;
    if (ioctl(masterfd, TIOCSPTLCK, &unlock) < 0) return -1;
    if (ioctl(masterfd, TIOCGPTN, &n) < 0) return -1;
    return n;
}

int berth_tty_get_size(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
    *rows = ws.ws_row; *cols = ws.ws_col;
    return 0;
}
int berth_tty_set_size(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}
int berth_tty_make_raw(int fd, void **saved) {
    struct termios *old = malloc(sizeof *old);
    if (!old) return -1;
    if (tcgetattr(fd, old) < 0) { free(old); return -1; }
    struct termios raw = *old;
    cfmakeraw(&raw);
    raw.c_oflag |= OPOST; // keep output post-processing so \n renders as the user expects
    if (tcsetattr(fd, TCSANOW, &raw) < 0) { free(old); return -1; }
    *saved = old;
    return 0;
}
int berth_tty_restore(int fd, void *saved) {
    if (!saved) return 0;
    int r = tcsetattr(fd, TCSANOW, (struct termios *)saved);
    free(saved);
    return r;
}

int berth_wifexited(int s) { return WIFEXITED(s); }
int berth_wexitstatus(int s) { return WEXITSTATUS(s); }
int berth_wifsignaled(int s) { return WIFSIGNALED(s); }
int berth_wtermsig(int s) { return WTERMSIG(s); }

unsigned long berth_sigset_size(void) { return sizeof(sigset_t); }

int berth_block_all_signals(void *oldmask) {
    sigset_t all;
    sigfillset(&all);
    return sigprocmask(SIG_BLOCK, &all, (sigset_t *)oldmask);
}
int berth_restore_signals(const void *mask) {
    return sigprocmask(SIG_SETMASK, (const sigset_t *)mask, NULL);
}
int berth_unblock_all_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}
int berth_reset_signal_handlers(void) {
    // The container must start with default dispositions, as after execve
    // from a fresh process (ignored signals would otherwise survive exec).
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        signal(s, SIG_DFL);
    }
    return 0;
}
int berth_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}
int berth_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    if (n != sizeof si) return 0;
    return (int)si.ssi_signo;
}

int berth_send_fd(int sock, int fd, const char *name) {
    struct msghdr msg = {0};
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    const char *payload = (name && *name) ? name : "x";
    struct iovec io = { .iov_base = (void *)payload, .iov_len = strlen(payload) };
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int berth_recv_fd(int sock, char *namebuf, int namelen) {
    struct msghdr msg = {0};
    char buf[CMSG_SPACE(sizeof(int))];
    char dummy[256];
    struct iovec io = { .iov_base = namebuf ? namebuf : dummy, .iov_len = namebuf ? (size_t)namelen : sizeof dummy };
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

static int unix_connect(const char *path, int type) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(addr.sun_path, path);
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int r;
    do { r = connect(s, (struct sockaddr *)&addr, sizeof addr); } while (r < 0 && errno == EINTR);
    if (r < 0) { int e = errno; close(s); errno = e; return -1; }
    return s;
}

int berth_unix_connect(const char *path) { return unix_connect(path, SOCK_STREAM); }

int berth_unix_listen(const char *path) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(addr.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
        int e = errno; close(s); errno = e; return -1;
    }
    return s;
}

char **berth_environ(void) { return environ; }

int berth_cap_last_cap(void) { return CAP_LAST_CAP; }

long berth_recv_message(int sock, void *buf, unsigned long len, int *fd) {
    struct msghdr msg = {0};
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec io = { .iov_base = buf, .iov_len = len };
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    *fd = -1;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
    return (long)r;
}

dev_t berth_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

int berth_open(const char *path, int flags, unsigned int mode) { return open(path, flags, (mode_t)mode); }
int berth_openat(int dirfd, const char *path, int flags, unsigned int mode) { return openat(dirfd, path, flags, (mode_t)mode); }
int berth_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int berth_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int berth_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }

int berth_seccomp_load(const void *filter, unsigned short count, unsigned int flags) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)filter };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

long berth_fstatfs_type(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) != 0) return -1;
    return (long)st.f_type;
}

int berth_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int berth_malloc_trim(void) { return malloc_trim(0); }

int berth_sealed_self_copy(void) {
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe < 0) return -1;
    struct stat st;
    if (fstat(exe, &st) != 0) { close(exe); return -1; }
    int fd = memfd_create("berth", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) { close(exe); return -1; }
    off_t offset = 0;
    while (offset < st.st_size) {
        ssize_t n = sendfile(fd, exe, &offset, (size_t)(st.st_size - offset));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            int e = n < 0 ? errno : EIO;
            close(exe); close(fd); errno = e; return -1;
        }
    }
    close(exe);
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}

int berth_execute_fd(int fd, char *const argv[], char *const envp[]) {
    return (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}

ssize_t berth_getxattr(const char *path, const char *name, void *value, size_t size) {
    return getxattr(path, name, value, size);
}

// Network helpers (BerthEngine's NetworkSetup).

/// Waits for a helper child that reports failure as exit 10 + errno.
static int wait_helper(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    errno = (WIFEXITED(status) && WEXITSTATUS(status) >= 10) ? WEXITSTATUS(status) - 10 : EIO;
    return -1;
}

static int join_namespaces(pid_t target, int flags);

/// In a child (joining `target`'s user and mount namespaces when target > 0):
/// bind a new network namespace to `path`, or with `remove` unmount it.
static int netns_file(pid_t target, const char *path, int remove) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (target > 0 && join_namespaces(target, CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(10 + (errno & 0x7f));
        if (remove) {
            if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) _exit(10 + (errno & 0x7f));
            _exit(0);
        }
        if (unshare(CLONE_NEWNET) != 0) _exit(10 + (errno & 0x7f));
        if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) != 0) _exit(10 + (errno & 0x7f));
        _exit(0);
    }
    return wait_helper(pid);
}

int berth_netns_create(const char *path) {
    // A child makes the namespace and binds it to `path`; this process
    // never leaves its own network namespace.
    return netns_file(0, path, 0);
}

pid_t berth_spawn_tied(const char *path, char *const argv[], char *const envp[], int in, int out, int err,
                       const int *keep, int keep_count) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    // The helper dies with the process that started it (a killed monitor
    // takes pasta and slirp4netns along), with the signal state of a fresh
    // process, and only the descriptors it is given.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) _exit(127);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    berth_reset_signal_handlers();
    if (in >= 0 && in != 0) dup2(in, 0);
    if (out >= 0 && out != 1) dup2(out, 1);
    if (err >= 0 && err != 2) dup2(err, 2);
    berth_cloexec_from(3);
    for (int i = 0; i < keep_count; i++) {
        int flags = fcntl(keep[i], F_GETFD);
        if (flags >= 0) fcntl(keep[i], F_SETFD, flags & ~FD_CLOEXEC);
    }
    execve(path, argv, envp);
    _exit(127);
}

int berth_loopback_up(pid_t pid, int join_user) {
    // From a child that joins the process's namespaces (its user namespace
    // first when we are not root in it), so this process stays where it is.
    pid_t child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        char path[64];
        if (join_user) {
            snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
            int user = open(path, O_RDONLY | O_CLOEXEC);
            if (user < 0 || setns(user, CLONE_NEWUSER) != 0) _exit(10 + (errno & 0x7f));
        }
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
        int net = open(path, O_RDONLY | O_CLOEXEC);
        if (net < 0 || setns(net, CLONE_NEWNET) != 0) _exit(10 + (errno & 0x7f));
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) _exit(10 + (errno & 0x7f));
        struct ifreq request;
        memset(&request, 0, sizeof request);
        strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(s, SIOCGIFFLAGS, &request) != 0) _exit(10 + (errno & 0x7f));
        request.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &request) != 0) _exit(10 + (errno & 0x7f));
        _exit(0);
    }
    return wait_helper(child);
}

// The rootless network namespace's holder (BerthEngine's RootlessNetns).

static void holder_report(int sock, char what, int error) {
    char message[1 + sizeof(int)];
    message[0] = what;
    memcpy(message + 1, &error, sizeof(int));
    (void)!write(sock, message, sizeof message);
}

static void holder_main(int sock) {
    // Detached from the berth that made it: its own session, a fresh signal
    // state, no parent's death signal.
    setsid();
    prctl(PR_SET_NAME, "berth-netns", 0, 0, 0);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    berth_reset_signal_handlers();
    if (unshare(CLONE_NEWUSER) != 0) { holder_report(sock, 'e', errno); _exit(1); }
    holder_report(sock, 'u', 0);
    char go = 0;
    if (read(sock, &go, 1) != 1 || go != 'm') _exit(1);
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) { holder_report(sock, 'e', errno); _exit(1); }
    // Host mounts keep reaching it; nothing of its own goes back.
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) { holder_report(sock, 'e', errno); _exit(1); }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &request) != 0) { holder_report(sock, 'e', errno); _exit(1); }
    request.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &request) != 0) { holder_report(sock, 'e', errno); _exit(1); }
    holder_report(sock, 'r', 0);
    // Holds nothing open: not a terminal, not a pipe someone waits on.
    for (int fd = 0; fd < 1024; fd++) close(fd);
    for (;;) pause();
}

pid_t berth_holder_start(int sock, int other) {
    int pids[2];
    if (pipe2(pids, O_CLOEXEC) != 0) return -1;
    pid_t middle = fork();
    if (middle < 0) { close(pids[0]); close(pids[1]); return -1; }
    if (middle == 0) {
        // A grandchild, so init (not a long-running berth) reaps it.
        close(pids[0]);
        close(other);
        pid_t holder = fork();
        if (holder == 0) { close(pids[1]); holder_main(sock); }
        (void)!write(pids[1], &holder, sizeof holder);
        _exit(holder < 0);
    }
    close(pids[1]);
    pid_t holder = -1;
    if (read(pids[0], &holder, sizeof holder) != sizeof holder) holder = -1;
    close(pids[0]);
    int status = 0;
    while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {}
    if (holder < 0) errno = EAGAIN;
    return holder;
}

/// Joins `target`'s namespaces named by `flags` (CLONE_NEWUSER, CLONE_NEWNS,
/// CLONE_NEWNET; the user namespace only when it is not ours already).
static int join_namespaces(pid_t target, int flags) {
    static const struct { int flag; const char *name; } order[] = {
        { CLONE_NEWUSER, "user" }, { CLONE_NEWNS, "mnt" }, { CLONE_NEWNET, "net" },
    };
    for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(flags & order[i].flag)) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)target, order[i].name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        if (order[i].flag == CLONE_NEWUSER) {
            struct stat theirs, ours;
            if (fstat(fd, &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
                theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) { close(fd); continue; }
        }
        int result = setns(fd, order[i].flag);
        int saved = errno;
        close(fd);
        if (result != 0) { errno = saved; return -1; }
    }
    return 0;
}

pid_t berth_spawn_joined(pid_t target, int flags, const char *path, char *const argv[], char *const envp[],
                         const int stdio[3], const int *keep, int keep_count, const char *directory) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    berth_reset_signal_handlers();
    for (int i = 0; i < 3; i++) {
        if (stdio[i] >= 0 && stdio[i] != i) dup2(stdio[i], i);
    }
    if (join_namespaces(target, flags) != 0) {
        dprintf(2, "join the namespaces of %d: %s\n", (int)target, strerror(errno));
        _exit(126);
    }
    if (directory && chdir(directory) != 0) {
        dprintf(2, "chdir %s: %s\n", directory, strerror(errno));
        _exit(126);
    }
    berth_cloexec_from(3);
    for (int i = 0; i < keep_count; i++) {
        int fdflags = fcntl(keep[i], F_GETFD);
        if (fdflags >= 0) fcntl(keep[i], F_SETFD, fdflags & ~FD_CLOEXEC);
    }
    execve(path, argv, envp);
    dprintf(2, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

int berth_joined_netns_create(pid_t target, const char *path, int remove) {
    return netns_file(target, path, remove);
}

// Timers for the supervisor's poll set (BerthEngine's ContainerTimer).

#include <sys/timerfd.h>

int berth_timer_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }

int berth_timer_arm(int fd, long milliseconds) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = milliseconds / 1000;
    spec.it_value.tv_nsec = (milliseconds % 1000) * 1000000L;
    if (milliseconds <= 0) spec.it_value.tv_nsec = 1; // "now", not disarmed
    return timerfd_settime(fd, 0, &spec, NULL);
}

// The systemd journal's native protocol (BerthEngine's Journald.swift).

int berth_unix_dgram_connect(const char *path) { return unix_connect(path, SOCK_DGRAM); }

int berth_sealed_memfd(const char *name, const void *data, unsigned long len) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const char *p = data;
    unsigned long left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { int e = n < 0 ? errno : EIO; close(fd); errno = e; return -1; }
        p += n;
        left -= (unsigned long)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}

int berth_send_only_fd(int sock, int fd) {
    struct msghdr msg = {0};
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int berth_socket_send_buffer(int sock) {
    int size = 0;
    socklen_t len = sizeof size;
    if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, &len) != 0) return -1;
    return size;
}
