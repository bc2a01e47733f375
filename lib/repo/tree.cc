#include "lib/repo/tree.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

namespace cairn::repo {
namespace {

using crypto::ChunkId;
using crypto::kChunkIdSize;

constexpr uint32_t kModeMask = 07777;
constexpr uint16_t kMaxXattrs = 4096;
// Smallest encodings, for bounding counts by the bytes that remain.
constexpr size_t kMinEntrySize = 1 + 1 + 1 + 4 + 4 + 4 + 1 + 1 + 8 + 2;  // fifo, 1-byte name
constexpr size_t kContentRefSize = 1 + kChunkIdSize + 8;
constexpr size_t kSliceExtraSize = 4 + kChunkIdSize;  // offset, slice_id
constexpr size_t kHoleSize = 16;
constexpr size_t kListRefSize = kChunkIdSize + 4;
constexpr size_t kMinXattrSize = 1 + 1 + 4;

bool KnownType(uint8_t t) { return t >= 1 && t <= 9; }

constexpr uint32_t kMinImageExtentSize = 64u << 10;
constexpr uint32_t kMaxImageExtentSize = 1u << 30;

bool ValidExtentSize(uint32_t n) {
  return n >= kMinImageExtentSize && n <= kMaxImageExtentSize && (n & (n - 1)) == 0;
}

bool ValidLinkPath(std::string_view path) {
  if (path.empty() || path.size() > kMaxLinkPathLen) return false;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsValidEntryName(part)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool NoNul(std::string_view s) { return s.find('\0') == std::string_view::npos; }

// Checks everything both the encoder and the decoder insist on. `what`
// prefixes the message; the caller picks the status code.
std::string CheckEntry(const TreeEntry& e) {
  if (!IsValidEntryName(e.name)) return "invalid entry name";
  if (!KnownType(static_cast<uint8_t>(e.type))) return "unknown entry type";
  const std::string where = "entry '" + e.name + "': ";
  if (e.mode & ~kModeMask) return where + "mode has bits outside 07777";
  if (e.user.size() > kMaxOwnerNameLen || e.group.size() > kMaxOwnerNameLen) {
    return where + "owner name too long";
  }
  if (e.xattrs.size() > kMaxXattrs) return where + "too many xattrs";
  for (size_t i = 0; i < e.xattrs.size(); ++i) {
    const Xattr& x = e.xattrs[i];
    if (x.name.empty() || x.name.size() > kMaxXattrNameLen || !NoNul(x.name)) {
      return where + "invalid xattr name";
    }
    if (x.value.size() > kMaxXattrValueLen) return where + "xattr value too long";
    if (i > 0 && !(e.xattrs[i - 1].name < x.name)) return where + "xattrs not sorted and unique";
  }
  const bool image = e.type == EntryType::kImage;
  const bool file = e.type == EntryType::kFile || image;
  const bool hardlink = e.type == EntryType::kHardlink;
  const bool dev = e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev;
  // Fields that do not belong to the type must be empty: they are not encoded.
  if (!file && !hardlink && e.size != 0) {
    return where + "size on a " + std::string(EntryTypeName(e.type));
  }
  if ((image || (!file && !hardlink)) && e.link_group != 0) {
    return where + "link group on a " + std::string(EntryTypeName(e.type));
  }
  if (!file && (!e.content.empty() || !e.holes.empty())) return where + "content on a non-file";
  if (!image && e.extent_size != 0) return where + "extent size on a non-image";
  if (image && !ValidExtentSize(e.extent_size)) return where + "invalid extent size";
  if (!hardlink && !e.link_path.empty()) return where + "link path on a non-hardlink";
  if (e.type != EntryType::kDir && e.subtree != ChunkId{}) return where + "subtree on a non-dir";
  if (e.type != EntryType::kSymlink && !e.symlink_target.empty()) {
    return where + "symlink target on a non-symlink";
  }
  if (!dev && (e.dev_major != 0 || e.dev_minor != 0)) return where + "device on a non-device";
  if (file) {
    uint64_t total = 0;
    for (const ContentRef& r : e.content) {
      if (r.kind != RefKind::kData && r.kind != RefKind::kList && r.kind != RefKind::kSlice) {
        return where + "unknown ref kind";
      }
      if (r.length == 0) return where + "empty content reference";
      if (r.kind == RefKind::kData && r.length > kMaxDataRefLength) {
        return where + "data reference longer than a record";
      }
      if (r.kind == RefKind::kSlice) {
        if (image) return where + "slice reference in an image";
        if (r.length > kMaxDataRefLength || r.offset > kMaxDataRefLength - r.length) {
          return where + "slice reference beyond a record";
        }
      } else if (r.offset != 0 || r.slice_id != ChunkId{}) {
        return where + "slice fields on a " +
               std::string(r.kind == RefKind::kData ? "data" : "list") + " reference";
      }
      if (total + r.length < total) return where + "content length overflows";
      total += r.length;
    }
    const bool slices = std::any_of(e.content.begin(), e.content.end(),
                                    [](const ContentRef& r) { return r.kind == RefKind::kSlice; });
    const bool lists = std::any_of(e.content.begin(), e.content.end(),
                                   [](const ContentRef& r) { return r.kind == RefKind::kList; });
    if (slices && lists) return where + "slice and list references in one file";
    uint64_t end = 0;
    for (const Hole& h : e.holes) {
      if (h.length == 0) return where + "empty hole";
      if (h.offset < end) return where + "holes overlap or are not sorted";
      if (h.offset + h.length < h.offset || h.offset + h.length > e.size) {
        return where + "hole beyond the file size";
      }
      if (image && (h.offset % e.extent_size != 0 ||
                    (h.length % e.extent_size != 0 && h.offset + h.length != e.size))) {
        return where + "image hole not made of whole extents";
      }
      end = h.offset + h.length;
      if (total + h.length < total) return where + "content length overflows";
      total += h.length;
    }
    if (total != e.size) return where + "content and holes do not add up to the size";
  }
  if (hardlink) {
    if (e.link_group == 0) return where + "hardlink without a link group";
    if (!ValidLinkPath(e.link_path)) return where + "invalid hardlink path";
  }
  if (e.type == EntryType::kSymlink) {
    if (e.symlink_target.empty() || e.symlink_target.size() > kMaxSymlinkTargetLen ||
        !NoNul(e.symlink_target)) {
      return where + "invalid symlink target";
    }
  }
  return "";
}

std::string CheckEntries(const std::vector<TreeEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string problem = CheckEntry(entries[i]);
    if (!problem.empty()) return problem;
    if (i > 0 && !(entries[i - 1].name < entries[i].name)) {
      return "entries not sorted by name or a name repeats ('" + entries[i].name + "')";
    }
  }
  return "";
}

void PutShortString8(ByteWriter& w, std::string_view s) {
  w.PutU8(static_cast<uint8_t>(s.size()));
  w.PutBytes(AsBytes(s));
}

void PutShortString16(ByteWriter& w, std::string_view s) {
  w.PutU16(static_cast<uint16_t>(s.size()));
  w.PutBytes(AsBytes(s));
}

// Content references then holes (kFile and kImage).
void PutContent(ByteWriter& w, const TreeEntry& e) {
  w.PutU32(static_cast<uint32_t>(e.content.size()));
  for (const ContentRef& r : e.content) {
    w.PutU8(static_cast<uint8_t>(r.kind));
    w.PutBytes(r.id);
    w.PutU64(r.length);
    if (r.kind == RefKind::kSlice) {
      w.PutU32(r.offset);
      w.PutBytes(r.slice_id);
    }
  }
  w.PutU32(static_cast<uint32_t>(e.holes.size()));
  for (const Hole& h : e.holes) {
    w.PutU64(h.offset);
    w.PutU64(h.length);
  }
}

void EncodeEntry(ByteWriter& w, const TreeEntry& e) {
  PutShortString8(w, e.name);
  w.PutU8(static_cast<uint8_t>(e.type));
  w.PutU32(e.mode);
  w.PutU32(e.uid);
  w.PutU32(e.gid);
  PutShortString8(w, e.user);
  PutShortString8(w, e.group);
  w.PutU64(static_cast<uint64_t>(e.mtime_ns));
  w.PutU16(static_cast<uint16_t>(e.xattrs.size()));
  for (const Xattr& x : e.xattrs) {
    PutShortString8(w, x.name);
    w.PutU32(static_cast<uint32_t>(x.value.size()));
    w.PutBytes(x.value);
  }
  switch (e.type) {
    case EntryType::kFile:
      w.PutU64(e.size);
      w.PutU64(e.link_group);
      PutContent(w, e);
      break;
    case EntryType::kHardlink:
      w.PutU64(e.size);
      w.PutU64(e.link_group);
      PutShortString16(w, e.link_path);
      break;
    case EntryType::kImage:
      w.PutU64(e.size);
      w.PutU32(e.extent_size);
      PutContent(w, e);
      break;
    case EntryType::kDir:
      w.PutBytes(e.subtree);
      break;
    case EntryType::kSymlink:
      PutShortString16(w, e.symlink_target);
      break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev:
      w.PutU32(e.dev_major);
      w.PutU32(e.dev_minor);
      break;
    case EntryType::kFifo:
    case EntryType::kSocket:
      break;
  }
}

// Decoding helpers: each returns false on truncation.
class Reader {
 public:
  explicit Reader(ByteView in) : r_(in) {}
  size_t remaining() const { return r_.remaining(); }
  bool U8(uint8_t* v) { return r_.ReadU8(v); }
  bool U16(uint16_t* v) { return r_.ReadU16(v); }
  bool U32(uint32_t* v) { return r_.ReadU32(v); }
  bool U64(uint64_t* v) { return r_.ReadU64(v); }
  bool Id(ChunkId* id) {
    ByteView v;
    if (!r_.ReadView(kChunkIdSize, &v)) return false;
    std::copy(v.begin(), v.end(), id->begin());
    return true;
  }
  bool Str(size_t n, std::string* s) {
    ByteView v;
    if (!r_.ReadView(n, &v)) return false;
    s->assign(AsString(v));
    return true;
  }
  bool Str8(std::string* s) {
    uint8_t n;
    return U8(&n) && Str(n, s);
  }
  bool Str16(std::string* s) {
    uint16_t n;
    return U16(&n) && Str(n, s);
  }
  bool Blob(size_t n, Bytes* b) {
    ByteView v;
    if (!r_.ReadView(n, &v)) return false;
    b->assign(v.begin(), v.end());
    return true;
  }

 private:
  ByteReader r_;
};

// A name from an untrusted tree, quoted for a message: printable ASCII
// as is, anything else (NUL, control bytes, UTF-8) as \xNN.
std::string QuotedName(std::string_view name) {
  std::string out = "\"";
  for (unsigned char c : name.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (name.size() > 64) out += "...";
  return out + "\"";
}

Status Bad(std::string_view what) {
  return Status::Corruption("tree object: " + std::string(what));
}

// `slices`: the object's version allows slice references; `*has_slice` is
// set when the entry holds one.
Status DecodeContent(Reader& r, bool slices, bool* has_slice, TreeEntry* e) {
  const Status truncated = Bad("truncated entry");
  uint32_t count;
  if (!r.U32(&count)) return truncated;
  if (static_cast<uint64_t>(count) * kContentRefSize > r.remaining()) return truncated;
  e->content.resize(count);
  for (ContentRef& ref : e->content) {
    uint8_t kind;
    if (!r.U8(&kind) || !r.Id(&ref.id) || !r.U64(&ref.length)) return truncated;
    if (kind < 1 || kind > 3) return Bad("unknown content reference kind");
    ref.kind = static_cast<RefKind>(kind);
    if (ref.kind == RefKind::kSlice) {
      if (!slices) return Bad("slice reference in a version 1 object");
      if (!r.U32(&ref.offset) || !r.Id(&ref.slice_id)) return truncated;
      *has_slice = true;
    }
  }
  if (!r.U32(&count)) return truncated;
  if (static_cast<uint64_t>(count) * kHoleSize > r.remaining()) return truncated;
  e->holes.resize(count);
  for (Hole& h : e->holes) {
    if (!r.U64(&h.offset) || !r.U64(&h.length)) return truncated;
  }
  return Status::OK();
}

Status DecodeEntry(Reader& r, bool slices, bool* has_slice, TreeEntry* e) {
  const Status truncated = Bad("truncated entry");
  uint8_t type;
  uint64_t mtime;
  if (!r.Str8(&e->name) || !r.U8(&type)) return truncated;
  if (!IsValidEntryName(e->name)) return Bad("invalid entry name " + QuotedName(e->name));
  if (!KnownType(type)) return Bad("unknown entry type " + std::to_string(type));
  e->type = static_cast<EntryType>(type);
  uint16_t xattr_count;
  if (!r.U32(&e->mode) || !r.U32(&e->uid) || !r.U32(&e->gid) || !r.Str8(&e->user) ||
      !r.Str8(&e->group) || !r.U64(&mtime) || !r.U16(&xattr_count)) {
    return truncated;
  }
  e->mtime_ns = static_cast<int64_t>(mtime);
  if (xattr_count > kMaxXattrs) return Bad("too many xattrs");
  if (static_cast<size_t>(xattr_count) * kMinXattrSize > r.remaining()) return truncated;
  e->xattrs.resize(xattr_count);
  for (Xattr& x : e->xattrs) {
    uint32_t len;
    if (!r.Str8(&x.name) || !r.U32(&len)) return truncated;
    if (len > kMaxXattrValueLen) return Bad("xattr value too long");
    if (!r.Blob(len, &x.value)) return truncated;
  }
  switch (e->type) {
    case EntryType::kFile:
      if (!r.U64(&e->size) || !r.U64(&e->link_group)) return truncated;
      return DecodeContent(r, slices, has_slice, e);
    case EntryType::kImage:
      if (!r.U64(&e->size) || !r.U32(&e->extent_size)) return truncated;
      return DecodeContent(r, slices, has_slice, e);
    case EntryType::kHardlink:
      if (!r.U64(&e->size) || !r.U64(&e->link_group) || !r.Str16(&e->link_path)) return truncated;
      break;
    case EntryType::kDir:
      if (!r.Id(&e->subtree)) return truncated;
      break;
    case EntryType::kSymlink:
      if (!r.Str16(&e->symlink_target)) return truncated;
      break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev:
      if (!r.U32(&e->dev_major) || !r.U32(&e->dev_minor)) return truncated;
      break;
    case EntryType::kFifo:
    case EntryType::kSocket:
      break;
  }
  return Status::OK();
}

// Reads the version and kind; `*version` is the object's.
Status CheckHeader(Reader& r, TreeObjectKind want, uint8_t* version) {
  uint8_t kind;
  if (!r.U8(version) || !r.U8(&kind)) return Bad("truncated header");
  const bool known = *version == kTreeVersion ||
                     (*version == kTreeVersionSlices && want == TreeObjectKind::kDirPart);
  if (!known) return Bad("unknown version " + std::to_string(*version));
  if (kind != static_cast<uint8_t>(want)) return Bad("unexpected object kind");
  return Status::OK();
}

size_t ContentSize(const TreeEntry& e) {
  size_t n = 4 + e.content.size() * kContentRefSize + 4 + e.holes.size() * kHoleSize;
  for (const ContentRef& r : e.content) {
    if (r.kind == RefKind::kSlice) n += kSliceExtraSize;
  }
  return n;
}

bool HasSlice(const TreeEntry& e) {
  return std::any_of(e.content.begin(), e.content.end(),
                     [](const ContentRef& r) { return r.kind == RefKind::kSlice; });
}

}  // namespace

std::string_view EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDir:
      return "dir";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kFifo:
      return "fifo";
    case EntryType::kCharDev:
      return "chardev";
    case EntryType::kBlockDev:
      return "blockdev";
    case EntryType::kSocket:
      return "socket";
    case EntryType::kImage:
      return "image";
  }
  return "unknown";
}

bool IsValidEntryName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxEntryNameLen && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && NoNul(name);
}

size_t EncodedEntrySize(const TreeEntry& e) {
  size_t n = 1 + e.name.size() + 1 + 12 + 1 + e.user.size() + 1 + e.group.size() + 8 + 2;
  for (const Xattr& x : e.xattrs) n += 1 + x.name.size() + 4 + x.value.size();
  switch (e.type) {
    case EntryType::kFile:
      n += 8 + 8 + ContentSize(e);
      break;
    case EntryType::kHardlink:
      n += 16 + 2 + e.link_path.size();
      break;
    case EntryType::kImage:
      n += 8 + 4 + ContentSize(e);
      break;
    case EntryType::kDir:
      n += kChunkIdSize;
      break;
    case EntryType::kSymlink:
      n += 2 + e.symlink_target.size();
      break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev:
      n += 8;
      break;
    default:
      break;
  }
  return n;
}

Result<Bytes> EncodeDirPart(const DirPart& part) {
  std::string problem = CheckEntries(part.entries);
  if (!problem.empty()) return Status::InvalidArgument("tree: " + problem);
  Bytes out;
  size_t size = 2 + 4 + 1 + (part.next ? kChunkIdSize : 0);
  for (const TreeEntry& e : part.entries) size += EncodedEntrySize(e);
  out.reserve(size);
  ByteWriter w(&out);
  const bool slices = std::any_of(part.entries.begin(), part.entries.end(), HasSlice);
  w.PutU8(slices ? kTreeVersionSlices : kTreeVersion);
  w.PutU8(static_cast<uint8_t>(TreeObjectKind::kDirPart));
  w.PutU32(static_cast<uint32_t>(part.entries.size()));
  for (const TreeEntry& e : part.entries) EncodeEntry(w, e);
  w.PutU8(part.next ? 1 : 0);
  if (part.next) w.PutBytes(*part.next);
  return out;
}

Result<Bytes> EncodeContentList(const ContentList& list) {
  if (list.refs.empty() || list.refs.size() > kMaxChunksPerList) {
    return Status::InvalidArgument("tree: content list must hold 1..262144 references");
  }
  Bytes out;
  out.reserve(6 + list.refs.size() * kListRefSize);
  ByteWriter w(&out);
  w.PutU8(kTreeVersion);
  w.PutU8(static_cast<uint8_t>(TreeObjectKind::kContentList));
  w.PutU32(static_cast<uint32_t>(list.refs.size()));
  for (const ContentRef& r : list.refs) {
    if (r.kind != RefKind::kData || r.length == 0 || r.length > kMaxDataRefLength) {
      return Status::InvalidArgument("tree: content list holds an invalid data reference");
    }
    w.PutBytes(r.id);
    w.PutU32(static_cast<uint32_t>(r.length));
  }
  return out;
}

Result<TreeObjectKind> PeekTreeObjectKind(ByteView object) {
  if (object.size() < 2) return Bad("truncated header");
  if (object[1] != 1 && object[1] != 2) return Bad("unknown object kind");
  if (object[0] != kTreeVersion && !(object[0] == kTreeVersionSlices && object[1] == 1)) {
    return Bad("unknown version " + std::to_string(object[0]));
  }
  return static_cast<TreeObjectKind>(object[1]);
}

Result<DirPart> DecodeDirPart(ByteView object) {
  Reader r(object);
  uint8_t version;
  CAIRN_RETURN_IF_ERROR(CheckHeader(r, TreeObjectKind::kDirPart, &version));
  uint32_t count;
  if (!r.U32(&count)) return Bad("truncated header");
  if (static_cast<uint64_t>(count) * kMinEntrySize > r.remaining()) {
    return Bad("entry count exceeds the object");
  }
  DirPart part;
  part.entries.resize(count);
  bool has_slice = false;
  for (TreeEntry& e : part.entries) {
    CAIRN_RETURN_IF_ERROR(DecodeEntry(r, version == kTreeVersionSlices, &has_slice, &e));
  }
  // One encoding per content: version 2 exactly when a slice is present.
  if (version == kTreeVersionSlices && !has_slice) return Bad("version 2 object without a slice");
  uint8_t has_next;
  if (!r.U8(&has_next)) return Bad("truncated trailer");
  if (has_next > 1) return Bad("invalid next flag");
  if (has_next) {
    ChunkId next;
    if (!r.Id(&next)) return Bad("truncated trailer");
    part.next = next;
  }
  if (r.remaining() != 0) return Bad("trailing bytes");
  std::string problem = CheckEntries(part.entries);
  if (!problem.empty()) return Bad(problem);
  return part;
}

Result<ContentList> DecodeContentList(ByteView object) {
  Reader r(object);
  uint8_t version;
  CAIRN_RETURN_IF_ERROR(CheckHeader(r, TreeObjectKind::kContentList, &version));
  uint32_t count;
  if (!r.U32(&count)) return Bad("truncated header");
  if (count == 0 || count > kMaxChunksPerList) return Bad("content list count out of range");
  if (static_cast<uint64_t>(count) * kListRefSize != r.remaining()) {
    return Bad("content list size does not match its count");
  }
  ContentList list;
  list.refs.resize(count);
  for (ContentRef& ref : list.refs) {
    uint32_t len;
    if (!r.Id(&ref.id) || !r.U32(&len)) return Bad("truncated content list");
    if (len == 0 || len > kMaxDataRefLength) return Bad("content list reference length");
    ref.kind = RefKind::kData;
    ref.length = len;
  }
  return list;
}

std::vector<std::pair<size_t, size_t>> SplitDirectory(const std::vector<TreeEntry>& entries,
                                                      size_t max_bytes) {
  // Per part: 2 header + 4 count + 1 flag + 32 next.
  constexpr size_t kPartOverhead = 2 + 4 + 1 + kChunkIdSize;
  std::vector<std::pair<size_t, size_t>> runs;
  size_t begin = 0, bytes = kPartOverhead;
  for (size_t i = 0; i < entries.size(); ++i) {
    size_t n = EncodedEntrySize(entries[i]);
    if (i > begin && bytes + n > max_bytes) {
      runs.emplace_back(begin, i);
      begin = i;
      bytes = kPartOverhead;
    }
    bytes += n;
  }
  runs.emplace_back(begin, entries.size());
  return runs;
}

}  // namespace cairn::repo
