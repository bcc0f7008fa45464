/* Shared by echo_stackcmd.c and echo_nlinline.c: a fork-per-connection TCP echo
 * server on a dual-stack socket made with vde_msocket, port 5000. Each accepted
 * connection is served by a grandchild (double fork), so the server never waits for
 * a connection to end and never reaps a process it did not start: the library's own
 * helper may be a child of this process too. */
#ifndef ECHO_SERVE_H
#define ECHO_SERVE_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vdestack.h>

static void echo_connection(int c) {
	char buf[4096];
	ssize_t n;
	while ((n = read(c, buf, sizeof buf)) > 0)
		if (write(c, buf, n) != n)
			break;
}

static int echo_serve(struct vdestack *s) {
	int fd = vde_msocket(s, AF_INET6, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("vde_msocket");
		return 1;
	}
	int no = 0;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(5000);
	a.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0) {
		perror("bind/listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) {
			perror("accept");
			return 1;
		}
		pid_t child = fork();
		if (child == 0) {
			close(fd);
			if (fork() == 0) {
				echo_connection(c);
				_exit(0);
			}
			_exit(0);
		}
		close(c);
		if (child > 0)
			waitpid(child, NULL, 0);
	}
}

#endif
