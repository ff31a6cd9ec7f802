/*
 * sdnotify.c - the sd_notify(3) datagram, for `serve` under systemd
 * (sdnotify.h).  A few lines instead of a dependency on libsystemd: the
 * protocol is one datagram on a local socket.
 */
#include "cli/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "banned.h"

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (!path || !*path)
		return 0;
	size_t n = strlen(path);
	/* A path, or @ for the abstract namespace (its first byte 0). */
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n > sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
			   (struct sockaddr *)&sa, len);
	int ret = w < 0 ? -errno : 0;
	close(fd);
	return ret;
}
