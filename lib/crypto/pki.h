// The vault's X.509 PKI: key pairs, a CA, CSRs, certificates that name who a
// peer is, and fingerprints for pinning. Everything goes in and out as PEM
// (or DER bytes) so that this header stays free of OpenSSL.
//
// Who a peer is lives in the certificate subject, set only by the issuer:
//   O  = department   ("finance")
//   OU = role         ("agent", "replicator", "restore", "vault", "operator")
//   CN = host         ("fin-srv-01", or an IP literal for a vault)
// The subject a requester wrote in its CSR is never trusted: the vault decides
// who the agent is (IssueCertificate ignores it).
//
// Keys are ECDSA P-256: TLS 1.3 supports them everywhere, and city CA
// platforms issue and accept them. Private keys are unencrypted PKCS#8 PEM;
// protecting them at rest is the caller's job (file mode 0600 under the state
// directory, or wrapped by the vault master key).
//
// All functions are thread-safe (no shared state) and return InvalidArgument
// with a message naming the bad input for malformed PEM, a key that does not
// match, or a CSR whose signature does not verify; IOError or Unavailable only
// for failures inside OpenSSL itself (allocation, the random generator).
#ifndef CAIRN_LIB_CRYPTO_PKI_H_
#define CAIRN_LIB_CRYPTO_PKI_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::crypto {

// The roles a certificate may carry in OU.
inline constexpr std::string_view kRoleAgent = "agent";
inline constexpr std::string_view kRoleReplicator = "replicator";
inline constexpr std::string_view kRoleRestore = "restore";
inline constexpr std::string_view kRoleVault = "vault";
inline constexpr std::string_view kRoleOperator = "operator";
// A person's certificate for the console and the API (CN: the account).
inline constexpr std::string_view kRolePerson = "person";
bool IsKnownRole(std::string_view role);

struct KeyPairPem {
  std::string private_key_pem;  // PKCS#8, unencrypted: a secret
  std::string public_key_pem;   // SubjectPublicKeyInfo
};

// A fresh ECDSA P-256 key pair.
Result<KeyPairPem> GenerateKeyPair();

// Signatures for evidence (audit checkpoints, drill reports): Ed25519.
// A fresh Ed25519 key pair.
Result<KeyPairPem> GenerateSigningKey();
// The 64-byte Ed25519 signature of `message`. InvalidArgument for a key
// that is not an Ed25519 private key.
Result<Bytes> SignEd25519(std::string_view private_key_pem, ByteView message);
// Whether `signature` is `public_key_pem`'s signature of `message`.
// InvalidArgument for a key that is not an Ed25519 public key.
Result<bool> VerifyEd25519(std::string_view public_key_pem, ByteView message, ByteView signature);

struct CaMaterial {
  std::string certificate_pem;
  std::string private_key_pem;  // a secret: whoever holds it can mint peers
};

// A self-signed CA: CN=common_name, basicConstraints CA:TRUE (critical),
// keyUsage keyCertSign|cRLSign (critical), subject and authority key
// identifiers, a random 128-bit serial, valid from five minutes ago (clock
// skew between hosts) for `validity_days` (1..36500).
Result<CaMaterial> CreateCa(std::string_view common_name, int validity_days);

// A CSR signed with `private_key_pem`, subject CN=common_name. The subject is
// informational only (see IssueCertificate).
Result<std::string> CreateCsr(std::string_view private_key_pem, std::string_view common_name);

// Who a certificate says its holder is.
struct PeerIdentity {
  std::string role;        // OU: one of the kRole* values
  std::string department;  // O
  std::string host;        // CN
  std::string serial_hex;  // certificate serial, lower-case hex, no leading zeros
  int64_t not_after_unix = 0;

  friend bool operator==(const PeerIdentity&, const PeerIdentity&) = default;
};

// Issues a leaf certificate for the key in `csr_pem`, signed by `ca`.
//  - The CSR signature must verify (proof that the requester holds the key).
//  - The CSR's subject and extensions are ignored; the subject comes from
//    `identity` (role, department, host). identity.serial_hex and
//    not_after_unix are ignored too: the serial is fresh and random (128
//    bits), the validity is `validity_days` (1..36500), capped at the CA's
//    own notAfter.
//  - basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
//    clientAuth, plus serverAuth and a subjectAltName (IP if `host` is an IP
//    literal, else DNS) for role "vault".
// InvalidArgument for an unknown role, an empty or over-long field, a CA key
// that does not match the CA certificate, a CA certificate that is not a CA,
// or a bad CSR. Returns the certificate as PEM.
// `extra_names` (role vault only) are further subjectAltName entries, IP
// literals or DNS names, so one vault certificate serves 127.0.0.1, ::1 and
// its host name alike.
Result<std::string> IssueCertificate(const CaMaterial& ca, std::string_view csr_pem,
                                     const PeerIdentity& identity, int validity_days,
                                     const std::vector<std::string>& extra_names = {});

// Reads the identity from a certificate (PEM or DER). Does not verify the
// certificate: only call it on a certificate that has been verified, or to
// display one. InvalidArgument if the PEM/DER is malformed or the subject
// lacks O, OU or CN.
Result<PeerIdentity> ParseIdentity(std::string_view certificate_pem);
Result<PeerIdentity> ParseIdentityDer(ByteView certificate_der);

// SHA-256 of the certificate's DER encoding, lower-case hex (64 chars). The
// same value `openssl x509 -fingerprint -sha256` prints, without colons.
// Enrolment tokens carry the CA's fingerprint so that an agent pins the vault
// CA before trusting anything the vault says.
Result<std::string> CertificateFingerprint(std::string_view certificate_pem);

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_PKI_H_
