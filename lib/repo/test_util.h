// Helpers shared by lib/repo tests: a scratch directory and test keys.
#ifndef CAIRN_LIB_REPO_TEST_UTIL_H_
#define CAIRN_LIB_REPO_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "lib/base/bytes.h"
#include "lib/crypto/keys.h"

namespace cairn::repo::testing {

// A fresh directory under the system temp dir, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline crypto::DepartmentKeys TestKeys() {
  auto keys = crypto::DepartmentKeys::Generate();
  EXPECT_TRUE(keys.ok());
  return *keys;
}

inline Bytes RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

inline Bytes TextBytes(size_t n) {
  static const std::string kText =
      "The vault appends records to per-department pack files, written with io_uring. ";
  Bytes b;
  while (b.size() < n) b.insert(b.end(), kText.begin(), kText.end());
  b.resize(n);
  return b;
}

}  // namespace cairn::repo::testing

#endif  // CAIRN_LIB_REPO_TEST_UTIL_H_
