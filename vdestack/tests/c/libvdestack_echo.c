/* A TCP echo server on a stack made with Debian's libvdestack (the C library we
 * re-create): vde_addstack on the VNL given as argv[1], configured with
 * vde_stackcmd and busybox ip, serving connections on port 5000 (IPv6 and IPv4) one
 * at a time until it is killed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vdestack.h>

int main(int argc, char *argv[]) {
	if (argc < 2) {
		fprintf(stderr, "usage: %s VNL\n", argv[0]);
		return 2;
	}
	struct vdestack *s = vde_addstack(argv[1], NULL);
	if (s == NULL) {
		perror("vde_addstack");
		return 1;
	}
	int rv = vde_stackcmd(s,
		"/bin/busybox ip link set vde0 up;"
		"/bin/busybox ip addr add 10.77.2.1/24 dev vde0;"
		"/bin/busybox ip addr add fc00:77::1/64 dev vde0");
	if (rv != 0) {
		fprintf(stderr, "vde_stackcmd: %d\n", rv);
		return 1;
	}
	int fd = vde_msocket(s, AF_INET6, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("vde_msocket");
		return 1;
	}
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(5000);
	a.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1) < 0) {
		perror("bind/listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) {
			perror("accept");
			return 1;
		}
		char buf[4096];
		ssize_t n;
		while ((n = read(c, buf, sizeof buf)) > 0)
			if (write(c, buf, n) != n)
				break;
		close(c);
	}
}
