#include "lib/crypto/openssl_util.h"

#include <openssl/err.h>

#include <string>

namespace cairn::crypto::internal {

Status OpenSslError(std::string_view context, StatusCode code) {
  std::string msg(context);
  msg += ": ";
  bool first = true;
  // Report the oldest error first: it is the root cause; later ones are the
  // layers that propagated it. Cap the count so a flooded queue cannot make
  // an unbounded message.
  int reported = 0;
  for (unsigned long err = ERR_get_error(); err != 0; err = ERR_get_error()) {
    if (reported++ >= 4) continue;  // keep draining
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!first) msg += "; ";
    msg += buf;
    first = false;
  }
  if (first) msg += "openssl call failed without an error code";
  if (code == StatusCode::kOk) code = StatusCode::kIOError;
  return Status(code, msg);
}

void ClearOpenSslErrors() { ERR_clear_error(); }

}  // namespace cairn::crypto::internal
