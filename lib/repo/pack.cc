#include "lib/repo/pack.h"

#include <xxhash.h>

#include <cstring>

namespace cairn::repo {
namespace {

// Pack header offsets (doc/design.md).
constexpr size_t kHdrMagic = 0;
constexpr size_t kHdrVersion = 8;
constexpr size_t kHdrDepartment = 12;
constexpr size_t kHdrPackId = 16;
constexpr size_t kHdrChecksum = 28;
// Footer index entry offsets.
constexpr size_t kEntId = 0;
constexpr size_t kEntOffset = 32;
constexpr size_t kEntLength = 40;
constexpr size_t kEntType = 44;
constexpr size_t kEntFlags = 46;
// Trailer offsets.
constexpr size_t kTrlMagic = 0;
constexpr size_t kTrlVersion = 8;
constexpr size_t kTrlCount = 12;
constexpr size_t kTrlIndexOffset = 16;
constexpr size_t kTrlIndexChecksum = 24;
constexpr size_t kTrlDataChecksum = 32;
constexpr size_t kTrlChecksum = 40;

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Bytes EncodePackHeader(const PackHeader& h) {
  Bytes out(kPackHeaderSize, 0);
  EncodeFixed64(out.data() + kHdrMagic, kPackMagic);
  EncodeFixed16(out.data() + kHdrVersion, h.version);
  EncodeFixed32(out.data() + kHdrDepartment, h.department_id);
  EncodeFixed64(out.data() + kHdrPackId, h.pack_id);
  EncodeFixed32(out.data() + kHdrChecksum,
                static_cast<uint32_t>(XXH3_64bits(out.data(), kHdrChecksum)));
  return out;
}

// Reads exactly out.size() bytes at offset; Corruption on a short file.
Status ReadExact(const io::RandomAccessFile& file, uint64_t offset, MutableByteView out,
                 const std::string& what) {
  CAIRN_ASSIGN_OR_RETURN(size_t n, file.Read(offset, out));
  if (n != out.size()) {
    return Status::Corruption(what + ": file ends " + std::to_string(out.size() - n) +
                              " bytes early");
  }
  return Status::OK();
}

Status CheckEntryMatches(const PackEntry& entry, const RecordHeader& h) {
  if (h.id != entry.id || h.type != entry.type || h.flags != entry.flags ||
      h.record_size() != entry.length) {
    return Status::Corruption("record at offset " + std::to_string(entry.offset) +
                              " does not match its index entry");
  }
  return Status::OK();
}

}  // namespace

Result<PackHeader> ParsePackHeader(ByteView b) {
  if (b.size() < kPackHeaderSize) return Status::Corruption("pack header truncated");
  const uint8_t* p = b.data();
  if (DecodeFixed64(p + kHdrMagic) != kPackMagic) return Status::Corruption("not a Cairn pack");
  if (DecodeFixed32(p + kHdrChecksum) != static_cast<uint32_t>(XXH3_64bits(p, kHdrChecksum))) {
    return Status::Corruption("pack header checksum mismatch");
  }
  PackHeader h;
  h.version = DecodeFixed16(p + kHdrVersion);
  if (h.version != kPackVersion) {
    return Status::Corruption("unsupported pack version " + std::to_string(h.version));
  }
  if (DecodeFixed16(p + kHdrVersion + 2) != 0 || DecodeFixed32(p + kHdrPackId + 8) != 0) {
    return Status::Corruption("pack header reserved field is not zero");
  }
  h.department_id = DecodeFixed32(p + kHdrDepartment);
  h.pack_id = DecodeFixed64(p + kHdrPackId);
  return h;
}

Result<PackTrailer> ParsePackTrailer(ByteView b) {
  if (b.size() != kPackTrailerSize) return Status::Corruption("pack trailer has the wrong size");
  const uint8_t* p = b.data();
  if (DecodeFixed64(p + kTrlMagic) != kPackTrailerMagic) {
    return Status::Corruption("pack has no footer (not sealed or cut short)");
  }
  if (DecodeFixed64(p + kTrlChecksum) != XXH3_64bits(p, kTrlChecksum)) {
    return Status::Corruption("pack trailer checksum mismatch");
  }
  if (DecodeFixed16(p + kTrlVersion) != kPackVersion) {
    return Status::Corruption("unsupported pack footer version");
  }
  if (DecodeFixed16(p + kTrlVersion + 2) != 0) {
    return Status::Corruption("pack trailer reserved field is not zero");
  }
  PackTrailer t;
  t.entry_count = DecodeFixed32(p + kTrlCount);
  t.index_offset = DecodeFixed64(p + kTrlIndexOffset);
  t.index_checksum = DecodeFixed64(p + kTrlIndexChecksum);
  t.data_checksum = DecodeFixed64(p + kTrlDataChecksum);
  if (t.index_offset < kPackHeaderSize) return Status::Corruption("pack index offset too small");
  return t;
}

Result<std::vector<PackEntry>> ParsePackIndex(ByteView index, const PackTrailer& trailer) {
  if (index.size() != static_cast<uint64_t>(trailer.entry_count) * kPackIndexEntrySize) {
    return Status::Corruption("pack index size does not match its entry count");
  }
  if (XXH3_64bits(index.data(), index.size()) != trailer.index_checksum) {
    return Status::Corruption("pack index checksum mismatch");
  }
  std::vector<PackEntry> entries;
  entries.reserve(trailer.entry_count);
  // Records tile [header end, index_offset) exactly, in order: every byte of
  // a sealed pack belongs to something that is checked.
  uint64_t expected_offset = kPackHeaderSize;
  for (uint32_t i = 0; i < trailer.entry_count; ++i) {
    const uint8_t* p = index.data() + static_cast<size_t>(i) * kPackIndexEntrySize;
    PackEntry e;
    std::memcpy(e.id.data(), p + kEntId, e.id.size());
    e.offset = DecodeFixed64(p + kEntOffset);
    e.length = DecodeFixed32(p + kEntLength);
    uint8_t type = p[kEntType];
    if (type < static_cast<uint8_t>(RecordType::kData) ||
        type > static_cast<uint8_t>(RecordType::kDelta) || p[kEntType + 1] != 0) {
      return Status::Corruption("pack index entry " + std::to_string(i) + " has a bad type");
    }
    e.type = static_cast<RecordType>(type);
    e.flags = DecodeFixed16(p + kEntFlags);
    if (e.offset != expected_offset || e.length < kRecordOverhead ||
        e.length > kRecordOverhead + kMaxRecordPlainSize ||
        e.offset + e.length > trailer.index_offset) {
      return Status::Corruption("pack index entry " + std::to_string(i) + " is out of place");
    }
    expected_offset = e.offset + e.length;
    entries.push_back(e);
  }
  if (expected_offset != trailer.index_offset) {
    return Status::Corruption("pack index does not cover the pack's records");
  }
  return entries;
}

// ---- PackWriter ----

void PackWriter::HashStateDeleter::operator()(XXH3_state_s* s) const { XXH3_freeState(s); }

PackWriter::PackWriter(io::Env* env, std::string path, std::unique_ptr<io::WritableFile> file)
    : env_(env), path_(std::move(path)), file_(std::move(file)), data_hash_(XXH3_createState()) {
  XXH3_64bits_reset(data_hash_.get());
}

PackWriter::~PackWriter() {
  if (file_) (void)file_->Close();
}

Result<std::unique_ptr<PackWriter>> PackWriter::Create(io::Env* env, const std::string& path,
                                                       const PackHeader& header) {
  auto file = env->NewExclusiveFile(path);
  if (!file.ok()) return file.status().WithContext("create pack");
  std::unique_ptr<PackWriter> w(new PackWriter(env, path, std::move(*file)));
  CAIRN_RETURN_IF_ERROR(w->Write(EncodePackHeader(header)));
  return w;
}

Result<std::unique_ptr<PackWriter>> PackWriter::Reopen(io::Env* env, const std::string& path,
                                                       const PackHeader& header,
                                                       std::vector<PackEntry> recovered) {
  // Re-hash what is on disk so the sealed trailer's data checksum covers it.
  CAIRN_ASSIGN_OR_RETURN(auto reader, env->NewRandomAccessFile(path));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, reader->Size());
  uint64_t expected = kPackHeaderSize;
  for (const auto& e : recovered) expected = e.offset + e.length;
  if (size != expected) {
    return Status::InvalidArgument("pack " + path + " was not recovered before reopening");
  }
  Bytes head(kPackHeaderSize);
  CAIRN_RETURN_IF_ERROR(ReadExact(*reader, 0, head, path));
  CAIRN_ASSIGN_OR_RETURN(PackHeader on_disk, ParsePackHeader(head));
  if (on_disk.pack_id != header.pack_id || on_disk.department_id != header.department_id) {
    return Status::InvalidArgument("pack " + path + " belongs to another pack or department");
  }
  CAIRN_ASSIGN_OR_RETURN(auto file, env->NewAppendableFile(path));
  std::unique_ptr<PackWriter> w(new PackWriter(env, path, std::move(file)));
  Bytes buf(1 << 20);
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    CAIRN_RETURN_IF_ERROR(ReadExact(*reader, off, MutableByteView(buf.data(), n), path));
    XXH3_64bits_update(w->data_hash_.get(), buf.data(), n);
    off += n;
  }
  // RecoverPack synced what is there; the first Sync() still syncs the
  // directory again, which is cheap and keeps no assumption about the caller.
  w->size_ = w->synced_size_ = size;
  w->dir_synced_ = false;
  w->entries_ = std::move(recovered);
  return w;
}

Status PackWriter::Write(ByteView data) {
  if (!poisoned_.ok()) return poisoned_;
  if (sealed_) return Status::InvalidArgument("pack " + path_ + " is sealed");
  if (gathered_.size() + data.size() > kWriteBuffer) CAIRN_RETURN_IF_ERROR(Spill());
  if (data.size() >= kWriteBuffer) {
    // Large enough to go straight to the file, without a copy.
    if (Status s = file_->Append(data); !s.ok()) {
      poisoned_ = s.WithContext("pack " + path_);
      return poisoned_;
    }
  } else {
    if (gathered_.capacity() == 0) gathered_.reserve(kWriteBuffer);
    gathered_.insert(gathered_.end(), data.begin(), data.end());
  }
  XXH3_64bits_update(data_hash_.get(), data.data(), data.size());
  size_ += data.size();
  return Status::OK();
}

Status PackWriter::Spill() {
  if (!poisoned_.ok()) return poisoned_;
  if (gathered_.empty()) return Status::OK();
  if (Status s = file_->Append(gathered_); !s.ok()) {
    poisoned_ = s.WithContext("pack " + path_);
    return poisoned_;
  }
  gathered_.clear();
  return Status::OK();
}

Result<PackEntry> PackWriter::Append(ByteView record) {
  CAIRN_ASSIGN_OR_RETURN(RecordView view, ParseRecord(record));
  PackEntry e;
  e.id = view.header.id;
  e.offset = size_;
  e.length = static_cast<uint32_t>(record.size());
  e.type = view.header.type;
  e.flags = view.header.flags;
  CAIRN_RETURN_IF_ERROR(Write(record));
  entries_.push_back(e);
  return e;
}

Status PackWriter::Sync() {
  if (!poisoned_.ok()) return poisoned_;
  if (synced_size_ == size_ && dir_synced_) return Status::OK();
  CAIRN_RETURN_IF_ERROR(Spill());
  Status s = file_->Sync();
  if (s.ok() && !dir_synced_) {
    s = env_->SyncDir(DirName(path_));
    if (s.ok()) dir_synced_ = true;
  }
  if (!s.ok()) {
    // After a failed fsync the kernel may have dropped dirty pages; nothing
    // appended since the last good sync can be trusted (the "fsyncgate" rule).
    poisoned_ = s.WithContext("sync pack " + path_);
    return poisoned_;
  }
  synced_size_ = size_;
  gathered_ = Bytes();  // an idle open pack holds no buffer
  return Status::OK();
}

Status PackWriter::Abandon() {
  if (sealed_) return Status::OK();
  if (poisoned_.ok()) poisoned_ = Status::InvalidArgument("pack " + path_ + " was abandoned");
  gathered_ = Bytes();
  if (file_) (void)file_->Close();
  file_.reset();
  return env_->TruncateFile(path_, synced_size_).WithContext("abandon pack");
}

Status PackWriter::Seal() {
  if (sealed_) return Status::OK();
  Bytes footer(entries_.size() * kPackIndexEntrySize + kPackTrailerSize, 0);
  uint8_t* p = footer.data();
  for (const auto& e : entries_) {
    std::memcpy(p + kEntId, e.id.data(), e.id.size());
    EncodeFixed64(p + kEntOffset, e.offset);
    EncodeFixed32(p + kEntLength, e.length);
    p[kEntType] = static_cast<uint8_t>(e.type);
    EncodeFixed16(p + kEntFlags, e.flags);
    p += kPackIndexEntrySize;
  }
  size_t index_size = entries_.size() * kPackIndexEntrySize;
  uint8_t* t = footer.data() + index_size;
  EncodeFixed64(t + kTrlMagic, kPackTrailerMagic);
  EncodeFixed16(t + kTrlVersion, kPackVersion);
  EncodeFixed32(t + kTrlCount, static_cast<uint32_t>(entries_.size()));
  EncodeFixed64(t + kTrlIndexOffset, size_);
  EncodeFixed64(t + kTrlIndexChecksum, XXH3_64bits(footer.data(), index_size));
  EncodeFixed64(t + kTrlDataChecksum, XXH3_64bits_digest(data_hash_.get()));
  EncodeFixed64(t + kTrlChecksum, XXH3_64bits(t, kTrlChecksum));
  CAIRN_RETURN_IF_ERROR(Write(footer));
  CAIRN_RETURN_IF_ERROR(Sync());
  sealed_ = true;
  Status s = file_->Close();
  file_.reset();
  return s;
}

// ---- PackReader ----

Result<std::unique_ptr<PackReader>> PackReader::Open(io::Env* env, const std::string& path) {
  std::unique_ptr<PackReader> r(new PackReader());
  r->path_ = path;
  CAIRN_ASSIGN_OR_RETURN(r->file_, env->NewRandomAccessFile(path));
  CAIRN_ASSIGN_OR_RETURN(r->file_size_, r->file_->Size());
  auto corrupt = [&](const Status& s) { return s.WithContext("pack " + path); };
  if (r->file_size_ < kPackHeaderSize + kPackTrailerSize) {
    return corrupt(Status::Corruption("too small to be a sealed pack"));
  }
  Bytes head(kPackHeaderSize);
  CAIRN_RETURN_IF_ERROR(ReadExact(*r->file_, 0, head, path));
  auto header = ParsePackHeader(head);
  if (!header.ok()) return corrupt(header.status());
  r->header_ = *header;

  Bytes tail(kPackTrailerSize);
  CAIRN_RETURN_IF_ERROR(ReadExact(*r->file_, r->file_size_ - kPackTrailerSize, tail, path));
  auto trailer = ParsePackTrailer(tail);
  if (!trailer.ok()) return corrupt(trailer.status());
  // Compare without adding: every operand is attacker-controlled and a sum
  // could wrap. file_size_ >= header + trailer was checked above.
  uint64_t index_size = static_cast<uint64_t>(trailer->entry_count) * kPackIndexEntrySize;
  uint64_t before_trailer = r->file_size_ - kPackTrailerSize;
  if (index_size > before_trailer - kPackHeaderSize ||
      trailer->index_offset != before_trailer - index_size) {
    return corrupt(Status::Corruption("footer does not match the file size"));
  }
  Bytes index(index_size);
  CAIRN_RETURN_IF_ERROR(ReadExact(*r->file_, trailer->index_offset, index, path));
  auto entries = ParsePackIndex(index, *trailer);
  if (!entries.ok()) return corrupt(entries.status());
  r->entries_ = std::move(*entries);
  r->index_offset_ = trailer->index_offset;
  r->data_checksum_ = trailer->data_checksum;
  return r;
}

Status PackReader::ReadRecordAt(uint64_t offset, uint32_t length, const ChunkId& expected_id,
                                Bytes* out) const {
  CAIRN_RETURN_IF_ERROR(ReadCheckedRecord(offset, length, out));
  if (ParseRecordHeader(*out)->id != expected_id) {
    out->clear();
    return Status::Corruption("pack " + path_ + " offset " + std::to_string(offset) +
                              ": record is not the chunk the index names");
  }
  return Status::OK();
}

Status PackReader::ReadCheckedRecord(uint64_t offset, uint32_t length, Bytes* out) const {
  out->clear();  // on any failure the caller is left with no bytes
  if (offset < kPackHeaderSize || length < kRecordOverhead ||
      length > kRecordOverhead + kMaxRecordPlainSize || offset > index_offset_ ||
      length > index_offset_ - offset) {
    return Status::Corruption("pack " + path_ + ": record location " + std::to_string(offset) +
                              "+" + std::to_string(length) + " is outside the pack");
  }
  out->resize(length);
  Status s = ReadExact(*file_, offset, *out, path_);
  if (s.ok()) s = ParseRecord(*out).status();
  if (!s.ok()) {
    out->clear();
    return s.WithContext("pack " + path_ + " offset " + std::to_string(offset));
  }
  return Status::OK();
}

Status PackReader::ReadRecord(const PackEntry& entry, Bytes* out) const {
  CAIRN_RETURN_IF_ERROR(ReadCheckedRecord(entry.offset, entry.length, out));
  auto header = ParseRecordHeader(*out);
  Status s = header.ok() ? CheckEntryMatches(entry, *header) : header.status();
  if (!s.ok()) {
    out->clear();
    return s.WithContext("pack " + path_);
  }
  return Status::OK();
}

Status PackReader::Verify() const {
  // Records tile the data region (ParsePackIndex checked), so hashing the
  // header and then each record in order hashes [0, index_offset).
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(),
                                                                &XXH3_freeState);
  XXH3_64bits_reset(hash.get());
  Bytes buf(kPackHeaderSize);
  CAIRN_RETURN_IF_ERROR(ReadExact(*file_, 0, buf, path_));
  XXH3_64bits_update(hash.get(), buf.data(), buf.size());
  for (const auto& e : entries_) {
    CAIRN_RETURN_IF_ERROR(ReadRecord(e, &buf));
    XXH3_64bits_update(hash.get(), buf.data(), buf.size());
  }
  if (XXH3_64bits_digest(hash.get()) != data_checksum_) {
    return Status::Corruption("pack " + path_ + ": data checksum mismatch");
  }
  return Status::OK();
}

// ---- Recovery ----

namespace {

// Makes the file's current content and its directory entry durable.
Status SyncFileAndDir(io::Env* env, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(auto file, env->NewAppendableFile(path));
  CAIRN_RETURN_IF_ERROR(file->Sync());
  CAIRN_RETURN_IF_ERROR(file->Close());
  return env->SyncDir(DirName(path));
}

bool AllZero(ByteView b) {
  for (uint8_t c : b) {
    if (c) return false;
  }
  return true;
}

}  // namespace

Result<PackRecovery> RecoverPack(io::Env* env, const std::string& path, uint64_t committed_size) {
  PackRecovery rec;
  {
    // A pack that is sealed and verifies end to end is left exactly as it is.
    // A footer that parses but does not verify (half-written, or damaged) is
    // not trusted: the records are scanned instead.
    auto sealed = PackReader::Open(env, path);
    if (sealed.ok() && (*sealed)->Verify().ok()) {
      rec.header_valid = rec.was_sealed = true;
      rec.header = (*sealed)->header();
      rec.entries = (*sealed)->entries();
      rec.original_size = rec.recovered_size = (*sealed)->file_size();
      CAIRN_RETURN_IF_ERROR(SyncFileAndDir(env, path));
      return rec;
    }
    if (!sealed.ok() && !sealed.status().IsCorruption()) return sealed.status();
  }
  CAIRN_ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  CAIRN_ASSIGN_OR_RETURN(rec.original_size, file->Size());
  auto damaged = [&](uint64_t offset, const std::string& what) {
    return Status::Corruption("pack " + path + ": " + what + " at offset " +
                              std::to_string(offset) + ", inside the " +
                              std::to_string(committed_size) +
                              " committed bytes; not truncating (repair it from a copy)");
  };
  Bytes buf(kPackHeaderSize);
  uint64_t keep = 0;
  if (rec.original_size >= kPackHeaderSize) {
    CAIRN_RETURN_IF_ERROR(ReadExact(*file, 0, buf, path));
    auto header = ParsePackHeader(buf);
    if (header.ok()) {
      rec.header_valid = true;
      rec.header = *header;
      keep = kPackHeaderSize;
    } else if (committed_size > 0 || !AllZero(buf)) {
      // A torn creation leaves a short or zero-filled header; anything else
      // (a damaged or newer-version header) is not ours to cut away.
      if (committed_size > 0) return damaged(0, "bad pack header");
      return header.status().WithContext("pack " + path + ": not truncating");
    }
  } else if (committed_size > 0) {
    return damaged(rec.original_size, "file ends");
  }
  if (rec.header_valid) {
    for (;;) {
      if (keep + kRecordHeaderSize > rec.original_size) break;
      buf.resize(kRecordHeaderSize);
      CAIRN_RETURN_IF_ERROR(ReadExact(*file, keep, buf, path));
      auto h = ParseRecordHeader(buf);
      if (!h.ok() || h->record_size() > rec.original_size - keep) break;
      buf.resize(h->record_size());
      CAIRN_RETURN_IF_ERROR(ReadExact(*file, keep, buf, path));
      if (!ParseRecord(buf).ok()) break;
      rec.entries.push_back(
          PackEntry{h->id, keep, static_cast<uint32_t>(buf.size()), h->type, h->flags});
      keep += buf.size();
    }
  }
  file.reset();
  if (keep < committed_size) return damaged(keep, "invalid or missing record");
  if (keep != rec.original_size) CAIRN_RETURN_IF_ERROR(env->TruncateFile(path, keep));
  CAIRN_RETURN_IF_ERROR(SyncFileAndDir(env, path));
  rec.recovered_size = keep;
  return rec;
}

}  // namespace cairn::repo
