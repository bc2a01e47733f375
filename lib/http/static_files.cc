#include "lib/http/static_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lib/crypto/hash.h"

namespace cairn::http {
namespace {

constexpr size_t kMaxFiles = 4096;
constexpr uint64_t kMaxBytes = 64ull << 20;

void SecurityHeaders(Response* r) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; style-src 'self' "
                          "'unsafe-inline'; script-src 'self'; connect-src 'self'; "
                          "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                          "form-action 'self'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("X-Frame-Options", "DENY");
}

std::string Extension(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return name.substr(dot + 1);
}

}  // namespace

std::string ContentTypeOf(const std::string& name) {
  static const std::map<std::string, std::string> kTypes = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"ico", "image/x-icon"},
      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},
      {"map", "application/json"}};
  auto it = kTypes.find(Extension(name));
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Result<std::unique_ptr<StaticFiles>> StaticFiles::Load(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(root) / "index.html", ec)) {
    return Status::NotFound(
        "web console: " + root +
        " holds no index.html (build it: cd web-ui && npm ci && npm run build)");
  }
  auto out = std::unique_ptr<StaticFiles>(new StaticFiles);
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (out->files_.size() >= kMaxFiles) {
      return Status::InvalidArgument("web console: " + root + " holds more than 4096 files");
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in.good() && !in.eof()) return Status::IOError("web console: read " + it->path().string());
    File f;
    f.body = body.str();
    out->bytes_ += f.body.size();
    if (out->bytes_ > kMaxBytes) {
      return Status::InvalidArgument("web console: " + root + " holds more than 64 MiB");
    }
    const std::string rel = "/" + fs::relative(it->path(), root, ec).generic_string();
    f.content_type = ContentTypeOf(rel);
    f.etag = "\"" + ToHex(crypto::Sha256(AsBytes(f.body))).substr(0, 32) + "\"";
    out->files_.emplace(rel, std::move(f));
  }
  if (ec) return Status::IOError("web console: read " + root + ": " + ec.message());
  return out;
}

std::unique_ptr<StaticFiles> StaticFiles::NotBuilt(const std::string& why) {
  auto out = std::unique_ptr<StaticFiles>(new StaticFiles);
  File f;
  f.content_type = "text/html; charset=utf-8";
  std::string escaped;
  for (char ch : why) {
    if (ch == '<') {
      escaped += "&lt;";
    } else if (ch == '&') {
      escaped += "&amp;";
    } else {
      escaped += ch;
    }
  }
  f.body =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn</title></head><body>"
      "<h1>Cairn vault</h1><p>The web console is not available: " +
      escaped + "</p><p>The REST API is at <code>/api/v1</code> (doc/api.md).</p></body></html>\n";
  f.etag = "\"not-built\"";
  out->files_.emplace("/index.html", std::move(f));
  return out;
}

Response StaticFiles::Serve(const Request& request) const {
  Response r;
  SecurityHeaders(&r);
  if (request.method != "GET" && request.method != "HEAD") {
    r = JsonError(405, "method_not_allowed", "use GET");
    SecurityHeaders(&r);
    return r;
  }
  std::string path = request.target.path;
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!Extension(path).empty()) {
      r = JsonError(404, "not_found", "no such file");
      SecurityHeaders(&r);
      return r;
    }
    it = files_.find("/index.html");  // a route of the application
  }
  const File& f = it->second;
  r.content_type = f.content_type;
  r.headers.emplace_back("ETag", f.etag);
  r.headers.emplace_back("Cache-Control", path.starts_with("/assets/")
                                              ? "public, max-age=31536000, immutable"
                                              : "no-cache");
  if (request.Header("if-none-match") == f.etag) {
    r.status = 304;
    return r;
  }
  if (request.method == "GET") r.body = f.body;
  return r;
}

}  // namespace cairn::http
