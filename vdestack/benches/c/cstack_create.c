/* cstack_create: the costs of Debian libvdestack's stacks, for the stack benchmark.
 *   cstack_create cycles URL N  create and delete a stack N times (URL "-": no
 *     interface). Prints "create_us=U delete_us=U leaked_fds=N leaked_procs=N"
 *     (means; leaks = what N cycles left behind in this process).
 *   cstack_create footprint URL K  K stacks alive at once. Prints, per stack,
 *     "fds=F procs=P threads=T pss_kib=M": fds and threads of this process,
 *     processes below it, and the proportional memory of this process plus its
 *     descendants that do not share its memory (libvdestack's helpers share it).
 *   cstack_create max CAP  stacks with no interface until one fails or CAP exist
 *     (the fd limit raised to its hard limit first). Prints "max=N stop=REASON". */
#define _GNU_SOURCE
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "cstack.h"

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
	return n;
}

static long pss_kib(int pid) {
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	long v = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Pss: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Processes below `pid` (all its threads' children, recursively); adds the Pss of
 * those that have memory of their own to *pss. */
static int descendants(int pid, long *pss) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[320];
		snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, e->d_name);
		FILE *f = fopen(cpath, "r");
		if (f == NULL)
			continue;
		int child;
		while (fscanf(f, "%d", &child) == 1) {
			n++;
			if (syscall(SYS_kcmp, getpid(), child, KCMP_VM, 0, 0) != 0)
				*pss += pss_kib(child);
			n += descendants(child, pss);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

struct usage {
	int fds, procs, threads;
	long pss;
};

static struct usage usage(void) {
	struct usage u;
	u.fds = count_dir("/proc/self/fd");
	u.threads = count_dir("/proc/self/task");
	u.pss = pss_kib(getpid());
	u.procs = descendants(getpid(), &u.pss);
	return u;
}

static char *url_arg(char *a) {
	return strcmp(a, "-") == 0 ? NULL : a;
}

int main(int argc, char *argv[]) {
	cstack_require_private_net(argv[0]);
	if (argc == 4 && strcmp(argv[1], "cycles") == 0) {
		char *url = url_arg(argv[2]);
		int n = atoi(argv[3]);
		for (int i = 0; i < 3; i++) /* warm-up */
			vde_delstack(vde_addstack(url, NULL));
		struct usage before = usage();
		double create = 0, ready = 0, del = 0;
		for (int i = 0; i < n; i++) {
			double t0 = now_s();
			struct vdestack *s = vde_addstack(url, NULL);
			double t1 = now_s();
			if (s == NULL) {
				fprintf(stderr, "vde_addstack: %s\n", strerror(errno));
				return 1;
			}
			/* Usable: a first socket in the stack (its helper answers once it
			 * is running, its tap made). */
			int fd = vde_msocket(s, AF_INET, SOCK_DGRAM, 0);
			double t2 = now_s();
			if (fd < 0) {
				fprintf(stderr, "vde_msocket: %s\n", strerror(errno));
				return 1;
			}
			close(fd);
			double t3 = now_s();
			vde_delstack(s);
			create += t1 - t0;
			ready += t2 - t0;
			del += now_s() - t3;
		}
		struct usage after = usage();
		printf("create_us=%.0f ready_us=%.0f delete_us=%.0f leaked_fds=%d leaked_procs=%d\n",
			create / n * 1e6, ready / n * 1e6, del / n * 1e6, after.fds - before.fds,
			after.procs - before.procs);
	} else if (argc == 4 && strcmp(argv[1], "footprint") == 0) {
		char *url = url_arg(argv[2]);
		int k = atoi(argv[3]);
		if (k < 1 || k > 1000)
			return 2;
		struct vdestack **s = calloc(k, sizeof *s);
		vde_delstack(vde_addstack(url, NULL));
		struct usage before = usage();
		for (int i = 0; i < k; i++)
			if ((s[i] = vde_addstack(url, NULL)) == NULL) {
				fprintf(stderr, "vde_addstack: %s\n", strerror(errno));
				return 1;
			}
		usleep(100000); /* let the helpers settle */
		struct usage after = usage();
		printf("fds=%.2f procs=%.2f threads=%.2f pss_kib=%.0f\n",
			(after.fds - before.fds) / (double)k, (after.procs - before.procs) / (double)k,
			(after.threads - before.threads) / (double)k,
			(after.pss - before.pss) / (double)k);
		for (int i = 0; i < k; i++)
			vde_delstack(s[i]);
	} else if (argc == 3 && strcmp(argv[1], "max") == 0) {
		int cap = atoi(argv[2]);
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		struct vdestack **s = calloc(cap, sizeof *s);
		int n = 0;
		const char *stop = "cap";
		for (; n < cap; n++)
			if ((s[n] = vde_addstack(NULL, NULL)) == NULL) {
				stop = strerror(errno);
				break;
			}
		/* Check the newest one still works. */
		if (n > 0) {
			int fd = vde_msocket(s[n - 1], AF_INET, SOCK_STREAM, 0);
			if (fd < 0)
				stop = "the last stack gave no socket";
			else
				close(fd);
		}
		char why[128];
		snprintf(why, sizeof why, "%s", stop);
		for (char *c = why; *c; c++)
			if (*c == ' ')
				*c = '_';
		printf("max=%d stop=%s\n", n, why);
		for (int i = 0; i < n; i++)
			vde_delstack(s[i]);
	} else {
		fprintf(stderr, "usage: %s cycles URL N | footprint URL K | max CAP\n", argv[0]);
		return 2;
	}
	return 0;
}
