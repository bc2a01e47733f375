#include "lib/chunk/rsync_delta.h"

#include <librsync.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

namespace cairn::chunk {
namespace {

constexpr size_t kOutputStep = 64 * 1024;
constexpr size_t kSignatureHeaderLen = 12;  // magic, block_len, strong_len
constexpr size_t kBlake2MaxStrongLen = 32;

thread_local std::string last_rsync_error;

void CaptureTrace(rs_loglevel level, char const* msg) {
  if (level <= RS_LOG_ERR && msg != nullptr) last_rsync_error.assign(msg, strnlen(msg, 256));
}

void InstallTraceHook() {
  static std::once_flag once;
  std::call_once(once, [] {
    rs_trace_set_level(RS_LOG_ERR);
    rs_trace_to(&CaptureTrace);
  });
  last_rsync_error.clear();
}

struct JobDeleter {
  void operator()(rs_job_t* job) const { rs_job_free(job); }
};
using JobPtr = std::unique_ptr<rs_job_t, JobDeleter>;

struct SumsetDeleter {
  void operator()(rs_signature_t* sig) const { rs_free_sumset(sig); }
};
using SignaturePtr = std::unique_ptr<rs_signature_t, SumsetDeleter>;

// One place where a librsync result becomes a Status. Bad input (anything but
// memory or parameter trouble) is Corruption: every job here parses bytes that
// came from storage or the network.
Status RsyncStatus(rs_result r, const char* what) {
  std::string msg = std::string("librsync ") + what + ": " + rs_strerror(r);
  if (!last_rsync_error.empty()) msg += " (" + last_rsync_error + ")";
  switch (r) {
    case RS_DONE:
      return Status::OK();
    case RS_MEM_ERROR:
      return Status::Unavailable(msg);
    case RS_PARAM_ERROR:
      return Status::InvalidArgument(msg);
    default:
      return Status::Corruption(msg);
  }
}

uint32_t DecodeBigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Runs `job` over all of `input` (which is the whole stream) until RS_DONE.
// Output, if `out` is non-null, is appended in steps of at most kOutputStep
// bytes; more than `max_output` bytes in total is Corruption. With a null
// `out` the job must produce nothing. Input left over after RS_DONE is
// Corruption: every stream here must be consumed exactly.
Status RunJob(rs_job_t* job, ByteView input, Bytes* out, size_t max_output, const char* what) {
  rs_buffers_t buf{};
  buf.next_in = const_cast<char*>(reinterpret_cast<const char*>(input.data()));
  buf.avail_in = input.size();
  buf.eof_in = 1;
  char dummy = 0;
  int stalls = 0;
  for (;;) {
    size_t old = 0;
    size_t room = 0;
    if (out != nullptr) {
      old = out->size();
      const size_t left = max_output - old;                 // old <= max_output (checked below)
      room = left >= kOutputStep ? kOutputStep : left + 1;  // +1 detects overflow
      out->resize(old + room);
      buf.next_out = reinterpret_cast<char*>(out->data() + old);
    } else {
      buf.next_out = &dummy;
    }
    buf.avail_out = room;
    const size_t in_before = buf.avail_in;
    const rs_result r = rs_job_iter(job, &buf);
    const size_t produced = room - buf.avail_out;
    if (out != nullptr) out->resize(old + produced);
    if (out != nullptr && out->size() > max_output) {
      return Status::Corruption(std::string("librsync ") + what + ": output exceeds " +
                                std::to_string(max_output) + " bytes");
    }
    if (r == RS_DONE) break;
    if (r != RS_BLOCKED) return RsyncStatus(r, what);
    // All input is offered with eof set and output space is available, so a
    // blocked job that moves nothing will never move again.
    if (produced == 0 && buf.avail_in == in_before) {
      if (++stalls > 2) {
        return Status::Corruption(std::string("librsync ") + what + ": stream ended early");
      }
    } else {
      stalls = 0;
    }
  }
  if (buf.avail_in != 0) {
    return Status::Corruption(std::string("librsync ") + what + ": " +
                              std::to_string(buf.avail_in) + " trailing bytes after the end");
  }
  return Status::OK();
}

// Checks that `signature` has the exact shape ComputeSignature produces, so
// that librsync never sizes buffers from an absurd header.
Status ValidateSignature(ByteView signature) {
  if (signature.size() < kSignatureHeaderLen) {
    return Status::Corruption("rsync signature: truncated header (" +
                              std::to_string(signature.size()) + " bytes)");
  }
  const uint32_t magic = DecodeBigEndian32(signature.data());
  const uint32_t block_len = DecodeBigEndian32(signature.data() + 4);
  const uint32_t strong_len = DecodeBigEndian32(signature.data() + 8);
  if (magic != RS_RK_BLAKE2_SIG_MAGIC) {
    return Status::Corruption("rsync signature: unexpected magic " + std::to_string(magic));
  }
  if (block_len < kMinRsyncBlockLen || block_len > kMaxRsyncBlockLen) {
    return Status::Corruption("rsync signature: block length " + std::to_string(block_len) +
                              " out of range");
  }
  if (strong_len < 1 || strong_len > kBlake2MaxStrongLen) {
    return Status::Corruption("rsync signature: strong sum length " + std::to_string(strong_len) +
                              " out of range");
  }
  if ((signature.size() - kSignatureHeaderLen) % (4 + strong_len) != 0) {
    return Status::Corruption("rsync signature: truncated block entry");
  }
  return Status::OK();
}

struct PatchContext {
  ByteView basis;
  bool out_of_bounds = false;
  int64_t bad_pos = 0;
  size_t bad_len = 0;
};

// librsync asks for basis bytes [pos, pos + *len) in pieces no larger than its
// output space. Point it straight into the basis (it copies from *buf), and
// refuse any piece outside it: librsync then fails the job.
rs_result CopyFromBasis(void* opaque, rs_long_t pos, size_t* len, void** buf) {
  auto* ctx = static_cast<PatchContext*>(opaque);
  const size_t size = ctx->basis.size();
  if (pos < 0 || static_cast<uint64_t>(pos) > size || *len > size - static_cast<size_t>(pos)) {
    ctx->out_of_bounds = true;
    ctx->bad_pos = pos;
    ctx->bad_len = *len;
    return RS_CORRUPT;
  }
  *buf = const_cast<uint8_t*>(ctx->basis.data() + pos);
  return RS_DONE;
}

}  // namespace

uint64_t RsyncSignatureSize(uint64_t basis_len, uint32_t block_len) {
  const uint64_t blocks = (basis_len + block_len - 1) / block_len;
  return kSignatureHeaderLen + blocks * (4 + kRsyncStrongLen);
}

Result<Bytes> ComputeSignature(ByteView basis, uint32_t block_len) {
  if (block_len < kMinRsyncBlockLen || block_len > kMaxRsyncBlockLen) {
    return Status::InvalidArgument("rsync signature: block_len " + std::to_string(block_len) +
                                   " outside [" + std::to_string(kMinRsyncBlockLen) + ", " +
                                   std::to_string(kMaxRsyncBlockLen) + "]");
  }
  InstallTraceHook();
  JobPtr job(rs_sig_begin(block_len, kRsyncStrongLen, RS_RK_BLAKE2_SIG_MAGIC));
  if (!job) return Status::Unavailable("librsync signature: cannot start job");
  Bytes sig;
  const uint64_t expected = RsyncSignatureSize(basis.size(), block_len);
  sig.reserve(expected + kOutputStep);
  CAIRN_RETURN_IF_ERROR(
      RunJob(job.get(), basis, &sig, std::numeric_limits<size_t>::max(), "signature"));
  return sig;
}

Result<Bytes> ComputeDelta(ByteView signature, ByteView new_data) {
  CAIRN_RETURN_IF_ERROR(ValidateSignature(signature));
  InstallTraceHook();
  rs_signature_t* raw_sig = nullptr;
  JobPtr load(rs_loadsig_begin(&raw_sig));
  if (!load) return Status::Unavailable("librsync loadsig: cannot start job");
  Status s = RunJob(load.get(), signature, nullptr, 0, "load signature");
  load.reset();
  SignaturePtr sig(raw_sig);  // owned even when loading failed part-way
  CAIRN_RETURN_IF_ERROR(s);
  if (!sig) return Status::Corruption("librsync load signature: no signature produced");
  if (rs_result r = rs_build_hash_table(sig.get()); r != RS_DONE) {
    return RsyncStatus(r, "build hash table");
  }
  JobPtr job(rs_delta_begin(sig.get()));
  if (!job) return Status::Unavailable("librsync delta: cannot start job");
  Bytes delta;
  CAIRN_RETURN_IF_ERROR(
      RunJob(job.get(), new_data, &delta, std::numeric_limits<size_t>::max(), "delta"));
  return delta;
}

namespace {

// librsync's delta commands (its prototab): integers big-endian.
constexpr uint8_t kOpEnd = 0x00;
constexpr uint8_t kOpLiteralN4 = 0x43;  // u32 length, then the bytes
constexpr uint8_t kOpCopyN8N4 = 0x53;   // u64 basis offset, u32 length

void PutBigEndian(Bytes* out, uint64_t v, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out->push_back(static_cast<uint8_t>(v >> shift));
  }
}

}  // namespace

Result<Bytes> ComputeAlignedDelta(ByteView old_signature, ByteView new_signature,
                                  ByteView new_data) {
  CAIRN_RETURN_IF_ERROR(ValidateSignature(old_signature));
  CAIRN_RETURN_IF_ERROR(ValidateSignature(new_signature));
  if (std::memcmp(old_signature.data() + 4, new_signature.data() + 4, 8) != 0) {
    return Status::InvalidArgument("aligned delta: the signatures differ in block length");
  }
  const uint32_t block_len = DecodeBigEndian32(new_signature.data() + 4);
  const size_t entry = 4 + DecodeBigEndian32(new_signature.data() + 8);
  const size_t old_blocks = (old_signature.size() - kSignatureHeaderLen) / entry;
  const size_t new_blocks = (new_signature.size() - kSignatureHeaderLen) / entry;
  if (new_blocks != (new_data.size() + block_len - 1) / block_len) {
    return Status::InvalidArgument("aligned delta: the signature does not describe the data");
  }
  Bytes delta;
  PutBigEndian(&delta, RS_DELTA_MAGIC, 4);
  // Runs of equal blocks become one copy, runs of changed ones one literal.
  size_t run_start = 0;
  bool run_copies = false;
  auto emit = [&](size_t end_block) {
    if (end_block == run_start) return;
    const uint64_t from = uint64_t{run_start} * block_len;
    const uint64_t to = std::min<uint64_t>(uint64_t{end_block} * block_len, new_data.size());
    if (run_copies) {
      delta.push_back(kOpCopyN8N4);
      PutBigEndian(&delta, from, 8);
      PutBigEndian(&delta, to - from, 4);
    } else {
      delta.push_back(kOpLiteralN4);
      PutBigEndian(&delta, to - from, 4);
      delta.insert(delta.end(), new_data.begin() + from, new_data.begin() + to);
    }
  };
  for (size_t i = 0; i < new_blocks; ++i) {
    const uint8_t* a = new_signature.data() + kSignatureHeaderLen + i * entry;
    const bool same =
        i < old_blocks &&
        std::memcmp(a, old_signature.data() + kSignatureHeaderLen + i * entry, entry) == 0;
    if (same != run_copies) {
      emit(i);
      run_start = i;
      run_copies = same;
    }
  }
  emit(new_blocks);
  delta.push_back(kOpEnd);
  return delta;
}

Status ApplyDelta(ByteView basis, ByteView delta, size_t max_output, Bytes* out) {
  InstallTraceHook();
  out->clear();
  PatchContext ctx{basis};
  JobPtr job(rs_patch_begin(&CopyFromBasis, &ctx));
  if (!job) return Status::Unavailable("librsync patch: cannot start job");
  Status s = RunJob(job.get(), delta, out, max_output, "patch");
  if (ctx.out_of_bounds) {
    return Status::Corruption("rsync delta copies " + std::to_string(ctx.bad_len) +
                              " bytes at offset " + std::to_string(ctx.bad_pos) +
                              ", outside the basis of " + std::to_string(basis.size()) + " bytes");
  }
  return s;
}

Result<Bytes> ApplyDelta(ByteView basis, ByteView delta, size_t max_output) {
  Bytes out;
  CAIRN_RETURN_IF_ERROR(ApplyDelta(basis, delta, max_output, &out));
  return out;
}

}  // namespace cairn::chunk
