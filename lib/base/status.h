// Status and Result<T>: errors as values.
//
// A Status is either OK or carries one code from a closed set, a message for
// people, and a retryable flag. Retryable means "the same request may succeed
// later without anyone changing anything" (a dropped connection, a busy
// resource); it is never set for corruption or bad input.
//
// Exceptions from std, Boost and OpenSSL are caught at the adapter that calls
// them and turned into a Status; errno and io_uring's -res are converted only
// by ErrnoToStatus(). Status and Result are cheap to move and not thread-safe
// to mutate concurrently (like any value type).
#ifndef CAIRN_LIB_BASE_STATUS_H_
#define CAIRN_LIB_BASE_STATUS_H_

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace cairn {

enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound,
  kCorruption,
  kIOError,
  kNoSpace,
  kInvalidArgument,
  kPermissionDenied,
  kUnavailable,
  kCancelled,
};

// Stable lower-case name of a code ("not_found"), used in JSON and logs.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(StatusCode::kNotFound, msg); }
  static Status Corruption(std::string_view msg) { return Status(StatusCode::kCorruption, msg); }
  static Status IOError(std::string_view msg) { return Status(StatusCode::kIOError, msg); }
  static Status NoSpace(std::string_view msg) { return Status(StatusCode::kNoSpace, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(StatusCode::kInvalidArgument, msg);
  }
  static Status PermissionDenied(std::string_view msg) {
    return Status(StatusCode::kPermissionDenied, msg);
  }
  // Unavailable is retryable by default: the resource may come back.
  static Status Unavailable(std::string_view msg) {
    return Status(StatusCode::kUnavailable, msg, /*retryable=*/true);
  }
  static Status Cancelled(std::string_view msg) { return Status(StatusCode::kCancelled, msg); }

  Status(StatusCode code, std::string_view msg, bool retryable = false)
      : code_(code), retryable_(retryable), message_(msg) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  bool retryable() const { return retryable_; }
  const std::string& message() const { return message_; }

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsNoSpace() const { return code_ == StatusCode::kNoSpace; }
  bool IsCancelled() const { return code_ == StatusCode::kCancelled; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsPermissionDenied() const { return code_ == StatusCode::kPermissionDenied; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }

  // Returns a copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;
  // Returns a copy with the retryable flag set as given.
  Status WithRetryable(bool retryable) const;

  // "corruption: pack 12 offset 4096: bad checksum" or "ok".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  bool retryable_ = false;
  std::string message_;
};

// Result<T> holds a T or a non-OK Status. Accessing value() of an error is a
// programming error (asserted); check ok() first or use the macros below.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Status>, "Result<Status> is meaningless");

 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK status without a value");
    if (status_.ok()) status_ = Status(StatusCode::kInvalidArgument, "Result from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER_(a, b) a##b
#define CAIRN_CONCAT_(a, b) CAIRN_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define CAIRN_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::cairn::Status cairn_status_ = (expr);        \
    if (!cairn_status_.ok()) return cairn_status_; \
  } while (0)

// CAIRN_ASSIGN_OR_RETURN(auto pack, PackReader::Open(env, path));
// Evaluates a Result<T>; on error returns its Status, else binds the value.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_CONCAT_(cairn_result_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

// The same for coroutines (which must co_return).
#define CAIRN_CO_RETURN_IF_ERROR(expr)                \
  do {                                                \
    ::cairn::Status cairn_status_ = (expr);           \
    if (!cairn_status_.ok()) co_return cairn_status_; \
  } while (0)

#endif  // CAIRN_LIB_BASE_STATUS_H_
