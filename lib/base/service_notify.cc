#include "lib/base/service_notify.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace cairn {

namespace {

void Notify(const char* what, std::string_view status) {
  std::string message = std::string(what) + "\nSTATUS=";
  for (char c : status) message.push_back(c == '\n' ? ' ' : c);
  (void)sd_notify(0, message.c_str());
}

}  // namespace

void NotifyReady(std::string_view status) { Notify("READY=1", status); }

void NotifyStopping(std::string_view status) { Notify("STOPPING=1", status); }

}  // namespace cairn
