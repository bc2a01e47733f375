// doc/api.md is normative: every route the server registers is documented
// there, and every route documented there exists.
#include "vault/api/rest_api.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace cairn::vault {
namespace {

TEST(RestApiTest, EveryRouteIsDocumentedAndEveryDocumentedRouteExists) {
  std::ifstream in(std::string(CAIRN_SOURCE_DIR) + "/doc/api.md");
  ASSERT_TRUE(in) << "doc/api.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> documented;
  const std::string doc = text.str();
  std::regex heading("### `([A-Z]+) (/[^`]*)`");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), heading);
       it != std::sregex_iterator(); ++it) {
    documented.insert((*it)[1].str() + " " + (*it)[2].str());
  }
  std::set<std::string> served;
  for (const auto& r : RestApi::RouteList()) served.insert(r);
  for (const auto& r : served) EXPECT_TRUE(documented.contains(r)) << r << " is not in doc/api.md";
  for (const auto& r : documented)
    EXPECT_TRUE(served.contains(r)) << r << " is documented but not served";
  EXPECT_GE(served.size(), 25u);
}

}  // namespace
}  // namespace cairn::vault
