// VaultService: what a person may see, scoped by role (doc/design.md
// section 18).
#include <algorithm>
#include <boost/json.hpp>

#include "lib/base/cli.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

Result<std::vector<Department>> VaultService::ListDepartments(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListDepartments());
  std::vector<Department> out;
  for (auto& d : all) {
    if (InScope(actor, d.name)) {
      d.wrapped_keys.clear();
      out.push_back(std::move(d));
    }
  }
  return out;
}

Result<std::vector<AgentRecord>> VaultService::ListAgents(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListAgents());
  std::vector<AgentRecord> out;
  for (auto& a : all) {
    const bool visible = a.department_id == 0 ? InScope(actor, "") && actor.role != "operator"
                                              : InScope(actor, DepartmentName(a.department_id));
    if (visible) out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<SnapshotRecord>> VaultService::ListSnapshots(const Actor& actor,
                                                                std::string_view department) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState, department));
  return ListSnapshots(department);
}

Result<SnapshotRecord> VaultService::FindSnapshot(const Actor& actor, std::string_view department,
                                                  std::string_view id) const {
  CAIRN_ASSIGN_OR_RETURN(auto list, ListSnapshots(actor, department));
  const SnapshotRecord* found = nullptr;
  for (const auto& s : list) {
    if (s.id == id) return s;
    if (!id.empty() && s.id.starts_with(id)) {
      if (found != nullptr) {
        return Status::InvalidArgument("snapshot prefix " + std::string(id) + " is ambiguous");
      }
      found = &s;
    }
  }
  if (found == nullptr) return Status::NotFound("no snapshot " + std::string(id));
  return *found;
}

Result<std::vector<JobRecord>> VaultService::ListJobs(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListJobs());
  std::vector<JobRecord> out;
  for (auto& j : all) {
    if (InScope(actor, DepartmentName(j.department_id))) out.push_back(std::move(j));
  }
  return out;
}

Result<JobRecord> VaultService::FindJob(const Actor& actor, uint64_t id) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  auto job = vault_->catalog()->FindJob(id);
  if (!job.ok() || !InScope(actor, DepartmentName(job->department_id))) {
    return Status::NotFound("no job " + std::to_string(id));
  }
  return job;
}

Result<VaultService::ReplicationStatus> VaultService::Replication(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  ReplicationStatus r;
  r.site = vault_->site();
  auto of = vault_->catalog()->GetSetting("replica_of");
  r.replica = of.ok();
  if (of.ok()) r.replica_of = *of;
  auto promoted = vault_->catalog()->GetSetting("promoted");
  r.promoted = promoted.ok();
  if (promoted.ok()) r.promoted_line = *promoted;
  r.agent_addresses = AgentAddresses();
  if (auto pass = vault_->catalog()->GetSetting("replication_last_pass"); pass.ok()) {
    boost::system::error_code ec;
    auto v = boost::json::parse(*pass, ec);
    if (!ec && v.is_object()) r.last_pass = v.get_object();
  }
  return r;
}

Status VaultService::RecordReplicationPass(const boost::json::object& pass) {
  return vault_->catalog()->PutSetting("replication_last_pass", cli::ToJson(pass));
}

Result<std::vector<AuditEntry>> VaultService::AuditTrail(const Actor& actor,
                                                         const AuditFilter& filter) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadAudit));
  return vault_->audit()->List(filter);
}

Result<AuditVerification> VaultService::VerifyAudit(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadAudit));
  uint64_t head_seq = 0;
  std::string head_hash;
  if (auto head = vault_->catalog()->GetSetting("audit_head"); head.ok()) {
    head_seq = std::strtoull(head->c_str(), nullptr, 10);
    head_hash = head->substr(head->find(' ') + 1);
  }
  return AuditLog::Verify(vault_->env(), vault_->data_dir(), "", head_seq, head_hash);
}

}  // namespace cairn::vault
