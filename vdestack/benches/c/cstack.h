/* Shared by the stack benchmark's C programs (vdestack/benches/stacks/): a stack of
 * Debian's libvdestack on a VNL, configured with vde_stackcmd, and a clock. The wire
 * protocol matches the Rust traffic generator: a connection starts with one mode
 * byte; 'S' = sink (the peer sends until it shuts down its side, then reads the byte
 * count back as 8 bytes, big-endian), 'E' = echo (1-byte ping-pong until EOF). */
#ifndef CSTACK_H
#define CSTACK_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vdestack.h>

#define CSTACK_PORT 5001

/* These programs send multicast (vxvde://) and TCP: they run only in a network
 * namespace of their own, as the bench starts them, where `lo` is the only
 * interface. Anywhere else they refuse, before any stack exists. */
static inline void cstack_require_private_net(const char *prog) {
	FILE *f = fopen("/proc/net/dev", "r");
	char line[512];
	int n = 0, others = 0;
	if (f == NULL) {
		fprintf(stderr, "%s: /proc/net/dev: %s\n", prog, strerror(errno));
		exit(1);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *colon = strchr(line, ':');
		if (++n <= 2 || colon == NULL)
			continue;
		*colon = '\0';
		char *name = line + strspn(line, " ");
		if (strcmp(name, "lo") != 0)
			others++;
	}
	fclose(f);
	if (others > 0) {
		fprintf(stderr, "%s: refusing to run outside a private network namespace "
			"(interfaces besides lo here); run it through the stacks bench\n", prog);
		exit(1);
	}
}

static inline double now_s(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* A stack with vde0 on `url`, up, with `cidr` (e.g. 10.99.0.1/24), MTU 1500. */
static inline struct vdestack *cstack_open(const char *url, const char *cidr) {
	struct vdestack *s = vde_addstack((char *)url, NULL);
	if (s == NULL) {
		fprintf(stderr, "vde_addstack %s: %s\n", url, strerror(errno));
		exit(1);
	}
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		"/usr/sbin/ip link set lo up;"
		"/usr/sbin/ip link set vde0 mtu 1500 up;"
		"/usr/sbin/ip addr add %s dev vde0", cidr);
	int rv = vde_stackcmd(s, cmd);
	if (rv != 0) {
		fprintf(stderr, "vde_stackcmd %s: status %d\n", cmd, rv);
		exit(1);
	}
	return s;
}
#endif
