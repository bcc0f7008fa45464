/* usage: forklinger   (in a pid namespace of its own with its own /proc, not as
 * its init: `unshare -pfm --mount-proc sh -c 'forklinger; true'`)
 * Our library's namespace helper lingers a moment after the last stack. A child
 * fork()ed meanwhile (no exec) must not keep it alive: the helper must be gone
 * after the linger even while the child lives on, as when a daemon forks and
 * its parent exits. Prints `key=value` lines. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

static double now_s(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The one process of this pid namespace that is neither init, nor us, nor `skip`
 * (0 if none, -1 if more than one). */
static int other_process(int skip) {
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int pid = atoi(e->d_name);
		if (pid <= 1 || pid == getpid() || pid == skip)
			continue;
		found = found == 0 ? pid : -1;
	}
	closedir(d);
	return found;
}

/* Whether `pid` runs (exists and is no zombie). */
static int running(int pid) {
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = 0;
	char *close = strrchr(buf, ')');
	return close != NULL && close[1] == ' ' && close[2] != 'Z';
}

int main(void) {
	if (getpid() == 1) {
		fprintf(stderr, "forklinger: run me under an init (sh -c 'forklinger; true')\n");
		return 2;
	}
	struct vdestack *s = vde_addstack(NULL, NULL);
	if (s == NULL) {
		perror("vde_addstack");
		return 1;
	}
	close(vde_msocket(s, AF_INET, SOCK_DGRAM, 0));
	int helper = other_process(0);
	printf("helper_found=%s\n", helper > 0 ? "yes" : "no");
	vde_delstack(s);
	printf("helper_lingers=%s\n", helper > 0 && running(helper) ? "yes" : "no");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		sleep(30); /* holds whatever it inherited, never execs */
		_exit(0);
	}
	/* Without a fork hook the child's copies keep the helper alive until the
	 * parent, 5 s after the linger, kills it: 3 s tells the two apart. */
	double deadline = now_s() + 3;
	while (helper > 0 && running(helper) && now_s() < deadline)
		usleep(10000);
	printf("helper_gone_while_child_lives=%s\n",
		helper > 0 && !running(helper) && running(child) ? "yes" : "no");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	printf("end=ok\n");
	return 0;
}
