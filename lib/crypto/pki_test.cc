#include "lib/crypto/pki.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>

namespace cairn::crypto {
namespace {

// Test-side OpenSSL helpers: the checks below use OpenSSL directly, so that
// they do not trust the code under test to judge its own output.
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr ReadCert(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), (int)pem.size()),
                                                BIO_free);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// X509_verify_cert of `leaf` against the single trust anchor `ca`.
bool Verifies(const std::string& ca_pem, const std::string& leaf_pem, int purpose) {
  X509Ptr ca = ReadCert(ca_pem);
  X509Ptr leaf = ReadCert(leaf_pem);
  if (!ca || !leaf) return false;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  return X509_verify_cert(ctx.get()) == 1;
}

std::string Subject(const std::string& pem) {
  X509Ptr cert = ReadCert(pem);
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert.get()), buf, sizeof(buf));
  return buf;
}

// Re-encodes a PEM block after `mutate` changed its DER bytes.
std::string MutateDer(const std::string& pem, void (*mutate)(std::string&)) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_mem_buf(pem.data(), (int)pem.size()),
                                               BIO_free);
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (PEM_read_bio(in.get(), &name, &header, &data, &len) != 1) return "";
  std::string der(reinterpret_cast<char*>(data), (size_t)len);
  mutate(der);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio(out.get(), name, header, reinterpret_cast<unsigned char*>(der.data()),
                (long)der.size());
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  char* text = nullptr;
  long n = BIO_get_mem_data(out.get(), &text);
  return std::string(text, (size_t)n);
}

// A CSR that claims to be a vault CA in another department.
std::string HostileCsr(const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem.data(), (int)key_pem.size()), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char*)"police", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char*)"vault", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)"impostor", -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts,
                         X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "CA:TRUE"));
  X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509_REQ(out.get(), req.get());
  char* text = nullptr;
  long n = BIO_get_mem_data(out.get(), &text);
  return std::string(text, (size_t)n);
}

PeerIdentity AgentIdentity() {
  PeerIdentity id;
  id.role = "agent";
  id.department = "finance";
  id.host = "fin-srv-01";
  return id;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa("Cairn Test CA", 3650);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = *ca;
    auto keys = GenerateKeyPair();
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = *keys;
  }

  std::string Issue(const PeerIdentity& id, const std::string& csr_common_name = "fin-srv-01") {
    auto csr = CreateCsr(keys_.private_key_pem, csr_common_name);
    EXPECT_TRUE(csr.ok()) << csr.status().ToString();
    auto cert = IssueCertificate(ca_, *csr, id, 365);
    EXPECT_TRUE(cert.ok()) << cert.status().ToString();
    return cert.ok() ? *cert : "";
  }

  CaMaterial ca_;
  KeyPairPem keys_;
};

TEST_F(PkiTest, KeyPairIsPemP256) {
  EXPECT_NE(keys_.private_key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(keys_.public_key_pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  auto other = GenerateKeyPair();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->private_key_pem, keys_.private_key_pem);
}

TEST_F(PkiTest, CaIsSelfSignedCa) {
  X509Ptr ca = ReadCert(ca_.certificate_pem);
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  EXPECT_NE(X509_get_extension_flags(ca.get()) & EXFLAG_CA, 0u);
  EXPECT_NE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN, 0u);
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(ca.get()), nullptr);
}

TEST_F(PkiTest, IssueChainAndIdentityRoundTrip) {
  std::string cert = Issue(AgentIdentity());
  auto id = ParseIdentity(cert);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->role, "agent");
  EXPECT_EQ(id->department, "finance");
  EXPECT_EQ(id->host, "fin-srv-01");
  EXPECT_EQ(id->serial_hex.size(), 32u);
  EXPECT_EQ(id->serial_hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_NEAR(static_cast<double>(id->not_after_unix), static_cast<double>(now + 365 * 86400),
              600.0);

  // A second certificate for the same identity gets a fresh serial.
  auto id2 = ParseIdentity(Issue(AgentIdentity()));
  ASSERT_TRUE(id2.ok());
  EXPECT_NE(id2->serial_hex, id->serial_hex);

  X509Ptr leaf = ReadCert(cert);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_NE(X509_get_extended_key_usage(leaf.get()) & XKU_SSL_CLIENT, 0u);
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()) & XKU_SSL_SERVER, 0u);
}

TEST_F(PkiTest, VerifiesAgainstItsCaOnlyAndAgentIsNoServer) {
  std::string cert = Issue(AgentIdentity());
  EXPECT_TRUE(Verifies(ca_.certificate_pem, cert, X509_PURPOSE_SSL_CLIENT));
  // An agent certificate cannot be used to impersonate a vault.
  EXPECT_FALSE(Verifies(ca_.certificate_pem, cert, X509_PURPOSE_SSL_SERVER));
  auto other = CreateCa("Another CA", 3650);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(Verifies(other->certificate_pem, cert, X509_PURPOSE_SSL_CLIENT));
}

TEST_F(PkiTest, VaultCertificateHasIpSanAndServerAuth) {
  PeerIdentity id{"vault", "site-a", "127.0.0.1", "", 0};
  std::string cert = Issue(id, "anything");
  EXPECT_TRUE(Verifies(ca_.certificate_pem, cert, X509_PURPOSE_SSL_SERVER));
  X509Ptr leaf = ReadCert(cert);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.1", 0), 1);
  EXPECT_NE(X509_check_ip_asc(leaf.get(), "127.0.0.2", 0), 1);

  PeerIdentity named{"vault", "site-a", "vault.city.example", "", 0};
  X509Ptr dns = ReadCert(Issue(named));
  EXPECT_EQ(X509_check_host(dns.get(), "vault.city.example", 0, 0, nullptr), 1);

  PeerIdentity smuggled{"vault", "site-a", "a.example,IP:10.0.0.1", "", 0};
  auto csr = CreateCsr(keys_.private_key_pem, "x");
  ASSERT_TRUE(csr.ok());
  auto refused = IssueCertificate(ca_, *csr, smuggled, 30);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, CsrSubjectAndExtensionsAreIgnored) {
  std::string csr = HostileCsr(keys_.private_key_pem);
  ASSERT_NE(csr.find("CERTIFICATE REQUEST"), std::string::npos);
  auto cert = IssueCertificate(ca_, csr, AgentIdentity(), 30);
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto id = ParseIdentity(*cert);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->role, "agent");
  EXPECT_EQ(id->department, "finance");
  EXPECT_EQ(id->host, "fin-srv-01");
  std::string subject = Subject(*cert);
  EXPECT_EQ(subject.find("impostor"), std::string::npos) << subject;
  EXPECT_EQ(subject.find("police"), std::string::npos) << subject;
  X509Ptr leaf = ReadCert(*cert);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);  // the CA:TRUE request was not honoured
}

TEST_F(PkiTest, TamperedCsrIsRefused) {
  auto csr = CreateCsr(keys_.private_key_pem, "fin-srv-01");
  ASSERT_TRUE(csr.ok());
  // The last DER byte is inside the signature value.
  std::string tampered = MutateDer(*csr, [](std::string& der) { der.back() ^= 0x01; });
  ASSERT_FALSE(tampered.empty());
  auto cert = IssueCertificate(ca_, tampered, AgentIdentity(), 30);
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cert.status().message().find("CSR"), std::string::npos) << cert.status().ToString();
}

TEST_F(PkiTest, WrongCaKeyIsRefused) {
  auto other = CreateCa("Another CA", 3650);
  ASSERT_TRUE(other.ok());
  CaMaterial mixed{ca_.certificate_pem, other->private_key_pem};
  auto csr = CreateCsr(keys_.private_key_pem, "x");
  ASSERT_TRUE(csr.ok());
  auto cert = IssueCertificate(mixed, *csr, AgentIdentity(), 30);
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cert.status().message().find("does not match"), std::string::npos);

  // A leaf certificate cannot act as a CA.
  std::string leaf = Issue(AgentIdentity());
  CaMaterial not_ca{leaf, keys_.private_key_pem};
  auto refused = IssueCertificate(not_ca, *csr, AgentIdentity(), 30);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, BadIdentityIsRefused) {
  auto csr = CreateCsr(keys_.private_key_pem, "x");
  ASSERT_TRUE(csr.ok());
  PeerIdentity id = AgentIdentity();
  id.role = "admin";
  EXPECT_EQ(IssueCertificate(ca_, *csr, id, 30).status().code(), StatusCode::kInvalidArgument);
  id = AgentIdentity();
  id.department.clear();
  EXPECT_EQ(IssueCertificate(ca_, *csr, id, 30).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueCertificate(ca_, *csr, AgentIdentity(), 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCa("", 30).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, FingerprintIsStableSha256Hex) {
  auto a = CertificateFingerprint(ca_.certificate_pem);
  auto b = CertificateFingerprint(ca_.certificate_pem);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);

  X509Ptr cert = ReadCert(ca_.certificate_pem);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ASSERT_EQ(X509_digest(cert.get(), EVP_sha256(), md, &n), 1);
  EXPECT_EQ(*a, ToHex(ByteView(md, n)));

  auto other = CreateCa("Cairn Test CA", 3650);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*CertificateFingerprint(other->certificate_pem), *a);
}

TEST_F(PkiTest, GarbagePemIsRefused) {
  const std::string garbage =
      "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
      "-----END CERTIFICATE-----\n";
  for (const std::string& input : {std::string(), std::string("hello"), garbage}) {
    EXPECT_EQ(ParseIdentity(input).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(CertificateFingerprint(input).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(CreateCsr(input, "x").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(IssueCertificate(ca_, input, AgentIdentity(), 30).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(IssueCertificate(CaMaterial{input, ca_.private_key_pem},
                               *CreateCsr(keys_.private_key_pem, "x"), AgentIdentity(), 30)
                  .status()
                  .code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ParseIdentityDer(AsBytes("\x30\x03\x02\x01")).status().code(),
            StatusCode::kInvalidArgument);
  // A CA certificate has no role or department: not a peer identity.
  auto ca_id = ParseIdentity(ca_.certificate_pem);
  ASSERT_FALSE(ca_id.ok());
  EXPECT_NE(ca_id.status().message().find("OU"), std::string::npos);
}

TEST(SigningTest, Ed25519SignsAndVerifies) {
  auto key = GenerateSigningKey();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  Bytes msg = {'a', 'u', 'd', 'i', 't'};
  auto sig = SignEd25519(key->private_key_pem, msg);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(*VerifyEd25519(key->public_key_pem, msg, *sig));
  Bytes tampered = msg;
  tampered[0] ^= 1;
  EXPECT_FALSE(*VerifyEd25519(key->public_key_pem, tampered, *sig));
  Bytes bad_sig = *sig;
  bad_sig[10] ^= 1;
  EXPECT_FALSE(*VerifyEd25519(key->public_key_pem, msg, bad_sig));
  auto other = GenerateSigningKey();
  EXPECT_FALSE(*VerifyEd25519(other->public_key_pem, msg, *sig));
  // A P-256 key is not an Ed25519 key.
  auto ec = GenerateKeyPair();
  EXPECT_TRUE(SignEd25519(ec->private_key_pem, msg).status().IsInvalidArgument());
  EXPECT_TRUE(VerifyEd25519(ec->public_key_pem, msg, *sig).status().IsInvalidArgument());
  EXPECT_FALSE(VerifyEd25519("not a key", msg, *sig).ok());
}

}  // namespace
}  // namespace cairn::crypto
