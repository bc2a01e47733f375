#include "restore/snapshot_tree.h"

#include <algorithm>
#include <deque>
#include <map>
#include <utility>

namespace cairn::restore {

using client::VaultLink;
namespace {

using crypto::ChunkId;

// Decrypts and checks one fetched tree object or content list.
Status OpenObject(VaultLink* link, repo::RecordDecoder* decoder, const ChunkId& id,
                  const Bytes& record, Bytes* plain) {
  repo::RecordSource source = [&](const ChunkId& want) -> Result<Bytes> {
    if (want == id) return record;
    return link->FetchRecord(want);
  };
  return repo::ReadChunk(decoder, id, source, repo::kMaxRecordPlainSize, plain);
}

// From file offset `pos` (not inside a hole), skips the holes that start
// there and then `n` bytes of data, with any holes among them; returns the
// offset reached. `*hole` is the first hole not yet passed.
uint64_t SkipData(const std::vector<repo::Hole>& holes, size_t* hole, uint64_t pos, uint64_t n) {
  while (true) {
    while (*hole < holes.size() && holes[*hole].offset <= pos) {
      pos = std::max(pos, holes[*hole].offset + holes[*hole].length);
      ++*hole;
    }
    if (n == 0) return pos;
    const uint64_t next = *hole < holes.size() ? holes[*hole].offset : UINT64_MAX;
    const uint64_t step = std::min(n, next - pos);
    pos += step;
    n -= step;
  }
}

struct PartWork {
  uint32_t dir;  // kNoParent: the root
  ChunkId id;
};

}  // namespace

Result<SnapshotTree> LoadTree(VaultLink* link, repo::RecordDecoder* decoder, const ChunkId& root) {
  SnapshotTree tree;
  auto path_of = [&](uint32_t dir) {
    return dir == kNoParent ? std::string() : tree.nodes[dir].path;
  };
  auto problem = [&](uint32_t node, const ChunkId& id, Status s) {
    if (node != kNoParent) tree.nodes[node].complete = false;
    tree.problems.push_back({path_of(node), id, std::move(s)});
  };
  // Files whose content names lists: resolved after the directories.
  std::vector<uint32_t> listed_files;

  // Breadth first, in a stream: the vault reads the next parts while these
  // are decoded, and a part's subdirectories join the stream as it is.
  VaultLink::RecordStream stream(link);
  std::deque<PartWork> parts;  // in the stream's order
  auto add = [&](PartWork w) {
    stream.Add(w.id);
    parts.push_back(w);
  };
  add({kNoParent, root});
  while (!parts.empty()) {
    CAIRN_ASSIGN_OR_RETURN(Result<Bytes> record, stream.Next());
    const PartWork w = parts.front();
    parts.pop_front();
    if (!record.ok()) {
      problem(w.dir, w.id, record.status());
      continue;
    }
    Bytes plain;
    Status s = OpenObject(link, decoder, w.id, *record, &plain);
    Result<repo::DirPart> part = s.ok() ? repo::DecodeDirPart(plain) : Result<repo::DirPart>(s);
    if (!part.ok()) {
      problem(w.dir, w.id, part.status());
      continue;
    }
    ++tree.objects;
    const std::string base = path_of(w.dir);
    for (repo::TreeEntry& e : part->entries) {
      // The decoder refuses bad names; check again before a name can
      // reach a file system call (defence in depth).
      if (!repo::IsValidEntryName(e.name)) {
        problem(w.dir, w.id, Status::Corruption("tree object: invalid entry name"));
        continue;
      }
      TreeNode node;
      node.parent = w.dir;
      node.path = base.empty() ? e.name : base + "/" + e.name;
      const uint32_t index = static_cast<uint32_t>(tree.nodes.size());
      if (e.type == repo::EntryType::kDir) add({index, e.subtree});
      bool has_lists = false, has_slices = false;
      if (e.type == repo::EntryType::kFile || e.type == repo::EntryType::kImage) {
        // Data references with the file offset of their first byte. A
        // chunk may straddle holes (the agent chunks the data with the
        // holes left out); SegmentsOf() splits it again for writing.
        uint64_t offset = 0;
        size_t hole = 0;
        for (const repo::ContentRef& ref : e.content) {
          offset = SkipData(e.holes, &hole, offset, 0);
          if (ref.kind == repo::RefKind::kList) has_lists = true;
          if (ref.kind == repo::RefKind::kSlice) has_slices = true;
          node.data.push_back(
              {ref.id, offset, ref.length, ref.offset, ref.kind == repo::RefKind::kSlice});
          offset = SkipData(e.holes, &hole, offset, ref.length);
        }
      }
      std::vector<repo::ContentRef> refs = std::move(e.content);
      node.entry = std::move(e);
      node.entry.content.clear();
      if (has_slices) node.entry.content = std::move(refs);  // for the slice IDs
      if (has_lists) {
        // Kept until the list kinds are resolved below.
        node.entry.content = std::move(refs);
        listed_files.push_back(index);
      }
      tree.nodes.push_back(std::move(node));
      if (w.dir == kNoParent) {
        tree.top.push_back(index);
      } else {
        tree.nodes[w.dir].children.push_back(index);
      }
    }
    if (part->next) add({w.dir, *part->next});
  }

  // Content lists: fetch each once, then rebuild the files' data.
  std::map<ChunkId, Result<std::vector<repo::ContentRef>>> lists;
  for (uint32_t f : listed_files) {
    for (const repo::ContentRef& ref : tree.nodes[f].entry.content) {
      if (ref.kind == repo::RefKind::kList) lists.emplace(ref.id, Status::Unavailable(""));
    }
  }
  if (!lists.empty()) {
    std::vector<ChunkId> ids;
    for (const auto& [id, unused] : lists) ids.push_back(id);
    CAIRN_ASSIGN_OR_RETURN(std::vector<Result<Bytes>> records, link->FetchRecords(ids));
    for (size_t i = 0; i < ids.size(); ++i) {
      Result<std::vector<repo::ContentRef>>& out = lists.at(ids[i]);
      if (!records[i].ok()) {
        out = records[i].status();
        continue;
      }
      Bytes plain;
      Status s = OpenObject(link, decoder, ids[i], *records[i], &plain);
      Result<repo::ContentList> list =
          s.ok() ? repo::DecodeContentList(plain) : Result<repo::ContentList>(s);
      if (!list.ok()) {
        out = list.status();
        continue;
      }
      ++tree.objects;
      out = std::move(list->refs);
    }
  }
  for (uint32_t f : listed_files) {
    TreeNode& node = tree.nodes[f];
    std::vector<TreeNode::Data> data;
    for (size_t r = 0; r < node.entry.content.size(); ++r) {
      const repo::ContentRef& ref = node.entry.content[r];
      const uint64_t start = node.data[r].offset;
      if (ref.kind == repo::RefKind::kData) {
        data.push_back(node.data[r]);
        continue;
      }
      const auto& list = lists.at(ref.id);
      uint64_t sum = 0;
      if (list.ok()) {
        for (const repo::ContentRef& d : *list) sum += d.length;
      }
      if (!list.ok() || sum != ref.length) {
        problem(f, ref.id,
                list.ok() ? Status::Corruption("content list holds " + std::to_string(sum) +
                                               " bytes, the file entry says " +
                                               std::to_string(ref.length))
                          : list.status());
        continue;
      }
      uint64_t offset = start;
      size_t hole = 0;
      for (const repo::ContentRef& d : *list) {
        offset = SkipData(node.entry.holes, &hole, offset, 0);
        data.push_back({d.id, offset, d.length});
        offset = SkipData(node.entry.holes, &hole, offset, d.length);
      }
    }
    node.data = std::move(data);
    node.entry.content.clear();
    node.entry.content.shrink_to_fit();
  }
  return tree;
}

const crypto::ChunkId& DataIdOf(const TreeNode& node, size_t i) {
  const TreeNode::Data& d = node.data[i];
  if (d.slice && i < node.entry.content.size()) return node.entry.content[i].slice_id;
  return d.id;
}

std::vector<Segment> SegmentsOf(const repo::TreeEntry& entry, uint64_t offset, uint64_t length) {
  std::vector<Segment> out;
  const auto& holes = entry.holes;
  // The first hole that ends after `offset`.
  auto it =
      std::upper_bound(holes.begin(), holes.end(), offset,
                       [](uint64_t off, const repo::Hole& h) { return off < h.offset + h.length; });
  uint64_t pos = offset, done = 0;
  while (done < length) {
    if (it != holes.end() && it->offset <= pos) {
      pos = it->offset + it->length;
      ++it;
      continue;
    }
    const uint64_t next = it != holes.end() ? it->offset : UINT64_MAX;
    const uint64_t n = std::min(length - done, next - pos);
    out.push_back({pos, done, n});
    pos += n;
    done += n;
  }
  return out;
}

uint32_t FindNode(const SnapshotTree& tree, std::string_view path) {
  const std::vector<uint32_t>* level = &tree.top;
  uint32_t found = kNoParent;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view name = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (name.empty()) continue;
    found = kNoParent;
    for (uint32_t i : *level) {
      if (tree.nodes[i].entry.name == name) {
        found = i;
        break;
      }
    }
    if (found == kNoParent) return kNoParent;
    level = &tree.nodes[found].children;
  }
  return found;
}

}  // namespace cairn::restore
