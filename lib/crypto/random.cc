#include "lib/crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "lib/crypto/openssl_util.h"

namespace cairn::crypto {

Status SecureRandom(MutableByteView out) {
  size_t done = 0;
  while (done < out.size()) {
    // RAND_priv_bytes takes an int length.
    const size_t n = std::min<size_t>(out.size() - done, INT_MAX);
    if (RAND_priv_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      SecureZero(out.data(), out.size());
      return internal::OpenSslError("RAND_priv_bytes", StatusCode::kUnavailable)
          .WithRetryable(true);
    }
    done += n;
  }
  return Status::OK();
}

}  // namespace cairn::crypto
