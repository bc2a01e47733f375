// Policies, the sources they protect, and the scheduler's slots.
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

namespace {

template <typename T, typename Decode>
Result<std::vector<T>> ListAll(repo::LmdbEnv* env, repo::LmdbDb db, Decode decode) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env->BeginRead());
  std::vector<T> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(db, {}, [&](ByteView k, ByteView v) {
    Result<T> row = decode(k, v);
    if (!row.ok()) {
      bad = row.status();
      return false;
    }
    out.push_back(std::move(*row));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

}  // namespace

Status Catalog::PutPolicy(const Policy& policy, bool create) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  bool exists = txn.Get(policies_, AsBytes(policy.name)).ok();
  if (create && exists) return Status::InvalidArgument("policy " + policy.name + " exists");
  if (!create && !exists) return Status::NotFound("no policy " + policy.name);
  CAIRN_RETURN_IF_ERROR(txn.Put(policies_, AsBytes(policy.name), EncodePolicy(policy)));
  return txn.Commit();
}

Result<Policy> Catalog::FindPolicy(std::string_view name) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(policies_, AsBytes(name));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no policy " + std::string(name));
    return v.status();
  }
  return DecodePolicy(name, *v);
}

Result<std::vector<Policy>> Catalog::ListPolicies() const {
  return ListAll<Policy>(env_, policies_,
                         [](ByteView k, ByteView v) { return DecodePolicy(AsString(k), v); });
}

Result<SourceRecord> Catalog::AddSource(SourceRecord source) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  if (!txn.Get(policies_, AsBytes(source.policy)).ok()) {
    return Status::NotFound("no policy " + source.policy);
  }
  CAIRN_ASSIGN_OR_RETURN(source.id, NextCounter(txn, meta_, "next_source_id"));
  CAIRN_RETURN_IF_ERROR(txn.Put(sources_, Be64(source.id), EncodeSource(source)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return source;
}

Result<SourceRecord> Catalog::FindSource(uint64_t id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(sources_, Be64(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no source " + std::to_string(id));
    return v.status();
  }
  return DecodeSource(*v);
}

Result<std::vector<SourceRecord>> Catalog::ListSources() const {
  return ListAll<SourceRecord>(env_, sources_,
                               [](ByteView, ByteView v) { return DecodeSource(v); });
}

Status Catalog::RemoveSource(uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  Status s = txn.Delete(sources_, Be64(id));
  if (s.IsNotFound()) return Status::NotFound("no source " + std::to_string(id));
  CAIRN_RETURN_IF_ERROR(s);
  return txn.Commit();
}

Result<uint64_t> Catalog::QueueScheduledJob(uint64_t source_id, uint64_t slot_micros,
                                            const JobRecord& spec, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(JobRecord job, PrepareJob(spec, now_micros));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto v = txn.Get(sources_, Be64(source_id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no source " + std::to_string(source_id));
    return v.status();
  }
  CAIRN_ASSIGN_OR_RETURN(SourceRecord source, DecodeSource(*v));
  // The slot and the job go together: a slot is queued once, whoever asks
  // and however often the vault restarts.
  const bool drill = job.kind == 2;
  uint64_t& last = drill ? source.last_drill_slot_micros : source.last_slot_micros;
  if (last >= slot_micros) return uint64_t{0};
  CAIRN_ASSIGN_OR_RETURN(job.id, NextCounter(txn, meta_, "next_job_id"));
  job.source_id = source_id;
  last = slot_micros;
  if (!drill) source.last_job = job.id;
  auto key = Be64(job.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, key, EncodeJob(job)));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_queued_, key, {}));
  CAIRN_RETURN_IF_ERROR(txn.Put(sources_, Be64(source_id), EncodeSource(source)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return job.id;
}

Status Catalog::SetSourceSlot(uint64_t source_id, uint64_t slot_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto v = txn.Get(sources_, Be64(source_id));
  if (!v.ok()) return v.status();
  CAIRN_ASSIGN_OR_RETURN(SourceRecord source, DecodeSource(*v));
  if (source.last_slot_micros >= slot_micros) return Status::OK();
  source.last_slot_micros = slot_micros;
  CAIRN_RETURN_IF_ERROR(txn.Put(sources_, Be64(source_id), EncodeSource(source)));
  return txn.Commit();
}

}  // namespace cairn::vault
