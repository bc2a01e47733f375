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
// Jobs (doc/protocol.md section 7): an authenticated agent connection that
// has not begun a session and has sent Ping or stayed quiet for
// `job_link_idle` after HelloOk is a job link (`cairn-agent run`). A
// dispatcher polls the catalog's queued jobs every `job_poll` and sends each
// to a job link of its agent that has no job outstanding; JobDone finishes
// the job in the catalog. Writes to a connection from the dispatcher and
// from the connection's own coroutine are serialised by a per-connection
// write gate on the connection's strand.
//
// Threading: Start() arms the listener on an io_context that the caller
// runs on any number of threads. Store and catalog calls block (fsync,
// LMDB) on the calling I/O thread; run several threads.
#ifndef CAIRN_VAULT_SERVER_H_
#define CAIRN_VAULT_SERVER_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/net/connection.h"
#include "lib/net/server.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"
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
  // How often queued jobs are looked for. Default 200 ms.
  std::chrono::milliseconds job_poll{200};
  // Quiet time after HelloOk (without session_begin or ping) that makes an
  // agent connection a job link. Default 1 s.
  std::chrono::milliseconds job_link_idle{1000};
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

  // Job links currently connected (for tests and logs).
  size_t job_links();

  struct Session;
  struct Link;

 private:
  boost::asio::awaitable<void> Handle(std::shared_ptr<net::Connection> conn);
  boost::asio::awaitable<Status> Enroll(net::Connection& conn);
  boost::asio::awaitable<Status> EnrollReplicator(net::Connection& conn,
                                                  const proto::EnrollRequest& req);
  // A replicator pulling from this vault (doc/protocol.md "Replication").
  boost::asio::awaitable<Status> ServeReplicator(net::Connection& conn);
  Result<proto::ReplicaSetupOk> ReplicaSetup(net::Connection& conn, const proto::ReplicaSetup& req);
  // What agents are told about where to reach their vaults, in order.
  std::vector<std::string> AgentAddresses() const;
  boost::asio::awaitable<Status> ServeAgent(Link& link, const Department& dept);
  // The in-place restore's delta (decrypts with the department's keys).
  Result<proto::DeltaReply> ComputeDeltaFor(const Department& dept, const proto::GetDelta& ask,
                                            std::unique_ptr<repo::RecordDecoder>* decoder);
  boost::asio::awaitable<Status> OnJobDone(Link& link, const Department& dept, ByteView payload);
  boost::asio::awaitable<void> SweepRevoked();
  boost::asio::awaitable<void> DispatchJobs();
  void DispatchOnce();
  boost::asio::awaitable<void> SendJob(std::shared_ptr<Link> link, proto::Job job);
  bool IsJobLink(const Link& link, uint64_t now_mono_micros) const;  // needs links_mu_

  Vault* vault_;
  ServeOptions options_;
  std::string advertised_;  // listen address given to enrolled agents
  std::unique_ptr<net::Server> server_;
  std::atomic<bool> stopping_{false};
  std::mutex links_mu_;
  uint64_t next_link_id_ = 1;                        // guarded by links_mu_
  std::map<uint64_t, std::shared_ptr<Link>> links_;  // agent connections; links_mu_
  std::mutex sessions_mu_;
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;  // for resume after a dropped link
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_SERVER_H_
