/* What `vdestack vu` tests run under supervision, built with `gcc -static`
 * (glibc's static getifaddrs/if_nametoindex/if_indextoname reach the kernel
 * with no PLT to interpose on: only system calls can be served).
 *
 *   vu_procs ifaddrs   getifaddrs, if_nametoindex, if_indextoname, if_nameindex
 *   vu_procs threads   8 threads each open a netlink socket and look vde0 up
 *   vu_procs vfork CMD vfork + exec of /bin/sh -c CMD, waits, its status is ours
 *   vu_procs closeall  closes every fd (stdio too), then looks vde0 up: the exit
 *                      status is its index (0 on failure)
 *   vu_procs inet      an AF_INET datagram socket: ioctls work, data calls fail
 *   vu_procs connect   a blocking TCP connect to 192.0.2.1:80, and its result
 *   vu_procs netlink   what a kernel says of netlink sockets and socket ioctls
 *                      (protocols served or not go to stderr: they differ)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int ifaddrs(void)
{
	struct ifaddrs *ifa, *p;
	if (getifaddrs(&ifa) != 0) {
		perror("getifaddrs");
		return 1;
	}
	for (p = ifa; p; p = p->ifa_next) {
		char buf[INET6_ADDRSTRLEN] = "-";
		int fam = p->ifa_addr ? p->ifa_addr->sa_family : -1;
		const char *f = "?";
		if (fam == AF_INET) {
			f = "inet";
			inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, buf, sizeof buf);
		} else if (fam == AF_INET6) {
			f = "inet6";
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr, buf, sizeof buf);
		} else if (fam == AF_PACKET) {
			struct sockaddr_ll *l = (struct sockaddr_ll *)p->ifa_addr;
			f = "packet";
			snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", l->sll_addr[0],
				 l->sll_addr[1], l->sll_addr[2], l->sll_addr[3], l->sll_addr[4],
				 l->sll_addr[5]);
		}
		printf("getifaddrs %s %s %s flags=0x%x\n", p->ifa_name, f, buf, p->ifa_flags);
	}
	freeifaddrs(ifa);
	printf("if_nametoindex vde0 %u\n", if_nametoindex("vde0"));
	printf("if_nametoindex lo %u\n", if_nametoindex("lo"));
	char name[IF_NAMESIZE];
	for (unsigned i = 1; i <= 3; i++)
		printf("if_indextoname %u %s\n", i, if_indextoname(i, name) ? name : "-");
	struct if_nameindex *ni = if_nameindex(), *q;
	for (q = ni; q && q->if_index; q++)
		printf("if_nameindex %u %s\n", q->if_index, q->if_name);
	if_freenameindex(ni);
	return 0;
}

static void *thread(void *arg)
{
	long *out = arg;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl a = {.nl_family = AF_NETLINK};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		out[0] = -1;
	else
		out[0] = a.nl_pid;
	out[1] = if_nametoindex("vde0");
	return NULL;
}

static int threads(void)
{
	pthread_t t[8];
	long r[8][2];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, thread, r[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		printf("thread %d port %ld vde0 %ld\n", i, r[i][0], r[i][1]);
	}
	return 0;
}

static int do_vfork(const char *cmd)
{
	int status;
	pid_t p = vfork();
	if (p == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &status, 0) != p)
		return 126;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int closeall(void)
{
	if (syscall(SYS_close_range, 0, ~0U, 0) != 0) {
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
	}
	return (int)if_nametoindex("vde0");
}

static int inet(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "vde0");
	int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &r) == 0;
	printf("ioctl %s flags=0x%x\n", ok ? "ok" : strerror(errno), (unsigned)r.ifr_flags);
	int type = 0, domain = 0;
	socklen_t l = sizeof type;
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
	l = sizeof domain;
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l);
	printf("type %d domain %d\n", type, domain);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
	inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
	int r1 = sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
	printf("sendto %d %s\n", r1, r1 < 0 ? strerror(errno) : "");
	int r2 = connect(fd, (struct sockaddr *)&to, sizeof to);
	printf("connect %d %s\n", r2, r2 < 0 ? strerror(errno) : "");
	struct sockaddr_in me;
	l = sizeof me;
	getsockname(fd, (struct sockaddr *)&me, &l);
	char b[INET_ADDRSTRLEN];
	printf("getsockname %s:%d len %u family %d\n", inet_ntop(AF_INET, &me.sin_addr, b, sizeof b),
	       ntohs(me.sin_port), l, me.sin_family);
	/* What the fd really is: a socket listed in /proc/net/unix (the machine's:
	 * not served), so not a kernel IP socket. */
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	unsigned long ino = 0;
	sscanf(link, "socket:[%lu]", &ino);
	int found = 0;
	FILE *f = fopen("/proc/net/unix", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long i;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &i) == 1 && i == ino && ino)
			found = 1;
	}
	if (f)
		fclose(f);
	printf("unix socket %s\n", found ? "yes" : "no");
	int s1 = shutdown(fd, SHUT_RDWR);
	printf("shutdown %d %s\n", s1, s1 < 0 ? strerror(errno) : "");
	return 0;
}

#define SHOW(what, call)                                                       \
	do {                                                                   \
		errno = 0;                                                     \
		int r_ = (call);                                               \
		printf("%s: %d %s\n", what, r_ < 0 ? -1 : r_, r_ < 0 ? strerror(errno) : ""); \
	} while (0)

static int netlink(void)
{
	fprintf(stderr, "sock_diag: %s\n", socket(AF_NETLINK, SOCK_RAW, 4) < 0 ? strerror(errno) : "ok");
	fprintf(stderr, "generic: %s\n", socket(AF_NETLINK, SOCK_RAW, 16) < 0 ? strerror(errno) : "ok");
	SHOW("stream netlink", socket(AF_NETLINK, SOCK_STREAM, 0));
	SHOW("bad flags", socket(AF_NETLINK, SOCK_RAW | 0x100, 0));
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl a;
	socklen_t len = sizeof a;
	memset(&a, 0xff, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	printf("unbound: family %d pid %u groups %u len %u\n", a.nl_family, a.nl_pid, a.nl_groups, len);
	struct sockaddr_nl b = {.nl_family = AF_NETLINK, .nl_groups = 1};
	SHOW("bind", bind(fd, (struct sockaddr *)&b, sizeof b));
	SHOW("bind short", bind(fd, (struct sockaddr *)&b, 4));
	len = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &len);
	printf("bound: family %d pid is mine %d groups %u len %u\n", a.nl_family, a.nl_pid == (unsigned)getpid(),
	       a.nl_groups, len);
	len = 4;
	getsockname(fd, (struct sockaddr *)&a, &len);
	printf("short name: len %u\n", len);
	len = sizeof a;
	getpeername(fd, (struct sockaddr *)&a, &len);
	printf("peer: family %d pid %u len %u\n", a.nl_family, a.nl_pid, len);
	int v;
	int opts[] = {SO_TYPE, SO_DOMAIN, SO_PROTOCOL};
	for (int i = 0; i < 3; i++) {
		len = sizeof v;
		getsockopt(fd, SOL_SOCKET, opts[i], &v, &len);
		printf("SOL_SOCKET %d: %d len %u\n", opts[i], v, len);
	}
	v = 65536;
	SHOW("SO_RCVBUF", setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
	len = sizeof v;
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
	printf("SO_RCVBUF: %d\n", v);
	v = 1;
	SHOW("EXT_ACK", setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
	v = 0;
	len = sizeof v;
	SHOW("get EXT_ACK", getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len));
	printf("EXT_ACK: %d len %u\n", v, len);
	len = 2;
	SHOW("get EXT_ACK short", getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len));
	SHOW("get 99", getsockopt(fd, SOL_NETLINK, 99, &v, &len));
	SHOW("set IP level", setsockopt(fd, SOL_IP, IP_TTL, &v, sizeof v));
	v = 2;
	SHOW("add membership 2", setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
	len = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &len);
	printf("groups now %u\n", a.nl_groups);
	int p[2];
	pipe(p);
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	SHOW("SIOCGIFINDEX on a pipe", ioctl(p[0], SIOCGIFINDEX, &r));
	int u = socket(AF_UNIX, SOCK_DGRAM, 0);
	SHOW("SIOCGIFINDEX on AF_UNIX", ioctl(u, SIOCGIFINDEX, &r));
	printf("index %d\n", r.ifr_ifindex);
	SHOW("SIOCGIFADDR on AF_UNIX", ioctl(u, SIOCGIFADDR, &r));
	SHOW("SIOCGIFFLAGS on netlink", ioctl(fd, SIOCGIFFLAGS, &r));
	SHOW("SIOCGIFINDEX on a bad fd", ioctl(999, SIOCGIFINDEX, &r));
	SHOW("shutdown netlink", shutdown(fd, SHUT_WR));
	SHOW("shutdown AF_UNIX", shutdown(u, SHUT_WR));
	return 0;
}

static int do_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
	int r = connect(fd, (struct sockaddr *)&to, sizeof to);
	printf("connect %d %s\n", r, r < 0 ? strerror(errno) : "");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "ifaddrs"))
		return ifaddrs();
	if (argc >= 2 && !strcmp(argv[1], "threads"))
		return threads();
	if (argc >= 3 && !strcmp(argv[1], "vfork"))
		return do_vfork(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "closeall"))
		return closeall();
	if (argc >= 2 && !strcmp(argv[1], "inet"))
		return inet();
	if (argc >= 2 && !strcmp(argv[1], "connect"))
		return do_connect();
	if (argc >= 2 && !strcmp(argv[1], "netlink"))
		return netlink();
	fprintf(stderr, "usage: vu_procs ifaddrs|threads|vfork CMD|closeall|inet|connect|netlink\n");
	return 2;
}
