/* usage: leakloop [VNL]
 * 50 times: vde_addstack(VNL or NULL), vde_msocket, close, vde_stackcmd "/bin/true",
 * vde_delstack. Run under valgrind (leaks, bad memory use); prints the number of
 * open fds before and after, which must be equal for a library that does not leak. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vdestack.h>

static int count_fds(void) {
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own fd */
}

int main(int argc, char *argv[]) {
	char *vnl = argc > 1 ? argv[1] : NULL;
	int before = count_fds();
	for (int i = 0; i < 50; i++) {
		struct vdestack *s = vde_addstack(vnl, NULL);
		if (s == NULL) {
			fprintf(stderr, "round %d: vde_addstack: %s\n", i, strerror(errno));
			return 1;
		}
		int fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
		if (fd < 0) {
			fprintf(stderr, "round %d: vde_msocket: %s\n", i, strerror(errno));
			return 1;
		}
		close(fd);
		char cmd[] = "/bin/true";
		int rv = vde_stackcmd(s, cmd);
		if (rv != 0) {
			fprintf(stderr, "round %d: vde_stackcmd: %d\n", i, rv);
			return 1;
		}
		vde_delstack(s);
	}
	printf("fds_before=%d\nfds_after=%d\n", before, count_fds());
	return 0;
}
