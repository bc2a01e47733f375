#include "vault/store/pack_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace cairn::vault {
namespace {

// Parses a whole decimal or hex string; false when it is not one.
bool ParseNumber(const std::string& text, int base, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, base);
  if (end == nullptr || *end != '\0') return false;
  *out = v;
  return true;
}

class LocalPackStore : public PackStore {
 public:
  LocalPackStore(io::Env* env, std::string root) : env_(env), root_(std::move(root)) {}

  io::Env* env() override { return env_; }

  std::string PackPath(uint32_t department, uint64_t pack_id) const override {
    return PackDir(department) + "/" + PackName(pack_id);
  }

  std::string PackDir(uint32_t department) const override {
    return root_ + "/" + std::to_string(department);
  }

  Status PrepareDepartment(uint32_t department) override {
    if (env_->FileExists(PackDir(department))) return Status::OK();
    CAIRN_RETURN_IF_ERROR(env_->CreateDir(PackDir(department)));
    return env_->SyncDir(root_);
  }

  Result<std::vector<uint64_t>> ListPacks(uint32_t department) override {
    if (!env_->FileExists(PackDir(department))) return std::vector<uint64_t>();
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->GetChildren(PackDir(department)));
    return PackIdsIn(names);
  }

  Result<std::vector<uint32_t>> ListDepartments() override {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->GetChildren(root_));
    return DepartmentIdsIn(names);
  }

  std::string Describe() const override { return "local:" + root_; }

 private:
  io::Env* const env_;
  const std::string root_;
};

}  // namespace

std::string PackName(uint64_t pack_id) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016" PRIx64 ".pack", pack_id);
  return name;
}

std::vector<uint64_t> PackIdsIn(const std::vector<std::string>& names) {
  std::vector<uint64_t> ids;
  for (const std::string& n : names) {
    uint64_t id = 0;
    if (n.size() == 21 && n.ends_with(".pack") && ParseNumber(n.substr(0, 16), 16, &id)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<uint32_t> DepartmentIdsIn(const std::vector<std::string>& names) {
  std::vector<uint32_t> out;
  for (const std::string& n : names) {
    uint64_t id = 0;
    if (ParseNumber(n, 10, &id) && id <= UINT32_MAX) out.push_back(static_cast<uint32_t>(id));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::unique_ptr<PackStore>> OpenLocalPackStore(io::Env* env, std::string root) {
  if (root.empty()) return Status::InvalidArgument("pack store: no root directory");
  CAIRN_RETURN_IF_ERROR(env->CreateDirs(root));
  return std::unique_ptr<PackStore>(std::make_unique<LocalPackStore>(env, std::move(root)));
}

}  // namespace cairn::vault
