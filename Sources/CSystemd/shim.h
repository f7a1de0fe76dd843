/* sd-daemon: sd_notify and socket activation (sd_listen_fds_with_names). */
#ifndef DTLS_PROXYD_CSYSTEMD_SHIM_H
#define DTLS_PROXYD_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
