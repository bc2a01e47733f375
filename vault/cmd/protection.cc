#include "vault/cmd/protection.h"

#include <boost/json.hpp>
#include <cctype>

#include "lib/base/bytes.h"
#include "lib/base/names.h"
#include "lib/client/snapshot_json.h"
#include "vault/api/rest_api.h"
#include "vault/cmd/output.h"
#include "vault/policy/schedule.h"

namespace cairn::vault::cmd {
namespace {

namespace json = boost::json;

// "50M" -> 50,000,000 bytes per second; "0" -> unlimited.
Result<uint64_t> ParseRate(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit = text.substr(i);
  if (i == 0 || i > 12) {
    return Status::InvalidArgument("--bandwidth '" + text +
                                   "': expected bytes per second, such as 50M or 2G");
  }
  uint64_t n = std::stoull(text.substr(0, i));
  if (unit.empty() || unit == "B") return n;
  if (unit == "k" || unit == "K") return n * 1000;
  if (unit == "M") return n * 1000 * 1000;
  if (unit == "G") return n * 1000 * 1000 * 1000;
  return Status::InvalidArgument("--bandwidth '" + text + "': the unit is k, M or G");
}

std::string Keep(const Retention& k) {
  if (k.keeps_everything()) return "everything";
  std::string out;
  auto add = [&](uint32_t n, const char* what) {
    if (n != 0) out += (out.empty() ? "" : " ") + std::to_string(n) + " " + what;
  };
  add(k.last, "last");
  add(k.hourly, "hourly");
  add(k.daily, "daily");
  add(k.weekly, "weekly");
  add(k.monthly, "monthly");
  add(k.yearly, "yearly");
  return out;
}

std::string Dur(uint64_t seconds) { return seconds == 0 ? "-" : FormatDuration(seconds); }

std::string PolicyText(const Policy& p) {
  return p.name + (p.template_name.empty() ? "" : " (template " + p.template_name + ")") +
         "\n  schedule:    " +
         (p.schedule.empty() ? "none (backups only when asked)" : p.schedule) +
         "\n  keep:        " + Keep(p.keep) + "\n  off-site:    " + (p.offsite ? "yes" : "no") +
         "\n  RPO, RTO:    " + Dur(p.rpo_seconds) + ", " + Dur(p.rto_seconds) +
         "\n  drill every: " + Dur(p.drill_every_seconds) +
         (p.drill_check.empty() ? "" : "\n  drill check: " + p.drill_check) +
         "\n  lock:        " + Dur(p.lock_seconds) +
         "\n  zstd level:  " + std::to_string(p.zstd_level) + "\n  bandwidth:   " +
         (p.bandwidth_bytes_per_second == 0 ? "unlimited"
                                            : HumanBytes(p.bandwidth_bytes_per_second) + "/s") +
         "\n";
}

std::string Rfc3339OrNever(uint64_t micros) { return micros == 0 ? "never" : cli::Rfc3339(micros); }

// Applies the policy flags given on the command line to `p`.
Status ApplyFlags(const ProtectionCommands& c, CLI::App* cmd, Policy& p) {
  if (cmd->count("--schedule")) p.schedule = c.schedule;
  if (c.keep_last) p.keep.last = *c.keep_last;
  if (c.keep_hourly) p.keep.hourly = *c.keep_hourly;
  if (c.keep_daily) p.keep.daily = *c.keep_daily;
  if (c.keep_weekly) p.keep.weekly = *c.keep_weekly;
  if (c.keep_monthly) p.keep.monthly = *c.keep_monthly;
  if (c.keep_yearly) p.keep.yearly = *c.keep_yearly;
  if (cmd->count("--zstd-level")) p.zstd_level = c.zstd_level;
  if (c.offsite) p.offsite = true;
  if (c.no_offsite) p.offsite = false;
  struct Duration {
    const char* flag;
    const std::string* text;
    uint64_t* out;
  };
  for (const Duration& d :
       {Duration{"--rpo", &c.rpo, &p.rpo_seconds}, Duration{"--rto", &c.rto, &p.rto_seconds},
        Duration{"--drill-every", &c.drill_every, &p.drill_every_seconds},
        Duration{"--lock", &c.lock, &p.lock_seconds}}) {
    if (!cmd->count(d.flag)) continue;
    auto v = ParseDurationSeconds(*d.text);
    if (!v.ok()) return v.status().WithContext(d.flag);
    *d.out = *v;
  }
  if (cmd->count("--bandwidth")) {
    CAIRN_ASSIGN_OR_RETURN(p.bandwidth_bytes_per_second, ParseRate(c.bandwidth));
  }
  if (cmd->count("--drill-check")) p.drill_check = c.drill_check;
  if (cmd->count("--on-hook-failure")) p.hook_failure_continue = c.hook_failure == "continue";
  if (cmd->count("--drill-check-timeout")) {
    auto v = ParseDurationSeconds(c.drill_check_timeout);
    if (!v.ok()) return v.status().WithContext("--drill-check-timeout");
    if (*v > 86400) return Status::InvalidArgument("--drill-check-timeout: at most a day");
    p.drill_check_timeout_seconds = static_cast<uint32_t>(*v);
  }
  return Status::OK();
}

void AddPolicyFlags(CLI::App* cmd, ProtectionCommands* c) {
  cmd->add_option("--schedule", c->schedule,
                  "When backups run: daily, '*-*-* 01:30', 'Mon..Fri 22:00', 'every 4h' "
                  "(the vault's time zone); '' for none");
  cmd->add_option("--keep-last", c->keep_last, "Keep the newest N snapshots");
  cmd->add_option("--keep-hourly", c->keep_hourly, "Keep the newest of each of N hours");
  cmd->add_option("--keep-daily", c->keep_daily, "Keep the newest of each of N days");
  cmd->add_option("--keep-weekly", c->keep_weekly, "Keep the newest of each of N ISO weeks");
  cmd->add_option("--keep-monthly", c->keep_monthly, "Keep the newest of each of N months");
  cmd->add_option("--keep-yearly", c->keep_yearly, "Keep the newest of each of N years");
  cmd->add_option("--zstd-level", c->zstd_level, "zstd level of new data (1..19, default 3)");
  cmd->add_flag("--offsite", c->offsite, "Snapshots must reach the DR site");
  cmd->add_flag("--no-offsite", c->no_offsite, "No off-site copy required");
  cmd->add_option("--rpo", c->rpo, "Recovery point objective, such as 4h");
  cmd->add_option("--rto", c->rto, "Recovery time objective, such as 2h");
  cmd->add_option("--drill-every", c->drill_every, "Restore drill frequency, such as 30d");
  cmd->add_option("--drill-check", c->drill_check,
                  "Command a scheduled drill runs in the restored sandbox (/bin/sh; '' for none)");
  cmd->add_option("--drill-check-timeout", c->drill_check_timeout,
                  "How long the drill check may take, such as 10m (default)");
  cmd->add_option("--on-hook-failure", c->hook_failure,
                  "A source's failed pre-command: fail the backup (default), or continue "
                  "crash-consistent")
      ->check(CLI::IsMember({"fail", "continue"}));
  cmd->add_option("--lock", c->lock,
                  "Retention lock from each snapshot's time, such as 30d (never shortened)");
  cmd->add_option("--bandwidth", c->bandwidth,
                  "Bytes per second a backup may send (50M; 0: no limit)");
}

}  // namespace

void AddProtectionCommands(CLI::App& app, CLI::App* snapshot, ProtectionCommands* c,
                           std::string* data_dir, cli::CommonFlags* flags) {
  auto data = [&](CLI::App* cmd) {
    cmd->add_option("--data", *data_dir, "Vault data directory")->envname("CAIRN_DATA")->required();
    cmd->add_flag("--json", flags->json, "Print the result as one JSON object");
  };
  auto* policy = app.add_subcommand("policy", "Protection policies: schedule, retention, locks");
  policy->require_subcommand(1);
  c->policy_create = policy->add_subcommand("create", "Create a policy (from a template or flags)");
  c->policy_create->add_option("NAME", c->name, "Policy name")->required();
  c->policy_create->add_option("--template", c->template_name,
                               "Protection level template (level2, level3, level4): the policy "
                               "starts from it and may never be weaker");
  AddPolicyFlags(c->policy_create, c);
  data(c->policy_create);
  cli::Examples(c->policy_create,
                "Examples:\n"
                "  cairn-vault policy create finance-db --template level4 --schedule 'every 4h' "
                "--keep-daily 14 --keep-weekly 8 --keep-monthly 12 --keep-yearly 7 --rpo 4h "
                "--rto 2h --drill-every 30d --lock 30d --data /var/lib/cairn/vault\n"
                "  cairn-vault policy create nightly --schedule '*-*-* 01:30' --keep-daily 7 "
                "--data /var/lib/cairn/vault");
  c->policy_edit = policy->add_subcommand("edit", "Change a policy (a lock is never shortened)");
  c->policy_edit->add_option("NAME", c->name, "Policy name")->required();
  AddPolicyFlags(c->policy_edit, c);
  data(c->policy_edit);
  c->policy_list = policy->add_subcommand("list", "List policies");
  data(c->policy_list);
  c->policy_show = policy->add_subcommand("show", "Show a policy and its sources");
  c->policy_show->add_option("NAME", c->name, "Policy name")->required();
  data(c->policy_show);
  c->policy_templates =
      policy->add_subcommand("templates", "List the protection level templates and their floors");
  data(c->policy_templates);

  auto* source = app.add_subcommand("source", "What policies protect: an agent's paths or image");
  source->require_subcommand(1);
  c->source_add = source->add_subcommand("add", "Protect an agent's paths or image with a policy");
  c->source_add->add_option("--department", c->department, "Department")->required();
  c->source_add->add_option("--agent", c->host, "The agent's host name")->required();
  c->source_add->add_option("--policy", c->policy, "Policy name")->required();
  c->source_add->add_option("--path", c->paths, "Absolute path on the agent (repeatable)");
  c->source_add->add_option("--exclude", c->excludes, "fnmatch pattern to leave out (repeatable)");
  c->source_add->add_option("--image", c->image, "A block device or image file, instead of paths");
  c->source_add
      ->add_option("--pit", c->pit,
                   "Point-in-time view the agent reads: auto (the best its host offers), "
                   "btrfs (files), reflink (image files), lvm (logical volumes), none")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "none", "btrfs", "reflink", "lvm"}));
  c->source_add->add_option("--pre-command", c->pre_command,
                            "Run on the agent's host before the view is taken (quiesce)");
  c->source_add->add_option("--post-command", c->post_command,
                            "Run on the agent's host once the view is taken, whatever happened");
  c->source_add->add_option("--hook-timeout", c->hook_timeout, "Seconds each hook may take (600)")
      ->check(CLI::Range(1, 86400));
  data(c->source_add);
  cli::Examples(c->source_add,
                "Examples:\n"
                "  cairn-vault source add --department finance --agent fin-db --policy finance-db "
                "--image /dev/vdb --data /var/lib/cairn/vault\n"
                "  cairn-vault source add --department finance --agent fin-db --policy nightly "
                "--path /srv/files --exclude '*.tmp' --data /var/lib/cairn/vault");
  c->source_list = source->add_subcommand("list", "List sources");
  c->source_list->add_option("--department", c->department, "Only this department");
  data(c->source_list);
  c->source_remove = source->add_subcommand("remove", "Stop protecting a source (snapshots stay)");
  c->source_remove->add_option("ID", c->source_id, "Source ID (see `source list`)")->required();
  data(c->source_remove);

  c->forget = snapshot->add_subcommand(
      "forget", "Forget snapshots by ID, or as the policies' retention says (never locked ones)");
  c->forget->add_option("ID", c->ids, "Snapshot IDs (or their first 8 digits)");
  c->forget->add_option("--department", c->department, "Department (required with IDs)");
  c->forget->add_flag("--apply-retention", c->apply_retention,
                      "Apply every source's retention rules (of --department, or all)");
  c->forget->add_flag("--dry-run", c->dry_run,
                      "Only show what would go, and which rule keeps each kept snapshot");
  data(c->forget);
  cli::Examples(
      c->forget,
      "Examples:\n"
      "  cairn-vault snapshot forget --apply-retention --dry-run --data /var/lib/cairn/vault\n"
      "  cairn-vault snapshot forget 3f2a1b9c --department finance --data "
      "/var/lib/cairn/vault");

  c->status = app.add_subcommand(
      "status",
      "What is protected: each source's last good backup against its RPO, next run, "
      "last failure, off-site copy");
  c->status->add_option("--department", c->department, "Only this department");
  data(c->status);
}

std::optional<int> RunProtectionCommand(ProtectionCommands& c, VaultService& service,
                                        const Actor& me, bool json,
                                        const SchedulerOptions& scheduler) {
  if (*c.policy_create) {
    Policy p;
    p.name = c.name;
    if (!c.template_name.empty()) {
      auto t = FindTemplate(c.template_name);
      if (!t.ok()) return Fail(json, Status::InvalidArgument(t.status().message()));
      p = PolicyFromTemplate(**t, c.name);
    }
    if (Status s = ApplyFlags(c, c.policy_create, p); !s.ok()) return Fail(json, s);
    auto created = service.CreatePolicy(me, p);
    if (!created.ok()) return Fail(json, created.status());
    Print(json, {{"ok", true}, {"policy", VaultService::PolicyToJson(*created)}},
          "policy " + PolicyText(*created));
    return 0;
  }
  if (*c.policy_edit) {
    auto edited =
        service.EditPolicy(me, c.name, [&](Policy& p) { return ApplyFlags(c, c.policy_edit, p); });
    if (!edited.ok()) return Fail(json, edited.status());
    Print(json, {{"ok", true}, {"policy", VaultService::PolicyToJson(*edited)}},
          "policy " + PolicyText(*edited));
    return 0;
  }
  if (*c.policy_list || *c.policy_show) {
    auto list = service.ListPolicies(me);
    if (!list.ok()) return Fail(json, list.status());
    auto sources = service.ListSources(me);
    if (!sources.ok()) return Fail(json, sources.status());
    json::array arr;
    std::string text;
    bool found = false;
    for (const auto& p : *list) {
      if (*c.policy_show && p.name != c.name) continue;
      found = true;
      json::object o = VaultService::PolicyToJson(p);
      json::array used;
      std::string used_text;
      for (const auto& s : *sources) {
        if (s.policy != p.name) continue;
        used.push_back(s.id);
        used_text += " " + std::to_string(s.id);
      }
      o["sources"] = std::move(used);
      arr.push_back(std::move(o));
      text +=
          *c.policy_show
              ? PolicyText(p) + "  sources:    " + (used_text.empty() ? " none" : used_text) + "\n"
              : p.name + "\t" + (p.schedule.empty() ? "-" : p.schedule) + "\t" + Keep(p.keep) +
                    "\t" + (p.template_name.empty() ? "-" : p.template_name) + "\tlock " +
                    Dur(p.lock_seconds) + "\n";
    }
    if (*c.policy_show) {
      if (!found) return Fail(json, Status::NotFound("no policy " + c.name));
      Print(json, {{"ok", true}, {"policy", arr.front()}}, text);
    } else {
      Print(json, {{"ok", true}, {"policies", arr}}, text);
    }
    return 0;
  }
  if (*c.policy_templates) {
    json::array arr;
    std::string text;
    for (const auto& t : ProtectionTemplates()) {
      arr.push_back({{"name", t.name},
                     {"description", t.description},
                     {"max_gap_seconds", t.max_gap_seconds},
                     {"min_keep", Keep(t.min_keep)},
                     {"offsite_required", t.offsite_required},
                     {"min_lock_seconds", t.min_lock_seconds}});
      text += t.name + "\t" + t.description + "\n\tbackups at least every " +
              FormatDuration(t.max_gap_seconds) + "; keep at least " + Keep(t.min_keep) +
              "; off-site " + (t.offsite_required ? "required" : "optional") + "; lock at least " +
              Dur(t.min_lock_seconds) + "\n";
    }
    Print(json, {{"ok", true}, {"templates", arr}}, text);
    return 0;
  }
  if (*c.source_add) {
    VaultService::SourceSpec spec{c.department,   c.host,        c.policy, c.paths,
                                  c.excludes,     c.image,       c.pit,    c.pre_command,
                                  c.post_command, c.hook_timeout};
    auto s = service.AddSource(me, spec);
    if (!s.ok()) return Fail(json, s.status());
    std::string what = s->image ? "image " + s->paths[0] : "paths";
    if (!s->image) {
      for (const auto& p : s->paths) what += " " + p;
    }
    Print(json, {{"ok", true}, {"source", SourceJson(*s, c.department)}},
          "source " + std::to_string(s->id) + ": " + c.department + "/" + s->host + " " + what +
              ", policy " + s->policy + "\n");
    return 0;
  }
  if (*c.source_list) {
    auto list = service.ListSources(me);
    if (!list.ok()) return Fail(json, list.status());
    auto departments = service.ListDepartments(me);
    if (!departments.ok()) return Fail(json, departments.status());
    auto name_of = [&](uint32_t id) {
      for (const auto& d : *departments) {
        if (d.id == id) return d.name;
      }
      return std::to_string(id);
    };
    json::array arr;
    std::string text;
    for (const auto& s : *list) {
      const std::string dept = name_of(s.department_id);
      if (!c.department.empty() && dept != c.department) continue;
      arr.push_back(SourceJson(s, dept));
      std::string what;
      for (const auto& p : s.paths) what += (what.empty() ? "" : " ") + p;
      text += std::to_string(s.id) + "\t" + dept + "\t" + s.host + "\t" +
              (s.image ? "image " : "") + what + "\t" + s.policy + "\n";
    }
    Print(json, {{"ok", true}, {"sources", arr}}, text);
    return 0;
  }
  if (*c.source_remove) {
    if (Status s = service.RemoveSource(me, c.source_id); !s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"source", c.source_id}, {"removed", true}},
          "source " + std::to_string(c.source_id) +
              " removed; its snapshots stay (retention no longer applies to them)\n");
    return 0;
  }
  if (*c.forget) {
    if (c.apply_retention == !c.ids.empty()) {
      return Fail(json, Status::InvalidArgument("give snapshot IDs or --apply-retention"));
    }
    if (!c.apply_retention) {
      if (c.department.empty()) {
        return Fail(json, Status::InvalidArgument("forgetting by ID needs --department"));
      }
      auto results = service.ForgetSnapshots(me, c.department, c.ids, c.dry_run);
      if (!results.ok()) return Fail(json, results.status());
      json::array arr;
      std::string text;
      bool refused = false;
      for (const auto& r : *results) {
        refused |= !r.refusal.empty();
        arr.push_back(
            {{"snapshot", r.snapshot.id},
             {"time", cli::Rfc3339(r.snapshot.time_micros)},
             {"forgotten", r.forgotten},
             {"refused", r.refusal.empty() ? json::value(nullptr) : json::value(r.refusal)}});
        text += client::ShortSnapshotId(r.snapshot.id) + "\t" +
                cli::Rfc3339(r.snapshot.time_micros) + "\t" +
                (!r.refusal.empty() ? "refused: " + r.refusal
                 : c.dry_run        ? "would be forgotten"
                                    : "forgotten") +
                "\n";
      }
      Print(json, {{"ok", !refused}, {"dry_run", c.dry_run}, {"snapshots", arr}}, text);
      if (refused && !json) std::cerr << "cairn-vault: some snapshots are locked\n";
      return refused ? cli::kExitFailure : 0;
    }
    auto plans = service.ApplyRetentionRules(me, c.department, c.dry_run);
    if (!plans.ok()) return Fail(json, plans.status());
    json::array arr;
    std::string text;
    size_t keep = 0, gone = 0;
    for (const auto& plan : *plans) {
      std::string what;
      for (const auto& p : plan.paths) what += (what.empty() ? "" : " ") + p;
      text += plan.department + " " + plan.host + " " + (plan.image ? "image " : "") + what +
              (plan.source_id
                   ? "  (source " + std::to_string(plan.source_id) + ", policy " + plan.policy + ")"
                   : "  (no source)") +
              "\n";
      for (const auto& d : plan.decisions) {
        (d.keep ? keep : gone)++;
        std::string reasons;
        for (const auto& r : d.reasons) reasons += (reasons.empty() ? "" : ", ") + r;
        if (reasons.empty()) reasons = "no rule keeps it";
        text += std::string("  ") +
                (d.keep      ? "keep   "
                 : c.dry_run ? "forget "
                             : "forgot ") +
                client::ShortSnapshotId(d.id) + "  " + cli::Rfc3339(d.time_micros) + "  " +
                reasons + "\n";
      }
      arr.push_back(SeriesPlanJson(plan));
    }
    text += std::to_string(keep) + " kept, " + std::to_string(gone) +
            (c.dry_run ? " would be forgotten" : " forgotten") + "\n";
    Print(json,
          {{"ok", true},
           {"dry_run", c.dry_run},
           {"series", arr},
           {"kept", keep},
           {"forgotten", gone}},
          text);
    return 0;
  }
  if (*c.status) {
    auto report = service.ProtectionStatus(me, c.department, scheduler);
    if (!report.ok()) return Fail(json, report.status());
    std::string text =
        "SOURCE\tDEPARTMENT\tHOST\tWHAT\tPOLICY\tLAST GOOD\tAGE\tREAD\tRPO\tNEXT RUN\tOFF-SITE\t"
        "LAST FAILURE\n";
    for (const auto& st : report->sources) {
      std::string what;
      for (const auto& p : st.source.paths) what += (what.empty() ? "" : " ") + p;
      if (st.source.image) what = "image " + what;
      text += std::to_string(st.source.id) + "\t" + st.department + "\t" + st.source.host + "\t" +
              what + "\t" + st.policy.name + "\t" + Rfc3339OrNever(st.last_good_micros) + "\t" +
              (st.last_good_micros ? FormatDuration(st.age_seconds) : "-") + "\t" +
              (st.last_good_micros == 0   ? "-"
               : st.last_good_pit.empty() ? "live (not point-in-time)"
                                          : st.last_good_pit) +
              "\t" + st.rpo + "\t" + (st.next_run_micros ? cli::Rfc3339(st.next_run_micros) : "-") +
              "\t" + st.offsite + "\t" + (st.last_failure.empty() ? "-" : st.last_failure) + "\n";
    }
    if (report->sources.empty()) {
      text += "(no sources: nothing is under a policy yet; see `cairn-vault source add --help`)\n";
    }
    for (const auto& st : report->sources) {
      if (st.damaged_snapshots == 0) continue;
      text += "DAMAGED: source " + std::to_string(st.source.id) + " (" + st.department + ", " +
              st.source.host + "): " + std::to_string(st.damaged_snapshots) +
              " snapshot(s) reference chunks scrub could not repair; see `cairn-vault scrub`\n";
    }
    for (const auto& s : report->unprotected_series) text += "unprotected: " + s + "\n";
    for (const auto& a : report->agents_without_source) {
      text += "agent without a source: " + a + "\n";
    }
    for (const auto& a : report->agents_unseen) text += "agent not seen for a day: " + a + "\n";
    json::object o = ProtectionReportJson(*report);
    o.emplace("ok", true);
    Print(json, o, text);
    return 0;
  }
  return std::nullopt;
}

}  // namespace cairn::vault::cmd
