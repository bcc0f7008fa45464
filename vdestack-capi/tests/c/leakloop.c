/* usage: leakloop [VNL]
 * 50 times: vde_addstack(VNL or NULL), vde_msocket, close, vde_stackcmd "/bin/true",
 * vde_delstack. Run under valgrind (leaks, bad memory use); prints the number of
 * open fds before and after, which must be equal for a library that does not leak.
 * Our library's namespace helper lingers a moment after the last stack, holding a
 * few fds: with LEAKLOOP_WAIT_MS set, "after" is counted once the count is back
 * to "before", or when that many milliseconds have passed ("after_loop" is the
 * count right after the last vde_delstack). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

static double now_s(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

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
	int after = count_fds();
	printf("fds_after_loop=%d\n", after);
	const char *wait_ms = getenv("LEAKLOOP_WAIT_MS");
	double deadline = now_s() + (wait_ms ? atoi(wait_ms) : 0) / 1000.0;
	while (after != before && now_s() < deadline) {
		usleep(10000);
		after = count_fds();
	}
	printf("fds_before=%d\nfds_after=%d\n", before, after);
	return 0;
}
