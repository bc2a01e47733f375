#include "vault/notify/follower.h"

#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "lib/io/env.h"

namespace cairn::vault {

AuditFollower::AuditFollower(const AuditLog* log, io::Env* env, std::string data_dir,
                             std::unique_ptr<AuditSink> sink, FollowerOptions options)
    : log_(log),
      env_(env),
      data_dir_(std::move(data_dir)),
      sink_(std::move(sink)),
      options_(std::move(options)) {}

AuditFollower::~AuditFollower() { Stop(); }

std::string AuditFollower::cursor_path() const {
  return data_dir_ + "/audit/" + options_.name + ".cursor";
}

Status AuditFollower::LoadCursor() {
  auto bytes = io::ReadFileToBytes(env_, cursor_path());
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) return Status::OK();  // from the first entry
    return bytes.status();
  }
  uint64_t seq = 0, offset = 0;
  const std::string text(AsString(*bytes));
  if (std::sscanf(text.c_str(), "%" SCNu64 " %" SCNu64, &seq, &offset) != 2) {
    return Status::Corruption(cursor_path() + ": not \"<seq> <offset>\"; delete it to send " +
                              "the whole audit trail again");
  }
  // The offset must be where entry seq+1 starts; if the log was replaced
  // (restored from a backup, say), find the entry by its number instead.
  std::vector<AuditEntry> next;
  uint64_t after = 0;
  Status s = log_->ReadFrom(offset, 1, &next, &after);
  if (s.ok() && (next.empty() || next.front().seq == seq + 1)) {
    cursor_seq_ = seq;
    cursor_offset_ = offset;
    return Status::OK();
  }
  uint64_t pos = 0;
  while (true) {
    next.clear();
    CAIRN_RETURN_IF_ERROR(log_->ReadFrom(pos, 1024, &next, &after));
    if (next.empty()) break;
    for (const auto& e : next) {
      if (e.seq > seq) {
        cursor_seq_ = seq;
        cursor_offset_ = pos;
        return Status::OK();
      }
      pos += e.line.size() + 1;
    }
  }
  cursor_seq_ = seq;
  cursor_offset_ = pos;
  return Status::OK();
}

Status AuditFollower::SaveCursor(uint64_t seq, uint64_t offset) {
  const std::string text = std::to_string(seq) + " " + std::to_string(offset) + "\n";
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env_, cursor_path(), AsBytes(text)));
  cursor_seq_ = seq;
  cursor_offset_ = offset;
  return Status::OK();
}

uint64_t AuditFollower::Backlog() const {
  const uint64_t head = log_->HeadSeq();
  const uint64_t done = cursor_seq_.load();
  return head > done ? head - done : 0;
}

void AuditFollower::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void AuditFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AuditFollower::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void AuditFollower::Run() {
  auto retry = options_.retry_min;
  bool failing = false;
  auto fail = [&](const Status& s) {
    if (!failing) {
      spdlog::warn("audit forwarding to {}: {}; entries wait in the audit log, retrying",
                   sink_->Describe(), s.ToString());
    }
    failing = true;
    const bool go_on = Sleep(retry);
    retry = std::min(retry * 2, options_.retry_max);
    return go_on;
  };
  if (Status s = LoadCursor(); !s.ok()) {
    spdlog::error("audit forwarding to {}: {}", sink_->Describe(), s.ToString());
    return;
  }
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    std::vector<AuditEntry> batch;
    uint64_t end = 0;
    Status read = log_->ReadFrom(cursor_offset_, options_.batch, &batch, &end);
    if (!read.ok()) {
      if (!fail(read)) return;
      continue;
    }
    if (batch.empty()) {
      if (!Sleep(options_.poll)) return;
      continue;
    }
    Status error;
    const size_t sent = sink_->Deliver(batch, &error);
    if (sent > 0) {
      uint64_t offset = cursor_offset_;
      for (size_t i = 0; i < sent; ++i) offset += batch[i].line.size() + 1;
      if (Status saved = SaveCursor(batch[sent - 1].seq, offset); !saved.ok()) {
        // Delivered but not recorded: they would go again after a restart.
        spdlog::error("audit forwarding to {}: saving the cursor: {}", sink_->Describe(),
                      saved.ToString());
        cursor_seq_ = batch[sent - 1].seq;
        cursor_offset_ = offset;
      }
    }
    if (!error.ok()) {
      if (!fail(error)) return;
      continue;
    }
    if (failing) {
      spdlog::info("audit forwarding to {} resumed (through entry {})", sink_->Describe(),
                   cursor_seq_.load());
    }
    failing = false;
    retry = options_.retry_min;
  }
}

}  // namespace cairn::vault
