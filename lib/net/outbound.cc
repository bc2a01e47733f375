#include "lib/net/outbound.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <thread>

#include "lib/net/address.h"
#include "lib/net/asio_error.h"
#include "lib/net/tls.h"

namespace cairn::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct OutboundStream::Impl {
  explicit Impl(OutboundOptions o) : options(std::move(o)), socket(io) {}

  // Runs the operation `start` begins on the private io_context until it
  // completes or the deadline passes (then the socket is closed, which
  // completes it with an error). Returns its error code.
  template <typename Start>
  error_code Run(Start start, const std::string& what, Status* timeout) {
    std::optional<error_code> done;
    io.restart();
    start([&done](error_code ec, auto&&...) { done = ec; });
    io.run_for(options.deadline);
    if (!done) {
      error_code ignored;
      socket.close(ignored);
      io.restart();
      io.run();
      *timeout = Status::Unavailable(what + " " + options.host_port + ": no answer within " +
                                     std::to_string(options.deadline.count()) + " ms");
      return asio::error::timed_out;
    }
    return *done;
  }

  int fd() { return socket.native_handle(); }

  OutboundOptions options;
  asio::io_context io;
  tcp::socket socket;
  TlsContext tls;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> stream;  // when TLS
};

OutboundStream::OutboundStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OutboundStream::~OutboundStream() = default;

Result<std::unique_ptr<OutboundStream>> OutboundStream::Connect(const OutboundOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(HostPort target, ParseHostPort(options.host_port));
  if (target.host.empty()) {
    return Status::InvalidArgument("\"" + options.host_port + "\" names no host");
  }
  auto impl = std::make_unique<Impl>(options);
  if (options.tls) {
    TlsOptions t;
    t.ca_pem = options.ca_pem;
    CAIRN_ASSIGN_OR_RETURN(impl->tls, MakeClientContext(t));
  }
  tcp::resolver resolver(impl->io);
  error_code ec;
  auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec) return internal::AsioErrorToStatus(ec, "resolve " + target.host);
  Status timeout;
  ec = impl->Run([&](auto handler) { asio::async_connect(impl->socket, endpoints, handler); },
                 "connect to", &timeout);
  if (!timeout.ok()) return timeout;
  if (ec) return internal::AsioErrorToStatus(ec, "connect to " + options.host_port);
  if (options.tls) {
    impl->stream = std::make_unique<asio::ssl::stream<tcp::socket&>>(impl->socket, *impl->tls);
    CAIRN_RETURN_IF_ERROR(ExpectServerName(impl->stream->native_handle(), target.host));
    ec = impl->Run(
        [&](auto handler) {
          impl->stream->async_handshake(asio::ssl::stream_base::client, handler);
        },
        "TLS handshake with", &timeout);
    if (!timeout.ok()) return timeout;
    if (ec) return internal::AsioErrorToStatus(ec, "TLS handshake with " + options.host_port);
  }
  return std::unique_ptr<OutboundStream>(new OutboundStream(std::move(impl)));
}

Status OutboundStream::Write(std::string_view data) {
  Status timeout;
  error_code ec = impl_->Run(
      [&](auto handler) {
        if (impl_->stream) {
          asio::async_write(*impl_->stream, asio::buffer(data), handler);
        } else {
          asio::async_write(impl_->socket, asio::buffer(data), handler);
        }
      },
      "write to", &timeout);
  if (!timeout.ok()) return timeout;
  if (ec) return internal::AsioErrorToStatus(ec, "write to " + impl_->options.host_port);
  return Status::OK();
}

bool OutboundStream::PeerClosed() {
  if (!impl_->socket.is_open()) return true;
  pollfd p{impl_->fd(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) < 0) return true;
  if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return true;
  if ((p.revents & POLLIN) != 0) {
    // The services we write to send nothing unasked; a byte waiting is a
    // TLS record (a close_notify, a post-handshake message) or the end.
    char c;
    const ssize_t n = ::recv(impl_->fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
  }
  return false;
}

bool OutboundStream::tls() const { return impl_->stream != nullptr; }

Status OutboundStream::WaitAcknowledged(uint64_t* unacknowledged) {
  const auto until = std::chrono::steady_clock::now() + impl_->options.deadline;
  auto wait = std::chrono::microseconds(100);
  while (true) {
    int unacked = 0;
    if (!impl_->socket.is_open() || ::ioctl(impl_->fd(), SIOCOUTQ, &unacked) != 0) {
      return Status::Unavailable("the connection to " + impl_->options.host_port + " is closed");
    }
    *unacknowledged = static_cast<uint64_t>(unacked);
    if (unacked == 0) return Status::OK();
    // A peer that half-closed still acknowledges; a reset one never will.
    pollfd p{impl_->fd(), 0, 0};
    if (::poll(&p, 1, 0) < 0 || (p.revents & (POLLERR | POLLHUP)) != 0) {
      return Status::Unavailable(impl_->options.host_port + " dropped the connection with " +
                                 std::to_string(unacked) + " bytes unacknowledged");
    }
    if (std::chrono::steady_clock::now() >= until) {
      return Status::Unavailable(impl_->options.host_port + " did not acknowledge " +
                                 std::to_string(unacked) + " bytes in time");
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::microseconds(20'000));
  }
}

Result<std::string> OutboundStream::ReadUntil(const std::function<bool(std::string_view)>& complete,
                                              size_t max) {
  std::string got;
  char buf[4096];
  while (!complete(got)) {
    if (got.size() > max) {
      return Status::InvalidArgument(impl_->options.host_port + " answered more than " +
                                     std::to_string(max) + " bytes");
    }
    size_t n = 0;
    Status timeout;
    error_code ec = impl_->Run(
        [&](auto handler) {
          auto on_read = [&n, handler](error_code e, size_t k) mutable {
            n = k;
            handler(e);
          };
          if (impl_->stream) {
            impl_->stream->async_read_some(asio::buffer(buf), on_read);
          } else {
            impl_->socket.async_read_some(asio::buffer(buf), on_read);
          }
        },
        "read from", &timeout);
    got.append(buf, n);
    if (!timeout.ok()) return timeout;
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) return got;
    if (ec) return internal::AsioErrorToStatus(ec, "read from " + impl_->options.host_port);
  }
  return got;
}

}  // namespace cairn::net
