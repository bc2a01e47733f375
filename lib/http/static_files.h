// The web console's files (doc/design.md section 16): a built directory
// (web-ui/dist) read once, when serve starts, into memory and answered from
// there. Nothing on disk is opened per request, so no request path can
// reach outside the directory, whatever it holds.
//
//   - GET (and HEAD) only; a path names a file by its segments (the target
//     parser has refused "..", "." and empty segments already).
//   - A path that names no file and has no extension is the single-page
//     application's route: index.html answers it. A missing asset is 404.
//   - index.html is "no-cache"; files under assets/ (content-hashed by the
//     build) are cached for a year, immutable. Every answer carries a strict
//     Content-Security-Policy (same origin only, no inline script), nosniff,
//     no referrer and no framing.
#ifndef CAIRN_LIB_HTTP_STATIC_FILES_H_
#define CAIRN_LIB_HTTP_STATIC_FILES_H_

#include <map>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "lib/http/message.h"

namespace cairn::http {

class StaticFiles {
 public:
  // Reads every regular file under `root` (links are not followed). Fails
  // when root has no index.html, or holds more than 4096 files or 64 MiB.
  static Result<std::unique_ptr<StaticFiles>> Load(const std::string& root);

  // A page saying the console is not built, and how to build it: what `/`
  // answers when there is no web root.
  static std::unique_ptr<StaticFiles> NotBuilt(const std::string& why);

  Response Serve(const Request& request) const;

  size_t files() const { return files_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  struct File {
    std::string content_type;
    std::string body;
    std::string etag;
  };
  std::map<std::string, File> files_;  // by path from the root, "/index.html"
  uint64_t bytes_ = 0;
};

// The MIME type of a file name by its extension; application/octet-stream
// when unknown.
std::string ContentTypeOf(const std::string& name);

}  // namespace cairn::http

#endif  // CAIRN_LIB_HTTP_STATIC_FILES_H_
