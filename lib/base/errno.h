// The one place where an errno value (or io_uring's negative result) becomes
// a Status. Every system call site passes its errno here.
#ifndef CAIRN_LIB_BASE_ERRNO_H_
#define CAIRN_LIB_BASE_ERRNO_H_

#include <string_view>

#include "lib/base/status.h"

namespace cairn {

// Maps `err` (a positive errno, or a negative one as io_uring returns it) to
// a Status whose message is "context: strerror(err)". ENOSPC and EDQUOT become
// NoSpace, ENOENT NotFound, EACCES/EPERM/EROFS PermissionDenied, EINVAL and
// friends InvalidArgument, EAGAIN/EINTR/EBUSY/ETIMEDOUT retryable Unavailable,
// EBADMSG/EUCLEAN Corruption, anything else IOError. err == 0 returns OK.
Status ErrnoToStatus(int err, std::string_view context);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_ERRNO_H_
