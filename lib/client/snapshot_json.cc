#include "lib/client/snapshot_json.h"

#include <boost/json.hpp>

#include "lib/base/cli.h"

namespace cairn::client {

std::string ShortSnapshotId(std::string_view id) { return std::string(id.substr(0, 8)); }

boost::json::value PointInTimeJson(const proto::SnapshotStats& s) {
  if (s.pit_method.empty()) return nullptr;
  return boost::json::object{{"method", s.pit_method}, {"taken", cli::Rfc3339(s.pit_micros)}};
}

std::string PointInTimeText(const proto::SnapshotStats& s) {
  return s.pit_method.empty() ? "live" : s.pit_method;
}

boost::json::object SnapshotJson(const proto::SnapshotInfo& s) {
  boost::json::array paths(s.paths.begin(), s.paths.end());
  return boost::json::object{{"id", s.id},
                             {"short_id", ShortSnapshotId(s.id)},
                             {"host", s.hostname},
                             {"paths", std::move(paths)},
                             {"kind", s.kind == proto::SessionKind::kImage ? "image" : "files"},
                             {"time", cli::Rfc3339(s.time_micros)},
                             {"time_micros", s.time_micros},
                             {"started", cli::Rfc3339(s.stats.started_micros)},
                             {"finished", cli::Rfc3339(s.stats.finished_micros)},
                             {"files", s.stats.files},
                             {"dirs", s.stats.dirs},
                             {"bytes", s.stats.bytes},
                             {"new_bytes", s.stats.new_bytes},
                             {"new_chunks", s.stats.new_chunks},
                             {"warnings", s.stats.warnings},
                             {"point_in_time", PointInTimeJson(s.stats)},
                             {"root_tree", ToHex(s.root_tree)}};
}

}  // namespace cairn::client
