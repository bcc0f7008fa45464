/* usage: echo_nlinline VNL V4/LEN V6/LEN
 * A stack on VNL, configured through nlinline+ (Debian's nlinline-dev) with
 * NLINLINE_LIBMULTICOMP(vde_): netlink sockets made by vde_msocket, so the requests
 * reach the stack's namespace. Then the echo server of echo_serve.h. */
#include <nlinline+.h>
#include "echo_serve.h"

NLINLINE_LIBMULTICOMP(vde_)

/* Splits "ADDR/LEN" in place; returns LEN, or -1. */
static int split_prefix(char *cidr) {
	char *slash = strchr(cidr, '/');
	if (slash == NULL)
		return -1;
	*slash = 0;
	return atoi(slash + 1);
}

int main(int argc, char *argv[]) {
	if (argc < 4) {
		fprintf(stderr, "usage: %s VNL V4/LEN V6/LEN\n", argv[0]);
		return 2;
	}
	struct vdestack *s = vde_addstack(argv[1], NULL);
	if (s == NULL) {
		perror("vde_addstack");
		return 1;
	}
	int v4len = split_prefix(argv[2]), v6len = split_prefix(argv[3]);
	struct in_addr v4;
	struct in6_addr v6;
	if (v4len < 0 || v6len < 0 || inet_pton(AF_INET, argv[2], &v4) != 1 ||
			inet_pton(AF_INET6, argv[3], &v6) != 1) {
		fprintf(stderr, "bad address\n");
		return 2;
	}
	int idx = vde_if_nametoindex(s, "vde0");
	if (idx <= 0) {
		perror("vde_if_nametoindex");
		return 1;
	}
	if (vde_linksetupdown(s, idx, 1) < 0) {
		perror("vde_linksetupdown");
		return 1;
	}
	if (vde_ipaddr_add(s, AF_INET, &v4, v4len, idx) < 0 ||
			vde_ipaddr_add(s, AF_INET6, &v6, v6len, idx) < 0) {
		perror("vde_ipaddr_add");
		return 1;
	}
	return echo_serve(s);
}
