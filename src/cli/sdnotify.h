/*
 * sdnotify.h - readiness and stopping told to systemd (Type=notify,
 * deploy/systemd/tpwallet.service): the sd_notify(3) datagram protocol,
 * without libsystemd.
 *
 * When the service manager set NOTIFY_SOCKET (a path, or "@name" for an
 * abstract socket), sdnotify_send writes one datagram of "KEY=value"
 * lines to it; without that variable it does nothing.  `serve` sends
 * READY=1 once it listens (what /readyz then answers 200) and
 * STOPPING=1 when a stop signal arrives.
 */
#ifndef TPW_CLI_SDNOTIFY_H
#define TPW_CLI_SDNOTIFY_H

/* Sends state (e.g. "READY=1").  0 sent or no NOTIFY_SOCKET; -EINVAL a
 * NOTIFY_SOCKET that is no usable address; -errno the socket's failure.
 * Never blocks (a datagram to a local socket). */
int sdnotify_send(const char *state);

#endif
