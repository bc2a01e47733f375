// Pack files: per-department append-only files of records, tens of MiB each.
//
//   pack header (32 bytes) | record | record | ... | footer index | trailer (48 bytes)
//
// A pack is "open" while records are appended and "sealed" once the footer
// index and trailer are written; a sealed pack is immutable. The byte layout
// and ordering rules are normative in doc/design.md ("Pack format").
//
// Durability: PackWriter::Append() makes nothing durable; Sync() makes every
// appended record durable; only then may index entries naming those records
// be committed (doc/design.md, write ordering rule 2).
#ifndef CAIRN_LIB_REPO_PACK_H_
#define CAIRN_LIB_REPO_PACK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/io/env.h"
#include "lib/repo/record.h"

struct XXH3_state_s;

namespace cairn::repo {

inline constexpr uint64_t kPackMagic = 0x314b504e52494143ull;         // "CAIRNPK1"
inline constexpr uint64_t kPackTrailerMagic = 0x464b504e52494143ull;  // "CAIRNPKF"
inline constexpr uint16_t kPackVersion = 1;
inline constexpr size_t kPackHeaderSize = 32;
inline constexpr size_t kPackIndexEntrySize = 48;
inline constexpr size_t kPackTrailerSize = 48;
// Packs are sealed once they pass this size (DESIGN: "tens of MiB"): large
// enough to keep the file count low (100M chunks at 1 MiB in 32 MiB packs is
// ~3M files), small enough that compaction rewrites little.
inline constexpr uint64_t kDefaultPackTargetSize = 32ull << 20;

struct PackHeader {
  uint16_t version = kPackVersion;
  uint32_t department_id = 0;
  uint64_t pack_id = 0;
};

// Where one record sits in a pack (the footer index entry).
struct PackEntry {
  ChunkId id{};
  uint64_t offset = 0;  // of the record's first byte
  uint32_t length = 0;  // whole record, header to checksum
  RecordType type = RecordType::kData;
  uint16_t flags = 0;  // record flags (kRecordFlagZstd ...)
};

// Appends records to a new pack. One writer per pack; not thread-safe.
// After any failed call the writer is poisoned: every later call fails, and
// the file is left for RecoverPack() to truncate to its last valid record.
class PackWriter {
 public:
  // Creates `path` exclusively (O_EXCL: an existing file, even one created
  // by a racing writer, is never truncated; InvalidArgument) and writes the
  // pack header. The directory entry is durable after the first
  // Sync() (which also syncs the parent directory once).
  static Result<std::unique_ptr<PackWriter>> Create(io::Env* env, const std::string& path,
                                                    const PackHeader& header);
  // Continues an open pack that RecoverPack() has just cleaned; `recovered`
  // are the entries RecoverPack returned.
  static Result<std::unique_ptr<PackWriter>> Reopen(io::Env* env, const std::string& path,
                                                    const PackHeader& header,
                                                    std::vector<PackEntry> recovered);
  ~PackWriter();

  // Appends one encoded record (validated with ParseRecord first: the vault
  // never stores a record it could not read back). Returns its entry.
  // Records are gathered in memory and written kWriteBuffer bytes at a time
  // (one write per many small records), so a failed write may surface at a
  // later Append or at Sync(); until Sync() returns OK nothing appended is
  // promised to be on disk, nor readable through the file.
  Result<PackEntry> Append(ByteView record);
  // Writes what is gathered and makes every appended record durable.
  Status Sync();
  // Writes the footer index and trailer, syncs, and closes. Afterwards the
  // pack is immutable and PackReader can open it.
  Status Seal();
  // Gives back the space of what was appended since the last good Sync()
  // (a poisoned pack, or one dropped with it): truncates the file to its
  // synced size, which is a state a crash could leave, and closes it. The
  // writer is poisoned afterwards; start-up recovery takes the file as it
  // takes that crash. Nothing for a sealed pack.
  Status Abandon();

  uint64_t size() const { return size_; }
  const std::vector<PackEntry>& entries() const { return entries_; }
  uint64_t synced_size() const { return synced_size_; }

 private:
  PackWriter(io::Env* env, std::string path, std::unique_ptr<io::WritableFile> file);
  Status Write(ByteView data);
  // Writes the gathered bytes to the file.
  Status Spill();

  static constexpr size_t kWriteBuffer = 1 << 20;

  struct HashStateDeleter {
    void operator()(XXH3_state_s* s) const;
  };

  io::Env* env_;
  std::string path_;
  std::unique_ptr<io::WritableFile> file_;
  std::unique_ptr<XXH3_state_s, HashStateDeleter> data_hash_;  // over [0, size_)
  std::vector<PackEntry> entries_;
  Bytes gathered_;     // appended, not yet written: the last gathered_.size() bytes of size_
  uint64_t size_ = 0;  // bytes appended, written or gathered
  uint64_t synced_size_ = 0;
  bool dir_synced_ = false;
  bool sealed_ = false;
  Status poisoned_;
};

// Reads a sealed pack. Thread-safe for concurrent ReadRecord calls.
class PackReader {
 public:
  // Opens a sealed pack: checks the header, the trailer and the footer
  // index (checksums, bounds, order). Corruption if any is wrong, including
  // a pack that was never sealed.
  static Result<std::unique_ptr<PackReader>> Open(io::Env* env, const std::string& path);

  const PackHeader& header() const { return header_; }
  const std::vector<PackEntry>& entries() const { return entries_; }
  uint64_t file_size() const { return file_size_; }

  // Reads the record at `entry` into *out and validates it (ParseRecord and
  // that it is the record the index names). Corruption otherwise.
  Status ReadRecord(const PackEntry& entry, Bytes* out) const;
  // Reads the record at an offset/length from the chunk index and checks
  // that it is the chunk the index promised (`expected_id`).
  Status ReadRecordAt(uint64_t offset, uint32_t length, const ChunkId& expected_id,
                      Bytes* out) const;

  // Re-reads the whole pack: the data checksum in the trailer and every
  // record against its index entry. The scrub's unit of work.
  Status Verify() const;

 private:
  PackReader() = default;
  // Reads [offset, offset+length) within the data region and ParseRecord()s it.
  Status ReadCheckedRecord(uint64_t offset, uint32_t length, Bytes* out) const;

  std::string path_;
  std::unique_ptr<io::RandomAccessFile> file_;
  PackHeader header_;
  std::vector<PackEntry> entries_;
  uint64_t file_size_ = 0;
  uint64_t index_offset_ = 0;
  uint64_t data_checksum_ = 0;
};

struct PackRecovery {
  bool header_valid = false;       // false: no header survived; the file is now empty
  bool was_sealed = false;         // a valid footer was found; nothing was cut
  std::vector<PackEntry> entries;  // every complete, valid record kept
  PackHeader header;
  uint64_t original_size = 0;
  uint64_t recovered_size = 0;  // the file's size afterwards
};

// Recovers a pack after a crash (doc/design.md section 7).
//
// `committed_size` is how many bytes of this pack the caller has committed
// as durable (the end of the last record whose index entries it committed;
// 0 if none). Bytes below it were synced and are referenced, so damage there
// is not a torn write: RecoverPack then returns Corruption and changes
// nothing, and the pack needs repair (scrub, DR copy), never truncation.
//
// Otherwise: a pack that is sealed and verifies completely is left as it is.
// Else records are scanned from the start and the file is truncated right
// after the last complete, valid record (a partial footer goes too); a file
// without a valid header is truncated to zero bytes for the caller to
// remove. On every successful path the file and its directory are synced
// before returning, so what recovery reports as kept is durable even if the
// crash was of the process alone and the tail was still in the page cache.
// Idempotent.
Result<PackRecovery> RecoverPack(io::Env* env, const std::string& path, uint64_t committed_size);

// Parsers, exposed for the fuzzers and tests.
Result<PackHeader> ParsePackHeader(ByteView bytes);
struct PackTrailer {
  uint32_t entry_count = 0;
  uint64_t index_offset = 0;
  uint64_t index_checksum = 0;
  uint64_t data_checksum = 0;
};
Result<PackTrailer> ParsePackTrailer(ByteView bytes);
// Parses and checks a footer index against its trailer: checksum, every
// entry inside [kPackHeaderSize, index_offset), in order, not overlapping.
Result<std::vector<PackEntry>> ParsePackIndex(ByteView index, const PackTrailer& trailer);

}  // namespace cairn::repo

#endif  // CAIRN_LIB_REPO_PACK_H_
