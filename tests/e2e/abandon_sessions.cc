// Test tool: opens N backup sessions as the enrolled agent of STATE_DIR,
// sends each a manifest part of IDS chunk IDs (none of which exist) and a
// flush, and drops the connection without committing: what a hostile agent,
// or N agents killed mid-manifest, leave behind at the vault.
//
// usage: abandon_sessions STATE_DIR N IDS
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "lib/client/dial.h"
#include "lib/client/identity.h"
#include "lib/client/wire.h"
#include "lib/net/run_sync.h"
#include "lib/proto/messages.h"

namespace {

namespace asio = boost::asio;
using cairn::Result;
using cairn::Status;
using cairn::proto::MessageType;
namespace client = cairn::client;
namespace proto = cairn::proto;

asio::awaitable<Status> Abandon(asio::any_io_executor ex, cairn::net::TlsContext tls,
                                client::Identity identity, size_t ids, uint64_t seed) {
  client::DialOptions dial;
  dial.software = "abandon_sessions";
  dial.hostname = identity.config.host;
  auto dialed = co_await client::Dial(ex, tls, identity.config.vault_addresses, dial);
  if (!dialed.ok()) co_return dialed.status();
  cairn::net::Connection& c = *dialed->conn;
  proto::SessionBegin begin{proto::SessionKind::kFiles, {"/abandoned"}, 0};
  cairn::Bytes payload = begin.Encode();
  Status s = co_await c.WriteFrame(MessageType::kSessionBegin, payload);
  if (!s.ok()) co_return s;
  auto reply =
      co_await client::ReadExpected(c, MessageType::kSessionBegun, std::chrono::seconds(30));
  if (!reply.ok()) co_return reply.status();
  auto begun = proto::SessionBegun::Decode(*reply);
  if (!begun.ok()) co_return begun.status();
  proto::ManifestPart part;
  part.session_id = begun->session_id;
  part.ids.resize(ids);
  std::mt19937_64 rng(seed);
  for (auto& id : part.ids) {
    for (auto& b : id) b = static_cast<uint8_t>(rng());
  }
  payload = part.Encode();
  s = co_await c.WriteFrame(MessageType::kManifestPart, payload);
  if (!s.ok()) co_return s;
  payload = proto::Flush{1}.Encode();
  s = co_await c.WriteFrame(MessageType::kFlush, payload);
  if (!s.ok()) co_return s;
  reply = co_await client::ReadExpected(c, MessageType::kFlushed, std::chrono::seconds(60));
  co_await c.Close();  // no commit: abandoned
  co_return reply.status();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: abandon_sessions STATE_DIR N IDS\n");
    return 2;
  }
  auto identity = client::LoadIdentity(argv[1]);
  if (!identity.ok()) {
    std::fprintf(stderr, "abandon_sessions: %s\n", identity.status().ToString().c_str());
    return 1;
  }
  auto tls = client::ClientTls(*identity);
  if (!tls.ok()) return 1;
  const int n = std::atoi(argv[2]);
  const size_t ids = static_cast<size_t>(std::atoll(argv[3]));
  for (int i = 0; i < n; ++i) {
    asio::io_context io;
    Status s = cairn::net::RunSync(io, Abandon(io.get_executor(), *tls, *identity, ids, i + 1));
    if (!s.ok()) {
      std::fprintf(stderr, "abandon_sessions: session %d: %s\n", i, s.ToString().c_str());
      return 1;
    }
  }
  std::printf("%d sessions abandoned\n", n);
  return 0;
}
