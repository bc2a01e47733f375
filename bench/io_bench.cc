// Reading a real file tree: plain pread versus IoRing batches.
//
// The tree is CAIRN_BENCH_TREE when set, else the first 80k regular files of
// /usr/share and /usr/include (sorted path order, symlinks skipped). Every
// iteration opens each file, fstat()s it for its size, reads it whole in
// pieces of at most 1 MiB, and closes it, as the agent's scanner does.
//
// This measures the WARM-CACHE path: nothing is dropped from the page cache
// (that needs root), and the first iteration warms it. It therefore shows the
// per-file and per-syscall cost of each read path, not disk throughput.
//
//   ./cairn_io_bench                       # all variants
//   CAIRN_BENCH_TREE=/srv/data ./cairn_io_bench --benchmark_filter=Uring
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/io/file_io.h"
#include "lib/io/uring.h"

namespace cairn {
namespace {

constexpr size_t kMaxFiles = 80'000;
constexpr size_t kPieceBytes = 1 << 20;  // largest single read request
// One ReadBatch holds at most this many bytes of buffers (so a tree of large
// files does not allocate without bound) ...
constexpr size_t kMaxBatchBytes = 64 << 20;

struct Tree {
  std::vector<std::string> paths;
  uint64_t total_bytes = 0;  // bytes read by the warm-up pass
};

void AddFiles(const std::string& root, std::vector<std::string>* out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && !it->is_symlink(type_ec)) {
      out->push_back(it->path().string());
    }
  }
}

const Tree& BenchTree() {
  static const Tree* tree = [] {
    auto* t = new Tree();
    const char* env_root = std::getenv("CAIRN_BENCH_TREE");
    std::vector<std::string> roots;
    if (env_root != nullptr && env_root[0] != '\0') {
      roots = {env_root};
    } else {
      roots = {"/usr/share", "/usr/include"};
    }
    for (const auto& root : roots) {
      std::vector<std::string> files;
      AddFiles(root, &files);
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        if (t->paths.size() >= kMaxFiles) break;
        t->paths.push_back(std::move(f));
      }
    }
    // Size the tree and warm the page cache once, untimed, so that every
    // variant (whichever runs first) sees the same warm cache.
    Bytes buffer(kPieceBytes);
    for (const auto& p : t->paths) {
      auto opened = io::OpenForRead(p);
      if (!opened.ok()) continue;
      for (uint64_t off = 0;; off += kPieceBytes) {
        auto n = io::PreadFull(opened->fd.get(), off, buffer, p);
        if (!n.ok()) break;
        t->total_bytes += *n;
        if (*n < buffer.size()) break;
      }
    }
    return t;
  }();
  return *tree;
}

void ReportTree(benchmark::State& state, const Tree& tree, uint64_t bytes_read) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes_read));
  state.SetItemsProcessed(static_cast<int64_t>(tree.paths.size() * state.iterations()));
  state.counters["files"] = static_cast<double>(tree.paths.size());
  state.counters["tree_MiB"] = static_cast<double>(tree.total_bytes) / (1 << 20);
}

// Baseline: one file at a time, pread in 1 MiB pieces.
void BM_TreePread(benchmark::State& state) {
  const Tree& tree = BenchTree();
  Bytes buffer(kPieceBytes);
  uint64_t bytes_read = 0;
  for (auto _ : state) {
    for (const std::string& path : tree.paths) {
      auto opened = io::OpenForRead(path);
      if (!opened.ok()) continue;  // vanished or unreadable: skip, as a scanner would
      struct stat st;
      if (::fstat(opened->fd.get(), &st) != 0) continue;
      for (uint64_t off = 0; off < static_cast<uint64_t>(st.st_size); off += kPieceBytes) {
        auto n = io::PreadFull(opened->fd.get(), off, buffer, path);
        if (!n.ok() || *n == 0) break;
        bytes_read += *n;
      }
    }
  }
  ReportTree(state, tree, bytes_read);
}

// IoRing at queue depth state.range(0): files are opened and fstat'ed, then
// their pieces go to the ring in batches of about four queue depths (bounded
// by kMaxBatchBytes), all files of a batch at once through ReadBatch(fds, ...).
void BM_TreeIoRing(benchmark::State& state) {
  const Tree& tree = BenchTree();
  io::IoRingOptions options;
  options.queue_depth = static_cast<uint32_t>(state.range(0));
  auto ring = io::IoRing::Create(options);
  if (!ring.ok()) {
    state.SkipWithError(ring.status().ToString().c_str());
    return;
  }
  state.SetLabel((*ring)->uses_io_uring() ? "io_uring" : "fallback(pread)");
  const size_t batch_requests = std::max<size_t>(4 * options.queue_depth, 64);

  Bytes arena(kMaxBatchBytes);
  std::vector<io::UniqueFd> open_files;
  std::vector<int> fds;
  std::vector<io::ReadRequest> requests;
  uint64_t bytes_read = 0;

  auto flush = [&] {
    if (requests.empty()) return;
    (void)(*ring)->ReadBatch(fds, requests);  // per-request status checked below
    for (const io::ReadRequest& r : requests) {
      if (r.status.ok()) bytes_read += r.bytes_read;
    }
    requests.clear();
    fds.clear();
    open_files.clear();
  };

  for (auto _ : state) {
    size_t arena_used = 0;
    for (const std::string& path : tree.paths) {
      auto opened = io::OpenForRead(path);
      if (!opened.ok()) continue;
      struct stat st;
      if (::fstat(opened->fd.get(), &st) != 0) continue;
      // Kept open across any flush below; closed after the batch holding
      // its last piece.
      io::UniqueFd current = std::move(opened->fd);
      const int fd = current.get();
      for (uint64_t off = 0; off < static_cast<uint64_t>(st.st_size); off += kPieceBytes) {
        const size_t len = std::min<uint64_t>(kPieceBytes, st.st_size - off);
        if (arena_used + len > arena.size() || requests.size() >= batch_requests) {
          flush();
          arena_used = 0;
        }
        requests.push_back(
            {.offset = off, .buffer = MutableByteView(arena).subspan(arena_used, len)});
        fds.push_back(fd);
        arena_used += len;
      }
      open_files.push_back(std::move(current));
    }
    flush();
  }
  ReportTree(state, tree, bytes_read);
}

BENCHMARK(BM_TreePread)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_TreeIoRing)
    ->Arg(8)
    ->Arg(32)
    ->Arg(128)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
