/* usage: echo_stackcmd VNL V4/LEN V6/LEN
 * A stack on VNL, configured by vde_stackcmd running `ip` (absolute path, no PATH
 * search in vde_stackcmd), serving the fork-per-connection echo of echo_serve.h. */
#include "echo_serve.h"

static const char *ip_path(void) {
	return access("/sbin/ip", X_OK) == 0 ? "/sbin/ip" : "/usr/sbin/ip";
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
	const char *ip = ip_path();
	char cmds[1024];
	snprintf(cmds, sizeof cmds,
		"%s link set vde0 up; %s addr add %s dev vde0; %s addr add %s dev vde0 nodad",
		ip, ip, argv[2], ip, argv[3]);
	int rv = vde_stackcmd(s, cmds);
	if (rv != 0) {
		fprintf(stderr, "vde_stackcmd(%s): %d\n", cmds, rv);
		return 1;
	}
	return echo_serve(s);
}
