#include "lib/crypto/pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "lib/crypto/openssl_util.h"
#include "lib/crypto/random.h"

namespace cairn::crypto {
namespace {

using internal::OpenSslError;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct ReqDeleter {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct NameDeleter {
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ExtDeleter {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using NamePtr = std::unique_ptr<X509_NAME, NameDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtDeleter>;

constexpr int kMaxValidityDays = 36500;
// X.520 upper bounds for these attributes.
constexpr size_t kMaxCommonName = 64;
constexpr size_t kMaxOrganization = 64;
constexpr size_t kMaxUnit = 64;
// Backdating of notBefore, so that a peer whose clock is a little behind the
// vault's still accepts a certificate issued a moment ago.
constexpr long kBackdateSeconds = 5 * 60;

// Never prompt on a terminal for a passphrase: an encrypted key is an error.
int NoPassword(char*, int, int, void*) { return -1; }

Status CheckField(std::string_view what, std::string_view value, size_t max) {
  if (value.empty()) return Status::InvalidArgument(std::string(what) + " is empty");
  if (value.size() > max) {
    return Status::InvalidArgument(std::string(what) + " is longer than " + std::to_string(max) +
                                   " bytes");
  }
  if (value.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " contains a NUL byte");
  }
  return Status::OK();
}

Status CheckValidity(int validity_days) {
  if (validity_days < 1 || validity_days > kMaxValidityDays) {
    return Status::InvalidArgument("validity_days must be in 1.." +
                                   std::to_string(kMaxValidityDays));
  }
  return Status::OK();
}

Result<BioPtr> MemBio(std::string_view data, std::string_view what) {
  if (data.size() > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument(std::string(what) + " is too large");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return OpenSslError("BIO_new_mem_buf");
  return bio;
}

Result<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n < 0 || data == nullptr) return OpenSslError("BIO_get_mem_data");
  return std::string(data, static_cast<size_t>(n));
}

Result<PkeyPtr> ParsePrivateKey(std::string_view pem, std::string_view what) {
  CAIRN_ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem, what));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    return OpenSslError(std::string(what) + " is not an unencrypted PEM private key",
                        StatusCode::kInvalidArgument);
  }
  return key;
}

Result<X509Ptr> ParseCertificate(std::string_view pem, std::string_view what) {
  CAIRN_ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem, what));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  if (!cert) {
    return OpenSslError(std::string(what) + " is not a PEM certificate",
                        StatusCode::kInvalidArgument);
  }
  return cert;
}

Result<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("PEM_write_bio_X509");
  return BioToString(bio.get());
}

// The digest to sign with: SHA-256, or none for keys that hash internally
// (Ed25519/Ed448, should a city CA use one).
const EVP_MD* SigningDigest(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
  return EVP_sha256();
}

// Accepts only key types and sizes that are safe today.
Status CheckPublicKey(EVP_PKEY* key, std::string_view what) {
  int id = EVP_PKEY_get_base_id(key);
  int bits = EVP_PKEY_get_bits(key);
  bool ok = (id == EVP_PKEY_EC && bits >= 256) || (id == EVP_PKEY_RSA && bits >= 2048) ||
            id == EVP_PKEY_ED25519;
  if (!ok) {
    return Status::InvalidArgument(std::string(what) + " has an unsupported key type (" +
                                   OBJ_nid2sn(id) + ", " + std::to_string(bits) +
                                   " bits); use ECDSA P-256");
  }
  return Status::OK();
}

// A random positive 128-bit serial: unpredictable serials keep an attacker
// from precomputing a colliding certificate, and never repeat in practice.
Status SetRandomSerial(X509* cert) {
  std::array<uint8_t, 16> raw;
  CAIRN_RETURN_IF_ERROR(SecureRandom(raw));
  raw[0] |= 0x01;  // a non-zero leading byte: serial_hex is always 32 digits
  BnPtr bn(BN_bin2bn(raw.data(), static_cast<int>(raw.size()), nullptr));
  if (!bn) return OpenSslError("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return OpenSslError("BN_to_ASN1_INTEGER");
  }
  return Status::OK();
}

Status AddNameEntry(X509_NAME* name, const char* field, std::string_view value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslError(std::string("set subject ") + field, StatusCode::kInvalidArgument);
  }
  return Status::OK();
}

Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return OpenSslError(std::string("build extension ") + OBJ_nid2sn(nid));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError("X509_add_ext");
  return Status::OK();
}

Status SetValidity(X509* cert, int validity_days) {
  if (X509_gmtime_adj(X509_getm_notBefore(cert), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), validity_days, 0, nullptr) == nullptr) {
    return OpenSslError("set certificate validity");
  }
  return Status::OK();
}

Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, SigningDigest(key)) <= 0) return OpenSslError("X509_sign");
  return Status::OK();
}

// The UTF-8 value of the single entry `nid` in `name`.
Result<std::string> NameEntry(const X509_NAME* name, int nid, std::string_view what) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return Status::InvalidArgument("certificate subject has no " + std::string(what));
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return Status::InvalidArgument("certificate subject has more than one " + std::string(what));
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) {
    return OpenSslError("decode subject " + std::string(what), StatusCode::kInvalidArgument);
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  if (out.empty() || out.find('\0') != std::string::npos) {
    return Status::InvalidArgument("certificate subject " + std::string(what) + " is malformed");
  }
  return out;
}

Result<PeerIdentity> IdentityFromCertificate(const X509* cert) {
  PeerIdentity id;
  const X509_NAME* subject = X509_get_subject_name(cert);
  CAIRN_ASSIGN_OR_RETURN(id.role, NameEntry(subject, NID_organizationalUnitName, "OU (role)"));
  CAIRN_ASSIGN_OR_RETURN(id.department, NameEntry(subject, NID_organizationName, "O (department)"));
  CAIRN_ASSIGN_OR_RETURN(id.host, NameEntry(subject, NID_commonName, "CN (host)"));

  BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) return OpenSslError("read serial", StatusCode::kInvalidArgument);
  Bytes raw(static_cast<size_t>(BN_num_bytes(serial.get())));
  BN_bn2bin(serial.get(), raw.data());
  id.serial_hex = raw.empty() ? "0" : ToHex(raw);

  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
    return OpenSslError("read notAfter", StatusCode::kInvalidArgument);
  }
  id.not_after_unix = static_cast<int64_t>(timegm(&tm));
  return id;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Letters, digits, '-' and '.', as host names are.
bool IsDnsName(const std::string& host) {
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return !host.empty() && host.front() != '.' && host.front() != '-';
}

}  // namespace

bool IsKnownRole(std::string_view role) {
  return role == kRoleAgent || role == kRoleReplicator || role == kRoleRestore ||
         role == kRoleVault || role == kRoleOperator || role == kRolePerson;
}

Result<KeyPairPem> GenerateKeyPair() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OpenSslError("generate P-256 key", StatusCode::kUnavailable);
  KeyPairPem out;
  BioPtr priv(BIO_new(BIO_s_mem()));
  if (!priv ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  CAIRN_ASSIGN_OR_RETURN(out.private_key_pem, BioToString(priv.get()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (!pub || PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    return OpenSslError("PEM_write_bio_PUBKEY");
  }
  CAIRN_ASSIGN_OR_RETURN(out.public_key_pem, BioToString(pub.get()));
  return out;
}

Result<KeyPairPem> GenerateSigningKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return OpenSslError("generate Ed25519 key", StatusCode::kUnavailable);
  KeyPairPem out;
  BioPtr priv(BIO_new(BIO_s_mem()));
  if (!priv ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  CAIRN_ASSIGN_OR_RETURN(out.private_key_pem, BioToString(priv.get()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (!pub || PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    return OpenSslError("PEM_write_bio_PUBKEY");
  }
  CAIRN_ASSIGN_OR_RETURN(out.public_key_pem, BioToString(pub.get()));
  return out;
}

Result<Bytes> SignEd25519(std::string_view private_key_pem, ByteView message) {
  CAIRN_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivateKey(private_key_pem, "signing key"));
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument("signing key: not an Ed25519 key");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return OpenSslError("EVP_DigestSignInit");
  }
  Bytes sig(64);
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  sig.resize(len);
  return sig;
}

Result<bool> VerifyEd25519(std::string_view public_key_pem, ByteView message, ByteView signature) {
  CAIRN_ASSIGN_OR_RETURN(BioPtr bio, MemBio(public_key_pem, "public key"));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("public key", StatusCode::kInvalidArgument);
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument("public key: not an Ed25519 key");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return OpenSslError("EVP_DigestVerifyInit");
  }
  const int ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                                  message.size());
  internal::ClearOpenSslErrors();
  return ok == 1;
}

Result<CaMaterial> CreateCa(std::string_view common_name, int validity_days) {
  CAIRN_RETURN_IF_ERROR(CheckField("CA common name", common_name, kMaxCommonName));
  CAIRN_RETURN_IF_ERROR(CheckValidity(validity_days));
  CAIRN_ASSIGN_OR_RETURN(KeyPairPem pair, GenerateKeyPair());
  CAIRN_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivateKey(pair.private_key_pem, "CA private key"));

  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");
  CAIRN_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  CAIRN_RETURN_IF_ERROR(AddNameEntry(name, "CN", common_name));
  if (X509_set_issuer_name(cert.get(), name) != 1) return OpenSslError("X509_set_issuer_name");
  CAIRN_RETURN_IF_ERROR(SetValidity(cert.get(), validity_days));
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return OpenSslError("X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  CAIRN_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  CAIRN_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  CAIRN_RETURN_IF_ERROR(Sign(cert.get(), key.get()));

  CaMaterial out;
  CAIRN_ASSIGN_OR_RETURN(out.certificate_pem, CertificateToPem(cert.get()));
  out.private_key_pem = std::move(pair.private_key_pem);
  return out;
}

Result<std::string> CreateCsr(std::string_view private_key_pem, std::string_view common_name) {
  CAIRN_RETURN_IF_ERROR(CheckField("CSR common name", common_name, kMaxCommonName));
  CAIRN_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivateKey(private_key_pem, "private key"));
  ReqPtr req(X509_REQ_new());
  if (!req) return OpenSslError("X509_REQ_new");
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) {
    return OpenSslError("X509_REQ_set_version");
  }
  NamePtr name(X509_NAME_new());
  if (!name) return OpenSslError("X509_NAME_new");
  CAIRN_RETURN_IF_ERROR(AddNameEntry(name.get(), "CN", common_name));
  if (X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return OpenSslError("build CSR");
  }
  if (X509_REQ_sign(req.get(), key.get(), SigningDigest(key.get())) <= 0) {
    return OpenSslError("sign CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslError("PEM_write_bio_X509_REQ");
  }
  return BioToString(bio.get());
}

Result<std::string> IssueCertificate(const CaMaterial& ca, std::string_view csr_pem,
                                     const PeerIdentity& identity, int validity_days,
                                     const std::vector<std::string>& extra_names) {
  if (!IsKnownRole(identity.role)) {
    return Status::InvalidArgument("unknown role \"" + identity.role + "\"");
  }
  CAIRN_RETURN_IF_ERROR(CheckField("department", identity.department, kMaxOrganization));
  CAIRN_RETURN_IF_ERROR(CheckField("host", identity.host, kMaxCommonName));
  static_assert(kMaxUnit >= 10, "roles fit in OU");
  CAIRN_RETURN_IF_ERROR(CheckValidity(validity_days));

  CAIRN_ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseCertificate(ca.certificate_pem, "CA certificate"));
  CAIRN_ASSIGN_OR_RETURN(PkeyPtr ca_key, ParsePrivateKey(ca.private_key_pem, "CA private key"));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    internal::ClearOpenSslErrors();
    return Status::InvalidArgument("CA private key does not match the CA certificate");
  }
  if (X509_check_ca(ca_cert.get()) == 0) {
    return Status::InvalidArgument("CA certificate is not a certificate authority");
  }

  CAIRN_ASSIGN_OR_RETURN(BioPtr bio, MemBio(csr_pem, "CSR"));
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassword, nullptr));
  if (!req) {
    return OpenSslError("CSR is not a PEM certificate request", StatusCode::kInvalidArgument);
  }
  EVP_PKEY* csr_key = X509_REQ_get0_pubkey(req.get());
  if (csr_key == nullptr) {
    return OpenSslError("CSR has no public key", StatusCode::kInvalidArgument);
  }
  CAIRN_RETURN_IF_ERROR(CheckPublicKey(csr_key, "CSR"));
  if (X509_REQ_verify(req.get(), csr_key) != 1) {
    internal::ClearOpenSslErrors();
    return Status::InvalidArgument(
        "CSR signature does not verify (the requester does not hold the key, or the CSR was "
        "altered)");
  }

  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");
  CAIRN_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  CAIRN_RETURN_IF_ERROR(AddNameEntry(name, "O", identity.department));
  CAIRN_RETURN_IF_ERROR(AddNameEntry(name, "OU", identity.role));
  CAIRN_RETURN_IF_ERROR(AddNameEntry(name, "CN", identity.host));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    return OpenSslError("X509_set_issuer_name");
  }
  CAIRN_RETURN_IF_ERROR(SetValidity(cert.get(), validity_days));
  // Never outlive the CA: a chain check would fail after it anyway, and the
  // operator should see the real expiry.
  if (ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(ca_cert.get())) > 0) {
    if (X509_set1_notAfter(cert.get(), X509_get0_notAfter(ca_cert.get())) != 1) {
      return OpenSslError("X509_set1_notAfter");
    }
  }
  if (X509_set_pubkey(cert.get(), csr_key) != 1) return OpenSslError("X509_set_pubkey");

  const bool vault = identity.role == kRoleVault;
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage,
                                     vault ? "clientAuth,serverAuth" : "clientAuth"));
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid"));
  if (vault) {
    // The value goes through OpenSSL's config syntax: refuse anything that
    // could smuggle a second entry or another name type.
    std::string san;
    std::vector<std::string> names = {identity.host};
    names.insert(names.end(), extra_names.begin(), extra_names.end());
    for (const std::string& alt : names) {
      if (alt == identity.host && &alt != &names[0]) continue;  // listed twice
      if (!IsIpLiteral(alt) && !IsDnsName(alt)) {
        return Status::InvalidArgument("vault host \"" + alt +
                                       "\" is neither an IP literal nor a DNS name");
      }
      if (!san.empty()) san += ",";
      san += (IsIpLiteral(alt) ? "IP:" : "DNS:") + alt;
    }
    CAIRN_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_alt_name, san));
  }
  CAIRN_RETURN_IF_ERROR(Sign(cert.get(), ca_key.get()));
  return CertificateToPem(cert.get());
}

Result<PeerIdentity> ParseIdentity(std::string_view certificate_pem) {
  CAIRN_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(certificate_pem, "certificate"));
  return IdentityFromCertificate(cert.get());
}

Result<PeerIdentity> ParseIdentityDer(ByteView certificate_der) {
  const unsigned char* p = certificate_der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size())));
  if (!cert) return OpenSslError("certificate is not valid DER", StatusCode::kInvalidArgument);
  return IdentityFromCertificate(cert.get());
}

Result<std::string> CertificateFingerprint(std::string_view certificate_pem) {
  CAIRN_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(certificate_pem, "certificate"));
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest;
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest.data(), &n) != 1) {
    return OpenSslError("X509_digest");
  }
  return ToHex(ByteView(digest.data(), n));
}

}  // namespace cairn::crypto
