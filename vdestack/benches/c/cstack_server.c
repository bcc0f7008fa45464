/* cstack_server URL CIDR: a libvdestack stack on URL with address CIDR, serving the
 * benchmark's sink and echo connections on TCP port 5001, one thread each, until
 * killed or its stdin reaches EOF. Prints "ready" once it listens. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cstack.h"

static void *serve(void *arg) {
	int c = (int)(intptr_t)arg;
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char mode;
	if (read(c, &mode, 1) != 1)
		goto out;
	if (mode == 'S') {
		static __thread char buf[1 << 16];
		uint64_t total = 0;
		ssize_t n;
		while ((n = read(c, buf, sizeof buf)) > 0)
			total += n;
		unsigned char be[8];
		for (int i = 0; i < 8; i++)
			be[i] = total >> (56 - 8 * i);
		if (write(c, be, 8) != 8)
			goto out;
	} else if (mode == 'E') {
		char b;
		while (read(c, &b, 1) == 1)
			if (write(c, &b, 1) != 1)
				break;
	}
out:
	close(c);
	return NULL;
}

/* The bench keeps our stdin open: EOF means it is gone, so go too. */
static void *watch_stdin(void *arg) {
	(void)arg;
	char b[64];
	while (read(0, b, sizeof b) > 0)
		;
	exit(0);
}

int main(int argc, char *argv[]) {
	cstack_require_private_net(argv[0]);
	if (argc != 3) {
		fprintf(stderr, "usage: %s URL CIDR\n", argv[0]);
		return 2;
	}
	struct vdestack *s = cstack_open(argv[1], argv[2]);
	int fd = vde_msocket(s, AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("vde_msocket");
		return 1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(CSTACK_PORT)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0) {
		perror("bind/listen");
		return 1;
	}
	pthread_t w;
	pthread_create(&w, NULL, watch_stdin, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		pthread_t t;
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)c) != 0) {
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}
