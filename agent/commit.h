// The last step of every backup: commit the snapshot, then teach the local
// state (the file cache, or an image's extent state) what the vault now
// holds. Shared by file and image backups so the rules stay one:
//   - committed: promote the pending entries; if that fails the snapshot is
//     still good, and the next run only does more work (a warning);
//   - refused as NotFound (a chunk the local state vouched for is gone from
//     the vault): clear the local state so the next run sends everything,
//     and tell the user to run again;
//   - refused otherwise: the pending entries stay unpromoted.
#ifndef CAIRN_AGENT_COMMIT_H_
#define CAIRN_AGENT_COMMIT_H_

#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace cairn::agent {

// `State` has Status PromotePending() and Status Clear(); may be null.
// `what` names it in messages ("file cache", "extent state").
template <typename State>
Result<std::string> FinishCommit(Result<std::string> snapshot, State* state, std::string_view what,
                                 std::vector<std::string>* warnings) {
  if (!snapshot.ok()) {
    if (snapshot.status().IsNotFound() && state != nullptr) {
      Status cleared = state->Clear();
      return Status::NotFound(
          "vault refused the snapshot: " + snapshot.status().message() +
          (cleared.ok()
               ? "; the " + std::string(what) + " was cleared, run the backup again"
               : "; clearing the " + std::string(what) + " failed too: " + cleared.message()));
    }
    return snapshot.status().WithContext("commit");
  }
  if (state != nullptr) {
    Status promoted = state->PromotePending();
    if (!promoted.ok())
      warnings->push_back(std::string(what) + " not updated: " + promoted.message());
  }
  return snapshot;
}

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_COMMIT_H_
