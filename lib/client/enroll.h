// Enrolment: join a vault with a one-time token (`cairn-agent enroll`, and
// `cairn-replicator enroll` with a replicator token).
//
// Sequence (doc/protocol.md, "Enrolment"):
//  1. parse the token (lib/proto/token.h) to get the pinned CA fingerprint;
//  2. fetch the vault CA over an unverified TLS connection and keep it only
//     if its fingerprint matches (lib/net/fetch_ca.h);
//  3. connect again, verifying the vault against that CA, and send
//     Hello{enroll}, then EnrollRequest with a CSR for a key pair generated
//     here (the private key never leaves this host);
//  4. store the certificate, key, CA, department keys and agent.toml in the
//     state directory (identity.h).
//
// Nothing is written to the state directory before the vault answered, so a
// refused enrolment leaves an existing directory as it was.
#ifndef CAIRN_LIB_CLIENT_ENROLL_H_
#define CAIRN_LIB_CLIENT_ENROLL_H_

#include <chrono>
#include <string>

#include "lib/base/status.h"
#include "lib/client/identity.h"

namespace cairn::client {

struct EnrollOptions {
  // The vault's agent listener, "host:port". Required.
  std::string vault;
  // The token printed by `cairn-vault token create`. Required.
  std::string token;
  // State directory; created 0700 if missing. Required.
  std::string state_dir;
  // Host name to enrol as (the certificate's CN). Default: gethostname().
  std::string host;
  // Replace an existing enrolment in state_dir. Default false: refusing
  // protects a working agent from being re-pointed by a mistyped command.
  bool force = false;
  // Bound on each network step (fetching the CA, connecting, each reply).
  // Default 30 s: a vault on a WAN link answers in well under a second;
  // issuing a certificate is one LMDB transaction.
  std::chrono::milliseconds deadline{std::chrono::seconds(30)};
  // Enrol a replicator (a token from `cairn-vault token create
  // --replicator`): the certificate has role replicator and no department
  // keys come with it. Default false: an agent.
  bool replicator = false;
  // Hello's software string, for the vault's logs.
  std::string software = "cairn-agent";
};

struct EnrollResult {
  IdentityConfig config;
  std::string ca_fingerprint;
  std::string certificate_serial;
};

// Errors: InvalidArgument (bad token, state dir already enrolled without
// --force), Unavailable (vault unreachable), PermissionDenied (the vault does
// not present the pinned CA; the token was refused: the vault's message is
// included), Corruption (the vault's answer does not hold together).
Result<EnrollResult> Enroll(const EnrollOptions& options);

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_ENROLL_H_
