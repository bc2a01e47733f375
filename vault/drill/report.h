// Signed drill reports (doc/design.md section 23): the evidence an auditor
// keeps. A report is one JSON object
//
//   {"report": {...}, "signature": "<Ed25519, hex>", "key_sha256": "<hex>"}
//
// where `signature` is the vault's evidence key (its audit signing key) over
// the bytes of boost::json::serialize(report). A report holds strings,
// integers, booleans, null, arrays and objects only (no floating point), so
// parsing and serialising again gives the same bytes: a report stays
// verifiable however a file re-indents it. `key_sha256` is SHA-256 of the
// public key PEM, naming which key to check it with.
#ifndef CAIRN_VAULT_DRILL_REPORT_H_
#define CAIRN_VAULT_DRILL_REPORT_H_

#include <boost/json/object.hpp>
#include <functional>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::vault {

// Wraps `report` with its signature; `sign` signs bytes (AuditLog::Sign).
Result<boost::json::object> SignReport(const boost::json::object& report,
                                       const std::function<Result<Bytes>(ByteView)>& sign,
                                       const std::string& public_key_pem);

// OK when `signed_report` (as SignReport made it, possibly re-formatted)
// verifies under `public_key_pem`; Corruption naming what is wrong (not a
// report, another key, a changed field) otherwise.
Status VerifyReport(const boost::json::object& signed_report, const std::string& public_key_pem);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_DRILL_REPORT_H_
