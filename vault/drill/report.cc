#include "vault/drill/report.h"

#include <boost/json.hpp>

#include "lib/crypto/hash.h"
#include "lib/crypto/pki.h"

namespace cairn::vault {
namespace {

std::string KeyDigest(const std::string& pem) { return ToHex(crypto::Sha256(AsBytes(pem))); }

}  // namespace

Result<boost::json::object> SignReport(const boost::json::object& report,
                                       const std::function<Result<Bytes>(ByteView)>& sign,
                                       const std::string& public_key_pem) {
  const std::string bytes = boost::json::serialize(report);
  CAIRN_ASSIGN_OR_RETURN(Bytes signature, sign(AsBytes(bytes)));
  return boost::json::object{{"report", report},
                             {"signature", ToHex(signature)},
                             {"key_sha256", KeyDigest(public_key_pem)}};
}

Status VerifyReport(const boost::json::object& signed_report, const std::string& public_key_pem) {
  const auto* report = signed_report.if_contains("report");
  const auto* signature = signed_report.if_contains("signature");
  const auto* key = signed_report.if_contains("key_sha256");
  if (report == nullptr || !report->is_object() || signature == nullptr ||
      !signature->is_string() || key == nullptr || !key->is_string()) {
    return Status::Corruption("not a signed drill report (report, signature, key_sha256)");
  }
  if (std::string(key->as_string()) != KeyDigest(public_key_pem)) {
    return Status::Corruption("the report was signed with another key (key_sha256 " +
                              std::string(key->as_string()).substr(0, 16) + "...)");
  }
  auto sig = FromHex(std::string(signature->as_string()));
  if (!sig.ok() || sig->size() != 64) return Status::Corruption("the signature is malformed");
  const std::string bytes = boost::json::serialize(report->as_object());
  CAIRN_ASSIGN_OR_RETURN(bool good, crypto::VerifyEd25519(public_key_pem, AsBytes(bytes), *sig));
  if (!good) {
    return Status::Corruption(
        "the signature does not match the report: it was changed after the vault signed it");
  }
  return Status::OK();
}

}  // namespace cairn::vault
