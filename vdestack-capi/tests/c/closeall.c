/* usage: closeall
 * A program that, like a daemon, closes "all other fds" after deleting its
 * stacks, while our library's helper lingers, and then opens files that get the
 * same fd numbers. The library must not use those fds as its own, nor close them
 * when the linger ends; a new stack must work. Prints `key=value` lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vdestack.h>

#define NFILES 16

int main(void) {
	struct vdestack *s = vde_addstack(NULL, NULL);
	if (s == NULL) {
		perror("vde_addstack");
		return 1;
	}
	close(vde_msocket(s, AF_INET, SOCK_DGRAM, 0));
	vde_delstack(s);
	/* The helper lingers; its fds are somewhere in 3..: close them all. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	int mine[NFILES];
	for (int i = 0; i < NFILES; i++)
		mine[i] = open("/dev/null", O_RDONLY);
	s = vde_addstack(NULL, NULL);
	printf("addstack_after_closeall=%s\n", s ? "ok" : strerrorname_np(errno));
	if (s != NULL) {
		int fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
		printf("msocket_after_closeall=%s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
		if (fd >= 0)
			close(fd);
		vde_delstack(s);
	}
	usleep(1500000); /* past the linger (250 ms by default) */
	int intact = 0;
	for (int i = 0; i < NFILES; i++) {
		char link[64], target[256];
		snprintf(link, sizeof link, "/proc/self/fd/%d", mine[i]);
		ssize_t n = readlink(link, target, sizeof target - 1);
		target[n < 0 ? 0 : n] = 0;
		intact += mine[i] >= 0 && strcmp(target, "/dev/null") == 0;
	}
	printf("own_files_intact=%d/%d\n", intact, NFILES);
	printf("end=ok\n");
	return 0;
}
