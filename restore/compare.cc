#include "restore/compare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lib/base/errno.h"
#include "lib/crypto/chunk_id.h"
#include "lib/io/file_io.h"

namespace cairn::restore {
namespace {

class Comparer {
 public:
  Comparer(crypto::ChunkIdHasher hasher, CompareResult* out)
      : hasher_(std::move(hasher)), out_(out) {}

  // One file's content against `node`, through the open `fd`.
  void File(const TreeNode& node, int fd) {
    const repo::TreeEntry& e = node.entry;
    ++out_->files;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Mismatch(node, "stat: " + std::string(std::strerror(errno)));
    if (static_cast<uint64_t>(st.st_size) != e.size) {
      return Mismatch(node, "on disk it holds " + std::to_string(st.st_size) +
                                " bytes, the snapshot " + std::to_string(e.size));
    }
    for (size_t i = 0; i < node.data.size(); ++i) {
      const TreeNode::Data& d = node.data[i];
      const crypto::ChunkId& want = DataIdOf(node, i);
      Result<bool> whole = ReadDataOnDisk(fd, node, i, node.path, &buf_);
      if (!whole.ok()) return Mismatch(node, whole.status().message());
      if (!*whole) return Mismatch(node, "shorter on disk than the snapshot");
      ++out_->chunks;
      out_->bytes += buf_.size();
      if (hasher_.Compute(buf_) != want) {
        return Mismatch(node, "the bytes at offset " + std::to_string(d.offset) +
                                  " do not hash to chunk " + ToHex(want));
      }
    }
    for (const repo::Hole& h : e.holes) {
      for (uint64_t at = h.offset; at < h.offset + h.length;) {
        const uint64_t n = std::min<uint64_t>(h.offset + h.length - at, 1 << 20);
        buf_.resize(n);
        auto got = io::PreadFull(fd, at, MutableByteView(buf_.data(), n), node.path);
        if (!got.ok()) return Mismatch(node, got.status().message());
        if (*got != n || std::any_of(buf_.begin(), buf_.end(), [](uint8_t b) { return b != 0; })) {
          return Mismatch(
              node, "the hole at offset " + std::to_string(h.offset) + " does not read as zeros");
        }
        out_->bytes += n;
        at += n;
      }
    }
  }

  void Mismatch(const TreeNode& node, const std::string& why) {
    out_->mismatches.push_back({"restored file",
                                "read back from the disk: " + why,
                                {node.path.empty() ? "/" : node.path}});
  }

 private:
  crypto::ChunkIdHasher hasher_;
  CompareResult* out_;
  Bytes buf_;
};

bool HasContent(const TreeNode& node) {
  return node.complete &&
         (node.entry.type == repo::EntryType::kFile || node.entry.type == repo::EntryType::kImage);
}

}  // namespace

Result<bool> ReadDataOnDisk(int fd, const TreeNode& node, size_t i, const std::string& path,
                            Bytes* out) {
  const TreeNode::Data& d = node.data[i];
  out->clear();
  for (const Segment& seg : SegmentsOf(node.entry, d.offset, d.length)) {
    const size_t at = out->size();
    out->resize(at + seg.length);
    CAIRN_ASSIGN_OR_RETURN(
        size_t got,
        io::PreadFull(fd, seg.file_offset, MutableByteView(&(*out)[at], seg.length), path));
    if (got != seg.length) return false;
  }
  return true;
}

Result<CompareResult> CompareWithTree(const SnapshotTree& tree, const crypto::SecretKey& id_key,
                                      const CompareTarget& target) {
  CAIRN_ASSIGN_OR_RETURN(crypto::ChunkIdHasher hasher, crypto::ChunkIdHasher::Create(id_key));
  CompareResult out;
  Comparer cmp(std::move(hasher), &out);
  if (!target.image_file.empty()) {
    for (const TreeNode& node : tree.nodes) {
      if (node.entry.type != repo::EntryType::kImage || !HasContent(node) ||
          target.skip.count(node.path)) {
        continue;
      }
      const int fd = ::open(target.image_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) {
        cmp.Mismatch(node, "open " + target.image_file + ": " + std::strerror(errno));
      } else {
        cmp.File(node, fd);
        ::close(fd);
      }
      break;  // one image is restored to one file
    }
    return out;
  }
  const int root = ::open(target.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return ErrnoToStatus(errno, "open " + target.root);
  for (const TreeNode& node : tree.nodes) {
    if (!HasContent(node) || target.skip.count(node.path)) continue;
    const int fd = io::OpenNoSymlinks(root, node.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      cmp.Mismatch(node, std::string("open: ") + std::strerror(errno));
      continue;
    }
    cmp.File(node, fd);
    ::close(fd);
  }
  ::close(root);
  return out;
}

}  // namespace cairn::restore
