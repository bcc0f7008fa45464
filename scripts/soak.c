/* The soak test's C side (built and run by scripts/soak against our
 * libvdestack.so.0): N cycles of vde_addstack(URL), a first vde_msocket,
 * vde_delstack, each stack the process's only one. Prints what the process holds
 * (fds, threads, children, zombies whose parent it is, RSS) at the start, after
 * 1,000 cycles, at the end, and once the namespace helper's linger is over.
 *   usage: soak N URL     (URL "-": no interface) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

static int count_dir(const char *path) {
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0); /* the directory's own fd */
}

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

/* Children of this process, and how many of them are zombies. */
static void children(int *all, int *zombies) {
	int me = proc_pid();
	*all = *zombies = 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return;
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
		if (close == NULL || sscanf(close + 1, " %c %d", &state, &ppid) != 2 || ppid != me)
			continue;
		(*all)++;
		*zombies += state == 'Z';
	}
	closedir(d);
}

static long rss_kib(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = 0;
	while (f != NULL && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return v;
}

static double now_s(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void report(const char *url, const char *at) {
	int all, zombies;
	children(&all, &zombies);
	printf("api=c url=%s at=%s fds=%d threads=%d children=%d zombies=%d rss_kib=%ld\n", url,
		at, count_dir("/proc/self/fd"), count_dir("/proc/self/task"), all, zombies,
		rss_kib());
	fflush(stdout);
}

int main(int argc, char *argv[]) {
	if (argc != 3 || atoi(argv[1]) < 1) {
		fprintf(stderr, "usage: soak N URL (URL - for none)\n");
		return 2;
	}
	int n = atoi(argv[1]);
	char *url = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	int fds0 = count_dir("/proc/self/fd"), threads0 = count_dir("/proc/self/task");
	report(argv[2], "start");
	double t0 = now_s();
	for (int i = 1; i <= n; i++) {
		struct vdestack *s = vde_addstack(url, NULL);
		if (s == NULL) {
			fprintf(stderr, "cycle %d: vde_addstack(%s): %s\n", i, argv[2], strerror(errno));
			return 1;
		}
		int fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
		if (fd < 0) {
			fprintf(stderr, "cycle %d: vde_msocket: %s\n", i, strerror(errno));
			return 1;
		}
		close(fd);
		vde_delstack(s);
		if (i == 1000 && n > 1000)
			report(argv[2], "1k");
	}
	double per = (now_s() - t0) / n;
	report(argv[2], "end");
	/* The helper goes by itself after its linger (and its fds, and the thread
	 * that waited with it): wait for that, up to 20 s. */
	double deadline = now_s() + 20;
	int all, zombies;
	children(&all, &zombies);
	while ((count_dir("/proc/self/fd") != fds0 || count_dir("/proc/self/task") != threads0 ||
		       all > 0) &&
		now_s() < deadline) {
		usleep(20000);
		children(&all, &zombies);
	}
	report(argv[2], "after_linger");
	printf("api=c url=%s cycle_us=%.0f\n", argv[2], per * 1e6);
	return 0;
}
