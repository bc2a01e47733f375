#include "bench/bench_util.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "lib/base/splitmix.h"

namespace cairn::bench {
namespace {

bool IsCompressedName(const std::filesystem::path& p) {
  static constexpr std::array<std::string_view, 9> kExt = {".gz",   ".xz",  ".bz2", ".zst", ".lz4",
                                                           ".lzma", ".zip", ".png", ".jpg"};
  const std::string ext = p.extension().string();
  return std::find(kExt.begin(), kExt.end(), ext) != kExt.end();
}

std::vector<std::filesystem::path> SortedFiles(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && !it->is_symlink(type_ec) && !IsCompressedName(it->path())) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Bytes RandomBytes(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t state = seed;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t v = SplitMix64(&state);
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i < n) {
    const uint64_t v = SplitMix64(&state);
    std::memcpy(out.data() + i, &v, n - i);
  }
  return out;
}

Bytes SyntheticText(size_t n, uint64_t seed) {
  static constexpr std::array<std::string_view, 48> kWords = {
      "the",     "of",      "and",     "to",       "in",      "a",       "is",     "that",
      "for",     "it",      "as",      "with",     "be",      "on",      "not",    "this",
      "by",      "are",     "or",      "from",     "at",      "which",   "an",     "file",
      "data",    "backup",  "return",  "value",    "struct",  "const",   "size",   "buffer",
      "vault",   "chunk",   "restore", "pointer",  "kernel",  "device",  "error",  "status",
      "library", "version", "license", "function", "default", "section", "option", "system"};
  Bytes out;
  out.reserve(n);
  uint64_t state = seed;
  size_t line = 0;
  while (out.size() < n) {
    const uint64_t r = SplitMix64(&state);
    // Skewed: low indices (common words) far more often than high ones.
    const size_t idx =
        static_cast<size_t>((r & 0xffff) * (r & 0xffff) % (uint64_t{1} << 32)) * kWords.size() >>
        32;
    std::string_view w = kWords[idx];
    out.insert(out.end(), w.begin(), w.end());
    line += w.size() + 1;
    if (line > 72) {
      out.push_back(((r >> 20) & 3) == 0 ? '.' : ',');
      out.push_back('\n');
      line = 0;
    } else {
      out.push_back(' ');
    }
  }
  out.resize(n);
  return out;
}

Bytes TextCorpus(size_t n, const std::vector<std::string>& roots,
                 std::vector<size_t>* file_lengths) {
  if (file_lengths != nullptr) file_lengths->clear();
  Bytes out;
  out.reserve(n);
  for (const std::string& root : roots) {
    for (const auto& path : SortedFiles(root)) {
      if (out.size() >= n) break;
      std::ifstream in(path, std::ios::binary);
      if (!in) continue;
      const size_t old = out.size();
      out.resize(n);
      in.read(reinterpret_cast<char*>(out.data() + old), static_cast<std::streamsize>(n - old));
      out.resize(old + static_cast<size_t>(in.gcount()));
      if (file_lengths != nullptr && out.size() > old) file_lengths->push_back(out.size() - old);
    }
  }
  if (out.size() < n) {
    Bytes fill = SyntheticText(n - out.size());
    out.insert(out.end(), fill.begin(), fill.end());
    if (file_lengths != nullptr) file_lengths->push_back(fill.size());
  }
  return out;
}

ByteView CachedTextCorpus(size_t n) {
  static Bytes corpus;
  if (corpus.size() < n) corpus = TextCorpus(n);
  return ByteView(corpus).first(n);
}

}  // namespace cairn::bench
