/* Many threads use one stack at once: vde_msocket, vde_stackcmd and, through
 * vde_default_stack, plain socket(). Every socket must be in the stack (it can bind
 * an address only the stack has); every command status must be its own.
 * Then a forked child (no exec) and its parent make sockets in the stack at the
 * same time: each request has its own reply channel, so none is crossed or lost.
 * Prints "threads ok" or what failed; exit status 0 only when all went right. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vdestack.h>

#define THREADS 8
#define ROUNDS 100

static struct vdestack *stack;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, int n) {
	pthread_mutex_lock(&lock);
	failures++;
	fprintf(stderr, "FAIL %s (%d, errno %s)\n", what, n, strerror(errno));
	pthread_mutex_unlock(&lock);
}

/* 1 if fd can bind 10.77.0.1, an address only the stack has. */
static int in_stack(int fd) {
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.77.0.1", &a.sin_addr);
	return bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
}

static void *worker(void *arg) {
	long id = (long)arg;
	for (int i = 0; i < ROUNDS; i++) {
		int fd = (id % 2) ? socket(AF_INET, SOCK_DGRAM, 0)
				  : vde_msocket(stack, AF_INET, SOCK_DGRAM, 0);
		if (fd < 0)
			fail("socket", i);
		else if (!in_stack(fd))
			fail("a socket outside the stack", i);
		if (fd >= 0)
			close(fd);
		if (id % 4 == 0 && i % 10 == 0) {
			char cmd[64];
			int want = (int)(id + i / 10) % 5;
			snprintf(cmd, sizeof cmd, "/bin/sh -c 'exit %d'", want);
			int got = vde_stackcmd(stack, cmd);
			if (got != want)
				fail("a command's status", got);
		}
	}
	return NULL;
}

int main(void) {
	stack = vde_addstack(NULL, NULL);
	if (!stack) {
		perror("vde_addstack");
		return 1;
	}
	if (vde_stackcmd(stack, "/sbin/ip link set lo up; /sbin/ip addr add 10.77.0.1/32 dev lo") != 0) {
		fprintf(stderr, "configuring the stack failed\n");
		return 1;
	}
	vde_default_stack(stack);
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	vde_default_stack(NULL);

	/* A forked child and its parent, at once. */
	pid_t child = fork();
	if (child < 0) {
		fail("fork", 0);
	} else {
		int bad = 0;
		for (int i = 0; i < 300; i++) {
			int fd = vde_msocket(stack, AF_INET, SOCK_DGRAM, 0);
			if (fd < 0 || !in_stack(fd))
				bad++;
			if (fd >= 0)
				close(fd);
		}
		if (child == 0)
			_exit(bad ? 1 : 0);
		if (bad)
			fail("a parent's socket while its child made sockets", bad);
		int status = 0;
		if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail("a forked child's sockets", status);
	}

	int host = socket(AF_INET, SOCK_DGRAM, 0);
	if (host < 0 || in_stack(host))
		fail("a socket after vde_default_stack(NULL) is not the host's", host);
	close(host);
	vde_delstack(stack);
	if (failures) {
		printf("threads: %d failures\n", failures);
		return 1;
	}
	printf("threads ok\n");
	return 0;
}
