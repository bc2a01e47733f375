// VaultServer: the vault's TLS listener for agents (and, later, replicators
// and restores), speaking doc/protocol.md on top of lib/net.
//
// One coroutine per connection. The department of every request comes from
// the peer certificate; records go into the ChunkStore, whose Flush is the
// protocol's durability barrier; snapshots go into the Catalog only after
// every manifest chunk is durable. A protocol violation closes only that
// connection, with the reason logged. A revoked certificate is refused at the
// handshake, and live connections holding one are cut within half a second
// (the sweeper), so `cairn-vault agent revoke` in another process takes
// effect at once.
//
// Threading: Start() arms the listener on an io_context that the caller
// runs on any number of threads. Store and catalog calls block (fsync,
// LMDB) on the calling I/O thread; run several threads.
#ifndef CAIRN_VAULT_SERVER_H_
#define CAIRN_VAULT_SERVER_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lib/net/connection.h"
#include "lib/net/server.h"
#include "vault/vault.h"

namespace cairn::vault {

struct ServeOptions {
  // Address for agents, "host:port". Default 127.0.0.1:7420.
  std::string listen = "127.0.0.1:7420";
  // Wait for a client's next frame before dropping it. Default 30 s, as
  // doc/protocol.md section 5 fixes; tests shorten it.
  std::chrono::milliseconds idle_deadline{std::chrono::seconds(30)};
  // How often live connections are checked against revocations. Default 500 ms.
  std::chrono::milliseconds revocation_sweep{500};
};

class VaultServer {
 public:
  VaultServer(Vault* vault, ServeOptions options);
  ~VaultServer();

  // Binds and starts accepting. Returns the bound port (useful with ":0").
  Result<uint16_t> Start(boost::asio::io_context& io);
  // Stops accepting, drains connections for up to `drain`, and seals the
  // open packs.
  boost::asio::awaitable<void> Stop(std::chrono::milliseconds drain);

  struct Session;

 private:
  boost::asio::awaitable<void> Handle(std::shared_ptr<net::Connection> conn);
  boost::asio::awaitable<Status> Enroll(net::Connection& conn);
  boost::asio::awaitable<Status> ServeAgent(net::Connection& conn, const Department& dept);
  boost::asio::awaitable<void> SweepRevoked();

  Vault* vault_;
  ServeOptions options_;
  std::string advertised_;  // listen address given to enrolled agents
  std::unique_ptr<net::Server> server_;
  bool stopping_ = false;
  std::mutex sessions_mu_;
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;  // for resume after a dropped link
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_SERVER_H_
