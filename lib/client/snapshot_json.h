// The one JSON shape of a snapshot, printed by `cairn-vault snapshot list`
// and `cairn-restore snapshots` alike (and served by the REST API).
#ifndef CAIRN_LIB_CLIENT_SNAPSHOT_JSON_H_
#define CAIRN_LIB_CLIENT_SNAPSHOT_JSON_H_

#include <boost/json/object.hpp>

#include "lib/proto/messages.h"

namespace cairn::client {

// {"id", "short_id" (what people type), "host", "paths", "kind" ("files" or
// "image"), "time" (RFC 3339), "time_micros", "started", "finished",
// "files", "dirs", "bytes", "new_bytes", "new_chunks", "warnings",
// "root_tree"}.
boost::json::object SnapshotJson(const proto::SnapshotInfo& s);

// How a snapshot's data was read (doc/design.md section 24): {"method",
// "taken"} for a point-in-time view, null when it was read live.
boost::json::value PointInTimeJson(const proto::SnapshotStats& s);
// The same in a word for tables: the method, or "live".
std::string PointInTimeText(const proto::SnapshotStats& s);

// The short form of a snapshot ID: its first 8 digits.
std::string ShortSnapshotId(std::string_view id);

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_SNAPSHOT_JSON_H_
