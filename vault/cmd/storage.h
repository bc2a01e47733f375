// cairn-vault's storage commands: gc and scrub (doc/design.md section 22).
// Each runs in this process when no serve holds the data directory, and
// otherwise hands the run to the serving vault (vault/maintenance.h) and
// waits for its result. main.cc wires them in.
#ifndef CAIRN_VAULT_CMD_STORAGE_H_
#define CAIRN_VAULT_CMD_STORAGE_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "lib/base/cli.h"

namespace cairn::vault::cmd {

struct StorageCommands {
  CLI::App *gc = nullptr, *scrub = nullptr;
  bool dry_run = false, no_repair = false;
  std::string department;
  uint64_t rate = 0;
  uint64_t wait_seconds = 0;
};

void AddStorageCommands(CLI::App& app, StorageCommands* c, std::string* data_dir,
                        cli::CommonFlags* flags);

// Runs the one that was given; nullopt when none was.
std::optional<int> RunStorageCommand(StorageCommands& c, const std::string& data_dir, bool json);

}  // namespace cairn::vault::cmd

#endif  // CAIRN_VAULT_CMD_STORAGE_H_
