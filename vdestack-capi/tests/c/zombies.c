/* usage: zombies N [subreaper] [tap]
 * N cycles of vde_addstack(NULL) + vde_msocket + vde_stackcmd("/bin/true") +
 * vde_delstack and, with "tap", a stack on a "=/bin/cat" coprocess and one on
 * "cmd:///bin/cat". With "subreaper" the program first makes itself a child
 * subreaper (PR_SET_CHILD_SUBREAPER); run it under `unshare -pf` to make it PID 1.
 * It never calls wait(): a zombie whose parent it is stays one. Prints
 * `key=value` lines: the zombies whose parent it is after the cycles, then after
 * it has no running child left (the library's helper lingers a moment after the
 * last stack; waited for up to 20 s), and its children then. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

/* Our pid as this /proc numbers it (it may be an outer pid namespace's). */
static int proc_pid(void) {
	FILE *f = fopen("/proc/self/stat", "r");
	int pid = -1;
	if (f != NULL) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

/* How many processes have us as parent: all of them, or only the zombies. */
static int count_children(int zombies_only) {
	int me = proc_pid();
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
		char *close = strrchr(buf, ')');
		char state;
		int ppid;
		if (close == NULL || sscanf(close + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (ppid == me && (!zombies_only || state == 'Z'))
			n++;
	}
	closedir(d);
	return n;
}

static double now_s(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cycle_on(char *vnl, int i) {
	struct vdestack *s = vde_addstack(vnl, NULL);
	if (s == NULL) {
		fprintf(stderr, "cycle %d: vde_addstack(%s): %s\n", i, vnl ? vnl : "NULL",
			strerror(errno));
		return 1;
	}
	if (vnl == NULL) {
		int fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
		if (fd < 0) {
			fprintf(stderr, "cycle %d: vde_msocket: %s\n", i, strerror(errno));
			return 1;
		}
		close(fd);
		char cmd[] = "/bin/true";
		int rv = vde_stackcmd(s, cmd);
		if (rv != 0) {
			fprintf(stderr, "cycle %d: vde_stackcmd: %d\n", i, rv);
			return 1;
		}
	}
	vde_delstack(s);
	return 0;
}

int main(int argc, char *argv[]) {
	int n = argc > 1 ? atoi(argv[1]) : 0, subreaper = 0, tap = 0;
	for (int i = 2; i < argc; i++) {
		subreaper |= strcmp(argv[i], "subreaper") == 0;
		tap |= strcmp(argv[i], "tap") == 0;
	}
	if (n < 1) {
		fprintf(stderr, "usage: zombies N [subreaper] [tap]\n");
		return 2;
	}
	if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	printf("pid=%d\n", getpid());
	char coprocess[] = "=/bin/cat", cmdplug[] = "cmd:///bin/cat";
	for (int i = 0; i < n; i++) {
		if (cycle_on(NULL, i))
			return 1;
		if (tap && (cycle_on(coprocess, i) || cycle_on(cmdplug, i)))
			return 1;
	}
	printf("zombies_after_cycles=%d\n", count_children(1));
	double deadline = now_s() + 20;
	while (count_children(0) > count_children(1) && now_s() < deadline)
		usleep(20000);
	usleep(100000); /* a zombie can only stay: give a late reaper a moment */
	printf("zombies_after_linger=%d\n", count_children(1));
	printf("children_after_linger=%d\n", count_children(0));
	printf("end=ok\n");
	return 0;
}
