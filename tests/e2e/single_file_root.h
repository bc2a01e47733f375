// For the test tools that commit snapshots through the protocol by hand
// (hold_commit, soak_agents): a snapshot root holding one regular file.
#ifndef CAIRN_TESTS_E2E_SINGLE_FILE_ROOT_H_
#define CAIRN_TESTS_E2E_SINGLE_FILE_ROOT_H_

#include <string>
#include <utility>
#include <vector>

#include "lib/repo/tree.h"

namespace cairn::testing {

// A root directory with one file NAME (mode 0644, a fixed mtime) of SIZE
// bytes made of CONTENT.
inline repo::DirPart SingleFileRoot(std::string name, uint64_t size,
                                    std::vector<repo::ContentRef> content) {
  repo::TreeEntry e;
  e.name = std::move(name);
  e.type = repo::EntryType::kFile;
  e.mode = 0644;
  e.mtime_ns = 1'700'000'000'000'000'000;
  e.size = size;
  e.content = std::move(content);
  repo::DirPart root;
  root.entries.push_back(std::move(e));
  return root;
}

}  // namespace cairn::testing

#endif  // CAIRN_TESTS_E2E_SINGLE_FILE_ROOT_H_
