/* usage: probe VNL
 * A differential probe of the libvdestack C ABI: one `key=value` line per
 * observation, so the output of the same program built against two libraries can be
 * compared line by line. Errors print as errno names (glibc's strerrorname_np).
 *
 * Phase 0 looks at child processes (is the library's helper ours?). Phase 1
 * measures the fd table (hidden fds, close-on-exec, what delstack leaves) on stacks
 * (without and with VNL) the probe does nothing else with, so no socket of the
 * probe's own counts. Phase 2 observes the calls on a stack on VNL (not on a stack
 * without interface: there, Debian's vde_stackcmd never returns). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nlinline+.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vdestack.h>

NLINLINE_LIBMULTICOMP(vde_)

#define MAXFD 1024

static const char *ename(int e) {
	const char *n = strerrorname_np(e);
	return n ? n : "?";
}

/* Marks open[fd] for every fd in /proc/self/fd (but the directory's own); returns
 * how many. */
static int open_fds(char open[MAXFD]) {
	memset(open, 0, MAXFD);
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int self = dirfd(d), n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == self || fd >= MAXFD)
			continue;
		open[fd] = 1;
		n++;
	}
	closedir(d);
	return n;
}

/* Which network an fd's namespace shows: whether SIOCGIFINDEX finds "vde0". */
static const char *sees_vde0(int fd) {
	if (fd < 0)
		return ename(errno);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "vde0");
	return ioctl(fd, SIOCGIFINDEX, &ifr) == 0 ? "found" : ename(errno);
}

/* Whether "lo" is up where the fd lives (a stack's lo starts down, the test's is up). */
static const char *lo_state(int fd) {
	if (fd < 0)
		return ename(errno);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		return ename(errno);
	return (ifr.ifr_flags & IFF_UP) ? "up" : "down";
}

/* How many processes have this one as parent (zombies included). */
static int count_children(void) {
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		char *close_paren = strrchr(buf, ')');
		int ppid;
		if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
			n++;
	}
	closedir(d);
	return n;
}

/* Whether a library's helper is a child of the application (whose SIGCHLD
 * handler's wait() could reap it), on a fresh stack without network. */
static void phase_children(void) {
	printf("children_before=%d\n", count_children());
	struct vdestack *s = vde_addstack(NULL, NULL);
	if (s == NULL) {
		printf("children_addstack=%s\n", ename(errno));
		return;
	}
	printf("children_with_stack=%d\n", count_children());
	int st;
	pid_t w = waitpid(-1, &st, WNOHANG);
	printf("waitpid_any=%s\n", w == 0 ? "child_running" : w > 0 ? "reaped" : ename(errno));
	vde_delstack(s);
	printf("children_after_delstack=%d\n", count_children());
}

static void phase_fds(const char *tag, char *vnl) {
	char before[MAXFD], during[MAXFD], after[MAXFD];
	int n0 = open_fds(before);
	struct vdestack *s = vde_addstack(vnl, NULL);
	if (s == NULL) {
		printf("fds_%s_addstack=%s\n", tag, ename(errno));
		return;
	}
	/* A round trip first: Debian's helper opens its fds after addstack returns. */
	close(vde_msocket(s, AF_INET, SOCK_DGRAM, 0));
	int n1 = open_fds(during), inheritable = 0;
	char kinds[1024] = "";
	for (int fd = 0; fd < MAXFD; fd++) {
		if (!during[fd] || before[fd])
			continue;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			inheritable++;
		char link[64], target[256];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		target[n < 0 ? 0 : n] = 0;
		char *colon = strchr(target, ':');
		if (colon != NULL && strncmp(target, "anon_inode:", 11) != 0)
			*colon = 0; /* "socket:[123]" -> "socket" */
		snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s",
			kinds[0] ? "," : "", target);
	}
	printf("fds_%s_hidden=%d\n", tag, n1 - n0);
	printf("fds_%s_hidden_kinds=%s\n", tag, kinds);
	printf("fds_%s_hidden_inheritable=%d\n", tag, inheritable);
	vde_delstack(s);
	printf("fds_%s_left_after_delstack=%d\n", tag, open_fds(after) - n0);
}

static void stackcmd(struct vdestack *s, const char *key, const char *cmd) {
	char buf[256];
	snprintf(buf, sizeof buf, "%s", cmd);
	printf("stackcmd_%s=%d\n", key, vde_stackcmd(s, buf));
}

/* Runs `body` in a forked child and prints what it wrote to stdout (flushed first). */
static void in_child(const char *key, struct vdestack *s, int fd,
		const char *(*body)(struct vdestack *, int)) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		printf("%s=%s\n", key, body(s, fd));
		fflush(stdout);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st))
		printf("%s=child_status_%d\n", key, st);
}

static const char *child_uses_parent_socket(struct vdestack *s, int fd) {
	(void)s;
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(6001);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0)
		return ename(errno);
	return sees_vde0(fd);
}

static const char *child_makes_socket(struct vdestack *s, int fd) {
	(void)fd;
	int c = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
	if (c < 0)
		return ename(errno);
	return sees_vde0(c);
}

static void phase_calls(char *vnl) {
	errno = 0;
	struct vdestack *bad = vde_addstack("nosuch://x", NULL);
	printf("addstack_bad_url=%s\n", bad ? "stack" : ename(errno));
	if (bad)
		vde_delstack(bad);
	/* No "://": a vde:// path (libvdeplug's rule), here one where no switch is. */
	errno = 0;
	bad = vde_addstack("////", NULL);
	printf("addstack_slashes=%s\n", bad ? "stack" : ename(errno));
	if (bad)
		vde_delstack(bad);

	/* Interface names: a chosen one, and one too long for IFNAMSIZ. */
	struct vdestack *named = vde_addstack(vnl, "tap7");
	printf("addstack_ifname=%s\n", named ? "ok" : ename(errno));
	if (named) {
		printf("addstack_ifname_index=%d\n", vde_if_nametoindex(named, "tap7"));
		vde_delstack(named);
	}
	errno = 0;
	named = vde_addstack(vnl, "abcdefghijklmnopqrst");
	printf("addstack_long_ifname=%s\n", named ? "ok" : ename(errno));
	if (named) {
		printf("addstack_long_ifname_truncated=%d\n",
			vde_if_nametoindex(named, "abcdefghijklmno"));
		vde_delstack(named);
	}
	/* A coprocess as the network ("=command"). */
	named = vde_addstack("=/bin/cat", NULL);
	printf("addstack_coprocess=%s\n", named ? "ok" : ename(errno));
	if (named) {
		printf("addstack_coprocess_vde0=%d\n", vde_if_nametoindex(named, "vde0"));
		vde_delstack(named);
		/* Give a coprocess killed at delstack a moment to be gone. */
		for (int i = 0; i < 50 && count_children() > 0; i++)
			usleep(10000);
		printf("coprocess_children_after_delstack=%d\n", count_children());
	}

	struct vdestack *s = vde_addstack(vnl, NULL);
	if (s == NULL) {
		printf("addstack=%s\n", ename(errno));
		return;
	}
	printf("addstack=ok\n");

	errno = 0;
	int fd = vde_msocket(s, 4242, SOCK_DGRAM, 0);
	printf("msocket_bad_domain=%d/%s\n", fd, ename(errno));
	fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
	printf("msocket_vde0=%s\n", sees_vde0(fd));
	printf("msocket_lo=%s\n", lo_state(fd));
	close(fd);

	stackcmd(s, "true", "/bin/true");
	stackcmd(s, "false_then_true", "/bin/false; /bin/true");
	stackcmd(s, "relative", "true");
	stackcmd(s, "missing", "/no/such/command");
	stackcmd(s, "exit3", "/bin/sh -c 'exit 3'");
	stackcmd(s, "killed", "/bin/sh -c 'kill -9 $$'");
	stackcmd(s, "empty", "");

	printf("nl_lo=%d\n", vde_if_nametoindex(s, "lo"));
	printf("nl_vde0=%d\n", vde_if_nametoindex(s, "vde0"));
	printf("nl_lo_up=%d\n", vde_linksetupdown(s, vde_if_nametoindex(s, "lo"), 1));
	fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
	printf("msocket_lo_after_nl=%s\n", lo_state(fd));
	close(fd);

	vde_default_stack(s);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	printf("default_socket_vde0=%s\n", sees_vde0(fd));
	close(fd);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	printf("default_socket6_vde0=%s\n", sees_vde0(fd));
	close(fd);
	vde_default_stack(NULL);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	printf("host_socket_vde0=%s\n", sees_vde0(fd));
	close(fd);

	fd = vde_msocket(s, AF_INET6, SOCK_STREAM, 0);
	in_child("child_uses_parent_socket", s, fd, child_uses_parent_socket);
	close(fd);
	in_child("child_makes_socket", s, -1, child_makes_socket);
	/* Still usable after the child's calls? */
	fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
	printf("msocket_after_children=%s\n", sees_vde0(fd));
	close(fd);

	/* Deleting the default stack clears the default. */
	vde_default_stack(s);
	vde_delstack(s);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	printf("socket_after_delstack_of_default=%s\n", sees_vde0(fd));
	close(fd);
}

int main(int argc, char *argv[]) {
	if (argc < 2) {
		fprintf(stderr, "usage: %s VNL\n", argv[0]);
		return 2;
	}
	char *vnl = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	phase_children();
	phase_fds("novnl", NULL);
	phase_fds("vnl", vnl);
	phase_calls(vnl);
	printf("end=ok\n");
	return 0;
}
