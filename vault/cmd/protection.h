// cairn-vault's protection commands: policy, source, snapshot forget,
// status (doc/design.md section 20). main.cc wires them in.
#ifndef CAIRN_VAULT_CMD_PROTECTION_H_
#define CAIRN_VAULT_CMD_PROTECTION_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/cli.h"
#include "vault/service/vault_service.h"

namespace cairn::vault::cmd {

struct ProtectionCommands {
  CLI::App *policy_create = nullptr, *policy_edit = nullptr, *policy_list = nullptr,
           *policy_show = nullptr, *policy_templates = nullptr;
  CLI::App *source_add = nullptr, *source_list = nullptr, *source_remove = nullptr;
  CLI::App *forget = nullptr, *status = nullptr;

  // Arguments.
  std::string name, template_name, schedule, rpo, rto, drill_every, lock, bandwidth;
  std::string drill_check, drill_check_timeout;
  int zstd_level = 0;
  std::optional<uint32_t> keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
      keep_yearly;
  bool offsite = false, no_offsite = false;
  std::string department, host, policy, image;
  std::string pit = "auto", pre_command, post_command, hook_failure;
  uint32_t hook_timeout = 0;
  std::vector<std::string> paths, excludes, ids;
  uint64_t source_id = 0;
  bool apply_retention = false, dry_run = false;
};

// Adds the commands to `app`; `forget` goes under the existing `snapshot`.
void AddProtectionCommands(CLI::App& app, CLI::App* snapshot, ProtectionCommands* c,
                           std::string* data_dir, cli::CommonFlags* flags);

// Runs the one that was given; nullopt when none was.
std::optional<int> RunProtectionCommand(ProtectionCommands& c, VaultService& service,
                                        const Actor& me, bool json,
                                        const SchedulerOptions& scheduler);

}  // namespace cairn::vault::cmd

#endif  // CAIRN_VAULT_CMD_PROTECTION_H_
