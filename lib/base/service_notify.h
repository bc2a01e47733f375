// Tells systemd how a daemon is doing (Type=notify units, sd_notify(3)):
// ready once it serves, stopping when it begins to stop, a status line for
// `systemctl status`. Does nothing when not started by systemd
// (NOTIFY_SOCKET unset), so the daemons run the same by hand and in tests.
#ifndef CAIRN_LIB_BASE_SERVICE_NOTIFY_H_
#define CAIRN_LIB_BASE_SERVICE_NOTIFY_H_

#include <string_view>

namespace cairn {

// READY=1 with `status` as STATUS=.
void NotifyReady(std::string_view status);
// STOPPING=1 with `status`.
void NotifyStopping(std::string_view status);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_SERVICE_NOTIFY_H_
