/* cstack_client URL CIDR PEER MODE SECS STREAMS: a libvdestack stack on URL with
 * address CIDR drives the benchmark's server at PEER:5001 for SECS seconds.
 *   MODE stream: STREAMS connections send 64 KiB writes in parallel; each then shuts
 *     down its side and reads the server's byte count. Prints
 *     "mbps=MB/s bytes=N secs=S" (MB = 10^6 bytes, timed until the last count).
 *   MODE rr: one connection, 1-byte request, 1-byte reply, TCP_NODELAY. Prints
 *     "rr=N/s mean_us=U p99_us=U count=N". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cstack.h"

static struct vdestack *stack;
static struct sockaddr_in peer;
static double secs;

static int dial(char mode) {
	double deadline = now_s() + 10;
	for (;;) {
		int fd = vde_msocket(stack, AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("vde_msocket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&peer, sizeof peer) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			if (write(fd, &mode, 1) != 1) {
				perror("write");
				exit(1);
			}
			return fd;
		}
		close(fd);
		if (now_s() > deadline) {
			perror("connect");
			exit(1);
		}
		usleep(20000);
	}
}

static void *sender(void *arg) {
	uint64_t *got = arg;
	int fd = dial('S');
	static __thread char buf[1 << 16];
	memset(buf, 0x5a, sizeof buf);
	double end = now_s() + secs;
	while (now_s() < end)
		if (write(fd, buf, sizeof buf) < 0) {
			perror("write");
			exit(1);
		}
	shutdown(fd, SHUT_WR);
	unsigned char be[8];
	size_t have = 0;
	while (have < 8) {
		ssize_t n = read(fd, be + have, 8 - have);
		if (n <= 0) {
			fprintf(stderr, "no byte count from the server\n");
			exit(1);
		}
		have += n;
	}
	*got = 0;
	for (int i = 0; i < 8; i++)
		*got = *got << 8 | be[i];
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
	cstack_require_private_net(argv[0]);
	if (argc != 7) {
		fprintf(stderr, "usage: %s URL CIDR PEER stream|rr SECS STREAMS\n", argv[0]);
		return 2;
	}
	stack = cstack_open(argv[1], argv[2]);
	peer.sin_family = AF_INET;
	peer.sin_port = htons(CSTACK_PORT);
	if (inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
		fprintf(stderr, "bad peer address %s\n", argv[3]);
		return 2;
	}
	secs = atof(argv[5]);
	int streams = atoi(argv[6]);
	if (secs <= 0 || streams < 1 || streams > 64) {
		fprintf(stderr, "bad SECS or STREAMS\n");
		return 2;
	}
	if (strcmp(argv[4], "stream") == 0) {
		pthread_t t[64];
		uint64_t got[64];
		double t0 = now_s();
		for (int i = 0; i < streams; i++)
			pthread_create(&t[i], NULL, sender, &got[i]);
		uint64_t total = 0;
		for (int i = 0; i < streams; i++) {
			pthread_join(t[i], NULL);
			total += got[i];
		}
		double el = now_s() - t0;
		printf("mbps=%.1f bytes=%llu secs=%.3f\n", total / el / 1e6,
			(unsigned long long)total, el);
	} else if (strcmp(argv[4], "rr") == 0) {
		int fd = dial('E');
		size_t cap = 1 << 16, n = 0;
		double *lat = malloc(cap * sizeof *lat);
		double t0 = now_s(), end = t0 + secs, sum = 0;
		char b = 'x';
		for (;;) {
			double a = now_s();
			if (a >= end)
				break;
			if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1) {
				fprintf(stderr, "echo failed\n");
				return 1;
			}
			double d = now_s() - a;
			if (n == cap)
				lat = realloc(lat, (cap *= 2) * sizeof *lat);
			lat[n++] = d;
			sum += d;
		}
		double el = now_s() - t0;
		close(fd);
		qsort(lat, n, sizeof *lat, cmp);
		printf("rr=%.0f mean_us=%.1f p99_us=%.1f count=%zu\n", n / el,
			n ? sum / n * 1e6 : 0, n ? lat[n * 99 / 100] * 1e6 : 0, n);
	} else {
		fprintf(stderr, "MODE is stream or rr\n");
		return 2;
	}
	vde_delstack(stack);
	return 0;
}
