#include "lib/io/env.h"

#include <string>

namespace cairn::io {

Status RandomAccessFile::ReadBatch(std::span<ReadRequest> requests) const {
  Status first_error;
  for (ReadRequest& r : requests) {
    Result<size_t> n = Read(r.offset, r.buffer);
    if (n.ok()) {
      r.bytes_read = *n;
      r.status = Status::OK();
    } else {
      r.bytes_read = 0;
      r.status = n.status();
      if (first_error.ok()) first_error = r.status;
    }
  }
  return first_error;
}

Status Env::CreateDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("CreateDirs: empty path");
  // Create each prefix ending before a '/', then the whole path. Existing
  // directories are fine (CreateDir is OK for them).
  std::string prefix;
  prefix.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/' && !prefix.empty() && prefix.back() != '/') {
      CAIRN_RETURN_IF_ERROR(CreateDir(prefix));
    }
    prefix += path[i];
  }
  if (prefix != "/") {
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    CAIRN_RETURN_IF_ERROR(CreateDir(prefix));
  }
  return Status::OK();
}

Result<Bytes> ReadFileToBytes(Env* env, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  // Read one byte past the size seen so a file growing under us is noticed
  // rather than silently cut.
  Bytes data(size + 1);
  CAIRN_ASSIGN_OR_RETURN(size_t n, file->Read(0, data));
  if (n > size) return Status::Unavailable("read " + path + ": file grew while being read");
  data.resize(n);
  return data;
}

Status WriteFileAtomically(Env* env, const std::string& path, ByteView data) {
  uint8_t nonce[8];
  env->FillRandom(nonce);
  // A unique temporary name in the same directory, so the rename is atomic
  // and concurrent writers of one path never share a temporary file.
  const std::string tmp = path + ".tmp-" + ToHex(nonce);
  Status s = [&]() -> Status {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env->NewWritableFile(tmp));
    Status st = file->Append(data);
    if (st.ok()) st = file->Sync();
    Status closed = file->Close();
    if (st.ok()) st = closed;
    return st;
  }();
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) {
    (void)env->RemoveFile(tmp);  // best effort; the temporary name is ours
    return s;
  }
  return env->SyncDir(ParentDir(path));
}

std::string ParentDir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  while (slash > 0 && path[slash - 1] == '/') --slash;
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string NormalizePath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace cairn::io
