// Tree objects: the encrypted directory listings of a snapshot.
//
// A snapshot is a tree of tree objects. Each tree object is the plaintext of
// one kTree record (record.h) and lists the entries of one directory, sorted
// by name (bytewise), with everything a restore needs: type, mode, owner,
// times, size, content (chunk IDs), symlink targets, device numbers, xattrs
// and hard-link groups. The byte layout is normative and lives in
// doc/design.md section 9; this file implements it.
//
// Encoding is deterministic: the same entries always give the same bytes,
// hence the same chunk ID, so an unchanged directory deduplicates and costs
// one chunk ID in the next snapshot's manifest and nothing else.
//
// Two object kinds share the format (the kind byte after the version):
//   - a directory part (kDirPart): up to kMaxTreeObjectBytes of entries and an
//     optional `next` ID. A directory whose entries do not fit in one object
//     is a chain of parts, each holding a contiguous run of the sorted
//     entries (SplitDirectory decides where, deterministically).
//   - a content list (kContentList): the chunk references of one large file,
//     so that a file of any size never makes a directory object overflow. A
//     file entry then holds list references instead of data references.
//
// Decode() takes untrusted bytes (a restore reads them from a vault that
// could be hostile or damaged after decryption failures are ruled out): it
// never reads past its input, bounds every count by the bytes that remain
// before allocating, rejects unknown versions/kinds/types/flags, names that
// a restore could misuse ('/', NUL, "." and "..", empty, > 255 bytes),
// unsorted or duplicate names, and trailing bytes, and reports all of it as
// Corruption. Encode(Decode(b)) == b for every accepted b (fuzzed in
// tests/fuzz/tree_fuzz.cc). A restorer must still check names again when it
// creates files (defence in depth).
//
// Pure functions and value types; thread-safe.
#ifndef CAIRN_LIB_REPO_TREE_H_
#define CAIRN_LIB_REPO_TREE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"

namespace cairn::repo {

inline constexpr uint8_t kTreeVersion = 1;
// The version of a directory part that holds a slice reference (RefKind::
// kSlice): readers that predate slices refuse it as an unknown version
// instead of misreading it. Every other object, and a directory part
// without slices, stays version 1, so it keeps its bytes and its chunk ID.
inline constexpr uint8_t kTreeVersionSlices = 2;

// Object kinds (byte 1 of every tree object).
enum class TreeObjectKind : uint8_t {
  kDirPart = 1,
  kContentList = 2,
};

// Entry types. The values are on disk.
enum class EntryType : uint8_t {
  kFile = 1,
  kDir = 2,
  kSymlink = 3,
  kHardlink = 4,  // a further name of a file recorded earlier in the snapshot
  kFifo = 5,
  kCharDev = 6,
  kBlockDev = 7,
  kSocket = 8,
  // A block device or disk image backed up in image mode (agent/
  // image_backup.h): content in fixed aligned extents of `extent_size`.
  kImage = 9,
};

// Stable lower-case name ("file", "dir", ...), "unknown" otherwise.
std::string_view EntryTypeName(EntryType type);

// Limits the decoder enforces (and the encoder's callers respect).
inline constexpr size_t kMaxEntryNameLen = 255;       // NAME_MAX
inline constexpr size_t kMaxOwnerNameLen = 255;       // user and group names
inline constexpr size_t kMaxSymlinkTargetLen = 4095;  // PATH_MAX - 1
inline constexpr size_t kMaxLinkPathLen = 4096;
inline constexpr size_t kMaxXattrNameLen = 255;     // XATTR_NAME_MAX
inline constexpr size_t kMaxXattrValueLen = 65536;  // XATTR_SIZE_MAX
// Largest plaintext of a tree object the writer produces. Half a record's
// maximum, so one oversized entry still fits as a part of its own.
inline constexpr size_t kMaxTreeObjectBytes = 8u << 20;
// A file with more data chunks than this stores them in content lists.
inline constexpr size_t kMaxInlineChunks = 4096;
// Data references per content list object (about 9.4 MB encoded).
inline constexpr size_t kMaxChunksPerList = 262144;
// Per-chunk cap: a record's plaintext (record.h kMaxRecordPlainSize).
inline constexpr uint64_t kMaxDataRefLength = 16u << 20;

// One reference in a file's content. A data reference names a kData record
// holding `length` bytes of the file; a list reference names a content list
// object whose data references sum to `length`. A slice reference names a
// kData record holding several small files end to end (a group, written by
// the agent for the small files of one directory): the file's bytes are
// [offset, offset + length) of that record's plaintext, and `slice_id` is
// the chunk ID those bytes alone would have (so they can be checked, and
// compared with a file on disk, without the rest of the group). Slices
// appear only in kFile entries, never in content lists, and never in an
// entry that also holds list references.
enum class RefKind : uint8_t { kData = 1, kList = 2, kSlice = 3 };
struct ContentRef {
  RefKind kind = RefKind::kData;
  crypto::ChunkId id{};
  uint64_t length = 0;  // > 0; <= kMaxDataRefLength for data references
  // kSlice only (zero otherwise): offset + length <= kMaxDataRefLength.
  uint32_t offset = 0;
  crypto::ChunkId slice_id{};
  friend bool operator==(const ContentRef&, const ContentRef&) = default;
};

// A hole of a sparse file: [offset, offset + length) reads as zeros and is
// not stored. Holes are sorted, non-adjacent-free (they may touch), never
// overlap, and lie within the file's size.
struct Hole {
  uint64_t offset = 0;
  uint64_t length = 0;  // > 0
  friend bool operator==(const Hole&, const Hole&) = default;
};

struct Xattr {
  std::string name;  // 1..255 bytes, no NUL; sorted and unique within an entry
  Bytes value;       // <= 64 KiB
  friend bool operator==(const Xattr&, const Xattr&) = default;
};

// One directory entry. Fields not listed for a type must be left at their
// defaults (Encode writes only the type's fields, so anything else would not
// survive a round trip).
struct TreeEntry {
  std::string name;  // a valid name (IsValidEntryName)
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string user;  // owner names, empty when unknown; <= 255 bytes
  std::string group;
  int64_t mtime_ns = 0;  // nanoseconds since the Unix epoch
  std::vector<Xattr> xattrs;

  // kFile, kHardlink and kImage: the size in bytes.
  uint64_t size = 0;
  // kFile and kImage: the data in file order with the holes left out. Laid
  // end to end, the referenced bytes fill exactly the ranges of [0, size)
  // that no hole covers, so sum(content lengths) + sum(hole lengths) == size.
  // In a kImage entry each data reference is one whole extent and names a
  // kData or a kDelta record holding that extent's content (doc/design.md
  // section 10), and every hole is a run of whole extents.
  std::vector<ContentRef> content;
  std::vector<Hole> holes;
  // kImage: the extent size, a power of two in [64 KiB, 1 GiB].
  uint32_t extent_size = 0;
  // kFile and kHardlink: 0 for a file with a single name; otherwise an
  // opaque key shared by every name of one inode in this snapshot.
  uint64_t link_group = 0;
  // kHardlink: where the group's first name (a kFile entry with the same
  // link_group, earlier in depth-first, name-sorted order) is, as names
  // joined by '/' from the snapshot's root tree. link_group is non-zero.
  std::string link_path;
  // kDir: the ID of the directory's first tree object.
  crypto::ChunkId subtree{};
  // kSymlink: the target, 1..4095 bytes, no NUL; never interpreted.
  std::string symlink_target;
  // kCharDev and kBlockDev.
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;

  friend bool operator==(const TreeEntry&, const TreeEntry&) = default;
};

// One directory part: a sorted run of entries and the next part, if any.
struct DirPart {
  std::vector<TreeEntry> entries;
  std::optional<crypto::ChunkId> next;
  friend bool operator==(const DirPart&, const DirPart&) = default;
};

// A content list: data references only.
struct ContentList {
  std::vector<ContentRef> refs;  // all kData, 1..kMaxChunksPerList
  friend bool operator==(const ContentList&, const ContentList&) = default;
};

// Whether `name` can be a directory entry: 1..255 bytes, no '/', no NUL,
// not "." or "..".
bool IsValidEntryName(std::string_view name);

// Encodes a part. Checks what the decoder would refuse (names, order,
// limits, per-type fields) and returns InvalidArgument instead of bytes a
// reader would reject.
Result<Bytes> EncodeDirPart(const DirPart& part);
Result<Bytes> EncodeContentList(const ContentList& list);

// The kind of a tree object (its first two bytes); Corruption if unknown.
Result<TreeObjectKind> PeekTreeObjectKind(ByteView object);
Result<DirPart> DecodeDirPart(ByteView object);
Result<ContentList> DecodeContentList(ByteView object);

// Bytes the entry takes in a DirPart encoding (for splitting).
size_t EncodedEntrySize(const TreeEntry& entry);

// Splits a sorted entry list into runs whose parts each encode to at most
// `max_bytes` (an entry larger than that gets a part of its own). Returns
// the runs as [begin, end) index pairs, at least one (an empty directory is
// one empty part). Deterministic in the entries.
std::vector<std::pair<size_t, size_t>> SplitDirectory(const std::vector<TreeEntry>& entries,
                                                      size_t max_bytes = kMaxTreeObjectBytes);

}  // namespace cairn::repo

#endif  // CAIRN_LIB_REPO_TREE_H_
