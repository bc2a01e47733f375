// Fuzzes what the vault's HTTPS server does with a request's bytes before
// any handler runs (lib/http/message.h): Beast's parser under the server's
// limits, the request-target checks, header normalisation. Every input ends
// as a Request that keeps the promises handlers rely on, or as a 4xx.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lib/http/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  cairn::http::ParseLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 4096;
  auto result = cairn::http::ParseRequest(wire, limits);
  if (auto* r = std::get_if<cairn::http::Request>(&result)) {
    if (r->body.size() > limits.max_body_bytes) __builtin_trap();
    if (r->target.path.empty() || r->target.path.front() != '/') __builtin_trap();
    for (const auto& s : r->target.segments) {
      if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos) {
        __builtin_trap();
      }
      if (s.find('\0') != std::string::npos || s.find('\\') != std::string::npos) __builtin_trap();
    }
    for (const auto& [name, value] : r->headers) {
      for (char c : name) {
        if (c >= 'A' && c <= 'Z') __builtin_trap();
      }
    }
  } else {
    const auto& response = std::get<cairn::http::Response>(result);
    if (response.status < 400 || response.status > 499) __builtin_trap();
  }
  // The target parser alone, on the raw bytes.
  auto target = cairn::http::ParseTarget(wire);
  if (target.ok() && target->path.size() > cairn::http::kMaxTargetLength) __builtin_trap();
  return 0;
}
