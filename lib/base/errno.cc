#include "lib/base/errno.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace cairn {

Status ErrnoToStatus(int err, std::string_view context) {
  if (err < 0) err = -err;
  if (err == 0) return Status::OK();
  std::string msg(context);
  msg += ": ";
  char buf[128];
  // GNU strerror_r may return a static string instead of filling buf.
  const char* text = strerror_r(err, buf, sizeof(buf));
  msg += text;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return Status::NoSpace(msg);
    case ENOENT:
    case ENOTDIR:
      return Status::NotFound(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return Status::PermissionDenied(msg);
    case EINVAL:
    case EISDIR:
    case ENAMETOOLONG:
    case EEXIST:
    case ENOTEMPTY:
    case ELOOP:
    case EBADF:
      return Status::InvalidArgument(msg);
    case EAGAIN:
    case EINTR:
    case EBUSY:
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EPIPE:
      return Status::Unavailable(msg);
    case EBADMSG:
    case EUCLEAN:
      return Status::Corruption(msg);
    default:
      return Status::IOError(msg);
  }
}

}  // namespace cairn
