// VaultServer: the vault's TLS listener for agents, restores and
// replicators, speaking doc/protocol.md on top of lib/net. It decodes,
// asks VaultService (service/vault_service.h), and replies: no rule of the
// vault lives here, only who is connected and what the wire says.
//
//   server.cc         listener, Hello and role routing, enrolment, the
//                     revocation sweep, the job dispatcher
//   agent_rpc.cc      the agent and restore roles (one department)
//   replicator_rpc.cc the replicator role (every department, read-only)
//
// One coroutine per connection, on the connection's strand. Work that
// blocks (fsync, LMDB writes, pack reads, librsync) runs on a bounded pool
// of `blocking_threads` (blocking.h): the connection's coroutine waits for
// it, so a connection has one request in the store at a time (back-pressure
// comes from TCP), and the I/O threads never stall behind a slow disk.
//
// A protocol violation closes only that connection, with the reason
// logged. A revoked certificate is refused at the handshake, and live
// connections holding one are cut within `revocation_sweep`, so `cairn-vault
// agent revoke` in another process takes effect at once.
//
// Jobs (doc/protocol.md section 7): an authenticated agent connection that
// has not begun a session and has sent Ping or stayed quiet for
// `job_link_idle` after HelloOk is a job link (`cairn-agent run`). The
// dispatcher polls the queued jobs every `job_poll` and sends each to a job
// client of its agent that has no job outstanding. Writes to a connection
// from the dispatcher and from the connection's own coroutine are
// serialised by a per-connection write gate on the connection's strand.
#ifndef CAIRN_VAULT_RPC_SERVER_H_
#define CAIRN_VAULT_RPC_SERVER_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lib/net/connection.h"
#include "lib/net/on_pool.h"
#include "lib/net/server.h"
#include "lib/proto/messages.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

struct ServeOptions {
  // Address for agents, "host:port". Default 127.0.0.1:7420.
  std::string listen = "127.0.0.1:7420";
  // Wait for a client's next frame before dropping it. Default 30 s, as
  // doc/protocol.md section 5 fixes; tests shorten it.
  std::chrono::milliseconds idle_deadline{std::chrono::seconds(30)};
  // How often live connections are checked against revocations. Default 500 ms.
  std::chrono::milliseconds revocation_sweep{500};
  // How often idle backup sessions are looked for (and forgotten past the
  // service's session_idle). Default 10 s.
  std::chrono::milliseconds session_sweep{10000};
  // How often the audit trail gets a signed checkpoint (when anything was
  // appended since the last). Default 5 min.
  std::chrono::milliseconds audit_checkpoint{std::chrono::minutes(5)};
  // How often queued jobs are looked for. Default 200 ms.
  std::chrono::milliseconds job_poll{200};
  // Quiet time after HelloOk (without session_begin or ping) that makes an
  // agent connection a job link. Default 1 s.
  std::chrono::milliseconds job_link_idle{1000};
  // Jobs running at once over the whole vault ([scheduler] max_running_jobs).
  size_t max_running_jobs = 16;
  // Threads that run the store's blocking work. Default 4: enough to keep
  // fsyncs of several departments and pack reads in flight on a small
  // appliance; every connection waits for its own request, so more
  // connections than threads only queue.
  int blocking_threads = 4;
};

class VaultServer {
 public:
  VaultServer(VaultService* service, ServeOptions options);
  ~VaultServer();

  // Binds and starts accepting. Returns the bound port (useful with ":0").
  Result<uint16_t> Start(boost::asio::io_context& io);
  // Stops accepting, drains connections for up to `drain`, waits for the
  // blocking pool, and seals the open packs.
  boost::asio::awaitable<void> Stop(std::chrono::milliseconds drain);

  // Job links currently connected (for tests, logs and metrics).
  size_t job_links();
  // Connections open on the listener (agents, restores, replicators).
  size_t connections() const;

  struct AgentConnection;

 private:
  boost::asio::awaitable<void> Handle(std::shared_ptr<net::Connection> conn);
  boost::asio::awaitable<Status> Enroll(net::Connection& conn, uint16_t version);
  boost::asio::awaitable<Status> ServeAgent(AgentConnection& client, const Department& dept);
  boost::asio::awaitable<Status> ServeReplicator(net::Connection& conn);
  boost::asio::awaitable<Status> OnJobDone(AgentConnection& client, ByteView payload);
  boost::asio::awaitable<void> SweepRevoked();
  boost::asio::awaitable<void> DispatchJobs();
  void DispatchOnce();
  boost::asio::awaitable<void> SendJob(std::shared_ptr<AgentConnection> client, proto::Job job);
  bool IsJobLink(const AgentConnection& client,
                 uint64_t now_mono_micros) const;  // needs connections_mu_
  uint64_t MonoMicros() const;

  VaultService* service_;
  ServeOptions options_;
  net::BlockingPool blocking_pool_;
  boost::asio::thread_pool& blocking_;  // blocking_pool_'s, for OnPool
  std::unique_ptr<net::Server> server_;
  std::atomic<bool> stopping_{false};
  std::mutex connections_mu_;
  uint64_t next_connection_id_ = 1;  // guarded by connections_mu_
  std::map<uint64_t, std::shared_ptr<AgentConnection>>
      connections_;  // agent connections; connections_mu_
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_RPC_SERVER_H_
