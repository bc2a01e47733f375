// Jobs for agents: queued, sent, done or failed.
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kSent:
      return "sent";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kMissed:
      return "missed";
  }
  return "unknown";
}

Result<uint64_t> Catalog::EnqueueJob(const JobRecord& spec, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(JobRecord job, PrepareJob(spec, now_micros));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(job.id, NextCounter(txn, meta_, "next_job_id"));
  auto key = Be64(job.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, key, EncodeJob(job)));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_queued_, key, {}));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return job.id;
}

Result<JobRecord> Catalog::PrepareJob(const JobRecord& spec, uint64_t now_micros) const {
  if (spec.kind < 1 || spec.kind > 3) {
    return Status::InvalidArgument("unknown job kind " + std::to_string(spec.kind));
  }
  // A drill with no drill host to run it is queued only to be recorded
  // missed at once.
  if (spec.kind == 1 && spec.agent_serial.empty() && spec.host.empty()) {
    return Status::InvalidArgument("a job needs an agent serial or a host");
  }
  if (spec.paths.size() > kMaxJobPaths) {
    return Status::InvalidArgument("a job may name at most 1024 paths");
  }
  for (const auto& p : spec.paths) {
    if (p.empty() || p.size() > kMaxJobPathLen || p.find('\0') != std::string::npos) {
      return Status::InvalidArgument("job path must be 1 to 4096 bytes without NUL");
    }
  }
  JobRecord job;
  job.department_id = spec.department_id;
  job.agent_serial = spec.agent_serial;
  job.host = spec.host;
  job.kind = spec.kind;
  job.paths = spec.paths;
  job.image = spec.image;
  job.excludes = spec.excludes;
  job.zstd_level = spec.zstd_level;
  job.bandwidth = spec.bandwidth;
  job.source_id = spec.source_id;
  job.read_snapshot = spec.read_snapshot;
  job.drill_check = spec.drill_check;
  job.drill_check_timeout = spec.drill_check_timeout;
  job.drill_rto = spec.drill_rto;
  job.read_from = spec.read_from;
  job.restore_target = spec.restore_target;
  job.pit = spec.pit;
  job.pre_command = spec.pre_command;
  job.post_command = spec.post_command;
  job.hook_timeout = spec.hook_timeout;
  job.hook_continue = spec.hook_continue;
  job.state = JobState::kQueued;
  job.created_micros = now_micros;
  if (!job.agent_serial.empty()) {
    CAIRN_ASSIGN_OR_RETURN(AgentRecord agent, FindAgent(job.agent_serial));
    if (agent.revoked) {
      return Status::PermissionDenied("agent " + job.agent_serial + " is revoked");
    }
    if (job.department_id != 0 && job.department_id != agent.department_id) {
      return Status::PermissionDenied("agent " + job.agent_serial +
                                      " belongs to another department");
    }
    job.department_id = agent.department_id;
    if (job.host.empty()) job.host = agent.host;
  }
  CAIRN_RETURN_IF_ERROR(FindDepartment(job.department_id).status());
  return job;
}

Result<JobRecord> Catalog::FindJob(uint64_t id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(jobs_, Be64(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no job " + std::to_string(id));
    return v.status();
  }
  return DecodeJob(*v);
}

Result<std::vector<JobRecord>> Catalog::ListJobs(size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<JobRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(jobs_, {}, [&](ByteView, ByteView v) {
    auto j = DecodeJob(v);
    if (!j.ok()) {
      bad = j.status();
      return false;
    }
    out.push_back(std::move(*j));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  if (limit != 0 && out.size() > limit) out.erase(out.begin(), out.end() - limit);
  return out;
}

Result<std::vector<JobRecord>> Catalog::ListQueuedJobs() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<JobRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(jobs_queued_, {}, [&](ByteView k, ByteView) {
    auto v = txn.Get(jobs_, k);
    auto j = v.ok() ? DecodeJob(*v) : Result<JobRecord>(v.status());
    if (!j.ok()) {
      bad = j.status().IsNotFound() ? Malformed("queued job") : j.status();
      return false;
    }
    out.push_back(std::move(*j));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

namespace {

// Loads job `id` in `txn` and checks it is in state `from`.
Result<JobRecord> LoadJobIn(repo::LmdbTxn& txn, repo::LmdbDb jobs, uint64_t id, JobState from) {
  auto v = txn.Get(jobs, Be64(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no job " + std::to_string(id));
    return v.status();
  }
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, DecodeJob(*v));
  if (j.state != from) {
    return Status::InvalidArgument("job " + std::to_string(id) + " is " +
                                   std::string(JobStateName(j.state)) + ", not " +
                                   std::string(JobStateName(from)));
  }
  return j;
}

}  // namespace

Status Catalog::MarkJobSent(uint64_t id, std::string_view serial, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kQueued));
  j.state = JobState::kSent;
  j.sent_micros = now_micros;
  j.sent_to = std::string(serial);
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  CAIRN_RETURN_IF_ERROR(txn.Delete(jobs_queued_, Be64(id)));
  return txn.Commit();
}

Status Catalog::RequeueJob(uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kSent));
  j.state = JobState::kQueued;
  j.sent_micros = 0;
  j.sent_to.clear();
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_queued_, Be64(id), {}));
  return txn.Commit();
}

Status Catalog::FinishJob(uint64_t id, bool ok, std::string_view snapshot_id,
                          std::string_view error, uint64_t now_micros, std::string_view log) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kSent));
  j.state = ok ? JobState::kDone : JobState::kFailed;
  j.finished_micros = now_micros;
  j.snapshot_id = ok ? std::string(snapshot_id) : "";
  j.error = ok ? "" : std::string(error.substr(0, kMaxJobErrorLen));
  if (!ok && j.error.empty()) j.error = "failed (the agent gave no reason)";
  j.log = std::string(log.substr(0, kMaxJobErrorLen));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  return txn.Commit();
}

Status Catalog::ExpireJob(uint64_t id, JobState from, JobState to, std::string_view reason,
                          uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, from));
  j.state = to;
  j.finished_micros = now_micros;
  j.error = std::string(reason.substr(0, kMaxJobErrorLen));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  if (from == JobState::kQueued) CAIRN_RETURN_IF_ERROR(txn.Delete(jobs_queued_, Be64(id)));
  return txn.Commit();
}

}  // namespace cairn::vault
