/*
 * The few Linux calls the daemon makes that Swift's Glibc module does not
 * export: recvmmsg/sendmmsg for the data path, epoll for the parked-socket watcher, inotify for reload_on_change,
 * and glibc's allocator controls.
 */
#ifndef DTLS_PROXYD_CPLATFORM_H
#define DTLS_PROXYD_CPLATFORM_H

#include "CPlatform_batch.h"
#include "CPlatform_epoll.h"
#include "CPlatform_inotify.h"
#include "CPlatform_malloc.h"

#endif
