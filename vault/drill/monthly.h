// The printable monthly evidence report of one department (doc/design.md
// section 23.5): one self-contained HTML file (no script runs, no network)
// that an auditor can print or archive, and that verifies offline.
//
// The file is the rendered body between the markers
//   <!--cairn-body-->  ...  <!--/cairn-body-->
// and, after it, a signed report (report.h) in
//   <script type="application/json" id="cairn-signed-report"> ... </script>
// whose body holds the month's figures and `html_sha256`, SHA-256 of the
// bytes between the markers. Changing a figure on the page breaks the hash;
// changing the JSON breaks the signature.
#ifndef CAIRN_VAULT_DRILL_MONTHLY_H_
#define CAIRN_VAULT_DRILL_MONTHLY_H_

#include <boost/json/object.hpp>
#include <string>

#include "lib/base/status.h"

namespace cairn::vault {

// The page's body for `report` (the unsigned report body: department,
// month, generated, compliance, drills, jobs). Every value is escaped.
std::string RenderMonthlyBody(const boost::json::object& report);

// The whole file: the body and its signed report.
std::string WrapMonthlyHtml(const std::string& body, const boost::json::object& signed_report);

// Splits a file made by WrapMonthlyHtml. Corruption when it is not one.
struct MonthlyParts {
  std::string body;
  boost::json::object signed_report;
};
Result<MonthlyParts> SplitMonthlyHtml(const std::string& html);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_DRILL_MONTHLY_H_
