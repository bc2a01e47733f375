// An HTTPS server for the REST API and the web console, on Boost.Beast and
// Asio coroutines. It owns what every request needs before any handler runs:
// TLS 1.3, limits on headers and bodies, deadlines on the handshake and on
// every request, caps on connections (in all and per address), a checked
// request target (target.h), and a bounded pool on which handlers run, so
// that a slow handler (scrypt, LMDB, a pack read) never holds an I/O thread.
//
// A request that breaks a limit gets a 4xx with a JSON error and the
// connection is closed: 431 headers too large, 413 body too large, 400 a
// malformed request or target, 408 a client too slow, 503 too many
// connections. Nothing else the client can send reaches a handler. How a
// request's bytes become a Request is message.h's (fuzzed).
#ifndef CAIRN_LIB_HTTP_SERVER_H_
#define CAIRN_LIB_HTTP_SERVER_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/status.h"
#include "lib/http/message.h"

namespace cairn::http {

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  // "host:port". Required.
  std::string listen;
  // The server's chain (leaf first) and key, PEM. Required.
  std::string certificate_chain_pem, private_key_pem;
  // CAs whose certificates a person may log in with; empty: no client
  // certificates are asked for.
  std::string client_ca_pem;
  // Limits. Defaults: those of ParseLimits; a handshake within 10 s, a
  // request within 15 s of its first byte, 30 s of quiet between requests
  // of a kept-alive connection; 256 connections, 32 from one address.
  ParseLimits limits;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds request_timeout{15'000};
  std::chrono::milliseconds idle_timeout{30'000};
  size_t max_connections = 256;
  size_t max_connections_per_address = 32;
  // Threads that run handlers. Default 2.
  int handler_threads = 2;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, and starts accepting. Returns the bound port. InvalidArgument for
  // bad TLS material or address; a bind failure as it comes.
  Result<uint16_t> Start();
  // Stops accepting and closes every connection.
  boost::asio::awaitable<void> Stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cairn::http

#endif  // CAIRN_LIB_HTTP_SERVER_H_
